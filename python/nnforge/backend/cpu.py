"""CPU backend: numpy arrays, computed by numpy and by nnforge._C.cpu kernels.

Every function takes and returns numpy arrays (never Tensors, never numpy
scalars: results of reductions over all elements are 0-d arrays). The ops in
``nnforge.ops`` call only these names; the CUDA backend offers the same ones.
Matrix products go through ``matmul`` and ``linear`` (x W^T + b, fused), both
on the hand-written GEMM (csrc/cpu/gemm/): no CPU matmul calls numpy's BLAS.

bfloat16 arrays are ml_dtypes' (see nnforge.dtypes). Its numpy ufuncs compute
each element in float32 and round, as PyTorch's CPU kernels do; the C++
kernels, the GEMM and the reductions take bfloat16 (like float16) through
float32 and round the result once. Two numpy habits are undone here: a
bfloat16 array with a Python float gives float32 (float64 in ``where``), where
NEP 50 (which numpy follows for every other dtype) keeps bfloat16; and numpy
sums bfloat16 in bfloat16 (1000 x 0.1 gives 32), where PyTorch accumulates in
float32.
"""
from __future__ import annotations

import builtins

import numpy as np

from ..dtypes import BFLOAT16_NP as _BF16

array_type = np.ndarray
name = "cpu"
_F32, _F64 = np.dtype(np.float32), np.dtype(np.float64)
# float16 and bfloat16: the C++ kernels compute them in float32.
_REDUCED = tuple(d for d in (np.dtype(np.float16), _BF16) if d is not None)

def _quiet():
    """Floating-point warnings off: PyTorch gives inf/nan silently; so do we.

    A fresh ``np.errstate`` per use: numpy 2 refuses to enter one object twice."""
    return np.errstate(all="ignore")


def asarray(x, dtype=None) -> np.ndarray:
    """Any array-like (or scalar) to a CPU array of ``dtype`` (a numpy dtype)."""
    a = np.asarray(x, dtype=dtype)
    return a


def from_host(a: np.ndarray) -> np.ndarray:
    return a


def to_host(a: np.ndarray) -> np.ndarray:
    return a


def ensure_array(x) -> np.ndarray:
    """numpy returns scalars for 0-d results; turn them back into 0-d arrays."""
    return x if type(x) is np.ndarray else np.asarray(x)


# ---------------------------------------------------------------- creation
def empty(shape, dtype):
    return np.empty(shape, dtype=dtype)


def zeros(shape, dtype):
    return np.zeros(shape, dtype=dtype)


def ones(shape, dtype):
    return np.ones(shape, dtype=dtype)


def full(shape, value, dtype):
    return np.full(shape, value, dtype=dtype)


def zeros_like(a):
    return np.zeros_like(a)


def arange(start, end, step, dtype):
    return np.arange(start, end, step, dtype=dtype)


def linspace(start, end, steps, dtype):
    return np.linspace(start, end, steps, dtype=dtype)


def eye(n, m, dtype):
    return np.eye(n, m, dtype=dtype)


# ---------------------------------------------------------------- pointwise
def _quietly(fn):
    """``fn`` with floating-point warnings off (inf - inf, 0 * inf, exp overflow, ...)."""
    def quiet_fn(*args, **kwargs):
        with _quiet():
            return fn(*args, **kwargs)
    quiet_fn.__name__ = getattr(fn, "__name__", "quiet_fn")
    quiet_fn.__doc__ = f"numpy.{quiet_fn.__name__}, without floating-point warnings."
    return quiet_fn


def _bf16_weak(out, a, b):
    """``out`` of a binary op where ``a`` or ``b`` is a Python float: rounded to
    bfloat16 when the other operand is a bfloat16 array (numpy computed it in
    float32 or float64; PyTorch computes bfloat16 ops with a scalar in float32
    and rounds once, which this is)."""
    if getattr(a, "dtype", None) is _BF16 or getattr(b, "dtype", None) is _BF16:
        return out.astype(_BF16)
    return out


def _binary(fn):
    """numpy's binary ``fn`` without floating-point warnings, keeping bfloat16 with a
    Python float (``_bf16_weak``): two type checks more for any other dtype."""
    def binary(a, b):
        with _quiet():
            out = fn(a, b)
        if type(b) is float or type(a) is float:
            return _bf16_weak(out, a, b)
        return out
    binary.__name__ = fn.__name__
    binary.__doc__ = f"numpy.{fn.__name__}, without floating-point warnings."
    return binary


add = _binary(np.add)
subtract = _binary(np.subtract)
multiply = _binary(np.multiply)
divide = _binary(np.true_divide)
floor_divide = _binary(np.floor_divide)
remainder = _binary(np.remainder)
power = _binary(np.power)
negative = np.negative
absolute = np.abs
exp = _quietly(np.exp)
sin = _quietly(np.sin)
cos = _quietly(np.cos)
tanh = np.tanh


def maximum(a, b):
    out = np.maximum(a, b)
    return _bf16_weak(out, a, b) if type(b) is float or type(a) is float else out


def minimum(a, b):
    out = np.minimum(a, b)
    return _bf16_weak(out, a, b) if type(b) is float or type(a) is float else out


def where(cond, a, b):
    out = np.where(cond, a, b)
    return _bf16_weak(out, a, b) if type(b) is float or type(a) is float else out


equal = np.equal
not_equal = np.not_equal
less = np.less
less_equal = np.less_equal
greater = np.greater
greater_equal = np.greater_equal
logical_and = np.logical_and
logical_or = np.logical_or
logical_xor = np.logical_xor
logical_not = np.logical_not
isnan = np.isnan
isinf = np.isinf
isfinite = np.isfinite
floor = np.floor
ceil = np.ceil
round = np.round
square = _quietly(np.square)


def log(a):
    with _quiet():
        return np.log(a)


def log1p(a):
    with _quiet():
        return np.log1p(a)


def sqrt(a):
    with _quiet():
        return np.sqrt(a)


def rsqrt(a):
    if a.dtype is _BF16:  # one rounding, not two
        return rsqrt(a.astype(_F32)).astype(_BF16)
    with _quiet():
        return np.reciprocal(np.sqrt(a))


def reciprocal(a):
    with _quiet():
        return np.reciprocal(a)


def sigmoid(a):
    """1 / (1 + e^-x), evaluated from e^-|x| so neither branch overflows."""
    if a.dtype is _BF16:  # one rounding, not four
        return sigmoid(a.astype(_F32)).astype(_BF16)
    e = np.exp(-np.abs(a))
    r = np.reciprocal(1 + e)
    return np.where(a >= 0, r, e * r)


def sign(a):
    """-1, 0 or 1; 0 for nan, as in PyTorch (numpy gives nan)."""
    s = np.sign(a)
    return np.where(np.isnan(s), 0, s) if s.dtype.kind in "fV" else s


def relu(a):
    return np.maximum(a, 0)


def clip(a, lo, hi):
    """Clamp; ``lo``/``hi`` may be None, scalars or arrays (PyTorch: max wins)."""
    if lo is not None:
        a = maximum(a, lo)
    if hi is not None:
        a = minimum(a, hi)
    return a


def astype(a, dtype):
    with _quiet():  # inf/nan to int and float64 overflow to float32 cast silently
        return a.astype(dtype, copy=False)


def copy(a):
    return a.copy()


def copyto(dst, src):
    """dst[...] = src, broadcasting src (in place)."""
    with _quiet():
        np.copyto(dst, src, casting="unsafe")


def add_(dst, src):
    with _quiet():
        np.add(dst, src, out=dst, casting="unsafe")


# ---------------------------------------------------------------- reductions
def _size_of(shape, axis) -> int:
    """Number of elements a reduction over ``axis`` (None, int or tuple) combines."""
    if axis is None:
        axis = range(len(shape))
    elif not isinstance(axis, (tuple, list)):
        axis = (axis,)
    n = 1
    for d in axis:
        n *= shape[d]
    return n


def _via_f32(fn, a, *args, **kwargs):
    """``fn`` of a bfloat16 array computed in float32, rounded back once."""
    return fn(a.astype(_F32), *args, **kwargs).astype(_BF16)


def sum(a, axis=None, keepdims=False, dtype=None):
    if a.dtype is _BF16 and (dtype is None or np.dtype(dtype) == _BF16):
        return _via_f32(sum, a, axis, keepdims)  # float32 accumulation, as PyTorch
    with _quiet():
        return ensure_array(np.sum(a, axis=axis, keepdims=keepdims, dtype=dtype))


def mean(a, axis=None, keepdims=False):
    """sum / N; nan (silently, as in PyTorch) over an empty dim."""
    if a.dtype is _BF16:
        return _via_f32(mean, a, axis, keepdims)
    with _quiet():
        return ensure_array(np.true_divide(np.sum(a, axis=axis, keepdims=keepdims),
                                           _size_of(a.shape, axis)))


def var(a, axis=None, ddof=1, keepdims=False):
    """sum (x - mean)^2 / max(N - ddof, 0): inf or nan (silently) when N <= ddof."""
    if a.dtype is _BF16:
        return _via_f32(var, a, axis, ddof, keepdims)
    with _quiet():
        centered = a - np.mean(a, axis=axis, keepdims=True) if a.size else a
        ss = np.sum(np.square(centered), axis=axis, keepdims=keepdims)
        denom = builtins.max(_size_of(a.shape, axis) - ddof, 0)
        return ensure_array(np.true_divide(ss, denom))


def prod(a, axis=None, keepdims=False):
    if a.dtype is _BF16:
        return _via_f32(prod, a, axis, keepdims)
    with _quiet():
        return ensure_array(np.prod(a, axis=axis, keepdims=keepdims))


def amax(a, axis=None, keepdims=False):
    return ensure_array(np.amax(a, axis=axis, keepdims=keepdims))


def amin(a, axis=None, keepdims=False):
    return ensure_array(np.amin(a, axis=axis, keepdims=keepdims))


def argmax(a, axis=None, keepdims=False):
    return ensure_array(np.argmax(a, axis=axis, keepdims=keepdims)).astype(np.int64, copy=False)


def argmin(a, axis=None, keepdims=False):
    return ensure_array(np.argmin(a, axis=axis, keepdims=keepdims)).astype(np.int64, copy=False)


def any(a, axis=None, keepdims=False):
    return ensure_array(np.any(a, axis=axis, keepdims=keepdims))


def all(a, axis=None, keepdims=False):
    return ensure_array(np.all(a, axis=axis, keepdims=keepdims))


def cumsum(a, axis):
    if a.dtype is _BF16:
        return _via_f32(cumsum, a, axis)
    with _quiet():
        return np.cumsum(a, axis=axis)


def cumprod(a, axis):
    if a.dtype is _BF16:
        return _via_f32(cumprod, a, axis)
    with _quiet():
        return np.cumprod(a, axis=axis)


def flip(a, axis):
    return np.flip(a, axis=axis)


def _max_or_neg_inf(a, axis):
    """amax keeping dims; -inf over an empty dim instead of numpy's error."""
    return np.amax(a, axis=axis, keepdims=True, initial=-np.inf)


def logsumexp(a, axis, keepdims=False):
    """log sum exp(x) = m + log sum exp(x - m), m the max (0 where m is +-inf,
    so that a row of -inf gives -inf and a row holding +inf gives +inf)."""
    if a.dtype is _BF16:
        return _via_f32(logsumexp, a, axis, keepdims)
    m = _max_or_neg_inf(a, axis)
    m = np.where(np.isfinite(m), m, 0)
    with _quiet():
        out = np.log(np.sum(np.exp(a - m), axis=axis, keepdims=True)) + m
    if not keepdims:
        out = np.squeeze(out, axis=axis)
    return ensure_array(out)


def _softmax_in_kernel(a) -> bool:
    """Whether the fused kernel (cpu_layernorm.softmax_kernel) takes ``a``: float
    arrays with at least one dim (bfloat16 too: through float32). It walks any
    axis of a C-contiguous array in place, so a non-contiguous input costs one
    copy (still fewer passes than numpy's max / subtract / exp / sum / divide)."""
    return a.ndim > 0 and a.dtype.kind in "fV" and a.dtype.itemsize <= 8


def softmax(a, axis):
    """e^(x - m) / sum e^(x - m), m the max; a row of all -inf or holding +inf
    gives nan, as in PyTorch."""
    if _softmax_in_kernel(a):
        return softmax_kernel(a, axis)  # from cpu_layernorm (imported at the end)
    with _quiet():
        e = np.exp(a - _max_or_neg_inf(a, axis))
        return e / np.sum(e, axis=axis, keepdims=True)


def log_softmax(a, axis):
    """(x - m) - log sum e^(x - m), m the max (nan rows as in ``softmax``)."""
    if _softmax_in_kernel(a):
        return softmax_kernel(a, axis, log=True)
    with _quiet():
        shifted = a - _max_or_neg_inf(a, axis)
        return shifted - np.log(np.sum(np.exp(shifted), axis=axis, keepdims=True))


# ---------------------------------------------------------------- shape
reshape = np.reshape
transpose = np.transpose
broadcast_to = np.broadcast_to
expand_dims = np.expand_dims
squeeze = np.squeeze
concatenate = np.concatenate
stack = np.stack
tile = np.tile
moveaxis = np.moveaxis


def ascontiguous(a):
    """A C-contiguous array (``a`` itself when it already is); keeps 0-d arrays 0-d,
    which ``np.ascontiguousarray`` would turn into shape (1,)."""
    return a if a.flags.c_contiguous else np.ascontiguousarray(a)


def is_contiguous(a) -> bool:
    return a.flags.c_contiguous


def pad(a, pad_width, mode, value):
    if mode == "constant":
        return np.pad(a, pad_width, mode="constant", constant_values=value)
    if mode == "replicate":
        return np.pad(a, pad_width, mode="edge")
    if mode == "circular":
        return np.pad(a, pad_width, mode="wrap")
    return np.pad(a, pad_width, mode=mode)  # "reflect"


# ---------------------------------------------------------------- indexing
def getitem(a, index):
    return ensure_array(a[index])


def setitem(a, index, value):
    a[index] = value


def index_add(dst, index, src):
    """dst[index] += src with repeated indices accumulated (in place)."""
    np.add.at(dst, index, src)


def take(a, indices, axis):
    return np.take(a, indices, axis=axis)


def take_along_axis(a, indices, axis):
    return np.take_along_axis(a, indices, axis=axis)


def scatter_add(dst, axis, indices, src):
    """dst[..., indices[i,j,..], ...] += src[i,j,..] along ``axis`` (in place)."""
    idx = list(np.indices(indices.shape, sparse=True))
    idx[axis] = indices
    np.add.at(dst, tuple(idx), src)


def nonzero(a):
    return np.nonzero(a)


# ---------------------------------------------------------------- linear algebra
# float32 and float64 products run in the hand-written GEMM (csrc/cpu/gemm/,
# bound as _C.cpu.gemm), which reads transposed and sliced views in place;
# float16 and bfloat16 are computed in float32. Only dtypes numpy multiplies
# without BLAS (integers) stay with numpy's loops.
_GEMM_DTYPES = (_F32, _F64)
_kernels = None


def _gemm_kernels():
    global _kernels
    if _kernels is None:
        from .._C import cpu  # on first use: numpy-only code never needs it
        _kernels = cpu
    return _kernels


def _gemm_dtype(a, b):
    """(dtype to compute a @ b in with the GEMM, dtype of the result), or (None, None)
    for dtypes the GEMM does not take."""
    dt = np.result_type(a.dtype, b.dtype)
    if dt.kind == "f" and dt.itemsize in (4, 8):
        work = _F32 if dt.itemsize == 4 else _F64  # native byte order
        return work, work
    if dt in _REDUCED:
        return _F32, dt
    return None, None


def matmul(a, b):
    """The one CPU matrix product, with numpy.matmul's semantics (1-D operands,
    broadcast batch dims; a 0-d array for two vectors)."""
    dt = a.dtype
    if dt is b.dtype and (dt is _F32 or dt is _F64):  # the common case, kept short
        return _gemm_kernels().matmul(a, b)
    work, result = _gemm_dtype(a, b)
    if work is None:
        with _quiet():
            return ensure_array(np.matmul(a, b))
    out = _gemm_kernels().matmul(a.astype(work, copy=False), b.astype(work, copy=False))
    return out if result == work else out.astype(result)


def linear(x, w, b=None, activation=None):
    """act(x @ w.T + b) for a 2-D x (n, in), w (out, in) and b (out,), () or None,
    activation None, 'relu' or 'gelu_tanh'. For float32/float64 operands of one
    dtype, the GEMM adds the bias and applies the activation as it writes each
    tile of the result (no extra pass over it)."""
    dt = x.dtype
    if dt in _GEMM_DTYPES and w.dtype == dt and (b is None or b.dtype == dt):
        if b is not None and b.ndim == 0:
            b = np.broadcast_to(b, (w.shape[0],))
        return _gemm_kernels().matmul_bias(x, w.T, b, activation)
    y = matmul(x, swap_last(w))
    with _quiet():
        if b is not None:
            y = y + b
        if activation == "relu":
            y = relu(y)
        elif activation == "gelu_tanh":
            y = gelu(y, approximate="tanh")
    return y


def view(a, shape):
    """Reshape that refuses to copy (raises ValueError when a copy would be needed)."""
    return np.reshape(a, shape, copy=False)


def swap_last(a):
    return np.swapaxes(a, -1, -2)


def gather(a, axis, indices):
    """out[i, j, ...] = a[..., indices[i, j, ...], ...] with ``indices`` replacing ``axis``."""
    idx = list(np.indices(indices.shape, sparse=True))
    idx[axis] = indices
    return a[tuple(idx)]


# ---------------------------------------------------------------- optimizer updates
# Fused kernels (csrc/cpu/optim.cpp): one pass updates a parameter and its state
# in place. The kernels take C-contiguous float32/float64 arrays of one dtype;
# anything else (a strided view, a float16 parameter, a state buffer of another
# dtype) is staged: the kernel runs on contiguous copies in the compute dtype
# and the copies of the arrays it updates are written back.

def _optim_step(kernel, name, param, grad, states, **options):
    """Runs ``kernel(param, grad, *states, **options)``, staging arrays it cannot take."""
    from .. import _C  # here, so that this section is all the optimizer code in the file

    if param.dtype.kind not in "fV":
        raise TypeError(f"{name}: param has dtype {param.dtype}; optimizers update "
                        "floating-point tensors")
    compute = param.dtype if param.dtype in (np.float32, np.float64) else np.dtype(np.float32)

    def stage(a):
        if a is None or (a.dtype == compute and a.flags.c_contiguous):
            return a
        return np.array(a, dtype=compute, order="C")

    staged = [stage(a) for a in (param, grad, *states)]
    getattr(_C.cpu, kernel)(*staged, **options)
    for original, copy in zip((param, *states), (staged[0], *staged[2:])):
        if copy is not original and original is not None:
            np.copyto(original, copy, casting="unsafe")


def sgd_update_(p, g, buf, *, lr, momentum, dampening, weight_decay, nesterov, maximize,
                first_step):
    """One SGD step in place on ``p`` (and on the momentum buffer ``buf``, None
    without momentum); ``first_step`` sets the buffer to the gradient."""
    _optim_step("sgd_update", "sgd_update_", p, g, (buf,), lr=lr, momentum=momentum,
                dampening=dampening, weight_decay=weight_decay, nesterov=nesterov,
                maximize=maximize, first_step=first_step)


def adam_update_(p, g, exp_avg, exp_avg_sq, max_exp_avg_sq, *, step, lr, beta1, beta2, eps,
                 weight_decay, amsgrad, maximize, decoupled_weight_decay):
    """One Adam (AdamW with ``decoupled_weight_decay``) step in place; ``step``
    counts from 1; ``max_exp_avg_sq`` is None unless ``amsgrad``."""
    _optim_step("adam_update", "adam_update_", p, g, (exp_avg, exp_avg_sq, max_exp_avg_sq),
                step=step, lr=lr, beta1=beta1, beta2=beta2, eps=eps, weight_decay=weight_decay,
                amsgrad=amsgrad, maximize=maximize,
                decoupled_weight_decay=decoupled_weight_decay)


def rmsprop_update_(p, g, square_avg, grad_avg, momentum_buffer, *, lr, alpha, eps,
                    weight_decay, momentum, centered, maximize):
    """One RMSprop step in place; ``grad_avg`` is None unless ``centered``,
    ``momentum_buffer`` None unless ``momentum > 0``."""
    _optim_step("rmsprop_update", "rmsprop_update_", p, g, (square_avg, grad_avg, momentum_buffer),
                lr=lr, alpha=alpha, eps=eps, weight_decay=weight_decay, momentum=momentum,
                centered=centered, maximize=maximize)


def adagrad_update_(p, g, state_sum, *, step, lr, lr_decay, weight_decay, eps, maximize):
    """One Adagrad step in place on ``p`` and ``state_sum``; ``step`` counts from 1."""
    _optim_step("adagrad_update", "adagrad_update_", p, g, (state_sum,), step=step, lr=lr,
                lr_decay=lr_decay, weight_decay=weight_decay, eps=eps, maximize=maximize)


def adadelta_update_(p, g, square_avg, acc_delta, *, lr, rho, eps, weight_decay, maximize):
    """One Adadelta step in place on ``p``, ``square_avg`` and ``acc_delta``."""
    _optim_step("adadelta_update", "adadelta_update_", p, g, (square_avg, acc_delta), lr=lr,
                rho=rho, eps=eps, weight_decay=weight_decay, maximize=maximize)


# ---------------------------------------------------------------- activations and losses (nn)
# erf and GELU run in the nnforge._C.cpu kernels (csrc/cpu/activation.cpp);
# numpy has no erf. The kernels take float32/float64 C-contiguous arrays;
# float16 and bfloat16 go through float32.
def _activation_kernels():
    from .._C import cpu as kernels  # imported on first use: numpy-only code never needs it
    return kernels


def _kernel_call(fn, *arrays):
    dtype = arrays[0].dtype
    work = _F32 if dtype in _REDUCED else dtype
    out = fn(*(np.asarray(a, dtype=work, order="C") for a in arrays))  # keeps 0-d arrays 0-d
    return out if out.dtype == dtype else out.astype(dtype)


def erf(a):
    return _kernel_call(_activation_kernels().erf, a)


def gelu(a, approximate="none"):
    """x Phi(x) (approximate='tanh': x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))) / 2)."""
    kernels = _activation_kernels()
    return _kernel_call(lambda x: kernels.gelu(x, approximate), a)


def gelu_backward(g, a, approximate="none"):
    """g * GELU'(x), x = ``a``."""
    kernels = _activation_kernels()
    g = np.broadcast_to(g, a.shape)
    return _kernel_call(lambda gg, x: kernels.gelu_backward(gg, x, approximate), g, a)


def expm1(a):
    with _quiet():
        return np.expm1(a)


def put_along_axis(a, indices, values, axis):
    """a[..., indices[i, j, ...], ...] = values along ``axis`` (in place)."""
    np.put_along_axis(a, indices, values, axis=axis)


# Fused cross entropy (csrc/cpu/loss.cpp): logits (N, C, d1, ...) are viewed as
# (N, C, D), targets (N, d1, ...) as (N, D); per-position results come back
# in the targets' shape.
def _class_layout(z, target):
    n, c = z.shape[0], z.shape[1]
    d = 1
    for s in z.shape[2:]:
        d *= s
    work = _F32 if z.dtype in _REDUCED else z.dtype
    z3 = np.asarray(z, dtype=work, order="C").reshape(n, c, d)
    t2 = np.asarray(target, dtype=np.int64, order="C").reshape(n, d)
    return z3, t2, work


def cross_entropy_forward(z, target, weight, ignore_index, smoothing):
    """Per position: (loss, logsumexp over classes, weight of the target), each of the
    targets' shape; loss = -sum_c q_c log softmax(z)_c with the weighted, smoothed
    target q, 0 at ignore_index. Raises IndexError for a target outside [0, C)."""
    z3, t2, work = _class_layout(z, target)
    w = None if weight is None else np.asarray(weight, dtype=work, order="C")
    loss, lse, wy, bad = _activation_kernels().cross_entropy_forward(
        z3, t2, w, int(ignore_index), float(smoothing))
    if bad >= 0:
        c = z.shape[1]
        raise IndexError(f"target {int(t2.reshape(-1)[bad])} is out of bounds for {c} classes "
                         f"(valid: 0 to {c - 1}, or ignore_index={ignore_index})")
    shape, dtype = target.shape, z.dtype
    return tuple(a.reshape(shape).astype(dtype, copy=False) for a in (loss, lse, wy))


def cross_entropy_backward(z, target, weight, lse, wy, g, ignore_index, smoothing):
    """dL/dz of ``cross_entropy_forward`` for the upstream gradient ``g`` per position
    (broadcast to the targets' shape): softmax(z) minus the target distribution, scaled."""
    z3, t2, work = _class_layout(z, target)
    pos = t2.shape
    w = None if weight is None else np.asarray(weight, dtype=work, order="C")

    def as_pos(a):
        if a.shape != target.shape:  # e.g. a 0-d upstream gradient for 'sum' and 'mean'
            a = np.broadcast_to(a, target.shape)
        return np.asarray(a, dtype=work, order="C").reshape(pos)

    gz = _activation_kernels().cross_entropy_backward(
        z3, t2, w, as_pos(lse), as_pos(wy), as_pos(g), int(ignore_index), float(smoothing))
    return gz.reshape(z.shape).astype(z.dtype, copy=False)


# ------------------------------------------- convolution, pooling, norms, rnn, attention
# Each kernel family's array-level wrappers live in their own file (cpu_conv.py,
# cpu_pool.py, cpu_batchnorm.py, cpu_layernorm.py, cpu_rnn.py, cpu_attention.py) and
# are part of this backend's interface.
from .cpu_attention import *  # noqa: E402,F401,F403
from .cpu_batchnorm import *  # noqa: E402,F401,F403
from .cpu_conv import *  # noqa: E402,F401,F403
from .cpu_layernorm import *  # noqa: E402,F401,F403
from .cpu_pool import *  # noqa: E402,F401,F403
from .cpu_rnn import *  # noqa: E402,F401,F403
