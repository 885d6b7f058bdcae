// The fused pointwise part of one recurrent time step (see rnn.h for the
// equations), forward and backward side by side, plus the column reductions of
// the bias / peephole gradients and the per-row time reversal. Included by
// rnn.cu only.
//
// Step kernels: one thread per (row b, hidden unit j) of the B x H step, a
// grid-stride loop over the B H items (int64 indices). The thread reads and
// writes the G gate entries (b, g H + j) of its unit (coalesced across j) and
// its own element of the state (h, c, dc), so no two threads touch the same
// element: no races, no shared memory. A row b that does not run at step t
// (t >= lengths[b]) writes y = 0 and keeps its state (forward), or writes
// zero gate gradients and passes dh through unchanged (backward).
//
// Split-K folded in: when the step's recurrent product was split along K
// (rnn.cu, split_k), the GEMM leaves S partial products in `part` (S slices of
// `part_stride` elements, laid out like the product) and the step kernel adds
// them itself, in the fixed order s = 0 .. S-1 (deterministic), instead of a
// separate reduction launch and a round trip through the destination:
//   forward   pre-activation = A_t + part_0 + ... + part_{S-1} + b_hh
//             (GRU: gh = part_0 + ... + b_hh; A_t stays the input projection)
//   backward  dh_t (from step t + 1) = carry + part_0 + ... + part_{S-1}
// With S == 0 the GEMM wrote its result in place (A_t, gh or carry) and
// `part` is not read.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

namespace nnforge {
namespace cuda {
namespace rnn_k {

// Kinds of step (template parameter): the RNN/LSTM/GRU cells of rnn.h.
enum Kind : int { kTanh = 0, kRelu = 1, kLstm = 2, kGru = 3 };

__device__ __forceinline__ float sigm(float x) { return 1.0f / (1.0f + expf(-x)); }
__device__ __forceinline__ double sigm(double x) { return 1.0 / (1.0 + exp(-x)); }
__device__ __forceinline__ float tanh_(float x) { return tanhf(x); }
__device__ __forceinline__ double tanh_(double x) { return tanh(x); }

__device__ __forceinline__ bool stopped(const std::int64_t* lengths, std::int64_t b,
                                        std::int64_t t) {
    return lengths != nullptr && t >= lengths[b];
}

template <typename T>
struct StepArgs {
    std::int64_t B = 0, H = 0, t = 0;
    const std::int64_t* lengths = nullptr;
    const T* peep = nullptr;
    // split-K partial products of this step's recurrent product (see above)
    const T* part = nullptr;
    int S = 0;
    std::int64_t part_stride = 0;  // elements per slice
    const T* part_bias = nullptr;  // forward: b_hh (G H) added after the partials, or null
    // forward
    T* gates = nullptr;      // (B, G H): pre-activations in, activations out
    const T* gh = nullptr;   // (B, 3 H) GRU: h_{t-1} W_hh^T + b_hh (S == 0 only)
    T* h = nullptr;          // (B, H) state, in place
    T* c = nullptr;          // (B, H) LSTM cell state, in place
    T* y = nullptr;          // (B, H) y_t
    T* cell = nullptr;       // (B, H) saved c_t (LSTM)
    T* ghn = nullptr;        // (B, H) saved gh_n (GRU)
    // backward
    const T* act = nullptr;        // (B, G H) saved activations
    const T* h_prev = nullptr;     // (B, H) (GRU)
    const T* c_prev = nullptr;     // (B, H) (LSTM)
    const T* c_cur = nullptr;      // (B, H) (LSTM)
    const T* ghn_saved = nullptr;  // (B, H) (GRU)
    const T* dy = nullptr;         // (B, H)
    const T* carry = nullptr;      // (B, H) dh from step t + 1 (plus the partials when S)
    T* dc = nullptr;               // (B, H) dc_t in, dc_{t-1} out (LSTM)
    T* dgi = nullptr;              // (B, G H) dG for W_ih / b_ih
    T* dgh = nullptr;              // (B, G H) dG for W_hh / b_hh (== dgi unless GRU)
    T* dh_next = nullptr;          // (B, H) the part of dh_{t-1} not through W_hh
};

// v + part[0][e] + ... + part[S-1][e] (+ bias[col] when bias): the split-K
// partial products of element e added in order.
template <typename T>
__device__ __forceinline__ T with_parts(T v, const StepArgs<T>& s, std::int64_t e,
                                        std::int64_t col) {
    for (int k = 0; k < s.S; ++k) v += s.part[k * s.part_stride + e];
    if (s.part_bias) v += s.part_bias[col];
    return v;
}

// ---- forward step
template <typename T, int K, bool kPeep, bool kCoupled>
__global__ void step_forward_kernel(StepArgs<T> s) {
    constexpr int G = K == kLstm ? (kCoupled ? 3 : 4) : (K == kGru ? 3 : 1);
    const std::int64_t H = s.H, GH = G * H, n = s.B * H;
    for (std::int64_t idx = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x;
         idx < n; idx += static_cast<std::int64_t>(gridDim.x) * blockDim.x) {
        const std::int64_t b = idx / H, j = idx - b * H;
        if (stopped(s.lengths, b, s.t)) {
            s.y[idx] = T(0);
            if constexpr (K == kLstm) s.cell[idx] = s.c[idx];
            continue;
        }
        T* g = s.gates + b * GH + j;  // gate block k of this unit at g[k * H]
        // Pre-activation of gate block k: A_t (+ the split-K partials + b_hh).
        auto pre = [&](int k) -> T {
            if (s.S == 0) return g[k * H];
            return with_parts(g[k * H], s, b * GH + k * H + j, k * H + j);
        };
        if constexpr (K == kTanh || K == kRelu) {
            const T a = pre(0);
            const T v = K == kRelu ? (a > T(0) ? a : T(0)) : tanh_(a);
            g[0] = v;
            s.h[idx] = v;
            s.y[idx] = v;
        } else if constexpr (K == kLstm) {
            // Blocks: (i, f, g, o), coupled (f, g, o).
            constexpr int kF = kCoupled ? 0 : 1, kG = kF + 1, kO = kF + 2;
            const T cp = s.c[idx];
            T af = pre(kF), ao = pre(kO);
            if constexpr (kPeep) af += s.peep[(kCoupled ? 0 : 1) * H + j] * cp;
            const T f = sigm(af);
            T i;
            if constexpr (kCoupled) {
                i = T(1) - f;
            } else {
                T ai = pre(0);
                if constexpr (kPeep) ai += s.peep[j] * cp;
                i = sigm(ai);
                g[0] = i;
            }
            const T gg = tanh_(pre(kG));
            const T cn = f * cp + i * gg;
            if constexpr (kPeep) ao += s.peep[(kCoupled ? 1 : 2) * H + j] * cn;
            const T o = sigm(ao);
            const T hn = o * tanh_(cn);
            g[kF * H] = f;
            g[kG * H] = gg;
            g[kO * H] = o;
            s.c[idx] = cn;
            s.cell[idx] = cn;
            s.h[idx] = hn;
            s.y[idx] = hn;
        } else {  // GRU
            // gh = h_{t-1} W_hh^T + b_hh, block k (from the partials when S).
            auto ghk = [&](int k) -> T {
                if (s.S == 0) return s.gh[b * GH + k * H + j];
                return with_parts(T(0), s, b * GH + k * H + j, k * H + j);
            };
            const T r = sigm(g[0] + ghk(0));
            const T z = sigm(g[H] + ghk(1));
            const T hn_lin = ghk(2);
            const T nn = tanh_(g[2 * H] + r * hn_lin);
            const T hv = (T(1) - z) * nn + z * s.h[idx];
            g[0] = r;
            g[H] = z;
            g[2 * H] = nn;
            s.ghn[idx] = hn_lin;
            s.h[idx] = hv;
            s.y[idx] = hv;
        }
    }
}

// ---- backward step (dh = carry + dy, the total gradient reaching h_t)
//   RNN   da = dh (1 - h^2) | dh [h > 0];                         dh_next = 0
//   LSTM  da_o = dh tanh(c_t) o (1 - o)
//         dc   = dc_t + dh o (1 - tanh^2 c_t) + p_o da_o
//         da_g = dc i (1 - g^2), da_i = dc g i (1 - i), da_f = dc c_{t-1} f (1 - f)
//         (coupled: da_f = dc (c_{t-1} - g) f (1 - f))
//         dc_{t-1} = dc f + p_i da_i + p_f da_f;                   dh_next = 0
//   GRU   da_n = dh (1 - z)(1 - n^2), da_z = dh (h_{t-1} - n) z (1 - z),
//         da_r = da_n gh_n r (1 - r); dgi = (da_r, da_z, da_n),
//         dgh = (da_r, da_z, r da_n);                              dh_next = z dh
template <typename T, int K, bool kPeep, bool kCoupled>
__global__ void step_backward_kernel(StepArgs<T> s) {
    constexpr int G = K == kLstm ? (kCoupled ? 3 : 4) : (K == kGru ? 3 : 1);
    const std::int64_t H = s.H, GH = G * H, n = s.B * H;
    for (std::int64_t idx = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x;
         idx < n; idx += static_cast<std::int64_t>(gridDim.x) * blockDim.x) {
        const std::int64_t b = idx / H, j = idx - b * H;
        T* dgi = s.dgi + b * GH + j;
        if (stopped(s.lengths, b, s.t)) {  // no gate gradient; dh and dc pass through
#pragma unroll
            for (int k = 0; k < G; ++k) dgi[k * H] = T(0);
            if constexpr (K == kGru) {
                T* dgh = s.dgh + b * GH + j;
#pragma unroll
                for (int k = 0; k < G; ++k) dgh[k * H] = T(0);
            }
            s.dh_next[idx] = s.S ? with_parts(s.carry[idx], s, idx, 0) : s.carry[idx];
            continue;
        }
        const T dh = (s.S ? with_parts(s.carry[idx], s, idx, 0) : s.carry[idx]) + s.dy[idx];
        const T* act = s.act + b * GH + j;
        if constexpr (K == kTanh || K == kRelu) {
            const T v = act[0];
            dgi[0] = K == kRelu ? (v > T(0) ? dh : T(0)) : dh * (T(1) - v * v);
            s.dh_next[idx] = T(0);
        } else if constexpr (K == kLstm) {
            constexpr int kF = kCoupled ? 0 : 1, kG = kF + 1, kO = kF + 2;
            const T f = act[kF * H], g = act[kG * H], o = act[kO * H];
            const T tc = tanh_(s.c_cur[idx]);
            const T dao = dh * tc * o * (T(1) - o);
            T dct = s.dc[idx] + dh * o * (T(1) - tc * tc);
            if constexpr (kPeep) dct += s.peep[(kCoupled ? 1 : 2) * H + j] * dao;
            const T cp = s.c_prev[idx];
            T i, daf;
            T dcp = dct * f;
            if constexpr (kCoupled) {
                i = T(1) - f;
                daf = dct * (cp - g) * f * (T(1) - f);
            } else {
                i = act[0];
                const T dai = dct * g * i * (T(1) - i);
                daf = dct * cp * f * (T(1) - f);
                if constexpr (kPeep) dcp += s.peep[j] * dai;
                dgi[0] = dai;
            }
            if constexpr (kPeep) dcp += s.peep[(kCoupled ? 0 : 1) * H + j] * daf;
            dgi[kF * H] = daf;
            dgi[kG * H] = dct * i * (T(1) - g * g);
            dgi[kO * H] = dao;
            s.dc[idx] = dcp;
            s.dh_next[idx] = T(0);
        } else {  // GRU
            const T r = act[0], z = act[H], nn = act[2 * H];
            const T dan = dh * (T(1) - z) * (T(1) - nn * nn);
            const T daz = dh * (s.h_prev[idx] - nn) * z * (T(1) - z);
            const T dar = dan * s.ghn_saved[idx] * r * (T(1) - r);
            T* dgh = s.dgh + b * GH + j;
            dgi[0] = dar;
            dgi[H] = daz;
            dgi[2 * H] = dan;
            dgh[0] = dar;
            dgh[H] = daz;
            dgh[2 * H] = r * dan;
            s.dh_next[idx] = z * dh;
        }
    }
}

// ---- column reductions (bias and peephole gradients), deterministic:
//   out[j] = sum_{r < rows} a[r * lda + j] * w(r, j),
//   w(r, j) = 1 without b0, else (r < split ? b0[r * ldb + j] : b1[(r - split) * ldb + j]).
// Block (kColTile, kRowLanes) owns kColTile columns (blockIdx.x); thread (tx, ty)
// sums rows ty, ty + kRowLanes, ... of column j (coalesced across tx), then
// the kRowLanes partials are added in shared memory in a fixed order.
constexpr int kColTile = 32, kRowLanes = 8;

template <typename T>
__global__ void column_dot_kernel(const T* __restrict__ a, std::int64_t lda,
                                  const T* __restrict__ b0, const T* __restrict__ b1,
                                  std::int64_t ldb, std::int64_t split, std::int64_t rows,
                                  std::int64_t n, T* __restrict__ out) {
    __shared__ T part[kRowLanes][kColTile + 1];
    const int tx = threadIdx.x, ty = threadIdx.y;
    const std::int64_t j = static_cast<std::int64_t>(blockIdx.x) * kColTile + tx;
    T acc = T(0);
    if (j < n) {
        for (std::int64_t r = ty; r < rows; r += kRowLanes) {
            T v = a[r * lda + j];
            if (b0) v *= r < split ? b0[r * ldb + j] : b1[(r - split) * ldb + j];
            acc += v;
        }
    }
    part[ty][tx] = acc;
    __syncthreads();
    if (ty == 0 && j < n) {
        for (int k = 1; k < kRowLanes; ++k) acc += part[k][tx];
        out[j] = acc;
    }
}

// ---- the split-K partials left over after the last backward step, once per call:
//   dst[i] += part[0][i] + ... + part[S-1][i]   (in order; n elements, C-contiguous)
// (Every other step's partials are added by the next step kernel, see above.)
template <typename T>
__global__ void add_partials_kernel(T* __restrict__ dst, const T* __restrict__ part, int S,
                                    std::int64_t n) {
    for (std::int64_t idx = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x;
         idx < n; idx += static_cast<std::int64_t>(gridDim.x) * blockDim.x) {
        T v = dst[idx];
        for (int s = 0; s < S; ++s) v += part[s * n + idx];
        dst[idx] = v;
    }
}

// ---- per-row time reversal of a C-contiguous (T, B, F) array:
//   out[t, b, :] = a[src, b, :], src = L - 1 - t for t < L else t, L = clamp(lengths[b], 0, T)
template <typename T>
__global__ void time_reverse_kernel(const T* __restrict__ a, const std::int64_t* lengths,
                                    T* __restrict__ out, std::int64_t steps, std::int64_t B,
                                    std::int64_t F) {
    const std::int64_t n = steps * B * F;
    for (std::int64_t idx = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x;
         idx < n; idx += static_cast<std::int64_t>(gridDim.x) * blockDim.x) {
        const std::int64_t f = idx % F, tb = idx / F;
        const std::int64_t b = tb % B, t = tb / B;
        std::int64_t L = steps;
        if (lengths) {
            L = lengths[b];
            L = L < 0 ? 0 : (L > steps ? steps : L);
        }
        const std::int64_t src = t < L ? L - 1 - t : t;
        out[idx] = a[(src * B + b) * F + f];
    }
}

}  // namespace rnn_k
}  // namespace cuda
}  // namespace nnforge
