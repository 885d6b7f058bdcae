// PTX wrappers of the sm_90a GEMM (gemm_wgmma.cu): mbarriers, TMA tile loads,
// wgmma matrix descriptors and the m64n128k16 wgmma itself.
//
// Everything here exists only in the sm_90a device pass (NNF_WGMMA == 1); the
// host pass and the sm_80 pass see none of it, so nothing sm_90-only can reach
// an sm_80 binary.
#pragma once

#include <cstdint>
#include <type_traits>

#include "cuda/dispatch.cuh"

#if defined(__CUDA_ARCH__) && (__CUDA_ARCH__ == 900) && defined(__CUDA_ARCH_FEAT_SM90_ALL)
#define NNF_WGMMA 1
#else
#define NNF_WGMMA 0
#endif

#if NNF_WGMMA
namespace nnforge {
namespace cuda {
namespace wgmma_ptx {

__device__ __forceinline__ std::uint32_t smem_u32(const void* p) {
    return static_cast<std::uint32_t>(__cvta_generic_to_shared(p));
}

// ---- mbarriers (shared::cta, 64-bit) ----
__device__ __forceinline__ void mbar_init(std::uint32_t bar, std::uint32_t count) {
    asm volatile("mbarrier.init.shared::cta.b64 [%0], %1;\n" ::"r"(bar), "r"(count) : "memory");
}

// Makes the initialised barriers visible to the other threads and to the async proxy (TMA).
__device__ __forceinline__ void mbar_init_fence() {
    asm volatile("fence.mbarrier_init.release.cluster;\n" ::: "memory");
    asm volatile("fence.proxy.async.shared::cta;\n" ::: "memory");
}

// One arrival that also announces `bytes` more transaction bytes for the current phase.
__device__ __forceinline__ void mbar_arrive_expect_tx(std::uint32_t bar, std::uint32_t bytes) {
    asm volatile("mbarrier.arrive.expect_tx.shared::cta.b64 _, [%0], %1;\n" ::"r"(bar), "r"(bytes)
                 : "memory");
}

__device__ __forceinline__ void mbar_arrive(std::uint32_t bar) {
    asm volatile("mbarrier.arrive.shared::cta.b64 _, [%0];\n" ::"r"(bar) : "memory");
}

// Waits until the phase of parity `parity` has completed (acquire, CTA scope). On a fresh
// barrier (in phase 0) a wait for parity 1 returns at once: "the phase before" counts as done.
// A wait that lasts more than ~10 s traps (the launch fails with an error instead of
// hanging: a protocol bug shows up as "unspecified launch failure").
__device__ __forceinline__ std::uint64_t global_ns() {
    std::uint64_t t;
    asm volatile("mov.u64 %0, %%globaltimer;\n" : "=l"(t));
    return t;
}

__device__ __forceinline__ bool mbar_try_wait(std::uint32_t bar, std::uint32_t parity) {
    std::uint32_t done = 0;
    asm volatile(
        "{\n.reg .pred p;\n"
        "mbarrier.try_wait.parity.shared::cta.b64 p, [%1], %2;\n"
        "selp.u32 %0, 1, 0, p;\n}\n"
        : "=r"(done)
        : "r"(bar), "r"(parity)
        : "memory");
    return done != 0;
}

__device__ __forceinline__ void mbar_wait(std::uint32_t bar, std::uint32_t parity) {
    if (mbar_try_wait(bar, parity)) return;
    const std::uint64_t start = global_ns();
    for (std::uint32_t tries = 1;; ++tries) {
        if (mbar_try_wait(bar, parity)) return;
        if ((tries & 1023u) == 0 && global_ns() - start > 10000000000ull) __trap();
    }
}

// ---- TMA ----
__device__ __forceinline__ void tma_prefetch_map(const void* map) {
    asm volatile("prefetch.tensormap [%0];\n" ::"l"(reinterpret_cast<std::uint64_t>(map)) : "memory");
}

// Loads the box at element coordinates (c0 innermost, c1, c2) of the 3-D tensor map into
// shared memory at `dst`, completing `bytes` of the barrier's transaction count (the whole
// box, out-of-bounds elements included: they arrive as zeros).
__device__ __forceinline__ void tma_load_3d(std::uint32_t dst, const void* map, std::uint32_t bar,
                                            int c0, int c1, int c2) {
    asm volatile(
        "cp.async.bulk.tensor.3d.shared::cluster.global.mbarrier::complete_tx::bytes"
        " [%0], [%1, {%3, %4, %5}], [%2];\n" ::"r"(dst),
        "l"(reinterpret_cast<std::uint64_t>(map)), "r"(bar), "r"(c0), "r"(c1), "r"(c2)
        : "memory");
}

// ---- wgmma ----
// Matrix descriptor of a 128-byte-swizzled operand tile at shared address `addr` (the
// swizzle pattern repeats every 1024 bytes from a 1024-aligned address: base offset 0).
//   bits 0-13 start address >> 4, 16-29 leading byte offset >> 4, 32-45 stride byte
//   offset >> 4, 62-63 layout (1 = 128-byte swizzle).
// K-major: LBO unused (1 by convention), SBO = 1024 (the next 8 rows of 128 bytes).
// MN-major: LBO = the byte offset of the next 64-element block along M/N, SBO = 1024
// (the next 8 rows along K).
__device__ __forceinline__ std::uint64_t make_desc(std::uint32_t addr, std::uint32_t lbo,
                                                   std::uint32_t sbo) {
    return static_cast<std::uint64_t>((addr & 0x3FFFF) >> 4) |
           (static_cast<std::uint64_t>((lbo & 0x3FFFF) >> 4) << 16) |
           (static_cast<std::uint64_t>((sbo & 0x3FFFF) >> 4) << 32) |
           (static_cast<std::uint64_t>(1) << 62);
}

__device__ __forceinline__ void wgmma_fence() {
    asm volatile("wgmma.fence.sync.aligned;\n" ::: "memory");
}
__device__ __forceinline__ void wgmma_commit() {
    asm volatile("wgmma.commit_group.sync.aligned;\n" ::: "memory");
}
template <int N>
__device__ __forceinline__ void wgmma_wait() {
    asm volatile("wgmma.wait_group.sync.aligned %0;\n" ::"n"(N) : "memory");
}

// Keeps the compiler from moving accumulator accesses across the asynchronous mmas.
__device__ __forceinline__ void fence_operands(float (&d)[64]) {
#pragma unroll
    for (int i = 0; i < 64; ++i) asm volatile("" : "+f"(d[i])::"memory");
}

#define NNF_WGMMA_D64                                                                           \
    "{%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, "                   \
    "%16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31, "          \
    "%32, %33, %34, %35, %36, %37, %38, %39, %40, %41, %42, %43, %44, %45, %46, %47, "          \
    "%48, %49, %50, %51, %52, %53, %54, %55, %56, %57, %58, %59, %60, %61, %62, %63}"
#define NNF_WGMMA_OUT64(d)                                                                      \
    "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]),         \
        "+f"(d[7]), "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), \
        "+f"(d[14]), "+f"(d[15]), "+f"(d[16]), "+f"(d[17]), "+f"(d[18]), "+f"(d[19]),           \
        "+f"(d[20]), "+f"(d[21]), "+f"(d[22]), "+f"(d[23]), "+f"(d[24]), "+f"(d[25]),           \
        "+f"(d[26]), "+f"(d[27]), "+f"(d[28]), "+f"(d[29]), "+f"(d[30]), "+f"(d[31]),           \
        "+f"(d[32]), "+f"(d[33]), "+f"(d[34]), "+f"(d[35]), "+f"(d[36]), "+f"(d[37]),           \
        "+f"(d[38]), "+f"(d[39]), "+f"(d[40]), "+f"(d[41]), "+f"(d[42]), "+f"(d[43]),           \
        "+f"(d[44]), "+f"(d[45]), "+f"(d[46]), "+f"(d[47]), "+f"(d[48]), "+f"(d[49]),           \
        "+f"(d[50]), "+f"(d[51]), "+f"(d[52]), "+f"(d[53]), "+f"(d[54]), "+f"(d[55]),           \
        "+f"(d[56]), "+f"(d[57]), "+f"(d[58]), "+f"(d[59]), "+f"(d[60]), "+f"(d[61]),           \
        "+f"(d[62]), "+f"(d[63])

// d (64 x 128 per warpgroup, fp32) += A (64 x 16, K-major, shared) B (16 x 128, shared;
// K-major when kTransB == 0, N-major when 1). Thread (warp w of the warpgroup, g = lane / 4,
// t = lane % 4) holds d[4i + e] at row 16 w + g + 8 (e / 2), column 8 i + 2 t + e % 2.
template <typename T, int kTransB>
__device__ __forceinline__ void wgmma_m64n128k16(float (&d)[64], std::uint64_t desc_a,
                                                 std::uint64_t desc_b) {
    static_assert(std::is_same<T, bf16>::value || std::is_same<T, f16>::value, "16-bit types");
    if constexpr (std::is_same<T, bf16>::value) {
        asm volatile(
            "{\n.reg .pred p;\nsetp.ne.b32 p, %67, 0;\n"
            "wgmma.mma_async.sync.aligned.m64n128k16.f32.bf16.bf16 " NNF_WGMMA_D64
            ", %64, %65, p, 1, 1, 0, %66;\n}\n"
            : NNF_WGMMA_OUT64(d)
            : "l"(desc_a), "l"(desc_b), "n"(kTransB), "r"(1));
    } else {
        asm volatile(
            "{\n.reg .pred p;\nsetp.ne.b32 p, %67, 0;\n"
            "wgmma.mma_async.sync.aligned.m64n128k16.f32.f16.f16 " NNF_WGMMA_D64
            ", %64, %65, p, 1, 1, 0, %66;\n}\n"
            : NNF_WGMMA_OUT64(d)
            : "l"(desc_a), "l"(desc_b), "n"(kTransB), "r"(1));
    }
}

#undef NNF_WGMMA_D64
#undef NNF_WGMMA_OUT64

}  // namespace wgmma_ptx
}  // namespace cuda
}  // namespace nnforge
#endif  // NNF_WGMMA
