// Whole-layer recurrent drivers (see rnn.h for the layout): the GEMMs and the
// walk over time steps. The pointwise step updates are in rnn_kernels.h;
// best_isa() picks the build of them from rnn_avx512.cpp, rnn_avx2.cpp or this
// file's portable one (they differ only in vector width and FMA rounding).
//
// Forward (T steps, B rows, G gate blocks of H):
//   A = X W_ih^T + b          one GEMM over all T B rows, b = b_ih + b_hh
//                             (GRU: b = b_ih; b_hh stays with W_hh h, which
//                             the reset gate scales)
//   per step t: A_t += h_{t-1} W_hh^T  (GRU: gh = h_{t-1} W_hh^T + b_hh)
//               the fused update of rnn_kernels.h (A_t becomes the gates)
//   W_hh is packed once per call into the GEMM's micro-panels, with the
//   micro-tile chosen for B rows (gemm_pack_layout: 8 x 48 on AVX-512 for a
//   batch of 32), and every step's product reads it packed (gemm_prepacked).
// Backward (dG_t the gradient of the step's pre-activations A_t):
//   per step t = T-1 .. 0: dG_t from the pointwise backward, then
//               dh_{t-1} = (direct part) + dG_t W_hh     one GEMM (B x H),
//               W_hh packed once as in the forward
//   then, over all steps at once:
//               dX = dG W_ih,  dW_ih = dG^T X,  dW_hh = dG^T H_prev
//               (the last two as (X^T dG)^T, (H_prev^T dG)^T),
//               db_ih = sum_rows dG,  db_hh = sum_rows dG_h
//   with H_prev = (h0, y_0 .. y_{T-2}): a row that runs at step t ran at
//   t - 1 too, so y_{t-1} is its state there; rows that do not run have dG = 0.
#include "cpu/rnn.h"

#include <algorithm>
#include <utility>
#include <vector>

#include "common/cpu_features.h"
#include "cpu/gemm/gemm.h"
#include "cpu/rnn_kernels.h"

namespace nnforge {

namespace rnn_detail {
#if defined(__x86_64__) || defined(_M_X64)
template <typename T>
void step_forward_avx2(const RnnStep<T>& st);
template <typename T>
void step_backward_avx2(const RnnStep<T>& st);
template <typename T>
void step_forward_avx512(const RnnStep<T>& st);
template <typename T>
void step_backward_avx512(const RnnStep<T>& st);
#endif
}  // namespace rnn_detail

namespace {

template <typename T>
struct StepKernels {
    void (*forward)(const RnnStep<T>&);
    void (*backward)(const RnnStep<T>&);
};

template <typename T>
StepKernels<T> step_kernels() {
#if defined(__x86_64__) || defined(_M_X64)
    switch (best_isa()) {
        case Isa::avx512:
            return {rnn_detail::step_forward_avx512<T>, rnn_detail::step_backward_avx512<T>};
        case Isa::avx2:
            return {rnn_detail::step_forward_avx2<T>, rnn_detail::step_backward_avx2<T>};
        default:
            break;
    }
#endif
    return {step_forward_kernel<T>, step_backward_kernel<T>};
}

// Scratch arrays reused across calls on the same thread (no allocation, and
// no page faults on fresh memory, per call once they have grown): slot k of
// the calling thread's workspace, at least n elements, contents undefined.
template <typename T>
T* scratch(int slot, int64_t n) {
    thread_local std::vector<T> slots[6];
    std::vector<T>& v = slots[slot];
    if (static_cast<int64_t>(v.size()) < n) {
        v.clear();
        v.shrink_to_fit();
        v.resize(static_cast<size_t>(n));
    }
    return v.data();
}

// dst (cols, rows) = src (rows, cols)^T, in 32 x 32 tiles (both sides stay in cache).
template <typename T>
void transpose(const T* src, int64_t rows, int64_t cols, T* dst) {
    constexpr int64_t kTile = 32;
    for (int64_t i0 = 0; i0 < rows; i0 += kTile) {
        const int64_t i1 = std::min(rows, i0 + kTile);
        for (int64_t j0 = 0; j0 < cols; j0 += kTile) {
            const int64_t j1 = std::min(cols, j0 + kTile);
            for (int64_t i = i0; i < i1; ++i)
                for (int64_t j = j0; j < j1; ++j) dst[j * rows + i] = src[i * cols + j];
        }
    }
}

// out[j] (+)= sum over rows r of m[r, j], m (rows, n) row-major; rows in order,
// so the sum does not depend on the thread count.
template <typename T>
void column_sums(const T* m, int64_t rows, int64_t n, T* out) {
    std::fill(out, out + n, T(0));
    for (int64_t r = 0; r < rows; ++r) {
        const T* row = m + r * n;
        for (int64_t j = 0; j < n; ++j) out[j] += row[j];
    }
}

// out[j] = sum over rows r of a[r, j] * b[r, j], a with row stride lda, b with ldb.
template <typename T>
void column_dot(const T* a, int64_t lda, const T* b, int64_t ldb, int64_t rows, int64_t n,
                T* out) {
    std::fill(out, out + n, T(0));
    for (int64_t r = 0; r < rows; ++r) {
        const T* ar = a + r * lda;
        const T* br = b + r * ldb;
        for (int64_t j = 0; j < n; ++j) out[j] += ar[j] * br[j];
    }
}

}  // namespace

template <typename T>
void rnn_layer_forward(const RnnSpec& s, const RnnParams<T>& p, const T* x, const T* h0,
                       const T* c0, const int64_t* lengths, T* y, T* h_n, T* c_n,
                       const RnnSaved<T>& saved) {
    const int64_t steps = s.steps, B = s.batch, H = s.hidden, GH = s.gate_blocks() * H;
    const bool lstm = s.mode == RnnMode::lstm, gru = s.mode == RnnMode::gru;
    // h_n (and c_n) hold the running state.
    std::copy(h0, h0 + B * H, h_n);
    if (lstm) std::copy(c0, c0 + B * H, c_n);
    if (steps == 0 || B == 0 || H == 0) return;

    std::vector<T> bias;
    const T* proj_bias = gru ? p.b_ih : nullptr;
    if (!gru && (p.b_ih || p.b_hh)) {
        bias.assign(static_cast<size_t>(GH), T(0));
        for (int64_t j = 0; j < GH; ++j) {
            if (p.b_ih) bias[j] += p.b_ih[j];
            if (p.b_hh) bias[j] += p.b_hh[j];
        }
        proj_bias = bias.data();
    }
    // Inference (nothing saved): the gates, cells and gh_n live in scratch.
    RnnSaved<T> sv = saved;
    if (!sv.gates) sv.gates = scratch<T>(2, steps * B * GH);
    if (lstm && !sv.cells) sv.cells = scratch<T>(3, steps * B * H);
    if (gru && !sv.gh_n) sv.gh_n = scratch<T>(4, steps * B * H);
    // A = X W_ih^T + b over all T B rows.
    GemmArgs<T> proj;
    proj.m = steps * B;
    proj.n = GH;
    proj.k = s.input;
    proj.a = x;
    proj.rs_a = s.input;
    proj.b = p.w_ih;  // op(B) = W_ih^T: element (k, j) at w_ih[j * I + k]
    proj.rs_b = 1;
    proj.cs_b = s.input;
    proj.c = sv.gates;
    proj.rs_c = GH;
    proj.bias = proj_bias;
    gemm(proj);

    // W_hh^T (H, G H) packed once per call into the GEMM's micro-panels, for
    // the tile that fits B rows (see gemm_pack_layout): every step's product
    // then reads it as it is, with nothing to pack.
    const PackedLayout w_hh_layout = gemm_pack_layout<T>(B, H, GH);
    T* w_hh_packed = scratch<T>(0, w_hh_layout.size);
    gemm_pack_b(w_hh_layout, p.w_hh, 1, H, w_hh_packed);  // (k, j) at w_hh[j * H + k]
    GemmArgs<T> rec;  // A_t += h_{t-1} W_hh^T   (GRU: gh = h_{t-1} W_hh^T + b_hh)
    rec.m = B;
    rec.n = GH;
    rec.k = H;
    rec.a = h_n;
    rec.rs_a = H;
    rec.rs_c = GH;
    rec.beta = gru ? T(0) : T(1);
    rec.bias = gru ? p.b_hh : nullptr;
    T* gh = gru ? scratch<T>(1, B * GH) : nullptr;
    const StepKernels<T> kernels = step_kernels<T>();
    RnnStep<T> st;
    st.s = s;
    st.lengths = lengths;
    st.peep = p.peephole;
    st.h = h_n;
    st.c = c_n;
    st.gh = gh;
    for (int64_t t = 0; t < steps; ++t) {
        T* a_t = sv.gates + t * B * GH;
        rec.c = gru ? gh : a_t;
        gemm_prepacked(rec, w_hh_layout, w_hh_packed);
        if (gru) st.ghn = sv.gh_n + t * B * H;
        st.t = t;
        st.gates = a_t;
        st.y = y + t * B * H;
        if (lstm) st.cell = sv.cells + t * B * H;
        kernels.forward(st);
    }
}

template <typename T>
void rnn_layer_backward(const RnnSpec& s, const RnnParams<T>& p, const T* x, const T* h0,
                        const T* c0, const int64_t* lengths, const T* y,
                        const RnnSaved<T>& saved, const T* dy, const T* dh_n, const T* dc_n,
                        const RnnGrads<T>& g) {
    const int64_t steps = s.steps, B = s.batch, I = s.input, H = s.hidden;
    const int64_t GH = s.gate_blocks() * H, rows = steps * B;
    const bool lstm = s.mode == RnnMode::lstm, gru = s.mode == RnnMode::gru;
    if (steps == 0) {  // nothing ran: the state's gradient passes through
        std::copy(dh_n, dh_n + B * H, g.dh0);
        if (lstm) std::copy(dc_n, dc_n + B * H, g.dc0);
        if (g.dw_ih) std::fill(g.dw_ih, g.dw_ih + GH * I, T(0));
        if (g.dw_hh) std::fill(g.dw_hh, g.dw_hh + GH * H, T(0));
        if (g.db_ih) std::fill(g.db_ih, g.db_ih + GH, T(0));
        if (g.db_hh) std::fill(g.db_hh, g.db_hh + GH, T(0));
        if (g.dpeephole) std::fill(g.dpeephole, g.dpeephole + s.peephole_size(), T(0));
        return;
    }

    T* carry = scratch<T>(0, B * H);
    T* next = scratch<T>(1, B * H);
    T* dc = lstm ? scratch<T>(2, B * H) : nullptr;
    std::copy(dh_n, dh_n + B * H, carry);
    if (lstm) std::copy(dc_n, dc_n + B * H, dc);
    T* dgi = scratch<T>(3, rows * GH);
    T* dgh = gru ? scratch<T>(4, rows * GH) : dgi;

    // W_hh (G H, H) packed once for the per-step dh GEMM (as in the forward).
    const PackedLayout w_hh_layout = gemm_pack_layout<T>(B, GH, H);
    T* w_hh_packed = scratch<T>(5, w_hh_layout.size);
    gemm_pack_b(w_hh_layout, p.w_hh, H, 1, w_hh_packed);
    GemmArgs<T> rec;  // dh_{t-1} += dG_h W_hh
    rec.m = B;
    rec.n = H;
    rec.k = GH;
    rec.rs_a = GH;
    rec.c = next;
    rec.rs_c = H;
    rec.beta = T(1);

    const StepKernels<T> kernels = step_kernels<T>();
    RnnStep<T> st;
    st.s = s;
    st.lengths = lengths;
    st.peep = p.peephole;
    st.dc = dc;
    for (int64_t t = steps - 1; t >= 0; --t) {
        st.t = t;
        st.act = saved.gates + t * B * GH;
        st.h_prev = t ? y + (t - 1) * B * H : h0;
        if (lstm) {
            st.c_prev = t ? saved.cells + (t - 1) * B * H : c0;
            st.c_cur = saved.cells + t * B * H;
        }
        if (gru) st.ghn_saved = saved.gh_n + t * B * H;
        st.dy = dy + t * B * H;
        st.dh_carry = carry;
        st.dgi = dgi + t * B * GH;
        st.dgh = dgh + t * B * GH;
        st.dh_next = next;
        kernels.backward(st);
        rec.a = dgh + t * B * GH;
        rec.c = next;
        gemm_prepacked(rec, w_hh_layout, w_hh_packed);
        std::swap(carry, next);
    }
    std::copy(carry, carry + B * H, g.dh0);
    if (lstm) std::copy(dc, dc + B * H, g.dc0);

    // dX = dG W_ih,  dW_ih = dG^T X,  dW_hh = dG_h^T H_prev.
    // (A null gradient pointer: not wanted, its GEMM is skipped.)
    if (g.dx) gemm(false, false, rows, I, GH, T(1), dgi, GH, p.w_ih, I, T(0), g.dx, I);
    // The weight gradients are computed transposed, dW^T = X^T dG (and H_prev^T dG_h),
    // then transposed out: X^T is read in place (rows of X contiguous) and dG
    // packs along its rows, where dG^T X would pack dG^T across rows G H apart
    // (on Zen 4 about 10% faster over T B = 3200 rows, counting the transposes).
    T* wt = scratch<T>(1, std::max(I, H) * GH);  // (`next` is done with)
    if (g.dw_ih) {
        gemm(true, false, I, GH, rows, T(1), x, I, dgi, GH, T(0), wt, GH);
        transpose(wt, I, GH, g.dw_ih);
    }
    if (g.dw_hh) {
        gemm(true, false, H, GH, rows - B, T(1), y, H, dgh + B * GH, GH, T(0), wt, GH);
        gemm(true, false, H, GH, std::min(B, rows), T(1), h0, H, dgh, GH, T(1), wt, GH);
        transpose(wt, H, GH, g.dw_hh);
    }
    if (g.db_ih) column_sums(dgi, rows, GH, g.db_ih);
    if (g.db_hh) {  // the same sums as db_ih unless GRU (dG_h differs there)
        if (g.db_ih && dgh == dgi) std::copy(g.db_ih, g.db_ih + GH, g.db_hh);
        else column_sums(dgh, rows, GH, g.db_hh);
    }

    if (s.peephole && g.dpeephole) {
        // dp_i = sum da_i c_{t-1}, dp_f = sum da_f c_{t-1}, dp_o = sum da_o c_t.
        // C_prev = (c0, c_0 .. c_{T-2}) as for H_prev; step 0 is added separately.
        const int64_t nblk = s.coupled ? 2 : 3;
        std::vector<T> part(static_cast<size_t>(H));
        for (int64_t k = 0; k < nblk; ++k) {
            const bool is_o = k == nblk - 1;
            const int64_t gate = s.coupled ? k * 2 : (is_o ? 3 : k);  // f->0, o->2 (coupled)
            T* out = g.dpeephole + k * H;
            const T* dg = dgi + gate * H;
            if (is_o) {
                column_dot(dg, GH, saved.cells, H, rows, H, out);
            } else {
                column_dot(dg + B * GH, GH, saved.cells, H, rows - B, H, out);
                column_dot(dg, GH, c0, H, std::min(B, rows), H, part.data());
                for (int64_t j = 0; j < H; ++j) out[j] += part[j];
            }
        }
    }
}

template void rnn_layer_forward<float>(const RnnSpec&, const RnnParams<float>&, const float*,
                                       const float*, const float*, const int64_t*, float*,
                                       float*, float*, const RnnSaved<float>&);
template void rnn_layer_forward<double>(const RnnSpec&, const RnnParams<double>&, const double*,
                                        const double*, const double*, const int64_t*, double*,
                                        double*, double*, const RnnSaved<double>&);
template void rnn_layer_backward<float>(const RnnSpec&, const RnnParams<float>&, const float*,
                                        const float*, const float*, const int64_t*,
                                        const float*, const RnnSaved<float>&, const float*,
                                        const float*, const float*, const RnnGrads<float>&);
template void rnn_layer_backward<double>(const RnnSpec&, const RnnParams<double>&,
                                         const double*, const double*, const double*,
                                         const int64_t*, const double*,
                                         const RnnSaved<double>&, const double*, const double*,
                                         const double*, const RnnGrads<double>&);

}  // namespace nnforge
