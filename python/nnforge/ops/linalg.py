"""Matrix products: matmul (all of PyTorch's 1-D and batched cases) and the
fused linear map y = x W^T + b. Every product goes through ``backend.matmul``.
"""
from __future__ import annotations

from .. import dtypes as _dt
from ..autograd.function import Function
from ..tensor import Tensor
from ._util import cast_to, check_tensor, same_device


class Matmul(Function):
    # C = A B ;  dA = dC B^T ;  dB = A^T dC   (batch dims broadcast; the engine
    # sums dA, dB back over them). A 1-D A is a row (1, k), a 1-D B a column (k, 1).
    @staticmethod
    def forward(ctx, a, b):
        be = ctx.backend
        ctx.save_for_backward(a, b)
        return be.matmul(a, b)

    @staticmethod
    def backward(ctx, g):
        a, b = ctx.saved_tensors
        be = ctx.backend
        a_vec, b_vec = a.ndim == 1, b.ndim == 1
        a2 = be.reshape(a, (1, -1)) if a_vec else a
        b2 = be.reshape(b, (-1, 1)) if b_vec else b
        if a_vec:
            g = be.expand_dims(g, -2 if g.ndim >= 1 else 0)
        if b_vec:
            g = be.expand_dims(g, -1)
        ga = gb = None
        if ctx.needs_input_grad[0]:
            ga = be.matmul(g, be.swap_last(b2))
            if a_vec:
                ga = be.squeeze(ga, axis=-2)
        if ctx.needs_input_grad[1]:
            gb = be.matmul(be.swap_last(a2), g)
            if b_vec:
                gb = be.squeeze(gb, axis=-1)
        return ga, gb


def matmul(input, other) -> Tensor:
    return _matmul(input, other, "matmul")


def _matmul(input, other, op):
    """matmul, with errors that name ``op`` (matmul, mm, bmm or dot)."""
    check_tensor(input, op)
    check_tensor(other, op, "other")
    same_device(op, input, other)
    if input.ndim == 0 or other.ndim == 0:
        raise ValueError(f"{op}: both arguments need at least 1 dimension, got shapes "
                         f"{tuple(input.shape)} and {tuple(other.shape)}")
    k1 = input.shape[-1]
    k2 = other.shape[0] if other.ndim == 1 else other.shape[-2]
    if k1 != k2:
        raise ValueError(f"{op}: shapes {tuple(input.shape)} and {tuple(other.shape)} cannot "
                         f"be multiplied ({k1} != {k2})")
    dt = _dt.result_type(input, other)
    if dt.np.kind == "b":
        raise TypeError(f"{op}: bool tensors cannot be multiplied")
    a, b = cast_to(input, dt), cast_to(other, dt)
    try:
        return Matmul.apply(a, b)
    except ValueError:
        raise ValueError(f"{op}: batch dims of shapes {tuple(input.shape)} and "
                         f"{tuple(other.shape)} are not broadcastable") from None


def mm(input, mat2) -> Tensor:
    check_tensor(input, "mm"), check_tensor(mat2, "mm", "mat2")
    if input.ndim != 2 or mat2.ndim != 2:
        raise ValueError(f"mm: expects 2-D tensors, got shapes {tuple(input.shape)} and "
                         f"{tuple(mat2.shape)}")
    return _matmul(input, mat2, "mm")


def bmm(input, mat2) -> Tensor:
    check_tensor(input, "bmm"), check_tensor(mat2, "bmm", "mat2")
    if input.ndim != 3 or mat2.ndim != 3 or input.shape[0] != mat2.shape[0]:
        raise ValueError(f"bmm: expects 3-D tensors with equal batch size, got shapes "
                         f"{tuple(input.shape)} and {tuple(mat2.shape)}")
    return _matmul(input, mat2, "bmm")


def dot(input, other) -> Tensor:
    check_tensor(input, "dot"), check_tensor(other, "dot", "other")
    if input.ndim != 1 or other.ndim != 1:
        raise ValueError(f"dot: expects 1-D tensors, got shapes {tuple(input.shape)} and "
                         f"{tuple(other.shape)}")
    return _matmul(input, other, "dot")


class Linear(Function):
    # y = act(z), z = x W^T + b over the last dim of x. With g = dL/dy:
    #   dz = g act'(z) ;  dx = dz W ;  dW = dz^T x ;  db = sum over rows of dz
    # ReLU: act'(z) = [y > 0], read from the output. GELU (tanh form) when a
    # gradient is needed: z is kept and the activation runs unfused.
    # The three products run in the GEMM with no copy: W^T and dz^T are
    # strided views it reads in place; the forward adds b (and applies act) as
    # it writes y.
    @staticmethod
    def forward(ctx, x, w, b, activation=None):
        be = ctx.backend
        x2 = _rows(be, x)
        shape = x.shape[:-1] + (w.shape[0],)
        ctx.activation = activation
        if activation == "gelu_tanh" and any(ctx.needs_input_grad):
            z = be.linear(x2, w, b)
            ctx.save_for_backward(x, w, z)
            return be.reshape(be.gelu(z, approximate="tanh"), shape)
        y = be.reshape(be.linear(x2, w, b, activation), shape)
        ctx.save_for_backward(x, w, y if activation == "relu" else None)
        return y

    @staticmethod
    def backward(ctx, g):
        x, w, kept = ctx.saved_tensors
        be = ctx.backend
        g2 = _rows(be, g)
        if ctx.activation == "relu":
            g2 = be.where(be.greater(_rows(be, kept), 0), g2, 0)
        elif ctx.activation == "gelu_tanh":
            g2 = be.gelu_backward(g2, kept, approximate="tanh")
        gx = gw = gb = None
        if ctx.needs_input_grad[0]:
            gx = be.reshape(be.matmul(g2, w), x.shape)
        if ctx.needs_input_grad[1]:
            gw = be.matmul(be.swap_last(g2), _rows(be, x))
        if ctx.needs_input_grad[2]:
            gb = be.sum(g2, axis=0)  # a 0-d bias: the engine sums this to ()
        return gx, gw, gb, None


def _rows(be, a):
    """``a`` as a matrix (prod(leading dims), last dim); an explicit row count, since
    reshape cannot infer -1 when the last dim is 0."""
    n = 1
    for s in a.shape[:-1]:
        n *= s
    return be.reshape(a, (n, a.shape[-1]))


def linear(input, weight, bias=None, *, activation: str | None = None) -> Tensor:
    """y = input @ weight.T + bias, with weight of shape (out_features, in_features).

    ``activation`` (an nnforge extra: None, 'relu' or 'gelu_tanh') applies that
    activation to the result inside the same kernel, e.g.
    ``linear(x, w, b, activation='relu')`` equals ``relu(linear(x, w, b))``.
    """
    check_tensor(input, "linear")
    check_tensor(weight, "linear", "weight")
    if activation not in (None, "relu", "gelu_tanh"):
        raise ValueError(f"linear: activation must be None, 'relu' or 'gelu_tanh', got "
                         f"{activation!r}")
    if weight.ndim != 2:
        raise ValueError(f"linear: weight must be 2-D (out_features, in_features), got shape "
                         f"{tuple(weight.shape)}")
    if input.ndim == 0 or input.shape[-1] != weight.shape[1]:
        raise ValueError(f"linear: input of shape {tuple(input.shape)} does not match weight of "
                         f"shape {tuple(weight.shape)} (expected last dim {weight.shape[1]})")
    if bias is not None and tuple(bias.shape) not in ((weight.shape[0],), ()):
        raise ValueError(f"linear: bias of shape {tuple(bias.shape)} does not match weight of "
                         f"shape {tuple(weight.shape)} (expected ({weight.shape[0]},))")
    dt = _dt.result_type(input, weight, *(() if bias is None else (bias,)))
    return Linear.apply(cast_to(input, dt), cast_to(weight, dt),
                        None if bias is None else cast_to(bias, dt), activation)
