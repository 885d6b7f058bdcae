// Copies between host and device, strided/broadcast/casting copies on the
// device, fill and arange.
//
// Host <-> device. Up to 1 MiB: one cudaMemcpyAsync straight from/to the
// caller's (pageable) memory. Above: through two pinned staging buffers of
// 4 MiB per device, double buffered. Host to device, chunk c:
//     wait event[c%2] (the DMA that last read buffer c%2 is done)
//     memcpy host chunk -> pinned[c%2];  cudaMemcpyAsync pinned[c%2] -> device
//     record event[c%2]
// so the CPU fills one buffer while the DMA engine drains the other, and the
// call returns once the last chunk is staged. Device to host mirrors it: the
// DMA of chunk c+1 runs while the CPU copies chunk c out of its buffer.
//
// Device copies (copy_kernel): one thread per output element in a grid-stride
// loop, 256 threads a block, blocks = min(ceil(n/256), 8 * SMs); each thread
// finds both operands' element through OffsetCalc<2> (broadcast src strides
// are 0) and converts src's type to dst's. Same dtype and both contiguous:
// cudaMemcpyAsync instead.
#include "cuda/copy.h"

#include <algorithm>
#include <cstring>
#include <mutex>
#include <vector>

#include "cuda/check.cuh"
#include "cuda/context.cuh"
#include "cuda/dispatch.cuh"
#include "cuda/index_calc.cuh"

namespace nnforge {
namespace cuda {
namespace {

constexpr int kThreads = 256;
constexpr std::size_t kPageableLimit = std::size_t(1) << 20;
constexpr std::size_t kStageBytes = std::size_t(4) << 20;

// ------------------------------------------------------------------ kernels
template <typename To, typename From>
__global__ void copy_kernel(To* __restrict__ dst, const From* __restrict__ src,
                            OffsetCalc<2> calc, std::int64_t n) {
    for (std::int64_t i = blockIdx.x * std::int64_t(blockDim.x) + threadIdx.x; i < n;
         i += std::int64_t(gridDim.x) * blockDim.x) {
        std::int64_t off[2];
        calc.get(i, off);
        dst[off[0]] = convert<To>(src[off[1]]);
    }
}

template <typename T>
__global__ void fill_kernel(T* __restrict__ dst, OffsetCalc<1> calc, std::int64_t n, T value) {
    for (std::int64_t i = blockIdx.x * std::int64_t(blockDim.x) + threadIdx.x; i < n;
         i += std::int64_t(gridDim.x) * blockDim.x) {
        std::int64_t off[1];
        calc.get(i, off);
        dst[off[0]] = value;
    }
}

template <typename T, typename S>
__global__ void arange_kernel(T* __restrict__ dst, std::int64_t n, S start, S step) {
    for (std::int64_t i = blockIdx.x * std::int64_t(blockDim.x) + threadIdx.x; i < n;
         i += std::int64_t(gridDim.x) * blockDim.x) {
        dst[i] = convert<T>(start + static_cast<S>(i) * step);
    }
}

template <typename T> T scalar_as(Scalar v) {
    if constexpr (std::is_integral<T>::value && !std::is_same<T, bool>::value) {
        return v.is_int ? static_cast<T>(v.i) : convert<T>(v.f);
    } else {
        return convert<T>(v.f);
    }
}

// ------------------------------------------------------------------ staging
struct Staging {
    std::mutex mutex;
    void* buf[2] = {nullptr, nullptr};
    cudaEvent_t done[2] = {nullptr, nullptr};
};

// Per device (events belong to a device); created on first large copy, kept.
Staging& staging(int device) {
    static std::mutex m;
    static std::vector<Staging*>* all = new std::vector<Staging*>();  // leaked on purpose
    std::lock_guard<std::mutex> lock(m);
    if (device >= static_cast<int>(all->size())) all->resize(device + 1, nullptr);
    Staging*& s = (*all)[device];
    if (s == nullptr) {
        auto* fresh = new Staging();
        DeviceGuard guard(device);
        for (int b = 0; b < 2; ++b) {
            NNF_CUDA_CHECK(cudaHostAlloc(&fresh->buf[b], kStageBytes, cudaHostAllocPortable),
                           "cudaHostAlloc (pinned staging buffer)");
            NNF_CUDA_CHECK(cudaEventCreateWithFlags(&fresh->done[b], cudaEventDisableTiming),
                           "cudaEventCreate (staging)");
        }
        s = fresh;
    }
    return *s;
}

void host_to_device(void* dst, const void* src, std::size_t nbytes, int device) {
    cudaStream_t stream = default_stream(device);
    if (nbytes <= kPageableLimit) {
        NNF_CUDA_CHECK(cudaMemcpyAsync(dst, src, nbytes, cudaMemcpyHostToDevice, stream),
                       "cudaMemcpyAsync (host to device)");
        return;
    }
    Staging& s = staging(device);
    std::lock_guard<std::mutex> lock(s.mutex);
    for (std::size_t off = 0, c = 0; off < nbytes; off += kStageBytes, ++c) {
        const int b = static_cast<int>(c % 2);
        const std::size_t len = std::min(kStageBytes, nbytes - off);
        NNF_CUDA_CHECK(cudaEventSynchronize(s.done[b]), "cudaEventSynchronize (staging)");
        std::memcpy(s.buf[b], static_cast<const char*>(src) + off, len);
        NNF_CUDA_CHECK(cudaMemcpyAsync(static_cast<char*>(dst) + off, s.buf[b], len,
                                       cudaMemcpyHostToDevice, stream),
                       "cudaMemcpyAsync (pinned host to device)");
        NNF_CUDA_CHECK(cudaEventRecord(s.done[b], stream), "cudaEventRecord (staging)");
    }
}

void device_to_host(void* dst, const void* src, std::size_t nbytes, int device) {
    cudaStream_t stream = default_stream(device);
    if (nbytes <= kPageableLimit) {
        NNF_CUDA_CHECK(cudaMemcpyAsync(dst, src, nbytes, cudaMemcpyDeviceToHost, stream),
                       "cudaMemcpyAsync (device to host)");
        NNF_CUDA_CHECK(cudaStreamSynchronize(stream), "cudaStreamSynchronize (device to host)");
        return;
    }
    Staging& s = staging(device);
    std::lock_guard<std::mutex> lock(s.mutex);
    const std::size_t chunks = (nbytes + kStageBytes - 1) / kStageBytes;
    auto issue = [&](std::size_t c) {
        const int b = static_cast<int>(c % 2);
        const std::size_t off = c * kStageBytes, len = std::min(kStageBytes, nbytes - off);
        NNF_CUDA_CHECK(cudaMemcpyAsync(s.buf[b], static_cast<const char*>(src) + off, len,
                                       cudaMemcpyDeviceToHost, stream),
                       "cudaMemcpyAsync (device to pinned host)");
        NNF_CUDA_CHECK(cudaEventRecord(s.done[b], stream), "cudaEventRecord (staging)");
    };
    issue(0);
    for (std::size_t c = 0; c < chunks; ++c) {
        if (c + 1 < chunks) issue(c + 1);  // its buffer was drained in iteration c - 1
        const int b = static_cast<int>(c % 2);
        const std::size_t off = c * kStageBytes, len = std::min(kStageBytes, nbytes - off);
        NNF_CUDA_CHECK(cudaEventSynchronize(s.done[b]), "cudaEventSynchronize (device to host)");
        std::memcpy(static_cast<char*>(dst) + off, s.buf[b], len);
    }
}

bool same_memory(const DeviceArray& a, const DeviceArray& b) {
    return a.storage && b.storage && a.storage->ptr != nullptr &&
           a.storage->ptr == b.storage->ptr;
}

}  // namespace

DeviceArray from_host(const void* host, const Shape& shape, DType dtype, int device) {
    DeviceArray out = DeviceArray::empty(shape, dtype, device);
    if (out.nbytes() > 0) {
        DeviceGuard guard(device);
        host_to_device(out.data(), host, out.nbytes(), device);
    }
    return out;
}

void to_host(const DeviceArray& src, void* host) {
    if (src.numel() == 0) return;
    const DeviceArray c = contiguous(src);
    DeviceGuard guard(c.device);
    device_to_host(host, c.data(), c.nbytes(), c.device);
}

void copy_(const DeviceArray& dst, const DeviceArray& src_in) {
    const std::int64_t n = dst.numel();
    if (n == 0) return;
    DeviceArray src = src_in;
    if (src.device != dst.device) {
        // Across devices: contiguous on the source device, a peer copy, then
        // the ordinary local copy (which broadcasts and converts).
        const DeviceArray c = contiguous(src);
        DeviceArray moved = DeviceArray::empty(c.shape, c.dtype, dst.device);
        synchronize(c.device);  // the peer copy runs on dst's stream
        DeviceGuard guard(dst.device);
        NNF_CUDA_CHECK(cudaMemcpyPeerAsync(moved.data(), dst.device, c.data(), c.device,
                                           c.nbytes(), default_stream(dst.device)),
                       "cudaMemcpyPeerAsync");
        // `c` goes back to the source device's cache when this scope ends, and
        // the next kernel on that device's stream may reuse it while the peer
        // copy (on dst's stream) still reads it: make the source stream wait for
        // the copy. Destroying the event after the wait is enqueued is allowed.
        cudaEvent_t copied = nullptr;
        NNF_CUDA_CHECK(cudaEventCreateWithFlags(&copied, cudaEventDisableTiming),
                       "cudaEventCreate (peer copy)");
        NNF_CUDA_CHECK(cudaEventRecord(copied, default_stream(dst.device)),
                       "cudaEventRecord (peer copy)");
        {
            DeviceGuard on_source(c.device);
            NNF_CUDA_CHECK(cudaStreamWaitEvent(default_stream(c.device), copied, 0),
                           "cudaStreamWaitEvent (peer copy)");
        }
        NNF_CUDA_CHECK(cudaEventDestroy(copied), "cudaEventDestroy (peer copy)");
        src = moved;
    } else if (same_memory(src, dst)) {
        src = astype(src, src.dtype);  // overlapping views: read from a copy
    }
    const Shape src_strides = broadcast_strides(src, dst.shape, "copy_");
    DeviceGuard guard(dst.device);
    cudaStream_t stream = default_stream(dst.device);
    if (src.dtype == dst.dtype && src.shape == dst.shape && src.is_contiguous() &&
        dst.is_contiguous()) {
        NNF_CUDA_CHECK(cudaMemcpyAsync(dst.data(), src.data(), dst.nbytes(),
                                       cudaMemcpyDeviceToDevice, stream),
                       "cudaMemcpyAsync (device to device)");
        return;
    }
    const OffsetCalc<2> calc =
        make_offset_calc<2>(dst.shape, {dst.strides, src_strides}, "copy_");
    const int grid = grid_for(n, kThreads, dst.device);
    dispatch_all(dst.dtype, [&](auto dst_tag) {
        using To = decltype(dst_tag);
        dispatch_all(src.dtype, [&](auto src_tag) {
            using From = decltype(src_tag);
            copy_kernel<To, From><<<grid, kThreads, 0, stream>>>(
                static_cast<To*>(dst.data()), static_cast<const From*>(src.data()), calc, n);
            check_launch("copy", type_name<To>());
        });
    });
}

DeviceArray contiguous(const DeviceArray& src) {
    if (src.is_contiguous()) return src;
    return astype(src, src.dtype);
}

DeviceArray astype(const DeviceArray& src, DType dtype) {
    DeviceArray out = DeviceArray::empty(src.shape, dtype, src.device);
    copy_(out, src);
    return out;
}

void fill_(const DeviceArray& dst, Scalar value) {
    const std::int64_t n = dst.numel();
    if (n == 0) return;
    DeviceGuard guard(dst.device);
    const OffsetCalc<1> calc = make_offset_calc<1>(dst.shape, {dst.strides}, "fill_");
    const int grid = grid_for(n, kThreads, dst.device);
    dispatch_all(dst.dtype, [&](auto tag) {
        using T = decltype(tag);
        fill_kernel<T><<<grid, kThreads, 0, default_stream(dst.device)>>>(
            static_cast<T*>(dst.data()), calc, n, scalar_as<T>(value));
        check_launch("fill", type_name<T>());
    });
}

DeviceArray arange(Scalar start, Scalar step, std::int64_t n, DType dtype, int device) {
    if (n < 0) throw std::invalid_argument("cuda.arange: negative length");
    DeviceArray out = DeviceArray::empty({n}, dtype, device);
    if (n == 0) return out;
    DeviceGuard guard(device);
    const int grid = grid_for(n, kThreads, device);
    cudaStream_t stream = default_stream(device);
    dispatch_all(dtype, [&](auto tag) {
        using T = decltype(tag);
        if (start.is_int && step.is_int && !is_float_v<T>) {
            arange_kernel<T, std::int64_t><<<grid, kThreads, 0, stream>>>(
                static_cast<T*>(out.data()), n, start.i, step.i);
        } else {
            arange_kernel<T, double><<<grid, kThreads, 0, stream>>>(
                static_cast<T*>(out.data()), n, start.f, step.f);
        }
        check_launch("arange", type_name<T>());
    });
    return out;
}

}  // namespace cuda
}  // namespace nnforge
