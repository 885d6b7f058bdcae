// Placeholder while the recurrent kernels are written (issue 6).
#include <pybind11/pybind11.h>

#include "bindings/bindings.h"

namespace nnforge {
void bind_rnn(pybind11::module_& m_cpu) { (void)m_cpu; }
}  // namespace nnforge
