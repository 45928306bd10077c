"""Optimizer updates in place: the backend's fused ``sgd_step``/``adam_step`` kernels
where it has them (see :data:`flambeau.backends.OPTIONAL_KERNELS`), else
:func:`sgd_step`/:func:`adam_step`, their reference compositions of in-place tensor ops,
which the conformance kit holds the kernels to. Call them under ``no_grad``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .._tensor import Tensor
from ..autograd._engine import bump_version
from . import elementwise as ew
from ._dispatch import fused_kernel
from .inplace import binary_


def sgd_update(params: Sequence[Tensor], grads: Sequence[Tensor],
               bufs: Sequence[Tensor] | None, **options: Any) -> None:
    """One SGD update of ``params`` (and momentum buffers ``bufs``) with the options of
    :func:`sgd_step`: per device, its backend's fused kernel if it has one."""
    for index in _by_device(params):
        chunk = _pick(params, index)
        kernel = fused_kernel("sgd_step", chunk[0])
        if kernel is None:
            sgd_step(chunk, _pick(grads, index), _pick(bufs, index), **options)
        else:
            kernel(chunk, _pick(grads, index), _pick(bufs, index), **options)
            _bump_versions(chunk, _pick(bufs, index))


def adam_update(params: Sequence[Tensor], grads: Sequence[Tensor],
                exp_avgs: Sequence[Tensor], exp_avg_sqs: Sequence[Tensor],
                max_exp_avg_sqs: Sequence[Tensor] | None, **options: Any) -> None:
    """One Adam update with the options of :func:`adam_step`: per device, its backend's
    fused kernel if it has one."""
    for index in _by_device(params):
        chunk = _pick(params, index)
        buffers = [_pick(exp_avgs, index), _pick(exp_avg_sqs, index),
                   _pick(max_exp_avg_sqs, index)]
        kernel = fused_kernel("adam_step", chunk[0])
        if kernel is None:
            adam_step(chunk, _pick(grads, index), *buffers, **options)
        else:
            kernel(chunk, _pick(grads, index), *buffers, **options)
            _bump_versions(chunk, *buffers)


def _by_device(params: Sequence[Tensor]) -> list[list[int] | None]:
    """Positions of ``params`` grouped by kernel set (device), order kept, as a fused
    kernel takes arrays of its own device only; ``[None]`` (everything) for one device."""
    if not params:
        return []
    first = params[0]._k
    for param in params:  # (one device, the common case: no grouping)
        if param._k is not first:
            break
    else:
        return [None]
    groups: dict[int, list[int]] = {}
    for i, param in enumerate(params):
        groups.setdefault(id(param._k), []).append(i)
    return list(groups.values())


def _pick(items: Sequence[Tensor] | None, index: list[int] | None) -> list[Tensor] | None:
    if items is None:
        return None
    if index is None:
        return items if type(items) is list else list(items)
    return [items[i] for i in index]


def _bump_versions(*groups: list[Tensor] | None) -> None:
    """A fused kernel writes arrays in place behind autograd's back: count the writes."""
    for group in groups:
        for t in group or ():
            bump_version(t)


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


def adam_step(params: Sequence[Tensor], grads: Sequence[Tensor], exp_avgs: Sequence[Tensor],
              exp_avg_sqs: Sequence[Tensor], max_exp_avg_sqs: Sequence[Tensor] | None, *,
              step: int, lr: float, beta1: float, beta2: float, eps: float,
              weight_decay: float, decoupled: bool, maximize: bool) -> None:
    """One Adam update in place: the reference composition of the fused kernel
    ``adam_step``. Call under ``no_grad``.

    ``step`` is the step number (1 on the first update) of every parameter given;
    ``max_exp_avg_sqs`` is ``None`` unless AMSGrad; ``grads`` are only read.
    """
    bias_correction1 = 1 - beta1**step
    bias_correction2_sqrt = (1 - beta2**step) ** 0.5
    step_size = lr / bias_correction1
    for i, param in enumerate(params):
        grad = grads[i]
        if maximize:
            grad = -grad
        if weight_decay != 0:
            if decoupled:
                param.mul_(1 - lr * weight_decay)
            else:
                grad = grad.add(param, alpha=weight_decay)
        exp_avg, exp_avg_sq = exp_avgs[i], exp_avg_sqs[i]
        # m + (1 - beta1) * (g - m): PyTorch's lerp_, the same rounding.
        exp_avg.add_(ew.sub(grad, exp_avg), alpha=1 - beta1)
        exp_avg_sq.mul_(beta2).add_(ew.mul(grad, grad), alpha=1 - beta2)
        second = exp_avg_sq
        if max_exp_avg_sqs is not None:
            second = binary_("maximum", max_exp_avg_sqs[i], exp_avg_sq)
        denom = ew.add(ew.div(ew.sqrt(second), bias_correction2_sqrt), eps)
        param.add_(ew.div(exp_avg, denom), alpha=-step_size)
