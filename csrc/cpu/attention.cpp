// Scaled dot-product attention entry points (see attention.h; the tile loops
// are in attention_kernels.h).
//
// Dispatch: the kernel set is chosen once per dtype from best_isa(): the build
// from attention_avx512.cpp on CPUs with AVX-512, from attention_avx2.cpp with
// AVX2 + FMA, else this file's portable build.
//
// Threads: the forward's work items are (b, h, chunk of query rows): whole
// heads when there are at least 4 per thread, else each head's rows cut into
// chunks (multiples of kTileQ) so that every thread gets a few items. The
// backward's items are (b, key/value head), grouped when a mask gradient is
// summed over batch or heads (see sdpa_backward). Items are handed out dynamically
// (causal rows differ in cost); each thread has its own scratch (packed K/V
// tiles, score tile, accumulators), and no item writes another's outputs.
#include "cpu/attention.h"

#include <cstdlib>
#include <new>

#include "common/cpu_features.h"
#include "common/threading.h"
#include "cpu/attention_decode.h"
#include "cpu/attention_kernels.h"

#if defined(NNFORGE_OPENMP)
#include <omp.h>
#endif

namespace nnforge {
namespace {

template <typename T>
attention_detail::AttentionKernels<T> pick_kernels() {
#if defined(__x86_64__) || defined(_M_X64)
    return pick_isa_kernels(make_attention_kernels<T>(),
                            attention_detail::get_attention_kernels_avx2,
                            attention_detail::get_attention_kernels_avx512);
#else
    return make_attention_kernels<T>();
#endif
}

template <typename T>
const attention_detail::AttentionKernels<T>& kernels() {
    static const attention_detail::AttentionKernels<T> k = pick_kernels<T>();
    return k;
}

// Runs body(item, scratch) for item in [0, items) on up to `threads` threads,
// each with `scratch_len` zeroed elements of its own. Throws std::bad_alloc
// when a scratch buffer cannot be had.
template <typename T, typename Body>
void for_items(int64_t items, int64_t scratch_len, const Body& body) {
    int threads = get_num_threads();
    if (threads > items) threads = static_cast<int>(items);
    if (threads < 1) threads = 1;
    const size_t bytes = sizeof(T) * static_cast<size_t>(scratch_len > 0 ? scratch_len : 1);
    bool failed = false;
#if defined(NNFORGE_OPENMP)
#pragma omp parallel num_threads(threads)
#endif
    {
        T* scratch = static_cast<T*>(std::calloc(bytes / sizeof(T), sizeof(T)));
        if (scratch == nullptr) {
#if defined(NNFORGE_OPENMP)
#pragma omp atomic write
#endif
            failed = true;
        }
#if defined(NNFORGE_OPENMP)
#pragma omp for schedule(dynamic, 1)
#endif
        for (int64_t item = 0; item < items; ++item) {
            if (scratch != nullptr) body(item, scratch);
        }
        std::free(scratch);
    }
    if (failed) throw std::bad_alloc();
}

}  // namespace

template <typename T>
void sdpa_forward(const SdpaArgs<T>& a, T* out, T* lse) {
    const int64_t heads = a.b * a.hq;
    if (heads == 0 || a.l == 0) return;
    if (sdpa_decode_applies(a)) {  // a few rows (decoding): no tiles to pack
        sdpa_decode_forward(a, out, lse);
        return;
    }
    const auto& k = kernels<T>();
    const int64_t threads = get_num_threads();
    int64_t chunk = a.l;
    if (heads < 4 * threads) {
        const int64_t per_head = (4 * threads + heads - 1) / heads;
        chunk = (a.l + per_head - 1) / per_head;
        chunk = (chunk + attention_detail::kTileQ - 1) / attention_detail::kTileQ *
                attention_detail::kTileQ;
    }
    const int64_t chunks = (a.l + chunk - 1) / chunk;
    for_items<T>(heads * chunks, k.forward_scratch(a, chunk), [&](int64_t item, T* scratch) {
        const int64_t bh = item / chunks, c = item % chunks;
        const int64_t i0 = c * chunk, i1 = i0 + chunk < a.l ? i0 + chunk : a.l;
        k.forward_item(a, bh, i0, i1, out, lse, scratch);
    });
}

template <typename T>
void sdpa_backward(const SdpaArgs<T>& a, const T* out, const T* gout, const T* lse, T* dq, T* dk,
                   T* dv, const SdpaMaskGrad<T>& dmask) {
    const int64_t kv_heads = a.b * a.hk;
    if (kv_heads == 0) return;
    const auto& k = kernels<T>();
    // Items (b, hk) whose mask gradient slices alias (stride 0 along b or the heads) form one
    // group, run in order: per_b x per_h items each, groups x per_b x per_h = B Hk.
    const bool grad = dmask.data != nullptr;
    const int64_t per_b = grad && dmask.sb == 0 ? a.b : 1;
    const int64_t per_h = grad && dmask.sh == 0 ? a.hk : 1;
    const int64_t groups_h = a.hk / per_h;
    const int64_t groups = kv_heads / (per_b * per_h);
    for_items<T>(groups, k.backward_scratch(a), [&](int64_t group, T* scratch) {
        const int64_t gb = group / groups_h, gh = group % groups_h;
        for (int64_t ib = 0; ib < per_b; ++ib) {
            for (int64_t ih = 0; ih < per_h; ++ih) {
                const int64_t item = (gb * per_b + ib) * a.hk + gh * per_h + ih;
                k.backward_item(a, item, out, gout, lse, dq, dk, dv, dmask, scratch);
            }
        }
    });
}

#define NNFORGE_SDPA_INSTANTIATE(T)                                                           \
    template void sdpa_forward<T>(const SdpaArgs<T>&, T*, T*);                                \
    template void sdpa_backward<T>(const SdpaArgs<T>&, const T*, const T*, const T*, T*, T*, \
                                   T*, const SdpaMaskGrad<T>&);
NNFORGE_SDPA_INSTANTIATE(float)
NNFORGE_SDPA_INSTANTIATE(double)
#undef NNFORGE_SDPA_INSTANTIATE

}  // namespace nnforge
