"""Every row of issue 16's speed table in one run: flambeau-cpu against its baseline
(torch, or numpy where the row says so), one thread each, medians of paired rounds.

Rows: tiny add; tiny autograd step; the MLP 784-256-10 training step (nn.Sequential,
F.cross_entropy, optim.SGD, zero_grad) at batch 256 and 32, against torch and against
hand-written numpy; D2L's LeNet (sigmoid, avg-pool) step at batch 128; and model
construction: ``randn(4096, 4096)`` against numpy, ``nn.Linear(4096, 4096)`` and D2L's
lazy AlexNet built and run once on 1x1x224x224 against torch (those three rows are
bench/bench_init.py's).

Noise: each row's spread ((max - min) / median of its rounds, per candidate) and the
load average before and after are printed; a ratio moving by less than the spread is
not a change.

Run: python bench/bench_speed.py [--rows add,autograd,mlp256,mlp32,lenet,randn,linear,
alexnet] [--repeats 7] [--timer wall|cpu]
"""

from __future__ import annotations

import argparse
import os
import time

import _harness  # first: pins BLAS/torch threads before they load
import bench_init
import bench_lenet
import bench_mlp
import numpy as np

import flambeau
from flambeau import nn, optim

# row key: (the measure, target as "ratio <= x" against the named baseline)
ROWS = {
    "add": ("tiny add, 1 element", 1.0),
    "autograd": ("tiny autograd step (a*b).sum().backward()", 0.5),
    "mlp256": ("MLP 784-256-10 step, batch 256", 1.0),
    "mlp32": ("MLP 784-256-10 step, batch 32", 1.0),
    "lenet": ("LeNet (sigmoid, avg-pool) step, batch 128", 1.0),
    "randn": ("randn(4096, 4096)", 2.0),  # >= 0.5x numpy's speed: time <= 2x numpy's
    "linear": ("nn.Linear(4096, 4096) construction", 1.5),
    "alexnet": ("AlexNet (lazy) build + first forward", 1.5),
}


def tiny_add(torch, repeats: int) -> tuple[dict, dict]:
    a, b = flambeau.ones(1), flambeau.ones(1)
    na, nb = np.ones(1, np.float32), np.ones(1, np.float32)
    ta, tb = torch.ones(1), torch.ones(1)
    return _paired({"flambeau": lambda: a + b, "torch": lambda: ta + tb,
                    "numpy": lambda: np.add(na, nb)}, 20000, repeats)


def tiny_autograd(torch, repeats: int) -> tuple[dict, dict]:
    fa, fb = flambeau.ones(1, requires_grad=True), flambeau.ones(1, requires_grad=True)
    ta, tb = torch.ones(1, requires_grad=True), torch.ones(1, requires_grad=True)

    def flambeau_step():
        (fa * fb).sum().backward()

    def torch_step():
        (ta * tb).sum().backward()

    return _paired({"flambeau": flambeau_step, "torch": torch_step}, 2000, repeats)


def mlp(lib, torch_net=None):
    """The issue's MLP in ``lib`` (``flambeau`` or ``torch``); flambeau's copies the
    weights of ``torch_net``."""
    net = lib.nn.Sequential(lib.nn.Linear(784, 256), lib.nn.ReLU(), lib.nn.Linear(256, 10))
    if torch_net is not None:
        net.load_state_dict({k: flambeau.tensor(v.detach().numpy())
                             for k, v in torch_net.state_dict().items()})
    return net


def module_step(F, net, opt, x, y):
    """One training step as D2L writes it (works in both libraries)."""
    opt.zero_grad()
    loss = F.cross_entropy(net(x), y)
    loss.backward()
    opt.step()
    return loss


def mlp_step(torch, batch: int, repeats: int) -> tuple[dict, dict]:
    x, y, params = bench_mlp._data(batch)
    tnet = mlp(torch)
    fnet = mlp(flambeau, tnet)
    topt = torch.optim.SGD(tnet.parameters(), lr=bench_mlp.LR)
    fopt = optim.SGD(fnet.parameters(), lr=bench_mlp.LR)
    fx, fy, tx, ty = flambeau.tensor(x), flambeau.tensor(y), torch.tensor(x), torch.tensor(y)
    lt = module_step(torch.nn.functional, tnet, topt, tx, ty).item()
    lf = module_step(nn.functional, fnet, fopt, fx, fy).item()
    assert abs(lt - lf) < 1e-4 * max(1.0, abs(lt)), (lt, lf)  # the same math is timed
    return _paired({
        "flambeau": lambda: module_step(nn.functional, fnet, fopt, fx, fy),
        "torch": lambda: module_step(torch.nn.functional, tnet, topt, tx, ty),
        "numpy": lambda: bench_mlp.numpy_step(x, y, params),
    }, 20 if batch >= 256 else 100, repeats)


def lenet_step(torch, repeats: int) -> tuple[dict, dict]:
    x, y = bench_lenet._data()
    tnet = bench_lenet.lenet(torch.nn, torch.nn.Sigmoid)
    fnet = bench_lenet.lenet(nn, nn.Sigmoid)
    bench_lenet._copy_weights(torch, tnet, fnet)
    fx, fy, tx, ty = flambeau.tensor(x), flambeau.tensor(y), torch.tensor(x), torch.tensor(y)
    return _paired({"flambeau": lambda: bench_lenet.flambeau_step(fnet, fx, fy),
                    "torch": lambda: bench_lenet.torch_step(torch, tnet, tx, ty)}, 5, repeats)


def construction(torch, row: str, repeats: int) -> tuple[dict, dict]:
    """The construction rows, as bench/bench_init.py defines them."""
    return _paired(bench_init.candidates(row, torch), 1, repeats)


def _paired(candidates: dict, number: int, repeats: int) -> tuple[dict, dict]:
    spreads: dict[str, float] = {}
    medians = _harness.paired(candidates, number, repeats, spreads=spreads)
    return medians, spreads


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", default=",".join(ROWS),
                        help="comma-separated rows to run (default: all): " + ", ".join(ROWS))
    parser.add_argument("--repeats", type=int, default=7, help="paired rounds per row")
    parser.add_argument("--timer", choices=("wall", "cpu"), default="wall",
                        help="wall time, or this thread's CPU time (discounts what other "
                             "processes on a loaded machine take; one thread runs either way)")
    args = parser.parse_args()
    if args.timer == "cpu":
        _harness.clock = time.thread_time
    rows = [r.strip() for r in args.rows.split(",") if r.strip()]
    unknown = [r for r in rows if r not in ROWS]
    if unknown:
        parser.error(f"unknown rows {unknown}; choose from {list(ROWS)}")
    torch = _harness.torch_or_none()
    if torch is None:
        raise SystemExit("bench_speed needs torch for its baselines: pip install torch")
    load_before = os.getloadavg()
    results = []
    for row in rows:
        repeats = max(3, args.repeats // 2) if row in ("randn", "linear", "alexnet") \
            else args.repeats
        if row == "add":
            medians, spreads = tiny_add(torch, repeats)
        elif row == "autograd":
            medians, spreads = tiny_autograd(torch, repeats)
        elif row in ("mlp256", "mlp32"):
            medians, spreads = mlp_step(torch, int(row[3:]), repeats)
        elif row == "lenet":
            medians, spreads = lenet_step(torch, repeats)
        else:
            medians, spreads = construction(torch, row, repeats)
        results.append((row, medians, spreads))
        _print_row(row, medians, spreads)
    print(f"\nload average (1, 5, 15 min): before {_load(load_before)}, after "
          f"{_load(os.getloadavg())}; {os.cpu_count()} CPUs; one thread per library; "
          f"{args.timer} time")
    print("\nsummary (ratio = flambeau's time / baseline's time)")
    for row, medians, _ in results:
        base = bench_init.BASELINES.get(row, "torch")
        ratio = medians["flambeau"] / medians[base]
        target = ROWS[row][1]
        verdict = "met" if ratio <= target else "NOT met"
        print(f"  {ROWS[row][0]:<46} {ratio:6.2f}x {base:<6} target <= {target:.1f}x  {verdict}")


def _print_row(row: str, medians: dict, spreads: dict) -> None:
    base = bench_init.BASELINES.get(row, "torch")
    print(f"\n{ROWS[row][0]}")
    for name, seconds in medians.items():
        print(f"  {name:<10}{_time(seconds):>12}   {seconds / medians[base]:6.2f}x {base}"
              f"   spread {spreads[name]:5.1%}")


def _time(seconds: float) -> str:
    if seconds >= 1:
        return f"{seconds:.3f} s"
    if seconds >= 1e-3:
        return f"{seconds * 1e3:.3f} ms"
    return f"{seconds * 1e6:.2f} us"


def _load(values: tuple[float, float, float]) -> str:
    return ", ".join(f"{v:.2f}" for v in values)


if __name__ == "__main__":
    main()
