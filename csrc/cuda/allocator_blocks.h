// The large pool's bookkeeping: segments split into blocks and merged back.
// Host-only C++ (no CUDA headers), so it can be exercised without a GPU; the
// allocator (allocator.cu) calls cudaMalloc/cudaFree around it and holds its
// mutex while it does.
//
// A segment is one cudaMalloc'd region of the large pool. It is covered, in
// address order and without gaps, by blocks linked through prev/next:
//
//   segment [base, base + S):  [A in use][B free][C in use]      A.prev = C.next = null
//
// Invariants (each operation below keeps all four):
//   1. The blocks of a segment tile it exactly: b.ptr + b.size == b.next->ptr,
//      the first block (prev == null) starts at the segment's base, and the
//      sizes add up to the segment's size. So a block with prev == next == null
//      is a whole segment, and its ptr is what cudaMalloc returned.
//   2. Two neighbours are never both free (a freed block merges with free
//      neighbours at once).
//   3. `free_` holds exactly the free blocks, keyed (stream, size, ptr); a
//      block's key fields never change while it is in `free_`.
//   4. Every block of a segment has the segment's stream (blocks are handed out
//      only for their own stream; see allocator.h on why reuse is per stream).
// Sizes are whatever the caller passes; the allocator passes multiples of
// 2 MiB, so a split never leaves a remainder smaller than 2 MiB.
#pragma once

#include <cstddef>
#include <cstdint>
#include <set>
#include <tuple>

namespace nnforge {
namespace cuda {

class LargeBlocks {
public:
    struct Block {
        char* ptr;
        std::size_t size;
        void* stream;
        bool in_use;
        Block* prev;  // the neighbour just below in the same segment, or null
        Block* next;  // the neighbour just above, or null
    };

    LargeBlocks() = default;
    LargeBlocks(const LargeBlocks&) = delete;
    LargeBlocks& operator=(const LargeBlocks&) = delete;
    // Never destroyed in nnforge (the allocator's state is leaked on purpose);
    // no destructor, so a test that drops one leaks its blocks, nothing worse.

    // The smallest free block of at least `size` on `stream`, marked in use and
    // cut down to exactly `size`: the rest becomes a free block just above it
    // (it cannot merge with anything: its upper neighbour, if any, was the
    // taken block's neighbour, which invariant 2 says is in use). Null if none.
    Block* take(void* stream, std::size_t size) {
        auto it = free_.lower_bound(Key{stream, size, nullptr});
        if (it == free_.end() || (*it)->stream != stream) return nullptr;
        Block* b = *it;
        // The remainder's node first: if `new` throws, nothing has changed yet.
        Block* rest = b->size > size
                          ? new Block{b->ptr + size, b->size - size, stream, false, b, b->next}
                          : nullptr;
        free_.erase(it);
        b->in_use = true;
        if (rest != nullptr) {
            if (b->next != nullptr) b->next->prev = rest;
            b->next = rest;
            b->size = size;
            free_.insert(rest);
        }
        return b;
    }

    // A fresh segment [ptr, ptr + size), handed out whole as one block in use.
    Block* add_segment(void* stream, void* ptr, std::size_t size) {
        return new Block{static_cast<char*>(ptr), size, stream, true, nullptr, nullptr};
    }

    // A block comes back: merged with a free neighbour on either side (each
    // merge deletes the upper block of the pair and grows the lower one, so the
    // survivor's ptr is the lower address and invariant 1 holds), then filed
    // as free.
    void give_back(Block* b) {
        b->in_use = false;
        if (b->prev != nullptr && !b->prev->in_use) {
            Block* lower = b->prev;
            free_.erase(lower);  // before its size (a key field) changes
            absorb_next(lower);  // lower swallows b
            b = lower;
        }
        if (b->next != nullptr && !b->next->in_use) {
            free_.erase(b->next);
            absorb_next(b);
        }
        free_.insert(b);
    }

    // Calls release(ptr, size) for every free block that is a whole segment
    // (prev == next == null: nothing else of its segment is in use), then
    // forgets it. If release throws, that block is still filed and the blocks
    // released before it are gone: the bookkeeping stays consistent.
    template <class Release>
    void release_free_segments(Release&& release) {
        for (auto it = free_.begin(); it != free_.end();) {
            Block* b = *it;
            if (b->prev != nullptr || b->next != nullptr) {
                ++it;
                continue;
            }
            release(static_cast<void*>(b->ptr), b->size);
            it = free_.erase(it);
            delete b;
        }
    }

    std::size_t free_blocks() const { return free_.size(); }

private:
    struct Key {
        void* stream;
        std::size_t size;
        char* ptr;
    };
    // Pointers compared as integers (`<` between unrelated pointers is unspecified).
    struct ByStreamSizeAddress {
        using is_transparent = void;
        using Tuple = std::tuple<std::uintptr_t, std::size_t, std::uintptr_t>;
        static Tuple make(const void* stream, std::size_t size, const void* ptr) {
            return Tuple(reinterpret_cast<std::uintptr_t>(stream), size,
                         reinterpret_cast<std::uintptr_t>(ptr));
        }
        static Tuple key(const Block* b) { return make(b->stream, b->size, b->ptr); }
        static Tuple key(const Key& k) { return make(k.stream, k.size, k.ptr); }
        template <class A, class B>
        bool operator()(const A& a, const B& b) const { return key(a) < key(b); }
    };

    // b swallows its upper neighbour n (n already out of free_): b grows by
    // n's size and takes over n's upper link; n is deleted.
    static void absorb_next(Block* b) {
        Block* n = b->next;
        b->size += n->size;
        b->next = n->next;
        if (n->next != nullptr) n->next->prev = b;
        delete n;
    }

    std::set<Block*, ByStreamSizeAddress> free_;
};

}  // namespace cuda
}  // namespace nnforge
