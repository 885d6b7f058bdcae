"""``nnforge.distributed``: data-parallel training across processes over MPI,
mirroring ``torch.distributed``.

Start the job with ``mpirun -n N python train.py``; in the script::

    import nnforge.distributed as dist
    dist.init_process_group()              # rank and world size from MPI
    model = nf.nn.parallel.DistributedDataParallel(model)
    sampler = nf.data.DistributedSampler(dataset)

Collectives (``all_reduce``, ``broadcast``, ``all_gather``, ``barrier``)
work in place on the tensors' memory. MPI comes from mpi4py
(``pip install 'nnforge[mpi]'``); nothing here loads it before it is used.

>>> import nnforge.distributed as dist
>>> dist.is_initialized()
False
"""
from ._mpi import is_available
from .collectives import ReduceOp, Work, all_gather, all_reduce, barrier, broadcast
from .launch import find_mpirun, mpirun_command, mpirun_env
from .process_group import (ProcessGroup, abort, destroy_process_group, get_backend,
                            get_node_local_rank, get_rank, get_world_size, init_process_group,
                            is_initialized)

__all__ = ["is_available", "init_process_group", "destroy_process_group", "is_initialized",
           "get_rank", "get_world_size", "get_node_local_rank", "get_backend", "abort",
           "ProcessGroup", "ReduceOp", "Work", "all_reduce", "broadcast", "all_gather", "barrier",
           "find_mpirun", "mpirun_command", "mpirun_env"]
