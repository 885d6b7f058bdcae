// The bind_* functions that module.cpp calls, one per binding file. Each
// kernel family adds its own file and one line here.
#pragma once

#include <pybind11/pybind11.h>

namespace nnforge {

// Top level: build_info, cpu_features, selected_isa, isa_forced,
// get_num_threads, set_num_threads (bindings/config.cpp).
void bind_config(pybind11::module_& m);

// nnforge._C.cuda: is_built, device_count, device_name (bindings/cuda_runtime.cpp).
void bind_cuda_runtime(pybind11::module_& m_cuda);

// nnforge._C.cuda: gemm, gemm_kernel_for (bindings/cuda_gemm.cpp) and
// sdpa_forward, sdpa_backward (bindings/cuda_attention.cpp) and softmax_forward/
// backward, layer_norm_forward/backward (bindings/cuda_norms.cpp); nothing in a
// build without CUDA.
void bind_cuda_gemm(pybind11::module_& m_cuda);
void bind_cuda_attention(pybind11::module_& m_cuda);
void bind_cuda_norms(pybind11::module_& m_cuda);
void bind_cuda_conv(pybind11::module_& m_cuda);  // conv2d_forward, conv2d_backward_input, conv2d_backward_weight (implicit GEMM) (bindings/cuda_conv.cpp)
void bind_cuda_pool(pybind11::module_& m_cuda);  // max/avg/adaptive pooling forward and backward (bindings/cuda_pool.cpp)
void bind_cuda_batchnorm(pybind11::module_& m_cuda);  // batch norm forward (train/eval) and backward (bindings/cuda_batchnorm.cpp)
void bind_cuda_loss(pybind11::module_& m_cuda);  // cross_entropy_forward/backward, logsumexp (bindings/cuda_loss.cpp)
void bind_cuda_optim(pybind11::module_& m_cuda);  // fused SGD/Adam/AdamW/RMSprop/Adagrad/Adadelta updates (bindings/cuda_optim.cpp)
void bind_cuda_random(pybind11::module_& m_cuda);  // Philox counter-based random numbers (dropout masks, rand, randn) (bindings/cuda_random.cpp)
void bind_cuda_index(pybind11::module_& m_cuda);  // gather/scatter-add/take/index_add/nonzero, cumsum/cumprod, flip/tile/pad (bindings/cuda_index.cpp)
void bind_cuda_rnn(pybind11::module_& m_cuda);  // RNN/LSTM/GRU layer forward and backward through time (bindings/cuda_rnn.cpp)

// nnforge._C.cpu: erf, gelu, gelu_backward (bindings/activation.cpp).
void bind_activation(pybind11::module_& m_cpu);

// nnforge._C.cpu: batch_norm_* (bindings/batchnorm.cpp).
void bind_batchnorm(pybind11::module_& m_cpu);

// nnforge._C.cpu: conv2d_* (bindings/conv.cpp).
void bind_conv(pybind11::module_& m_cpu);

// nnforge._C.cpu: max_pool2d_*, avg_pool2d_*, adaptive_avg_pool2d_* (bindings/pool.cpp).
void bind_pool(pybind11::module_& m_cpu);

// nnforge._C.cpu: rnn_* layer drivers (bindings/rnn.cpp).
void bind_rnn(pybind11::module_& m_cpu);

// nnforge._C.cpu: sdpa_* fused scaled dot-product attention (bindings/attention.cpp).
void bind_attention(pybind11::module_& m_cpu);

// nnforge._C.cpu: layer_norm_forward/backward, softmax_forward/backward (log=True:
// log-softmax), fused row kernels (bindings/layernorm.cpp).
void bind_layernorm(pybind11::module_& m_cpu);

// nnforge._C.cpu: gemm, gemm_config (bindings/gemm.cpp).
void bind_gemm(pybind11::module_& m_cpu);

// nnforge._C.cpu: cross_entropy_forward, cross_entropy_backward (bindings/loss.cpp).
void bind_loss(pybind11::module_& m_cpu);

// nnforge._C.cpu: sgd_update, adam_update, rmsprop_update, adagrad_update,
// adadelta_update (bindings/optim.cpp).
void bind_optim(pybind11::module_& m_cpu);

}  // namespace nnforge
