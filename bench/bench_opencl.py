"""flambeau-opencl on opencl:0 against numpy and flambeau-cpu, in paired rounds:

* 1024x1024 float32 matmul, GFLOP/s (opencl waits for the result each call);
* elementwise add of two 16 Mi-element float32 arrays, GB/s (3 arrays moved per add);
* per-op overhead of a tiny add, enqueued without waiting (one synchronize after the
  round), through tensors and through the kernel table;
* a 784-256-10 MLP training step (cross-entropy, optim.SGD) at batch 256, against the
  same step on flambeau-cpu.

Run: python bench/bench_opencl.py [--quick]   (needs flambeau-opencl and an OpenCL driver,
e.g. pip install -e "packages/backend-opencl[pocl]")
"""

from __future__ import annotations

import sys

import _harness  # first: pins BLAS/torch threads before they load
import numpy as np

import flambeau
from flambeau import nn
from flambeau._device import kernels_for
from flambeau.nn import functional as F

DEVICE = "opencl:0"


def _gflops(seconds: float, n: int) -> float:
    return 2 * n**3 / seconds / 1e9


def bench_matmul(repeats: int, n: int = 1024) -> dict[str, float]:
    rng = np.random.default_rng(0)
    a, b = (rng.standard_normal((n, n)).astype(np.float32) for _ in range(2))
    k = kernels_for(flambeau.device(DEVICE))
    da, db = k.from_numpy(a), k.from_numpy(b)
    got = k.to_numpy(k.matmul(da, db))
    np.testing.assert_allclose(got, a @ b, rtol=1e-3, atol=1e-3)
    medians = _harness.paired({
        "numpy a @ b": lambda: a @ b,
        "opencl matmul + sync": lambda: (k.matmul(da, db), flambeau.synchronize(DEVICE)),
    }, 3, repeats)
    _harness.report(f"{n}x{n} float32 matmul", medians, "numpy a @ b", unit="ms")
    return {name: _gflops(s, n) for name, s in medians.items()}


def bench_add(repeats: int, n: int = 1 << 24) -> dict[str, float]:
    rng = np.random.default_rng(1)
    a, b = (rng.standard_normal(n).astype(np.float32) for _ in range(2))
    ta, tb = flambeau.tensor(a, device=DEVICE), flambeau.tensor(b, device=DEVICE)

    def opencl_add():
        ta + tb
        flambeau.synchronize(DEVICE)

    medians = _harness.paired({"numpy a + b": lambda: a + b, "opencl a + b + sync": opencl_add},
                              5, repeats)
    _harness.report(f"add of two {n}-element float32 arrays", medians, "numpy a + b",
                    unit="ms")
    return {name: 3 * a.nbytes / s / 1e9 for name, s in medians.items()}


def bench_overhead(repeats: int, number: int = 2000) -> dict[str, float]:
    a, b = flambeau.ones(1, device=DEVICE), flambeau.ones(1, device=DEVICE)
    ca, cb = flambeau.ones(1), flambeau.ones(1)
    k = kernels_for(flambeau.device(DEVICE))
    ka, kb = a._data, b._data
    candidates = {
        "cpu tensor a + b": lambda: ca + cb,
        "opencl tensor a + b": lambda: a + b,
        "opencl kernels.binary": lambda: k.binary("add", ka, kb),
    }
    samples: dict[str, list[float]] = {name: [] for name in candidates}
    for fn in candidates.values():
        _harness.time_per_call(fn, number // 10)
        flambeau.synchronize(DEVICE)
    for _ in range(repeats):
        for name, fn in candidates.items():
            samples[name].append(_harness.time_per_call(fn, number))
            flambeau.synchronize(DEVICE)  # outside the timed calls: the queue drains
    import statistics

    medians = {name: statistics.median(v) for name, v in samples.items()}
    _harness.report("tiny add (1 element), no synchronisation per op", medians,
                    "cpu tensor a + b")
    return medians


def _mlp(device: str, x: np.ndarray, y: np.ndarray):
    flambeau.manual_seed(0)
    net = nn.Sequential(nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, 10)).to(device)
    opt = flambeau.optim.SGD(net.parameters(), lr=0.01)
    tx, ty = flambeau.tensor(x, device=device), flambeau.tensor(y, device=device)

    def step():
        loss = F.cross_entropy(net(tx), ty)
        opt.zero_grad()
        loss.backward()
        opt.step()
        flambeau.synchronize(device)
        return loss

    return step


def bench_mlp(repeats: int, batch: int = 256) -> dict[str, float]:
    rng = np.random.default_rng(2)
    x = rng.standard_normal((batch, 784)).astype(np.float32)
    y = rng.integers(0, 10, batch)
    steps = {"flambeau-cpu": _mlp("cpu", x, y), "flambeau-opencl": _mlp(DEVICE, x, y)}
    losses = [float(s().item()) for s in steps.values()]
    assert abs(losses[0] - losses[1]) < 1e-4, losses
    medians = _harness.paired(steps, 10, repeats)
    _harness.report(f"MLP 784-256-10 training step, batch {batch}", medians, "flambeau-cpu",
                    unit="ms")
    return medians


def main() -> None:
    quick = "--quick" in sys.argv
    repeats = 3 if quick else 7
    if flambeau.device_count("opencl") == 0:
        backend = flambeau.backends.get("opencl")
        reason = backend.unavailable_reason() if backend is not None else "not installed"
        sys.exit(f"no OpenCL device: {reason}")
    print(f"{DEVICE}: {flambeau.device(DEVICE).info.name}")
    gemm = bench_matmul(repeats)
    add = bench_add(repeats)
    overhead = bench_overhead(repeats)
    mlp = bench_mlp(repeats)
    rows = [
        ("1024^2 float32 matmul, GFLOP/s", gemm["opencl matmul + sync"], gemm["numpy a @ b"],
         "numpy", ">= 0.2x"),
        ("add 16Mi float32, GB/s", add["opencl a + b + sync"], add["numpy a + b"], "numpy",
         ">= 0.9x"),
        ("tiny add, us/op (tensor)", overhead["opencl tensor a + b"] * 1e6,
         overhead["cpu tensor a + b"] * 1e6, "flambeau-cpu", "< 10 us"),
        ("tiny add, us/op (kernel)", overhead["opencl kernels.binary"] * 1e6, None, "", "< 10 us"),
        ("MLP step batch 256, ms", mlp["flambeau-opencl"] * 1e3, mlp["flambeau-cpu"] * 1e3,
         "flambeau-cpu", ""),
    ]
    print("\nsummary (opencl:0)")
    print(f"  {'measure':<34}{'opencl':>10}{'baseline':>10}  {'ratio':>7}  {'target':<8}")
    for name, value, base, base_name, target in rows:
        ratio = f"{value / base:.2f}x" if base else ""
        base_text = f"{base:.2f}" if base else ""
        print(f"  {name:<34}{value:>10.2f}{base_text:>10}  {ratio:>7}  {target:<8} {base_name}")


if __name__ == "__main__":
    main()
