// Placeholder while the batchnorm kernels are written (issue 5).
