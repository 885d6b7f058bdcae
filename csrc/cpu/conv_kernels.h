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
// for r < oh, c < ow (y and dy are oh x ow, C-contiguous). The input gradient
// is the forward loop too: dy spread out by the stride into a buffer, read
// with the kernel flipped (conv_direct.cpp).
//
// Vectorization: the forward computes a block of kRows output rows by L
// columns (L = one vector of T) in kRows independent accumulator vectors and
// walks the kh kw taps over it (each tap: one broadcast weight, kRows FMAs).
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
};

constexpr int64_t kPlaneRows = 4;   // output rows per forward block
constexpr int64_t kMaxLanes = 16;   // the widest L (float in 512-bit vectors)

template <typename T>
using PlaneForwardFn = void (*)(const T* buf, const T* w, T init, bool accumulate, T* y,
                                const PlaneGeom& g);
template <typename T>
using PlaneWeightFn = void (*)(const T* buf, const T* dy, T* dw, const PlaneGeom& g);

template <typename T>
struct PlaneKernels {
    PlaneForwardFn<T> forward = nullptr;
    PlaneWeightFn<T> weight = nullptr;
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

template <typename T, int L, bool kUnitStride>
void plane_forward_loop(const T* __restrict buf, const T* __restrict w, T init, bool accumulate,
                        T* __restrict y, const PlaneGeom& g) {
    constexpr int R = static_cast<int>(kPlaneRows);
    const int64_t sw = kUnitStride ? 1 : g.sw;
    const int64_t row_step = g.sh * g.ld;
    for (int64_t r0 = 0; r0 < g.oh; r0 += R) {
        const int64_t rows = g.oh - r0 < R ? g.oh - r0 : R;
        for (int64_t c0 = 0; c0 < g.ow; c0 += L) {
            const int64_t cols = g.ow - c0 < L ? g.ow - c0 : L;
            T acc[R][L];
            for (int r = 0; r < R; ++r)
                for (int l = 0; l < L; ++l) acc[r][l] = init;
            if (accumulate) {
                for (int64_t r = 0; r < rows; ++r)
                    for (int64_t l = 0; l < cols; ++l) acc[r][l] += y[(r0 + r) * g.ow + c0 + l];
            }
            const T* base = buf + r0 * row_step + c0 * sw;
            for (int64_t i = 0; i < g.kh; ++i) {
                for (int64_t j = 0; j < g.kw; ++j) {
                    const T wv = w[i * g.kw + j];
                    const T* tap = base + i * g.dh * g.ld + j * g.dw;
                    for (int r = 0; r < R; ++r) {
                        const T* src = tap + r * row_step;
                        for (int l = 0; l < L; ++l) acc[r][l] += wv * src[l * sw];
                    }
                }
            }
            for (int64_t r = 0; r < rows; ++r)
                for (int64_t l = 0; l < cols; ++l) y[(r0 + r) * g.ow + c0 + l] = acc[r][l];
        }
    }
}

template <typename T, int L, int TG, bool kUnitStride>
void plane_weight_group(const T* __restrict buf, const T* __restrict dy, T* __restrict dw,
                        int64_t t0, int64_t nt, const PlaneGeom& g) {
    const int64_t sw = kUnitStride ? 1 : g.sw;
    int64_t off[TG];
    for (int t = 0; t < TG; ++t) {
        const int64_t tap = t < nt ? t0 + t : t0;  // spare slots repeat a real tap
        off[t] = (tap / g.kw) * g.dh * g.ld + (tap % g.kw) * g.dw;
    }
    T acc[TG][L];
    for (int t = 0; t < TG; ++t)
        for (int l = 0; l < L; ++l) acc[t][l] = T(0);
    const int64_t full = g.ow - g.ow % L;
    for (int64_t r = 0; r < g.oh; ++r) {
        const T* dyr = dy + r * g.ow;
        const T* br = buf + r * g.sh * g.ld;
        for (int64_t c0 = 0; c0 < full; c0 += L) {
            T d[L];
            for (int l = 0; l < L; ++l) d[l] = dyr[c0 + l];
            for (int t = 0; t < TG; ++t) {
                const T* src = br + off[t] + c0 * sw;
                for (int l = 0; l < L; ++l) acc[t][l] += d[l] * src[l * sw];
            }
        }
        if (full < g.ow) {
            const int64_t rem = g.ow - full;
            T d[L];
            for (int l = 0; l < L; ++l) d[l] = l < rem ? dyr[full + l] : T(0);
            for (int t = 0; t < TG; ++t) {
                const T* src = br + off[t] + full * sw;
                for (int l = 0; l < L; ++l) {
                    const T v = d[l] * src[l * sw];
                    acc[t][l] += l < rem ? v : T(0);
                }
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
template <typename T, int L, bool kUnitStride>
void plane_weight_loop(const T* buf, const T* dy, T* dw, const PlaneGeom& g) {
    const int64_t taps = g.kh * g.kw;
    const int64_t groups = (taps + 7) / 8;
    const int64_t tg = (taps + groups - 1) / groups;
    for (int64_t t0 = 0; t0 < taps; t0 += tg) {
        const int64_t nt = taps - t0 < tg ? taps - t0 : tg;
        switch (tg) {
            case 1: plane_weight_group<T, L, 1, kUnitStride>(buf, dy, dw, t0, nt, g); break;
            case 2: plane_weight_group<T, L, 2, kUnitStride>(buf, dy, dw, t0, nt, g); break;
            case 3: plane_weight_group<T, L, 3, kUnitStride>(buf, dy, dw, t0, nt, g); break;
            case 4: plane_weight_group<T, L, 4, kUnitStride>(buf, dy, dw, t0, nt, g); break;
            case 5: plane_weight_group<T, L, 5, kUnitStride>(buf, dy, dw, t0, nt, g); break;
            case 6: plane_weight_group<T, L, 6, kUnitStride>(buf, dy, dw, t0, nt, g); break;
            case 7: plane_weight_group<T, L, 7, kUnitStride>(buf, dy, dw, t0, nt, g); break;
            default: plane_weight_group<T, L, 8, kUnitStride>(buf, dy, dw, t0, nt, g); break;
        }
    }
}

template <typename T>
void plane_forward(const T* buf, const T* w, T init, bool accumulate, T* y, const PlaneGeom& g) {
    constexpr int L = kVectorBytes / static_cast<int>(sizeof(T));
    if (g.sw == 1) {
        plane_forward_loop<T, L, true>(buf, w, init, accumulate, y, g);
    } else {
        plane_forward_loop<T, L, false>(buf, w, init, accumulate, y, g);
    }
}

template <typename T>
void plane_weight(const T* buf, const T* dy, T* dw, const PlaneGeom& g) {
    constexpr int L = kVectorBytes / static_cast<int>(sizeof(T));
    if (g.sw == 1) {
        plane_weight_loop<T, L, true>(buf, dy, dw, g);
    } else {
        plane_weight_loop<T, L, false>(buf, dy, dw, g);
    }
}

template <typename T>
conv_detail::PlaneKernels<T> make_plane_kernels() {
    conv_detail::PlaneKernels<T> k;
    k.forward = &plane_forward<T>;
    k.weight = &plane_weight<T>;
    return k;
}

}  // namespace
}  // namespace nnforge
