// Number of threads the CPU kernels use (OpenMP's team size).
#pragma once

namespace nnforge {

// Threads a parallel kernel will use: omp_get_max_threads() when built with
// OpenMP (which honours OMP_NUM_THREADS), else 1.
int get_num_threads();

// Sets the thread count for later parallel kernels. Throws
// std::invalid_argument when n < 1. Without OpenMP it accepts n and has no
// effect: every kernel runs on the calling thread.
void set_num_threads(int n);

}  // namespace nnforge
