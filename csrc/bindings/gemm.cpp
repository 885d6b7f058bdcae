// Binds the CPU GEMM (cpu/gemm/) into nnforge._C.cpu:
//   gemm(a, b, out=None, *, alpha=1, beta=0, bias=None, activation='none',
//        isa=None, path='auto', threads=0, blocking=None, tile_rows=0) -> out
//       numpy.matmul's semantics for float32/float64 arrays of one dtype and
//       any shapes it accepts (1-D operands, broadcast batch dims), computing
//       out = act(alpha * a @ b + beta * out + bias). Any strides: transposed
//       and sliced views are read in place. Without `out` a new C-contiguous
//       array is returned (beta must then be 0); with it, `out` must have the
//       result's shape and dtype, be writeable and not overlap itself.
//       bias: 1-D, one value per column of the result (b must be 2-D or more).
//       isa ('scalar', 'avx2', 'avx512'), path ('auto', 'direct', 'packed', 'dot',
//       'prepacked': B packed whole, then gemm_prepacked), tile_rows (prepacked:
//       the micro-tile's rows, 0 by m) and threads (0: nnforge's setting) are for
//       tests and benchmarks.
//   matmul(a, b) -> gemm(a, b) with the default options (the fast call).
//   matmul_bias(a, b, bias, activation) -> gemm(a, b, bias=..., activation=...).
//   fma_probe(isa=None, iterations=2e7) -> dict: FMA latency and throughput
//       on this core, for the benchmark's peak.
//   gemm_config(dtype='float32', isa=None) -> dict of tile, block and
//       threshold sizes the dispatcher uses.
// A bad argument raises ValueError naming the kernel, the argument and the
// shapes (TypeError for a non-array). The GIL is released while it runs.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include "bindings/args.h"
#include "bindings/bindings.h"
#include "cpu/gemm/gemm.h"

namespace py = pybind11;

namespace nnforge {
namespace {

constexpr const char* kKernel = "gemm";

[[noreturn]] void fail(const std::string& what) { bind_args::fail(kKernel, what); }

using bind_args::shape_str;

py::array as_array(const char* arg, const py::object& obj) {
    return bind_args::require_array(kKernel, arg, obj);
}

// Element strides of `a`, or false when a stride is not a whole number of
// elements or the data is misaligned (such an array is copied first).
bool element_strides(const py::array& a, std::vector<int64_t>& out) {
    const int64_t item = a.itemsize();
    out.assign(static_cast<std::size_t>(a.ndim()), 0);
    if (reinterpret_cast<std::uintptr_t>(a.data()) % static_cast<std::uintptr_t>(item) != 0) {
        return false;
    }
    for (py::ssize_t d = 0; d < a.ndim(); ++d) {
        if (a.strides(d) % item != 0) return false;
        out[static_cast<std::size_t>(d)] = a.strides(d) / item;
    }
    return true;
}

// [lo, hi) byte range spanned by `a` (empty arrays span nothing).
struct Extent {
    std::uintptr_t lo = 0, hi = 0;
};

Extent extent(const py::array& a) {
    Extent e;
    if (a.size() == 0) return e;
    auto base = reinterpret_cast<std::intptr_t>(a.data());
    std::intptr_t lo = base, hi = base + a.itemsize();
    for (py::ssize_t d = 0; d < a.ndim(); ++d) {
        const std::intptr_t span = static_cast<std::intptr_t>(a.shape(d) - 1) * a.strides(d);
        if (span < 0) lo += span;
        else hi += span;
    }
    e.lo = static_cast<std::uintptr_t>(lo);
    e.hi = static_cast<std::uintptr_t>(hi);
    return e;
}

bool overlap(const py::array& x, const py::array& y) {
    const Extent a = extent(x), b = extent(y);
    return a.lo < a.hi && b.lo < b.hi && a.lo < b.hi && b.lo < a.hi;
}

py::array copy_of(const py::array& a) {
    return py::array::ensure(a, py::array::c_style | py::array::forcecast);
}

Isa parse_isa(const py::object& isa) {
    const std::string s = py::str(isa);
    if (s == "scalar") return Isa::scalar;
    if (s == "avx2") return Isa::avx2;
    if (s == "avx512") return Isa::avx512;
    fail("isa must be None, 'scalar', 'avx2' or 'avx512', got '" + s + "'");
}

GemmPath parse_path(const std::string& s) {
    if (s == "auto") return GemmPath::automatic;
    if (s == "direct") return GemmPath::direct;
    if (s == "packed") return GemmPath::packed;
    if (s == "dot") return GemmPath::dot;
    if (s == "prepacked") return GemmPath::prepacked;
    fail("path must be 'auto', 'direct', 'packed', 'dot' or 'prepacked', got '" + s + "'");
}

GemmActivation parse_activation(const py::object& act) {
    if (act.is_none()) return GemmActivation::none;
    const std::string s = py::str(act);
    if (s == "none") return GemmActivation::none;
    if (s == "relu") return GemmActivation::relu;
    if (s == "gelu_tanh") return GemmActivation::gelu_tanh;
    fail("activation must be 'none', 'relu' or 'gelu_tanh', got '" + s + "'");
}

// One operand as a stack of matrices: batch dims (right-aligned to the
// result's), then rows and columns, all strides in elements.
struct Operand {
    py::array array;
    const char* name;
    std::vector<int64_t> strides;  // of `array`, in elements
};

template <typename T>
py::array run(py::array a, py::array b, const py::object& out_obj, double alpha, double beta,
              const py::object& bias_obj, GemmActivation act, const GemmOptions& options) {
    // Built only for an error message: a call must stay cheap for small products.
    struct Shapes {
        const py::array &a, &b;
        operator std::string() const { return "a " + shape_str(a) + " and b " + shape_str(b); }
    } const shapes{a, b};
    auto with_shapes = [&](const std::string& what) { return std::string(shapes) + what; };
    if (a.ndim() == 0 || b.ndim() == 0) {
        fail("a and b need at least 1 dimension, got " + std::string(shapes));
    }
    const bool a_vec = a.ndim() == 1, b_vec = b.ndim() == 1;
    const int64_t m = a_vec ? 1 : a.shape(a.ndim() - 2);
    const int64_t k = a.shape(a.ndim() - 1);
    const int64_t kb = b_vec ? b.shape(0) : b.shape(b.ndim() - 2);
    const int64_t n = b_vec ? 1 : b.shape(b.ndim() - 1);
    if (k != kb) {
        fail(with_shapes(" cannot be multiplied: a has " + std::to_string(k) + " columns, b " +
                         std::to_string(kb) + " rows"));
    }

    // Broadcast batch dims (numpy rules, aligned from the right).
    const int a_batch = a_vec ? 0 : static_cast<int>(a.ndim()) - 2;
    const int b_batch = b_vec ? 0 : static_cast<int>(b.ndim()) - 2;
    const int nb = a_batch > b_batch ? a_batch : b_batch;
    std::vector<int64_t> batch(static_cast<std::size_t>(nb), 1);
    for (int d = 0; d < nb; ++d) {
        const int da = d - (nb - a_batch), db = d - (nb - b_batch);
        const int64_t sa = da >= 0 ? a.shape(da) : 1, sb = db >= 0 ? b.shape(db) : 1;
        if (sa != sb && sa != 1 && sb != 1) {
            fail(with_shapes(": batch dimensions are not broadcastable (" + std::to_string(sa) +
                             " vs " + std::to_string(sb) + ")"));
        }
        batch[static_cast<std::size_t>(d)] = sa == 1 ? sb : sa;
    }
    std::vector<int64_t> result_shape = batch;
    if (!a_vec) result_shape.push_back(m);
    if (!b_vec) result_shape.push_back(n);

    // Bias: one value per column of the result.
    py::array bias;
    const bool has_bias = !bias_obj.is_none();
    if (has_bias) {
        bias = as_array("bias", bias_obj);
        if (b_vec) fail("bias needs a b with 2 or more dimensions, got " + std::string(shapes));
        if (!bias.dtype().equal(a.dtype())) {
            fail("bias has dtype " + std::string(py::str(bias.dtype())) + ", expected " +
                 std::string(py::str(a.dtype())));
        }
        if (bias.ndim() != 1 || bias.shape(0) != n) {
            fail("bias has shape " + shape_str(bias) + ", expected (" + std::to_string(n) +
                 ",) for " + std::string(shapes));
        }
    }

    // Output: given (checked) or new.
    py::array out;
    if (out_obj.is_none()) {
        if (beta != 0.0) fail("beta != 0 needs an out array to accumulate into");
        out = py::array(a.dtype(),
                        std::vector<py::ssize_t>(result_shape.begin(), result_shape.end()));
    } else {
        out = as_array("out", out_obj);
        if (!out.dtype().equal(a.dtype())) {
            fail("out has dtype " + std::string(py::str(out.dtype())) + ", expected " +
                 std::string(py::str(a.dtype())) + " for " + std::string(shapes));
        }
        bool same = out.ndim() == static_cast<py::ssize_t>(result_shape.size());
        for (std::size_t d = 0; same && d < result_shape.size(); ++d) {
            same = out.shape(static_cast<py::ssize_t>(d)) == result_shape[d];
        }
        if (!same) {
            fail("out has shape " + shape_str(out) + ", expected " + shape_str(result_shape) +
                 " for " + std::string(shapes));
        }
        if (!out.writeable()) fail("out (shape " + shape_str(out) + ") is not writeable");
        std::vector<int64_t> s;
        if (!element_strides(out, s)) {
            fail("out is misaligned or has strides that are not whole elements");
        }
        for (py::ssize_t d = 0; d < out.ndim(); ++d) {
            if (out.shape(d) > 1 && out.strides(d) == 0) {
                fail("out (shape " + shape_str(out) +
                     ") is a broadcast view: its elements overlap");
            }
        }
        // An input that shares memory with out is read from a copy.
        if (overlap(out, a)) a = copy_of(a);
        if (overlap(out, b)) b = copy_of(b);
        if (has_bias && overlap(out, bias)) bias = copy_of(bias);
    }

    std::vector<int64_t> sa, sb, sc, sbias;
    if (!element_strides(a, sa)) a = copy_of(a), element_strides(a, sa);
    if (!element_strides(b, sb)) b = copy_of(b), element_strides(b, sb);
    if (has_bias && !element_strides(bias, sbias)) {
        bias = copy_of(bias);
        element_strides(bias, sbias);
    }
    element_strides(out, sc);

    GemmArgs<T> g;
    g.m = m;
    g.n = n;
    g.k = k;
    g.alpha = static_cast<T>(alpha);
    g.beta = static_cast<T>(beta);
    g.rs_a = a_vec ? 0 : sa[sa.size() - 2];
    g.cs_a = sa.back();
    g.rs_b = b_vec ? sb[0] : sb[sb.size() - 2];
    g.cs_b = b_vec ? 0 : sb.back();
    const std::size_t nc_dims = sc.size();
    g.rs_c = a_vec ? 0 : (b_vec ? sc[nc_dims - 1] : sc[nc_dims - 2]);
    g.cs_c = b_vec ? 0 : sc[nc_dims - 1];
    g.bias = has_bias ? static_cast<const T*>(bias.data()) : nullptr;
    g.bias_stride = has_bias ? sbias[0] : 0;
    g.act = act;

    // Batch strides per operand (0 where broadcast), then collapse dims that
    // are one regular stride for all three (and drop extent-1 dims).
    struct Dim {
        int64_t size, a, b, c;
    };
    std::vector<Dim> dims;
    for (int d = 0; d < nb; ++d) {
        const int da = d - (nb - a_batch), db = d - (nb - b_batch);
        Dim x{batch[static_cast<std::size_t>(d)], 0, 0, sc[static_cast<std::size_t>(d)]};
        if (da >= 0 && a.shape(da) != 1) x.a = sa[static_cast<std::size_t>(da)];
        if (db >= 0 && b.shape(db) != 1) x.b = sb[static_cast<std::size_t>(db)];
        if (x.size == 1) continue;
        if (!dims.empty()) {
            Dim& prev = dims.back();
            if (prev.a == x.a * x.size && prev.b == x.b * x.size && prev.c == x.c * x.size) {
                prev.size *= x.size;
                prev.a = x.a, prev.b = x.b, prev.c = x.c;
                continue;
            }
        }
        dims.push_back(x);
    }
    for (const Dim& d : dims) {
        if (d.size == 0) return out;
    }
    // One matrix B for the whole batch and A, C stacked row after row:
    // one product with m * batch rows.
    if (dims.size() == 1 && dims[0].b == 0 && !a_vec && dims[0].a == m * g.rs_a &&
        dims[0].c == m * g.rs_c) {
        g.m *= dims[0].size;
        dims.clear();
    }
    if (!dims.empty()) {
        const Dim inner = dims.back();
        dims.pop_back();
        g.batch = inner.size;
        g.bs_a = inner.a;
        g.bs_b = inner.b;
        g.bs_c = inner.c;
    }

    const T* a_data = static_cast<const T*>(a.data());
    const T* b_data = static_cast<const T*>(b.data());
    T* c_data = static_cast<T*>(out.mutable_data());
    {
        py::gil_scoped_release release;
        // Outer batch dims that did not collapse: walk their multi-index.
        int64_t outer = 1;
        for (const Dim& d : dims) outer *= d.size;
        for (int64_t idx = 0; idx < outer; ++idx) {
            int64_t rem = idx, off_a = 0, off_b = 0, off_c = 0;
            for (std::size_t d = dims.size(); d-- > 0;) {
                const int64_t i = rem % dims[d].size;
                rem /= dims[d].size;
                off_a += i * dims[d].a;
                off_b += i * dims[d].b;
                off_c += i * dims[d].c;
            }
            GemmArgs<T> one = g;
            one.a = a_data + off_a;
            one.b = b_data + off_b;
            one.c = c_data + off_c;
            gemm(one, options);
        }
    }
    return out;
}

py::array gemm_py(const py::object& a_obj, const py::object& b_obj, const py::object& out,
                  double alpha, double beta, const py::object& bias, const py::object& activation,
                  const py::object& isa, const std::string& path, int threads,
                  const py::object& blocking, int tile_rows) {
    const py::array a = as_array("a", a_obj), b = as_array("b", b_obj);
    GemmOptions options;
    if (!isa.is_none()) {
        options.force_isa = true;
        options.isa = parse_isa(isa);
    }
    options.path = parse_path(path);
    if (threads < 0) fail("threads must be >= 0, got " + std::to_string(threads));
    options.threads = threads;
    if (tile_rows < 0) fail("tile_rows must be >= 0, got " + std::to_string(tile_rows));
    options.tile_rows = tile_rows;
    if (!blocking.is_none()) {
        const py::tuple t = py::cast<py::tuple>(blocking);
        if (t.size() != 3) fail("blocking must be (kc, mc, nc)");
        options.kc = py::cast<int64_t>(t[0]);
        options.mc = py::cast<int64_t>(t[1]);
        options.nc = py::cast<int64_t>(t[2]);
        if (options.kc < 0 || options.mc < 0 || options.nc < 0) fail("blocking sizes must be >= 0");
    }
    const GemmActivation act = parse_activation(activation);
    const bool is_f32 = a.dtype().equal(py::dtype::of<float>());
    const bool is_f64 = a.dtype().equal(py::dtype::of<double>());
    if ((!is_f32 && !is_f64) || !b.dtype().equal(a.dtype())) {
        fail("a " + shape_str(a) + " has dtype " + std::string(py::str(a.dtype())) + " and b " +
             shape_str(b) + " has dtype " + std::string(py::str(b.dtype())) +
             "; both must be float32 or both float64");
    }
    if (is_f32) return run<float>(a, b, out, alpha, beta, bias, act, options);
    return run<double>(a, b, out, alpha, beta, bias, act, options);
}

// gemm(a, b) with every option at its default: the call backend.cpu.matmul
// makes for every float product, kept free of keyword handling.
py::array matmul_py(const py::object& a_obj, const py::object& b_obj) {
    const py::array a = as_array("a", a_obj), b = as_array("b", b_obj);
    if (b.dtype().equal(a.dtype())) {
        if (a.dtype().equal(py::dtype::of<float>())) {
            return run<float>(a, b, py::none(), 1.0, 0.0, py::none(), GemmActivation::none,
                              GemmOptions{});
        }
        if (a.dtype().equal(py::dtype::of<double>())) {
            return run<double>(a, b, py::none(), 1.0, 0.0, py::none(), GemmActivation::none,
                               GemmOptions{});
        }
    }
    return gemm_py(a_obj, b_obj, py::none(), 1.0, 0.0, py::none(), py::none(), py::none(),
                   "auto", 0, py::none(), 0);
}

// act(a @ b + bias), positional (bias and activation may be None): Linear's
// forward with b = W^T, free of keyword handling.
py::array matmul_bias_py(const py::object& a, const py::object& b, const py::object& bias,
                         const py::object& activation) {
    return gemm_py(a, b, py::none(), 1.0, 0.0, bias, activation, py::none(), "auto", 0,
                   py::none(), 0);
}

py::dict config_py(const std::string& dtype, const py::object& isa) {
    GemmOptions options;
    if (!isa.is_none()) {
        options.force_isa = true;
        options.isa = parse_isa(isa);
    }
    GemmConfig c;
    if (dtype == "float32") {
        c = gemm_config<float>(options);
    } else if (dtype == "float64") {
        c = gemm_config<double>(options);
    } else {
        fail("gemm_config: dtype must be 'float32' or 'float64', got '" + dtype + "'");
    }
    py::dict d;
    d["isa"] = isa_name(c.isa);
    d["mr"] = c.mr;
    d["nr"] = c.nr;
    d["kc"] = c.kc;
    d["mc"] = c.mc;
    d["nc"] = c.nc;
    d["l1"] = c.l1;
    d["l2"] = c.l2;
    d["l3"] = c.l3;
    d["direct_max_work"] = c.direct_max_work;
    d["direct_max_m"] = c.direct_max_m;
    d["dot_max_m"] = c.dot_max_m;
    d["parallel_min_work"] = c.parallel_min_work;
    return d;
}

}  // namespace

void bind_gemm(py::module_& m) {
    m.def("gemm", &gemm_py, py::arg("a"), py::arg("b"), py::arg("out") = py::none(),
          py::kw_only(), py::arg("alpha") = 1.0, py::arg("beta") = 0.0,
          py::arg("bias") = py::none(), py::arg("activation") = py::none(),
          py::arg("isa") = py::none(), py::arg("path") = "auto", py::arg("threads") = 0,
          py::arg("blocking") = py::none(), py::arg("tile_rows") = 0,
          "out = act(alpha * a @ b + beta * out + bias) with numpy.matmul's shape rules, "
          "for float32/float64 arrays of one dtype and any strides.");
    m.def("matmul", &matmul_py, py::arg("a"), py::arg("b"),
          "gemm(a, b) with the default options: numpy.matmul for float32/float64 arrays.");
    m.def("matmul_bias", &matmul_bias_py, py::arg("a"), py::arg("b"), py::arg("bias"),
          py::arg("activation"), "gemm(a, b, bias=bias, activation=activation), positional.");
    m.def(
        "fma_probe",
        [](const py::object& isa, int64_t iterations) {
            const Isa chosen = isa.is_none() ? best_isa() : parse_isa(isa);
            if (iterations < 1) fail("fma_probe: iterations must be >= 1");
            FmaProbe p;
            {
                py::gil_scoped_release release;
                p = fma_probe(chosen, iterations);
            }
            py::dict d;
            d["isa"] = isa_name(chosen);
            d["lanes"] = p.lanes;
            d["dependent_ns"] = p.dependent_ns;
            d["per_ns"] = p.per_ns;
            return d;
        },
        py::arg("isa") = py::none(), py::arg("iterations") = 20000000,
        "Float FMA timing on this core: dependent_ns (latency of one FMA in a chain) and "
        "per_ns (FMAs per ns over 12 chains), with `lanes` floats per FMA.");
    m.def("gemm_config", &config_py, py::arg("dtype") = "float32", py::arg("isa") = py::none(),
          "Tile, block and threshold sizes the GEMM uses for this dtype and ISA.");
}

}  // namespace nnforge
