"""LeNet-5 (D2L's version) training step on 1x28x28 images at batch 128: forward,
backward and a plain SGD update, flambeau-cpu vs torch, in paired rounds. Both start
from the same weights and compute the same loss (checked at the end).

Run: python bench/bench_lenet.py
"""

from __future__ import annotations

import _harness  # first: pins BLAS/torch threads before they load
import numpy as np

import flambeau
from flambeau import nn

LR = 0.1
BATCH = 128


def lenet(lib, act):
    """D2L's LeNet in ``lib`` (``flambeau.nn`` or ``torch.nn``), with activation ``act``."""
    return lib.Sequential(
        lib.Conv2d(1, 6, kernel_size=5, padding=2), act(), lib.AvgPool2d(kernel_size=2, stride=2),
        lib.Conv2d(6, 16, kernel_size=5), act(), lib.AvgPool2d(kernel_size=2, stride=2),
        lib.Flatten(), lib.Linear(16 * 5 * 5, 120), act(), lib.Linear(120, 84), act(),
        lib.Linear(84, 10))


def _data(seed: int = 0):
    rng = np.random.default_rng(seed)
    return (rng.standard_normal((BATCH, 1, 28, 28)).astype(np.float32),
            rng.integers(0, 10, BATCH))


def flambeau_step(net, x, y):
    loss = nn.functional.cross_entropy(net(x), y)
    loss.backward()
    with flambeau.no_grad():
        for p in net.parameters():
            p -= LR * p.grad
            p.grad = None
    return loss


def torch_step(torch, net, x, y):
    loss = torch.nn.functional.cross_entropy(net(x), y)
    loss.backward()
    with torch.no_grad():
        for p in net.parameters():
            p -= LR * p.grad
            p.grad = None
    return loss


def _copy_weights(torch, source, target) -> None:
    """Give the flambeau ``target`` the torch ``source``'s weights."""
    state = {k: flambeau.tensor(v.detach().numpy()) for k, v in source.state_dict().items()}
    target.load_state_dict(state)


def main(repeats: int = 7, number: int = 5) -> None:
    torch = _harness.torch_or_none()
    x, y = _data()
    fx, fy = flambeau.tensor(x), flambeau.tensor(y)
    tx, ty = (torch.tensor(x), torch.tensor(y)) if torch is not None else (None, None)
    for name in ("Sigmoid", "ReLU"):
        fnet = lenet(nn, getattr(nn, name))
        candidates = {"flambeau-cpu": lambda n=fnet: flambeau_step(n, fx, fy)}
        if torch is not None:
            tnet = lenet(torch.nn, getattr(torch.nn, name))
            _copy_weights(torch, tnet, fnet)
            candidates["torch"] = lambda n=tnet: torch_step(torch, n, tx, ty)
        baseline = "torch" if torch is not None else "flambeau-cpu"
        _harness.report(f"LeNet ({name}) training step, batch {BATCH}, 1 thread",
                        _harness.paired(candidates, number, repeats), baseline, unit="ms")
    if torch is not None:
        _check_same_math(torch)


def _check_same_math(torch) -> None:
    """Same weights and data give the same loss, and the same loss after one step."""
    x, y = _data(seed=1)
    tnet = lenet(torch.nn, torch.nn.Sigmoid)
    fnet = lenet(nn, nn.Sigmoid)
    _copy_weights(torch, tnet, fnet)
    losses = []
    for _ in range(2):
        lt = torch_step(torch, tnet, torch.tensor(x), torch.tensor(y)).item()
        lf = flambeau_step(fnet, flambeau.tensor(x), flambeau.tensor(y)).item()
        assert abs(lt - lf) < 1e-4, (lt, lf)
        losses.append((lf, lt))
    print("\nsame losses in flambeau and torch over two steps: "
          + ", ".join(f"{a:.6f} vs {b:.6f}" for a, b in losses))


if __name__ == "__main__":
    main()
