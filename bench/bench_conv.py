"""flambeau-cpu's convolution kernels at LeNet's sizes (batch 128) against torch's, one
thread each, in paired rounds: the forward pass and the two gradients, each kernel called
directly (no autograd), with torch's ``convolution_backward`` computing one gradient.

Run: python bench/bench_conv.py [--repeats N] [--timer wall|cpu]
"""

from __future__ import annotations

import argparse
import time

import _harness  # first: pins BLAS/torch threads before they load
import numpy as np

from flambeau_cpu.kernels import NumpyKernels

BATCH = 128

#: name: (in channels, input size, out channels, kernel, padding), as in bench_lenet.
LAYERS = {"conv1 1->6, 28x28, pad 2": (1, 28, 6, 5, 2), "conv2 6->16, 14x14": (6, 14, 16, 5, 0)}


def candidates(torch, c: int, size: int, o: int, k: int, p: int) -> dict[str, dict]:
    """{kernel: {"flambeau-cpu": fn, "torch": fn}} for one layer, after checking that both
    compute the same arrays."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((BATCH, c, size, size), dtype=np.float32)
    w = rng.standard_normal((o, c, k, k), dtype=np.float32)
    args = ((1, 1), (p, p), (1, 1), 1)
    kernels = NumpyKernels()
    y = kernels.conv2d(x, w, *args)
    g = rng.standard_normal(y.shape, dtype=np.float32)
    tx, tw, tg = torch.from_numpy(x), torch.from_numpy(w), torch.from_numpy(g)

    def torch_backward(mask):
        return lambda: torch.ops.aten.convolution_backward(
            tg, tx, tw, None, [1, 1], [p, p], [1, 1], False, [0, 0], 1, mask)

    table = {
        "forward": (lambda: kernels.conv2d(x, w, *args),
                    lambda: torch.nn.functional.conv2d(tx, tw, padding=p), None),
        "grad weight": (lambda: kernels.conv2d_grad_weight(g, x, w.shape, *args),
                        torch_backward([False, True, False]), 1),
        "grad input": (lambda: kernels.conv2d_grad_input(g, w, x.shape, *args),
                       torch_backward([True, False, False]), 0),
    }
    for ours, theirs, pick in table.values():  # the same math is timed
        expected = (theirs() if pick is None else theirs()[pick]).numpy()
        assert np.abs(ours() - expected).max() <= 1e-5 * np.abs(expected).max()
    return {name: {"flambeau-cpu": ours, "torch": theirs}
            for name, (ours, theirs, _) in table.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=7, help="paired rounds per kernel")
    parser.add_argument("--timer", choices=("wall", "cpu"), default="wall",
                        help="wall time, or this thread's CPU time (for a loaded machine)")
    options = parser.parse_args()
    if options.timer == "cpu":
        _harness.clock = time.thread_time
    torch = _harness.torch_or_none()
    if torch is None:
        raise SystemExit("bench_conv compares against torch, which is not installed")
    for layer, shape in LAYERS.items():
        for name, fns in candidates(torch, *shape).items():
            _harness.report(f"{layer}: {name}, batch {BATCH}, 1 thread",
                            _harness.paired(fns, 10, options.repeats), "torch", unit="ms")


if __name__ == "__main__":
    main()
