"""NCCL through flambeau on several GPUs: all_reduce bus bandwidth against raw cupy NCCL,
and DistributedDataParallel step scaling.

Not run yet: it needs a machine with 2 or more NVIDIA GPUs, cupy and NCCL
(``pip install "flambeau-cuda[cuda12,nccl]" "flambeau[mpi]"``). Rank r uses cuda:r.

Rows, for each world size N (medians of rank 0, interleaved rounds, each timed call
started together by an MPI barrier and ended by synchronising the GPU):
  raw NCCL allReduce       cupy's NcclCommunicator.allReduce (SUM, in place) on the
                           tensor's own memory and a stream of its own: the baseline
  flambeau all_reduce      dist.all_reduce(x) on the same tensor (the NCCL engine: event
                           waits between the compute and communication streams, then NCCL)
  busbw = bytes * 2(N-1)/N / t (nccl-tests' definition); target: flambeau >= 0.9x raw at
  16 MiB and more.
  DDP step                 forward, cross-entropy, backward (bucketed async all_reduce),
                           SGD step of an MLP, same per-rank batch at every N (weak
                           scaling); local step: the same model without DDP
  scaling from 2 to N      t_ddp(2) / t_ddp(N): 1.0 is perfect; target >= 0.85 at N = 8.

Run:
  python bench/bench_nccl.py              world sizes 2, 4, 8 (up to the GPU count), each
                                          under `flambeau run -n N`, then the scaling table
  flambeau run -n 4 bench/bench_nccl.py   one world size (no scaling table)
Options: --mib 16,64,256  --repeats 10  --iters 20  --batch 256  --ranks 2,4,8
Without a GPU it says so and exits with status 1.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from functools import partial
from pathlib import Path

import _harness  # noqa: F401  (first: pins BLAS threads)
import numpy as np
from bench_ddp import _mlp as _mlp_of
from bench_distributed import _under_mpi

import flambeau
import flambeau.distributed as dist
from flambeau import nn
from flambeau.nn.parallel import DistributedDataParallel

SIZES = (4096, 4096, 4096, 4096, 1000)  # 54.5 M parameters: 208 MiB of float32 gradients
LR = 0.01


def _args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mib", default="16,64,256", help="all_reduce sizes, MiB")
    parser.add_argument("--repeats", type=int, default=10, help="paired rounds")
    parser.add_argument("--iters", type=int, default=20, help="calls per timed sample")
    parser.add_argument("--batch", type=int, default=256, help="per-rank DDP batch")
    parser.add_argument("--ranks", default="2,4,8", help="world sizes (driver mode)")
    parser.add_argument("--json", help="(internal) where rank 0 writes its results")
    return parser.parse_known_args()[0]


def _no_gpu_reason(needed: int) -> str | None:
    count = flambeau.cuda.device_count()
    if count >= needed:
        return None
    from flambeau import backends

    backend = backends.get("cuda")
    why = backend.unavailable_reason() if backend is not None and count == 0 else None
    return (f"this benchmark needs {needed} NVIDIA GPUs and finds {count}"
            f"{f' ({why})' if why else ''}; run it on a multi-GPU machine with "
            'pip install "flambeau-cuda[cuda12,nccl]" "flambeau[mpi]"')


def _drive(args: argparse.Namespace) -> int:
    """Run the benchmark at each world size, then print the scaling table."""
    reason = _no_gpu_reason(2)
    if reason:
        print(f"bench_nccl: {reason}", file=sys.stderr)
        return 1
    gpus = flambeau.cuda.device_count()
    sizes = [n for n in map(int, args.ranks.split(",")) if 2 <= n <= gpus]
    results: dict[int, dict] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for n in sizes:
            out = Path(tmp, f"{n}.json")
            rc = subprocess.call([sys.executable, "-m", "flambeau", "run", "-n", str(n),
                                  __file__, *sys.argv[1:], "--json", str(out)])
            if rc or not out.exists():
                print(f"bench_nccl: the run on {n} GPUs failed (exit {rc})", file=sys.stderr)
                return rc or 1
            results[n] = json.loads(out.read_text())
    base = sizes[0]
    print(f"\nDDP step scaling, MLP {'-'.join(map(str, SIZES))}, per-rank batch "
          f"{args.batch} (weak scaling: t_ddp({base}) / t_ddp(N); target >= 0.85 at 8)")
    print(f"  {'GPUs':>5}{'local ms':>12}{'DDP ms':>12}{'scaling':>10}")
    for n in sizes:
        t_local, t_ddp = results[n]["local step"], results[n]["DDP step"]
        scaling = results[base]["DDP step"] / t_ddp
        verdict = "" if n != 8 else ("  met" if scaling >= 0.85 else "  NOT met")
        print(f"  {n:>5}{t_local * 1e3:>12.2f}{t_ddp * 1e3:>12.2f}{scaling:>10.3f}{verdict}")
    return 0


def _timed(comm, fn, sync) -> float:
    comm.Barrier()
    start = time.perf_counter()
    fn()
    sync()
    return time.perf_counter() - start


def _median_rounds(comm, candidates: dict, repeats: int, sync) -> dict[str, float]:
    for fn in candidates.values():  # warm up (NCCL connects on its first call)
        _timed(comm, fn, sync)
    samples: dict[str, list[float]] = {name: [] for name in candidates}
    for _ in range(repeats):  # interleaved: each round times every candidate once
        for name, fn in candidates.items():
            samples[name].append(_timed(comm, fn, sync))
    return {name: statistics.median(v) for name, v in samples.items()}


def _raw_nccl(comm, rank: int, size: int):
    """A cupy NCCL communicator of our own, for the baseline."""
    from cupy.cuda import nccl

    uid = comm.bcast(nccl.get_unique_id() if rank == 0 else None, root=0)
    return nccl, nccl.NcclCommunicator(size, uid, rank)


def _all_reduce_rows(args, comm, device, rank, size) -> dict[str, float]:
    import cupy

    nccl, raw = _raw_nccl(comm, rank, size)
    stream = cupy.cuda.Stream(non_blocking=True)
    sync = lambda: flambeau.synchronize(device)  # noqa: E731
    found: dict[str, float] = {}
    print_rows = []
    for mib in map(float, args.mib.split(",")):
        n = int(mib * 2**20) // 4
        x = flambeau.ones(n, device=device)
        buf = cupy.from_dlpack(x)  # the tensor's own memory

        def raw_calls(buf=buf) -> None:
            for _ in range(args.iters):
                raw.allReduce(buf.data.ptr, buf.data.ptr, buf.size, nccl.NCCL_FLOAT32,
                              nccl.NCCL_SUM, stream.ptr)
            stream.synchronize()

        def flambeau_calls(x=x) -> None:
            for _ in range(args.iters):
                dist.all_reduce(x)

        medians = _median_rounds(comm, {"raw": raw_calls, "flambeau": flambeau_calls},
                                 args.repeats, sync)
        bus = {k: n * 4 * 2 * (size - 1) / size / (t / args.iters) for k, t in medians.items()}
        ratio = bus["flambeau"] / bus["raw"]
        found[f"busbw ratio {mib:g} MiB"] = ratio
        print_rows.append((mib, bus["raw"], bus["flambeau"], ratio))
    raw.destroy()
    if rank == 0:
        print(f"\nall_reduce SUM float32 on {size} GPUs ({args.repeats} paired rounds x "
              f"{args.iters} calls, medians of rank 0); busbw in GB/s")
        print(f"  {'MiB':>8}{'raw NCCL':>12}{'flambeau':>12}{'ratio':>9}")
        for mib, b_raw, b_fl, ratio in print_rows:
            verdict = "met" if ratio >= 0.9 else "NOT met"
            print(f"  {mib:>8g}{b_raw / 1e9:>12.2f}{b_fl / 1e9:>12.2f}{ratio:>8.3f}x  "
                  f"(target >= 0.9x: {verdict})")
    return found


def _ddp_rows(args, comm, device, rank, size) -> dict[str, float]:
    flambeau.manual_seed(0)
    local = _mlp_of(SIZES).to(device)
    wrapped = _mlp_of(SIZES).to(device)
    wrapped.load_state_dict(local.state_dict())
    ddp = DistributedDataParallel(wrapped)
    rng = np.random.default_rng(rank)
    x = flambeau.tensor(rng.standard_normal((args.batch, SIZES[0])).astype(np.float32),
                        device=device)
    y = flambeau.tensor(rng.integers(0, SIZES[-1], args.batch), device=device)

    def step(model, optimizer) -> None:
        optimizer.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        optimizer.step()

    candidates = {name: partial(step, m, flambeau.optim.SGD(m.parameters(), lr=LR))
                  for name, m in (("local step", local), ("DDP step", ddp))}
    medians = _median_rounds(comm, candidates, args.repeats,
                             lambda: flambeau.synchronize(device))
    if rank == 0:
        t_local, t_ddp = medians["local step"], medians["DDP step"]
        print(f"\nDDP step on {size} GPUs, MLP {'-'.join(map(str, SIZES))}, per-rank batch "
              f"{args.batch}: local {t_local * 1e3:.2f} ms, DDP {t_ddp * 1e3:.2f} ms "
              f"(overhead {(t_ddp - t_local) / t_local:+.1%})")
    return medians


def main() -> int:
    args = _args()
    if not _under_mpi():
        return _drive(args)
    from mpi4py import MPI

    comm = MPI.COMM_WORLD
    dist.init_process_group()
    rank, size = dist.get_rank(), dist.get_world_size()
    reason = _no_gpu_reason(dist.get_local_world_size())  # one GPU per rank of a machine
    if comm.allreduce(reason is not None, MPI.LOR):  # then every rank leaves
        if reason:
            print(f"bench_nccl (rank {rank}): {reason}", file=sys.stderr)
        dist.destroy_process_group()
        return 1
    device = flambeau.device("cuda", dist.get_local_rank())
    results = {**_all_reduce_rows(args, comm, device, rank, size),
               **_ddp_rows(args, comm, device, rank, size)}
    if rank == 0 and args.json:
        Path(args.json).write_text(json.dumps(results))
    dist.destroy_process_group()
    return 0


if __name__ == "__main__":
    os.environ.setdefault("NCCL_DEBUG", "WARN")
    sys.exit(main())
