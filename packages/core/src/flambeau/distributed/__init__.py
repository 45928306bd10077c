"""Training on many processes: ``torch.distributed``'s names, on MPI (mpi4py).

Start the processes with the launcher, which runs ``mpiexec -n N python -m mpi4py`` (a
rank that raises ends the whole job) and sizes each rank's thread pools::

    flambeau run -n 2 train.py --epochs 3

and in the script::

    import flambeau
    import flambeau.distributed as dist

    dist.init_process_group()            # MPI gives the rank and the world size
    x = flambeau.ones(3) * dist.get_rank()
    dist.all_reduce(x)                   # in place, bitwise equal on every rank
    dist.destroy_process_group()

Collectives take tensors on any device. Devices whose backend has a collective engine of
its own use it (the contract's optional ``collectives`` member: NCCL for cuda); every
other device goes through the host engine, MPI, reading and writing the tensor's memory
in place on cpu and through a host copy elsewhere. ``import flambeau`` does not import
mpi4py: :func:`init_process_group` does.

>>> import flambeau.distributed as dist
>>> dist.is_initialized(), dist.ReduceOp.AVG.name
(False, 'AVG')
"""

from __future__ import annotations

from ._group import (
    ProcessGroup,
    destroy_process_group,
    get_backend,
    get_default_group,
    get_local_rank,
    get_local_world_size,
    get_rank,
    get_world_size,
    init_process_group,
    is_available,
    is_initialized,
)
from ._work import ReduceOp, Work
from .collectives import (
    all_gather,
    all_gather_into_tensor,
    all_reduce,
    barrier,
    broadcast,
    reduce_scatter,
    reduce_scatter_tensor,
)

__all__ = [
    "ProcessGroup",
    "ReduceOp",
    "Work",
    "all_gather",
    "all_gather_into_tensor",
    "all_reduce",
    "barrier",
    "broadcast",
    "destroy_process_group",
    "get_backend",
    "get_default_group",
    "get_local_rank",
    "get_local_world_size",
    "get_rank",
    "get_world_size",
    "init_process_group",
    "is_available",
    "is_initialized",
    "reduce_scatter",
    "reduce_scatter_tensor",
]
