// Caching allocator (see allocator.h for the policy).
//
// Bookkeeping, per device: a set of cached blocks ordered by (stream, size,
// address), so lower_bound finds the smallest cached block of at least the
// rounded size on the right stream. Live blocks are owned by their Allocation
// objects; their destructor puts them back in the set. One mutex guards it
// all (kernels run with the GIL released, so calls can come from several
// threads). The state is never destroyed: Python may release arrays after
// static destructors have run.
#include "cuda/allocator.h"

#include <cuda_runtime.h>

#include <mutex>
#include <set>
#include <string>
#include <tuple>
#include <vector>

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
    std::set<Cached> cached;
    MemoryStats stats;
};

struct Pools {
    std::mutex mutex;
    std::vector<DevicePool> devices;
    DevicePool& at(int device) {
        if (device >= static_cast<int>(devices.size())) devices.resize(device + 1);
        return devices[device];
    }
};

Pools& pools() {
    static Pools* p = new Pools();  // intentionally leaked (see the file comment)
    return *p;
}

bool is_small(std::size_t rounded) { return rounded < kSmallLimit; }

// cudaFree every cached block of one device. Caller holds the mutex.
void release_cached(int device, DevicePool& pool) {
    DeviceGuard guard(device);
    for (const Cached& c : pool.cached) {
        NNF_CUDA_CHECK(cudaFree(c.ptr), "cudaFree (releasing cached blocks)");
        pool.stats.reserved -= c.size;
    }
    pool.cached.clear();
    pool.stats.cached_blocks = 0;
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

    // 1. A cached block on this stream, same pool, at most twice the size.
    auto it = pool.cached.lower_bound(Cached{stream, rounded, nullptr});
    if (it != pool.cached.end() && it->stream == stream && it->size <= 2 * rounded &&
        is_small(it->size) == is_small(rounded)) {
        block->ptr = it->ptr;
        block->size = it->size;
        pool.cached.erase(it);
        pool.stats.cached_blocks = pool.cached.size();
    } else {
        // 2. A fresh block; on failure release the cache and retry once.
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
        block->ptr = ptr;
        block->size = rounded;
        pool.stats.reserved += rounded;
        if (pool.stats.reserved > pool.stats.max_reserved) {
            pool.stats.max_reserved = pool.stats.reserved;
        }
    }
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
    pool.cached.insert(Cached{stream, size, ptr});
    pool.stats.allocated -= size;
    pool.stats.cached_blocks = pool.cached.size();
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
        if (!p.devices[d].cached.empty()) release_cached(d, p.devices[d]);
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
