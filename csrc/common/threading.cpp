// Thread-count control for the CPU kernels (see threading.h).
#include "common/threading.h"

#include <stdexcept>
#include <string>

#if defined(NNFORGE_OPENMP)
#include <omp.h>
#endif

namespace nnforge {

int get_num_threads() {
#if defined(NNFORGE_OPENMP)
    return omp_get_max_threads();
#else
    return 1;
#endif
}

void set_num_threads(int n) {
    if (n < 1) {
        throw std::invalid_argument("set_num_threads: n must be >= 1, got " + std::to_string(n));
    }
#if defined(NNFORGE_OPENMP)
    omp_set_num_threads(n);
#endif
}

}  // namespace nnforge
