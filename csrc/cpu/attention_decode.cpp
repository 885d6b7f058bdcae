// Decode-attention entry point (see attention_decode.h). The per-head loop is
// chosen once per dtype from best_isa(): attention_decode_avx512.cpp's build
// on CPUs with AVX-512, attention_decode_avx2.cpp's with AVX2 + FMA, else this
// file's portable build. Threads split the (b, h) heads.
#include "cpu/attention_decode.h"

#include <vector>

#include "common/cpu_features.h"
#include "common/threading.h"
#include "cpu/attention_decode_kernels.h"

namespace nnforge {
namespace {

template <typename T>
struct DecodeSet {
    attention_decode_detail::DecodeHead<T> head;
};

template <typename T>
void get_avx2(DecodeSet<T>* set) {
    attention_decode_detail::get_decode_kernels_avx2(&set->head);
}
template <typename T>
void get_avx512(DecodeSet<T>* set) {
    attention_decode_detail::get_decode_kernels_avx512(&set->head);
}

template <typename T>
attention_decode_detail::DecodeHead<T> head_kernel() {
    static const DecodeSet<T> set = [] {
        DecodeSet<T> portable{&attn_decode::head<T>};
#if defined(__x86_64__) || defined(_M_X64)
        return pick_isa_kernels(portable, &get_avx2<T>, &get_avx512<T>);
#else
        return portable;
#endif
    }();
    return set.head;
}

}  // namespace

template <typename T>
void sdpa_decode_forward(const SdpaArgs<T>& a, T* out, T* lse) {
    const int64_t heads = a.b * a.hq;
    if (heads == 0 || a.l == 0) return;
    const auto kernel = head_kernel<T>();
    int threads = get_num_threads();
    // A head is a few microseconds of work: below ~8 heads per thread the
    // parallel region costs more than it saves.
    if (threads > heads / 8) threads = static_cast<int>(heads / 8);
    if (threads < 1) threads = 1;
    const size_t slen = static_cast<size_t>(a.s > 0 ? a.s : 1);
    if (threads == 1) {
        std::vector<T> scores(slen);
        for (int64_t bh = 0; bh < heads; ++bh) kernel(a, bh, out, lse, scores.data());
        return;
    }
#if defined(NNFORGE_OPENMP)
#pragma omp parallel num_threads(threads)
#endif
    {
        std::vector<T> scores(slen);
#if defined(NNFORGE_OPENMP)
#pragma omp for schedule(static)
#endif
        for (int64_t bh = 0; bh < heads; ++bh) kernel(a, bh, out, lse, scores.data());
    }
}

template void sdpa_decode_forward<float>(const SdpaArgs<float>&, float*, float*);
template void sdpa_decode_forward<double>(const SdpaArgs<double>&, double*, double*);

}  // namespace nnforge
