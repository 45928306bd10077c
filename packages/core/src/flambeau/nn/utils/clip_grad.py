"""Gradient clipping: by the total norm of all gradients, or by value (PyTorch's
``torch.nn.utils.clip_grad``).

The total norm is PyTorch's: the norm of the per-gradient norms (each computed on its
gradient's device, then gathered on the first gradient's device), so it equals the norm
of all gradients concatenated into one vector. ``foreach`` is accepted for PyTorch's
signature; flambeau has one implementation, so it changes nothing.
"""

from __future__ import annotations

import types
import warnings
from collections.abc import Iterable

from ..._ops.norms import vector_norm
from ..._ops.shape import cat, stack
from ..._tensor import Tensor
from ...autograd import no_grad

#: What the functions here take: one tensor or an iterable of them.
TensorOrTensors = Tensor | Iterable[Tensor]


def _grads(parameters: Iterable[Tensor]) -> list[Tensor]:
    return [p.grad for p in parameters if p.grad is not None]


def _as_list(parameters: TensorOrTensors) -> list[Tensor]:
    if isinstance(parameters, Tensor):
        return [parameters]
    is_generator = isinstance(parameters, types.GeneratorType)
    parameters = list(parameters)  # a generator can be read only once
    if is_generator and not parameters:
        warnings.warn("`parameters` is an empty generator, no gradient clipping will occur.",
                      stacklevel=3)
    return parameters


def get_total_norm(tensors: TensorOrTensors, norm_type: float = 2.0,
                   error_if_nonfinite: bool = False, foreach: bool | None = None) -> Tensor:
    """The ``norm_type``-norm of ``tensors`` viewed as one vector (``tensor(0.)`` for none).

    Each tensor's norm is computed on its device; the total on the first tensor's device.

    Raises:
        RuntimeError: if ``error_if_nonfinite`` and the total norm is NaN or infinite.
    """
    tensors = [tensors] if isinstance(tensors, Tensor) else list(tensors)
    norm_type = float(norm_type)
    if not tensors:
        from ..._creation import tensor

        return tensor(0.0)
    first_device = tensors[0].device
    by_device: dict = {}
    for t in tensors:
        by_device.setdefault(t.device, []).append(t)
    with no_grad():
        # One transfer per device: its tensors' norms, stacked, go to the first device.
        norms = [stack([vector_norm(t, norm_type) for t in group]).to(first_device)
                 for group in by_device.values()]
        total = vector_norm(cat(norms), norm_type)
        if error_if_nonfinite and not bool(total.isfinite()):
            raise RuntimeError(
                f"The total norm of order {norm_type} for gradients from `parameters` is "
                "non-finite, so it cannot be clipped. To disable this error and scale the "
                "gradients by the non-finite norm anyway, set `error_if_nonfinite=False`")
    return total


def clip_grads_with_norm_(parameters: TensorOrTensors, max_norm: float, total_norm: Tensor,
                          foreach: bool | None = None) -> None:
    """Scale the gradients of ``parameters`` in place by
    ``min(max_norm / (total_norm + 1e-6), 1)``, given a precomputed ``total_norm``."""
    grads = _grads([parameters] if isinstance(parameters, Tensor) else parameters)
    if not grads:
        return
    max_norm = float(max_norm)
    with no_grad():
        # Multiplying by a coefficient clamped to 1 (instead of testing it) keeps the
        # values on the device: no transfer to decide whether to clip.
        coefficient = (max_norm / (total_norm + 1e-6)).clamp(max=1.0)
        on_device = {coefficient.device: coefficient}
        for g in grads:
            if g.device not in on_device:
                on_device[g.device] = coefficient.to(g.device)
            g.mul_(on_device[g.device])


def clip_grad_norm_(parameters: TensorOrTensors, max_norm: float, norm_type: float = 2.0,
                    error_if_nonfinite: bool = False, foreach: bool | None = None) -> Tensor:
    """Scale the gradients of ``parameters`` in place so that their total norm is at most
    ``max_norm``; returns the total norm from before clipping.

    The norm is over all gradients together, as if concatenated into one vector
    (``norm_type`` 2, ``inf`` or any p); parameters without a gradient are skipped. The
    gradients are multiplied by ``min(max_norm / (total_norm + 1e-6), 1)``, as in PyTorch.

    Args:
        parameters: a tensor or an iterable of tensors whose ``.grad`` to clip.
        max_norm: the largest total norm allowed.
        norm_type: the order of the norm (``float('inf')`` for the largest value).
        error_if_nonfinite: raise if the total norm is NaN or infinite (instead of
            scaling the gradients by it).
        foreach: accepted for PyTorch's signature; changes nothing here.

    Raises:
        RuntimeError: if ``error_if_nonfinite`` and the total norm is not finite.

    >>> import flambeau
    >>> from flambeau import nn
    >>> layer = nn.Linear(3, 1)
    >>> layer(flambeau.ones(4, 3)).sum().mul(100).backward()
    >>> total = nn.utils.clip_grad_norm_(layer.parameters(), max_norm=1.0)
    >>> float(total) > 1.0
    True
    >>> round(float(nn.utils.get_total_norm([p.grad for p in layer.parameters()])), 4)
    1.0
    """
    parameters = _as_list(parameters)
    total_norm = get_total_norm(_grads(parameters), norm_type, error_if_nonfinite, foreach)
    clip_grads_with_norm_(parameters, max_norm, total_norm, foreach)
    return total_norm


def clip_grad_norm(parameters: TensorOrTensors, max_norm: float, norm_type: float = 2.0,
                   error_if_nonfinite: bool = False, foreach: bool | None = None) -> Tensor:
    """Deprecated alias of :func:`clip_grad_norm_` (as in PyTorch, with its warning)."""
    warnings.warn("`torch.nn.utils.clip_grad_norm` is now deprecated in favor of "
                  "`torch.nn.utils.clip_grad_norm_`.", FutureWarning, stacklevel=2)
    return clip_grad_norm_(parameters, max_norm, norm_type, error_if_nonfinite, foreach)


def clip_grad_value_(parameters: TensorOrTensors, clip_value: float,
                     foreach: bool | None = None) -> None:
    """Clamp the gradients of ``parameters`` in place to ``[-clip_value, clip_value]``.

    >>> import flambeau
    >>> w = flambeau.zeros(3, requires_grad=True)
    >>> w.grad = flambeau.tensor([-5.0, 0.5, 5.0])
    >>> flambeau.nn.utils.clip_grad_value_(w, 1.0)
    >>> w.grad
    tensor([-1.0000,  0.5000,  1.0000])
    """
    clip_value = float(clip_value)
    with no_grad():
        for g in _grads([parameters] if isinstance(parameters, Tensor) else parameters):
            g.clamp_(min=-clip_value, max=clip_value)
