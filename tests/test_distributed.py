"""flambeau.distributed: collectives on 2 and 4 ranks (mpiexec), the launcher, the import
cost, errors, and DistributedSampler against PyTorch's.

Multi-rank runs start ``mpiexec -n N python -m mpi4py ...`` in a process group of their
own and are killed whole if they pass their time limit, so a hang fails a test instead of
the suite. They skip, with the install command, where mpi4py or mpiexec is missing.
"""

from __future__ import annotations

import importlib.util
import math
import os
import re
import shutil
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from mpi_jobs import ROOT, needs_mpi, run

import flambeau
import flambeau.distributed as dist
from flambeau.distributed import _mpi, launch
from flambeau.errors import DistributedError
from flambeau.utils.data import Sampler
from flambeau.utils.data.distributed import DistributedSampler

SCRIPT = ROOT / "tests" / "distributed_script.py"


def kit(device: str, ranks: int, *pytest_args: str, **env: str) -> str:
    """The conformance kit's collective checks on ``ranks`` processes: all must pass
    (returns the output)."""
    result = run([sys.executable, "-m", "flambeau.testing", device, "--ranks", str(ranks),
                  "-q", *pytest_args], timeout=180,
                 MPIEXEC_TIMEOUT="170", **env)
    assert result.returncode == 0, result.stdout[-5000:]
    # Each rank's pytest ends with "N passed ... in S s" (lines may interleave).
    assert len(re.findall(r"\d+ passed", result.stdout)) == ranks, result.stdout[-5000:]
    assert not re.search(r"\d+ (failed|errors?)\b", result.stdout), result.stdout[-5000:]
    return result.stdout


# --- collectives on several ranks -----------------------------------------------------


@needs_mpi
def test_collectives_on_2_ranks_cpu():
    """Every collective x op x dtype (0-d, empty, odd sizes) against numpy, all_reduce
    bitwise equal on both ranks, async handles, views."""
    kit("cpu", 2)


@needs_mpi
def test_collectives_on_2_ranks_opencl_one_device_per_rank():
    result = run([sys.executable, "-c", "import flambeau; print(flambeau.device_count("
                  "'opencl'))"], timeout=60, POCL_DEVICES="pthread pthread")
    if result.returncode or int(result.stdout.split()[-1]) < 1:
        pytest.skip(f"no opencl device here: {result.stdout[-300:]}")
    # With two PoCL devices, rank r computes on opencl:r (the kit's "opencl" means that).
    kit("opencl", 2, POCL_DEVICES="pthread pthread")


@needs_mpi
def test_collectives_on_2_ranks_cuda_host_emulation():
    """flambeau-cuda's arrays through the host engine (its to_numpy, from_numpy and
    assign kernels), on the host emulation of its kernel code (tests/cuda_emulation.py):
    the path a GPU takes without NCCL. cupy and the GPU themselves are not exercised."""
    if shutil.which("g++") is None or importlib.util.find_spec("flambeau_cuda") is None:
        pytest.skip("needs flambeau-cuda and g++ (the CUDA kernels compiled for the host)")
    tests = str(ROOT / "tests")
    kit("cudaemu:0", 2, "-p", "cuda_emulation",
        PYTHONPATH=os.pathsep.join([tests, os.environ.get("PYTHONPATH", "")]))


@needs_mpi
def test_collectives_on_4_ranks():
    kit("cpu", 4, "-k", "all_reduce or reduce_scatter or async or all_gather_into")


@needs_mpi
def test_all_reduce_is_bitwise_equal_whatever_mpich_algorithm():
    """MPICH's recursive doubling gives ranks different bits for min/max with NaN or
    signed zeros (checked with raw mpi4py); flambeau's results must still agree."""
    kit("cpu", 2, "-k", "all_reduce", MPIR_CVAR_ALLREDUCE_INTRA_ALGORITHM="recursive_doubling",
        MPIR_CVAR_DEVICE_COLLECTIVES="none")


@needs_mpi
def test_errors_and_a_backends_own_engine_on_2_ranks():
    result = run([launch.find_mpiexec(), "-n", "2", sys.executable, "-m", "mpi4py",
                  str(SCRIPT)], timeout=120)
    assert result.returncode == 0, result.stdout[-5000:]
    assert result.stdout.count("all checks passed") == 2, result.stdout


# --- the launcher -----------------------------------------------------------------------


@needs_mpi
def test_flambeau_run_starts_ranks_with_args_options_and_thread_counts(tmp_path):
    script = tmp_path / "tiny.py"
    script.write_text(textwrap.dedent("""
        import os, pathlib, sys
        import flambeau.distributed as dist
        dist.init_process_group()
        line = (dist.get_rank(), dist.get_world_size(), os.environ["OMP_NUM_THREADS"],
                os.environ["MKL_NUM_THREADS"], os.environ.get("MARK"), sys.argv[2:])
        pathlib.Path(sys.argv[1], f"rank{dist.get_rank()}").write_text(repr(line))
    """))
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS",
                                                            "MKL_NUM_THREADS")}
    proc = subprocess.run([sys.executable, "-m", "flambeau", "run", "-n", "2", "--mpi-args",
                           "-genv MARK seen", str(script), str(tmp_path), "a", "--b"],
                          capture_output=True, text=True, timeout=120, env=env, cwd=ROOT)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    threads = str(launch.thread_count(2))
    for r in (0, 1):
        assert (tmp_path / f"rank{r}").read_text() == \
            repr((r, 2, threads, threads, "seen", ["a", "--b"]))


@needs_mpi
def test_a_failing_rank_ends_the_whole_job(tmp_path):
    script = tmp_path / "fails.py"
    script.write_text(textwrap.dedent("""
        import flambeau.distributed as dist
        dist.init_process_group()
        if dist.get_rank() == 1:
            raise ValueError("rank 1 gives up")
        dist.barrier()  # rank 0 would wait here forever without -m mpi4py
    """))
    started = time.monotonic()
    result = run([sys.executable, "-m", "flambeau", "run", "-n", "2", str(script)],
                 timeout=60)
    assert result.returncode != 0
    assert "rank 1 gives up" in result.stdout
    assert time.monotonic() - started < 30


def test_run_arguments():
    assert launch.parse_args(["-n", "3", "train.py", "-n", "5"]) == (3, [],
                                                                       ["train.py", "-n", "5"])
    assert launch.parse_args(["-n", "2", "--mpi-args", "-bind-to none", "-m", "pkg", "x"]) == \
        (2, ["-bind-to", "none"], ["-m", "pkg", "x"])
    assert launch.parse_args(["-n", "2", "-hosts", "a,b", "--", "t.py"]) == \
        (2, ["-hosts", "a,b"], ["t.py"])
    assert launch.parse_args(["t.py"]) == (1, [], ["t.py"])
    with pytest.raises(DistributedError, match=r"unknown option '--bind-to'.*before '--'"):
        launch.parse_args(["--bind-to", "none", "t.py"])
    with pytest.raises(DistributedError, match="no script to run"):
        launch.parse_args(["-n", "2"])
    with pytest.raises(DistributedError, match="-n takes a number of processes >= 1"):
        launch.parse_args(["-n", "0", "t.py"])


def test_thread_counts_per_rank():
    assert launch.thread_count(2, cores=2) == 1 and launch.thread_count(4, cores=2) == 1
    assert launch.thread_count(2, cores=16) == 8
    env = launch.rank_environment(2, {"OMP_NUM_THREADS": "3", "PATH": "/bin"}, cores=8)
    assert env == {"OMP_NUM_THREADS": "3", "OPENBLAS_NUM_THREADS": "4", "MKL_NUM_THREADS": "4",
                   "PATH": "/bin"}


def test_mpiexec_is_found_next_to_the_interpreter_first(tmp_path):
    beside = Path(sys.executable).parent / "mpiexec"
    if beside.is_file():
        assert launch.find_mpiexec() == str(beside)
    fake = tmp_path / "bin"
    fake.mkdir()
    (fake / "mpiexec").write_text("#!/bin/sh\n")
    (fake / "mpiexec").chmod(0o755)
    assert launch.find_mpiexec(str(fake / "python"), path="") == str(fake / "mpiexec")
    with pytest.raises(DistributedError, match=r'install MPI with: pip install "flambeau\[mpi\]"'):
        launch.find_mpiexec(str(tmp_path / "python"), path=str(tmp_path))
    assert launch.build_command(2, ["t.py"], python="py", mpiexec="mpx") == \
        ["mpx", "-n", "2", "py", "-m", "mpi4py", "t.py"]


def test_flambeau_run_without_mpi4py_says_what_to_install(monkeypatch, capsys):
    monkeypatch.setattr(_mpi, "available", lambda: False)
    assert launch.main(["-n", "2", "t.py"]) == 2
    assert 'pip install "flambeau[mpi]"' in capsys.readouterr().err


# --- one process: import cost, errors before init, the contract ---------------------------


def test_import_flambeau_does_not_import_mpi4py():
    code = ("import sys, flambeau, flambeau.distributed; flambeau.devices(); "
            "from flambeau.utils.data.distributed import DistributedSampler; "
            "print('mpi4py' in sys.modules)")
    result = run([sys.executable, "-c", code], timeout=60)
    assert result.returncode == 0 and result.stdout.split()[-1] == "False", result.stdout


def test_missing_mpi4py_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "mpi4py", None)
    with pytest.raises(DistributedError, match=r'pip install "flambeau\[mpi\]"'):
        _mpi.load()


def test_collectives_before_init_process_group_say_what_to_do():
    assert not dist.is_initialized()
    for call in (lambda: dist.all_reduce(flambeau.ones(2)), dist.get_rank, dist.barrier,
                 lambda: dist.broadcast(flambeau.ones(2), 0), dist.get_world_size):
        with pytest.raises(DistributedError, match=r"init_process_group.*flambeau run -n N"):
            call()
    with pytest.raises(DistributedError, match="init_process_group"):
        DistributedSampler(range(4))


def test_backend_strings_parse_as_in_pytorch():
    assert dist._group.parse_backend("cpu:mpi,cuda:nccl") == {"cpu": "mpi", "cuda": "nccl"}
    assert dist._group.parse_backend(" MPI ") == {None: "mpi"}
    with pytest.raises(DistributedError, match="cannot read backend"):
        dist._group.parse_backend("cpu:mpi,,")


def test_work_wait_times_out_with_a_clear_error():
    class Never:
        def is_completed(self):
            return False

    with pytest.raises(DistributedError, match=r"did not finish within 0.01 s"):
        dist.Work(Never()).wait(timeout=0.01)


def test_the_contract_names_every_reduction():
    assert set(flambeau.backends.COLLECTIVE_OPS) == {op.value for op in dist.ReduceOp}
    assert "collectives(index, group)" in flambeau.backends.Backend.__doc__


# --- DistributedSampler -------------------------------------------------------------------


def _all_ranks(n: int, replicas: int, **kwargs) -> list[list[int]]:
    return [list(DistributedSampler(range(n), replicas, r, **kwargs)) for r in range(replicas)]


CASES = [(n, replicas, drop_last) for n in (0, 1, 2, 5, 10, 11, 17) for replicas in (1, 2, 3, 4)
         for drop_last in (False, True)]


@pytest.mark.parametrize(("n", "replicas", "drop_last"), CASES)
def test_sampler_without_shuffle_matches_pytorch(n, replicas, drop_last):
    torch_data = pytest.importorskip("torch.utils.data.distributed")
    for rank in range(replicas):
        ours = DistributedSampler(range(n), replicas, rank, shuffle=False, drop_last=drop_last)
        theirs = torch_data.DistributedSampler(range(n), replicas, rank, shuffle=False,
                                               drop_last=drop_last)
        assert list(ours) == list(theirs)
        assert (len(ours), ours.num_samples, ours.total_size) == \
            (len(theirs), theirs.num_samples, theirs.total_size)


@pytest.mark.parametrize(("n", "replicas", "drop_last"), CASES)
def test_sampler_with_shuffle_partitions_like_pytorch(n, replicas, drop_last):
    torch_data = pytest.importorskip("torch.utils.data.distributed")
    parts = _all_ranks(n, replicas, shuffle=True, seed=7, drop_last=drop_last)
    lengths = {len(torch_data.DistributedSampler(range(n), replicas, r, drop_last=drop_last))
               for r in range(replicas)}
    assert {len(p) for p in parts} == lengths  # every rank as many as PyTorch's
    # Interleaving the ranks' lists gives back the padded (or cut) permutation.
    total = sum(map(len, parts))
    full = [parts[i % replicas][i // replicas] for i in range(total)]
    if drop_last:
        assert len(set(full)) == total and set(full) <= set(range(n))  # disjoint ranks
    else:
        assert sorted(full[:n]) == list(range(n))  # the whole data set...
        padding = total - n  # ... padded by repeating its start
        assert full[n:] == (full[:n] * (math.ceil(padding / n) if n else 0))[:padding]


def test_sampler_shuffle_follows_seed_and_epoch():
    sampler = DistributedSampler(range(50), num_replicas=2, rank=0, seed=3)
    first = list(sampler)
    assert list(sampler) == first  # the same epoch, the same order
    assert list(DistributedSampler(range(50), 2, 0, seed=3)) == first  # on every rank alike
    sampler.set_epoch(1)
    second = list(sampler)
    assert second != first and sampler.epoch == 1
    assert list(DistributedSampler(range(50), 2, 0, seed=4)) == second  # seed + epoch
    assert first != sorted(first)
    assert isinstance(sampler, Sampler)


def test_sampler_rejects_a_rank_outside_the_group():
    with pytest.raises(ValueError, match=r"Invalid rank 2, .* interval \[0, 1\]"):
        DistributedSampler(range(4), num_replicas=2, rank=2)
