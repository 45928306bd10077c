"""Running multi-rank jobs from tests: a skip mark where MPI is missing, and a runner that
kills the whole job when it passes its time limit, so a hang fails a test, not the suite."""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

import pytest

import flambeau.distributed as dist
from flambeau.distributed import _mpi, launch
from flambeau.errors import DistributedError

ROOT = Path(__file__).resolve().parents[1]


def _mpiexec() -> str | None:
    try:
        return launch.find_mpiexec()
    except DistributedError:
        return None


needs_mpi = pytest.mark.skipif(
    not dist.is_available() or _mpiexec() is None,
    reason=f"needs mpi4py and mpiexec: {_mpi.INSTALL_HINT}")


def run(command: list[str], timeout: float, **env: str) -> subprocess.CompletedProcess:
    """``command`` in a session of its own, killed whole after ``timeout`` seconds."""
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, cwd=ROOT, env={**os.environ, **env},
                            start_new_session=True)
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, _ = proc.communicate()
        pytest.fail(f"{' '.join(command)} ran past {timeout} s:\n{out[-3000:]}")
    return subprocess.CompletedProcess(command, proc.returncode, out, None)
