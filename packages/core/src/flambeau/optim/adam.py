"""Adam and AdamW (Kingma & Ba; Loshchilov & Hutter), with AMSGrad.

Updates run through :func:`flambeau._ops.optim_steps.adam_update`: the backend's
optional fused kernel ``adam_step`` (see :data:`flambeau.backends.OPTIONAL_KERNELS`)
where it has one, else :func:`adam_step`, its reference composition.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from .._ops.optim_steps import adam_step, adam_update
from .._tensor import Tensor
from .optimizer import Optimizer, zeros_like_param


class Adam(Optimizer):
    """Adam, with PyTorch's formulas and options.

    Per parameter at step ``t``, with ``g`` its gradient (negated when ``maximize``)::

        g = g + weight_decay * p       (or p = p * (1 - lr * weight_decay) if decoupled)
        m = beta1 * m + (1 - beta1) * g
        v = beta2 * v + (1 - beta2) * g * g
        v_max = max(v_max, v)          (amsgrad; used instead of v below)
        p = p - lr / (1 - beta1**t) * m / (sqrt(v) / sqrt(1 - beta2**t) + eps)

    State per parameter: ``step``, ``exp_avg``, ``exp_avg_sq`` (and ``max_exp_avg_sq``).

    >>> from flambeau import nn, optim
    >>> opt = optim.Adam(nn.Linear(3, 1).parameters(), lr=1e-3, betas=(0.9, 0.999))
    """

    def __init__(self, params: Iterable[Any], lr: float = 1e-3,
                 betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0.0, amsgrad: bool = False, *, maximize: bool = False,
                 decoupled_weight_decay: bool = False) -> None:
        defaults = {"lr": lr, "betas": tuple(betas), "eps": eps, "weight_decay": weight_decay,
                    "amsgrad": amsgrad, "maximize": maximize,
                    "decoupled_weight_decay": decoupled_weight_decay}
        super().__init__(params, defaults)

    def _check_group(self, group: dict[str, Any]) -> None:
        self._require_non_negative(group, "lr", "eps")
        betas = group["betas"]
        if len(betas) != 2:
            raise ValueError(f"betas must be a pair (beta1, beta2), got {betas!r}")
        for i, beta in enumerate(betas):
            if not 0.0 <= beta < 1.0:
                raise ValueError(f"Invalid beta parameter at index {i}: {beta} (must be in "
                                 "[0, 1))")
        self._require_non_negative(group, "weight_decay")

    def _step_group(self, group: dict[str, Any]) -> None:
        amsgrad = bool(group["amsgrad"])
        by_step: dict[int, list[Tensor]] = {}
        for param in self._params_with_grad(group):
            state = self.state[param]
            if not state:
                state["step"] = 0
                state["exp_avg"] = zeros_like_param(param)
                state["exp_avg_sq"] = zeros_like_param(param)
            if amsgrad and "max_exp_avg_sq" not in state:
                state["max_exp_avg_sq"] = zeros_like_param(param)
            state["step"] += 1
            by_step.setdefault(state["step"], []).append(param)
        beta1, beta2 = group["betas"]
        options = {"lr": float(group["lr"]), "beta1": float(beta1), "beta2": float(beta2),
                   "eps": float(group["eps"]), "weight_decay": float(group["weight_decay"]),
                   "decoupled": bool(group["decoupled_weight_decay"]),
                   "maximize": bool(group["maximize"])}
        for step, params in by_step.items():
            states = [self.state[p] for p in params]
            adam_update(params, [p.grad for p in params], [s["exp_avg"] for s in states],
                        [s["exp_avg_sq"] for s in states],
                        [s["max_exp_avg_sq"] for s in states] if amsgrad else None,
                        step=step, **options)


class AdamW(Adam):
    """Adam with decoupled weight decay: ``p = p * (1 - lr * weight_decay)`` before the
    Adam update, instead of adding ``weight_decay * p`` to the gradient.

    >>> from flambeau import nn, optim
    >>> opt = optim.AdamW(nn.Linear(3, 1).parameters(), lr=1e-3, weight_decay=1e-2)
    """

    def __init__(self, params: Iterable[Any], lr: float = 1e-3,
                 betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 1e-2, amsgrad: bool = False, *,
                 maximize: bool = False) -> None:
        super().__init__(params, lr, betas, eps, weight_decay, amsgrad, maximize=maximize,
                         decoupled_weight_decay=True)



# adam_step is re-exported: backend authors are told to find the kernel's reference here.
__all__ = ["Adam", "AdamW", "adam_step"]
