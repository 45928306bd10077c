"""Every environment variable flambeau reads, read in one place."""

from __future__ import annotations

import os

#: Set to ``1`` to skip entry-point discovery of backend plugins.
DISABLE_PLUGIN_AUTOLOAD_VAR = "FLAMBEAU_DISABLE_PLUGIN_AUTOLOAD"
#: The default device name (``cpu`` when unset).
DEFAULT_DEVICE_VAR = "FLAMBEAU_DEVICE"


def plugin_autoload_disabled() -> bool:
    """True when the user asked flambeau not to load plugins from entry points."""
    return os.environ.get(DISABLE_PLUGIN_AUTOLOAD_VAR, "").strip().lower() in {"1", "true", "yes"}


def default_device_name() -> str:
    """The device name from ``FLAMBEAU_DEVICE``, or ``"cpu"``."""
    return os.environ.get(DEFAULT_DEVICE_VAR, "").strip() or "cpu"


#: Set to ``1`` to check before every collective that all ranks pass the same shapes and
#: dtypes (one extra small exchange per collective, as ``TORCH_DISTRIBUTED_DEBUG=DETAIL``).
DISTRIBUTED_DEBUG_VAR = "FLAMBEAU_DISTRIBUTED_DEBUG"
#: Where launchers put a process's rank among those of its machine (first set one wins):
#: torchrun, MPICH's hydra, Open MPI, Slurm.
LOCAL_RANK_VARS = ("LOCAL_RANK", "MPI_LOCALRANKID", "OMPI_COMM_WORLD_LOCAL_RANK",
                   "SLURM_LOCALID")
#: The thread-pool sizes ``flambeau run`` sets per rank unless they are set already.
THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def distributed_debug() -> bool:
    """True when the user asked for the cross-rank check of every collective's shapes."""
    return os.environ.get(DISTRIBUTED_DEBUG_VAR, "").strip().lower() in {"1", "true", "yes",
                                                                           "detail"}


def local_rank_from_env() -> int | None:
    """The local rank a launcher set in the environment, or ``None``."""
    for name in LOCAL_RANK_VARS:
        value = os.environ.get(name, "").strip()
        if value.isdigit():
            return int(value)
    return None


def unset_thread_vars() -> list[str]:
    """The names of :data:`THREAD_VARS` the environment leaves unset."""
    return [name for name in THREAD_VARS if not os.environ.get(name)]
