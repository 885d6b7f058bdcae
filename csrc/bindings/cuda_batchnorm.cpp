// PLACEHOLDER (session 5 wiring): binds nothing yet; the batchnorm family's helper replaces it.
#include <pybind11/pybind11.h>

#include "bindings/bindings.h"

namespace nnforge {

void bind_cuda_batchnorm(pybind11::module_&) {}

}  // namespace nnforge
