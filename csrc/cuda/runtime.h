// CUDA device queries. Implemented in runtime.cu when nnforge is built with
// CUDA, and in runtime_stub.cpp when it is not; callers need no #ifdefs.
#pragma once

#include <string>

namespace nnforge {

// Whether this build contains the CUDA kernels.
bool cuda_is_built();

// Visible CUDA devices; 0 when there is no driver, no device, or no CUDA build.
int cuda_device_count();

// The device's name, e.g. "NVIDIA H100 80GB HBM3". Throws std::out_of_range
// for an index outside [0, cuda_device_count()), std::runtime_error when the
// build has no CUDA or the driver call fails.
std::string cuda_device_name(int index);

}  // namespace nnforge
