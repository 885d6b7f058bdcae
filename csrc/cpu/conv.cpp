// Placeholder while the conv kernels are written (issue 5).
