"""flambeau.distributed on one GPU, world size 1 (a step of bench/gpu-check.sh).

1. ``nccl engine``: flambeau-cuda's NCCL engine driven directly with a one-rank group (no
   MPI needed): NCCL loads, a one-rank communicator opens, every collective runs on a
   communication stream ordered by events, on contiguous and strided arrays of each dtype.
2. With mpi4py: ``init_process_group(backend)`` for ``"cuda:nccl"`` and for ``"cuda:mpi"``
   (the host engine on cuda:0): every collective through ``flambeau.distributed``, sync and
   async, views of a bucket, and the time of a 16 MiB all_reduce.

At world size 1 every reduction returns its input (the average too), which is what is
checked; this exercises the GPU glue, not NCCL's multi-rank algorithms. One line per
check: PASS, FAIL or SKIP (with the reason). Exit status 1 when any check fails.

Usage: python bench/nccl_single_gpu.py [--device cuda:0]
"""

from __future__ import annotations

import argparse
import sys
import time
import traceback
import types

import numpy as np

import flambeau

DTYPES = ("float32", "float64", "int64", "int32", "int16", "float16", "uint8", "bool")
SHAPES = ((), (0,), (7,), (3, 5), (1001,))
OPS = ("sum", "avg", "product", "min", "max")
FAILED: list[str] = []


def _report(name: str, fn) -> None:
    try:
        note = fn()
    except Exception as exc:  # a check script: report every failure and go on
        FAILED.append(name)
        print(f"FAIL  {name}: {type(exc).__name__}: {exc}")
        traceback.print_exc(limit=4)
        return
    print(f"{'SKIP' if isinstance(note, str) and note.startswith('skipped') else 'PASS'}  "
          f"{name}{f': {note}' if note else ''}")


def _values(shape: tuple, dtype: str) -> np.ndarray:
    rng = np.random.default_rng(0)
    if dtype == "bool":
        return rng.integers(0, 2, shape).astype(bool)
    return (rng.standard_normal(shape) * 8).astype(dtype)


def _engine_directly(device: flambeau.Device) -> str:
    """The NCCL engine with a one-rank group, on the arrays behind flambeau tensors."""
    from flambeau import backends
    from flambeau._ops import host
    from flambeau_cuda.collectives import NcclEngine

    group = types.SimpleNamespace(rank=0, size=1, local_rank=0,
                                  broadcast_bytes=lambda data, root: data)
    engine = backends.get(device.type).collectives(device.index or 0, group)
    assert isinstance(engine, NcclEngine), engine
    count = 0
    for dtype in DTYPES:
        for shape in SHAPES:
            want = _values(shape, dtype)
            for op in OPS:
                if dtype == "bool" and op == "avg":
                    continue
                t = flambeau.tensor(want, device=device)
                engine.all_reduce(host.device_array(t), op).wait()
                np.testing.assert_array_equal(t.numpy(), want, err_msg=f"{dtype} {op}")
                count += 1
            t = flambeau.tensor(want, device=device)
            engine.broadcast(host.device_array(t), 0).wait()
            out = flambeau.zeros(shape, dtype=np.dtype(dtype), device=device)
            engine.all_gather(host.device_array(out), host.device_array(t)).wait()
            np.testing.assert_array_equal(out.numpy(), want)
            out = flambeau.zeros(shape, dtype=np.dtype(dtype), device=device)
            engine.reduce_scatter(host.device_array(out), host.device_array(t), "sum").wait()
            np.testing.assert_array_equal(out.numpy(), want)
            count += 3
    grid = _values((6, 5), "float32")
    m = flambeau.tensor(grid, device=device)
    engine.all_reduce(host.device_array(m[:, 1:4]), "max").wait()  # strided: staged copy
    np.testing.assert_array_equal(m.numpy(), grid)
    engine.close()
    return f"{count + 1} collectives on the engine itself"


def _through_dist(device: flambeau.Device, backend: str) -> str:
    import flambeau.distributed as dist

    if not dist.is_available():
        return "skipped: mpi4py is not installed (pip install \"flambeau[mpi]\")"
    dist.init_process_group(backend)
    try:
        engine = dist.get_default_group().engine_for(device)
        count = 0
        for dtype in DTYPES:
            for shape in SHAPES:
                want = _values(shape, dtype)
                for op in dist.ReduceOp:
                    if dtype == "bool" and op is dist.ReduceOp.AVG:
                        continue
                    t = flambeau.tensor(want, device=device)
                    dist.all_reduce(t, op)
                    np.testing.assert_array_equal(t.numpy(), want, err_msg=f"{dtype} {op}")
                    count += 1
                t = flambeau.tensor(want, device=device)
                dist.broadcast(t, 0)
                outs = [flambeau.zeros(shape, dtype=np.dtype(dtype), device=device)]
                dist.all_gather(outs, t)
                flat = flambeau.zeros((1, *shape), dtype=np.dtype(dtype), device=device)
                dist.all_gather_into_tensor(flat, t)
                out = flambeau.zeros(shape, dtype=np.dtype(dtype), device=device)
                dist.reduce_scatter_tensor(out, flat)
                for got in (t, outs[0], flat[0], out):
                    np.testing.assert_array_equal(got.numpy(), want)
                count += 4
        bucket = flambeau.arange(40, dtype=np.float32, device=device)
        works = [dist.all_reduce(bucket[a:b], async_op=True) for a, b in ((0, 15), (15, 40))]
        for w in reversed(works):
            w.wait()
        np.testing.assert_array_equal(bucket.numpy(), np.arange(40, dtype=np.float32))
        x = flambeau.ones(4 * 2**20, device=device)  # 16 MiB of float32
        dist.all_reduce(x)
        flambeau.synchronize(device)
        start = time.perf_counter()
        for _ in range(10):
            dist.all_reduce(x)
        flambeau.synchronize(device)
        ms = (time.perf_counter() - start) / 10 * 1e3
        return f"engine {engine.name!r}, {count + 2} collectives; 16 MiB all_reduce {ms:.3f} ms"
    finally:
        dist.destroy_process_group()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda:0")
    device = flambeau.device(parser.parse_args().device)
    if device.type != "cuda":  # the dry run of gpu-check.sh: the host engine only
        print("SKIP  nccl engine: skipped, no cuda device in a dry run")
        _report(f"host engine on {device} (backend 'mpi')", lambda: _through_dist(device,
                                                                                  "mpi"))
    else:
        _report(f"nccl engine on {device}, world size 1", lambda: _engine_directly(device))
        for backend in ("cuda:nccl", "cuda:mpi"):
            _report(f"flambeau.distributed backend {backend!r} on {device}, world size 1",
                    lambda backend=backend: _through_dist(device, backend))
    print(f"distributed on one device: {'FAILED: ' + ', '.join(FAILED) if FAILED else 'ok'}")
    return 1 if FAILED else 0


if __name__ == "__main__":
    sys.exit(main())
