// The Hopper GEMM (sm_90a): C = act(alpha A B + beta C + bias) with wgmma, for
// bf16/fp16 operands that are both K-major (A (M, K) with a_sk == 1 and B seen as
// (N, K) with b_sk == 1: x @ W^T of nn.Linear), fp32 accumulation.
//
// STATUS: written and compiled, never run. gemm() uses it only when asked for
// (kernel='wgmma'); make it the automatic choice for sm_90 after
// tests/test_cuda_gemm.py::test_wgmma_kernel passes on an H100/H200.
//
// Tiling: a block of 256 threads = 2 warpgroups computes a 128 x 128 tile of C;
// warpgroup w the rows 64w..64w+63 with wgmma.m64n128k16 (A and B from shared
// memory through matrix descriptors, D in 64 fp32 registers per thread). K
// advances 64 elements (128 bytes of each row) per step through a 4-stage
// cp.async pipeline (as gemm_tc.cu: wait for stage kt, barrier, refill the
// stage step kt-1 used, compute). Each stage holds A's 128 x 64 and B's
// 128 x 64 slices in the 128-byte-swizzled K-major layout wgmma reads: row r's
// 16-byte chunk c is stored at r * 128 + ((c ^ (r % 8)) * 16) from a
// 1024-byte-aligned tile start; descriptors: start address, stride byte offset
// 1024 (the next 8 rows), layout type 1 (128-byte swizzle); the k-th 16-element
// step starts 32 k bytes further. cp.async writes through the generic proxy,
// so every thread fences (fence.proxy.async.shared::cta) before the barrier
// that precedes the wgmmas (the async proxy reads).
//
// Epilogue from registers: thread (warp w of warpgroup G, g = lane / 4,
// t = lane % 4) holds C rows 64G + 16w + g (+8), columns 8i + 2t (+1).
#include <cstdint>
#include <map>
#include <mutex>
#include <type_traits>

#include "cuda/check.cuh"
#include "cuda/context.cuh"
#include "cuda/copy.h"
#include "cuda/dispatch.cuh"
#include "cuda/gemm_kernels.cuh"

#if defined(__CUDA_ARCH__) && (__CUDA_ARCH__ >= 900) && defined(__CUDA_ARCH_FEAT_SM90_ALL)
#define NNF_WGMMA 1
#else
#define NNF_WGMMA 0
#endif

namespace nnforge {
namespace cuda {
namespace {

constexpr int kBM = 128, kBN = 128, kBK = 64, kStages = 4, kThreads = 256;
constexpr int kTileBytes = kBM * kBK * 2;  // 16 KB per operand per stage (16-bit types)
constexpr int kSmemBytes = kStages * 2 * kTileBytes + 1024;  // + alignment slack

#if NNF_WGMMA  // the helpers below exist only where the kernel body does
__device__ __forceinline__ std::uint32_t smem_u32(const void* p) {
    return static_cast<std::uint32_t>(__cvta_generic_to_shared(p));
}

__device__ __forceinline__ void cp_async16(std::uint32_t dst, const void* src, int bytes) {
#if NNF_WGMMA
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(dst), "l"(src), "r"(bytes));
#endif
}

// The matrix descriptor of a K-major, 128-byte-swizzled tile starting at `addr`.
__device__ __forceinline__ std::uint64_t make_desc(std::uint32_t addr) {
    std::uint64_t desc = 0;
    desc |= static_cast<std::uint64_t>((addr & 0x3FFFF) >> 4);  // start address, bits 0-13
    desc |= static_cast<std::uint64_t>(1) << 16;                 // leading byte offset (unused here)
    desc |= static_cast<std::uint64_t>(1024 >> 4) << 32;         // stride byte offset: 8 rows
    desc |= static_cast<std::uint64_t>(1) << 62;                 // layout type: 128-byte swizzle
    return desc;
}

#endif

// d (64 x 128 per warpgroup, fp32) += A (64 x 16, K-major, shared) B (16 x 128, K-major,
// shared); scale_d == 0 overwrites d instead. Thread (warp w of the warpgroup, g = lane / 4,
// t = lane % 4) holds d[4i + e] at row 16 w + g + 8 (e / 2), column 8 i + 2 t + e % 2.
template <typename T>
__device__ __forceinline__ void wgmma_m64n128k16(float (&d)[64], std::uint64_t desc_a,
                                                 std::uint64_t desc_b, int scale_d) {
#if NNF_WGMMA
    if constexpr (std::is_same<T, bf16>::value) {
        asm volatile(
            "{\n.reg .pred p;\nsetp.ne.b32 p, %66, 0;\n"
            "wgmma.mma_async.sync.aligned.m64n128k16.f32.bf16.bf16 {"
            "%0, %1, %2, %3, %4, %5, %6, %7, "
            "%8, %9, %10, %11, %12, %13, %14, %15, "
            "%16, %17, %18, %19, %20, %21, %22, %23, "
            "%24, %25, %26, %27, %28, %29, %30, %31, "
            "%32, %33, %34, %35, %36, %37, %38, %39, "
            "%40, %41, %42, %43, %44, %45, %46, %47, "
            "%48, %49, %50, %51, %52, %53, %54, %55, "
            "%56, %57, %58, %59, %60, %61, %62, %63"
            "}, %64, %65, p, 1, 1, 0, 0;\n}\n"
            :
              "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]),
              "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15]),
              "+f"(d[16]), "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]), "+f"(d[22]), "+f"(d[23]),
              "+f"(d[24]), "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), "+f"(d[28]), "+f"(d[29]), "+f"(d[30]), "+f"(d[31]),
              "+f"(d[32]), "+f"(d[33]), "+f"(d[34]), "+f"(d[35]), "+f"(d[36]), "+f"(d[37]), "+f"(d[38]), "+f"(d[39]),
              "+f"(d[40]), "+f"(d[41]), "+f"(d[42]), "+f"(d[43]), "+f"(d[44]), "+f"(d[45]), "+f"(d[46]), "+f"(d[47]),
              "+f"(d[48]), "+f"(d[49]), "+f"(d[50]), "+f"(d[51]), "+f"(d[52]), "+f"(d[53]), "+f"(d[54]), "+f"(d[55]),
              "+f"(d[56]), "+f"(d[57]), "+f"(d[58]), "+f"(d[59]), "+f"(d[60]), "+f"(d[61]), "+f"(d[62]), "+f"(d[63])
            : "l"(desc_a), "l"(desc_b), "r"(scale_d));
    } else {
        asm volatile(
            "{\n.reg .pred p;\nsetp.ne.b32 p, %66, 0;\n"
            "wgmma.mma_async.sync.aligned.m64n128k16.f32.f16.f16 {"
            "%0, %1, %2, %3, %4, %5, %6, %7, "
            "%8, %9, %10, %11, %12, %13, %14, %15, "
            "%16, %17, %18, %19, %20, %21, %22, %23, "
            "%24, %25, %26, %27, %28, %29, %30, %31, "
            "%32, %33, %34, %35, %36, %37, %38, %39, "
            "%40, %41, %42, %43, %44, %45, %46, %47, "
            "%48, %49, %50, %51, %52, %53, %54, %55, "
            "%56, %57, %58, %59, %60, %61, %62, %63"
            "}, %64, %65, p, 1, 1, 0, 0;\n}\n"
            :
              "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]),
              "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15]),
              "+f"(d[16]), "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]), "+f"(d[22]), "+f"(d[23]),
              "+f"(d[24]), "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), "+f"(d[28]), "+f"(d[29]), "+f"(d[30]), "+f"(d[31]),
              "+f"(d[32]), "+f"(d[33]), "+f"(d[34]), "+f"(d[35]), "+f"(d[36]), "+f"(d[37]), "+f"(d[38]), "+f"(d[39]),
              "+f"(d[40]), "+f"(d[41]), "+f"(d[42]), "+f"(d[43]), "+f"(d[44]), "+f"(d[45]), "+f"(d[46]), "+f"(d[47]),
              "+f"(d[48]), "+f"(d[49]), "+f"(d[50]), "+f"(d[51]), "+f"(d[52]), "+f"(d[53]), "+f"(d[54]), "+f"(d[55]),
              "+f"(d[56]), "+f"(d[57]), "+f"(d[58]), "+f"(d[59]), "+f"(d[60]), "+f"(d[61]), "+f"(d[62]), "+f"(d[63])
            : "l"(desc_a), "l"(desc_b), "r"(scale_d));
    }
#endif
}

#if NNF_WGMMA
// Keeps the compiler from moving accumulator accesses across the asynchronous mmas.
__device__ __forceinline__ void fence_operands(float (&d)[64]) {
#pragma unroll
    for (int i = 0; i < 64; ++i) asm volatile("" : "+f"(d[i])::"memory");
}
#endif

// One stage: A rows m0.. and B rows (n) n0.., 64 K elements from k0, swizzled.
template <typename T>
__device__ __forceinline__ void load_stage(std::uint32_t sa, std::uint32_t sb, const T* a,
                                           const T* b, const GemmParams<T>& p, std::int64_t m0,
                                           std::int64_t n0, std::int64_t k0) {
    for (int c = threadIdx.x; c < 2 * kBM * 8; c += kThreads) {
        const bool is_b = c >= kBM * 8;
        const int cc = is_b ? c - kBM * 8 : c;
        const int r = cc / 8, ch = cc % 8;
        const std::int64_t row = (is_b ? n0 : m0) + r, k = k0 + ch * 8;
        const std::int64_t rows = is_b ? p.n : p.m;
        std::int64_t left = p.k - k;
        left = left < 0 ? 0 : (left > 8 ? 8 : left);
        const int bytes = row < rows ? static_cast<int>(left) * 2 : 0;
        const T* src = is_b ? b + row * p.b_sn + k : a + row * p.a_sm + k;
        const std::uint32_t dst = (is_b ? sb : sa) + r * 128 + ((ch ^ (r & 7)) << 4);
        cp_async16(dst, bytes ? src : (is_b ? b : a), bytes);
    }
}

template <typename T>
__global__ void __launch_bounds__(kThreads, 1)
gemm_wgmma_kernel(const GemmParams<T> p, bool c_pair) {
#if NNF_WGMMA
    extern __shared__ unsigned char wg_smem_raw[];
    const std::uint32_t raw = smem_u32(wg_smem_raw);
    const std::uint32_t base = (raw + 1023) & ~1023u;  // swizzle atoms are 1024-byte aligned
    const std::uint32_t sA = base, sB = base + kStages * kTileBytes;

    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    const int wg = warp / 4, w4 = warp % 4, g = lane / 4, t = lane % 4;
    const std::int64_t m0 = static_cast<std::int64_t>(blockIdx.y) * kBM;
    const std::int64_t n0 = static_cast<std::int64_t>(blockIdx.x) * kBN;
    const std::int64_t ktiles = (p.k + kBK - 1) / kBK;

    for (std::int64_t bi = blockIdx.z; bi < p.batch; bi += gridDim.z) {
        const T* a = p.a + bi * p.a_sb;
        const T* b = p.b + bi * p.b_sb;
        float acc[64];
#pragma unroll
        for (int i = 0; i < 64; ++i) acc[i] = 0.f;

#pragma unroll
        for (int s = 0; s < kStages - 1; ++s) {
            if (s < ktiles) load_stage(sA + s * kTileBytes, sB + s * kTileBytes, a, b, p, m0, n0, s * kBK);
            asm volatile("cp.async.commit_group;\n" ::);
        }
        for (std::int64_t kt = 0; kt < ktiles; ++kt) {
            asm volatile("cp.async.wait_group %0;\n" ::"n"(kStages - 2));
            asm volatile("fence.proxy.async.shared::cta;\n" ::: "memory");
            __syncthreads();  // stage kt visible; every wgmma of step kt-1 has completed
            const std::int64_t next = kt + kStages - 1;
            if (next < ktiles) {
                const int st = static_cast<int>(next % kStages);
                load_stage(sA + st * kTileBytes, sB + st * kTileBytes, a, b, p, m0, n0, next * kBK);
            }
            asm volatile("cp.async.commit_group;\n" ::);

            const int st = static_cast<int>(kt % kStages);
            const std::uint32_t tA = sA + st * kTileBytes + wg * 64 * 128;  // this warpgroup's 64 rows
            const std::uint32_t tB = sB + st * kTileBytes;
            fence_operands(acc);
            asm volatile("wgmma.fence.sync.aligned;\n" ::: "memory");
#pragma unroll
            for (int ks = 0; ks < kBK / 16; ++ks) {  // 16 elements = 32 bytes along each row
                wgmma_m64n128k16<T>(acc, make_desc(tA + ks * 32), make_desc(tB + ks * 32), 1);
            }
            asm volatile("wgmma.commit_group.sync.aligned;\n" ::: "memory");
            asm volatile("wgmma.wait_group.sync.aligned 0;\n" ::: "memory");
            fence_operands(acc);
        }
        asm volatile("cp.async.wait_group 0;\n" ::);
        __syncthreads();  // the next batch item refills the stages

#pragma unroll
        for (int half = 0; half < 2; ++half) {
            const std::int64_t m = m0 + wg * 64 + w4 * 16 + g + half * 8;
            if (m >= p.m) continue;
#pragma unroll
            for (int i = 0; i < 16; ++i) {
                const std::int64_t n = n0 + i * 8 + 2 * t;
                const float v0 = acc[4 * i + 2 * half], v1 = acc[4 * i + 2 * half + 1];
                if (c_pair && n + 1 < p.n && p.beta == 0.f) {
                    float r0 = p.alpha * v0, r1 = p.alpha * v1;
                    if (p.bias) {
                        r0 += convert<float>(p.bias[n * p.bias_s]);
                        r1 += convert<float>(p.bias[(n + 1) * p.bias_s]);
                    }
                    struct alignas(2 * sizeof(T)) Pair { T x, y; };
                    Pair out{convert<T>(gemm_activate(r0, p.act)), convert<T>(gemm_activate(r1, p.act))};
                    *reinterpret_cast<Pair*>(p.c + bi * p.c_sb + m * p.c_sm + n) = out;
                } else {
                    if (n < p.n) gemm_store(p, bi, m, n, v0);
                    if (n + 1 < p.n) gemm_store(p, bi, m, n + 1, v1);
                }
            }
        }
    }
#endif  // NNF_WGMMA
}

// Writes 1 where this build has the sm_90a kernel body for the running device.
__global__ void wgmma_probe_kernel(int* flag) { *flag = NNF_WGMMA; }

}  // namespace

bool gemm_wgmma_available(int device) {
    static std::mutex mutex;
    static std::map<int, bool> cache;
    std::lock_guard<std::mutex> lock(mutex);
    auto it = cache.find(device);
    if (it != cache.end()) return it->second;
    bool ok = false;
    if (device_props(device).major == 9) {
        DeviceGuard guard(device);
        DeviceArray flag = DeviceArray::empty({1}, DType::Int32, device);
        wgmma_probe_kernel<<<1, 1, 0, default_stream(device)>>>(static_cast<int*>(flag.data()));
        check_launch("wgmma_probe");
        int host = 0;
        to_host(flag, &host);
        ok = host == 1;
    }
    cache[device] = ok;
    return ok;
}

template <typename T>
bool gemm_wgmma_layout_ok(const GemmParams<T>& p) {
    if constexpr (!is_reduced_float_v<T>) {
        return false;
    } else {
        auto aligned = [](const void* ptr) { return reinterpret_cast<std::uintptr_t>(ptr) % 16 == 0; };
        return p.a_sk == 1 && p.b_sk == 1 && p.a_sm % 8 == 0 && p.b_sn % 8 == 0 &&
               p.a_sb % 8 == 0 && p.b_sb % 8 == 0 && aligned(p.a) && aligned(p.b);
    }
}

template <typename T>
void launch_gemm_wgmma(const GemmParams<T>& p, cudaStream_t stream) {
    if constexpr (is_reduced_float_v<T>) {
        auto kernel = gemm_wgmma_kernel<T>;
        NNF_CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                            kSmemBytes),
                       "cudaFuncSetAttribute(gemm_wgmma shared memory)");
        const bool c_pair = p.c_sn == 1 && p.c_sm % 2 == 0 && p.c_sb % 2 == 0 &&
                            reinterpret_cast<std::uintptr_t>(p.c) % (2 * sizeof(T)) == 0;
        const dim3 grid(static_cast<unsigned>((p.n + kBN - 1) / kBN),
                        static_cast<unsigned>((p.m + kBM - 1) / kBM),
                        static_cast<unsigned>(p.batch < 65535 ? p.batch : 65535));
        kernel<<<grid, kThreads, kSmemBytes, stream>>>(p, c_pair);
        check_launch("gemm_wgmma", type_name<T>());
    }
}

template bool gemm_wgmma_layout_ok<float>(const GemmParams<float>&);
template bool gemm_wgmma_layout_ok<double>(const GemmParams<double>&);
template bool gemm_wgmma_layout_ok<bf16>(const GemmParams<bf16>&);
template bool gemm_wgmma_layout_ok<f16>(const GemmParams<f16>&);
template void launch_gemm_wgmma<float>(const GemmParams<float>&, cudaStream_t);
template void launch_gemm_wgmma<double>(const GemmParams<double>&, cudaStream_t);
template void launch_gemm_wgmma<bf16>(const GemmParams<bf16>&, cudaStream_t);
template void launch_gemm_wgmma<f16>(const GemmParams<f16>&, cudaStream_t);

}  // namespace cuda
}  // namespace nnforge
