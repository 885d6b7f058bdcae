// CUDA device queries for builds without CUDA (see runtime.h): no devices.
#include "cuda/runtime.h"

#include <stdexcept>
#include <string>

namespace nnforge {

bool cuda_is_built() { return false; }

int cuda_device_count() { return 0; }

std::string cuda_device_name(int index) {
    throw std::runtime_error("cuda.device_name(" + std::to_string(index) +
                             "): nnforge was built without CUDA");
}

}  // namespace nnforge
