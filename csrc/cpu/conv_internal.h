// Shared by conv.cpp (shape checks, algorithm choice, the GEMM paths) and
// conv_direct.cpp (the direct path): the thread loop and the direct kernels'
// entry points. Not part of the public interface (that is conv.h).
#pragma once

#include <cstdint>
#include <exception>
#include <memory>

#include "common/threading.h"
#include "cpu/conv.h"

#if defined(NNFORGE_OPENMP)
#include <omp.h>
#endif

namespace nnforge {
namespace conv_detail {

inline int thread_count(const ConvOptions& o) {
    return o.threads > 0 ? o.threads : get_num_threads();
}

inline Isa isa_of(const ConvOptions& o) { return o.force_isa ? o.isa : best_isa(); }

// Short copies and fills as plain loops: the rows here are often a few dozen
// elements, where a call to memcpy/memset costs more than the copy itself
// (CMakeLists.txt keeps GCC from turning these loops back into such calls).
template <typename T>
inline void copy_n(T* __restrict dst, const T* __restrict src, int64_t n) {
    for (int64_t e = 0; e < n; ++e) dst[e] = src[e];
}

template <typename T>
inline void zero_n(T* dst, int64_t n) {
    for (int64_t e = 0; e < n; ++e) dst[e] = T(0);
}

// body(task, scratch) for task in [0, tasks), spread over up to `threads`
// OpenMP threads (dynamically, in runs of consecutive tasks: about 8 runs per
// thread, so a thousand sub-microsecond tasks (depthwise planes) do not each
// pay for a trip to the shared counter); each thread gets its own
// `scratch` elements of T. Tasks must write disjoint memory. The first
// exception a task throws is rethrown here, after the loop.
template <typename T, typename Body>
void for_each_task(int64_t tasks, int threads, int64_t scratch, const Body& body) {
    if (tasks <= 0) return;
    if (threads > tasks) threads = static_cast<int>(tasks);
    if (threads < 1) threads = 1;
    std::unique_ptr<T[]> buffers(new T[static_cast<std::size_t>(threads * scratch + 1)]);
#if defined(NNFORGE_OPENMP)
    if (threads > 1) {
        std::exception_ptr error;
        int64_t run = tasks / (8 * static_cast<int64_t>(threads));
        if (run < 1) run = 1;
#pragma omp parallel num_threads(threads)
        {
            T* mine = buffers.get() + omp_get_thread_num() * scratch;
#pragma omp for schedule(dynamic, run)
            for (int64_t t = 0; t < tasks; ++t) {
                try {
                    body(t, mine);
                } catch (...) {
#pragma omp critical(nnforge_conv_error)
                    if (!error) error = std::current_exception();
                }
            }
        }
        if (error) std::rethrow_exception(error);
        return;
    }
#endif
    for (int64_t t = 0; t < tasks; ++t) body(t, buffers.get());
}

// The implicit-GEMM forward (conv_direct.cpp): stride 1, few output channels
// per group, where the im2col copy would cost as much as the product.
bool implicit_gemm_applies(const Conv2dShape& s);
template <typename T>
void implicit_gemm_forward(const T* x, const T* w, const T* bias, T* y, const Conv2dShape& s,
                           const ConvOptions& o);

// The direct path (conv_direct.cpp): one input channel per group.
template <typename T>
void direct_forward(const T* x, const T* w, const T* bias, T* y, const Conv2dShape& s,
                    const ConvOptions& o);
template <typename T>
void direct_backward_input(const T* dy, const T* w, const T* bias, T* dx, const Conv2dShape& s,
                           const ConvOptions& o);
template <typename T>
void direct_backward_weight(const T* x, const T* dy, T* dw, const Conv2dShape& s,
                            const ConvOptions& o);

}  // namespace conv_detail
}  // namespace nnforge
