// Placeholder while the pool kernels are written (issue 5).
#include <pybind11/pybind11.h>

#include "bindings/bindings.h"

namespace nnforge {
void bind_pool(pybind11::module_& m_cpu) { (void)m_cpu; }
}  // namespace nnforge
