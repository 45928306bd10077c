"""``einsum``: Einstein summation, composed of differentiable ops.

Each operand first takes the diagonal of a label it repeats (``ii``) and sums away the
labels no other operand nor the output names; operands are then contracted left to
right, each pair as one batched ``matmul`` (shared labels the rest still needs are the
batch, the others are summed), and the result is permuted into the output's order.
Gradients come from those ops.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .._tensor import Tensor
from ..errors import ShapeError
from ._common import to_tensor
from .elementwise import mul
from .linalg import matmul
from .reduction import sum as _sum
from .shape import expand, permute, reshape


def einsum(equation: str, *operands: Any) -> Tensor:
    """Sum of products of ``operands`` over the labels of ``equation`` (``"ij,jk->ik"``,
    ``"bhqd,bhkd->bhqk"``, ``"ii->i"``, ``"...ij->...ji"``; without ``->`` the output
    holds the labels named once, sorted). Operands may come as one list.

    >>> import flambeau
    >>> flambeau.einsum("ij,j->i", flambeau.ones(2, 3), flambeau.arange(3.0))
    tensor([3., 3.])
    """
    if len(operands) == 1 and isinstance(operands[0], (list, tuple)):
        operands = tuple(operands[0])
    inputs, arrow, output = equation.replace(" ", "").partition("->")
    terms = inputs.split(",")
    if len(terms) != len(operands):
        raise ValueError(f"einsum: the equation names {len(terms)} operands, got "
                         f"{len(operands)}")
    spans = [op.ndim - len(t) + 3 for t, op in zip(terms, operands) if "..." in t]
    dots = "".join(chr(0x2460 + i) for i in range(max(spans, default=0)))  # labels for "..."
    labels = []
    for term, op in zip(terms, operands):
        if "..." in term:
            term = term.replace("...", dots[len(dots) - (op.ndim - len(term) + 3):])
        if len(term) != op.ndim:
            raise ShapeError(f"einsum: {term!r} names {len(term)} dimensions, but the "
                             f"operand has {op.ndim} (shape {list(op.shape)})")
        labels.append(term)
    every = "".join(labels)
    output = output.replace("...", dots) if arrow else dots + "".join(
        sorted(c for c in set(every) if every.count(c) == 1 and c not in dots))
    sizes: dict[str, int] = {}
    for term, op in zip(labels, operands):
        for c, size in zip(term, op._data.shape):
            if size != 1 and sizes.get(c, 1) not in (1, size):
                raise ShapeError(f"einsum: label {c!r} has sizes {sizes[c]} and {size}")
            sizes[c] = size if size != 1 else sizes.get(c, 1)
    ops = [_diagonal(expand(op, [sizes[c] for c in term]), term)
           for term, op in zip(labels, operands)]
    x, lx = ops[0]
    for i, (y, ly) in enumerate(ops[1:], 2):
        x, lx = _contract(x, lx, y, ly, set(output).union(*labels[i:]), sizes)
    x, lx = _sum_out(x, lx, set(output))
    return permute(x, [lx.index(c) for c in output])


def _diagonal(x: Tensor, term: str) -> tuple[Tensor, str]:
    """``x`` with each label of ``term`` once: a repeated one keeps the diagonal."""
    for c in sorted(set(term)):
        while term.count(c) > 1:
            p, q = term.index(c), term.rindex(c)
            shape = [1] * x.ndim
            shape[p] = shape[q] = x._data.shape[p]
            eye = to_tensor(np.eye(shape[p]).reshape(shape), x, x.dtype)
            x, term = _sum(mul(x, eye), q), term[:q] + term[q + 1:]
    return x, term


def _sum_out(x: Tensor, term: str, keep: set[str]) -> tuple[Tensor, str]:
    axes = tuple(i for i, c in enumerate(term) if c not in keep)
    return (_sum(x, axes), "".join(c for c in term if c in keep)) if axes else (x, term)


def _contract(a: Tensor, la: str, b: Tensor, lb: str, keep: set[str],
              sizes: dict[str, int]) -> tuple[Tensor, str]:
    """``a * b`` summed over their shared labels not in ``keep``: one batched matmul."""
    a, la = _sum_out(a, la, keep | set(lb))
    b, lb = _sum_out(b, lb, keep | set(la))
    batch = [c for c in la if c in lb and c in keep]
    summed = [c for c in la if c in lb and c not in keep]
    left, right = [c for c in la if c not in lb], [c for c in lb if c not in la]

    def size(labels: list[str]) -> int:
        return math.prod(sizes[c] for c in labels)

    a = reshape(permute(a, [la.index(c) for c in batch + left + summed]),
                (size(batch), size(left), size(summed)))
    b = reshape(permute(b, [lb.index(c) for c in batch + summed + right]),
                (size(batch), size(summed), size(right)))
    out = reshape(matmul(a, b), [sizes[c] for c in batch + left + right])
    return out, "".join(batch + left + right)
