// Compiler, language standard and options this build was made with.
#include "common/build_info.h"

#include <string>

#ifndef NNFORGE_VERSION
#error "NNFORGE_VERSION must be defined by the build (CMakeLists.txt)"
#endif
#ifndef NNFORGE_WITH_CUDA
#error "NNFORGE_WITH_CUDA must be defined by the build (CMakeLists.txt)"
#endif

namespace nnforge {
namespace {

#define NNFORGE_STR_(x) #x
#define NNFORGE_STR(x) NNFORGE_STR_(x)

std::string compiler_string() {
    // Order matters: Intel's icx and Apple clang also define __clang__, and
    // clang also defines __GNUC__.
#if defined(__INTEL_LLVM_COMPILER)
    return "Intel oneAPI " NNFORGE_STR(__INTEL_LLVM_COMPILER);
#elif defined(__clang__)
    return "Clang " __clang_version__;
#elif defined(__GNUC__)
    return "GCC " NNFORGE_STR(__GNUC__) "." NNFORGE_STR(__GNUC_MINOR__) "." NNFORGE_STR(
        __GNUC_PATCHLEVEL__);
#elif defined(_MSC_VER)
    return "MSVC " NNFORGE_STR(_MSC_FULL_VER);
#else
    return "unknown compiler";
#endif
}

std::string cxx_standard_string() {
    // MSVC keeps __cplusplus at 199711L unless /Zc:__cplusplus; _MSVC_LANG is right.
#if defined(_MSVC_LANG)
    const long std_version = _MSVC_LANG;
#else
    const long std_version = __cplusplus;
#endif
    if (std_version > 202002L) return "C++23";
    if (std_version >= 202002L) return "C++20";
    if (std_version >= 201703L) return "C++17";
    if (std_version >= 201402L) return "C++14";
    return "C++" + std::to_string(std_version);
}

}  // namespace

BuildInfo build_info() {
    BuildInfo info;
    info.version = NNFORGE_VERSION;
    info.compiler = compiler_string();
    info.cxx_standard = cxx_standard_string();
#if defined(NNFORGE_OPENMP)
    info.openmp = true;
#endif
    info.cuda_built = NNFORGE_WITH_CUDA != 0;
    return info;
}

}  // namespace nnforge
