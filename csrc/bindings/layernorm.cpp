// Placeholder: the layernorm bindings are being written (issue 7).
#include "bindings/bindings.h"

namespace nnforge {
void bind_layernorm(pybind11::module_& m_cpu) { (void)m_cpu; }
}  // namespace nnforge
