"""mpi4py, imported on first use only (``import flambeau`` never loads it)."""

from __future__ import annotations

import importlib.util
from types import ModuleType

from ..errors import DistributedError

#: How to get MPI: mpi4py and the MPICH wheel (which also installs ``mpiexec``).
INSTALL_HINT = 'pip install "flambeau[mpi]"'


def available() -> bool:
    """True when mpi4py is installed (without importing it)."""
    return importlib.util.find_spec("mpi4py") is not None


def load() -> ModuleType:
    """``mpi4py.MPI``, initialising MPI on the first call.

    Raises:
        DistributedError: if mpi4py or its MPI library is missing, with the install command.
    """
    try:
        from mpi4py import MPI
    except (ImportError, RuntimeError, OSError) as exc:
        raise DistributedError(
            f"flambeau.distributed runs on MPI through mpi4py, which cannot be loaded here "
            f"({type(exc).__name__}: {exc}); install both with: {INSTALL_HINT}") from exc
    return MPI
