// The GEMM's host side (gemm.h): argument checks, numpy.matmul's batch
// broadcasting reduced to one batch stride per operand, and the choice of
// kernel (gemm_simt.cu or gemm_tc.cu).
//
// Batch dims: each operand's batch dims, seen through broadcasting to the
// result's, collapse to one (count, stride) pair when their strides nest
// (stride[d] == stride[d+1] * shape[d+1] over the dims of size > 1; a
// broadcast operand has all zeros). An operand whose batch dims do not nest
// (a transposed batch, say) is first copied to a contiguous broadcast array.
#include <cstdint>
#include <stdexcept>
#include <string>

#include "cuda/check.cuh"
#include "cuda/context.cuh"
#include "cuda/copy.h"
#include "cuda/dispatch.cuh"
#include "cuda/gemm.h"
#include "cuda/gemm_kernels.cuh"

namespace nnforge {
namespace cuda {
namespace {

[[noreturn]] void fail(const std::string& what) { throw std::invalid_argument("gemm: " + what); }

Shape batch_of(const Shape& s) { return Shape(s.begin(), s.end() - 2); }

// The one batch stride of x's batch dims broadcast to `batch`, or false.
bool collapse_batch(const DeviceArray& x, const Shape& batch, std::int64_t& stride) {
    Shape full = batch;
    full.push_back(x.shape[x.ndim() - 2]);
    full.push_back(x.shape[x.ndim() - 1]);
    const Shape st = broadcast_strides(x, full, "gemm");
    stride = 0;
    std::int64_t expect = -1;  // the stride the next outer dim of size > 1 must have
    for (int d = static_cast<int>(batch.size()) - 1; d >= 0; --d) {
        if (batch[d] == 1) continue;
        if (expect >= 0 && st[d] != expect) return false;
        if (expect < 0) stride = st[d];
        expect = st[d] * batch[d];
    }
    return true;
}

// x as (count, stride) over `batch`: a view, or a contiguous broadcast copy.
DeviceArray batched(const DeviceArray& x, const Shape& batch, std::int64_t& stride) {
    if (collapse_batch(x, batch, stride)) return x;
    Shape full = batch;
    full.push_back(x.shape[x.ndim() - 2]);
    full.push_back(x.shape[x.ndim() - 1]);
    DeviceArray c = DeviceArray::empty(full, x.dtype, x.device);
    copy_(c, x);
    stride = x.shape[x.ndim() - 2] * x.shape[x.ndim() - 1];
    return c;
}

std::int64_t numel_of(const Shape& s) {
    std::int64_t n = 1;
    for (auto d : s) n *= d;
    return n;
}

bool cc_at_least(int device, int major) { return device_props(device).major >= major; }

struct Plan {
    Shape batch;
    std::int64_t count = 0, m = 0, n = 0, k = 0;
    DeviceArray a, b;
    std::int64_t a_sb = 0, b_sb = 0;
};

Plan plan(const DeviceArray& a, const DeviceArray& b) {
    if (a.ndim() < 2 || b.ndim() < 2) {
        fail("operands must have 2 or more dims here, got a of shape " + shape_str(a.shape) +
             " and b of shape " + shape_str(b.shape));
    }
    if (a.dtype != b.dtype) {
        fail(std::string("a and b must share a dtype, got ") + dtype_name(a.dtype) + " and " +
             dtype_name(b.dtype));
    }
    if (a.dtype != DType::Float32 && a.dtype != DType::Float64 && a.dtype != DType::BFloat16 &&
        a.dtype != DType::Float16) {
        fail(std::string("expected float32, float64, bfloat16 or float16 operands, got ") +
             dtype_name(a.dtype));
    }
    if (a.device != b.device) {
        fail("a is on cuda:" + std::to_string(a.device) + " but b on cuda:" +
             std::to_string(b.device));
    }
    Plan p;
    p.m = a.shape[a.ndim() - 2];
    p.k = a.shape[a.ndim() - 1];
    p.n = b.shape[b.ndim() - 1];
    if (b.shape[b.ndim() - 2] != p.k) {
        fail("a of shape " + shape_str(a.shape) + " and b of shape " + shape_str(b.shape) +
             " do not multiply (a's last dim " + std::to_string(p.k) + " != b's second-to-last " +
             std::to_string(b.shape[b.ndim() - 2]) + ")");
    }
    p.batch = broadcast_shapes(batch_of(a.shape), batch_of(b.shape), "gemm");
    p.count = numel_of(p.batch);
    p.a = batched(a, p.batch, p.a_sb);
    p.b = batched(b, p.batch, p.b_sb);
    return p;
}

template <typename T>
GemmParams<T> params(const Plan& pl, const DeviceArray& c, std::int64_t c_sb,
                     const GemmOptions& o) {
    using Acc = typename GemmParams<T>::Acc;
    GemmParams<T> p;
    p.batch = pl.count;
    p.m = pl.m;
    p.n = pl.n;
    p.k = pl.k;
    p.a = static_cast<const T*>(pl.a.data());
    p.a_sb = pl.a_sb;
    p.a_sm = pl.a.strides[pl.a.ndim() - 2];
    p.a_sk = pl.a.strides[pl.a.ndim() - 1];
    p.b = static_cast<const T*>(pl.b.data());
    p.b_sb = pl.b_sb;
    p.b_sk = pl.b.strides[pl.b.ndim() - 2];
    p.b_sn = pl.b.strides[pl.b.ndim() - 1];
    p.c = static_cast<T*>(c.data());
    p.c_sb = c_sb;
    p.c_sm = c.strides[c.ndim() - 2];
    p.c_sn = c.strides[c.ndim() - 1];
    if (o.bias) {
        p.bias = static_cast<const T*>(o.bias->data());
        p.bias_s = o.bias->strides[0];
    }
    p.alpha = static_cast<Acc>(o.alpha);
    p.beta = static_cast<Acc>(o.beta);
    p.act = o.activation;
    return p;
}

// Which kernel runs (never "automatic"). wgmma only by name until it is verified on a GPU.
template <typename T>
GemmKernel choose(const GemmParams<T>& p, const GemmOptions& o, int device) {
    if (o.kernel == GemmKernel::wgmma) {
        std::string why;
        if (!gemm_wgmma_layout_ok(p, &why)) fail("kernel='wgmma' " + why);
        if (!gemm_wgmma_available(device)) {
            const cudaDeviceProp& prop = device_props(device);
            fail("kernel='wgmma' needs a compute capability 9.0 device and a build with sm_90a "
                 "(cuda:" + std::to_string(device) + " is " + std::to_string(prop.major) + "." +
                 std::to_string(prop.minor) + ")");
        }
        return GemmKernel::wgmma;
    }
    bool tc_possible = false;
    if constexpr (!std::is_same<T, double>::value) {
        const bool dtype_ok = !std::is_same<T, float>::value || o.allow_tf32 ||
                              o.kernel == GemmKernel::tensor_core;
        tc_possible = dtype_ok && cc_at_least(device, 8) && gemm_tc_layout_ok(p);
    }
    if (o.kernel == GemmKernel::tensor_core && !tc_possible) {
        fail("kernel='tensor_core' needs a float32/bfloat16/float16 operand pair on a device of "
             "compute capability 8.0 or newer, each operand contiguous along one of its last "
             "two dims with the other stride a multiple of 16 bytes and a 16-byte aligned start");
    }
    if (o.kernel == GemmKernel::simt) return GemmKernel::simt;
    return tc_possible ? GemmKernel::tensor_core : GemmKernel::simt;
}

template <typename T>
void run(const GemmParams<T>& p, const GemmOptions& o, int device) {
    cudaStream_t stream = default_stream(device);
    const GemmKernel k = choose(p, o, device);
    if (k == GemmKernel::wgmma) {
        launch_gemm_wgmma(p, stream);
    } else if (k == GemmKernel::tensor_core) {
        if constexpr (!std::is_same<T, double>::value) launch_gemm_tc(p, stream);
    } else {
        launch_gemm_simt(p, stream);
    }
}

template <typename F>
void dispatch_gemm(DType dt, F&& f) {
    switch (dt) {
        case DType::Float32: f(float{}); return;
        case DType::Float64: f(double{}); return;
        case DType::BFloat16: f(bf16{}); return;
        case DType::Float16: f(f16{}); return;
        default: fail(std::string("unsupported dtype ") + dtype_name(dt));
    }
}

void check_bias(const GemmOptions& o, const DeviceArray& a, std::int64_t n) {
    if (!o.bias) return;
    const DeviceArray& bias = *o.bias;
    if (bias.ndim() != 1 || bias.shape[0] != n) {
        fail("bias must have shape (" + std::to_string(n) + ",) (one value per column), got " +
             shape_str(bias.shape));
    }
    if (bias.dtype != a.dtype) {
        fail(std::string("bias has dtype ") + dtype_name(bias.dtype) + " but the operands " +
             dtype_name(a.dtype));
    }
    if (bias.device != a.device) fail("bias is on another device than the operands");
}

}  // namespace

GemmActivation parse_gemm_activation(const std::string& name) {
    if (name == "none") return GemmActivation::none;
    if (name == "relu") return GemmActivation::relu;
    if (name == "gelu") return GemmActivation::gelu;
    if (name == "gelu_tanh") return GemmActivation::gelu_tanh;
    fail("activation must be 'none', 'relu', 'gelu' or 'gelu_tanh', got '" + name + "'");
}

std::string gemm_kernel_for(const DeviceArray& a, const DeviceArray& b,
                            const GemmOptions& options) {
    DeviceGuard guard(a.device);
    const Plan pl = plan(a, b);
    Shape shape = pl.batch;
    shape.push_back(pl.m);
    shape.push_back(pl.n);
    // Strides of a contiguous result: the choice does not depend on C.
    DeviceArray c = a;
    c.shape = shape;
    c.strides = contiguous_strides(shape);
    std::string name;
    dispatch_gemm(a.dtype, [&](auto tag) {
        using T = decltype(tag);
        const GemmParams<T> p = params<T>(pl, c, pl.m * pl.n, options);
        const GemmKernel k = choose(p, options, a.device);
        name = k == GemmKernel::wgmma ? "wgmma" : (k == GemmKernel::tensor_core ? "tensor_core" : "simt");
    });
    return name;
}

DeviceArray gemm(const DeviceArray& a, const DeviceArray& b, const GemmOptions& options,
                 const DeviceArray* out) {
    DeviceGuard guard(a.device);
    const Plan pl = plan(a, b);
    check_bias(options, a, pl.n);
    Shape shape = pl.batch;
    shape.push_back(pl.m);
    shape.push_back(pl.n);
    if ((pl.m + 63) / 64 > 65535) {  // grid.y: row tiles of 128 (64 for double)
        fail("a has " + std::to_string(pl.m) + " rows; at most 65535 * 64 are supported");
    }

    DeviceArray result;
    bool via_temp = false;
    std::int64_t c_sb = pl.m * pl.n;
    if (out) {
        if (out->shape != shape) {
            fail("out has shape " + shape_str(out->shape) + " but a @ b has shape " +
                 shape_str(shape));
        }
        if (out->dtype != a.dtype) {
            fail(std::string("out has dtype ") + dtype_name(out->dtype) + " but the operands " +
                 dtype_name(a.dtype));
        }
        if (out->device != a.device) fail("out is on another device than the operands");
        // Written in place unless it may alias an operand or its batch dims do not nest.
        via_temp = out->storage == a.storage || out->storage == b.storage ||
                   !collapse_batch(*out, pl.batch, c_sb);
        if (via_temp) {
            result = DeviceArray::empty(shape, a.dtype, a.device);
            c_sb = pl.m * pl.n;
            if (options.beta != 0.0) copy_(result, *out);
        } else {
            result = *out;
        }
    } else {
        if (options.beta != 0.0) fail("beta != 0 needs out= (the matrix it scales)");
        result = DeviceArray::empty(shape, a.dtype, a.device);
    }
    if (pl.count == 0 || pl.m == 0 || pl.n == 0) return out ? *out : result;

    dispatch_gemm(a.dtype, [&](auto tag) {
        using T = decltype(tag);
        run(params<T>(pl, result, c_sb, options), options, a.device);
    });
    if (via_temp) {
        copy_(*out, result);
        return *out;
    }
    return result;
}

}  // namespace cuda
}  // namespace nnforge
