// The direct convolution's plane loops (see conv.h, conv_direct.cpp), built
// once per ISA: included by conv_direct.cpp (portable), conv_avx2.cpp and
// conv_avx512.cpp (compiled with those flags). The loop bodies have internal
// linkage (an unnamed namespace), so no AVX-512 build of them can be picked by
// the linker for the portable path; they call no out-of-line std:: templates.
//
// One plane is one (sample, channel) image held in a zero-padded buffer `buf`
// (row stride ld) that the caller fills, so the loops never test bounds:
//
//   forward   y[r, c] = init (+ y[r, c] if accumulate)
//                       + sum_{i, j} w[i kw + j] buf[(r sh + i dh) ld + c sw + j dw]
//   weight    dw[i kw + j] += sum_{r, c} dy[r, c] buf[(r sh + i dh) ld + c sw + j dw]
//
// for r < oh, c < ow (y is oh x ow, C-contiguous; dy rows are ldy apart, zero
// past ow). The input gradient is the forward loop too: dy spread out by the
// stride into a buffer, read with the kernel flipped (conv_direct.cpp).
//
// Vectorization (GCC/Clang vector extensions, one vector = L lanes of T, the
// ISA's width): the forward computes a block of kPlaneRows output rows by L
// columns in kPlaneRows independent accumulator vectors and walks the kh kw
// taps over it (each tap: one broadcast weight, kPlaneRows FMAs).
// The weight loop keeps TG taps in TG accumulator vectors and walks the plane
// once per group of taps, loading each dy vector once for all TG taps. Blocks
// past the edge of the plane compute on the buffer's slack (rows and columns
// the caller allocates beyond the plane, see kPlaneRows / kMaxLanes) and are
// not stored; the weight loop masks its last partial vector, so slack values
// never reach dw.
#pragma once

#include <cstdint>

namespace nnforge {
namespace conv_detail {

struct PlaneGeom {
    int64_t oh = 0, ow = 0;  // output plane (y, or dy for the weight loop)
    int64_t kh = 0, kw = 0, sh = 1, sw = 1, dh = 1, dw = 1;
    int64_t ld = 0;          // row stride of buf
    int64_t ldy = 0;         // weight loop: row stride of dy, a multiple of kMaxLanes >= ow
};                           // (dy zero past ow: the caller pads it)

constexpr int64_t kPlaneRows = 4;   // output rows per forward block
constexpr int64_t kMaxLanes = 16;   // the widest L (float in 512-bit vectors)

template <typename T>
using PlaneForwardFn = void (*)(const T* buf, const T* w, T init, bool accumulate, T* y,
                                const PlaneGeom& g);
template <typename T>
using PlaneWeightFn = void (*)(const T* buf, const T* dy, T* dw, const PlaneGeom& g);

// The multi-channel direct forward (conv_direct.cpp's implicit GEMM): for
// positions p in [0, np) (a multiple of lanes) and output channels in blocks
// of cb,
//   out[blk cb + c, p] = bias[blk cb + c] + sum_t w[(blk K + t) cb + c] xp[off[t] + p]
// (w and bias packed and zero-padded to whole blocks by the caller; out rows
// ldo apart; xp readable up to off[K - 1] + np). One block of lanes positions
// holds cb accumulator vectors; each tap loads one input vector and does cb FMAs.
template <typename T>
using ImplicitForwardFn = void (*)(const T* xp, const int64_t* off, int64_t k, const T* w,
                                   const T* bias, int64_t blocks, T* out, int64_t np,
                                   int64_t ldo);

template <typename T>
struct PlaneKernels {
    PlaneForwardFn<T> forward = nullptr;
    PlaneWeightFn<T> weight = nullptr;
    ImplicitForwardFn<T> implicit = nullptr;
    int lanes = 1;  // positions per vector (implicit: np is a multiple of it)
    int cb = 1;     // output channels per implicit block
};

// One per ISA build (conv_direct.cpp, conv_avx2.cpp, conv_avx512.cpp).
template <typename T>
PlaneKernels<T> plane_kernels_portable();
template <typename T>
PlaneKernels<T> plane_kernels_avx2();
template <typename T>
PlaneKernels<T> plane_kernels_avx512();

}  // namespace conv_detail

namespace {

#if defined(__AVX512F__)
constexpr int kVectorBytes = 64;
#elif defined(__AVX2__)
constexpr int kVectorBytes = 32;
#else
constexpr int kVectorBytes = 16;
#endif

using conv_detail::kPlaneRows;
using conv_detail::PlaneGeom;

// One vector of T in GCC/Clang's generic vector extension: + and * are
// lane-wise (a scalar operand is broadcast) and, with -ffp-contract=fast
// (set for these files in CMakeLists.txt), a * b + c compiles to one FMA.
template <typename T>
struct Vec;
template <>
struct Vec<float> {
    typedef float type __attribute__((vector_size(kVectorBytes)));
    typedef int32_t lanes __attribute__((vector_size(kVectorBytes)));
};
template <>
struct Vec<double> {
    typedef double type __attribute__((vector_size(kVectorBytes)));
    typedef int64_t lanes __attribute__((vector_size(kVectorBytes)));
};

template <typename V, typename T>
inline V load(const T* p) {
    V v;
    __builtin_memcpy(&v, p, sizeof(V));
    return v;
}

template <typename V, typename T>
inline V load_strided(const T* p, int64_t step) {
    V v;
    for (int l = 0; l < static_cast<int>(sizeof(V) / sizeof(T)); ++l) v[l] = p[l * step];
    return v;
}

template <typename V, typename T>
inline V splat(T x) {
    return V{} + x;
}

// An output tile of the plane loops: R accumulator vectors for rows r0.. and
// columns c0.. of y (``y`` points at (r0, c0), rows of ``ow``), of which
// rows x cols (cols <= L) lie inside the plane. tile_begin starts each at
// `init`, plus y's values when accumulating; tile_store writes them back.
template <int L, typename V, int R, typename T>
__attribute__((always_inline)) inline void tile_begin(V (&acc)[R], T init, bool accumulate,
                                                      const T* y, int64_t ow, int64_t rows,
                                                      int64_t cols) {
    for (int r = 0; r < R; ++r) acc[r] = splat<V>(init);
    if (!accumulate) return;
    for (int64_t r = 0; r < rows; ++r) {
        const T* yr = y + r * ow;
        if (cols == L) {
            acc[r] += load<V>(yr);
        } else {
            for (int64_t l = 0; l < cols; ++l) acc[r][l] += yr[l];
        }
    }
}

template <int L, typename V, int R, typename T>
__attribute__((always_inline)) inline void tile_store(const V (&acc)[R], T* y, int64_t ow,
                                                      int64_t rows, int64_t cols) {
    for (int64_t r = 0; r < rows; ++r) {
        T* yr = y + r * ow;
        if (cols == L) {
            __builtin_memcpy(yr, &acc[r], sizeof(V));
        } else {
            for (int64_t l = 0; l < cols; ++l) yr[l] = acc[r][l];
        }
    }
}

template <typename T, bool kUnitStride>
void plane_forward_loop(const T* __restrict buf, const T* __restrict w, T init, bool accumulate,
                        T* __restrict y, const PlaneGeom& g) {
    using V = typename Vec<T>::type;
    constexpr int L = kVectorBytes / static_cast<int>(sizeof(T));
    constexpr int R = static_cast<int>(kPlaneRows);
    const int64_t sw = kUnitStride ? 1 : g.sw;
    const int64_t row_step = g.sh * g.ld;
    for (int64_t r0 = 0; r0 < g.oh; r0 += R) {
        const int64_t rows = g.oh - r0 < R ? g.oh - r0 : R;
        for (int64_t c0 = 0; c0 < g.ow; c0 += L) {
            const int64_t cols = g.ow - c0 < L ? g.ow - c0 : L;
            V acc[R];
            tile_begin<L>(acc, init, accumulate, y + r0 * g.ow + c0, g.ow, rows, cols);
            const T* base = buf + r0 * row_step + c0 * sw;
            for (int64_t i = 0; i < g.kh; ++i) {
                for (int64_t j = 0; j < g.kw; ++j) {
                    const V wv = splat<V>(w[i * g.kw + j]);
                    const T* tap = base + i * g.dh * g.ld + j * g.dw;
                    for (int r = 0; r < R; ++r) {
                        const T* src = tap + r * row_step;
                        acc[r] += wv * (kUnitStride ? load<V>(src) : load_strided<V>(src, sw));
                    }
                }
            }
            tile_store<L>(acc, y + r0 * g.ow + c0, g.ow, rows, cols);
        }
    }
}

template <typename T, int TG, bool kUnitStride>
void plane_weight_group(const T* __restrict buf, const T* __restrict dy, T* __restrict dw,
                        int64_t t0, int64_t nt, const PlaneGeom& g) {
    using V = typename Vec<T>::type;
    using Lanes = typename Vec<T>::lanes;
    constexpr int L = kVectorBytes / static_cast<int>(sizeof(T));
    const int64_t sw = kUnitStride ? 1 : g.sw;
    int64_t off[TG];
    for (int t = 0; t < TG; ++t) {
        const int64_t tap = t < nt ? t0 + t : t0;  // spare slots repeat a real tap
        off[t] = (tap / g.kw) * g.dh * g.ld + (tap % g.kw) * g.dw;
    }
    V acc[TG];
    for (int t = 0; t < TG; ++t) acc[t] = V{};
    const int64_t full = g.ow - g.ow % L;
    const int64_t rem = g.ow - full;
    Lanes live;  // lanes of the last, partial vector that hold a real column
    for (int l = 0; l < L; ++l) live[l] = l < rem ? -1 : 0;
    for (int64_t r = 0; r < g.oh; ++r) {
        const T* dyr = dy + r * g.ldy;
        const T* br = buf + r * g.sh * g.ld;
        for (int64_t c0 = 0; c0 < full; c0 += L) {
            const V d = load<V>(dyr + c0);
            for (int t = 0; t < TG; ++t) {
                const T* src = br + off[t] + c0 * sw;
                acc[t] += d * (kUnitStride ? load<V>(src) : load_strided<V>(src, sw));
            }
        }
        if (rem) {
            const V d = load<V>(dyr + full);
            for (int t = 0; t < TG; ++t) {
                const T* src = br + off[t] + full * sw;
                // Slack columns may hold any value (inf too): select, never multiply, them away.
                const V x = kUnitStride ? load<V>(src) : load_strided<V>(src, sw);
                acc[t] += live ? d * x : V{};
            }
        }
    }
    for (int64_t t = 0; t < nt; ++t) {
        T s = T(0);
        for (int l = 0; l < L; ++l) s += acc[t][l];
        dw[t0 + t] += s;
    }
}

// Taps split into groups of at most 8, as even as possible (9 taps: 5 + 4).
template <typename T, bool kUnitStride>
void plane_weight_loop(const T* buf, const T* dy, T* dw, const PlaneGeom& g) {
    const int64_t taps = g.kh * g.kw;
    const int64_t groups = (taps + 7) / 8;
    const int64_t tg = (taps + groups - 1) / groups;
    for (int64_t t0 = 0; t0 < taps; t0 += tg) {
        const int64_t nt = taps - t0 < tg ? taps - t0 : tg;
        switch (tg) {
            case 1: plane_weight_group<T, 1, kUnitStride>(buf, dy, dw, t0, nt, g); break;
            case 2: plane_weight_group<T, 2, kUnitStride>(buf, dy, dw, t0, nt, g); break;
            case 3: plane_weight_group<T, 3, kUnitStride>(buf, dy, dw, t0, nt, g); break;
            case 4: plane_weight_group<T, 4, kUnitStride>(buf, dy, dw, t0, nt, g); break;
            case 5: plane_weight_group<T, 5, kUnitStride>(buf, dy, dw, t0, nt, g); break;
            case 6: plane_weight_group<T, 6, kUnitStride>(buf, dy, dw, t0, nt, g); break;
            case 7: plane_weight_group<T, 7, kUnitStride>(buf, dy, dw, t0, nt, g); break;
            default: plane_weight_group<T, 8, kUnitStride>(buf, dy, dw, t0, nt, g); break;
        }
    }
}

// The same two loops for a fixed kh x kw kernel with stride 1 and dilation 1
// (3x3, 5x5: the common shapes): every tap's offset is a constant, the
// weights (forward) or the tap accumulators (weight loop, up to 9 taps) stay
// in registers, and the loops unroll completely.
template <typename T, int KH, int KW>
void plane_forward_fixed(const T* __restrict buf, const T* __restrict w, T init,
                         bool accumulate, T* __restrict y, const PlaneGeom& g) {
    using V = typename Vec<T>::type;
    constexpr int L = kVectorBytes / static_cast<int>(sizeof(T));
    constexpr int R = static_cast<int>(kPlaneRows);
    V wv[KH * KW];
    for (int t = 0; t < KH * KW; ++t) wv[t] = splat<V>(w[t]);
    for (int64_t r0 = 0; r0 < g.oh; r0 += R) {
        const int64_t rows = g.oh - r0 < R ? g.oh - r0 : R;
        for (int64_t c0 = 0; c0 < g.ow; c0 += L) {
            const int64_t cols = g.ow - c0 < L ? g.ow - c0 : L;
            V acc[R];
            tile_begin<L>(acc, init, accumulate, y + r0 * g.ow + c0, g.ow, rows, cols);
            const T* base = buf + r0 * g.ld + c0;
#pragma GCC unroll 8
            for (int q = 0; q < R + KH - 1; ++q) {  // input row q feeds output rows q - i
                const T* row = base + q * g.ld;
#pragma GCC unroll 8
                for (int j = 0; j < KW; ++j) {
                    const V v = load<V>(row + j);
#pragma GCC unroll 8
                    for (int i = 0; i < KH; ++i) {
                        if (q - i >= 0 && q - i < R) acc[q - i] += wv[i * KW + j] * v;
                    }
                }
            }
            tile_store<L>(acc, y + r0 * g.ow + c0, g.ow, rows, cols);
        }
    }
}

template <typename T, int KH, int KW>
void plane_weight_fixed(const T* __restrict buf, const T* __restrict dy, T* __restrict dw,
                        const PlaneGeom& g) {
    using V = typename Vec<T>::type;
    using Lanes = typename Vec<T>::lanes;
    constexpr int L = kVectorBytes / static_cast<int>(sizeof(T));
    V acc[KH * KW];
    for (int t = 0; t < KH * KW; ++t) acc[t] = V{};
    const int64_t full = g.ow - g.ow % L;
    const int64_t rem = g.ow - full;
    Lanes live;
    for (int l = 0; l < L; ++l) live[l] = l < rem ? -1 : 0;
    for (int64_t r = 0; r < g.oh; ++r) {
        const T* dyr = dy + r * g.ldy;
        const T* br = buf + r * g.ld;
        for (int64_t c0 = 0; c0 < full; c0 += L) {
            const V d = load<V>(dyr + c0);
#pragma GCC unroll 8
            for (int i = 0; i < KH; ++i)
#pragma GCC unroll 8
                for (int j = 0; j < KW; ++j) acc[i * KW + j] += d * load<V>(br + i * g.ld + c0 + j);
        }
        if (rem) {
            const V d = load<V>(dyr + full);
#pragma GCC unroll 8
            for (int i = 0; i < KH; ++i)
#pragma GCC unroll 8
                for (int j = 0; j < KW; ++j) {
                    const V x = load<V>(br + i * g.ld + full + j);
                    acc[i * KW + j] += live ? d * x : V{};
                }
        }
    }
    for (int t = 0; t < KH * KW; ++t) {
        T s = T(0);
        for (int l = 0; l < L; ++l) s += acc[t][l];
        dw[t] += s;
    }
}

inline bool unit_geometry(const PlaneGeom& g) {
    return g.sh == 1 && g.sw == 1 && g.dh == 1 && g.dw == 1;
}

template <typename T>
void plane_forward(const T* buf, const T* w, T init, bool accumulate, T* y, const PlaneGeom& g) {
    if (unit_geometry(g) && g.kh == 3 && g.kw == 3) {
        plane_forward_fixed<T, 3, 3>(buf, w, init, accumulate, y, g);
    } else if (unit_geometry(g) && g.kh == 5 && g.kw == 5) {
        plane_forward_fixed<T, 5, 5>(buf, w, init, accumulate, y, g);
    } else if (g.sw == 1) {
        plane_forward_loop<T, true>(buf, w, init, accumulate, y, g);
    } else {
        plane_forward_loop<T, false>(buf, w, init, accumulate, y, g);
    }
}

template <typename T>
void plane_weight(const T* buf, const T* dy, T* dw, const PlaneGeom& g) {
    if (unit_geometry(g) && g.kh == 3 && g.kw == 3) {
        plane_weight_fixed<T, 3, 3>(buf, dy, dw, g);
    } else if (g.sw == 1) {
        plane_weight_loop<T, true>(buf, dy, dw, g);
    } else {
        plane_weight_loop<T, false>(buf, dy, dw, g);
    }
}

// splat() written as a brace list: GCC then folds the broadcast into the
// FMA's memory operand (AVX-512 {1toL}) instead of a load and a shuffle.
template <typename V, typename T>
inline V splat_list(T s) {
    constexpr int L = static_cast<int>(sizeof(V) / sizeof(T));
    if constexpr (L == 16) {
        return V{s, s, s, s, s, s, s, s, s, s, s, s, s, s, s, s};
    } else if constexpr (L == 8) {
        return V{s, s, s, s, s, s, s, s};
    } else if constexpr (L == 4) {
        return V{s, s, s, s};
    } else {
        return V{s, s};
    }
}

// Output channels per implicit block: 16 accumulators where there are 32
// vector registers (AVX-512), else 8.
constexpr int kImplicitBlock = kVectorBytes == 64 ? 16 : 8;

template <typename T>
void implicit_forward(const T* __restrict xp, const int64_t* __restrict off, int64_t k,
                      const T* __restrict w, const T* __restrict bias, int64_t blocks,
                      T* __restrict out, int64_t np, int64_t ldo) {
    using V = typename Vec<T>::type;
    constexpr int L = kVectorBytes / static_cast<int>(sizeof(T));
    constexpr int CB = kImplicitBlock;
    for (int64_t blk = 0; blk < blocks; ++blk) {
        const T* wb = w + blk * k * CB;
        for (int64_t p0 = 0; p0 < np; p0 += L) {
            V acc[CB];
            for (int c = 0; c < CB; ++c) acc[c] = splat<V>(bias[blk * CB + c]);
            const T* src = xp + p0;
            for (int64_t t = 0; t < k; ++t) {
                const V v = load<V>(src + off[t]);
                const T* wt = wb + t * CB;
#pragma GCC unroll 16
                for (int c = 0; c < CB; ++c) acc[c] += splat_list<V>(wt[c]) * v;
            }
            for (int c = 0; c < CB; ++c)
                __builtin_memcpy(out + (blk * CB + c) * ldo + p0, &acc[c], sizeof(V));
        }
    }
}

template <typename T>
conv_detail::PlaneKernels<T> make_plane_kernels() {
    conv_detail::PlaneKernels<T> k;
    k.forward = &plane_forward<T>;
    k.weight = &plane_weight<T>;
    k.implicit = &implicit_forward<T>;
    k.lanes = kVectorBytes / static_cast<int>(sizeof(T));
    k.cb = kImplicitBlock;
    return k;
}

}  // namespace
}  // namespace nnforge
