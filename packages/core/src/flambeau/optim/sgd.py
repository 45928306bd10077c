"""Stochastic gradient descent, with momentum, dampening, Nesterov and weight decay.

Updates run through :func:`flambeau._ops.optim_steps.sgd_update`: the backend's optional
fused kernel ``sgd_step`` (see :data:`flambeau.backends.OPTIONAL_KERNELS`) where it has
one, else :func:`sgd_step`, the reference composition that a kernel must match.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from .._ops.optim_steps import sgd_step, sgd_update
from .optimizer import Optimizer, zeros_like_param


class SGD(Optimizer):
    """SGD, with PyTorch's formulas and options.

    Per parameter, with ``g`` its gradient (negated when ``maximize``)::

        g = g + weight_decay * p
        buf = g (first step) or momentum * buf + (1 - dampening) * g
        g = g + momentum * buf (nesterov) or buf          # when momentum != 0
        p = p - lr * g

    >>> import flambeau
    >>> from flambeau import nn, optim
    >>> net = nn.Linear(3, 1)
    >>> opt = optim.SGD(net.parameters(), lr=0.1, momentum=0.9)
    >>> net(flambeau.ones(2, 3)).sum().backward()
    >>> opt.step(); opt.zero_grad()
    """

    def __init__(self, params: Iterable[Any], lr: float = 1e-3, momentum: float = 0.0,
                 dampening: float = 0.0, weight_decay: float = 0.0, nesterov: bool = False,
                 *, maximize: bool = False) -> None:
        defaults = {"lr": lr, "momentum": momentum, "dampening": dampening,
                    "weight_decay": weight_decay, "nesterov": nesterov, "maximize": maximize}
        super().__init__(params, defaults)

    def _check_group(self, group: dict[str, Any]) -> None:
        self._require_non_negative(group, "lr", "momentum", "weight_decay")
        if group["nesterov"] and (group["momentum"] <= 0 or group["dampening"] != 0):
            raise ValueError("Nesterov momentum requires a momentum and zero dampening, got "
                             f"momentum={group['momentum']}, dampening={group['dampening']}")

    def _step_group(self, group: dict[str, Any]) -> None:
        params = self._params_with_grad(group)
        momentum = group["momentum"]
        options = {"lr": float(group["lr"]), "momentum": float(momentum),
                   "weight_decay": float(group["weight_decay"]),
                   "nesterov": bool(group["nesterov"]), "maximize": bool(group["maximize"])}
        if momentum == 0:
            sgd_update(params, [p.grad for p in params], None,
                       dampening=float(group["dampening"]), **options)
            return
        # A fresh buffer starts as zeros and takes g whole (dampening 0): buf = g, as in
        # PyTorch, so fresh and running buffers go through the same formula.
        fresh, running = [], []
        for param in params:
            state = self.state[param]
            if state.get("momentum_buffer") is None:
                state["momentum_buffer"] = zeros_like_param(param)
                fresh.append(param)
            else:
                running.append(param)
        for chosen, dampening in ((fresh, 0.0), (running, float(group["dampening"]))):
            bufs = [self.state[p]["momentum_buffer"] for p in chosen]
            sgd_update(chosen, [p.grad for p in chosen], bufs, dampening=dampening, **options)



# sgd_step is re-exported: backend authors are told to find the kernel's reference here.
__all__ = ["SGD", "sgd_step"]
