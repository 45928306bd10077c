"""Checking analytic gradients against central finite differences in float64."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from ._engine import AutogradError


def gradcheck(fn: Callable[..., Any], inputs: Sequence[Any], *, eps: float = 1e-6,
              atol: float = 1e-5, rtol: float = 1e-3, raise_exception: bool = True) -> bool:
    """Compare ``fn``'s autograd gradients with finite differences.

    Inputs that require grad must be float64 (float32 differences are too coarse). Each
    output element's gradient (a vector-Jacobian product with a one-hot vector) is
    compared with ``(fn(x + eps) - fn(x - eps)) / (2 eps)`` for every input element.

    Returns:
        True when all gradients match; otherwise raises (or returns False).
    """
    from .. import _creation
    from . import grad, no_grad

    inputs = list(inputs) if isinstance(inputs, (list, tuple)) else [inputs]
    tracked = [i for i, x in enumerate(inputs) if getattr(x, "requires_grad", False)]
    for i in tracked:
        if inputs[i].dtype != np.float64:
            raise AutogradError(f"gradcheck: input {i} is {inputs[i].dtype}; use float64 "
                                "inputs (x.double()) for a meaningful check")

    def outputs_of(args: list) -> list:
        out = fn(*args)
        return list(out) if isinstance(out, (list, tuple)) else [out]

    def evaluate(args: list) -> list[np.ndarray]:
        with no_grad():
            return [o.numpy(force=True).astype(np.float64) for o in outputs_of(args)]

    outputs = outputs_of(inputs)
    for k, out in enumerate(outputs):
        flat_size = out.numel()
        for j in range(flat_size):
            onehot = np.zeros(flat_size)
            onehot[j] = 1.0
            seed = _creation.tensor(onehot.reshape(out.shape), dtype=out.dtype,
                                    device=out.device)
            analytic = grad(out, [inputs[i] for i in tracked], seed, retain_graph=True,
                            allow_unused=True)
            for which, i in enumerate(tracked):
                numeric = _numeric_row(evaluate, inputs, i, k, j, eps)
                got = analytic[which]
                got = np.zeros_like(numeric) if got is None else got.numpy(force=True)
                if not np.allclose(got, numeric, atol=atol, rtol=rtol):
                    message = (f"gradcheck: gradient of output {k}[{j}] with respect to input "
                               f"{i} differs:\nanalytic {got.ravel()}\nnumeric  "
                               f"{numeric.ravel()}")
                    if raise_exception:
                        raise AutogradError(message)
                    return False
    return True


def _numeric_row(evaluate: Callable, inputs: list, i: int, k: int, j: int,
                 eps: float) -> np.ndarray:
    from .. import _creation

    base = inputs[i].numpy(force=True)
    row = np.zeros(base.size)
    for p in range(base.size):
        values = []
        for step in (eps, -eps):
            shifted = base.copy().ravel()
            shifted[p] += step
            args = list(inputs)
            args[i] = _creation.tensor(shifted.reshape(base.shape), dtype=base.dtype,
                                       device=inputs[i].device)
            values.append(evaluate(args)[k].ravel()[j])
        row[p] = (values[0] - values[1]) / (2 * eps)
    return row.reshape(base.shape)
