"""The default process group: one MPI communicator over every rank of the job.

``init_process_group()`` takes rank and world size from MPI (the job was
started with ``mpirun -n N``; run without it, the job is one rank). It also
makes failures loud: an uncaught exception on any rank prints its traceback
and calls ``MPI_Abort``, which ends every rank with a non-zero status
instead of leaving the others blocked in a collective.
"""
from __future__ import annotations

import os
import sys

from ._mpi import mpi

__all__ = ["ProcessGroup", "init_process_group", "destroy_process_group", "is_initialized",
           "get_rank", "get_world_size", "get_node_local_rank", "get_backend", "abort"]

_WORLD = None


class ProcessGroup:
    """An MPI communicator (``comm``, a duplicate of COMM_WORLD) with its ``rank`` and ``size``."""

    def __init__(self, comm):
        self.comm = comm
        self.rank = comm.Get_rank()
        self.size = comm.Get_size()

    def __repr__(self) -> str:
        return f"ProcessGroup(backend='mpi', rank={self.rank}, size={self.size})"


def _not_initialized():
    return ValueError("Default process group has not been initialized, please make sure to "
                      "call init_process_group.")


def _group(group=None) -> ProcessGroup:
    if group is not None:
        return group
    if _WORLD is None:
        raise _not_initialized()
    return _WORLD


def init_process_group(backend: str | None = None, init_method: str | None = None,
                       timeout=None, world_size: int = -1, rank: int = -1, store=None,
                       group_name: str = "", pg_options=None, device_id=None) -> None:
    """Joins the job's ranks into the default process group (PyTorch's signature;
    ``backend`` is "mpi" or None). ``world_size``/``rank``, when given, must be
    what ``mpirun`` assigned. ``init_method``, ``store`` and ``timeout`` have no
    use with MPI (the launcher wires the ranks) and are accepted for
    compatibility."""
    global _WORLD
    if backend not in (None, "mpi"):
        raise ValueError(f"init_process_group: backend {backend!r} is not supported; nnforge "
                         "runs its collectives over MPI (backend='mpi', launched with mpirun)")
    if _WORLD is not None:
        raise ValueError("trying to initialize the default process group twice!")
    MPI = mpi()
    group = ProcessGroup(MPI.COMM_WORLD.Dup())
    for name, given, actual in (("world_size", world_size, group.size), ("rank", rank, group.rank)):
        if given not in (-1, None) and given != actual:
            group.comm.Free()
            raise ValueError(f"init_process_group: {name}={given} but MPI started this process "
                             f"with {name}={actual} (set by mpirun -n)")
    _WORLD = group
    if group.size > 1:
        _install_abort_hook()


def destroy_process_group(group=None) -> None:
    """Frees the default group's communicator; ``is_initialized()`` is False afterwards.
    (MPI itself is finalized by mpi4py when the interpreter exits.)"""
    global _WORLD
    if group is not None and group is not _WORLD:
        group.comm.Free()
        return
    if _WORLD is None:
        raise _not_initialized()
    _WORLD.comm.Free()
    _WORLD = None
    _remove_abort_hook()


def is_initialized() -> bool:
    return _WORLD is not None


def get_backend(group=None) -> str:
    _group(group)
    return "mpi"


def get_rank(group=None) -> int:
    return _group(group).rank


def get_world_size(group=None) -> int:
    return _group(group).size


def get_node_local_rank(fallback_rank: int | None = None) -> int:
    """This process's rank among the ranks on its machine: from the launcher's
    environment (LOCAL_RANK, Open MPI's OMPI_COMM_WORLD_LOCAL_RANK, MPICH's
    MPI_LOCALRANKID), else from a shared-memory split of the default group,
    else ``fallback_rank``; RuntimeError when none of these is there."""
    for name in ("LOCAL_RANK", "OMPI_COMM_WORLD_LOCAL_RANK", "MPI_LOCALRANKID"):
        value = os.environ.get(name)
        if value is not None and value.strip().isdigit():
            return int(value)
    if _WORLD is not None:
        MPI = mpi()
        node = _WORLD.comm.Split_type(MPI.COMM_TYPE_SHARED)
        try:
            return node.Get_rank()
        finally:
            node.Free()
    if fallback_rank is not None:
        return int(fallback_rank)
    raise RuntimeError("get_node_local_rank: LOCAL_RANK is not set, the launcher gave no local "
                       "rank and no process group is initialized; pass fallback_rank")


def abort(code: int = 1) -> None:
    """Ends every rank of the job now (``MPI_Abort``)."""
    mpi().COMM_WORLD.Abort(code)


# --------------------------------------------------------------------------- failure
_previous_hook = None


def _abort_on_exception(exc_type, exc, tb):
    # Print first: Abort ends this process too, and nothing after it runs.
    (_previous_hook or sys.__excepthook__)(exc_type, exc, tb)
    if _WORLD is not None and not issubclass(exc_type, SystemExit):
        sys.stderr.write(f"nnforge.distributed: rank {_WORLD.rank} raised {exc_type.__name__}; "
                         "aborting all ranks\n")
        sys.stderr.flush()
        sys.stdout.flush()
        abort(1)


def _install_abort_hook() -> None:
    global _previous_hook
    if sys.excepthook is not _abort_on_exception:
        _previous_hook = sys.excepthook
        sys.excepthook = _abort_on_exception


def _remove_abort_hook() -> None:
    global _previous_hook
    if sys.excepthook is _abort_on_exception:
        sys.excepthook = _previous_hook or sys.__excepthook__
        _previous_hook = None
