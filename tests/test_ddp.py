"""flambeau.nn.parallel.DistributedDataParallel: the multi-rank checks of
tests/ddp_script.py under ``mpiexec -n 2`` (hard time limit), and in one process: world
size 1, lazy modules, no process group."""

from __future__ import annotations

import re
import sys

import numpy as np
import pytest
from mpi_jobs import ROOT, needs_mpi, run

import flambeau
import flambeau.distributed as dist
from flambeau import nn
from flambeau.distributed import launch
from flambeau.errors import DistributedError, UninitializedParameterError
from flambeau.nn.parallel import DistributedDataParallel as DDP

SCRIPT = ROOT / "tests" / "ddp_script.py"


def _script_on_2_ranks(device: str, *args: str) -> None:
    """tests/ddp_script.py on 2 ranks, every tensor on ``device`` (its default device)."""
    if device != "cpu" and flambeau.device_count(device) < 1:
        pytest.skip(f"no {device} device here")
    name = device if device == "cpu" else f"{device}:0"
    result = run([launch.find_mpiexec(), "-n", "2", sys.executable, "-m", "mpi4py",
                  str(SCRIPT), *args], timeout=120, OMP_NUM_THREADS="1", FLAMBEAU_DEVICE=name)
    assert result.returncode == 0, result.stdout[-5000:]
    assert result.stdout.count(f"ddp checks passed on {name}") == 2, result.stdout[-5000:]


@needs_mpi
@pytest.mark.parametrize("kind", ["cpu", "opencl"])
def test_ddp_on_2_ranks(kind):
    """Gradients equal one process on the concatenated batch, parameters bitwise equal
    after SGD steps (one bucket and many), no_sync, buffers, unused parameters; large
    gradients reduced in place (unstaged), strided ones too."""
    _script_on_2_ranks(kind)


@needs_mpi
@pytest.mark.parametrize("kind", ["cpu", "opencl"])
def test_gradient_as_bucket_view_on_2_ranks(kind):
    """Gradients are views of the buckets (writes go both ways) and equal the default
    path's bitwise, through zero_grad (to None and in place), no_sync, unused
    parameters, and gradients present at construction."""
    _script_on_2_ranks(kind, "bucket_view")


@needs_mpi
def test_ddp_at_world_size_1_stages_nothing():
    dist.init_process_group()
    try:
        assert dist.get_world_size() == 1
        flambeau.manual_seed(0)
        net = nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2))
        flambeau.manual_seed(0)
        ref = nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2))
        model = DDP(net)
        assert model.module is net and model._buckets == []
        assert next(iter(model.state_dict())) == "module.0.weight"
        x = flambeau.randn(5, 4)
        model(x).sum().backward()
        ref(x).sum().backward()
        for p, q in zip(ref.parameters(), net.parameters()):
            assert np.array_equal(p.grad.numpy(), q.grad.numpy())
        with model.no_sync():
            model(x).sum().backward()
        for p, q in zip(ref.parameters(), net.parameters()):
            assert np.array_equal(2 * p.grad.numpy(), q.grad.numpy())
    finally:
        dist.destroy_process_group()


def test_lazy_module_says_run_one_batch_first():
    net = nn.Sequential(nn.LazyLinear(4), nn.ReLU(), nn.Linear(4, 2))
    with pytest.raises(UninitializedParameterError, match=r"0\.weight, 0\.bias.*run one "
                                                          r"batch first"):
        DDP(net)


def test_without_a_process_group_says_what_to_do():
    assert not dist.is_initialized()
    with pytest.raises(DistributedError, match="init_process_group"):
        DDP(nn.Linear(2, 2))


@needs_mpi
def test_the_documented_example_trains_on_2_ranks(tmp_path):
    """docs/distributed.md's script, started the documented way (``flambeau run -n 2``)."""
    result = run([sys.executable, "-m", "flambeau", "run", "-n", "2",
                  str(ROOT / "examples" / "distributed" / "train_ddp.py"), str(tmp_path)],
                 timeout=120)
    assert result.returncode == 0, result.stdout[-5000:]
    # Both ranks write to one pipe, so their lines may run into each other: match, not split.
    found = re.findall(r"rank (\d)/2: (w = \[\[[^\]]*\]\], b = -?\d+\.\d{3})", result.stdout)
    assert sorted(rank for rank, _ in found) == ["0", "1"], result.stdout[-3000:]
    assert found[0][1] == found[1][1], found  # the same model on every rank
    weights = flambeau.load(tmp_path / "linear.params")["weight"].numpy()
    np.testing.assert_allclose(weights, [[2.0, -3.4]], atol=0.01)
