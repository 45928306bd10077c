"""What mypy must see of ``flambeau.Tensor`` (checked by tests/test_typing.py).

``surface`` is never called: mypy reads it. A line ending in ``# E: <code>`` must fail
with that mypy error code; every other line must pass. ``assert_type`` fails on ``Any``
too, so these lines also prove that the methods bound at import are declared with their
types rather than falling back to ``Any`` (which would let any misspelt method through).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import flambeau
import flambeau as torch
from flambeau import Size, Tensor, nn

if TYPE_CHECKING:  # typing.assert_type is Python 3.11+; mypy knows typing_extensions
    from typing_extensions import assert_type


def surface() -> None:
    x = flambeau.ones(2, 3)
    y = torch.randn(3, 2)
    assert_type(x, Tensor)
    assert_type(x.sum(), Tensor)
    assert_type(x.sum(dim=1, keepdim=True), Tensor)
    assert_type(x.mean(0).exp().log1p().clamp(max=1.0), Tensor)
    assert_type(x.T, Tensor)
    assert_type(x.mT, Tensor)
    assert_type(x + 1, Tensor)
    assert_type(1 + x, Tensor)
    assert_type(2.0 * x - x / 3 - 1, Tensor)
    assert_type(x**2, Tensor)
    assert_type(x @ y, Tensor)
    assert_type(x[0], Tensor)
    assert_type(x[:, 1:], Tensor)
    assert_type(x == y.T, Tensor)
    assert_type(x > 0, Tensor)
    assert_type(-x, Tensor)
    assert_type(abs(x), Tensor)
    assert_type(x.reshape(3, 2).view(-1).unsqueeze(0), Tensor)
    assert_type(x.chunk(2), tuple[Tensor, ...])
    assert_type(x.float().to("cpu").cuda(), Tensor)
    assert_type(x.add_(1).zero_(), Tensor)
    assert_type(x.shape, Size)
    assert_type(x.item(), bool | int | float)
    assert_type(x.grad, Tensor | None)
    assert_type(x.requires_grad, bool)
    assert_type(x.device, torch.Device)
    assert_type(nn.Linear(3, 2).weight, nn.Parameter)
    assert_type(nn.Parameter(x).sum(), Tensor)
    x += 1
    x[0, 0] = 2.0

    x.frobnicate()  # E: attr-defined
    x.sum(dimm=0)  # E: call-arg
    x.T = y  # E: misc
    total: int = x.sum()  # E: assignment
    print(total)
    x @ 2  # E: operator
    x.reshape(3, 2).t().frobnicate()  # E: attr-defined
    torch.frobnicate(x)  # E: attr-defined
