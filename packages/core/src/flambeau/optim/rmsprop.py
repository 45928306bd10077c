"""RMSprop (Hinton's lecture 6e), centred variant and momentum as in PyTorch."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from .._ops import elementwise as ew
from .optimizer import Optimizer, zeros_like_param


class RMSprop(Optimizer):
    """RMSprop, with PyTorch's formulas and options.

    Per parameter, with ``g`` its gradient (negated when ``maximize``)::

        g = g + weight_decay * p
        v = alpha * v + (1 - alpha) * g * g
        avg = sqrt(v - g_avg**2) + eps, g_avg = alpha * g_avg + (1 - alpha) * g  (centered)
        avg = sqrt(v) + eps                                                     (otherwise)
        buf = momentum * buf + g / avg; p = p - lr * buf        (momentum > 0)
        p = p - lr * g / avg                                    (otherwise)

    State per parameter: ``step``, ``square_avg`` (and ``momentum_buffer``,
    ``grad_avg``).

    >>> from flambeau import nn, optim
    >>> opt = optim.RMSprop(nn.Linear(3, 1).parameters(), lr=0.01, alpha=0.9)
    """

    def __init__(self, params: Iterable[Any], lr: float = 1e-2, alpha: float = 0.99,
                 eps: float = 1e-8, weight_decay: float = 0.0, momentum: float = 0.0,
                 centered: bool = False, *, maximize: bool = False) -> None:
        defaults = {"lr": lr, "alpha": alpha, "eps": eps, "weight_decay": weight_decay,
                    "momentum": momentum, "centered": centered, "maximize": maximize}
        super().__init__(params, defaults)

    def _check_group(self, group: dict[str, Any]) -> None:
        self._require_non_negative(group, "lr", "eps", "momentum", "weight_decay", "alpha")

    def _step_group(self, group: dict[str, Any]) -> None:
        lr, alpha, eps = float(group["lr"]), float(group["alpha"]), float(group["eps"])
        weight_decay, momentum = float(group["weight_decay"]), float(group["momentum"])
        for param in self._params_with_grad(group):
            state = self.state[param]
            if not state:
                state["step"] = 0
                state["square_avg"] = zeros_like_param(param)
            if momentum > 0 and "momentum_buffer" not in state:
                state["momentum_buffer"] = zeros_like_param(param)
            if group["centered"] and "grad_avg" not in state:
                state["grad_avg"] = zeros_like_param(param)
            state["step"] += 1
            grad = param.grad
            if group["maximize"]:
                grad = -grad
            if weight_decay != 0:
                grad = grad.add(param, alpha=weight_decay)
            square_avg = state["square_avg"]
            square_avg.mul_(alpha).add_(ew.mul(grad, grad), alpha=1 - alpha)
            if group["centered"]:
                grad_avg = state["grad_avg"]
                grad_avg.add_(ew.sub(grad, grad_avg), alpha=1 - alpha)
                avg = ew.sqrt(ew.sub(square_avg, ew.mul(grad_avg, grad_avg)))
            else:
                avg = ew.sqrt(square_avg)
            avg = ew.add(avg, eps)
            if momentum > 0:
                buf = state["momentum_buffer"]
                buf.mul_(momentum).add_(ew.div(grad, avg))
                param.add_(buf, alpha=-lr)
            else:
                param.add_(ew.div(grad, avg), alpha=-lr)
