"""flambeau-cuda vs torch CUDA on one GPU, measured in the same run, in paired rounds.

Cases (issue 7's): training steps (forward, cross-entropy, backward, SGD) of an MLP
784-256-10 and of D2L's LeNet at batch 256, a 4096 x 4096 float32 GEMM, softmax +
cross-entropy forward and backward, an Adam step over ~25M parameters, and the launch
overhead of a tiny add. Both libraries start from the same weights and inputs; a case
whose first results differ is marked. Timings include a device synchronisation at the end
of each batch of calls. The table, with the issue's targets, is printed last.

Run: python bench/bench_cuda.py [--device cuda:0] [--rounds 5] [--quick]
Dry run on the CPU (checks the script, times nothing of interest):
     python bench/bench_cuda.py --device cpu --quick
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

import flambeau
from flambeau import nn, optim
from flambeau.nn import functional as F

BATCH = 256


@dataclass
class Case:
    """One row of the table: a flambeau and a torch callable doing the same work."""

    name: str
    flambeau: Callable[[], object]
    torch: Callable[[], object]
    number: int  # calls per timed batch
    target: float | None = None  # largest acceptable time ratio flambeau / torch
    note: str = ""


class Timer:
    """Paired timing: each round times a batch of calls of every candidate, then syncs."""

    def __init__(self, fl_sync: Callable[[], None], torch_sync: Callable[[], None]) -> None:
        self.syncs = {"flambeau": fl_sync, "torch": torch_sync}

    def batch(self, which: str, fn: Callable[[], object], number: int) -> float:
        sync = self.syncs[which]
        sync()
        start = time.perf_counter()
        for _ in range(number):
            fn()
        sync()
        return (time.perf_counter() - start) / number

    def medians(self, case: Case, rounds: int) -> tuple[float, float]:
        for which, fn in (("flambeau", case.flambeau), ("torch", case.torch)):
            self.batch(which, fn, max(case.number // 5, 1))  # warm up: compile, allocate
        samples: dict[str, list[float]] = {"flambeau": [], "torch": []}
        for _ in range(rounds):
            samples["flambeau"].append(self.batch("flambeau", case.flambeau, case.number))
            samples["torch"].append(self.batch("torch", case.torch, case.number))
        return statistics.median(samples["flambeau"]), statistics.median(samples["torch"])


# --- models ---------------------------------------------------------------------------------


def mlp(lib):
    return lib.Sequential(lib.Linear(784, 256), lib.ReLU(), lib.Linear(256, 10))


def lenet(lib):
    """D2L's LeNet-5 (sigmoid activations, average pooling)."""
    return lib.Sequential(
        lib.Conv2d(1, 6, kernel_size=5, padding=2), lib.Sigmoid(),
        lib.AvgPool2d(kernel_size=2, stride=2),
        lib.Conv2d(6, 16, kernel_size=5), lib.Sigmoid(), lib.AvgPool2d(kernel_size=2, stride=2),
        lib.Flatten(), lib.Linear(16 * 5 * 5, 120), lib.Sigmoid(), lib.Linear(120, 84),
        lib.Sigmoid(), lib.Linear(84, 10))


def _same_weights(torch, source, target, device) -> None:
    """Give the flambeau ``target`` the torch ``source``'s weights."""
    state = {k: flambeau.tensor(v.detach().cpu().numpy(), device=device)
             for k, v in source.state_dict().items()}
    target.load_state_dict(state)


def _training_step(net, opt, x, y, cross_entropy):
    def step():
        loss = cross_entropy(net(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        return loss
    return step


def _first_losses_agree(fl_step, torch_step) -> bool:
    a, b = float(fl_step().item()), float(torch_step().item())
    return abs(a - b) <= 1e-3 * max(1.0, abs(b))


# --- cases ----------------------------------------------------------------------------------


def training_case(torch, name, build, shape, device, tdevice, number, target) -> Case:
    rng = np.random.default_rng(0)
    x_host = rng.standard_normal((BATCH, *shape)).astype(np.float32)
    y_host = rng.integers(0, 10, BATCH)
    torch.manual_seed(0)
    tnet = build(torch.nn).to(tdevice)
    fnet = build(nn).to(device)
    _same_weights(torch, tnet, fnet, device)
    tx, ty = torch.tensor(x_host, device=tdevice), torch.tensor(y_host, device=tdevice)
    fx, fy = flambeau.tensor(x_host, device=device), flambeau.tensor(y_host, device=device)
    fl = _training_step(fnet, optim.SGD(fnet.parameters(), lr=0.1), fx, fy, F.cross_entropy)
    th = _training_step(tnet, torch.optim.SGD(tnet.parameters(), lr=0.1), tx, ty,
                        torch.nn.functional.cross_entropy)
    note = "" if _first_losses_agree(fl, th) else "LOSSES DIFFER"
    return Case(name, fl, th, number, target, note)


def gemm_case(torch, device, tdevice, size, number) -> Case:
    rng = np.random.default_rng(1)
    a, b = (rng.standard_normal((size, size)).astype(np.float32) for _ in range(2))
    fa, fb = flambeau.tensor(a, device=device), flambeau.tensor(b, device=device)
    ta, tb = torch.tensor(a, device=tdevice), torch.tensor(b, device=tdevice)
    same = np.allclose((fa @ fb).cpu().numpy(), (ta @ tb).cpu().numpy(), rtol=1e-3, atol=1e-2)
    return Case(f"GEMM {size}x{size} float32", lambda: fa @ fb, lambda: ta @ tb, number,
                1 / 0.9, "" if same else "RESULTS DIFFER")


def softmax_cross_entropy_case(torch, device, tdevice, rows, classes, number) -> Case:
    rng = np.random.default_rng(2)
    logits = rng.standard_normal((rows, classes)).astype(np.float32)
    target = rng.integers(0, classes, rows)
    fl_logits = flambeau.tensor(logits, device=device, requires_grad=True)
    th_logits = torch.tensor(logits, device=tdevice, requires_grad=True)
    fl_target = flambeau.tensor(target, device=device)
    th_target = torch.tensor(target, device=tdevice)

    def fl():
        loss = F.cross_entropy(fl_logits, fl_target)
        loss.backward()
        fl_logits.grad = None
        return loss

    def th():
        loss = torch.nn.functional.cross_entropy(th_logits, th_target)
        loss.backward()
        th_logits.grad = None
        return loss

    note = "" if _first_losses_agree(fl, th) else "LOSSES DIFFER"
    return Case(f"softmax+cross-entropy {rows}x{classes} fwd+bwd", fl, th, number, None, note)


def adam_case(torch, device, tdevice, sizes, number) -> Case:
    rng = np.random.default_rng(3)
    values = [rng.standard_normal(s).astype(np.float32) for s in sizes]
    grads = [rng.standard_normal(s).astype(np.float32) for s in sizes]
    fl_params = [nn.Parameter(flambeau.tensor(v, device=device)) for v in values]
    th_params = [torch.nn.Parameter(torch.tensor(v, device=tdevice)) for v in values]
    for p, g in zip(fl_params, grads):
        p.grad = flambeau.tensor(g, device=device)
    for p, g in zip(th_params, grads):
        p.grad = torch.tensor(g, device=tdevice)
    fl_opt = optim.Adam(fl_params, lr=1e-3)
    # foreach: torch's own multi-tensor Adam, its default on CUDA.
    th_opt = torch.optim.Adam(th_params, lr=1e-3, foreach=True)
    count = sum(int(np.prod(s)) for s in sizes)
    return Case(f"Adam step, {len(sizes)} tensors, {count / 1e6:.1f}M params", fl_opt.step,
                th_opt.step, number)


def tiny_add_case(torch, device, tdevice, number) -> Case:
    fa, fb = flambeau.ones(1, device=device), flambeau.ones(1, device=device)
    ta, tb = torch.ones(1, device=tdevice), torch.ones(1, device=tdevice)
    return Case("tiny add (launch overhead)", lambda: fa + fb, lambda: ta + tb, number, 2.0)


# --- main -----------------------------------------------------------------------------------


def _format_time(seconds: float) -> str:
    return f"{seconds * 1e6:10.1f} us" if seconds < 1e-3 else f"{seconds * 1e3:10.3f} ms"


def print_table(rows: list[tuple[Case, float, float]], title: str) -> int:
    """Print the results; return how many targets were missed."""
    print(f"\n{title}")
    header = f"  {'case':<44}{'flambeau':>14}{'torch':>14}{'ratio':>8}  {'target':<9}result"
    print(header)
    print("  " + "-" * (len(header) - 2))
    missed = 0
    for case, fl, th in rows:
        ratio = fl / th
        if case.target is None:
            target, verdict = "-", "report"
        else:
            target = f"<= {case.target:.2f}x"
            ok = ratio <= case.target
            missed += not ok
            verdict = "ok" if ok else "MISSED"
        note = f"  {case.note}" if case.note else ""
        print(f"  {case.name:<44}{_format_time(fl):>14}{_format_time(th):>14}"
              f"{ratio:>7.2f}x  {target:<9}{verdict}{note}")
    print("  ratio = flambeau time / torch time (lower is better for flambeau)")
    return missed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda:0", help="flambeau device (default cuda:0)")
    parser.add_argument("--rounds", type=int, default=5, help="paired rounds per case")
    parser.add_argument("--quick", action="store_true",
                        help="small sizes and few calls: a dry run of the script")
    args = parser.parse_args(argv)

    import torch

    device = flambeau.device(args.device)
    tdevice = torch.device("cuda", device.index or 0) if device.type == "cuda" else \
        torch.device("cpu")
    if tdevice.type == "cuda" and not torch.cuda.is_available():
        print("torch has no CUDA here: cannot compare", file=sys.stderr)
        return 2
    if tdevice.type == "cuda":
        # The same float32 matmul precision in both libraries: full float32, no TF32.
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
    info = device.info
    print(f"flambeau {device}: {info.name}, {info.extra}")
    print(f"torch {torch.__version__} on {tdevice}"
          + (f": {torch.cuda.get_device_name(tdevice)}" if tdevice.type == "cuda" else ""))

    quick = args.quick
    rounds = 2 if quick else args.rounds
    scale = 10 if quick else 1
    sync_fl = lambda: flambeau.synchronize(device)  # noqa: E731
    sync_th = (lambda: torch.cuda.synchronize(tdevice)) if tdevice.type == "cuda" else \
        (lambda: None)
    builders = [
        lambda: training_case(torch, "MLP 784-256-10 step, batch 256", mlp, (784,), device,
                              tdevice, 100 // scale, 1.3),
        lambda: training_case(torch, "LeNet step, batch 256", lenet, (1, 28, 28), device,
                              tdevice, 40 // scale, 1.3),
        lambda: gemm_case(torch, device, tdevice, 512 if quick else 4096, 3 if quick else 20),
        lambda: softmax_cross_entropy_case(torch, device, tdevice, 1024, 1000, 100 // scale),
        lambda: adam_case(torch, device, tdevice,
                          [(64, 64), (64,)] if quick else
                          [(4096, 1024), (4096,), (4096, 4096), (4096,), (1024, 4096), (1024,)],
                          50 // scale),
        lambda: tiny_add_case(torch, device, tdevice, 2000 // scale),
    ]
    timer = Timer(sync_fl, sync_th)
    rows = []
    for build in builders:
        started = time.perf_counter()
        case = build()
        fl, th = timer.medians(case, rounds)
        rows.append((case, fl, th))
        print(f"  measured {case.name} in {time.perf_counter() - started:.1f}s", flush=True)
    title = (f"flambeau {device} vs torch {tdevice}: median time per call, {rounds} paired "
             f"rounds{' (quick dry run)' if quick else ''}")
    missed = print_table(rows, title)
    return 1 if missed and not quick else 0


if __name__ == "__main__":
    sys.exit(main())
