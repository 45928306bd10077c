"""all_reduce of a 16 MiB float32 cpu tensor on 2 ranks: flambeau vs raw mpi4py Allreduce
on the same buffer (the tensor's own memory, through np.from_dlpack), in interleaved
paired rounds; medians of rank 0's times, each call started together by a barrier.

Rows:
  mpi4py Allreduce SUM          comm.Allreduce(MPI.IN_PLACE, buf, MPI.SUM): the baseline
  flambeau all_reduce SUM       dist.all_reduce(x): at 2 ranks one MPI_Allreduce, in place
  flambeau SUM async + wait     dist.all_reduce(x, async_op=True).wait(): MPI_Iallreduce
  mpi4py Allreduce MAX          the same MPI call with MAX
  flambeau all_reduce MAX       the deterministic two steps (reduce-scatter + allgather)
                                that float reductions take at any world size where
                                MPI_Allreduce's bits could differ by rank (MIN/MAX, or
                                SUM/PRODUCT over more than 2 ranks)
  flambeau SUM on opencl        (with --opencl) staged through the host

Target: flambeau all_reduce SUM at most 1.2x the raw Allreduce.

Run: python bench/bench_distributed.py [--mib 16] [--repeats 15] [--ranks 2] [--opencl]
     (it starts itself under `flambeau run -n RANKS`; or run it with flambeau run directly)
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time

import _harness  # first: pins BLAS threads
import numpy as np

import flambeau
import flambeau.distributed as dist


def _under_mpi() -> bool:
    return any(v in os.environ for v in ("PMI_RANK", "PMI_SIZE", "OMPI_COMM_WORLD_SIZE"))


def _timed(comm, fn, reset) -> float:
    reset()
    comm.Barrier()
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mib", type=float, default=16.0)
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--ranks", type=int, default=2)
    parser.add_argument("--opencl", action="store_true",
                        help="add a row for an opencl tensor (PoCL's threads stay busy "
                        "after its kernels, slowing the other rows: compare in its own run)")
    args, _ = parser.parse_known_args()
    if not _under_mpi():
        return subprocess.call([sys.executable, "-m", "flambeau", "run", "-n", str(args.ranks),
                                __file__, *sys.argv[1:]])
    from mpi4py import MPI

    dist.init_process_group()
    comm, rank = MPI.COMM_WORLD, dist.get_rank()
    n = int(args.mib * 2**20) // 4
    source = np.random.default_rng(rank).standard_normal(n).astype(np.float32)
    x = flambeau.from_numpy(source)
    buf = np.from_dlpack(x)  # the tensor's own memory
    reset = lambda: np.copyto(buf, source)  # noqa: E731  (untimed, before each call)
    candidates = {
        "mpi4py Allreduce SUM": lambda: comm.Allreduce(MPI.IN_PLACE, [buf, MPI.FLOAT],
                                                       MPI.SUM),
        "flambeau all_reduce SUM": lambda: dist.all_reduce(x),
        "flambeau SUM async + wait": lambda: dist.all_reduce(x, async_op=True).wait(),
        "mpi4py Allreduce MAX": lambda: comm.Allreduce(MPI.IN_PLACE, [buf, MPI.FLOAT],
                                                       MPI.MAX),
        "flambeau all_reduce MAX": lambda: dist.all_reduce(x, dist.ReduceOp.MAX),
    }
    if args.opencl:
        device = f"opencl:{dist.get_local_rank() % flambeau.device_count('opencl')}"
        y = flambeau.tensor(source, device=device)
        candidates["flambeau SUM on opencl"] = lambda: dist.all_reduce(y)
    samples: dict[str, list[float]] = {name: [] for name in candidates}
    for fn in candidates.values():  # warm up
        _timed(comm, fn, reset)
    for _ in range(args.repeats):  # interleaved: each round times every candidate once
        for name, fn in candidates.items():
            samples[name].append(_timed(comm, fn, reset))
    medians = {name: statistics.median(v) for name, v in samples.items()}
    if rank == 0:
        _harness.report(f"all_reduce of {args.mib:g} MiB float32 on {dist.get_world_size()} "
                        f"ranks ({args.repeats} paired rounds, medians of rank 0)", medians,
                        "mpi4py Allreduce SUM", unit="ms")
    dist.destroy_process_group()
    return 0


if __name__ == "__main__":
    sys.exit(main())
