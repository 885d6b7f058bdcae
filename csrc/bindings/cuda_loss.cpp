// PLACEHOLDER (session 5 wiring): binds nothing yet; the loss family's helper replaces it.
#include <pybind11/pybind11.h>

#include "bindings/bindings.h"

namespace nnforge {

void bind_cuda_loss(pybind11::module_&) {}

}  // namespace nnforge
