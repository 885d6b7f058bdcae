// Contiguous static split of [0, count) among OpenMP threads, shared by the
// row loops of layer norm, softmax and cross-entropy (layernorm_kernels.h,
// softmax_kernels.h, loss_kernels.h). Each
// thread gets one run of consecutive items; an item is always computed whole
// by one thread, so results never depend on the thread count. Internal
// linkage (unnamed namespace), as everything the per-ISA builds include.
#pragma once

#include <cstdint>

#if defined(NNFORGE_OPENMP)
#include <omp.h>
#endif

namespace nnforge {
namespace {

// body(begin, end) over [0, count): split among threads when `work` (elements
// touched) reaches `parallel_min`, else one call on the calling thread.
template <typename Body>
void parallel_runs(int64_t count, int64_t work, int64_t parallel_min, const Body& body) {
#if defined(NNFORGE_OPENMP)
    if (work >= parallel_min && count > 1 && omp_get_max_threads() > 1) {
#pragma omp parallel
        {
            const int64_t threads = omp_get_num_threads();
            const int64_t t = omp_get_thread_num();
            const int64_t per = (count + threads - 1) / threads;
            const int64_t begin = t * per < count ? t * per : count;
            const int64_t end = begin + per < count ? begin + per : count;
            if (begin < end) body(begin, end);
        }
        return;
    }
#endif
    (void)work;
    (void)parallel_min;
    if (count > 0) body(int64_t{0}, count);
}

}  // namespace
}  // namespace nnforge
