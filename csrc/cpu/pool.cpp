// Placeholder while the pool kernels are written (issue 5).
