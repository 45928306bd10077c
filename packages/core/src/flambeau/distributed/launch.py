"""``flambeau run``: start a script on N processes under MPI.

::

    flambeau run -n 4 train.py --epochs 3
    flambeau run -n 2 --mpi-args "-bind-to none" train.py     # options for mpiexec
    flambeau run -n 2 -hosts a,b -- train.py                   # ... or all before "--"
    flambeau run -n 2 -m mypackage.train                       # a module, as python -m

runs ``mpiexec -n N [mpiexec options] python -m mpi4py train.py --epochs 3``. The
``-m mpi4py`` form makes a rank that raises end the whole job (MPI_Abort) instead of
leaving the others waiting forever. ``mpiexec`` is looked for next to the interpreter
first (where the ``mpich`` wheel of ``flambeau[mpi]`` puts it), then on ``PATH``. Like
torchrun, each rank's thread pools (``OMP_NUM_THREADS``, ``OPENBLAS_NUM_THREADS``,
``MKL_NUM_THREADS``) get ``max(1, cores // N)`` threads unless set already: N ranks with
a full pool each fight over the cores (5x slower per step at 2 ranks on 2 cores).
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

from .._config import THREAD_VARS
from ..errors import DistributedError
from . import _mpi

USAGE = ("usage: flambeau run [-n N] [--mpi-args ARGS] script.py [args...]\n"
         "       flambeau run [-n N] [mpiexec options...] -- script.py [args...]\n"
         "       (-m module [args...] in place of script.py runs a module)")


def find_mpiexec(python: str = sys.executable, path: str | None = None) -> str:
    """The ``mpiexec`` next to ``python`` (a virtual environment's ``bin``), else on
    ``path`` (default ``PATH``).

    Raises:
        DistributedError: if there is none, with the command that installs one.
    """
    beside = Path(python).parent / ("mpiexec.exe" if os.name == "nt" else "mpiexec")
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    found = shutil.which("mpiexec", path=path)
    if found is None:
        raise DistributedError(
            f"flambeau run needs mpiexec, found neither next to the interpreter "
            f"({beside.parent}) nor on PATH; install MPI with: {_mpi.INSTALL_HINT}")
    return found


def thread_count(ranks: int, cores: int | None = None) -> int:
    """Threads per rank: ``max(1, cores // ranks)`` (cores this process may use)."""
    if cores is None:
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (
            os.cpu_count() or 1)
    return max(1, cores // max(1, ranks))


def rank_environment(ranks: int, environ: Mapping[str, str] | None = None,
                     cores: int | None = None) -> dict[str, str]:
    """``environ`` (default ``os.environ``) with the thread-pool sizes set where unset."""
    env = dict(os.environ if environ is None else environ)
    threads = str(thread_count(ranks, cores))
    for name in THREAD_VARS:
        if not env.get(name):
            env[name] = threads
    return env


def build_command(ranks: int, target: Sequence[str], mpi_args: Sequence[str] = (),
                  python: str = sys.executable, mpiexec: str | None = None) -> list[str]:
    """``[mpiexec, -n, N, *mpi_args, python, -m, mpi4py, *target]``.

    >>> build_command(2, ["train.py", "--lr", "0.1"], python="python", mpiexec="mpiexec")
    ['mpiexec', '-n', '2', 'python', '-m', 'mpi4py', 'train.py', '--lr', '0.1']
    """
    mpiexec = mpiexec or find_mpiexec(python)
    return [mpiexec, "-n", str(ranks), *mpi_args, python, "-m", "mpi4py", *target]


def parse_args(argv: Sequence[str]) -> tuple[int, list[str], list[str]]:
    """``(ranks, mpiexec options, target)`` from ``flambeau run``'s arguments.

    >>> parse_args(["-n", "2", "--mpi-args", "-bind-to none", "a.py", "-x"])
    (2, ['-bind-to', 'none'], ['a.py', '-x'])
    >>> parse_args(["-n", "4", "-hosts", "h1,h2", "--", "-m", "pkg.train"])
    (4, ['-hosts', 'h1,h2'], ['-m', 'pkg.train'])
    """
    argv = list(argv)
    split = argv.index("--") if "--" in argv else None
    head, target = (argv[:split], argv[split + 1:]) if split is not None else (argv, [])
    ranks, mpi_args, i = 1, [], 0
    while i < len(head):
        token = head[i]
        if token in ("-n", "-np", "--nproc", "--nproc-per-node") and i + 1 < len(head):
            ranks, i = _positive(head[i + 1]), i + 2
        elif token == "--mpi-args" and i + 1 < len(head):
            mpi_args += shlex.split(head[i + 1])
            i += 2
        elif split is not None:
            mpi_args.append(token)
            i += 1
        elif token == "-m" or not token.startswith("-"):
            target = head[i:]
            break
        else:
            raise DistributedError(f"flambeau run: unknown option {token!r}; pass mpiexec "
                                   f"options with --mpi-args or before '--'\n{USAGE}")
    if not target or target == ["-m"]:
        raise DistributedError(f"flambeau run: no script to run\n{USAGE}")
    return ranks, mpi_args, target


def _positive(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise DistributedError(f"flambeau run: -n takes a number of processes >= 1, got "
                               f"{text!r}")
    return int(text)


def main(argv: Sequence[str]) -> int:
    """Entry point of ``flambeau run``: mpiexec's exit status (non-zero if a rank failed)."""
    if not argv or argv[0] in ("-h", "--help"):
        print(__doc__.strip() + "\n\n" + USAGE, file=sys.stdout if argv else sys.stderr)
        return 0 if argv else 2
    try:
        ranks, mpi_args, target = parse_args(argv)
        if not _mpi.available():
            raise DistributedError(f"flambeau run starts ranks with python -m mpi4py, but "
                                   f"mpi4py is not installed; install it with: "
                                   f"{_mpi.INSTALL_HINT}")
        command = build_command(ranks, target, mpi_args)
    except DistributedError as exc:
        print(exc, file=sys.stderr)
        return 2
    return subprocess.call(command, env=rank_environment(ranks))
