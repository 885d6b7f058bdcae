// Run-time CPU feature detection (cpuid + xgetbv) and the choice of kernel ISA.
//
// The library is compiled for the portable x86-64 baseline; kernels with
// AVX2 / AVX-512 code paths ask best_isa() which one to run. A feature counts
// as present only if the CPU has it AND the OS saves its register state.
#pragma once

namespace nnforge {

struct CpuFeatures {
    bool sse4_2 = false;
    bool avx = false;
    bool avx2 = false;
    bool fma = false;
    bool avx512f = false;
    bool avx512bw = false;
    bool avx512dq = false;
    bool avx512vl = false;
    bool avx512_vnni = false;
    bool avx512_bf16 = false;
    // AMX: present in the CPU and enabled in XCR0. On Linux a thread must
    // still request the tile state (arch_prctl ARCH_REQ_XCOMP_PERM) before
    // executing AMX instructions.
    bool amx_tile = false;
    bool amx_bf16 = false;
};

// Detected once, on first call; all false on non-x86 builds.
const CpuFeatures& cpu_features();

enum class Isa { scalar, avx2, avx512 };

// "scalar", "avx2" or "avx512".
const char* isa_name(Isa isa);

// The widest ISA the kernels should use: avx512 if avx512f+bw+dq+vl+fma,
// else avx2 if avx2+fma, else scalar. The environment variable
// NNFORGE_ISA=scalar|avx2|avx512 forces one. Read once and cached.
// Throws std::invalid_argument for an unknown NNFORGE_ISA value and
// std::runtime_error when the forced ISA needs features this CPU lacks.
Isa best_isa();

// Whether best_isa() comes from NNFORGE_ISA rather than detection.
bool isa_forced();

// A kernel family's set of function pointers for this CPU: `portable` (the
// baseline build's set), overwritten by `avx2(&set)` or `avx512(&set)` (the
// per-ISA files' getters) when best_isa() picks that build. The getters exist
// only in x86-64 builds, so callers name them inside an x86-64 #if.
template <typename Set>
Set pick_isa_kernels(Set portable, void (*avx2)(Set*), void (*avx512)(Set*)) {
    switch (best_isa()) {
        case Isa::avx512:
            avx512(&portable);
            break;
        case Isa::avx2:
            avx2(&portable);
            break;
        default:
            break;
    }
    return portable;
}

}  // namespace nnforge
