// Whole-layer recurrent drivers on the GPU (see rnn.h for the layouts and
// equations): argument checks, the GEMMs (gemm.h) and the walk over the time
// steps. The pointwise step kernels and the column reductions are in
// rnn_kernels.cuh.
//
// Forward (T steps, B rows, G gate blocks of H):
//   A = X W_ih^T + b_ih                 one GEMM, (T B, I) x (I, G H) into `gates`
//   per step t:
//     A_t += h_{t-1} W_hh^T + b_hh     one GEMM (B, H) x (H, G H), beta = 1
//       (GRU: gh = h_{t-1} W_hh^T + b_hh into a (B, G H) scratch, beta = 0)
//     step_forward_kernel               gates in place, h/c state, y_t, cells, gh_n
//                                       (adds the split-K partials + b_hh when S > 1)
//   The state h (and c) lives in h_n (c_n), updated in place by the step
//   kernel; the next step's GEMM reads it after that kernel (one stream).
// Backward (dG_t: the gradient of the step's pre-activations):
//   per step t = T-1 .. 0:
//     step_backward_kernel              dG_t (GRU: dG_i,t and dG_h,t), dc in place,
//                                       next = the direct part of dh_{t-1}; its dh_t is
//                                       carry + the previous product's split-K partials
//     next += dG_h,t W_hh               one GEMM (B, G H) x (G H, H), beta = 1
//     swap(carry, next)
//   then over all steps at once:
//     dX = dG W_ih                      (T B, G H) x (G H, I)
//     dW_ih = dG^T X                    (G H, T B) x (T B, I), dG^T read in place
//     dW_hh = dG_h[1:]^T Y[:-1] + dG_h[0]^T h0   (H_prev = (h0, y_0 .. y_{T-2}): a row
//                                       that runs at step t ran at t - 1 too, and a
//                                       row that does not run has dG = 0)
//     db_ih = column sums of dG, db_hh = of dG_h, dpeephole = column dots with
//     c_{t-1} (p_i, p_f) or c_t (p_o); fixed-order sums (column_dot_kernel).
// Split-K: a step's product has only B rows (64 in the benchmark), which the
// SIMT GEMM's 128-column tiles cover with ceil(N / 128) blocks; when that is far
// below the multiprocessor count, K is split into S slices (split_k): one
// batched GEMM into S partial products, which the step kernel that consumes
// the product adds itself, in order (forward: into A_t with b_hh, or as gh for
// GRU; backward: the NEXT step's kernel adds them to its incoming dh, and after
// the last step add_partials_kernel folds them into dh0 once). So every step
// is two launches, the GEMM and the step kernel, in both directions.
// Everything is issued on the device's default stream; the host never waits.
#include <stdexcept>
#include <string>
#include <utility>

#include "cuda/check.cuh"
#include "cuda/context.cuh"
#include "cuda/dispatch.cuh"
#include "cuda/gemm.h"
#include "cuda/rnn.h"
#include "cuda/rnn_kernels.cuh"

namespace nnforge {
namespace cuda {
namespace {

using rnn_k::StepArgs;

constexpr int kStepThreads = 256;

[[noreturn]] void fail(const char* op, const std::string& what) {
    throw std::invalid_argument(std::string(op) + ": " + what);
}

struct Dims {
    std::int64_t T = 0, B = 0, I = 0, H = 0, G = 0, GH = 0;
    bool lstm = false, gru = false, peep = false;
    DType dtype = DType::Float32;
    int device = 0;
};

const char* mode_name(RnnCell m) {
    switch (m) {
        case RnnCell::rnn_tanh: return "rnn_tanh";
        case RnnCell::rnn_relu: return "rnn_relu";
        case RnnCell::lstm: return "lstm";
        default: return "gru";
    }
}

// `a` must be a C-contiguous array of `shape`, with the layer's dtype and device.
void check_array(const char* op, const char* arg, const DeviceArray& a, const Shape& shape,
                 const Dims& d) {
    if (a.shape != shape) {
        fail(op, std::string(arg) + " has shape " + shape_str(a.shape) + ", expected " +
                     shape_str(shape));
    }
    if (a.dtype != d.dtype) {
        fail(op, std::string(arg) + " has dtype " + dtype_name(a.dtype) + ", expected " +
                     dtype_name(d.dtype) + " (x's)");
    }
    if (a.device != d.device) {
        fail(op, std::string(arg) + " is on cuda:" + std::to_string(a.device) +
                     " but x on cuda:" + std::to_string(d.device));
    }
    if (!a.is_contiguous()) fail(op, std::string(arg) + " must be C-contiguous");
}

void check_optional(const char* op, const char* arg, const DeviceArray* a, const Shape& shape,
                    const Dims& d, bool allowed, const char* why) {
    if (!a) return;
    if (!allowed) fail(op, std::string(arg) + " must be None " + why);
    check_array(op, arg, *a, shape, d);
}

Dims check_layer(const char* op, const RnnLayer& L) {
    Dims d;
    d.lstm = L.mode == RnnCell::lstm;
    d.gru = L.mode == RnnCell::gru;
    const std::string mode = mode_name(L.mode);
    if (L.coupled && !d.lstm) fail(op, "coupled=True needs mode 'lstm', got '" + mode + "'");
    d.peep = L.peephole != nullptr;
    if (d.peep && !d.lstm) fail(op, "peephole must be None for mode '" + mode + "'");
    if (!L.x || !L.h0 || !L.w_ih || !L.w_hh) fail(op, "x, h0, w_ih and w_hh are required");
    const DeviceArray& x = *L.x;
    if (x.ndim() != 3) fail(op, "x must have shape (T, B, I), got " + shape_str(x.shape));
    if (x.dtype != DType::Float32 && x.dtype != DType::Float64) {
        fail(op, std::string("x has dtype ") + dtype_name(x.dtype) +
                     "; expected float32 or float64");
    }
    d.dtype = x.dtype;
    d.device = x.device;
    d.T = x.shape[0];
    d.B = x.shape[1];
    d.I = x.shape[2];
    check_array(op, "x", x, x.shape, d);
    if (L.w_hh->ndim() != 2) {
        fail(op, "w_hh must have shape (G*H, H), got " + shape_str(L.w_hh->shape));
    }
    d.H = L.w_hh->shape[1];
    d.G = d.lstm ? (L.coupled ? 3 : 4) : (d.gru ? 3 : 1);
    d.GH = d.G * d.H;
    check_array(op, "w_hh", *L.w_hh, {d.GH, d.H}, d);
    check_array(op, "w_ih", *L.w_ih, {d.GH, d.I}, d);
    check_array(op, "h0", *L.h0, {d.B, d.H}, d);
    if (d.lstm && !L.c0) fail(op, "c0 is required for mode 'lstm'");
    check_optional(op, "c0", L.c0, {d.B, d.H}, d, d.lstm, "unless mode is 'lstm'");
    check_optional(op, "b_ih", L.b_ih, {d.GH}, d, true, "");
    check_optional(op, "b_hh", L.b_hh, {d.GH}, d, true, "");
    check_optional(op, "peephole", L.peephole, {(L.coupled ? 2 : 3) * d.H}, d, true, "");
    if (L.lengths) {
        const DeviceArray& len = *L.lengths;
        if (len.dtype != DType::Int64 || len.shape != Shape{d.B} || !len.is_contiguous() ||
            len.device != d.device) {
            fail(op, "lengths must be a contiguous int64 (" + std::to_string(d.B) +
                         ",) array on x's device, got " + len.describe());
        }
    }
    return d;
}

// A C-contiguous (rows, cols) view of contiguous `a`, from element `first` of its data.
DeviceArray mat(const DeviceArray& a, std::int64_t rows, std::int64_t cols,
                std::int64_t first = 0) {
    const std::int64_t base = a.offset / static_cast<std::int64_t>(itemsize(a.dtype));
    return a.as_strided({rows, cols}, {cols, 1}, base + first);
}

// The transpose of mat(a, rows, cols, first): (cols, rows), read in place.
DeviceArray mat_t(const DeviceArray& a, std::int64_t rows, std::int64_t cols,
                  std::int64_t first = 0) {
    const std::int64_t base = a.offset / static_cast<std::int64_t>(itemsize(a.dtype));
    return a.as_strided({cols, rows}, {1, cols}, base + first);
}

void copy_async(const DeviceArray& dst, const DeviceArray& src, cudaStream_t stream) {
    if (src.nbytes() == 0) return;
    NNF_CUDA_CHECK(cudaMemcpyAsync(dst.data(), src.data(), src.nbytes(),
                                   cudaMemcpyDeviceToDevice, stream),
                   "cudaMemcpyAsync(rnn state)");
}

void zero_async(const DeviceArray& a, cudaStream_t stream) {
    if (a.nbytes() == 0) return;
    NNF_CUDA_CHECK(cudaMemsetAsync(a.data(), 0, a.nbytes(), stream), "cudaMemsetAsync(rnn)");
}

DeviceArray copy_of(const DeviceArray& src, cudaStream_t stream) {
    DeviceArray dst = DeviceArray::empty(src.shape, src.dtype, src.device);
    copy_async(dst, src, stream);
    return dst;
}

template <typename T> T* at(const DeviceArray& a, std::int64_t first = 0) {
    return static_cast<T*>(a.data()) + first;
}
template <typename T> const T* at_opt(const DeviceArray* a) {
    return a ? static_cast<const T*>(a->data()) : nullptr;
}

// One step kernel (forward or backward) for the layer's cell kind.
template <typename T, int K, bool kPeep, bool kCoupled>
void launch_one(bool fwd, const StepArgs<T>& s, int blocks, cudaStream_t stream) {
    if (fwd) {
        rnn_k::step_forward_kernel<T, K, kPeep, kCoupled><<<blocks, kStepThreads, 0, stream>>>(s);
    } else {
        rnn_k::step_backward_kernel<T, K, kPeep, kCoupled>
            <<<blocks, kStepThreads, 0, stream>>>(s);
    }
}

template <typename T>
void launch_step(const RnnLayer& L, const Dims& d, bool fwd, const StepArgs<T>& s,
                 cudaStream_t stream) {
    const long long n = s.B * s.H;
    if (n == 0) return;
    const int blocks = grid_for(n, kStepThreads, d.device);
    switch (L.mode) {
        case RnnCell::rnn_tanh: launch_one<T, rnn_k::kTanh, false, false>(fwd, s, blocks, stream); break;
        case RnnCell::rnn_relu: launch_one<T, rnn_k::kRelu, false, false>(fwd, s, blocks, stream); break;
        case RnnCell::gru: launch_one<T, rnn_k::kGru, false, false>(fwd, s, blocks, stream); break;
        case RnnCell::lstm:
            if (d.peep) {
                if (L.coupled) launch_one<T, rnn_k::kLstm, true, true>(fwd, s, blocks, stream);
                else launch_one<T, rnn_k::kLstm, true, false>(fwd, s, blocks, stream);
            } else {
                if (L.coupled) launch_one<T, rnn_k::kLstm, false, true>(fwd, s, blocks, stream);
                else launch_one<T, rnn_k::kLstm, false, false>(fwd, s, blocks, stream);
            }
            break;
    }
    check_launch(fwd ? "rnn_step_forward" : "rnn_step_backward", type_name<T>());
}

// out[j] = sum_r a[r lda + j] (b0 null) or sum_r a[r lda + j] w(r, j) (see column_dot_kernel).
template <typename T>
void column_dot(const T* a, std::int64_t lda, const T* b0, const T* b1, std::int64_t ldb,
                std::int64_t split, std::int64_t rows, std::int64_t n, T* out,
                cudaStream_t stream) {
    if (n == 0) return;
    const std::int64_t tiles = (n + rnn_k::kColTile - 1) / rnn_k::kColTile;
    if (tiles > 2147483647LL) throw std::invalid_argument("cuda.rnn_backward: too many columns");
    rnn_k::column_dot_kernel<T>
        <<<static_cast<unsigned>(tiles), dim3(rnn_k::kColTile, rnn_k::kRowLanes), 0, stream>>>(
            a, lda, b0, b1, ldb, split, rows, n, out);
    check_launch("rnn_column_dot", type_name<T>());
}

// The split-K factor S of a per-step product (M x N, depth K). The SIMT GEMM
// tiles C in blocks 128 columns wide (64 for double; the row tile shrinks to 64
// or 32 rows for small M, which leaves the block count below unchanged at
// M <= 128), so a step's B = 64 rows
// give only ceil(N / 128) blocks (4 for dh = dG W_hh at H = 512); splitting K
// into S slices multiplies that by S, up to about one block per
// multiprocessor, each slice at least 64 deep (8 K steps of the SIMT kernel;
// the S partial products cost S M N stores + loads, ~4 MB a step at B = 64).
// S divides K. At B = 64 on 132 SMs: H = 512 forward S = 8, backward S = 32,
// H = 1024 forward S = 4, backward S = 16, 128 blocks each.
int split_k(std::int64_t M, std::int64_t N, std::int64_t K, bool dbl, int device) {
    const std::int64_t tile = dbl ? 64 : 128;
    const std::int64_t blocks = ((M + tile - 1) / tile) * ((N + tile - 1) / tile);
    const std::int64_t sms = device_props(device).multiProcessorCount;
    int S = 1;
    while (S < 32 && blocks * S * 2 <= sms && K % (2 * S) == 0 && K / (2 * S) >= 64) S *= 2;
    return S;
}

// One step's recurrent product a (M, K) @ b (K, N); a, b 2-D views with any strides.
//   S == 1: out = (accumulate ? out : 0) + a @ b + bias: one GEMM with that epilogue
//           (out C-contiguous (M, N), bias (N,) or null).
//   S > 1:  part[s] = a[:, s K/S ...] @ b[s K/S ..., :] as one batched GEMM into `part`
//           (S M N elements, C-contiguous); out and bias are not touched: the step
//           kernel that consumes the product adds the S slices in order (StepArgs::part).
void step_product(const DeviceArray& a, const DeviceArray& b, const DeviceArray* bias,
                  bool accumulate, const DeviceArray& out, int S, const DeviceArray& part) {
    if (S == 1) {
        GemmOptions o;
        o.beta = accumulate ? 1.0 : 0.0;
        o.bias = bias;
        gemm(a, b, o, &out);
        return;
    }
    const std::int64_t M = a.shape[0], K = a.shape[1], N = b.shape[1], Ks = K / S;
    const std::int64_t item = static_cast<std::int64_t>(itemsize(a.dtype));
    const DeviceArray ab = a.as_strided({S, M, Ks}, {Ks * a.strides[1], a.strides[0],
                                                     a.strides[1]}, a.offset / item);
    const DeviceArray bb = b.as_strided({S, Ks, N}, {Ks * b.strides[0], b.strides[0],
                                                     b.strides[1]}, b.offset / item);
    const DeviceArray pv = part.as_strided({S, M, N}, {M * N, N, 1}, part.offset / item);
    gemm(ab, bb, GemmOptions{}, &pv);
}

template <typename F>
void dispatch_f32_f64(DType dt, F&& f) {
    if (dt == DType::Float64) f(double{});
    else f(float{});
}

}  // namespace

RnnCell parse_rnn_mode(const std::string& mode, const char* op) {
    if (mode == "rnn_tanh") return RnnCell::rnn_tanh;
    if (mode == "rnn_relu") return RnnCell::rnn_relu;
    if (mode == "lstm") return RnnCell::lstm;
    if (mode == "gru") return RnnCell::gru;
    fail(op, "mode must be 'rnn_tanh', 'rnn_relu', 'lstm' or 'gru', got '" + mode + "'");
}

RnnForwardResult rnn_forward(const RnnLayer& L, bool save) {
    const char* op = "cuda.rnn_forward";
    const Dims d = check_layer(op, L);
    const std::int64_t T = d.T, B = d.B, H = d.H, GH = d.GH;
    DeviceGuard guard(d.device);
    cudaStream_t stream = default_stream(d.device);

    RnnForwardResult r;
    r.y = DeviceArray::empty({T, B, H}, d.dtype, d.device);
    r.h_n = copy_of(*L.h0, stream);  // the running state h
    r.has_c_n = d.lstm;
    if (d.lstm) r.c_n = copy_of(*L.c0, stream);  // the running state c
    DeviceArray gates = DeviceArray::empty({T, B, GH}, d.dtype, d.device);
    DeviceArray cells, gh_n;
    if (d.lstm) cells = DeviceArray::empty({T, B, H}, d.dtype, d.device);
    if (d.gru) gh_n = DeviceArray::empty({T, B, H}, d.dtype, d.device);
    if (save) {
        r.saved = true;
        r.gates = gates;
        r.cells = cells;
        r.gh_n = gh_n;
    }
    if (T == 0 || B == 0 || H == 0) return r;

    dispatch_f32_f64(d.dtype, [&](auto tag) {
        using V = decltype(tag);
        // A = X W_ih^T + b_ih over all T B rows.
        GemmOptions proj;
        proj.bias = L.b_ih;
        const DeviceArray gates2 = mat(gates, T * B, GH);
        gemm(mat(*L.x, T * B, d.I), mat_t(*L.w_ih, GH, d.I), proj, &gates2);

        // A_t += h W_hh^T + b_hh  (GRU: gh = h W_hh^T + b_hh), split along H when small:
        // then the step kernel adds the S partial products and b_hh itself.
        const DeviceArray w_hh_t = mat_t(*L.w_hh, GH, H);  // (H, G H)
        const int S = split_k(B, GH, H, d.dtype == DType::Float64, d.device);
        DeviceArray part, gh;
        if (S > 1) part = DeviceArray::empty({S, B, GH}, d.dtype, d.device);
        else if (d.gru) gh = DeviceArray::empty({B, GH}, d.dtype, d.device);

        StepArgs<V> s;
        s.B = B;
        s.H = H;
        s.lengths = at_opt<std::int64_t>(L.lengths);
        s.peep = at_opt<V>(L.peephole);
        s.h = at<V>(r.h_n);
        if (d.lstm) s.c = at<V>(r.c_n);
        if (S > 1) {
            s.part = at<V>(part);
            s.S = S;
            s.part_stride = B * GH;
            s.part_bias = at_opt<V>(L.b_hh);
        } else if (d.gru) {
            s.gh = at<V>(gh);
        }
        for (std::int64_t t = 0; t < T; ++t) {
            const DeviceArray a_t = mat(gates, B, GH, t * B * GH);
            step_product(r.h_n, w_hh_t, L.b_hh, !d.gru, d.gru ? gh : a_t, S, part);
            s.t = t;
            s.gates = at<V>(gates, t * B * GH);
            s.y = at<V>(r.y, t * B * H);
            if (d.lstm) s.cell = at<V>(cells, t * B * H);
            if (d.gru) s.ghn = at<V>(gh_n, t * B * H);
            launch_step<V>(L, d, true, s, stream);
        }
    });
    return r;
}

RnnBackwardResult rnn_backward(const RnnLayer& L, const DeviceArray& y, const DeviceArray& gates,
                               const DeviceArray* cells, const DeviceArray* gh_n,
                               const DeviceArray& dy, const DeviceArray& dh_n,
                               const DeviceArray* dc_n, bool need_dx, bool need_dw) {
    const char* op = "cuda.rnn_backward";
    const Dims d = check_layer(op, L);
    const std::int64_t T = d.T, B = d.B, I = d.I, H = d.H, GH = d.GH, rows = T * B;
    check_array(op, "y", y, {T, B, H}, d);
    check_array(op, "gates", gates, {T, B, GH}, d);
    if (d.lstm && !cells) fail(op, "cells is required for mode 'lstm'");
    if (d.gru && !gh_n) fail(op, "gh_n is required for mode 'gru'");
    if (d.lstm && !dc_n) fail(op, "dc_n is required for mode 'lstm'");
    check_optional(op, "cells", cells, {T, B, H}, d, d.lstm, "unless mode is 'lstm'");
    check_optional(op, "gh_n", gh_n, {T, B, H}, d, d.gru, "unless mode is 'gru'");
    check_array(op, "dy", dy, {T, B, H}, d);
    check_array(op, "dh_n", dh_n, {B, H}, d);
    check_optional(op, "dc_n", dc_n, {B, H}, d, d.lstm, "unless mode is 'lstm'");
    DeviceGuard guard(d.device);
    cudaStream_t stream = default_stream(d.device);

    RnnBackwardResult r;
    r.has_dx = need_dx;
    r.has_dc0 = d.lstm;
    r.has_dw = need_dw;
    r.has_db_ih = need_dw && L.b_ih;
    r.has_db_hh = need_dw && L.b_hh;
    r.has_dpeephole = need_dw && d.peep;
    if (need_dx) r.dx = DeviceArray::empty({T, B, I}, d.dtype, d.device);
    if (need_dw) {
        r.dw_ih = DeviceArray::empty({GH, I}, d.dtype, d.device);
        r.dw_hh = DeviceArray::empty({GH, H}, d.dtype, d.device);
    }
    if (r.has_db_ih) r.db_ih = DeviceArray::empty({GH}, d.dtype, d.device);
    if (r.has_db_hh) r.db_hh = DeviceArray::empty({GH}, d.dtype, d.device);
    if (r.has_dpeephole) r.dpeephole = DeviceArray::empty(L.peephole->shape, d.dtype, d.device);
    // dc runs in place in dc0; carry / next hold dh (swapped each step).
    if (d.lstm) r.dc0 = copy_of(*dc_n, stream);
    DeviceArray carry = copy_of(dh_n, stream);

    if (T == 0 || B == 0) {  // nothing ran: the state's gradient passes through
        r.dh0 = carry;
        for (const DeviceArray* a : {&r.dw_ih, &r.dw_hh, &r.db_ih, &r.db_hh, &r.dpeephole}) {
            if (a->storage) zero_async(*a, stream);
        }
        return r;
    }

    DeviceArray next = DeviceArray::empty({B, H}, d.dtype, d.device);
    const DeviceArray dgi = DeviceArray::empty({T, B, GH}, d.dtype, d.device);
    const DeviceArray dgh = d.gru ? DeviceArray::empty({T, B, GH}, d.dtype, d.device) : dgi;

    dispatch_f32_f64(d.dtype, [&](auto tag) {
        using V = decltype(tag);
        // dh_{t-1} (next) += dG_h,t W_hh, split along G H when small: then the partial
        // products wait in `part` and the next step kernel adds them to its carry
        // (`pending` of them: none before the first step).
        const int S = split_k(B, H, GH, d.dtype == DType::Float64, d.device);
        DeviceArray part;
        if (S > 1) part = DeviceArray::empty({S, B, H}, d.dtype, d.device);
        int pending = 0;
        StepArgs<V> s;
        s.B = B;
        s.H = H;
        s.lengths = at_opt<std::int64_t>(L.lengths);
        s.peep = at_opt<V>(L.peephole);
        if (d.lstm) s.dc = at<V>(r.dc0);
        if (S > 1) {
            s.part = at<V>(part);
            s.part_stride = B * H;
        }
        for (std::int64_t t = T - 1; t >= 0; --t) {
            s.t = t;
            s.S = pending;
            s.act = at<V>(gates, t * B * GH);
            s.h_prev = t ? at<V>(y, (t - 1) * B * H) : at<V>(*L.h0);
            if (d.lstm) {
                s.c_prev = t ? at<V>(*cells, (t - 1) * B * H) : at<V>(*L.c0);
                s.c_cur = at<V>(*cells, t * B * H);
            }
            if (d.gru) s.ghn_saved = at<V>(*gh_n, t * B * H);
            s.dy = at<V>(dy, t * B * H);
            s.carry = at<V>(carry);
            s.dgi = at<V>(dgi, t * B * GH);
            s.dgh = at<V>(dgh, t * B * GH);
            s.dh_next = at<V>(next);
            launch_step<V>(L, d, false, s, stream);
            step_product(mat(dgh, B, GH, t * B * GH), *L.w_hh, nullptr, true, next, S, part);
            pending = S > 1 ? S : 0;
            std::swap(carry, next);
        }
        if (pending && B * H > 0) {  // the last product's partials: dh0 = carry + sum part
            rnn_k::add_partials_kernel<V><<<grid_for(B * H, kStepThreads, d.device),
                                            kStepThreads, 0, stream>>>(
                at<V>(carry), at<V>(part), pending, B * H);
            check_launch("rnn_add_partials", type_name<V>());
        }
        r.dh0 = carry;

        const DeviceArray dgi2 = mat(dgi, rows, GH);
        if (need_dx) {
            const DeviceArray dx2 = mat(r.dx, rows, I);
            gemm(dgi2, *L.w_ih, GemmOptions{}, &dx2);
        }
        if (!need_dw) return;
        gemm(mat_t(dgi, rows, GH), mat(*L.x, rows, I), GemmOptions{}, &r.dw_ih);
        GemmOptions acc;
        if (T > 1) {
            gemm(mat_t(dgh, rows - B, GH, B * GH), mat(y, rows - B, H), GemmOptions{}, &r.dw_hh);
            acc.beta = 1.0;
        }
        gemm(mat_t(dgh, B, GH), *L.h0, acc, &r.dw_hh);
        if (r.has_db_ih) {
            column_dot<V>(at<V>(dgi), GH, nullptr, nullptr, 0, 0, rows, GH, at<V>(r.db_ih),
                          stream);
        }
        if (r.has_db_hh) {  // the same sums as db_ih unless GRU (dG_h differs there)
            if (r.has_db_ih && !d.gru) copy_async(r.db_hh, r.db_ih, stream);
            else column_dot<V>(at<V>(dgh), GH, nullptr, nullptr, 0, 0, rows, GH,
                               at<V>(r.db_hh), stream);
        }
        if (r.has_dpeephole) {
            // dp_i = sum da_i c_{t-1}, dp_f = sum da_f c_{t-1}, dp_o = sum da_o c_t, with
            // c_{t-1} of row r = (t, b) at c0[b] for r < B, else cells[r - B].
            const int nblk = L.coupled ? 2 : 3;
            for (int k = 0; k < nblk; ++k) {
                const bool is_o = k == nblk - 1;
                const int gate = L.coupled ? k * 2 : (is_o ? 3 : k);  // coupled: f->0, o->2
                const V* a = at<V>(dgi, gate * H);
                V* out = at<V>(r.dpeephole, k * H);
                if (is_o) {
                    column_dot<V>(a, GH, at<V>(*cells), at<V>(*cells), H, 0, rows, H, out,
                                  stream);
                } else {
                    column_dot<V>(a, GH, at<V>(*L.c0), at<V>(*cells), H, B, rows, H, out,
                                  stream);
                }
            }
        }
    });
    return r;
}

DeviceArray rnn_time_reverse(const DeviceArray& a, const DeviceArray* lengths) {
    const char* op = "cuda.rnn_time_reverse";
    if (a.ndim() < 2 || !a.is_contiguous()) {
        fail(op, "a must be a C-contiguous (T, B, ...) array, got " + a.describe());
    }
    const std::int64_t T = a.shape[0], B = a.shape[1];
    if (lengths && (lengths->dtype != DType::Int64 || lengths->shape != Shape{B} ||
                    !lengths->is_contiguous() || lengths->device != a.device)) {
        fail(op, "lengths must be a contiguous int64 (" + std::to_string(B) +
                     ",) array on a's device, got " + lengths->describe());
    }
    DeviceArray out = DeviceArray::empty(a.shape, a.dtype, a.device);
    const std::int64_t n = a.numel();
    if (n == 0) return out;
    const std::int64_t F = n / (T * B);
    DeviceGuard guard(a.device);
    cudaStream_t stream = default_stream(a.device);
    dispatch_all(a.dtype, [&](auto tag) {
        using V = decltype(tag);
        const int blocks = grid_for(n, kStepThreads, a.device);
        rnn_k::time_reverse_kernel<V><<<blocks, kStepThreads, 0, stream>>>(
            static_cast<const V*>(a.data()), at_opt<std::int64_t>(lengths),
            static_cast<V*>(out.data()), T, B, F);
        check_launch("rnn_time_reverse", type_name<V>());
    });
    return out;
}

}  // namespace cuda
}  // namespace nnforge
