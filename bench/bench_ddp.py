"""DistributedDataParallel overhead on 2 ranks: a training step (forward, cross-entropy,
backward, SGD step) of a ~3 M-parameter MLP, plain local model vs the same model wrapped
in DistributedDataParallel, at the same per-rank batch, one BLAS thread per rank, in
interleaved paired rounds; medians of rank 0's times, each step started together by a
barrier.

Rows:
  local step                    the plain model on each rank (no communication): baseline
  DDP step                      DistributedDataParallel(model): gradients averaged during
                                backward by async all_reduce(SUM) after a division by the
                                world size: the large ones in place, the small ones copied
                                into a bucket (divided on the way) and back out
  DDP step, bucket views        DistributedDataParallel(model, gradient_as_bucket_view=True):
                                each .grad is a view of its bucket, so nothing is copied
                                back (zero_grad() sets grads to None, so each backward still
                                copies the new gradients in, as in PyTorch)
  blocking all_reduce of grads  dist.all_reduce(AVG) of one flat tensor with as many
                                elements as all the gradients (what a DDP without overlap
                                would add to every step)

Reported for each DDP row: overhead = (t_ddp - t_local) / t_local (target: at most 25% on
cpu, 40% on opencl) and overlap = 1 - exposed wait / t_allreduce, with exposed wait =
t_ddp - t_local (reported, not asserted).

Run: python bench/bench_ddp.py [--batch 64] [--repeats 15] [--steps 5] [--ranks 2] [--opencl]
     (it starts itself under `flambeau run -n RANKS`; or run it with flambeau run directly;
     on PoCL, POCL_DEVICES="pthread pthread" gives each rank a device of its own)
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import subprocess
import sys
import time
from functools import partial

import _harness  # first: pins BLAS threads
import numpy as np
from bench_distributed import _under_mpi

import flambeau
import flambeau.distributed as dist
from flambeau import nn
from flambeau.nn.parallel import DistributedDataParallel

SIZES = (784, 1536, 1024, 256, 10)  # 3.05 M parameters
LR = 0.01


def _mlp(sizes: tuple[int, ...] = SIZES) -> nn.Module:
    """Linear layers of ``sizes`` with ReLU between them."""
    layers: list[nn.Module] = []
    for i, (fan_in, fan_out) in enumerate(itertools.pairwise(sizes)):
        if i:
            layers.append(nn.ReLU())
        layers.append(nn.Linear(fan_in, fan_out))
    return nn.Sequential(*layers)


def _step(model, optimizer, x, y) -> None:
    optimizer.zero_grad()
    loss = nn.functional.cross_entropy(model(x), y)
    loss.backward()
    optimizer.step()
    loss.item()  # wait for the device (opencl) before the clock stops


def _timed(comm, fn) -> float:
    comm.Barrier()
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=64, help="per-rank batch")
    parser.add_argument("--repeats", type=int, default=15, help="paired rounds")
    parser.add_argument("--steps", type=int, default=5, help="timed steps per candidate "
                        "per round")
    parser.add_argument("--ranks", type=int, default=2)
    parser.add_argument("--opencl", action="store_true",
                        help="run the models on opencl (PoCL) instead of cpu")
    args, _ = parser.parse_known_args()
    if not _under_mpi():
        return subprocess.call([sys.executable, "-m", "flambeau", "run", "-n", str(args.ranks),
                                __file__, *sys.argv[1:]])
    from mpi4py import MPI

    dist.init_process_group()
    comm, rank = MPI.COMM_WORLD, dist.get_rank()
    device = (f"opencl:{dist.get_local_rank() % flambeau.device_count('opencl')}"
              if args.opencl else "cpu")
    flambeau.manual_seed(0)
    local = _mlp().to(device)
    models = {}
    for name, as_view in (("DDP step", False), ("DDP step, bucket views", True)):
        wrapped = _mlp().to(device)
        wrapped.load_state_dict(local.state_dict())
        models[name] = DistributedDataParallel(wrapped, gradient_as_bucket_view=as_view)
    n_params = sum(p.numel() for p in local.parameters())
    rng = np.random.default_rng(rank)  # each rank its own batch, of the same size
    x = flambeau.tensor(rng.standard_normal((args.batch, SIZES[0])).astype(np.float32),
                        device=device)
    y = flambeau.tensor(rng.integers(0, SIZES[-1], args.batch), device=device)
    flat = flambeau.ones(n_params, device=device)  # AVG of ones stays ones: no reset
    optimizers = {name: flambeau.optim.SGD(m.parameters(), lr=LR)
                  for name, m in [("local step", local), *models.items()]}

    def blocking_all_reduce() -> None:
        dist.all_reduce(flat, dist.ReduceOp.AVG)
        if args.opencl:
            flat[:1].item()

    candidates = {name: partial(_step, m, optimizers[name], x, y)
                  for name, m in [("local step", local), *models.items()]}
    candidates["blocking all_reduce of grads"] = blocking_all_reduce
    samples: dict[str, list[float]] = {name: [] for name in candidates}
    for fn in candidates.values():  # warm up
        for _ in range(2):
            _timed(comm, fn)
    for _ in range(args.repeats):  # interleaved: each round times every candidate
        for name, fn in candidates.items():
            for _ in range(args.steps):
                samples[name].append(_timed(comm, fn))
    medians = {name: statistics.median(v) for name, v in samples.items()}
    if rank == 0:
        t_local, t_ar = medians["local step"], medians["blocking all_reduce of grads"]
        _harness.report(
            f"DDP overhead, MLP {'-'.join(map(str, SIZES))} ({n_params / 1e6:.2f} M params, "
            f"{n_params * 4 / 2**20:.1f} MiB of float32 gradients), per-rank batch "
            f"{args.batch}, {device}, {dist.get_world_size()} ranks ({args.repeats} paired "
            f"rounds x {args.steps} steps, medians of rank 0)", medians, "local step",
            unit="ms")
        target = 0.40 if args.opencl else 0.25
        for name in models:
            t_ddp = medians[name]
            overhead = (t_ddp - t_local) / t_local
            print(f"  {name}: overhead (t_ddp - t_local) / t_local {overhead:+.1%} (target <= "
                  f"{target:.0%}: {'met' if overhead <= target else 'NOT met'}); overlap "
                  f"1 - (t_ddp - t_local) / t_allreduce {1 - (t_ddp - t_local) / t_ar:.1%} "
                  "(reported, not asserted)")
    dist.destroy_process_group()
    return 0


if __name__ == "__main__":
    sys.exit(main())
