// The GEMM dispatcher (see gemm.h): argument checks, the choice of ISA,
// path, block sizes and thread count, the packing workspace, and the
// degenerate cases. The loops themselves are in gemm_driver.h, built once
// per ISA (gemm_scalar.cpp, gemm_avx2.cpp, gemm_avx512.cpp).
//
// Block sizes come from the data cache sizes (sysconf on Linux, which reads
// cpuid leaf 4 / 0x8000001D; 32 KiB / 1 MiB / 32 MiB when unknown), for a
// micro-tile of MR x NR elements of `size` bytes:
//   KC = 3/4 L1 / (MR * size)     the A micro-panel (MR x KC), reused by every
//                                 B micro-panel of a block, fills most of L1
//   NC = L2 / (KC * size)         the packed B block (KC x NC) about fills L2
//   MC = L3 / 8 / (KC * size)     the packed A block (MC x KC): a slice of L3
// clamped to sane ranges and rounded to multiples of 8, NR and MR; then each
// dimension is cut into equal blocks no larger than that (K = 1100 with
// KC = 1024 runs as two slices of 550, not 1024 + 76).
// Measured on AMD Zen 4 (32 KiB L1d, 1 MiB L2; 6 x 64 float tile: KC = 1024,
// NC = 256, MC = 1020): a long KC pays off because each K slice re-reads and
// re-writes C, while one zmm FMA per cycle needs only ~11 bytes of B per cycle,
// which even L3 delivers; KC = 256 was 7% slower at 1024^3, KC = 512 3%.
#include "cpu/gemm/gemm.h"

#include <cmath>
#include <cstdlib>
#include <new>
#include <stdexcept>
#include <string>
#include <vector>

#include "common/threading.h"
#include "cpu/gemm/gemm_internal.h"

#if defined(__unix__) || defined(__APPLE__)
#include <unistd.h>
#endif
#if defined(NNFORGE_OPENMP)
#include <omp.h>
#endif

namespace nnforge {
namespace {

using gemm_detail::Plan;
using gemm_detail::Problem;
using gemm_detail::TileShape;

// Products with m n k below this run on one thread (about 20 us of work on
// one core; below it waking a second thread and splitting gains little, and
// on a loaded machine a preempted helper costs a time slice).
constexpr int64_t kParallelMinWork = int64_t(1) << 20;
// Direct path (B read in place, no packing) up to this m n k: on Zen 4 it
// stays ahead of packing up to about 600^3 (B in L2/L3; one thread, GFLOP/s
// direct / packed: 96^3 98 / 95, 192^3 112 / 107, 512^3 110 / 109, 768^3
// 108 / 107, 1536^3 104 / 106; 768 x 768 x 4096 96 / 103) ...
constexpr int64_t kDirectMaxWork = int64_t(512) * 512 * 512;
// ... and for skinny products, m up to this: each element of B is used at most
// m times, too few to pay for copying it. There B streams row by row: K
// slices of a few rows (skinny_kc) swept across all of N. With N = K = 4096:
// m = 1 13.3 vs 4.3 GFLOP/s packed, m = 16 65 vs 43, m = 24 55 vs 58.
constexpr int64_t kDirectMaxM = 16;
// B = W^T (columns contiguous) with at most this many rows: dot products
// (decode-time Linear), where transposing W into panels would cost as much
// as the product; up to kDotMaxMCached rows when W fits in L2 (each block of
// 4 rows re-reads W). Measured on Zen 4: with W 4096 x 4096 the dot form wins
// up to m = 8 (m = 1: 11.8 vs 4.7 GFLOP/s packed); with W 256 x 784 up to
// m = 32 (97 vs 89).
constexpr int64_t kDotMaxM = 8;
constexpr int64_t kDotMaxMCached = 32;

// A^T (unit row stride) is read in place when its columns are less than this
// far apart, else packed (see gemm()).
constexpr int64_t kInPlaceMaxColBytes = 4096;
// B up to this size is packed once and shared by all threads (see gemm()).
constexpr int64_t kSharedBMaxBytes = int64_t(4) << 20;

int64_t skinny_kc(int64_t m) { return m <= 4 ? 8 : (m <= 16 ? 16 : 64); }

int64_t clamp(int64_t v, int64_t lo, int64_t hi) { return v < lo ? lo : (v > hi ? hi : v); }

struct Caches {
    int64_t l1 = 32 << 10, l2 = 1 << 20, l3 = 32 << 20;
};

const Caches& caches() {
    static const Caches c = [] {
        Caches out;
#if defined(_SC_LEVEL1_DCACHE_SIZE) && defined(_SC_LEVEL2_CACHE_SIZE) && \
    defined(_SC_LEVEL3_CACHE_SIZE)
        const long l1 = sysconf(_SC_LEVEL1_DCACHE_SIZE);
        const long l2 = sysconf(_SC_LEVEL2_CACHE_SIZE);
        const long l3 = sysconf(_SC_LEVEL3_CACHE_SIZE);
        if (l1 > 0) out.l1 = l1;
        if (l2 > 0) out.l2 = l2;
        if (l3 > 0) out.l3 = l3;
#endif
        // Guard against odd reports (virtual machines may report the whole
        // socket's L3, or nothing): keep each level in a plausible range.
        out.l1 = clamp(out.l1, 16 << 10, 128 << 10);
        out.l2 = clamp(out.l2, 256 << 10, 4 << 20);
        out.l3 = clamp(out.l3, 2 << 20, 32 << 20);
        return out;
    }();
    return c;
}

bool isa_available(Isa isa) {
    const CpuFeatures& f = cpu_features();
    switch (isa) {
        case Isa::avx512: return f.avx512f && f.avx512bw && f.avx512dq && f.avx512vl && f.fma;
        case Isa::avx2: return f.avx2 && f.fma;
        case Isa::scalar: return true;
    }
    return false;
}

Isa choose_isa(const GemmOptions& o) {
    if (!o.force_isa) return best_isa();
    if (!isa_available(o.isa)) {
        throw std::runtime_error(std::string("gemm: isa '") + isa_name(o.isa) +
                                 "' is not available on this CPU");
    }
    return o.isa;
}

template <typename T>
TileShape tile_shape(Isa isa) {
#if defined(__x86_64__) || defined(_M_X64)
    if (isa == Isa::avx512) return gemm_detail::tile_shape_avx512<T>();
    if (isa == Isa::avx2) return gemm_detail::tile_shape_avx2<T>();
#endif
    (void)isa;
    return gemm_detail::tile_shape_scalar<T>();
}

template <typename T>
GemmConfig config_for(Isa isa) {
    const Caches& cc = caches();
    const TileShape t = tile_shape<T>(isa);
    const int64_t size = sizeof(T);
    GemmConfig g;
    g.isa = isa;
    g.mr = t.mr;
    g.nr = t.nr;
    g.l1 = cc.l1;
    g.l2 = cc.l2;
    g.l3 = cc.l3;
    g.kc = clamp(cc.l1 * 3 / 4 / (t.mr * size) / 8 * 8, 128, 1024);
    g.nc = clamp(cc.l2 / (g.kc * size) / t.nr * t.nr, 2 * t.nr, 64 * t.nr);
    g.mc = clamp(cc.l3 / 8 / (g.kc * size) / t.mr * t.mr, 16 * t.mr, 4096 / t.mr * t.mr);
    g.direct_max_work = kDirectMaxWork;
    g.direct_max_m = kDirectMaxM;
    g.dot_max_m = kDotMaxM;
    g.parallel_min_work = kParallelMinWork;
    return g;
}

// Thread-local, 64-byte aligned scratch for the packed blocks of every
// thread of a call; it grows to the largest size asked and is kept.
struct Workspace {
    void* data = nullptr;
    std::size_t bytes = 0;
    ~Workspace() { std::free(data); }
};

void* workspace(std::size_t bytes) {
    thread_local Workspace ws;
    if (bytes > ws.bytes) {
        const std::size_t rounded = (bytes + 63) / 64 * 64;
        void* fresh = std::aligned_alloc(64, rounded);
        if (fresh == nullptr) throw std::bad_alloc();
        std::free(ws.data);
        ws.data = fresh;
        ws.bytes = rounded;
    }
    return ws.data;
}

// C = act(beta C + bias) when k == 0 (A B is empty: a sum of nothing).
template <typename T>
void scale_only(const Problem<T>& p) {
    for (int64_t index = 0; index < p.batch; ++index) {
        T* c = p.c + index * p.bs_c;
        for (int64_t i = 0; i < p.m; ++i) {
            for (int64_t j = 0; j < p.n; ++j) {
                T& cij = c[i * p.rs_c + j * p.cs_c];
                T v = p.beta == T(0) ? T(0) : p.beta * cij;
                if (p.bias) v += p.bias[i * p.bias_rs + j * p.bias_cs];
                if (p.act == GemmActivation::relu) {
                    v = v < T(0) ? T(0) : v;
                } else if (p.act == GemmActivation::gelu_tanh) {
                    // Rare (k == 0): the plain formula is fine here.
                    const T u = T(0.7978845608028654) * (v + T(0.044715) * v * v * v);
                    v = T(0.5) * v * (T(1) + std::tanh(u));
                }
                cij = v;
            }
        }
    }
}

int64_t round_up(int64_t v, int64_t to) { return (v + to - 1) / to * to; }

// The block size that cuts `extent` into the fewest equal blocks of at most
// `most` (rounded up to a multiple of `unit`).
int64_t even_blocks(int64_t extent, int64_t most, int64_t unit) {
    if (most < unit) most = unit;
    const int64_t blocks = (extent + most - 1) / most;
    return round_up((extent + blocks - 1) / blocks, unit);
}

}  // namespace

template <typename T>
GemmConfig gemm_config(const GemmOptions& options) {
    return config_for<T>(choose_isa(options));
}

namespace {

// The caller's product as the drivers' Problem (bias indexed along columns).
template <typename T>
Problem<T> problem_of(const GemmArgs<T>& args) {
    Problem<T> p;
    p.m = args.m, p.n = args.n, p.k = args.k;
    p.alpha = args.alpha, p.beta = args.beta;
    p.a = args.a, p.rs_a = args.rs_a, p.cs_a = args.cs_a;
    p.b = args.b, p.rs_b = args.rs_b, p.cs_b = args.cs_b;
    p.c = args.c, p.rs_c = args.rs_c, p.cs_c = args.cs_c;
    p.bias = args.bias, p.bias_rs = 0, p.bias_cs = args.bias_stride;
    p.act = args.act;
    p.batch = args.batch, p.bs_a = args.bs_a, p.bs_b = args.bs_b, p.bs_c = args.bs_c;
    return p;
}

}  // namespace

template <typename T>
void gemm(const GemmArgs<T>& args, const GemmOptions& options) {
    if (args.m < 0 || args.n < 0 || args.k < 0 || args.batch < 0) {
        throw std::invalid_argument("gemm: negative size (m=" + std::to_string(args.m) +
                                    ", n=" + std::to_string(args.n) + ", k=" +
                                    std::to_string(args.k) + ", batch=" +
                                    std::to_string(args.batch) + ")");
    }
    const Isa isa = choose_isa(options);
    if (args.m == 0 || args.n == 0 || args.batch == 0) return;
    if (options.path == GemmPath::prepacked) {  // (tests) pack B whole, then the product
        const PackedLayout l = gemm_pack_layout<T>(args.m, args.k, args.n, options);
        std::vector<T> packed(static_cast<size_t>(l.size));
        for (int64_t index = 0; index < args.batch; ++index) {
            GemmArgs<T> one = args;
            one.batch = 1;
            one.a += index * args.bs_a;
            one.b += index * args.bs_b;
            one.c += index * args.bs_c;
            gemm_pack_b(l, one.b, one.rs_b, one.cs_b, packed.data());
            gemm_prepacked(one, l, packed.data(), options);
        }
        return;
    }

    Problem<T> p = problem_of(args);

    // A stride along a dimension of extent 1 is never used: make it 1, so the
    // fast packing and store paths apply (e.g. a column vector B is "row-major").
    if (p.n == 1) p.cs_b = p.cs_c = 1, p.bias_cs = 0;
    if (p.k == 1) p.cs_a = 1;
    if (p.m == 1) p.rs_a = p.rs_c = 1, p.bias_rs = 0;
    // C stored by columns: compute C^T = B^T A^T, which C^T stores by rows.
    if (p.cs_c != 1 && p.rs_c == 1) {
        Problem<T> q = p;
        q.m = p.n;
        q.n = p.m;
        q.a = p.b, q.rs_a = p.cs_b, q.cs_a = p.rs_b, q.bs_a = p.bs_b;
        q.b = p.a, q.rs_b = p.cs_a, q.cs_b = p.rs_a, q.bs_b = p.bs_a;
        q.rs_c = p.cs_c, q.cs_c = 1;
        q.bias_rs = p.bias_cs, q.bias_cs = p.bias_rs;
        p = q;
        if (p.k == 1) p.cs_a = 1;
    }
    if (p.k == 0) {
        scale_only(p);
        return;
    }

    const GemmConfig cfg = config_for<T>(isa);
    Plan plan;
    // Multiply-adds per product, as a double: m n k can exceed 2^63.
    const double work =
        static_cast<double>(p.m) * static_cast<double>(p.n) * static_cast<double>(p.k);
    const bool b_rows = p.cs_b == 1;                 // B rows contiguous: direct possible
    const bool b_cols = p.rs_b == 1 && p.cs_b != 1;  // B = W^T: dot form possible
    GemmPath path = options.path;
    if (path == GemmPath::automatic) {
        const bool w_cached = static_cast<double>(p.n) * static_cast<double>(p.k) *
                                  static_cast<double>(sizeof(T)) <=
                              static_cast<double>(cfg.l2);
        if (b_cols && (p.m <= cfg.dot_max_m || (w_cached && p.m <= kDotMaxMCached))) {
            path = GemmPath::dot;
        } else if (b_rows && (p.m <= cfg.direct_max_m ||
                              work <= static_cast<double>(cfg.direct_max_work))) {
            path = GemmPath::direct;
        } else {
            path = GemmPath::packed;
        }
    }
    if ((path == GemmPath::direct && !b_rows) || (path == GemmPath::dot && p.rs_b != 1)) {
        path = GemmPath::packed;
    }
    plan.kc = even_blocks(p.k, options.kc > 0 ? options.kc : cfg.kc, 1);
    plan.mc = even_blocks(p.m, options.mc > 0 ? options.mc : cfg.mc, cfg.mr);
    plan.nc = even_blocks(p.n, options.nc > 0 ? options.nc : cfg.nc, cfg.nr);
    plan.dot = path == GemmPath::dot;
    plan.pack_b = plan.pack_a = path == GemmPath::packed;
    // The direct path reads A in place by rows (cs_a == 1), or by columns when
    // they are close (A^T with rows less than kInPlaceMaxColBytes apart); else
    // it packs A (A^T rows 12 KiB apart, 3072 x 768 x 4096: 87 -> 102 GFLOP/s;
    // 4 KiB apart, 1024^3: 91 -> 99; 2 KiB, 784 x 256 x 512: in place 112, packed 105).
    // Row-major A is read in place on every path: its MR rows stream as well
    // as a packed micro-panel (packed path, 1024^3: 105 vs 101 GFLOP/s; Linear
    // 64 x 10 x 256: 43 vs 35), and the copy is saved.
    if (path == GemmPath::packed && p.cs_a == 1) plan.pack_a = false;
    if (path == GemmPath::direct) {
        const int64_t col_bytes = (p.cs_a < 0 ? -p.cs_a : p.cs_a) * int64_t(sizeof(T));
        plan.pack_a = !(p.cs_a == 1 || (p.rs_a == 1 && col_bytes < kInPlaceMaxColBytes));
    }
    if (path == GemmPath::direct && p.m <= cfg.direct_max_m) {
        plan.rows_outer = true;
        plan.kc = even_blocks(p.k, options.kc > 0 ? options.kc : skinny_kc(p.m), 1);
    }

    int threads = options.threads > 0 ? options.threads : get_num_threads();
#if defined(NNFORGE_OPENMP)
    if (omp_in_parallel()) threads = 1;
#else
    threads = 1;
#endif
    const int64_t row_tiles = (p.m + cfg.mr - 1) / cfg.mr;
    const int64_t col_tiles = (p.n + cfg.nr - 1) / cfg.nr;
    const int64_t tiles = row_tiles > col_tiles ? row_tiles : col_tiles;
    const double min_work = static_cast<double>(cfg.parallel_min_work);
    if (work * static_cast<double>(p.batch) < min_work) threads = 1;
    if (threads > 1) {
        plan.batch_parallel = p.batch >= threads &&
                              (p.batch % threads == 0 || p.batch >= 4 * threads ||
                               work < min_work);
        if (!plan.batch_parallel && tiles < 2) threads = 1;
        if (!plan.batch_parallel && tiles < threads) threads = static_cast<int>(tiles);
        if (plan.batch_parallel && p.batch < threads) threads = static_cast<int>(p.batch);
    }
    plan.threads = threads;
    // Up to 4 pieces per thread, each at least kParallelMinWork / 2 and a whole tile.
    if (threads > 1 && !plan.batch_parallel) {
        const double most = work / (min_work / 2);
        int64_t pieces = most < 4.0 * threads ? static_cast<int64_t>(most) : 4 * threads;
        pieces = pieces > threads ? pieces : threads;
        plan.pieces = pieces < tiles ? pieces : tiles;
        // Skinny products stream B from memory: one long run of columns per
        // thread keeps each row's reads contiguous (8 pieces: 0.6x numpy at m = 1).
        if (plan.rows_outer) plan.pieces = threads;
    }

    // Pieces of rows would each pack all of B: when B is small enough, pack it
    // once for all threads instead (Linear at batch 64, 784 -> 256, 2 threads:
    // 8 pieces packed W^T 8 times, more than the product's own work).
    const double b_bytes = static_cast<double>(p.k) *
                           static_cast<double>(round_up(p.n, cfg.nr)) * sizeof(T);
    if (threads > 1 && !plan.batch_parallel && plan.pack_b && row_tiles >= col_tiles &&
        b_bytes <= static_cast<double>(kSharedBMaxBytes)) {
        plan.shared_b = true;
        plan.ws_shared_b = round_up(p.k * round_up(p.n, cfg.nr), 16);
    }

    const int64_t kc = p.k < plan.kc ? p.k : plan.kc;
    const int64_t mc = p.m < plan.mc ? p.m : plan.mc;
    const int64_t nc = p.n < plan.nc ? p.n : plan.nc;
    if (plan.dot) {
        plan.ws_a = p.cs_a != 1 ? round_up(p.m * p.k, 16) : 0;  // A rows made contiguous
    } else if (plan.pack_a || (p.cs_a != 1 && p.rs_a != 1)) {  // the direct path packs such A
        plan.ws_a = round_up((mc + cfg.mr - 1) / cfg.mr * cfg.mr * kc, 16);
    }
    plan.ws_b = plan.pack_b ? round_up((nc + cfg.nr - 1) / cfg.nr * cfg.nr * kc, 16) : 0;
    if (plan.shared_b) plan.ws_b = 0;
    T* ws = static_cast<T*>(workspace(
        (static_cast<std::size_t>(threads) * (plan.ws_a + plan.ws_b) + plan.ws_shared_b) *
        sizeof(T)));

#if defined(__x86_64__) || defined(_M_X64)
    if (isa == Isa::avx512) return gemm_detail::run_avx512<T>(p, plan, ws);
    if (isa == Isa::avx2) return gemm_detail::run_avx2<T>(p, plan, ws);
#endif
    gemm_detail::run_scalar<T>(p, plan, ws);
}

// ---------------------------------------------------------------- prepacked B
// The tile whose padded rows, ceil(m / MR) MR, are fewest (a partial row tile
// streams all of B like a full one, so it costs about as much); ties keep the
// standard tile. options.tile_rows forces one.
template <typename T>
PackedLayout gemm_pack_layout(int64_t m, int64_t k, int64_t n, const GemmOptions& options) {
    if (m < 0 || k < 0 || n < 0) {
        throw std::invalid_argument("gemm_pack_layout: negative size (m=" + std::to_string(m) +
                                    ", k=" + std::to_string(k) + ", n=" + std::to_string(n) +
                                    ")");
    }
    PackedLayout l;
    l.isa = choose_isa(options);
    TileShape shape = tile_shape<T>(l.isa);
#if defined(__x86_64__) || defined(_M_X64)
    if (l.isa == Isa::avx512) {
        const TileShape tall = gemm_detail::tile_shape_tall_avx512<T>();
        const bool pick_tall =
            options.tile_rows ? options.tile_rows == tall.mr
                              : round_up(m, tall.mr) < round_up(m, shape.mr);
        if (pick_tall) shape = tall;
    }
#endif
    l.mr = shape.mr;
    l.nr = shape.nr;
    l.k = k;
    l.n = n;
    l.size = round_up(n, shape.nr) * k;
    return l;
}

template <typename T>
void gemm_pack_b(const PackedLayout& l, const T* b, int64_t rs_b, int64_t cs_b, T* out) {
    if (l.k == 0 || l.n == 0) return;
    if (l.n == 1) cs_b = 1;
    const TileShape shape{l.mr, l.nr};
#if defined(__x86_64__) || defined(_M_X64)
    if (l.isa == Isa::avx512) return gemm_detail::pack_b_whole_avx512(shape, l.k, l.n, b, rs_b,
                                                                      cs_b, out);
    if (l.isa == Isa::avx2) return gemm_detail::pack_b_whole_avx2(shape, l.k, l.n, b, rs_b, cs_b,
                                                                  out);
#endif
    gemm_detail::pack_b_whole_scalar(shape, l.k, l.n, b, rs_b, cs_b, out);
}

template <typename T>
void gemm_prepacked(const GemmArgs<T>& args, const PackedLayout& l, const T* packed,
                    const GemmOptions& options) {
    if (args.m < 0 || args.k != l.k || args.n != l.n || args.batch != 1) {
        throw std::invalid_argument(
            "gemm_prepacked: the product (m=" + std::to_string(args.m) + ", k=" +
            std::to_string(args.k) + ", n=" + std::to_string(args.n) + ", batch=" +
            std::to_string(args.batch) + ") does not match the packed B (k=" +
            std::to_string(l.k) + ", n=" + std::to_string(l.n) + ", batch 1)");
    }
    if (args.m == 0 || args.n == 0) return;
    Problem<T> p = problem_of(args);   // B comes packed: p.b and its strides go unread
    if (p.k == 0) return scale_only(p);
    if (p.n == 1) p.cs_c = 1, p.bias_cs = 0;
    if (p.k == 1) p.cs_a = 1;
    // The kernels read A in place by rows or by columns; any other view is copied.
    std::vector<T> a_copy;
    if (p.cs_a != 1 && p.rs_a != 1) {
        a_copy.resize(static_cast<size_t>(p.m * p.k));
        for (int64_t i = 0; i < p.m; ++i) {
            for (int64_t q = 0; q < p.k; ++q) a_copy[i * p.k + q] = p.a[i * p.rs_a + q * p.cs_a];
        }
        p.a = a_copy.data();
        p.rs_a = p.k;
        p.cs_a = 1;
    }
    int threads = options.threads > 0 ? options.threads : get_num_threads();
    if (p.m * p.n * p.k < kParallelMinWork) threads = 1;
    const TileShape shape{l.mr, l.nr};
#if defined(__x86_64__) || defined(_M_X64)
    if (l.isa == Isa::avx512) return gemm_detail::run_prepacked_avx512(shape, p, packed, threads);
    if (l.isa == Isa::avx2) return gemm_detail::run_prepacked_avx2(shape, p, packed, threads);
#endif
    gemm_detail::run_prepacked_scalar(shape, p, packed, threads);
}

FmaProbe fma_probe(Isa isa, int64_t iterations) {
    if (!isa_available(isa)) {
        throw std::runtime_error(std::string("fma_probe: isa '") + isa_name(isa) +
                                 "' is not available on this CPU");
    }
    double (*seconds)(int64_t, bool) = gemm_detail::fma_seconds_scalar;
    FmaProbe out;
#if defined(__x86_64__) || defined(_M_X64)
    if (isa == Isa::avx512) seconds = gemm_detail::fma_seconds_avx512, out.lanes = 16;
    if (isa == Isa::avx2) seconds = gemm_detail::fma_seconds_avx2, out.lanes = 8;
#endif
    seconds(iterations / 10 + 1, false);  // warm up (clock ramp)
    out.dependent_ns = seconds(iterations, true) / static_cast<double>(iterations) * 1e9;
    out.per_ns = 12.0 * static_cast<double>(iterations) / (seconds(iterations, false) * 1e9);
    return out;
}

template <typename T>
void gemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, T alpha, const T* a,
          int64_t lda, const T* b, int64_t ldb, T beta, T* c, int64_t ldc) {
    GemmArgs<T> g;
    g.m = m;
    g.n = n;
    g.k = k;
    g.alpha = alpha;
    g.beta = beta;
    g.a = a;
    g.rs_a = trans_a ? 1 : lda;
    g.cs_a = trans_a ? lda : 1;
    g.b = b;
    g.rs_b = trans_b ? 1 : ldb;
    g.cs_b = trans_b ? ldb : 1;
    g.c = c;
    g.rs_c = ldc;
    g.cs_c = 1;
    gemm(g);
}

template void gemm<float>(const GemmArgs<float>&, const GemmOptions&);
template void gemm<double>(const GemmArgs<double>&, const GemmOptions&);
template void gemm<float>(bool, bool, int64_t, int64_t, int64_t, float, const float*, int64_t,
                          const float*, int64_t, float, float*, int64_t);
template void gemm<double>(bool, bool, int64_t, int64_t, int64_t, double, const double*, int64_t,
                           const double*, int64_t, double, double*, int64_t);
template PackedLayout gemm_pack_layout<float>(int64_t, int64_t, int64_t, const GemmOptions&);
template PackedLayout gemm_pack_layout<double>(int64_t, int64_t, int64_t, const GemmOptions&);
template void gemm_pack_b<float>(const PackedLayout&, const float*, int64_t, int64_t, float*);
template void gemm_pack_b<double>(const PackedLayout&, const double*, int64_t, int64_t, double*);
template void gemm_prepacked<float>(const GemmArgs<float>&, const PackedLayout&, const float*,
                                    const GemmOptions&);
template void gemm_prepacked<double>(const GemmArgs<double>&, const PackedLayout&, const double*,
                                     const GemmOptions&);
template GemmConfig gemm_config<float>(const GemmOptions&);
template GemmConfig gemm_config<double>(const GemmOptions&);

}  // namespace nnforge
