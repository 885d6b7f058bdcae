// Run-time CPU feature detection and kernel ISA selection (see cpu_features.h).
//
// Bits used (Intel SDM vol. 2A, CPUID; vol. 1 ch. 13, XSAVE):
//   leaf 1 ECX:      12 FMA, 20 SSE4.2, 27 OSXSAVE, 28 AVX
//   leaf 7.0 EBX:    5 AVX2, 16 AVX512F, 17 AVX512DQ, 30 AVX512BW, 31 AVX512VL
//   leaf 7.0 ECX:    11 AVX512_VNNI
//   leaf 7.0 EDX:    22 AMX_BF16, 24 AMX_TILE
//   leaf 7.1 EAX:    5 AVX512_BF16
//   XCR0:            1 SSE, 2 AVX (YMM upper halves), 5-7 opmask/ZMM state,
//                    17-18 AMX tile config/data
#include "common/cpu_features.h"

#include <cctype>
#include <cstdint>
#include <cstdlib>
#include <stdexcept>
#include <string>

#if defined(__x86_64__) || defined(_M_X64)
#define NNFORGE_X86_64 1
#if defined(_MSC_VER)
#include <immintrin.h>
#include <intrin.h>
#else
#include <cpuid.h>
#endif
#endif

namespace nnforge {
namespace {

#if defined(NNFORGE_X86_64)

struct CpuidRegs {
    uint32_t eax = 0, ebx = 0, ecx = 0, edx = 0;
};

// Returns false (and zeros) when the leaf is above the CPU's maximum leaf.
bool cpuid(uint32_t leaf, uint32_t subleaf, CpuidRegs& r) {
#if defined(_MSC_VER)
    int max_regs[4];
    __cpuid(max_regs, static_cast<int>(leaf & 0x80000000u));
    if (static_cast<uint32_t>(max_regs[0]) < leaf) {
        r = CpuidRegs{};
        return false;
    }
    int regs[4];
    __cpuidex(regs, static_cast<int>(leaf), static_cast<int>(subleaf));
    r.eax = static_cast<uint32_t>(regs[0]);
    r.ebx = static_cast<uint32_t>(regs[1]);
    r.ecx = static_cast<uint32_t>(regs[2]);
    r.edx = static_cast<uint32_t>(regs[3]);
    return true;
#else
    unsigned a = 0, b = 0, c = 0, d = 0;
    if (!__get_cpuid_count(leaf, subleaf, &a, &b, &c, &d)) {
        r = CpuidRegs{};
        return false;
    }
    r.eax = a;
    r.ebx = b;
    r.ecx = c;
    r.edx = d;
    return true;
#endif
}

// XCR0: which register states the OS saves on a context switch. Only valid
// to execute when CPUID reports OSXSAVE. Written as inline asm so this file
// needs no -mxsave flag.
uint64_t read_xcr0() {
#if defined(_MSC_VER)
    return _xgetbv(0);
#else
    uint32_t lo = 0, hi = 0;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    return (static_cast<uint64_t>(hi) << 32) | lo;
#endif
}

bool bit(uint32_t reg, int n) { return (reg >> n) & 1u; }

CpuFeatures detect() {
    CpuFeatures f;
    CpuidRegs l1, l7, l7s1;
    if (!cpuid(1, 0, l1)) return f;
    cpuid(7, 0, l7);
    if (l7.eax >= 1) cpuid(7, 1, l7s1);  // leaf 7 EAX = highest subleaf

    f.sse4_2 = bit(l1.ecx, 20);

    const bool osxsave = bit(l1.ecx, 27);
    const uint64_t xcr0 = osxsave ? read_xcr0() : 0;
    const uint64_t avx_state = (1u << 1) | (1u << 2);
    const uint64_t avx512_state = avx_state | (1u << 5) | (1u << 6) | (1u << 7);
    const uint64_t amx_state = (1ull << 17) | (1ull << 18);
    const bool os_avx = osxsave && (xcr0 & avx_state) == avx_state;
    const bool os_avx512 = osxsave && (xcr0 & avx512_state) == avx512_state;
    const bool os_amx = osxsave && (xcr0 & amx_state) == amx_state;

    f.avx = os_avx && bit(l1.ecx, 28);
    f.fma = os_avx && bit(l1.ecx, 12);
    f.avx2 = os_avx && bit(l7.ebx, 5);

    f.avx512f = os_avx512 && bit(l7.ebx, 16);
    f.avx512dq = os_avx512 && bit(l7.ebx, 17);
    f.avx512bw = os_avx512 && bit(l7.ebx, 30);
    f.avx512vl = os_avx512 && bit(l7.ebx, 31);
    f.avx512_vnni = os_avx512 && bit(l7.ecx, 11);
    f.avx512_bf16 = os_avx512 && bit(l7s1.eax, 5);

    f.amx_tile = os_amx && bit(l7.edx, 24);
    f.amx_bf16 = os_amx && bit(l7.edx, 22);
    return f;
}

#else  // not x86-64: no feature we know how to use.

CpuFeatures detect() { return CpuFeatures{}; }

#endif

// Names the features an ISA needs that this CPU lacks, e.g. "avx512bw, fma".
std::string missing_features(Isa isa, const CpuFeatures& f) {
    std::string missing;
    auto need = [&missing](bool have, const char* name) {
        if (have) return;
        if (!missing.empty()) missing += ", ";
        missing += name;
    };
    if (isa == Isa::avx2) {
        need(f.avx2, "avx2");
        need(f.fma, "fma");
    } else if (isa == Isa::avx512) {
        need(f.avx512f, "avx512f");
        need(f.avx512bw, "avx512bw");
        need(f.avx512dq, "avx512dq");
        need(f.avx512vl, "avx512vl");
        need(f.fma, "fma");
    }
    return missing;
}

Isa detected_isa(const CpuFeatures& f) {
    if (missing_features(Isa::avx512, f).empty()) return Isa::avx512;
    if (missing_features(Isa::avx2, f).empty()) return Isa::avx2;
    return Isa::scalar;
}

// The outcome of reading NNFORGE_ISA, computed once. A bad value is kept as
// an error and rethrown on every call, so it cannot be silently ignored.
struct IsaChoice {
    Isa isa = Isa::scalar;
    bool forced = false;
    enum class Error { none, unknown_value, unsupported } error = Error::none;
    std::string message;
};

IsaChoice choose_isa() {
    IsaChoice choice;
    const CpuFeatures& f = cpu_features();
    const char* env = std::getenv("NNFORGE_ISA");
    if (env == nullptr || env[0] == '\0') {
        choice.isa = detected_isa(f);
        return choice;
    }
    std::string value(env);
    for (char& c : value) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));

    if (value == "scalar") {
        choice.isa = Isa::scalar;
    } else if (value == "avx2") {
        choice.isa = Isa::avx2;
    } else if (value == "avx512") {
        choice.isa = Isa::avx512;
    } else {
        choice.error = IsaChoice::Error::unknown_value;
        choice.message = "NNFORGE_ISA='" + std::string(env) +
                         "' is not a known ISA; accepted values are scalar, avx2, avx512";
        return choice;
    }
    choice.forced = true;
    const std::string missing = missing_features(choice.isa, f);
    if (!missing.empty()) {
        choice.error = IsaChoice::Error::unsupported;
        choice.message = "NNFORGE_ISA=" + value + " but this CPU (or OS) lacks: " + missing;
    }
    return choice;
}

const IsaChoice& isa_choice() {
    static const IsaChoice choice = choose_isa();
    return choice;
}

}  // namespace

const CpuFeatures& cpu_features() {
    static const CpuFeatures features = detect();
    return features;
}

const char* isa_name(Isa isa) {
    switch (isa) {
        case Isa::avx2: return "avx2";
        case Isa::avx512: return "avx512";
        case Isa::scalar: break;
    }
    return "scalar";
}

Isa best_isa() {
    const IsaChoice& choice = isa_choice();
    switch (choice.error) {
        case IsaChoice::Error::unknown_value: throw std::invalid_argument(choice.message);
        case IsaChoice::Error::unsupported: throw std::runtime_error(choice.message);
        case IsaChoice::Error::none: break;
    }
    return choice.isa;
}

bool isa_forced() { return isa_choice().forced; }

}  // namespace nnforge
