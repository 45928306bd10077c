"""Stochastic gradient descent, with momentum, dampening, Nesterov and weight decay.

:func:`sgd_step` is the reference composition of the optional fused kernel
``sgd_step`` (see :data:`flambeau.backends.OPTIONAL_KERNELS`): a backend that provides
the kernel must match it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from .._tensor import Tensor
from .optimizer import Optimizer, partition_by_device, zeros_like_param


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
        if group["lr"] < 0.0:
            raise ValueError(f"Invalid learning rate: {group['lr']} (must be >= 0)")
        if group["momentum"] < 0.0:
            raise ValueError(f"Invalid momentum value: {group['momentum']} (must be >= 0)")
        if group["weight_decay"] < 0.0:
            raise ValueError(f"Invalid weight_decay value: {group['weight_decay']} "
                             "(must be >= 0)")
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
            for chunk in partition_by_device(params):
                _run(chunk, None, dampening=float(group["dampening"]), **options)
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
            for chunk in partition_by_device(chosen):
                bufs = [self.state[p]["momentum_buffer"] for p in chunk]
                _run(chunk, bufs, dampening=dampening, **options)


def _run(params: list[Tensor], bufs: list[Tensor] | None, **options: Any) -> None:
    """The fused kernel of the parameters' backend if it has one, else the composition."""
    if not params:
        return
    fused = getattr(params[0]._k, "sgd_step", None)
    if fused is None:
        sgd_step(params, [p.grad for p in params], bufs, **options)
        return
    fused([p._data for p in params], [p.grad._data for p in params],
          None if bufs is None else [b._data for b in bufs], **options)
    for t in params + (bufs or []):
        t._version[0] += 1


def sgd_step(params: Sequence[Tensor], grads: Sequence[Tensor],
             bufs: Sequence[Tensor] | None, *, lr: float, momentum: float, dampening: float,
             weight_decay: float, nesterov: bool, maximize: bool) -> None:
    """One SGD update of ``params`` (and ``bufs``) in place: the reference composition of
    the fused kernel ``sgd_step``. Call under ``no_grad``.

    ``bufs`` are the momentum buffers (``None`` without momentum), always updated as
    ``momentum * buf + (1 - dampening) * g``; ``grads`` are only read.
    """
    for i, param in enumerate(params):
        grad = grads[i]
        if maximize:
            grad = -grad
        if weight_decay != 0:
            grad = grad.add(param, alpha=weight_decay)
        if bufs is not None:
            buf = bufs[i]
            buf.mul_(momentum).add_(grad, alpha=1 - dampening)
            grad = grad.add(buf, alpha=momentum) if nesterov else buf
        param.add_(grad, alpha=-lr)
