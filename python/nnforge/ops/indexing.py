"""Indexing: ``x[...]`` (basic, integer-array and boolean-mask), ``x[...] = v``,
index_select, gather, scatter_add, masked_select, nonzero, one_hot.

Basic indexing (ints, slices, None, ...) returns a view; advanced indexing
copies. The backward of any gather-like op scatters the gradient back with
repeated indices summed (``index_add``).

One integer index array on the first dim (``x[idx]``, ``index_select(x, 0,
idx)``) runs as the backend's ``take`` (its backward an ``index_add`` of rows);
other advanced indices go to the backend's ``getitem``/``setitem`` with the
index arrays on the tensor's device.
"""
from __future__ import annotations

from .. import dtypes as _dt
from ..autograd.function import Function
from ..tensor import Tensor
from ._util import cast_to, check_tensor, make, same_device, wrap_dim


def _is_basic(index) -> bool:
    items = index if isinstance(index, tuple) else (index,)
    for i in items:
        if not (i is None or i is Ellipsis or isinstance(i, (int, slice))) or isinstance(i, bool):
            return False
    return True


def _convert_index(index, be, device, op):
    """Tensors, lists and numpy arrays in an index become backend arrays."""
    items = index if isinstance(index, tuple) else (index,)
    out = []
    for i in items:
        if isinstance(i, Tensor):
            if i.device != device:
                if i.device.type != "cpu":  # CPU indices are moved, as PyTorch does
                    raise ValueError(f"{op}: index is on {i.device} but the tensor is on "
                                     f"{device}")
                i = i.to(device)
            if i.data.dtype.kind not in "iub":
                raise IndexError(f"{op}: tensors used as indices must be integer or bool, "
                                 f"got {i.dtype.name}")
            out.append(i.data)
        elif isinstance(i, (list, tuple)) or hasattr(i, "__array__"):
            a = be.asarray(i)
            if a.size == 0:
                a = be.astype(a, "int64")
            if a.dtype.kind not in "iub":
                raise IndexError(f"{op}: arrays used as indices must be integer or bool, got {a.dtype}")
            out.append(a)
        elif i is None or i is Ellipsis or isinstance(i, (int, slice)):
            out.append(i)
        elif hasattr(i, "__index__"):
            out.append(int(i))
        else:
            raise IndexError(f"{op}: unsupported index of type {type(i).__name__}; use ints, "
                             "slices, None, ..., integer or bool tensors")
    return tuple(out)


class IndexView(Function):
    is_view = True

    @staticmethod
    def forward(ctx, x, index):
        ctx.meta = (x.shape, x.dtype, index)
        return ctx.backend.getitem(x, index)

    @staticmethod
    def backward(ctx, g):
        be = ctx.backend
        shape, dt, index = ctx.meta
        gx = be.zeros(shape, dt)
        be.setitem(gx, index, g)  # basic indices never repeat an element
        return gx, None


class IndexGather(IndexView):
    """Advanced indexing: the same forward, but it copies, and an index may
    repeat, so backward accumulates the gradient instead of assigning it."""
    is_view = False

    @staticmethod
    def backward(ctx, g):
        be = ctx.backend
        shape, dt, index = ctx.meta
        gx = be.zeros(shape, dt)
        be.index_add(gx, index, g)
        return gx, None


class IndexTake(Function):
    """x[idx] for one integer index array on the first dim (the other dims whole):
    y = take(x, idx, 0); dx sums g into the rows idx named (index_add with the
    array in front: the CUDA backend's deterministic segmented form)."""

    @staticmethod
    def forward(ctx, x, idx):
        ctx.meta = (x.shape, x.dtype, idx)
        return ctx.backend.take(x, idx, 0)

    @staticmethod
    def backward(ctx, g):
        be = ctx.backend
        shape, dt, idx = ctx.meta
        gx = be.zeros(shape, dt)
        be.index_add(gx, idx, g)
        return gx, None


def _first_dim_take(index, ndim: int):
    """The index array when ``index`` (converted) is one integer array on the first
    dim with only whole slices (or an Ellipsis) after it; else None."""
    if not index or not hasattr(index[0], "dtype") or index[0].dtype.kind not in "iu":
        return None
    rest = index[1:]
    if ndim < 1 or len(rest) >= ndim or sum(1 for k in rest if k is Ellipsis) > 1:
        return None
    if all(k is Ellipsis or (isinstance(k, slice) and k == slice(None)) for k in rest):
        return index[0]
    return None


def getitem(x: Tensor, index) -> Tensor:
    be = x.device.backend
    basic = _is_basic(index)
    take = None
    if not basic:
        index = _convert_index(index, be, x.device, "index")
        take = _first_dim_take(index, x.ndim)
    try:
        if take is not None:
            return IndexTake.apply(x, take)
        return (IndexView if basic else IndexGather).apply(x, index)
    except IndexError as e:
        raise IndexError(f"index: {e} (indexing a tensor of shape {tuple(x.shape)})") from None
    except (ValueError, TypeError) as e:
        raise IndexError(f"index: invalid index for a tensor of shape {tuple(x.shape)}: {e}") from None


class IndexPut(Function):
    # out = x with out[index] = v ;  dx = g with g[index] zeroed ;  dv = g[index]
    @staticmethod
    def forward(ctx, x, index, v):
        be = ctx.backend
        out = be.copy(x)
        be.setitem(out, index, v)
        ctx.index = index
        return out

    @staticmethod
    def backward(ctx, g):
        be = ctx.backend
        gx = None
        if ctx.needs_input_grad[0]:
            gx = be.copy(g)
            be.setitem(gx, ctx.index, 0)
        gv = be.getitem(g, ctx.index) if ctx.needs_input_grad[2] else None
        return gx, None, gv


def setitem(x: Tensor, index, value) -> None:
    be = x.device.backend
    if not _is_basic(index):
        index = _convert_index(index, be, x.device, "index_put")
    if isinstance(value, Tensor):
        value = cast_to(value, x.dtype)
    elif not isinstance(value, (int, float, bool)):
        value = Tensor._make(be.asarray(value, x.data.dtype), x.device, False)

    def put(src, v):
        try:
            return IndexPut.apply(src, index, v)
        except IndexError as e:
            raise IndexError(f"index_put: {e} (tensor of shape {tuple(x.shape)})") from None
        except ValueError as e:
            vs = tuple(v.shape) if isinstance(v, Tensor) else "scalar"
            raise ValueError(f"index_put: value of shape {vs} cannot be assigned to the indexed "
                             f"part of a tensor of shape {tuple(x.shape)}: {e}") from None
    x._inplace("index_put", put, value)


def index_select(input, dim, index) -> Tensor:
    check_tensor(input, "index_select")
    check_tensor(index, "index_select", "index")
    same_device("index_select", input, index)
    if index.ndim > 1 or index.data.dtype.kind not in "iu":
        raise IndexError(f"index_select: index must be a 1-D integer tensor, got shape "
                         f"{tuple(index.shape)} and dtype {index.dtype.name}")
    d = wrap_dim(dim, input.ndim, "index_select")
    n = input.shape[d] if input.ndim else 1
    _check_range(index, n, "index_select", input, d)
    flat = index.device.backend.reshape(index.data, (-1,))
    if d == 0 and input.ndim:
        return IndexTake.apply(input, flat)
    return IndexGather.apply(input, (slice(None),) * d + (flat,))


def _check_range(index, n, op, input, d):
    """Indices must lie in [0, n): PyTorch refuses negative ones here, and letting
    numpy wrap them around would silently read or write the wrong element."""
    if index.numel() == 0:
        return
    be = index.device.backend
    lo, hi = int(be.to_host(be.amin(index.data))), int(be.to_host(be.amax(index.data)))
    if lo < 0 or hi >= n:
        bad = hi if hi >= n else lo
        raise IndexError(f"{op}: index {bad} is out of bounds for dimension {d} with size {n} "
                         f"(input shape {tuple(input.shape)}, index shape {tuple(index.shape)})")


class Gather(Function):
    @staticmethod
    def forward(ctx, x, dim, index):
        ctx.meta = (x.shape, x.dtype, dim, index)
        return ctx.backend.gather(x, dim, index)

    @staticmethod
    def backward(ctx, g):
        be = ctx.backend
        shape, dt, dim, index = ctx.meta
        gx = be.zeros(shape, dt)
        be.scatter_add(gx, dim, index, g)
        return gx, None, None


def _check_gather_shapes(op, input, dim, index, other=None):
    if index.data.dtype.kind not in "iu":
        raise TypeError(f"{op}: index must be an integer tensor, got {index.dtype.name}")
    if index.ndim != input.ndim:
        raise ValueError(f"{op}: index {tuple(index.shape)} must have as many dims as the input "
                         f"{tuple(input.shape)}")
    for i, (a, b) in enumerate(zip(index.shape, input.shape)):
        if i != dim and a > b:
            raise ValueError(f"{op}: index {tuple(index.shape)} is larger than the input "
                             f"{tuple(input.shape)} in dimension {i}")
    if other is not None:
        for i, (a, b) in enumerate(zip(index.shape, other.shape)):
            if a > b:
                raise ValueError(f"{op}: index {tuple(index.shape)} is larger than src "
                                 f"{tuple(other.shape)} in dimension {i}")
    _check_range(index, input.shape[dim] if input.ndim else 1, op, input, dim)


def gather(input, dim, index) -> Tensor:
    """out[i][j] = input[index[i][j]][j] for dim 0 (and so on for other dims)."""
    check_tensor(input, "gather")
    check_tensor(index, "gather", "index")
    d = wrap_dim(dim, input.ndim, "gather")
    same_device("gather", input, index)
    _check_gather_shapes("gather", input, d, index)
    return Gather.apply(input, d, index.data)


class ScatterAdd(Function):
    # out = x + scatter(src) ;  dx = g ;  dsrc = gather(g)
    @staticmethod
    def forward(ctx, x, dim, index, src):
        be = ctx.backend
        out = be.copy(x)
        if src.shape != index.shape:
            src = be.getitem(src, tuple(slice(0, n) for n in index.shape))
        be.scatter_add(out, dim, index, src)
        ctx.meta = (dim, index, src.shape)
        return out

    @staticmethod
    def backward(ctx, g):
        be = ctx.backend
        dim, index, _ = ctx.meta
        gsrc = None
        if ctx.needs_input_grad[3]:
            gsrc = be.zeros(ctx._input_meta[3][0], g.dtype)
            part = tuple(slice(0, n) for n in index.shape)
            be.setitem(gsrc, part, be.gather(g, dim, index))
        return g, None, None, gsrc


def scatter_add(input, dim, index, src) -> Tensor:
    check_tensor(input, "scatter_add")
    check_tensor(index, "scatter_add", "index")
    check_tensor(src, "scatter_add", "src")
    d = wrap_dim(dim, input.ndim, "scatter_add")
    same_device("scatter_add", input, index, src)
    _check_gather_shapes("scatter_add", input, d, index, src)
    return ScatterAdd.apply(input, d, index.data, cast_to(src, input.dtype))


def masked_select(input, mask) -> Tensor:
    check_tensor(input, "masked_select")
    check_tensor(mask, "masked_select", "mask")
    if tuple(mask.shape) != tuple(input.shape):
        from .shape import expand
        try:
            shape = _broadcast_shape(input.shape, mask.shape)
        except ValueError:
            raise ValueError(f"masked_select: mask {tuple(mask.shape)} and input "
                             f"{tuple(input.shape)} are not broadcastable") from None
        input, mask = expand(input, shape), expand(mask, shape)
    return getitem(input, mask)


def _broadcast_shape(a, b):
    out = []
    for x, y in zip((1,) * (len(b) - len(a)) + tuple(a), (1,) * (len(a) - len(b)) + tuple(b)):
        if x != y and 1 not in (x, y):
            raise ValueError
        out.append(y if x == 1 else x)  # 1 broadcasts to anything, 0 included
    return tuple(out)


def nonzero(input, *, as_tuple=False):
    check_tensor(input, "nonzero")
    be = input.device.backend
    # A 0-d input counts as 1-d for as_tuple (PyTorch); numpy refuses 0-d nonzero.
    idx = be.nonzero(be.reshape(input.data, (-1,)) if input.ndim == 0 else input.data)
    if as_tuple:
        return tuple(make(be.astype(i, "int64"), input.device) for i in idx)
    if input.ndim == 0:
        n = int(bool(input.item()))
        return make(be.zeros((n, 0), "int64"), input.device)
    return make(be.astype(be.stack(idx, axis=1), "int64"), input.device)


def one_hot(tensor, num_classes=-1) -> Tensor:
    """int64 tensor of shape ``tensor.shape + (num_classes,)`` with ones at the labels."""
    check_tensor(tensor, "one_hot")
    if tensor.data.dtype.kind not in "iu":
        raise TypeError(f"one_hot: expects an integer tensor of class indices, got {tensor.dtype.name}")
    be = tensor.device.backend
    if tensor.numel() == 0 and num_classes < 0:
        raise ValueError("one_hot: cannot infer num_classes from an empty tensor")
    lo = int(be.to_host(be.amin(tensor.data))) if tensor.numel() else 0
    hi = int(be.to_host(be.amax(tensor.data))) if tensor.numel() else -1
    if num_classes < 0:
        num_classes = hi + 1
    if lo < 0 or hi >= num_classes:
        bad = lo if lo < 0 else hi
        raise IndexError(f"one_hot: class index {bad} is out of range for num_classes={num_classes} "
                         f"(input shape {tuple(tensor.shape)})")
    out = be.zeros(tuple(tensor.shape) + (num_classes,), "int64")
    flat = be.reshape(out, (-1, num_classes))
    labels = be.reshape(be.astype(tensor.data, "int64"), (-1, 1))
    be.put_along_axis(flat, labels, be.ones(labels.shape, "int64"), 1)
    return make(out, tensor.device)


def take(input, index) -> Tensor:
    """input.flatten()[index], shaped like index."""
    from .shape import reshape
    return getitem(reshape(input, -1), index)


