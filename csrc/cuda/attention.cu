// Attention's host side (attention.h): argument checks, the mask's broadcast
// strides, scratch buffers (lse, D, the dQ and mask-gradient accumulators)
// and the kernel launches (attention_fwd.cu, attention_bwd.cu).
#include <cmath>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <type_traits>

#include "cuda/attention.h"
#include "cuda/attention_common.cuh"
#include "cuda/check.cuh"
#include "cuda/context.cuh"
#include "cuda/copy.h"
#include "cuda/dispatch.cuh"

namespace nnforge {
namespace cuda {
namespace {

[[noreturn]] void fail(const char* op, const std::string& what) {
    throw std::invalid_argument(std::string(op) + ": " + what);
}

// Element stride of dim d, 0 where the array has size 1 there (broadcast).
std::int64_t bstride(const DeviceArray& a, int d) { return a.shape[d] == 1 ? 0 : a.strides[d]; }

struct Dims {
    int b, hq, hk, l, s, e, ev;
};

Dims check_qkv(const char* op, const DeviceArray& q, const DeviceArray& k, const DeviceArray& v) {
    for (const DeviceArray* x : {&q, &k, &v}) {
        if (x->ndim() != 4) {
            fail(op, "q, k, v must be 4-D (B, H, rows, dim), got shapes " + shape_str(q.shape) +
                         ", " + shape_str(k.shape) + ", " + shape_str(v.shape));
        }
    }
    if (k.dtype != q.dtype || v.dtype != q.dtype) {
        fail(op, std::string("q, k, v must share a dtype, got ") + dtype_name(q.dtype) + ", " +
                     dtype_name(k.dtype) + ", " + dtype_name(v.dtype));
    }
    if (q.dtype != DType::Float32 && q.dtype != DType::Float64 && q.dtype != DType::BFloat16 &&
        q.dtype != DType::Float16) {
        fail(op, std::string("expected float32, float64, bfloat16 or float16, got ") +
                     dtype_name(q.dtype));
    }
    if (k.device != q.device || v.device != q.device) fail(op, "q, k, v must be on one device");
    const Shape &qs = q.shape, &ks = k.shape, &vs = v.shape;
    if (ks[0] != qs[0] || vs[0] != qs[0] || vs[1] != ks[1] || vs[2] != ks[2] || ks[3] != qs[3]) {
        fail(op, "q of shape " + shape_str(qs) + ", k of shape " + shape_str(ks) + " and v of shape " +
                     shape_str(vs) + " do not match (need q (B, Hq, L, E), k (B, Hk, S, E), v (B, Hk, S, Ev))");
    }
    if (ks[1] == 0 || qs[1] % ks[1] != 0) {
        fail(op, "q's heads (" + std::to_string(qs[1]) + ") must be a multiple of k's (" +
                     std::to_string(ks[1]) + ")");
    }
    const std::int64_t max_dim = q.dtype == DType::Float64 ? 128 : 256;
    if (qs[3] < 1 || qs[3] > max_dim || vs[3] < 1 || vs[3] > max_dim) {
        fail(op, "head dims must be in [1, " + std::to_string(max_dim) + "] for " +
                     dtype_name(q.dtype) + ", got E = " + std::to_string(qs[3]) + ", Ev = " +
                     std::to_string(vs[3]));
    }
    for (const DeviceArray* x : {&q, &k, &v}) {
        if (x->shape[3] > 1 && x->strides[3] != 1) {
            fail(op, "the last dim of q, k and v must be contiguous, got strides " +
                         shape_str(x->strides) + " for shape " + shape_str(x->shape));
        }
    }
    const std::int64_t lim = 1LL << 30;
    if (qs[0] * qs[1] > lim || qs[2] > lim || ks[2] > lim) fail(op, "too large");
    return Dims{static_cast<int>(qs[0]), static_cast<int>(qs[1]), static_cast<int>(ks[1]),
                static_cast<int>(qs[2]), static_cast<int>(ks[2]), static_cast<int>(qs[3]),
                static_cast<int>(vs[3])};
}

void check_mask(const char* op, const DeviceArray& m, const DeviceArray& q, const Dims& d) {
    if (m.ndim() != 4) fail(op, "mask must be 4-D, got shape " + shape_str(m.shape));
    const std::int64_t want[4] = {d.b, d.hq, d.l, d.s};
    for (int i = 0; i < 3; ++i) {
        if (m.shape[i] != 1 && m.shape[i] != want[i]) {
            fail(op, "mask of shape " + shape_str(m.shape) + " does not broadcast to (" +
                         std::to_string(d.b) + ", " + std::to_string(d.hq) + ", " +
                         std::to_string(d.l) + ", " + std::to_string(d.s) + ")");
        }
    }
    if (m.shape[3] != d.s) {
        fail(op, "mask of shape " + shape_str(m.shape) + " needs " + std::to_string(d.s) +
                     " keys in its last dim");
    }
    if (m.shape[3] > 1 && m.strides[3] != 1) fail(op, "mask's last dim must be contiguous");
    if (m.dtype != DType::Bool && m.dtype != q.dtype) {
        fail(op, std::string("mask must be bool or q's dtype (") + dtype_name(q.dtype) + "), got " +
                     dtype_name(m.dtype));
    }
    if (m.device != q.device) fail(op, "mask must be on q's device");
}

template <typename T>
AttnParams<T> make_params(const Dims& d, const DeviceArray& q, const DeviceArray& k,
                          const DeviceArray& v, const DeviceArray* mask, const SdpaOptions& o) {
    using Acc = typename Compute<T>::type;
    AttnParams<T> p;
    p.b = d.b;
    p.hq = d.hq;
    p.hk = d.hk;
    p.l = d.l;
    p.s = d.s;
    p.e = d.e;
    p.ev = d.ev;
    p.q = static_cast<const T*>(q.data());
    p.q_sb = bstride(q, 0);
    p.q_sh = bstride(q, 1);
    p.q_sr = bstride(q, 2);
    p.k = static_cast<const T*>(k.data());
    p.k_sb = bstride(k, 0);
    p.k_sh = bstride(k, 1);
    p.k_sr = bstride(k, 2);
    p.v = static_cast<const T*>(v.data());
    p.v_sb = bstride(v, 0);
    p.v_sh = bstride(v, 1);
    p.v_sr = bstride(v, 2);
    if (mask) {
        p.mask_kind = mask->dtype == DType::Bool ? AttnMask::boolean : AttnMask::additive;
        p.mask = mask->data();
        p.m_sb = bstride(*mask, 0);
        p.m_sh = bstride(*mask, 1);
        p.m_sr = bstride(*mask, 2);
    }
    p.causal = o.causal;
    p.scale = static_cast<Acc>(o.scale);
    p.dropout = o.dropout_p > 0.0;
    if (p.dropout) {  // cpu/attention.h's sdpa_drop_threshold
        p.drop_threshold = o.dropout_p >= 1.0 ? (std::uint64_t(1) << 32)
                                              : static_cast<std::uint64_t>(o.dropout_p * 4294967296.0 + 0.5);
        p.drop_scale = o.dropout_p >= 1.0 ? Acc(0) : static_cast<Acc>(1.0 / (1.0 - o.dropout_p));
        p.seed = o.seed;
    }
    return p;
}

template <typename F>
void dispatch_attn(DType dt, F&& f) {
    switch (dt) {
        case DType::Float32: f(float{}); return;
        case DType::Float64: f(double{}); return;
        case DType::BFloat16: f(bf16{}); return;
        case DType::Float16: f(f16{}); return;
        default: throw std::invalid_argument("sdpa: unsupported dtype");
    }
}

DType acc_dtype(DType dt) { return dt == DType::Float64 ? DType::Float64 : DType::Float32; }

}  // namespace

std::tuple<DeviceArray, DeviceArray> sdpa_forward(const DeviceArray& q, const DeviceArray& k,
                                                  const DeviceArray& v, const DeviceArray* mask,
                                                  const SdpaOptions& options) {
    const char* op = "sdpa_forward";
    const Dims d = check_qkv(op, q, k, v);
    if (mask) check_mask(op, *mask, q, d);
    DeviceGuard guard(q.device);
    DeviceArray out = DeviceArray::empty({d.b, d.hq, d.l, d.ev}, q.dtype, q.device);
    DeviceArray lse = DeviceArray::empty({d.b, d.hq, d.l}, acc_dtype(q.dtype), q.device);
    if (static_cast<std::int64_t>(d.b) * d.hq * d.l == 0) return {out, lse};
    dispatch_attn(q.dtype, [&](auto tag) {
        using T = decltype(tag);
        using Acc = typename Compute<T>::type;
        AttnParams<T> p = make_params<T>(d, q, k, v, mask, options);
        p.out = static_cast<T*>(out.data());
        p.lse = static_cast<Acc*>(lse.data());
        cudaStream_t stream = default_stream(q.device);
        if (!options.simt_only && device_props(q.device).major >= 8 && attn_fwd_tc_ok(p)) {
            launch_attn_fwd_tc(p, stream);
        } else {
            launch_attn_fwd_simt(p, attn_chunks(d.e > d.ev ? d.e : d.ev), stream);
        }
    });
    return {out, lse};
}

std::tuple<DeviceArray, DeviceArray, DeviceArray, std::optional<DeviceArray>> sdpa_backward(
    const DeviceArray& q, const DeviceArray& k, const DeviceArray& v, const DeviceArray* mask,
    const DeviceArray& out, const DeviceArray& gout, const DeviceArray& lse,
    const SdpaOptions& options, bool mask_grad) {
    const char* op = "sdpa_backward";
    const Dims d = check_qkv(op, q, k, v);
    if (mask) check_mask(op, *mask, q, d);
    const Shape out_shape{d.b, d.hq, d.l, d.ev};
    if (out.shape != out_shape || gout.shape != out_shape) {
        fail(op, "out and gout must have shape " + shape_str(out_shape) + ", got " +
                     shape_str(out.shape) + " and " + shape_str(gout.shape));
    }
    if (out.dtype != q.dtype || gout.dtype != q.dtype) fail(op, "out and gout must have q's dtype");
    if (lse.shape != Shape{d.b, d.hq, d.l} || lse.dtype != acc_dtype(q.dtype)) {
        fail(op, "lse must be the forward's: shape " + shape_str(Shape{d.b, d.hq, d.l}) + ", " +
                     dtype_name(acc_dtype(q.dtype)) + "; got " + shape_str(lse.shape) + ", " +
                     dtype_name(lse.dtype));
    }
    if (mask_grad && (!mask || mask->dtype == DType::Bool)) {
        fail(op, "mask_grad needs an additive (floating-point) mask");
    }
    DeviceGuard guard(q.device);
    const DeviceArray o_c = contiguous(out), g_c = contiguous(gout), lse_c = contiguous(lse);
    const DType acc = acc_dtype(q.dtype);
    const bool dq_direct = acc == q.dtype;
    DeviceArray dq_acc = DeviceArray::empty({d.b, d.hq, d.l, d.e}, acc, q.device);
    fill_(dq_acc, Scalar::of(0.0));
    DeviceArray delta = DeviceArray::empty({d.b, d.hq, d.l}, acc, q.device);
    DeviceArray dk = DeviceArray::empty({d.b, d.hk, d.s, d.e}, q.dtype, q.device);
    DeviceArray dv = DeviceArray::empty({d.b, d.hk, d.s, d.ev}, q.dtype, q.device);
    std::optional<DeviceArray> dmask;
    if (mask_grad) {
        dmask = DeviceArray::empty(mask->shape, acc, q.device);
        fill_(*dmask, Scalar::of(0.0));
    }
    if (static_cast<std::int64_t>(d.b) * d.hk > 0) {
        dispatch_attn(q.dtype, [&](auto tag) {
            using T = decltype(tag);
            using Acc = typename Compute<T>::type;
            AttnParams<T> p = make_params<T>(d, q, k, v, mask, options);
            p.out = static_cast<T*>(o_c.data());
            p.gout = static_cast<const T*>(g_c.data());
            p.lse = static_cast<Acc*>(lse_c.data());
            p.delta = static_cast<Acc*>(delta.data());
            p.dq_acc = static_cast<Acc*>(dq_acc.data());
            p.dk = static_cast<T*>(dk.data());
            p.dv = static_cast<T*>(dv.data());
            if (dmask) {  // contiguous, stride 0 where the mask broadcasts
                p.dmask = static_cast<Acc*>(dmask->data());
                const Shape st = contiguous_strides(dmask->shape);
                p.dm_sb = dmask->shape[0] == 1 ? 0 : st[0];
                p.dm_sh = dmask->shape[1] == 1 ? 0 : st[1];
                p.dm_sr = dmask->shape[2] == 1 ? 0 : st[2];
            }
            cudaStream_t stream = default_stream(q.device);
            launch_attn_delta(p, stream);
            if (!options.simt_only && device_props(q.device).major >= 8 && attn_bwd_tc_ok(p)) {
                if (d.s > 0) launch_attn_bwd_tc(p, stream);
            } else {
                launch_attn_bwd_simt(p, attn_chunks(d.e > d.ev ? d.e : d.ev), stream);
            }
        });
    }
    DeviceArray dq = dq_direct ? dq_acc : astype(dq_acc, q.dtype);
    if (dmask && dmask->dtype != mask->dtype) dmask = astype(*dmask, mask->dtype);
    return {dq, dk, dv, dmask};
}

}  // namespace cuda
}  // namespace nnforge
