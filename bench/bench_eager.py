"""Eager overhead: a tiny add and a tiny autograd step, flambeau vs torch vs bare numpy.

Run: python bench/bench_eager.py   (prints medians of paired rounds, and ratios)
"""

from __future__ import annotations

import _harness  # first: pins BLAS/torch threads before they load
import numpy as np

import flambeau


def main(number: int = 20000, repeats: int = 7) -> None:
    torch = _harness.torch_or_none()
    a, b = flambeau.ones(1), flambeau.ones(1)
    na, nb = np.ones(1, np.float32), np.ones(1, np.float32)
    adds = {"flambeau a + b": lambda: a + b, "numpy np.add(a, b)": lambda: np.add(na, nb)}
    if torch is not None:
        ta, tb = torch.ones(1), torch.ones(1)
        adds["torch a + b"] = lambda: ta + tb
    baseline = "torch a + b" if torch is not None else "numpy np.add(a, b)"
    _harness.report("tiny add, no grad (1-element float32)",
                    _harness.paired(adds, number, repeats), baseline)

    ga = flambeau.ones(1, requires_grad=True)
    gb = flambeau.ones(1, requires_grad=True)

    def flambeau_step():
        (ga * gb).sum().backward()

    steps = {"flambeau (a*b).sum().backward()": flambeau_step}
    if torch is not None:
        xa = torch.ones(1, requires_grad=True)
        xb = torch.ones(1, requires_grad=True)

        def torch_step():
            (xa * xb).sum().backward()

        steps["torch (a*b).sum().backward()"] = torch_step
    baseline = "torch (a*b).sum().backward()" if torch is not None else next(iter(steps))
    _harness.report("tiny autograd step", _harness.paired(steps, number // 10, repeats),
                    baseline)


if __name__ == "__main__":
    main()
