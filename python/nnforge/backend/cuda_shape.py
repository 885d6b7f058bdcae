"""CUDA backend, shape and view functions: reshape, transpose, broadcast_to,
expand_dims, squeeze, moveaxis, swap_last, view, getitem / setitem,
concatenate and stack.

Views are metadata only (``DeviceArray.as_strided`` over the same storage).
Basic indexing (ints, slices with positive steps, None, Ellipsis) gives a
view. Everything else goes to cuda_index.py: integer arrays and boolean
masks (numpy's advanced indexing: a copy, through the gather/put kernels),
and negative slice steps (device strides are never negative, so the result
is a flipped copy, and assignment writes a flipped copy of the value).
"""
from __future__ import annotations

import builtins
import operator

from .cuda_core import _cuda, _device_array, copyto, empty, result_dtype

__all__ = ["reshape", "view", "transpose", "swap_last", "moveaxis", "broadcast_to",
           "expand_dims", "squeeze", "getitem", "setitem", "concatenate", "stack"]


def _elem_offset(a) -> int:
    return a.offset // a.itemsize


def _strided(a, shape, strides, offset=None):
    return a.as_strided(list(shape), list(strides),
                        _elem_offset(a) if offset is None else offset)


def _resolve_shape(shape, size: int, op: str):
    if isinstance(shape, int):
        shape = (shape,)
    shape = [operator.index(s) for s in shape]
    if shape.count(-1) > 1:
        raise ValueError(f"{op}: can only specify one unknown dimension")
    if -1 in shape:
        known = 1
        for s in shape:
            if s != -1:
                known *= s
        if known == 0 or size % known:
            raise ValueError(f"{op}: cannot reshape array of size {size} into shape {tuple(shape)}")
        shape[shape.index(-1)] = size // known
    n = 1
    for s in shape:
        n *= s
    if n != size:
        raise ValueError(f"{op}: cannot reshape array of size {size} into shape {tuple(shape)}")
    return shape


def _view_strides(old_shape, old_strides, new_shape):
    """Strides that give ``new_shape`` over the same memory, or None when the old
    layout cannot be split/merged into it (then a copy is needed). Walks groups
    of old dims that are contiguous with each other and matches them to groups
    of new dims with the same element count."""
    if 0 in old_shape or 0 in new_shape:
        out, s = [], 1
        for d in reversed(new_shape):
            out.append(s)
            s *= builtins.max(d, 1)
        return out[::-1]
    old = [(d, s) for d, s in zip(old_shape, old_strides) if d != 1]
    new_strides = [0] * len(new_shape)
    oi, ni = 0, 0
    while ni < len(new_shape) and new_shape[ni] == 1:
        new_strides[ni] = 1
        ni += 1
    while oi < len(old):
        # one chunk of old dims that is contiguous in memory
        chunk = old[oi][0]
        oj = oi
        while oj + 1 < len(old) and old[oj][1] == old[oj + 1][0] * old[oj + 1][1]:
            oj += 1
            chunk *= old[oj][0]
        inner = old[oj][1]
        # new dims consuming this chunk
        acc, start = 1, ni
        while ni < len(new_shape) and acc < chunk:
            acc *= new_shape[ni]
            ni += 1
        if acc != chunk:
            return None
        while ni < len(new_shape) and new_shape[ni] == 1:
            ni += 1
        s = inner
        for k in range(ni - 1, start - 1, -1):
            new_strides[k] = s if new_shape[k] != 1 else 1
            s *= new_shape[k]
        oi = oj + 1
    return new_strides


def reshape(a, shape):
    """numpy.reshape: a view when the layout allows, else a contiguous copy."""
    shape = _resolve_shape(shape, a.size, "reshape")
    strides = _view_strides(list(a.shape), list(a.element_strides), shape)
    if strides is None:
        a = _cuda().contiguous(a)
        strides = _view_strides(list(a.shape), list(a.element_strides), shape)
    return _strided(a, shape, strides)


def view(a, shape):
    """Reshape that refuses to copy (ValueError when a copy would be needed)."""
    shape = _resolve_shape(shape, a.size, "view")
    strides = _view_strides(list(a.shape), list(a.element_strides), shape)
    if strides is None:
        raise ValueError(f"view: shape {tuple(shape)} is incompatible with the input's layout "
                         f"(shape {a.shape}, strides {a.element_strides}); use reshape")
    return _strided(a, shape, strides)


def transpose(a, axes=None):
    n = a.ndim
    axes = tuple(range(n - 1, -1, -1)) if axes is None else tuple(d % n if n else d for d in axes)
    if sorted(axes) != list(range(n)):
        raise ValueError(f"transpose: axes {axes} are not a permutation of {n} dims")
    shape, strides = a.shape, a.element_strides
    return _strided(a, [shape[d] for d in axes], [strides[d] for d in axes])


def swap_last(a):
    axes = list(range(a.ndim))
    axes[-1], axes[-2] = axes[-2], axes[-1]
    return transpose(a, axes)


def moveaxis(a, source, destination):
    n = a.ndim
    src = [s % n for s in ((source,) if isinstance(source, int) else source)]
    dst = [d % n for d in ((destination,) if isinstance(destination, int) else destination)]
    order = [d for d in range(n) if d not in src]
    for d, s in sorted(zip(dst, src)):
        order.insert(d, s)
    return transpose(a, order)


def broadcast_to(a, shape):
    shape = tuple(shape)
    if len(shape) < a.ndim:
        raise ValueError(f"broadcast_to: cannot broadcast shape {a.shape} to {shape}")
    lead = len(shape) - a.ndim
    strides = [0] * lead
    for d, (size, st) in enumerate(zip(a.shape, a.element_strides)):
        target = shape[lead + d]
        if size == target:
            strides.append(st if size != 1 else 0)
        elif size == 1:
            strides.append(0)
        else:
            raise ValueError(f"broadcast_to: cannot broadcast shape {a.shape} to {shape}")
    return _strided(a, shape, strides)


def expand_dims(a, axis):
    axes = (axis,) if isinstance(axis, int) else tuple(axis)
    n = a.ndim + len(axes)
    axes = sorted(d % n for d in axes)
    shape, strides = list(a.shape), list(a.element_strides)
    for d in axes:
        shape.insert(d, 1)
        strides.insert(d, 0)
    return _strided(a, shape, strides)


def squeeze(a, axis=None):
    if axis is None:
        axes = {d for d, s in enumerate(a.shape) if s == 1}
    else:
        axes = {d % a.ndim for d in ((axis,) if isinstance(axis, int) else axis)}
        for d in axes:
            if a.shape[d] != 1:
                raise ValueError("squeeze: cannot select an axis to squeeze out which has size "
                                 "not equal to one")
    keep = [d for d in range(a.ndim) if d not in axes]
    return _strided(a, [a.shape[d] for d in keep], [a.element_strides[d] for d in keep])


def _basic_index(a, index):
    """(shape, strides, element offset) of a[index] for basic indexing, or None when
    the index needs cuda_index (arrays, masks, bools, negative slice steps)."""
    if not isinstance(index, tuple):
        index = (index,)
    for k in index:
        if not (k is None or k is Ellipsis or isinstance(k, slice) or hasattr(k, "__index__")) \
                or isinstance(k, bool) or hasattr(k, "shape") and getattr(k, "ndim", 0) > 0 \
                or hasattr(k, "dtype_name"):
            return None
    used = builtins.sum(1 for k in index if k is not None and k is not Ellipsis)
    if used > a.ndim:
        raise IndexError(f"too many indices for array: array is {a.ndim}-dimensional, "
                         f"but {used} were indexed")
    if Ellipsis in index:
        i = index.index(Ellipsis)
        index = index[:i] + (slice(None),) * (a.ndim - used) + index[i + 1:]
    else:
        index = index + (slice(None),) * (a.ndim - used)
    shape, strides, offset, d = [], [], _elem_offset(a), 0
    for k in index:
        if k is None:
            shape.append(1)
            strides.append(0)
            continue
        size, st = a.shape[d], a.element_strides[d]
        if isinstance(k, slice):
            start, stop, step = k.indices(size)
            if step < 0:
                return None
            n = builtins.max(0, (stop - start + step - 1) // step)
            if n:
                offset += start * st
            shape.append(n)
            strides.append(st * step)
        else:
            i = operator.index(k)
            if not -size <= i < size:
                raise IndexError(f"index {i} is out of bounds for axis {d} with size {size}")
            offset += (i % size) * st
        d += 1
    return shape, strides, offset


def getitem(a, index):
    """numpy's a[index]: a view for basic indices, a copy otherwise (cuda_index)."""
    basic = _basic_index(a, index)
    if basic is None:
        from .cuda_index import advanced_getitem
        return advanced_getitem(a, index)
    shape, strides, offset = basic
    return _strided(a, shape, strides, offset)


def setitem(a, index, value):
    """numpy's a[index] = value (in place), value broadcast and cast to a's dtype."""
    basic = _basic_index(a, index)
    if basic is None:
        from .cuda_index import advanced_setitem
        advanced_setitem(a, index, value)
        return
    copyto(_strided(a, *basic), value)


def concatenate(arrays, axis=0):
    arrays = [_device_array(x, "concatenate") for x in arrays]
    first = arrays[0]
    if axis is None:
        arrays = [reshape(x, (-1,)) for x in arrays]
        axis = 0
    axis = axis % first.ndim
    shape = list(first.shape)
    shape[axis] = builtins.sum(x.shape[axis] for x in arrays)
    out = empty(shape, result_dtype(*arrays), device=first.device)
    start = 0
    for x in arrays:
        index = (slice(None),) * axis + (slice(start, start + x.shape[axis]),)
        copyto(getitem(out, index), x)
        start += x.shape[axis]
    return out


def stack(arrays, axis=0):
    arrays = [_device_array(x, "stack") for x in arrays]
    n = arrays[0].ndim + 1
    return concatenate([expand_dims(x, axis % n) for x in arrays], axis=axis % n)
