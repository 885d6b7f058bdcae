// Exceptions thrown by the CUDA runtime layer. Host-only (no CUDA headers), so
// the pybind11 bindings, compiled by the host compiler, can catch and translate
// them:
//   CudaError        -> RuntimeError  ("cuda: kernel add<float> launch failed: ...")
//   CudaOutOfMemory  -> MemoryError   (requested and free sizes in the message)
// Argument errors use the standard types (std::invalid_argument -> ValueError,
// std::out_of_range -> IndexError), which pybind11 translates by itself.
#pragma once

#include <cstddef>
#include <stdexcept>
#include <string>

namespace nnforge {
namespace cuda {

class CudaError : public std::runtime_error {
public:
    explicit CudaError(const std::string& what) : std::runtime_error(what) {}
};

class CudaOutOfMemory : public std::runtime_error {
public:
    CudaOutOfMemory(const std::string& what, std::size_t requested, std::size_t free_bytes)
        : std::runtime_error(what), requested(requested), free_bytes(free_bytes) {}
    std::size_t requested;
    std::size_t free_bytes;
};

// "1.50 MiB", "512 B": sizes in error messages and reprs.
std::string format_bytes(std::size_t n);

}  // namespace cuda
}  // namespace nnforge
