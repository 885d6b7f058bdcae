// The caching device-memory allocator, host-side view (no CUDA headers).
//
// cudaMalloc/cudaFree are slow (cudaFree synchronizes the whole device), so a
// freed block goes back to a cache and the next request of a similar size on
// the same device and stream reuses it. Sizes are rounded into classes:
//   requests below 1 MiB: up to a multiple of 512 B   (the "small" pool)
//   requests of 1 MiB or more: up to a multiple of 2 MiB  (the "large" pool)
// Small pool: a cached block serves a small request when it is at most twice
// the rounded size (small blocks are never split). Large pool: each cudaMalloc
// is a segment of exactly the rounded size; a request takes the smallest cached
// large block that fits and splits it, the rest (a multiple of 2 MiB) staying
// cached; a freed large block merges with free neighbours of its segment (see
// allocator_blocks.h). Reuse is per stream: a block freed after work on stream
// S was queued is safe to hand out again for work on S, because S runs in
// order. Other streams would need events (not yet: nnforge issues everything
// to one default stream per device).
//
// empty_cache() and the out-of-memory retry cudaFree cached small blocks and
// large segments that are wholly free; a segment with any block in use stays.
// When cudaMalloc fails, the cache of that device is released and the
// allocation retried once; a second failure throws CudaOutOfMemory (MemoryError
// in Python) with the requested size and the device's free memory.
//
// Statistics: `allocated` is the sum of the rounded sizes of live blocks (a
// split hands out exactly the rounded size), `reserved` the bytes obtained
// from cudaMalloc and not yet returned by cudaFree.
#pragma once

#include <cstddef>
#include <memory>

namespace nnforge {
namespace cuda {

// One block handed out by the allocator; returns itself to the cache when the
// last owner (a DeviceArray or a view of it) lets go.
struct Allocation {
    void* ptr = nullptr;
    std::size_t size = 0;       // the rounded size actually reserved
    std::size_t requested = 0;  // the size asked for
    int device = 0;
    void* stream = nullptr;     // cudaStream_t the block is used on
    void* large = nullptr;      // its LargeBlocks::Block in the large pool; null if small
    ~Allocation();
};

std::shared_ptr<Allocation> allocate(std::size_t nbytes, int device);

struct MemoryStats {
    std::size_t allocated = 0;      // bytes in live blocks (rounded sizes)
    std::size_t max_allocated = 0;  // peak of `allocated` since the last reset
    std::size_t reserved = 0;       // bytes obtained from cudaMalloc (live + cached)
    std::size_t max_reserved = 0;
    std::size_t cached_blocks = 0;  // free blocks waiting in the cache (small + large)
};

MemoryStats memory_stats(int device);
void empty_cache();                 // cudaFree every cached block, all devices
void reset_peak_memory_stats(int device);
std::size_t round_size(std::size_t nbytes);  // the size class of a request

}  // namespace cuda
}  // namespace nnforge
