// PLACEHOLDER (session 5 wiring): conv2d_forward, conv2d_backward_input, conv2d_backward_weight (implicit GEMM); being written.
