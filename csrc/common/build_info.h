// What this build of nnforge._C was compiled with.
#pragma once

#include <string>

namespace nnforge {

struct BuildInfo {
    std::string version;       // NNFORGE_VERSION, e.g. "0.1.0"
    std::string compiler;      // e.g. "GCC 12.2.0", "Clang 17.0.6"
    std::string cxx_standard;  // e.g. "C++17"
    bool openmp = false;
    bool cuda_built = false;
};

BuildInfo build_info();

}  // namespace nnforge
