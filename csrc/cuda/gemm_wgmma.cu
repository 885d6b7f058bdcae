// The Hopper GEMM (sm_90a): C = act(alpha A B + beta C + bias) with TMA tile loads and
// wgmma, bf16/fp16 operands, fp32 accumulation.
//
// STATUS: written and compiled, never run. gemm() uses it only when asked for
// (kernel='wgmma'); make it the automatic choice for sm_90 after the wgmma tests in
// tests/test_cuda_gemm.py pass on an H100/H200.
//
// Operands: A (M, K) K-major (a_sk == 1). B either K-major (b_sk == 1: B = W^T of an
// (N, K) W, nn.Linear's x @ W^T) or N-major (b_sn == 1: a row-major (K, N) array; wgmma's
// transpose bit). Row and batch strides multiples of 16 bytes, 16-byte aligned starts
// (TMA's rules; gemm_wgmma_layout_ok says which rule a refused operand breaks).
//
// Tiling: a block computes a 128 x 128 tile of C for batch items blockIdx.z,
// blockIdx.z + gridDim.z, ...; 384 threads = 3 warpgroups:
//   warpgroup 0, producer: one thread issues the TMA loads of K steps of 64 into a ring of
//     kStages stages (A: one 128 x 64 box; B: one 128(n) x 64(k) box when K-major, two
//     64(n) x 64(k) boxes when N-major), each box 128-byte swizzled by TMA;
//   warpgroups 1 and 2, consumers: rows 0-63 / 64-127 of the tile, wgmma.m64n128k16
//     (A and B from shared memory through descriptors), 64 fp32 accumulators per thread.
// Barriers per stage: full[s] (1 arrival: the producer's arrive.expect_tx of the stage's
// bytes; the TMA completes the transaction bytes), empty[s] (8 arrivals: lane 0 of each
// consumer warp once that warp's wgmmas reading the stage have completed). Step i uses
// stage i % kStages in phase (i / kStages) & 1: consumers wait full with that parity, the
// producer waits empty with the opposite one (its first pass returns at once). Consumers
// keep one wgmma group in flight: after committing step i they wait for step i-1's group
// and then release step i-1's stage.
// Shared-memory layout (128-byte swizzle, what TMA writes and the descriptors describe):
// a box row of 128 bytes (64 elements) r holds its 16-byte chunk c at
// r * 128 + ((c ^ (r % 8)) * 16) from a 1024-byte-aligned box start.
//   A / K-major B: rows are M (N) indices, 128 bytes of K each; descriptor SBO 1024 (8 rows),
//     the k-th 16-element step starts 32 k bytes further.
//   N-major B: rows are K indices, 128 bytes = 64 n each, box j (n 64j..) at 8192 j;
//     descriptor LBO 8192 (the next 64 n), SBO 1024 (the next 8 k), the k-th 16-row step
//     starts 2048 k bytes further.
// Tails: boxes reaching past M, N or K are zero-filled by TMA (still counted as full
// boxes); the epilogue stores only rows < M, columns < N. K == 0: no loads, C = epilogue(0).
// Batch: 3-D tensor maps (inner dim, rows, batch); a broadcast operand (batch stride 0)
// gets a batch dim of 1 and coordinate 0.
//
// Epilogue from registers: thread (warp w of consumer warpgroup G, g = lane / 4, t = lane % 4)
// holds C rows 64 G + 16 w + g (+8), columns 8 i + 2 t (+1), i = 0..15.
#include <cuda.h>  // CUtensorMap and the driver's types only: nothing from libcuda is linked
#include <cudaTypedefs.h>

#include <cstdint>
#include <map>
#include <mutex>
#include <stdexcept>
#include <string>
#include <type_traits>

#include "cuda/check.cuh"
#include "cuda/context.cuh"
#include "cuda/copy.h"
#include "cuda/dispatch.cuh"
#include "cuda/gemm_kernels.cuh"
#include "cuda/gemm_wgmma_ptx.cuh"

namespace nnforge {
namespace cuda {
namespace {

constexpr int kBM = 128, kBN = 128, kBK = 64, kStages = 5;
constexpr int kConsumers = 2;                        // warpgroups of 64 rows each
constexpr int kThreads = 128 * (1 + kConsumers);     // + the producer warpgroup
constexpr int kABytes = kBM * kBK * 2;               // 16 KB (16-bit types)
constexpr int kBBytes = kBN * kBK * 2;               // 16 KB
constexpr int kStageBytes = kABytes + kBBytes;
constexpr int kSmemBytes = kStages * kStageBytes + 1024;  // + slack to align to 1024
static_assert(kBM == 64 * kConsumers, "one consumer warpgroup per 64 rows");
static_assert(kBK * 2 == 128, "a K step is one 128-byte swizzle row");

// What the kernel needs besides GemmParams.
struct WgmmaArgs {
    int a_batch_step = 1, b_batch_step = 1;  // 0: broadcast operand (batch coordinate 0)
    bool c_pair = false;                     // C rows hold aligned (n, n+1) pairs
};

template <typename T, bool kBKMajor>
__global__ void __launch_bounds__(kThreads, 1)
gemm_wgmma_kernel(const __grid_constant__ CUtensorMap map_a,
                  const __grid_constant__ CUtensorMap map_b, const GemmParams<T> p,
                  const WgmmaArgs x) {
#if NNF_WGMMA
    using namespace wgmma_ptx;
    __shared__ alignas(8) std::uint64_t full_bar[kStages];
    __shared__ alignas(8) std::uint64_t empty_bar[kStages];
    extern __shared__ unsigned char wg_smem_raw[];
    const std::uint32_t raw = smem_u32(wg_smem_raw);
    const std::uint32_t base = (raw + 1023) & ~1023u;  // swizzle atoms are 1024-byte aligned
    const std::uint32_t sA = base, sB = base + kStages * kABytes;

    const int warpgroup = threadIdx.x / 128;
    const int lane = threadIdx.x % 32;
    const int m0 = static_cast<int>(blockIdx.y) * kBM;
    const int n0 = static_cast<int>(blockIdx.x) * kBN;
    const int ktiles = static_cast<int>((p.k + kBK - 1) / kBK);

    if (threadIdx.x == 0) {
        for (int s = 0; s < kStages; ++s) {
            mbar_init(smem_u32(&full_bar[s]), 1);
            mbar_init(smem_u32(&empty_bar[s]), 4 * kConsumers);
        }
        mbar_init_fence();
    }
    __syncthreads();  // the only block-wide barrier: the roles split below

    if (warpgroup == 0) {
        // ---- producer: one thread ----
        if (threadIdx.x != 0 || ktiles == 0) return;
        tma_prefetch_map(&map_a);
        tma_prefetch_map(&map_b);
        std::uint32_t it = 0;
        for (std::int64_t bi = blockIdx.z; bi < p.batch; bi += gridDim.z) {
            const int za = static_cast<int>(bi) * x.a_batch_step;
            const int zb = static_cast<int>(bi) * x.b_batch_step;
            for (int kt = 0; kt < ktiles; ++kt, ++it) {
                const int s = static_cast<int>(it % kStages);
                const std::uint32_t phase = (it / kStages) & 1u;
                const std::uint32_t full = smem_u32(&full_bar[s]);
                mbar_wait(smem_u32(&empty_bar[s]), phase ^ 1u);
                const int k0 = kt * kBK;
                const std::uint32_t dA = sA + s * kABytes, dB = sB + s * kBBytes;
                if constexpr (kBKMajor) {
                    mbar_arrive_expect_tx(full, kStageBytes);
                    tma_load_3d(dA, &map_a, full, k0, m0, za);
                    tma_load_3d(dB, &map_b, full, k0, n0, zb);
                } else {
                    // The second 64-column box only when some of its columns exist (its
                    // smem half then keeps stale values, read only into columns >= N).
                    const bool two = n0 + 64 < p.n;
                    mbar_arrive_expect_tx(full, kABytes + (two ? kBBytes : kBBytes / 2));
                    tma_load_3d(dA, &map_a, full, k0, m0, za);
                    tma_load_3d(dB, &map_b, full, n0, k0, zb);
                    if (two) tma_load_3d(dB + kBBytes / 2, &map_b, full, n0 + 64, k0, zb);
                }
            }
        }
        return;
    }

    // ---- consumers ----
    const int cw = warpgroup - 1;  // rows 64 cw .. 64 cw + 63 of the tile
    const int w4 = (threadIdx.x / 32) % 4, g = lane / 4, t = lane % 4;
    std::uint32_t it = 0;
    for (std::int64_t bi = blockIdx.z; bi < p.batch; bi += gridDim.z) {
        float acc[64];
#pragma unroll
        for (int i = 0; i < 64; ++i) acc[i] = 0.f;

        int prev = -1;  // the stage of the previous step, released after its wgmmas complete
        for (int kt = 0; kt < ktiles; ++kt, ++it) {
            const int s = static_cast<int>(it % kStages);
            mbar_wait(smem_u32(&full_bar[s]), (it / kStages) & 1u);
            const std::uint32_t tA = sA + s * kABytes + cw * 64 * 128;
            const std::uint32_t tB = sB + s * kBBytes;
            fence_operands(acc);
            wgmma_fence();
#pragma unroll
            for (int ks = 0; ks < kBK / 16; ++ks) {
                const std::uint64_t da = make_desc(tA + ks * 32, 16, 1024);
                if constexpr (kBKMajor) {
                    wgmma_m64n128k16<T, 0>(acc, da, make_desc(tB + ks * 32, 16, 1024));
                } else {
                    wgmma_m64n128k16<T, 1>(acc, da, make_desc(tB + ks * 2048, kBBytes / 2, 1024));
                }
            }
            wgmma_commit();
            wgmma_wait<1>();  // step kt-1's group has completed: its stage can be refilled
            fence_operands(acc);
            if (prev >= 0 && lane == 0) mbar_arrive(smem_u32(&empty_bar[prev]));
            prev = s;
        }
        wgmma_wait<0>();
        fence_operands(acc);
        if (prev >= 0 && lane == 0) mbar_arrive(smem_u32(&empty_bar[prev]));

#pragma unroll
        for (int half = 0; half < 2; ++half) {
            const std::int64_t m = m0 + cw * 64 + w4 * 16 + g + half * 8;
            if (m >= p.m) continue;
#pragma unroll
            for (int i = 0; i < 16; ++i) {
                const std::int64_t n = n0 + i * 8 + 2 * t;
                const float v0 = acc[4 * i + 2 * half], v1 = acc[4 * i + 2 * half + 1];
                if (x.c_pair && n + 1 < p.n && p.beta == 0.f) {
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

// ---- host: layout rules and tensor maps ----

constexpr std::int64_t kMaxCoord = 0x7FFFFFFF;         // TMA coordinates are int32
constexpr std::int64_t kMaxStrideBytes = 1LL << 40;  // TMA strides

// The strides an operand's tensor map uses, in elements: rows and batch, with a legal
// stand-in for a dim of size 1 (its stride is never applied).
struct MapStrides {
    std::int64_t inner = 0, rows = 0, row_stride = 0, batch = 0, batch_stride = 0;
};

std::int64_t round_up8(std::int64_t v) { return (v + 7) / 8 * 8; }

MapStrides map_strides(std::int64_t inner, std::int64_t rows, std::int64_t row_stride,
                       std::int64_t batch, std::int64_t batch_stride) {
    MapStrides s;
    s.inner = inner;
    s.rows = rows;
    s.row_stride = rows > 1 ? row_stride : round_up8(inner);
    const bool broadcast = batch_stride == 0;
    s.batch = broadcast ? 1 : batch;
    s.batch_stride = s.batch > 1 ? batch_stride : s.row_stride * rows;
    return s;
}

// Why this operand cannot be a TMA tensor map, or "".
std::string map_problem(const char* name, const void* ptr, const MapStrides& s,
                        const char* row_name) {
    auto str = [](std::int64_t v) { return std::to_string(v); };
    if (reinterpret_cast<std::uintptr_t>(ptr) % 16 != 0) {
        return std::string("needs a 16-byte aligned start of ") + name + " (TMA)";
    }
    if (s.rows > 1 && (s.row_stride <= 0 || s.row_stride % 8 != 0)) {
        return std::string("needs ") + name + "'s stride between " + row_name +
               " to be a positive multiple of 8 elements (16 bytes, TMA), got " + str(s.row_stride);
    }
    if (s.batch > 1 && (s.batch_stride <= 0 || s.batch_stride % 8 != 0)) {
        return std::string("needs ") + name + "'s batch stride to be 0 (broadcast) or a positive "
               "multiple of 8 elements (16 bytes, TMA), got " + str(s.batch_stride);
    }
    if (s.row_stride * 2 >= kMaxStrideBytes || s.batch_stride * 2 >= kMaxStrideBytes) {
        return std::string("needs ") + name + "'s strides below 2^40 bytes (TMA)";
    }
    return "";
}

template <typename T>
MapStrides a_strides(const GemmParams<T>& p) {
    return map_strides(p.k, p.m, p.a_sm, p.batch, p.a_sb);
}

template <typename T>
MapStrides b_strides(const GemmParams<T>& p, bool k_major) {
    return k_major ? map_strides(p.k, p.n, p.b_sn, p.batch, p.b_sb)
                   : map_strides(p.n, p.k, p.b_sk, p.batch, p.b_sb);
}

// B is read K-major (b_sk == 1) when it can be, else N-major (b_sn == 1); when both are
// possible (k == 1 or n == 1), K-major unless only the N-major map is legal (b of shape
// (1, N), say).
template <typename T>
bool b_is_k_major(const GemmParams<T>& p) {
    const bool k_ok = p.b_sk == 1 || p.k == 1, n_ok = p.b_sn == 1 || p.n == 1;
    if (k_ok && n_ok) {
        return map_problem("b", p.b, b_strides(p, true), "columns").empty() ||
               !map_problem("b", p.b, b_strides(p, false), "rows").empty();
    }
    return k_ok;
}

template <typename T>
MapStrides b_strides(const GemmParams<T>& p) {
    return b_strides(p, b_is_k_major(p));
}

using EncodeTiled = PFN_cuTensorMapEncodeTiled_v12000;

// cuTensorMapEncodeTiled through the runtime's driver entry point (nnforge links only the
// runtime), looked up once.
EncodeTiled encode_tiled() {
    static std::mutex mutex;
    static EncodeTiled fn = nullptr;
    std::lock_guard<std::mutex> lock(mutex);
    if (fn) return fn;
    void* ptr = nullptr;
    cudaDriverEntryPointQueryResult found = cudaDriverEntryPointSymbolNotFound;
#if CUDART_VERSION >= 12050
    NNF_CUDA_CHECK(cudaGetDriverEntryPointByVersion("cuTensorMapEncodeTiled", &ptr, 12000,
                                                    cudaEnableDefault, &found),
                   "cudaGetDriverEntryPointByVersion(cuTensorMapEncodeTiled)");
#else
    NNF_CUDA_CHECK(cudaGetDriverEntryPoint("cuTensorMapEncodeTiled", &ptr, cudaEnableDefault, &found),
                   "cudaGetDriverEntryPoint(cuTensorMapEncodeTiled)");
#endif
    if (found != cudaDriverEntryPointSuccess || !ptr) {
        throw std::runtime_error("gemm_wgmma: the CUDA driver has no cuTensorMapEncodeTiled");
    }
    fn = reinterpret_cast<EncodeTiled>(ptr);
    return fn;
}

// A 3-D tiled tensor map (inner, rows, batch) of 16-bit elements, 128-byte swizzle,
// box (64, box_rows, 1), out-of-bounds elements read as zeros.
template <typename T>
CUtensorMap make_map(const T* ptr, const MapStrides& s, int box_rows, const char* name) {
    CUtensorMap map{};
    const cuuint64_t dims[3] = {static_cast<cuuint64_t>(s.inner), static_cast<cuuint64_t>(s.rows),
                                static_cast<cuuint64_t>(s.batch)};
    const cuuint64_t strides[2] = {static_cast<cuuint64_t>(s.row_stride) * 2,
                                   static_cast<cuuint64_t>(s.batch_stride) * 2};
    const cuuint32_t box[3] = {static_cast<cuuint32_t>(kBK), static_cast<cuuint32_t>(box_rows), 1};
    const cuuint32_t elem_strides[3] = {1, 1, 1};
    const CUtensorMapDataType dtype = std::is_same<T, bf16>::value
                                          ? CU_TENSOR_MAP_DATA_TYPE_BFLOAT16
                                          : CU_TENSOR_MAP_DATA_TYPE_FLOAT16;
    const CUresult r = encode_tiled()(&map, dtype, 3, const_cast<T*>(ptr), dims, strides, box,
                                      elem_strides, CU_TENSOR_MAP_INTERLEAVE_NONE,
                                      CU_TENSOR_MAP_SWIZZLE_128B,
                                      CU_TENSOR_MAP_L2_PROMOTION_L2_256B,
                                      CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE);
    if (r != CUDA_SUCCESS) {
        throw std::invalid_argument(
            std::string("gemm: kernel='wgmma': cuTensorMapEncodeTiled refused ") + name +
            " (CUresult " + std::to_string(static_cast<int>(r)) + ", dims " +
            std::to_string(s.inner) + " x " + std::to_string(s.rows) + " x " +
            std::to_string(s.batch) + ", strides " + std::to_string(s.row_stride) + ", " +
            std::to_string(s.batch_stride) + " elements)");
    }
    return map;
}

}  // namespace

bool gemm_wgmma_available(int device) {
    static std::mutex mutex;
    static std::map<int, bool> cache;
    std::lock_guard<std::mutex> lock(mutex);
    auto it = cache.find(device);
    if (it != cache.end()) return it->second;
    bool ok = false;
    if (device_props(device).major == 9 && device_props(device).minor == 0) {
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
bool gemm_wgmma_layout_ok(const GemmParams<T>& p, std::string* why) {
    std::string problem;
    if constexpr (!is_reduced_float_v<T>) {
        problem = std::string("takes bfloat16 or float16 operands, got ") +
                  (std::is_same<T, double>::value ? "float64" : "float32");
    } else {
        if (p.m > kMaxCoord || p.n > kMaxCoord || p.k > kMaxCoord || p.batch > kMaxCoord) {
            problem = "takes sizes below 2^31 (TMA coordinates are 32-bit)";
        } else if (p.a_sk != 1 && p.k > 1) {
            problem = "needs a K-major a (last stride 1), got a's strides (" +
                      std::to_string(p.a_sm) + ", " + std::to_string(p.a_sk) + ")";
        } else if (p.b_sk != 1 && p.b_sn != 1 && p.k > 1 && p.n > 1) {
            problem = "needs b with stride 1 along K (b = w.T of an (N, K) w) or along N (a "
                      "row-major (K, N) b), got b's strides (" + std::to_string(p.b_sk) + ", " +
                      std::to_string(p.b_sn) + ")";
        } else if (p.k > 0 && p.m > 0 && p.n > 0 && p.batch > 0) {  // else no tensor maps
            problem = map_problem("a", p.a, a_strides(p), "rows");
            if (problem.empty()) {
                problem = map_problem("b", p.b, b_strides(p), b_is_k_major(p) ? "columns" : "rows");
            }
        }
    }
    if (why) *why = problem;
    return problem.empty();
}

template <typename T>
void launch_gemm_wgmma(const GemmParams<T>& p, cudaStream_t stream) {
    if constexpr (is_reduced_float_v<T>) {
        std::string why;
        if (!gemm_wgmma_layout_ok(p, &why)) {
            throw std::invalid_argument("gemm: kernel='wgmma' " + why);
        }
        if (p.batch == 0 || p.m == 0 || p.n == 0) return;
        const bool k_major = b_is_k_major(p);
        CUtensorMap map_a{}, map_b{};
        if (p.k > 0) {  // K == 0: no loads (a map's dims must be non-zero)
            map_a = make_map(p.a, a_strides(p), kBM, "a");
            map_b = make_map(p.b, b_strides(p), k_major ? kBN : kBK, "b");
        }
        WgmmaArgs x;
        x.a_batch_step = p.a_sb == 0 ? 0 : 1;
        x.b_batch_step = p.b_sb == 0 ? 0 : 1;
        x.c_pair = p.c_sn == 1 && p.c_sm % 2 == 0 && p.c_sb % 2 == 0 &&
                   reinterpret_cast<std::uintptr_t>(p.c) % (2 * sizeof(T)) == 0;
        auto kernel = k_major ? gemm_wgmma_kernel<T, true> : gemm_wgmma_kernel<T, false>;
        NNF_CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                            kSmemBytes),
                       "cudaFuncSetAttribute(gemm_wgmma shared memory)");
        const dim3 grid(static_cast<unsigned>((p.n + kBN - 1) / kBN),
                        static_cast<unsigned>((p.m + kBM - 1) / kBM),
                        static_cast<unsigned>(p.batch < 65535 ? p.batch : 65535));
        kernel<<<grid, kThreads, kSmemBytes, stream>>>(map_a, map_b, p, x);
        check_launch("gemm_wgmma", type_name<T>());
    } else {
        throw std::invalid_argument("gemm: kernel='wgmma' takes bfloat16 or float16 operands");
    }
}

template bool gemm_wgmma_layout_ok<float>(const GemmParams<float>&, std::string*);
template bool gemm_wgmma_layout_ok<double>(const GemmParams<double>&, std::string*);
template bool gemm_wgmma_layout_ok<bf16>(const GemmParams<bf16>&, std::string*);
template bool gemm_wgmma_layout_ok<f16>(const GemmParams<f16>&, std::string*);
template void launch_gemm_wgmma<float>(const GemmParams<float>&, cudaStream_t);
template void launch_gemm_wgmma<double>(const GemmParams<double>&, cudaStream_t);
template void launch_gemm_wgmma<bf16>(const GemmParams<bf16>&, cudaStream_t);
template void launch_gemm_wgmma<f16>(const GemmParams<f16>&, cudaStream_t);

}  // namespace cuda
}  // namespace nnforge
