// Placeholder while the recurrent kernels are written (issue 6).
