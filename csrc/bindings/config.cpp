// Binds build and runtime configuration: build info, CPU features, the
// kernel ISA, and the thread count.
#include <pybind11/pybind11.h>

#include <string>

#include "bindings/bindings.h"
#include "common/build_info.h"
#include "common/cpu_features.h"
#include "common/threading.h"

namespace py = pybind11;

namespace nnforge {

void bind_config(py::module_& m) {
    m.def(
        "build_info",
        [] {
            const BuildInfo info = build_info();
            py::dict d;
            d["version"] = info.version;
            d["compiler"] = info.compiler;
            d["cxx_standard"] = info.cxx_standard;
            d["openmp"] = info.openmp;
            d["cuda_built"] = info.cuda_built;
            return d;
        },
        "What this extension was compiled with: version, compiler, cxx_standard, "
        "openmp (bool), cuda_built (bool).");

    m.def(
        "cpu_features",
        [] {
            const CpuFeatures& f = cpu_features();
            py::dict d;
            d["sse4_2"] = f.sse4_2;
            d["avx"] = f.avx;
            d["avx2"] = f.avx2;
            d["fma"] = f.fma;
            d["avx512f"] = f.avx512f;
            d["avx512bw"] = f.avx512bw;
            d["avx512dq"] = f.avx512dq;
            d["avx512vl"] = f.avx512vl;
            d["avx512_vnni"] = f.avx512_vnni;
            d["avx512_bf16"] = f.avx512_bf16;
            d["amx_tile"] = f.amx_tile;
            d["amx_bf16"] = f.amx_bf16;
            return d;
        },
        "CPU features usable here (present in the CPU and enabled by the OS), name -> bool.");

    m.def(
        "selected_isa", [] { return std::string(isa_name(best_isa())); },
        "The ISA the CPU kernels use: 'scalar', 'avx2' or 'avx512'. NNFORGE_ISA forces one; "
        "raises ValueError for an unknown value, RuntimeError if the CPU lacks it.");

    m.def("isa_forced", &isa_forced,
          "True when the kernel ISA was forced by the NNFORGE_ISA environment variable.");

    m.def("get_num_threads", &get_num_threads, "Threads the CPU kernels use.");
    m.def("set_num_threads", &set_num_threads, py::arg("n"),
          "Set the threads the CPU kernels use (n >= 1).");
}

}  // namespace nnforge
