"""Collectives on tensors: all_reduce, broadcast, all_gather, barrier.

Each one hands the tensor's own numpy array to mpi4py's buffer interface
(the upper-case ``Allreduce``/``Bcast``/``Allgather``), so MPI reads and
writes the tensor's memory directly: no pickling, no Python objects per
element, and in place where the operation is in place. Two cases go through
a staging copy: a non-contiguous CPU tensor (MPI needs one contiguous block;
the result is copied back), and a CUDA tensor, which is copied to the host
and back (nnforge does not hand device pointers to a CUDA-aware MPI).

``async_op=True`` posts the non-blocking form (``Iallreduce`` ...) and
returns a ``Work`` whose ``wait()`` completes it.
"""
from __future__ import annotations

from enum import Enum

import numpy as np

from ..autograd.grad_mode import no_grad
from ..tensor import Tensor
from ._mpi import mpi
from .process_group import _group

__all__ = ["ReduceOp", "Work", "all_reduce", "broadcast", "all_gather", "barrier"]


class ReduceOp(Enum):
    """How ``all_reduce`` combines the ranks' tensors (AVG: the SUM divided by
    the world size, floating point only)."""

    SUM = "SUM"
    AVG = "AVG"
    PRODUCT = "PROD"
    MIN = "MIN"
    MAX = "MAX"
    BAND = "BAND"
    BOR = "BOR"
    BXOR = "BXOR"


class Work:
    """A posted collective: ``wait()`` blocks until it is done (and copies
    staged results back); ``is_completed()`` polls."""

    def __init__(self, request, finish=None):
        self._request = request
        self._finish = finish
        self._done = False

    def is_completed(self) -> bool:
        if not self._done and (self._request is None or self._request.Test()):
            self._complete()
        return self._done

    def wait(self, timeout=None) -> bool:
        if not self._done:
            if self._request is not None:
                self._request.Wait()
            self._complete()
        return True

    def _complete(self) -> None:
        self._done = True
        if self._finish is not None:
            self._finish()
            self._finish = None


class _Staged:
    """The contiguous host array MPI works on for ``tensor``, and how to put a
    result back (nothing to do when it is the tensor's own array)."""

    def __init__(self, tensor: Tensor, op: str, writable: bool = True):
        if not isinstance(tensor, Tensor):
            raise TypeError(f"{op}: expected an nnforge Tensor, got {type(tensor).__name__}")
        self.tensor = tensor
        if tensor.device.type != "cpu":
            self.array = np.ascontiguousarray(tensor.cpu().data)  # staged through host
            self.own = False
        else:
            data = tensor.data
            if writable and not data.flags.writeable:
                raise RuntimeError(f"{op}: cannot write into this tensor of shape "
                                   f"{tuple(tensor.shape)}: its memory is read-only; clone() it")
            self.own = data.flags.c_contiguous
            self.array = data if self.own else np.ascontiguousarray(data)
        if self.array.dtype.char not in mpi()._typedict:
            raise TypeError(f"{op}: tensors of dtype {tensor.dtype} cannot be sent over MPI "
                            "(float32, float64 and the integer types can)")

    def write_back(self) -> None:
        t = self.tensor
        if not self.own:
            if t.device.type == "cpu":
                t.data[...] = self.array
            else:
                with no_grad():
                    t.copy_(Tensor._make(self.array, _cpu(), False))
        t._bump_version()


def _cpu():
    from ..device import as_device
    return as_device("cpu")


def _mpi_op(op: ReduceOp, dtype, name: str):
    MPI = mpi()
    if not isinstance(op, ReduceOp):
        raise TypeError(f"{name}: op must be a ReduceOp, got {op!r}")
    if op is ReduceOp.AVG:
        if dtype.kind != "f":
            raise TypeError(f"{name}: ReduceOp.AVG needs a floating point tensor, got {dtype}")
        return MPI.SUM
    return getattr(MPI, op.value)


def _run(start, finish, async_op: bool):
    if async_op:
        return Work(start(False), finish)
    start(True)
    finish()
    return None


def all_reduce(tensor: Tensor, op: ReduceOp = ReduceOp.SUM, group=None, async_op: bool = False):
    """Combines ``tensor`` across all ranks, in place: every rank ends with the
    SUM (AVG, MAX, MIN, ...) of the ranks' values.

    >>> # t = nf.tensor([float(dist.get_rank())]); dist.all_reduce(t); t  # 0 + 1 + ... + (N-1)
    """
    g = _group(group)
    staged = _Staged(tensor, "all_reduce")
    mop = _mpi_op(op, staged.array.dtype, "all_reduce")
    MPI = mpi()
    buf = staged.array
    if not async_op and staged.own:  # the common case, kept short: MPI works in the tensor
        g.comm.Allreduce(MPI.IN_PLACE, buf, op=mop)
        if op is ReduceOp.AVG:
            np.divide(buf, g.size, out=buf)
        tensor._bump_version()
        return None

    def start(blocking):
        if blocking:
            g.comm.Allreduce(MPI.IN_PLACE, buf, op=mop)
            return None
        return g.comm.Iallreduce(MPI.IN_PLACE, buf, op=mop)

    def finish():
        if op is ReduceOp.AVG:
            np.divide(buf, g.size, out=buf)
        staged.write_back()
    return _run(start, finish, async_op)


def broadcast(tensor: Tensor, src: int | None = None, group=None, async_op: bool = False,
              group_src: int | None = None):
    """Copies rank ``src``'s ``tensor`` into ``tensor`` on every other rank."""
    g = _group(group)
    root = group_src if src is None else src
    if root is None or not 0 <= int(root) < g.size:
        raise ValueError(f"broadcast: src must be a rank in [0, {g.size}), got {root!r}")
    staged = _Staged(tensor, "broadcast")
    buf = staged.array

    def start(blocking):
        if blocking:
            g.comm.Bcast(buf, root=int(root))
            return None
        return g.comm.Ibcast(buf, root=int(root))
    return _run(start, staged.write_back, async_op)


def all_gather(tensor_list: list, tensor: Tensor, group=None, async_op: bool = False):
    """Fills ``tensor_list[i]`` with rank i's ``tensor`` on every rank (one
    ``Allgather`` into a contiguous block, then one copy per output)."""
    g = _group(group)
    if not isinstance(tensor_list, (list, tuple)) or len(tensor_list) != g.size:
        got = len(tensor_list) if isinstance(tensor_list, (list, tuple)) else \
            type(tensor_list).__name__
        raise ValueError(f"all_gather: tensor_list must hold world_size={g.size} tensors, "
                         f"got {got}")
    src = _Staged(tensor, "all_gather", writable=False)
    outs = []
    for i, t in enumerate(tensor_list):
        if not isinstance(t, Tensor) or tuple(t.shape) != tuple(tensor.shape) \
                or t.dtype != tensor.dtype:
            what = f"shape {tuple(t.shape)}, {t.dtype}" if isinstance(t, Tensor) else \
                type(t).__name__
            raise ValueError(f"all_gather: tensor_list[{i}] is {what}; every output must have "
                             f"the input's shape {tuple(tensor.shape)} and dtype {tensor.dtype}")
        outs.append(_Staged(t, "all_gather"))
    recv = np.empty((g.size,) + src.array.shape, dtype=src.array.dtype)

    def start(blocking):
        if blocking:
            g.comm.Allgather(src.array, recv)
            return None
        return g.comm.Iallgather(src.array, recv)

    def finish():
        for i, out in enumerate(outs):
            out.array[...] = recv[i]
            out.write_back()
    return _run(start, finish, async_op)


def barrier(group=None, async_op: bool = False, device_ids=None, timeout=None):
    """Returns once every rank has called it."""
    g = _group(group)

    def start(blocking):
        if blocking:
            g.comm.Barrier()
            return None
        return g.comm.Ibarrier()
    return _run(start, lambda: None, async_op)
