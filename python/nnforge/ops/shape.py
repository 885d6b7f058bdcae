"""Shape ops: reshape/view, permute/transpose, squeeze/unsqueeze, expand,
repeat, flatten, flip, cat/stack/split/chunk and pad.

Ops marked ``is_view`` return tensors that share storage and the version
counter with their input, as PyTorch's views do.
"""
from __future__ import annotations

import builtins

from ..autograd.function import Function
from ..tensor import Tensor
from ._util import check_tensor, same_device, wrap_dim, wrap_dims


def _shape_arg(shape, op):
    if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
        shape = tuple(shape[0])
    out = []
    for s in shape:
        if isinstance(s, Tensor):
            s = int(s.item())
        if not isinstance(s, int) and not hasattr(s, "__index__"):
            raise TypeError(f"{op}: sizes must be integers, got {type(s).__name__}")
        out.append(int(s))
    return tuple(out)


class Reshape(Function):
    is_view = True

    @staticmethod
    def forward(ctx, x, shape, must_view):
        ctx.in_shape = x.shape
        be = ctx.backend
        return be.view(x, shape) if must_view else be.reshape(x, shape)

    @staticmethod
    def backward(ctx, g):
        return ctx.backend.reshape(g, ctx.in_shape), None, None


def _infer_shape(x, shape, op):
    n = x.numel()
    known, free = 1, []
    for i, s in enumerate(shape):
        if s == -1:
            free.append(i)
        elif s < 0:
            raise ValueError(f"{op}: invalid size {s} in shape {shape}")
        else:
            known *= s
    if len(free) > 1:
        raise ValueError(f"{op}: only one dimension can be inferred (-1), got shape {shape}")
    if free:
        if known == 0 or n % known:
            raise ValueError(f"{op}: shape {shape} is invalid for input of shape "
                             f"{tuple(x.shape)} ({n} elements)")
        shape = shape[:free[0]] + (n // known,) + shape[free[0] + 1:]
    elif known != n:
        raise ValueError(f"{op}: shape {shape} is invalid for input of shape {tuple(x.shape)} "
                         f"({n} elements)")
    return shape


def reshape(input, *shape) -> Tensor:
    check_tensor(input, "reshape")
    shape = _infer_shape(input, _shape_arg(shape, "reshape"), "reshape")
    if shape == input.data.shape:
        return Reshape.apply(input, shape, False) if input._requires_grad else _alias(input)
    return Reshape.apply(input, shape, False)


def view(input, *shape) -> Tensor:
    check_tensor(input, "view")
    if len(shape) == 1 and not isinstance(shape[0], (int, tuple, list)):
        return input.to(dtype=shape[0]) if input.dtype == shape[0] else _view_dtype(input, shape[0])
    shape = _infer_shape(input, _shape_arg(shape, "view"), "view")
    try:
        return Reshape.apply(input, shape, True)
    except ValueError:
        raise RuntimeError(f"view: shape {shape} is not compatible with the input's shape "
                           f"{tuple(input.shape)} and strides {input.stride()} (a copy would be "
                           "needed); use .reshape(...) instead") from None


def _view_dtype(input, dtype):
    raise TypeError(f"view: reinterpreting dtype {input.dtype.name} as {dtype} is not supported")


def _alias(x: Tensor) -> Tensor:
    t = Tensor._make(x.data, x.device, False)
    t._as_view_of(x)
    return t


def flatten(input, start_dim=0, end_dim=-1) -> Tensor:
    check_tensor(input, "flatten")
    if input.ndim == 0:
        return reshape(input, 1)
    s = wrap_dim(start_dim, input.ndim, "flatten")
    e = wrap_dim(end_dim, input.ndim, "flatten")
    if s > e:
        raise ValueError(f"flatten: start_dim {start_dim} comes after end_dim {end_dim}")
    shp = tuple(input.shape)
    n = 1
    for v in shp[s:e + 1]:
        n *= v
    return reshape(input, shp[:s] + (n,) + shp[e + 1:])


def unflatten(input, dim, sizes) -> Tensor:
    check_tensor(input, "unflatten")
    d = wrap_dim(dim, input.ndim, "unflatten")
    shp = tuple(input.shape)
    inner = _infer_shape(_Numel(shp[d]), tuple(sizes), "unflatten")
    return reshape(input, shp[:d] + inner + shp[d + 1:])


class _Numel:
    def __init__(self, n):
        self.n, self.shape = n, (n,)

    def numel(self):
        return self.n


class Permute(Function):
    is_view = True

    @staticmethod
    def forward(ctx, x, axes):
        ctx.axes = axes
        return ctx.backend.transpose(x, axes)

    @staticmethod
    def backward(ctx, g):
        inverse = [0] * len(ctx.axes)
        for i, a in enumerate(ctx.axes):
            inverse[a] = i
        return ctx.backend.transpose(g, tuple(inverse)), None


def permute(input, *dims) -> Tensor:
    check_tensor(input, "permute")
    dims = _shape_arg(dims, "permute")
    if len(dims) != input.ndim:
        raise ValueError(f"permute: got {len(dims)} dims {dims} for a tensor of shape "
                         f"{tuple(input.shape)}")
    axes = tuple(wrap_dim(d, input.ndim, "permute") for d in dims)
    if len(set(axes)) != len(axes):
        raise ValueError(f"permute: dims {dims} repeat a dimension")
    return Permute.apply(input, axes)


def transpose(input, dim0, dim1) -> Tensor:
    check_tensor(input, "transpose")
    if input.ndim == 0:
        return _alias(input) if not input._requires_grad else Permute.apply(input, ())
    a = wrap_dim(dim0, input.ndim, "transpose")
    b = wrap_dim(dim1, input.ndim, "transpose")
    axes = list(range(input.ndim))
    axes[a], axes[b] = axes[b], axes[a]
    return Permute.apply(input, tuple(axes))


swapaxes = transpose


def t(input) -> Tensor:
    if input.ndim > 2:
        raise ValueError(f"t: expects a tensor with <= 2 dimensions, got shape {tuple(input.shape)}")
    return transpose(input, 0, 1) if input.ndim == 2 else input


def T(input) -> Tensor:
    """All dims reversed (PyTorch's ``.T``)."""
    return Permute.apply(input, tuple(range(input.ndim))[::-1])


def mT(input) -> Tensor:
    if input.ndim < 2:
        raise ValueError(f"mT: needs at least 2 dimensions, got shape {tuple(input.shape)}")
    return transpose(input, -2, -1)


def squeeze(input, dim=None) -> Tensor:
    check_tensor(input, "squeeze")
    shp = tuple(input.shape)
    if dim is None:
        new = tuple(s for s in shp if s != 1)
    else:
        dims = wrap_dims(dim, input.ndim, "squeeze") or ()
        new = tuple(s for i, s in enumerate(shp) if not (i in dims and s == 1))
    return reshape(input, new)


def unsqueeze(input, dim) -> Tensor:
    check_tensor(input, "unsqueeze")
    d = wrap_dim(dim, input.ndim + 1, "unsqueeze")
    shp = tuple(input.shape)
    return reshape(input, shp[:d] + (1,) + shp[d:])


class Expand(Function):
    is_view = True

    @staticmethod
    def forward(ctx, x, shape):
        return ctx.backend.broadcast_to(x, shape)

    @staticmethod
    def backward(ctx, g):
        return g, None  # the engine sums g back to the input's shape


def expand(input, *sizes) -> Tensor:
    check_tensor(input, "expand")
    sizes = _shape_arg(sizes, "expand")
    shp = tuple(input.shape)
    if len(sizes) < len(shp):
        raise ValueError(f"expand: the number of sizes {sizes} must be >= the number of "
                         f"dimensions of the tensor, shape {shp}")
    lead = len(sizes) - len(shp)
    out = []
    for i, s in enumerate(sizes):
        if i < lead:
            if s < 0:
                raise ValueError(f"expand: size -1 is not allowed in a new leading dimension ({sizes})")
            out.append(s)
            continue
        cur = shp[i - lead]
        if s == -1:
            s = cur
        if cur != s and cur != 1:
            raise ValueError(f"expand: the expanded size {s} must match the existing size {cur} "
                             f"at non-singleton dimension {i}; target sizes {sizes}, tensor "
                             f"shape {shp}")
        out.append(s)
    return Expand.apply(input, tuple(out))


def expand_as(input, other) -> Tensor:
    return expand(input, tuple(other.shape))


def broadcast_to(input, shape) -> Tensor:
    return expand(input, tuple(shape))


class Repeat(Function):
    # Backward: view the gradient as (r0, s0, r1, s1, ...) and sum over the r's.
    @staticmethod
    def forward(ctx, x, reps):
        ctx.shape = (1,) * (len(reps) - x.ndim) + tuple(x.shape)
        ctx.in_shape = x.shape
        ctx.reps = reps
        return ctx.backend.tile(x, reps)

    @staticmethod
    def backward(ctx, g):
        be = ctx.backend
        split = []
        for r, s in zip(ctx.reps, ctx.shape):
            split += [r, s]
        g = be.reshape(g, tuple(split))
        g = be.sum(g, axis=tuple(range(0, len(split), 2)))
        return be.reshape(g, ctx.in_shape), None


def repeat(input, *sizes) -> Tensor:
    check_tensor(input, "repeat")
    reps = _shape_arg(sizes, "repeat")
    if len(reps) < input.ndim:
        raise ValueError(f"repeat: number of repeat dims {len(reps)} can not be smaller than "
                         f"the number of dimensions of the tensor, shape {tuple(input.shape)}")
    if builtins.any(r < 0 for r in reps):
        raise ValueError(f"repeat: repeats must be non-negative, got {reps}")
    return Repeat.apply(input, reps)


class Flip(Function):
    @staticmethod
    def forward(ctx, x, dims):
        ctx.dims = dims
        return ctx.backend.copy(ctx.backend.flip(x, dims))  # a copy, as in PyTorch, never a view

    @staticmethod
    def backward(ctx, g):
        return ctx.backend.flip(g, ctx.dims), None


def flip(input, dims) -> Tensor:
    check_tensor(input, "flip")
    return Flip.apply(input, wrap_dims(dims, input.ndim, "flip"))


class Cat(Function):
    @staticmethod
    def forward(ctx, dim, *xs):
        ctx.dim = dim
        ctx.sizes = [x.shape[dim] for x in xs]
        return ctx.backend.concatenate(xs, axis=dim)

    @staticmethod
    def backward(ctx, g):
        be = ctx.backend
        grads, start = [None], 0
        for i, n in enumerate(ctx.sizes):
            if ctx.needs_input_grad[i + 1]:
                idx = [slice(None)] * g.ndim
                idx[ctx.dim] = slice(start, start + n)
                grads.append(be.getitem(g, tuple(idx)))
            else:
                grads.append(None)
            start += n
        return tuple(grads)


def _tensor_list(tensors, op):
    if isinstance(tensors, Tensor) or not isinstance(tensors, (list, tuple)):
        raise TypeError(f"{op}: expected a list or tuple of tensors, got {type(tensors).__name__}")
    if len(tensors) == 0:
        raise ValueError(f"{op}: expected a non-empty list of tensors")
    for i, t in enumerate(tensors):
        if not isinstance(t, Tensor):
            raise TypeError(f"{op}: element {i} is {type(t).__name__}, not a Tensor")
    same_device(op, *tensors)
    from .. import dtypes as _dt
    dt = _dt.result_type(*[t for t in tensors if t.ndim > 0] or tensors)
    from ._util import cast_to
    return [cast_to(t, dt) for t in tensors]


def cat(tensors, dim=0) -> Tensor:
    tensors = _tensor_list(tensors, "cat")
    # PyTorch skips 1-D empty tensors in cat (legacy behaviour users rely on).
    kept = [t for t in tensors if not (t.ndim == 1 and t.shape[0] == 0)] or tensors[:1]
    ref = kept[0]
    if ref.ndim == 0:
        raise ValueError("cat: zero-dimensional tensors cannot be concatenated")
    d = wrap_dim(dim, ref.ndim, "cat")
    for i, t in enumerate(kept):
        if t.ndim != ref.ndim or builtins.any(
                a != b for j, (a, b) in enumerate(zip(t.shape, ref.shape)) if j != d):
            raise ValueError(f"cat: sizes of tensors must match except in dimension {d}; "
                             f"tensor 0 has shape {tuple(ref.shape)}, tensor {i} has shape "
                             f"{tuple(t.shape)}")
    return Cat.apply(d, *kept)


concat = concatenate = cat


class Stack(Function):
    @staticmethod
    def forward(ctx, dim, *xs):
        ctx.dim = dim
        return ctx.backend.stack(xs, axis=dim)

    @staticmethod
    def backward(ctx, g):
        be = ctx.backend
        grads = [None]
        for i in range(g.shape[ctx.dim]):
            if ctx.needs_input_grad[i + 1]:
                idx = [slice(None)] * g.ndim
                idx[ctx.dim] = i
                grads.append(be.getitem(g, tuple(idx)))
            else:
                grads.append(None)
        return tuple(grads)


def stack(tensors, dim=0) -> Tensor:
    tensors = _tensor_list(tensors, "stack")
    ref = tensors[0]
    for i, t in enumerate(tensors):
        if tuple(t.shape) != tuple(ref.shape):
            raise ValueError(f"stack: expects each tensor to be equal size, but got "
                             f"{tuple(ref.shape)} at entry 0 and {tuple(t.shape)} at entry {i}")
    d = wrap_dim(dim, ref.ndim + 1, "stack")
    return Stack.apply(d, *tensors)


def narrow(input, dim, start, length) -> Tensor:
    check_tensor(input, "narrow")
    d = wrap_dim(dim, input.ndim, "narrow")
    n = input.shape[d]
    if start < 0:
        start += n
    if not (0 <= start <= n and 0 <= length and start + length <= n):
        raise IndexError(f"narrow: start {start} and length {length} are out of range for "
                         f"dimension {d} of size {n} (shape {tuple(input.shape)})")
    idx = [slice(None)] * input.ndim
    idx[d] = slice(start, start + length)
    return input[tuple(idx)]


def split(tensor, split_size_or_sections, dim=0):
    check_tensor(tensor, "split")
    d = wrap_dim(dim, tensor.ndim, "split")
    n = tensor.shape[d]
    if isinstance(split_size_or_sections, int):
        size = split_size_or_sections
        if size <= 0 and not (size == 0 and n == 0):
            raise ValueError(f"split: split_size must be positive, got {size}")
        sizes = [min(size, n - s) for s in range(0, n, size)] if n else [0]
    else:
        sizes = [int(s) for s in split_size_or_sections]
        if builtins.sum(sizes) != n:
            raise ValueError(f"split: sections {sizes} do not sum to the size {n} of dimension "
                             f"{d} (shape {tuple(tensor.shape)})")
    out, start = [], 0
    for s in sizes:
        out.append(narrow(tensor, d, start, s))
        start += s
    return tuple(out)


def chunk(input, chunks, dim=0):
    check_tensor(input, "chunk")
    if chunks <= 0:
        raise ValueError(f"chunk: chunks must be positive, got {chunks}")
    d = wrap_dim(dim, input.ndim, "chunk")
    n = input.shape[d]
    if n == 0:  # PyTorch: `chunks` empty pieces (split by size would give one)
        return split(input, [0] * chunks, d)
    return split(input, -(-n // chunks), d)


def unbind(input, dim=0):
    check_tensor(input, "unbind")
    d = wrap_dim(dim, input.ndim, "unbind")
    idx = [slice(None)] * input.ndim
    out = []
    for i in range(input.shape[d]):
        idx[d] = i
        out.append(input[tuple(idx)])
    return tuple(out)


class PadConstant(Function):
    @staticmethod
    def forward(ctx, x, widths, crops, value):
        be = ctx.backend
        ctx.widths = widths
        ctx.crop_index = crops
        ctx.in_shape = x.shape
        if crops is not None:
            x = be.getitem(x, crops)
        return be.pad(x, widths, "constant", value)

    @staticmethod
    def backward(ctx, g):
        be = ctx.backend
        idx = tuple(slice(lo, g.shape[i] - hi) for i, (lo, hi) in enumerate(ctx.widths))
        inner = be.getitem(g, idx)
        if ctx.crop_index is not None:
            full = be.zeros(ctx.in_shape, g.dtype)
            be.setitem(full, ctx.crop_index, inner)
            return full, None, None, None
        return inner, None, None, None


class PadGather(Function):
    """reflect / replicate / circular padding as a gather: out = x[idx_0, idx_1, ...]
    over the padded dims; backward scatters the gradient back with repeats summed."""

    @staticmethod
    def forward(ctx, x, index):
        ctx.index = index
        ctx.in_shape = x.shape
        return ctx.backend.getitem(x, index)

    @staticmethod
    def backward(ctx, g):
        be = ctx.backend
        gx = be.zeros(ctx.in_shape, g.dtype)
        be.index_add(gx, ctx.index, g)
        return gx, None


def pad(input, pad, mode="constant", value=None) -> Tensor:
    """Pads the last ``len(pad) // 2`` dims; ``pad = (left_last, right_last,
    left_second_last, ...)`` as in PyTorch. Negative widths crop (constant mode)."""
    check_tensor(input, "pad")
    pad = tuple(int(p) for p in pad)
    if len(pad) % 2 or len(pad) // 2 > input.ndim:
        raise ValueError(f"pad: padding {pad} must have an even length of at most 2 * ndim "
                         f"for an input of shape {tuple(input.shape)}")
    widths = [(0, 0)] * input.ndim
    for i in range(len(pad) // 2):
        widths[input.ndim - 1 - i] = (pad[2 * i], pad[2 * i + 1])
    shp = tuple(input.shape)
    if mode == "constant":
        crops = None
        if builtins.any(lo < 0 or hi < 0 for lo, hi in widths):
            crops = tuple(slice(-builtins.min(lo, 0), s + builtins.min(hi, 0))
                          for (lo, hi), s in zip(widths, shp))
            for (lo, hi), s in zip(widths, shp):
                if s + builtins.min(lo, 0) + builtins.min(hi, 0) < 0:
                    raise ValueError(f"pad: padding {pad} crops more than the input shape {shp}")
            widths = [(builtins.max(lo, 0), builtins.max(hi, 0)) for lo, hi in widths]
        return PadConstant.apply(input, tuple(widths), crops, 0 if value is None else value)
    if mode not in ("reflect", "replicate", "circular"):
        raise ValueError(f"pad: mode must be 'constant', 'reflect', 'replicate' or 'circular', "
                         f"got {mode!r}")
    if value not in (None, 0):
        raise ValueError(f"pad: padding mode {mode!r} does not take a value")
    be = input.device.backend
    index = []
    for axis, ((lo, hi), n) in enumerate(zip(widths, shp)):
        if lo < 0 or hi < 0:
            raise ValueError(f"pad: negative padding {pad} is only supported in constant mode")
        if (lo or hi) and n == 0:
            raise ValueError(f"pad: cannot {mode}-pad an empty dimension (shape {shp})")
        if mode == "reflect" and (lo >= n or hi >= n):
            raise ValueError(f"pad: reflect padding ({lo}, {hi}) must be smaller than the size {n} "
                             f"of dimension {axis} (shape {shp})")
        if mode == "circular" and (lo > n or hi > n):
            raise ValueError(f"pad: circular padding ({lo}, {hi}) must be at most the size {n} "
                             f"of dimension {axis} (shape {shp})")
        pos = be.arange(-lo, n + hi, 1, "int64")
        if mode == "reflect":
            src = be.absolute(pos)
            src = be.where(be.greater_equal(src, n), 2 * (n - 1) - src, src)
        elif mode == "replicate":
            src = be.clip(pos, 0, n - 1)
        else:
            src = be.remainder(pos, n)
        shape = [1] * input.ndim
        shape[axis] = n + lo + hi
        index.append(be.reshape(src, tuple(shape)))
    return PadGather.apply(input, tuple(index))
