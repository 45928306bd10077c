"""Adagrad (Duchi et al.) and Adadelta (Zeiler), with PyTorch's formulas and options."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from .._ops import elementwise as ew
from .._ops._common import full_like_device
from .optimizer import Optimizer, zeros_like_param


class Adagrad(Optimizer):
    """Adagrad, with PyTorch's formulas and options.

    Per parameter at step ``t``, with ``g`` its gradient (negated when ``maximize``)::

        g = g + weight_decay * p
        sum = sum + g * g
        p = p - lr / (1 + (t - 1) * lr_decay) * g / (sqrt(sum) + eps)

    State per parameter: ``step`` and ``sum``, which starts at
    ``initial_accumulator_value`` (the constructor's: as in PyTorch, a group's own value
    is not used).

    >>> from flambeau import nn, optim
    >>> opt = optim.Adagrad(nn.Linear(3, 1).parameters(), lr=0.1)
    """

    def __init__(self, params: Iterable[Any], lr: float = 1e-2, lr_decay: float = 0.0,
                 weight_decay: float = 0.0, initial_accumulator_value: float = 0.0,
                 eps: float = 1e-10, *, maximize: bool = False) -> None:
        defaults = {"lr": lr, "lr_decay": lr_decay, "eps": eps, "weight_decay": weight_decay,
                    "initial_accumulator_value": initial_accumulator_value,
                    "maximize": maximize}
        super().__init__(params, defaults)
        # PyTorch fills the state at construction (a state dict has it before any step);
        # a lazy parameter gets its state at its first step instead.
        for group in self.param_groups:
            for param in group["params"]:
                lazy = getattr(param, "is_uninitialized", None)
                if lazy is None or not lazy():
                    self._init_state(param)

    def _check_group(self, group: dict[str, Any]) -> None:
        self._require_non_negative(group, "lr", "lr_decay", "weight_decay",
                                   "initial_accumulator_value", "eps")

    def _init_state(self, param: Any) -> dict[str, Any]:
        state = self.state[param]
        if not state:
            state["step"] = 0
            state["sum"] = full_like_device(self.defaults["initial_accumulator_value"],
                                            tuple(param.shape), param.dtype, param)
        return state

    def _step_group(self, group: dict[str, Any]) -> None:
        lr, lr_decay, eps = float(group["lr"]), float(group["lr_decay"]), float(group["eps"])
        weight_decay = float(group["weight_decay"])
        for param in self._params_with_grad(group):
            state = self._init_state(param)
            state["step"] += 1
            grad = -param.grad if group["maximize"] else param.grad
            if weight_decay != 0:
                grad = grad.add(param, alpha=weight_decay)
            clr = lr / (1 + (state["step"] - 1) * lr_decay)
            state["sum"].add_(ew.mul(grad, grad))
            std = ew.add(ew.sqrt(state["sum"]), eps)
            param.add_(ew.div(grad, std), alpha=-clr)


class Adadelta(Optimizer):
    """Adadelta, with PyTorch's formulas and options.

    Per parameter, with ``g`` its gradient (negated when ``maximize``)::

        g = g + weight_decay * p
        v = rho * v + (1 - rho) * g * g
        delta = sqrt(u + eps) / sqrt(v + eps) * g
        u = rho * u + (1 - rho) * delta * delta
        p = p - lr * delta

    State per parameter: ``step``, ``square_avg`` (``v``) and ``acc_delta`` (``u``).

    >>> from flambeau import nn, optim
    >>> opt = optim.Adadelta(nn.Linear(3, 1).parameters(), lr=1.0, rho=0.9)
    """

    def __init__(self, params: Iterable[Any], lr: float = 1.0, rho: float = 0.9,
                 eps: float = 1e-6, weight_decay: float = 0.0, *,
                 maximize: bool = False) -> None:
        defaults = {"lr": lr, "rho": rho, "eps": eps, "weight_decay": weight_decay,
                    "maximize": maximize}
        super().__init__(params, defaults)

    def _check_group(self, group: dict[str, Any]) -> None:
        self._require_non_negative(group, "lr")
        if not 0.0 <= group["rho"] <= 1.0:
            raise ValueError(f"Invalid rho value: {group['rho']} (must be in [0, 1])")
        self._require_non_negative(group, "eps", "weight_decay")

    def _step_group(self, group: dict[str, Any]) -> None:
        lr, rho, eps = float(group["lr"]), float(group["rho"]), float(group["eps"])
        weight_decay = float(group["weight_decay"])
        for param in self._params_with_grad(group):
            state = self.state[param]
            if not state:
                state["step"] = 0
                state["square_avg"] = zeros_like_param(param)
                state["acc_delta"] = zeros_like_param(param)
            state["step"] += 1
            grad = -param.grad if group["maximize"] else param.grad
            if weight_decay != 0:
                grad = grad.add(param, alpha=weight_decay)
            square_avg, acc_delta = state["square_avg"], state["acc_delta"]
            square_avg.mul_(rho).add_(ew.mul(grad, grad), alpha=1 - rho)
            std = ew.sqrt(ew.add(square_avg, eps))
            delta = ew.mul(ew.div(ew.sqrt(ew.add(acc_delta, eps)), std), grad)
            acc_delta.mul_(rho).add_(ew.mul(delta, delta), alpha=1 - rho)
            param.add_(delta, alpha=-lr)


__all__ = ["Adadelta", "Adagrad"]
