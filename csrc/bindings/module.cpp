// The one extension module, nnforge._C, with submodules cpu and cuda.
// Each kernel family binds itself in its own file (see bindings.h); this file
// only creates the modules and calls the bind_* functions.
#include <pybind11/pybind11.h>

#include "bindings/bindings.h"

namespace py = pybind11;

PYBIND11_MODULE(_C, m) {
    m.doc() = "nnforge native extension: CPU and CUDA kernels and build/runtime configuration.";
    m.attr("__version__") = NNFORGE_VERSION;

    nnforge::bind_config(m);

    py::module_ m_cpu = m.def_submodule(
        "cpu", "CPU kernels. They take and return contiguous numpy arrays and release the GIL.");
    // Kernel families bind here: nnforge::bind_<family>(m_cpu).
    nnforge::bind_optim(m_cpu);
    nnforge::bind_activation(m_cpu);
    nnforge::bind_loss(m_cpu);
    nnforge::bind_gemm(m_cpu);
    nnforge::bind_conv(m_cpu);
    nnforge::bind_pool(m_cpu);
    nnforge::bind_batchnorm(m_cpu);
    nnforge::bind_rnn(m_cpu);
    nnforge::bind_attention(m_cpu);
    nnforge::bind_layernorm(m_cpu);

    py::module_ m_cuda = m.def_submodule("cuda", "CUDA device queries and kernels.");
    nnforge::bind_cuda_runtime(m_cuda);
    nnforge::bind_cuda_gemm(m_cuda);
    nnforge::bind_cuda_attention(m_cuda);
    nnforge::bind_cuda_norms(m_cuda);
    nnforge::bind_cuda_conv(m_cuda);
    nnforge::bind_cuda_pool(m_cuda);
    nnforge::bind_cuda_batchnorm(m_cuda);
    nnforge::bind_cuda_loss(m_cuda);
    nnforge::bind_cuda_optim(m_cuda);
    nnforge::bind_cuda_random(m_cuda);
    nnforge::bind_cuda_index(m_cuda);
    nnforge::bind_cuda_rnn(m_cuda);
}
