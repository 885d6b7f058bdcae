// Caching allocator (see allocator.h for the policy).
//
// Bookkeeping, per device: the small pool is a set of cached blocks ordered by
// (stream, size, address), so lower_bound finds the smallest cached block of
// at least the rounded size on the right stream; the large pool is a
// LargeBlocks (allocator_blocks.h: segments split into blocks, merged on free).
// Live blocks are owned by their Allocation objects; their destructor gives
// them back. One mutex guards it all (kernels run with the GIL released, so
// calls can come from several threads). The state is never destroyed: Python
// may release arrays after static destructors have run.
#include "cuda/allocator.h"

#include <cuda_runtime.h>

#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <tuple>
#include <vector>

#include "cuda/allocator_blocks.h"
#include "cuda/check.cuh"
#include "cuda/context.cuh"

namespace nnforge {
namespace cuda {
namespace {

constexpr std::size_t kSmallLimit = std::size_t(1) << 20;  // 1 MiB
constexpr std::size_t kSmallRound = 512;
constexpr std::size_t kLargeRound = std::size_t(2) << 20;  // 2 MiB

struct Cached {
    void* stream;
    std::size_t size;
    void* ptr;
    bool operator<(const Cached& o) const {
        return std::tie(stream, size, ptr) < std::tie(o.stream, o.size, o.ptr);
    }
};

struct DevicePool {
    std::set<Cached> cached;  // the small pool's free blocks
    LargeBlocks large;        // the large pool's segments and free blocks
    MemoryStats stats;

    void count_cached() { stats.cached_blocks = cached.size() + large.free_blocks(); }
};

struct Pools {
    std::mutex mutex;
    // unique_ptr: a DevicePool never moves (LargeBlocks is not copyable, and
    // live Allocations point into it) when the vector grows.
    std::vector<std::unique_ptr<DevicePool>> devices;
    DevicePool& at(int device) {
        while (device >= static_cast<int>(devices.size())) {
            devices.push_back(std::make_unique<DevicePool>());
        }
        return *devices[device];
    }
};

Pools& pools() {
    static Pools* p = new Pools();  // intentionally leaked (see the file comment)
    return *p;
}

// round_size maps every request below 1 MiB to at most 1 MiB (1 MiB - 1 B rounds
// up to exactly 1 MiB) and every larger one to a multiple of 2 MiB: `<=` keeps the
// former in the small pool, so large segments and blocks stay 2 MiB multiples.
bool is_small(std::size_t rounded) { return rounded <= kSmallLimit; }

// cudaFree every cached small block and every wholly free large segment of
// one device. Caller holds the mutex. A block leaves the books only after its
// cudaFree succeeded, so a throw leaves them consistent.
void release_cached(int device, DevicePool& pool) {
    DeviceGuard guard(device);
    for (auto it = pool.cached.begin(); it != pool.cached.end();) {
        NNF_CUDA_CHECK(cudaFree(it->ptr), "cudaFree (releasing cached blocks)");
        pool.stats.reserved -= it->size;
        it = pool.cached.erase(it);
    }
    pool.large.release_free_segments([&](void* ptr, std::size_t size) {
        NNF_CUDA_CHECK(cudaFree(ptr), "cudaFree (releasing cached segments)");
        pool.stats.reserved -= size;
    });
    pool.count_cached();
}

// A cached block for `rounded` bytes on `stream`, or null: small requests take
// a small block at most twice their size; large ones the best-fitting large
// block, split to exactly `rounded`. Caller holds the mutex.
bool take_cached(DevicePool& pool, cudaStream_t stream, std::size_t rounded, Allocation& block) {
    if (is_small(rounded)) {
        auto it = pool.cached.lower_bound(Cached{stream, rounded, nullptr});
        if (it == pool.cached.end() || it->stream != stream || it->size > 2 * rounded) {
            return false;
        }
        block.ptr = it->ptr;
        block.size = it->size;
        pool.cached.erase(it);
        return true;
    }
    LargeBlocks::Block* b = pool.large.take(stream, rounded);
    if (b == nullptr) return false;
    block.ptr = b->ptr;
    block.size = b->size;  // == rounded
    block.large = b;
    return true;
}

}  // namespace

std::size_t round_size(std::size_t nbytes) {
    if (nbytes < kSmallLimit) {
        const std::size_t n = nbytes == 0 ? 1 : nbytes;
        return (n + kSmallRound - 1) / kSmallRound * kSmallRound;
    }
    return (nbytes + kLargeRound - 1) / kLargeRound * kLargeRound;
}

std::shared_ptr<Allocation> allocate(std::size_t nbytes, int device) {
    auto block = std::make_shared<Allocation>();
    block->device = device;
    block->requested = nbytes;
    if (nbytes == 0) return block;  // empty arrays own no memory
    const std::size_t rounded = round_size(nbytes);
    cudaStream_t stream = default_stream(device);
    block->stream = stream;

    Pools& p = pools();
    std::lock_guard<std::mutex> lock(p.mutex);
    DevicePool& pool = p.at(device);

    // 1. A cached block on this stream (see take_cached).
    if (!take_cached(pool, stream, rounded, *block)) {
        // 2. A fresh block (a new segment, when large); on failure release the
        //    cache and retry once.
        DeviceGuard guard(device);
        void* ptr = nullptr;
        cudaError_t err = cudaMalloc(&ptr, rounded);
        if (err == cudaErrorMemoryAllocation) {
            cudaGetLastError();
            release_cached(device, pool);
            err = cudaMalloc(&ptr, rounded);
        }
        if (err == cudaErrorMemoryAllocation) {
            cudaGetLastError();
            std::size_t free_b = 0, total_b = 0;
            cudaMemGetInfo(&free_b, &total_b);
            cudaGetLastError();
            throw CudaOutOfMemory(
                "cuda: out of memory: tried to allocate " + format_bytes(nbytes) + " on device " +
                    std::to_string(device) + " (" + format_bytes(free_b) + " free of " +
                    format_bytes(total_b) + "; " + format_bytes(pool.stats.allocated) +
                    " allocated by nnforge)",
                nbytes, free_b);
        }
        NNF_CUDA_CHECK(err, "cudaMalloc");
        if (!is_small(rounded)) {
            try {
                block->large = pool.large.add_segment(stream, ptr, rounded);
            } catch (...) {  // host out of memory: give the device memory back
                cudaFree(ptr);
                throw;
            }
        }
        // ptr last: from here on the Allocation's destructor returns the block
        block->ptr = ptr;
        block->size = rounded;
        pool.stats.reserved += rounded;
        if (pool.stats.reserved > pool.stats.max_reserved) {
            pool.stats.max_reserved = pool.stats.reserved;
        }
    }
    pool.count_cached();
    pool.stats.allocated += block->size;
    if (pool.stats.allocated > pool.stats.max_allocated) {
        pool.stats.max_allocated = pool.stats.allocated;
    }
    return block;
}

Allocation::~Allocation() {
    if (ptr == nullptr) return;
    Pools& p = pools();
    std::lock_guard<std::mutex> lock(p.mutex);
    DevicePool& pool = p.at(device);
    if (large != nullptr) {
        pool.large.give_back(static_cast<LargeBlocks::Block*>(large));
    } else {
        pool.cached.insert(Cached{stream, size, ptr});
    }
    pool.stats.allocated -= size;
    pool.count_cached();
}

MemoryStats memory_stats(int device) {
    Pools& p = pools();
    std::lock_guard<std::mutex> lock(p.mutex);
    return p.at(device).stats;
}

void empty_cache() {
    Pools& p = pools();
    std::lock_guard<std::mutex> lock(p.mutex);
    for (int d = 0; d < static_cast<int>(p.devices.size()); ++d) {
        DevicePool& pool = *p.devices[d];
        if (pool.stats.cached_blocks != 0) release_cached(d, pool);
    }
}

void reset_peak_memory_stats(int device) {
    Pools& p = pools();
    std::lock_guard<std::mutex> lock(p.mutex);
    DevicePool& pool = p.at(device);
    pool.stats.max_allocated = pool.stats.allocated;
    pool.stats.max_reserved = pool.stats.reserved;
}

}  // namespace cuda
}  // namespace nnforge
