"""CUDA indexing family over nnforge._C.cuda (csrc/cuda/indexing.cu, scan.cu):
the CPU backend's gather, take, take_along_axis, put_along_axis, scatter_add,
index_add, nonzero, cumsum, cumprod, flip, tile, pad, eye and linspace with
numpy's semantics, plus the advanced (integer-array / boolean-mask) part of
``getitem`` / ``setitem`` that cuda_shape.py hands over.

Every indexed access is one kernel (``_C.cuda.index_apply``) over views of
the iteration shape S: a base view of the indexed array with stride 0 over
the dims the index supplies, the int64 index broadcast to S, and the values.
Several index arrays (numpy's broadcasting rules, the broadcast dims first
when the arrays are not adjacent) are first combined into one array of
element offsets. Boolean masks become integer arrays through ``nonzero``.

Index validation: indices from the host (numpy arrays, lists, ints) are
checked on the host before they are uploaded; device indices by one check
kernel and one sync per call (``index_check``). Either way an out-of-range
index raises numpy's IndexError before anything is written.

Repeated indices: ``index_add`` with a single host index array in front (the
embedding backward, nearest-upsample backward) sorts the indices on the host
(stable) and sums each destination row's contributions in a fixed order:
deterministic. Device indices (``scatter_add``, ``index_add`` with device or
several arrays) use atomicAdd: float results may differ in the last bits
from run to run; float16/bfloat16 (and bool/uint8) accumulate in a float32
(int64) copy that is rounded back. ``setitem`` with repeated indices keeps
one of the values (numpy: the last).
"""
from __future__ import annotations

import builtins
import operator

import numpy as np

from .cuda_core import (_cuda, _device_array, _is_dev, add, ascontiguous, copyto, from_host,
                        multiply, remainder)
from .cuda_shape import _elem_offset, _strided, _view_strides, broadcast_to, moveaxis, reshape

__all__ = ["gather", "take", "take_along_axis", "put_along_axis", "scatter_add", "index_add",
           "nonzero", "cumsum", "cumprod", "flip", "tile", "pad", "eye", "linspace"]

_ATOMIC = ("float32", "float64", "int64", "int32")
_FLOATS = ("float32", "float64", "float16", "bfloat16")


def _prod(dims) -> int:
    n = 1
    for d in dims:
        n *= int(d)
    return n


def _axis(axis, ndim: int, op: str) -> int:
    axis = operator.index(axis)
    if not -ndim <= axis < max(ndim, 1):
        raise np.exceptions.AxisError(f"{op}: axis {axis} is out of bounds for array of "
                                      f"dimension {ndim}")
    return axis % max(ndim, 1)


def _bad_index(bad, axis, size):
    return IndexError(f"index {bad} is out of bounds for axis {axis} with size {size}")


def _host_int(idx):
    """A host index (int, list, numpy array) as an integer numpy array."""
    arr = np.asarray(idx)
    if arr.size == 0 and arr.dtype.kind not in "iub":
        arr = arr.astype(np.int64)
    return arr


def _to_host_index(idx):
    if idx.dtype_name not in ("int64", "int32", "uint8"):
        raise IndexError("arrays used as indices must be of integer (or boolean) type, "
                         f"got {idx.dtype_name}")
    return idx.numpy()


def _check_host(arr, size, axis):
    if arr.size:
        lo, hi = int(arr.min()), int(arr.max())
        if hi >= size:
            raise _bad_index(hi, axis, size)
        if lo < -size:
            raise _bad_index(lo, axis, size)


def _index_array(idx, size, axis, device):
    """``idx`` as a validated int64 device array (numpy's IndexError when an entry is
    outside [-size, size); host indices are checked on the host, device ones by one
    check kernel and one sync)."""
    if _is_dev(idx):
        if idx.dtype_name not in ("int64", "int32", "uint8"):
            raise IndexError("arrays used as indices must be of integer (or boolean) type, "
                             f"got {idx.dtype_name}")
        idx = _astype(idx, "int64")
        _cuda().index_check(idx, int(size), int(axis))
        return idx
    arr = _host_int(idx)
    if arr.dtype.kind not in "iu":
        raise IndexError(f"arrays used as indices must be of integer (or boolean) type, got {arr.dtype}")
    _check_host(arr, size, axis)
    return from_host(arr.astype(np.int64, copy=False), device)


def _unaliased(idx, dst):
    """``idx`` itself, or a copy when it lives in ``dst``'s storage: the put/add kernels
    read each index while other threads write ``dst`` (numpy reads the whole index first)."""
    return _cuda().astype(idx, idx.dtype_name) if idx.shares_storage(dst) else idx


def _values(v, dname, device, shape):
    """A value operand as a device array of ``dname`` broadcast to ``shape``."""
    if _is_dev(v):
        if v.device != device:
            raise ValueError(f"expected all arrays on cuda:{device}, got one on cuda:{v.device}")
        v = _astype(v, dname)
    elif isinstance(v, (bool, int, float, np.generic)) or np.ndim(v) == 0:
        v = _full([], v.item() if hasattr(v, "item") else v, dname, device)
    else:
        v = _cuda().astype(from_host(np.asarray(v), device), dname)
    try:
        return broadcast_to(v, tuple(shape))
    except ValueError:
        raise ValueError(f"shape mismatch: value array of shape {tuple(v.shape)} could not be "
                         f"broadcast to indexing result of shape {tuple(shape)}") from None


def _astype(a, name):
    """``a`` as dtype ``name`` (itself when it already is; bfloat16 by name)."""
    return a if a.dtype_name == name else _cuda().astype(a, name)


def _full(shape, value, name, device):
    return _cuda().full([int(s) for s in shape], value, name, device)


def _apply(mode, base, idx, size, stride, values):
    _cuda().index_apply(mode, base, idx, int(size), int(stride), values)


def _gather(base, idx, size, stride, dname):
    out = _cuda().DeviceArray.empty([int(s) for s in base.shape], dname, base.device)
    _apply("gather", base, idx, size, stride, out)
    return out


def _accumulate_buffer(dst):
    """The dtype atomics accumulate ``dst`` in when the kernel cannot add its own."""
    return "int64" if dst.dtype_name in ("bool", "uint8") else "float32"


# ---------------------------------------------------------------- along an axis
def _along_shape(a, idx, axis, op):
    """numpy's take_along_axis shape: a's and idx's dims broadcast, idx's along ``axis``."""
    if idx.ndim != a.ndim:
        raise ValueError(f"{op}: `indices` and `arr` must have the same number of dimensions "
                         f"(got {idx.ndim} and {a.ndim})")
    shape = []
    for d, (n, m) in enumerate(zip(a.shape, idx.shape)):
        if d == axis or n == m or n == 1:
            shape.append(m)
        elif m == 1:
            shape.append(n)
        else:
            raise IndexError(f"shape mismatch: indexing arrays could not be broadcast together "
                             f"with shapes {tuple(a.shape)} {tuple(idx.shape)}")
    return shape


def _base_view(a, shape, axis, sliced=False):
    """a seen with ``shape``: stride 0 along ``axis`` and over broadcast dims; ``sliced``:
    the leading part of each other dim (gather's index may be smaller than the input)."""
    strides = []
    for d, (n, st) in enumerate(zip(a.shape, a.element_strides)):
        if d == axis or (n == 1 and shape[d] != 1):
            strides.append(0)
        else:
            if sliced and shape[d] > n:
                raise _bad_index(shape[d] - 1, d, n)
            strides.append(st)
    return _strided(a, shape, strides)


def _idx_along(idx, a, axis, device):
    """The index as given (a device array) or as a host integer numpy array; _index_array
    later checks it where it lives and uploads a host one."""
    if _is_dev(idx):
        return idx
    return _host_int(idx)


def take_along_axis(a, indices, axis):
    a = _device_array(a, "take_along_axis")
    if axis is None:
        a, axis = reshape(a, (-1,)), 0
    idx = _idx_along(indices, a, axis, a.device)
    axis = _axis(axis, a.ndim, "take_along_axis")
    shape = _along_shape(a, idx, axis, "take_along_axis")
    idx = _index_array(idx, a.shape[axis], axis, a.device)
    base = _base_view(a, shape, axis)
    return _gather(base, broadcast_to(idx, tuple(shape)), a.shape[axis],
                   a.element_strides[axis], a.dtype_name)


def put_along_axis(a, indices, values, axis):
    """a[..., indices[i, j, ...], ...] = values along ``axis`` (in place)."""
    a = _device_array(a, "put_along_axis")
    if axis is None:
        a, axis = reshape(a, (-1,)), 0
    idx = _idx_along(indices, a, axis, a.device)
    axis = _axis(axis, a.ndim, "put_along_axis")
    shape = _along_shape(a, idx, axis, "put_along_axis")
    idx = _index_array(idx, a.shape[axis], axis, a.device)
    vals = _values(values, a.dtype_name, a.device, shape)
    if vals.shares_storage(a):
        vals = _cuda().astype(vals, vals.dtype_name)
    _apply("put", _base_view(a, shape, axis), broadcast_to(_unaliased(idx, a), tuple(shape)),
           a.shape[axis], a.element_strides[axis], vals)


def gather(a, axis, indices):
    """out[i, j, ...] = a[..., indices[i, j, ...], ...] with ``indices`` replacing ``axis``;
    ``indices`` has a's number of dims and is no larger than a in the other dims."""
    a = _device_array(a, "gather")
    idx = _idx_along(indices, a, axis, a.device)
    axis = _axis(axis, a.ndim, "gather")
    if idx.ndim != a.ndim:
        raise ValueError(f"gather: indices {tuple(idx.shape)} must have as many dims as the "
                         f"input {tuple(a.shape)}")
    shape = list(idx.shape)
    base = _base_view(a, shape, axis, sliced=True)
    idx = _index_array(idx, a.shape[axis], axis, a.device)
    return _gather(base, idx, a.shape[axis], a.element_strides[axis], a.dtype_name)


def scatter_add(dst, axis, indices, src):
    """dst[..., indices[i,j,..], ...] += src[i,j,..] along ``axis`` (in place; repeated
    indices accumulate, by atomics)."""
    dst = _device_array(dst, "scatter_add")
    if dst.dtype_name not in _ATOMIC:
        buf = _cuda().astype(dst, _accumulate_buffer(dst))
        scatter_add(buf, axis, indices, src)
        copyto(dst, buf)
        return
    idx = _idx_along(indices, dst, axis, dst.device)
    axis = _axis(axis, dst.ndim, "scatter_add")
    if idx.ndim != dst.ndim:
        raise ValueError(f"scatter_add: indices {tuple(idx.shape)} must have as many dims as "
                         f"dst {tuple(dst.shape)}")
    shape = list(idx.shape)
    base = _base_view(dst, shape, axis, sliced=True)
    idx = _index_array(idx, dst.shape[axis], axis, dst.device)
    vals = _values(src, dst.dtype_name, dst.device, shape)
    if vals.shares_storage(dst):
        vals = _cuda().astype(vals, vals.dtype_name)
    _apply("add", base, _unaliased(idx, dst), dst.shape[axis], dst.element_strides[axis], vals)


def take(a, indices, axis=None):
    """numpy.take (mode 'raise'): a[(:,) * axis + (indices,)]; axis None: the flat array."""
    a = _device_array(a, "take")
    # numpy.take reads a boolean array as integers (0/1), never as a mask
    if _is_dev(indices):
        if indices.dtype_name == "bool":
            indices = _astype(indices, "int64")
    elif np.asarray(indices).dtype == np.bool_:
        indices = np.asarray(indices).astype(np.int64)
    if axis is None:
        return _advanced(reshape(a, (-1,)), (indices,), "gather")
    axis = _axis(axis, a.ndim, "take")
    return _advanced(a, (slice(None),) * axis + (indices,), "gather")


def index_add(dst, index, src):
    """dst[index] += src with repeated indices accumulated (in place); ``index`` is any
    numpy index (ints, slices, None, ..., integer arrays, boolean masks)."""
    dst = _device_array(dst, "index_add")
    _advanced(dst, index, "add", src)


# ---------------------------------------------------------------- advanced indexing
def _is_array_index(k) -> bool:
    if _is_dev(k):
        return True
    if isinstance(k, (list, tuple, np.ndarray)):
        return True
    return hasattr(k, "__array__") and not hasattr(k, "__index__")


def has_array_index(index) -> bool:
    """Whether ``index`` needs the advanced path (an integer array or a mask in it)."""
    items = index if isinstance(index, tuple) else (index,)
    return builtins.any(_is_array_index(k) for k in items)


def _normalize(a, index):
    """numpy's index items, one entry per position, Ellipsis expanded, masks turned into
    integer arrays: ('none',) | ('slice', dim, slice) | ('adv', dim, array)."""
    items = list(index) if isinstance(index, tuple) else [index]
    parsed = []
    for k in items:
        if k is None or k is Ellipsis or isinstance(k, slice):
            parsed.append((k, 0 if k is None or k is Ellipsis else 1))
        elif isinstance(k, (bool, np.bool_)):
            raise NotImplementedError("index: a Python bool as an index is not supported by the "
                                      "CUDA backend; use a boolean array")
        elif _is_array_index(k):
            arr = k if _is_dev(k) else _host_int(k)
            is_mask = arr.dtype_name == "bool" if _is_dev(arr) else arr.dtype == np.bool_
            if is_mask:
                if arr.ndim == 0:
                    raise NotImplementedError("index: a 0-d boolean index is not supported by "
                                              "the CUDA backend")
                parsed.append((("mask", arr), arr.ndim))
            else:
                parsed.append((("int", arr), 1))
        elif hasattr(k, "__index__"):
            parsed.append((("int", operator.index(k)), 1))
        else:
            raise IndexError("only integers, slices (`:`), ellipsis (`...`), numpy.newaxis "
                             "(`None`) and integer or boolean arrays are valid indices")
    if builtins.sum(1 for k, _ in parsed if k is Ellipsis) > 1:
        raise IndexError("an index can only have a single ellipsis ('...')")
    used = builtins.sum(n for _, n in parsed)
    if used > a.ndim:
        raise IndexError(f"too many indices for array: array is {a.ndim}-dimensional, but "
                         f"{used} were indexed")
    fill = [(slice(None), 1)] * (a.ndim - used)
    if builtins.any(k is Ellipsis for k, _ in parsed):
        i = [k is Ellipsis for k, _ in parsed].index(True)
        parsed = parsed[:i] + fill + parsed[i + 1:]
    else:
        parsed = parsed + fill
    entries, d = [], 0
    for k, n in parsed:
        if k is None:
            entries.append(("none",))
        elif isinstance(k, slice):
            entries.append(("slice", d, k))
        elif k[0] == "int":
            entries.append(("adv", d, k[1]))
        else:
            mask = k[1]
            want = tuple(a.shape[d:d + n])
            for j, (m, s) in enumerate(zip(mask.shape, want)):
                if m != s:
                    raise IndexError(f"boolean index did not match indexed array along axis "
                                     f"{d + j}; size of axis is {s} but size of corresponding "
                                     f"boolean axis is {m}")
            coords = nonzero(mask) if _is_dev(mask) else np.nonzero(mask)
            for j, c in enumerate(coords):
                entries.append(("adv", d + j, c))
        d += n
    return entries


def _shape_of(x):
    return tuple(x.shape) if hasattr(x, "shape") else ()


def _combined_index(a, advs):
    """(index array over B, size, stride, B): one validated int64 device array giving,
    for each broadcast position, the element offset of the indexed dims."""
    shapes = [_shape_of(x) for _, x in advs]
    try:
        bshape = tuple(np.broadcast_shapes(*shapes))
    except ValueError:
        raise IndexError("shape mismatch: indexing arrays could not be broadcast together with "
                         "shapes " + " ".join(str(s) for s in shapes)) from None
    if len(advs) == 1:
        d, x = advs[0]
        idx = _index_array(x, a.shape[d], d, a.device)
        return idx, a.shape[d], a.element_strides[d], bshape
    if builtins.all(not _is_dev(x) for _, x in advs):  # combined on the host, one upload
        total = np.zeros(bshape, np.int64)
        for d, x in advs:
            arr = _host_int(x)
            if arr.dtype.kind not in "iu":
                raise IndexError("arrays used as indices must be of integer (or boolean) type")
            _check_host(arr, a.shape[d], d)
            total = total + np.where(arr < 0, arr + a.shape[d], arr).astype(np.int64) \
                * a.element_strides[d]
        return from_host(total, a.device), 0, 1, bshape
    total = None
    for d, x in advs:
        idx = _index_array(x, a.shape[d], d, a.device)
        if _prod(bshape) == 0:
            continue
        part = multiply(remainder(idx, a.shape[d]), a.element_strides[d])
        total = part if total is None else add(total, part)
    if total is None:
        total = _full(bshape, 0, "int64", a.device)
    return ascontiguous(broadcast_to(total, bshape)), 0, 1, bshape


def _advanced(a, index, mode, value=None):
    """a[index] (mode 'gather'), a[index] = value ('put') or a[index] += value with
    repeats accumulated ('add'), numpy's advanced-indexing rules."""
    entries = _normalize(a, index)
    adv_pos = [i for i, e in enumerate(entries) if e[0] == "adv"]
    if (mode == "add" and len(adv_pos) == 1 and _is_dev(entries[adv_pos[0]][2])
            and a.dtype_name in _FLOATS and adv_pos[0] == 0):
        # one device index array in front (the embedding backward): its values come to the
        # host (the one sync a device check would cost anyway) for the deterministic sort
        e = entries[adv_pos[0]]
        entries[adv_pos[0]] = (e[0], e[1], _to_host_index(e[2]))
    advs = [(e[1], e[2]) for e in entries if e[0] == "adv"]
    if advs:
        idx, size, stride, bshape = _combined_index(a, advs)
    else:
        idx, size, stride, bshape = None, 0, 0, ()
    adjacent = not adv_pos or adv_pos[-1] - adv_pos[0] == len(adv_pos) - 1
    # basic dims of the result: (size, stride, flipped) and the base offset
    basic, offset, insert_at = [], _elem_offset(a), 0
    for i, e in enumerate(entries):
        if adv_pos and adjacent and i == adv_pos[0]:
            insert_at = len(basic)
        if e[0] == "none":
            basic.append((1, 0, False))
        elif e[0] == "slice":
            d, sl = e[1], e[2]
            start, stop, step = sl.indices(a.shape[d])
            n = len(range(start, stop, step))
            low = start if step > 0 else start + (n - 1) * step
            if n:
                offset += low * a.element_strides[d]
            basic.append((n, a.element_strides[d] * abs(step), step < 0))
    nb = len(bshape)
    shape = [s for s, _, _ in basic[:insert_at]] + list(bshape) + [s for s, _, _ in basic[insert_at:]]
    strides = [st for _, st, _ in basic[:insert_at]] + [0] * nb + [st for _, st, _ in basic[insert_at:]]
    flips = [i if i < insert_at else i + nb for i, (_, _, f) in enumerate(basic) if f]
    if idx is None:  # no arrays: the plain view (negative steps flipped)
        view = _strided(a, shape, strides, offset)
        return _finish_basic(a, view, flips, mode, value)
    base = _strided(a, shape, strides, offset if _prod(shape) else _elem_offset(a))
    ib = broadcast_to(idx if mode == "gather" else _unaliased(idx, a), bshape)
    istr = [0] * insert_at + list(ib.element_strides) + [0] * (len(shape) - insert_at - nb)
    iv = _strided(ib, shape, istr)
    if mode == "gather":
        out = _gather(base, iv, size, stride, a.dtype_name)
        return _cuda().flip(out, flips) if flips else out
    vals = _values(value, a.dtype_name, a.device, shape)
    if flips:
        vals = _cuda().flip(vals, flips)
    elif vals.shares_storage(a):
        vals = _cuda().astype(vals, vals.dtype_name)
    if mode == "put":
        _apply("put", base, iv, size, stride, vals)
    elif not _segmented_add(a, base, iv, advs, size, stride, vals, insert_at, nb):
        if a.dtype_name in _ATOMIC:
            _apply("add", base, iv, size, stride, vals)
        else:
            buf = _cuda().astype(a, _accumulate_buffer(a))
            _advanced(buf, index, "add", value)
            copyto(a, buf)
    return None


def _finish_basic(a, view, flips, mode, value):
    if mode == "gather":
        return _cuda().flip(view, flips) if flips else view
    vals = _values(value, a.dtype_name, a.device, tuple(view.shape))
    if flips:
        vals = _cuda().flip(vals, flips)
    if mode == "put":
        copyto(view, vals)
    else:  # basic indices never repeat an element
        _cuda().binary("add", view, vals, out=view)
    return None


def _segmented_add(a, base, iv, advs, size, stride, vals, insert_at, nb):
    """Deterministic index_add for one host index array in front of the result's dims:
    sort the indices on the host (stable), sum each destination row's values in that
    order. False when the case does not apply (then atomics)."""
    if len(advs) != 1 or insert_at != 0 or _is_dev(advs[0][1]) or size == 0:
        return False
    idx = _host_int(advs[0][1]).reshape(-1).astype(np.int64)
    idx = np.where(idx < 0, idx + size, idx)
    rest = tuple(base.shape[nb:])
    q = _prod(rest)
    col = _view_strides(list(rest), list(base.element_strides[nb:]), [q])
    if col is None or idx.size == 0 or q == 0:
        return col is not None
    perm = np.argsort(idx, kind="stable")
    rows, starts = np.unique(idx[perm], return_index=True)
    starts = np.append(starts, idx.size).astype(np.int64)
    base_q = _strided(base, [q], col, _elem_offset(base))
    vals2 = reshape(vals, (idx.size, q))
    dev = a.device
    _cuda().index_add_segments(base_q, vals2, from_host(perm.astype(np.int64), dev),
                               from_host(starts, dev), from_host(rows.astype(np.int64), dev),
                               int(stride))
    return True


def advanced_getitem(a, index):
    return _advanced(a, index, "gather")


def advanced_setitem(a, index, value):
    _advanced(a, index, "put", value)


# ---------------------------------------------------------------- nonzero, scans, flip
def nonzero(a):
    """numpy.nonzero: a tuple of int64 arrays, one per dim, C order (one sync)."""
    a = _device_array(a, "nonzero")
    if a.ndim == 0:
        raise ValueError("Calling nonzero on 0d arrays is not allowed. Use "
                         "np.atleast_1d(scalar).nonzero() instead.")
    coords = _cuda().nonzero(a)
    return tuple(_strided(coords, [coords.shape[1]], [1], _elem_offset(coords) + d * coords.shape[1])
                 for d in range(a.ndim))


def _scan_dtypes(a, op):
    """(dtype the kernel runs in, numpy's result dtype name)."""
    name = a.dtype_name
    if name in ("float32", "float64"):
        return name, name
    if name in ("float16", "bfloat16"):
        return "float32", name
    return "int64", "int64"  # bool and integers (numpy: uint8 -> uint64, not a CUDA dtype)


def _scan(a, axis, prod, op):
    a = _device_array(a, op)
    if axis is None or a.ndim == 0:
        a, axis = reshape(a, (-1,)), 0
    axis = _axis(axis, a.ndim, op)
    work, result = _scan_dtypes(a, op)
    if a.size == 0:
        return _cuda().DeviceArray.empty(list(a.shape), result, a.device)
    x = ascontiguous(_astype(a, work))
    shape = tuple(x.shape)
    outer, n, inner = _prod(shape[:axis]), shape[axis], _prod(shape[axis + 1:])
    if inner > 1 and outer * inner < 4096 and n > 64:  # too few lines: scan along the last dim
        moved = ascontiguous(moveaxis(x, axis, -1))
        y = _cuda().scan(moved, outer * inner, n, 1, prod)
        y = ascontiguous(moveaxis(reshape(y, tuple(moved.shape)), -1, axis))
    else:
        y = _cuda().scan(x, outer, n, inner, prod)
    return y if result == work else _cuda().astype(y, result)


def cumsum(a, axis):
    return _scan(a, axis, False, "cumsum")


def cumprod(a, axis):
    return _scan(a, axis, True, "cumprod")


def flip(a, axis=None):
    """numpy.flip as a contiguous copy (device strides are never negative)."""
    a = _device_array(a, "flip")
    if axis is None:
        axes = list(range(a.ndim))
    else:
        axes = [_axis(d, a.ndim, "flip") for d in ((axis,) if hasattr(axis, "__index__") else axis)]
    return _cuda().flip(a, axes)


# ---------------------------------------------------------------- composed
def tile(a, reps):
    """numpy.tile: a copy of ``a`` repeated ``reps`` times along each dim, built as one
    strided copy of the broadcast view (r0, s0, r1, s1, ...)."""
    a = _device_array(a, "tile")
    reps = (operator.index(reps),) if hasattr(reps, "__index__") else tuple(operator.index(r) for r in reps)
    d = builtins.max(len(reps), a.ndim)
    reps = (1,) * (d - len(reps)) + reps
    shape = (1,) * (d - a.ndim) + tuple(a.shape)
    strides = (0,) * (d - a.ndim) + tuple(a.element_strides)
    vshape, vstrides = [], []
    for r, s, st in zip(reps, shape, strides):
        vshape += [r, s]
        vstrides += [0, st]
    out = _cuda().astype(_strided(a, vshape, vstrides), a.dtype_name)
    return reshape(out, tuple(r * s for r, s in zip(reps, shape)))


def _pad_source(pos, n, mode):
    if mode in ("edge", "replicate"):
        return np.clip(pos, 0, n - 1)
    if mode in ("wrap", "circular"):
        return np.mod(pos, n)
    if n == 1:
        return np.zeros_like(pos)
    period = 2 * (n - 1)  # reflect: ... 2 1 | 0 1 2 ... n-1 | n-2 ...
    m = np.mod(pos, period)
    return np.where(m < n, m, period - m)


def pad(a, pad_width, mode, value):
    """numpy.pad with modes constant (``value``), replicate/edge, circular/wrap and
    reflect; constant is a fill plus a slice copy, the others one gather per padded dim."""
    a = _device_array(a, "pad")
    widths = np.broadcast_to(np.asarray(pad_width, dtype=np.int64).reshape(-1, 2)
                             if np.ndim(pad_width) else np.asarray(pad_width, np.int64),
                             (a.ndim, 2))
    if (widths < 0).any():
        raise ValueError("index can't contain negative values")
    if mode == "constant":
        shape = [int(n + lo + hi) for n, (lo, hi) in zip(a.shape, widths)]
        fill = 0 if value is None else value
        out = _full(shape, fill.item() if hasattr(fill, "item") else fill, a.dtype_name,
                    a.device)
        inner = tuple(slice(int(lo), int(lo) + n) for n, (lo, _) in zip(a.shape, widths))
        copyto(_strided(out, *_slice_view(out, inner)), a)
        return out
    if mode not in ("reflect", "replicate", "edge", "circular", "wrap"):
        raise ValueError(f"pad: mode {mode!r} is not supported")
    y = a
    for d, (lo, hi) in enumerate(widths):
        lo, hi = int(lo), int(hi)
        if not lo and not hi:
            continue
        n = a.shape[d]
        if n == 0:
            raise ValueError(f"can't extend empty axis {d} using modes other than 'constant' "
                             "or 'empty'")
        src = _pad_source(np.arange(-lo, n + hi, dtype=np.int64), n, mode)
        y = take(y, src, d)
    return y if y is not a else _cuda().astype(a, a.dtype_name)


def _slice_view(a, index):
    shape, strides, offset = [], [], _elem_offset(a)
    for sl, n, st in zip(index, a.shape, a.element_strides):
        start, stop, _ = sl.indices(n)
        size = builtins.max(0, stop - start)
        if size:
            offset += start * st
        shape.append(size)
        strides.append(st)
    return shape, strides, offset


def eye(n, m=None, dtype=np.float64, device=None):
    """numpy.eye: zeros with ones on the diagonal (a strided fill over the flat array)."""
    m = n if m is None else m
    name = np.dtype(dtype).name if not isinstance(dtype, str) else dtype
    dev = _cuda().current_device() if device is None else device
    out = _full((n, m), 0, name, dev)
    k = builtins.min(n, m)
    if k:
        _cuda().fill_(_strided(out, [k], [m + 1], _elem_offset(out)), 1)
    return out


def linspace(start, end, steps, dtype=np.float64, device=None):
    """numpy.linspace (endpoint included): start + i * step in float64, the last value
    exactly ``end``; integer dtypes floor, as numpy does."""
    num = operator.index(steps)
    if num < 0:
        raise ValueError(f"Number of samples, {num}, must be non-negative.")
    dev = _cuda().current_device() if device is None else device
    div = num - 1
    step = (end - start) / div if div > 0 else 0.0
    y = _cuda().arange(float(start), float(step), num, np.dtype(np.float64), dev)
    if num > 1:
        _cuda().fill_(_strided(y, [1], [1], num - 1), float(end))
    name = np.dtype(dtype).name if not isinstance(dtype, str) else dtype
    if name != "bfloat16" and np.dtype(name).kind in "iu":
        y = _cuda().unary("floor", y)
    return _astype(y, name)
