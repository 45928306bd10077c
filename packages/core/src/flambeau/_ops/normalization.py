"""Normalisation functions: batch_norm, layer_norm, group_norm.

Written once against the tensor ops, so every backend runs them. Two operations carry
the normalisations, each with its own backward rule, and each uses the backend's
optional fused kernel of the same name where there is one (see
:data:`flambeau.backends.OPTIONAL_KERNELS`):

* ``layer_norm(x, weight, bias, axes, eps)``: standardise over ``axes`` with the batch's
  statistics, then the affine part (layer norm, group norm, training-mode batch norm);
* ``batch_norm(x, weight, bias, mean, var, eps)``: the same with given statistics
  (eval-mode batch norm).

:func:`layer_norm_reference` and :func:`batch_norm_reference` are the compositions that
fused kernels are checked against.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .._dtypes import is_bfloat16
from .._tensor import Tensor
from ..autograd import no_grad
from ..autograd._engine import record
from ..autograd._mode import STATE
from ..errors import DTypeError, ShapeError
from . import elementwise as ew
from . import reduction
from ._common import cast, in_float32, needs_grad, require_float, same_device, unbroadcast
from ._dispatch import fused_kernel
from .shape import reshape


def layer_norm_reference(x: Tensor, weight: Tensor | None, bias: Tensor | None,
                         axes: tuple[int, ...], eps: float) -> tuple[Tensor, Tensor, Tensor]:
    """``(y, mean, var)``: the mean and biased variance of ``x`` over ``axes`` (kept as
    size-1 dimensions) and ``y = (x - mean) / sqrt(var + eps) * weight + bias``, as a
    composition of tensor ops (the reference for the fused ``layer_norm`` kernel)."""
    xhat, mean, var, _ = _statistics(x, axes, eps)
    return _scale_shift(xhat, weight, bias), mean, var


def batch_norm_reference(x: Tensor, weight: Tensor | None, bias: Tensor | None,
                         mean: Tensor, var: Tensor, eps: float) -> Tensor:
    """``(x - mean) / sqrt(var + eps) * weight + bias`` as a composition (the reference
    for the fused ``batch_norm`` kernel)."""
    return _scale_shift(ew.mul(ew.sub(x, mean), ew.rsqrt(ew.add(var, eps))), weight, bias)


def _statistics(x: Tensor, axes: tuple[int, ...],
                eps: float) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """(xhat, mean, var, invstd) over ``axes``, reduced axes kept."""
    mean = reduction.mean(x, axes, keepdim=True)
    centered = ew.sub(x, mean)
    var = reduction.mean(ew.mul(centered, centered), axes, keepdim=True)
    invstd = ew.rsqrt(ew.add(var, eps))
    return ew.mul(centered, invstd), mean, var, invstd


def _scale_shift(x: Tensor, weight: Tensor | None, bias: Tensor | None) -> Tensor:
    if weight is not None:
        x = ew.mul(x, weight)
    return x if bias is None else ew.add(x, bias)


def normalize_op(x: Tensor, weight: Tensor | None, bias: Tensor | None,
                 axes: tuple[int, ...], eps: float, name: str = "NativeLayerNormBackward0",
                 fused: bool = True) -> tuple[Tensor, Tensor, Tensor]:
    """``(y, mean, var)`` as :func:`layer_norm_reference` (``weight``/``bias`` broadcast
    against ``x``); mean and var are outside the graph.

    One recorded operation instead of the composition's ten or so: the gradient in closed
    form, ``invstd * (gx - mean(gx) - xhat * mean(gx * xhat))`` with ``gx = g * weight``,
    is cheaper (bench/bench_norm.py) and lets a fused forward kernel stand in.
    """
    weight, bias = _as_dtype(weight, x), _as_dtype(bias, x)
    kernel = fused_kernel("layer_norm", x, fused)
    if kernel is not None:
        y, mean, var = kernel(x, weight, bias, axes, eps)
    else:
        with no_grad():  # one node, with the closed-form gradient, is recorded below
            y, mean, var = layer_norm_reference(x, weight, bias, axes, eps)
    if needs_grad(x, weight, bias):

        def backward(g: Tensor) -> tuple:
            # xhat is rebuilt from x rather than kept: the output may change in place.
            if STATE.enabled:  # create_graph: from x alone, so that it is differentiable
                xhat, _, _, invstd = _statistics(x, axes, eps)
            else:
                invstd = ew.rsqrt(ew.add(var, eps))
                xhat = ew.mul(ew.sub(x, mean), invstd)
            gx = g if weight is None else ew.mul(g, weight)
            gx_mean = reduction.mean(gx, axes, keepdim=True)
            gxx_mean = reduction.mean(ew.mul(gx, xhat), axes, keepdim=True)
            grad_x = ew.mul(ew.sub(ew.sub(gx, gx_mean), ew.mul(xhat, gxx_mean)), invstd) \
                if x.requires_grad else None
            grad_w = unbroadcast(ew.mul(g, xhat), weight._data.shape) \
                if weight is not None and weight.requires_grad else None
            grad_b = unbroadcast(g, bias._data.shape) \
                if bias is not None and bias.requires_grad else None
            return grad_x, grad_w, grad_b

        record(y, name, (x, weight, bias), backward, tuple(t for t in (x, weight)
                                                           if t is not None))
    return y, mean, var


def batch_norm_op(x: Tensor, weight: Tensor | None, bias: Tensor | None, mean: Tensor,
                  var: Tensor, eps: float, fused: bool = True) -> Tensor:
    """:func:`batch_norm_reference` with the backend's fused ``batch_norm`` kernel where
    it has one (differentiable in ``x``, ``weight`` and ``bias``, not in the statistics)."""
    weight, bias = _as_dtype(weight, x), _as_dtype(bias, x)
    mean, var = _as_dtype(mean, x), _as_dtype(var, x)
    kernel = fused_kernel("batch_norm", x, fused)
    if kernel is None:
        return batch_norm_reference(x, weight, bias, mean.detach(), var.detach(), eps)
    y = kernel(x, weight, bias, mean, var, eps)
    if needs_grad(x, weight, bias):

        def backward(g: Tensor) -> tuple:
            invstd = ew.rsqrt(ew.add(var, eps))
            scale = invstd if weight is None else ew.mul(weight, invstd)
            grad_x = unbroadcast(ew.mul(g, scale), x._data.shape) if x.requires_grad else None
            grad_w = unbroadcast(ew.mul(g, ew.mul(ew.sub(x, mean), invstd)),
                                 weight._data.shape) \
                if weight is not None and weight.requires_grad else None
            grad_b = unbroadcast(g, bias._data.shape) \
                if bias is not None and bias.requires_grad else None
            return grad_x, grad_w, grad_b

        record(y, "NativeBatchNormBackward0", (x, weight, bias), backward,
               tuple(t for t in (x, weight) if t is not None))
    return y


def _as_dtype(t: Tensor | None, like: Tensor) -> Tensor | None:
    """``t`` with ``like``'s dtype (fused kernels take one dtype), checked to be on its
    device."""
    if t is None:
        return None
    same_device("normalization", like, t)
    return cast(t, like.dtype)


def _reshaped(t: Tensor | None, shape: tuple[int, ...]) -> Tensor | None:
    return None if t is None else reshape(t, shape)


def _bfloat16_input(op: str, input: Tensor, *params: Tensor | None) -> bool:
    """True for a bfloat16 input, which runs in float32 with parameters of either dtype, as
    in PyTorch's CPU kernels; a float input with bfloat16 parameters is refused, as there."""
    if is_bfloat16(input.dtype):
        return True
    if any(p is not None and is_bfloat16(p.dtype) for p in params):
        raise DTypeError(f"{op}: a {input.dtype} input with bfloat16 parameters or "
                         f"statistics; convert them with .to({input.dtype}) (bfloat16 "
                         "inputs may have float32 ones)")
    return False


def _check_vector(op: str, name: str, t: Tensor | None, size: int, input: Tensor) -> None:
    if t is not None and tuple(t.shape) != (size,):
        raise ShapeError(f"{op}: {name} must have shape [{size}] to match the {size} "
                         f"channels of the input of shape {list(input.shape)}, got "
                         f"shape {list(t.shape)}")


def batch_norm(input: Tensor, running_mean: Tensor | None, running_var: Tensor | None,
               weight: Tensor | None = None, bias: Tensor | None = None,
               training: bool = False, momentum: float = 0.1, eps: float = 1e-5) -> Tensor:
    """Normalise each channel (dimension 1) of an ``(N, C, ...)`` input.

    Training: with the batch's mean and biased variance; ``running_mean`` and
    ``running_var`` (when given) move towards the batch mean and *unbiased* variance by
    ``momentum``, in place, as in PyTorch. Otherwise: with the running statistics.

    >>> import flambeau
    >>> x = flambeau.tensor([[0.0], [2.0]])
    >>> mean, var = flambeau.zeros(1), flambeau.ones(1)
    >>> batch_norm(x, mean, var, training=True, eps=0.0).tolist()
    [[-1.0], [1.0]]
    >>> mean.tolist(), var.tolist()  # 0.9 * 0 + 0.1 * 1, 0.9 * 1 + 0.1 * 2
    ([0.10000000149011612], [1.100000023841858])
    """
    require_float("batch_norm", input)
    if _bfloat16_input("batch_norm", input, running_mean, running_var, weight, bias):
        # The running statistics stay out of in_float32: they are updated in place.
        return in_float32(lambda x, w, b: _batch_norm(x, running_mean, running_var, w, b,
                                                      training, momentum, eps),
                          input, weight, bias)
    return _batch_norm(input, running_mean, running_var, weight, bias, training, momentum, eps)


def _batch_norm(input: Tensor, running_mean: Tensor | None, running_var: Tensor | None,
                weight: Tensor | None, bias: Tensor | None, training: bool, momentum: float,
                eps: float) -> Tensor:
    if input.ndim < 2:
        raise ShapeError(f"batch_norm: expected an input of shape (N, C, ...) with at least "
                         f"2 dimensions, got shape {list(input.shape)}")
    channels = input.shape[1]
    for name, t in (("running_mean", running_mean), ("running_var", running_var),
                    ("weight", weight), ("bias", bias)):
        _check_vector("batch_norm", name, t, channels, input)
    stat_shape = (1, channels) + (1,) * (input.ndim - 2)
    if training:
        count = input.numel() // channels if channels else 0
        if count <= 1:
            raise ShapeError(f"batch_norm: expected more than 1 value per channel when "
                             f"training, got input of shape {list(input.shape)}")
        axes = (0, *range(2, input.ndim))
        out, mean, var = normalize_op(input, _reshaped(weight, stat_shape),
                                      _reshaped(bias, stat_shape), axes, eps,
                                      "NativeBatchNormBackward0")
        with no_grad():
            if running_mean is not None:
                running_mean.mul_(1 - momentum).add_(reshape(mean, (channels,)) * momentum)
            if running_var is not None:
                unbiased = reshape(var, (channels,)) * (momentum * count / (count - 1))
                running_var.mul_(1 - momentum).add_(unbiased)
        return out
    if running_mean is None or running_var is None:
        raise ValueError("batch_norm: running_mean and running_var are needed when "
                         "training=False; pass training=True to use batch statistics")
    return batch_norm_op(input, _reshaped(weight, stat_shape), _reshaped(bias, stat_shape),
                         reshape(running_mean, stat_shape), reshape(running_var, stat_shape),
                         eps)


def layer_norm(input: Tensor, normalized_shape: int | Sequence[int],
               weight: Tensor | None = None, bias: Tensor | None = None,
               eps: float = 1e-5) -> Tensor:
    """Normalise over the last ``len(normalized_shape)`` dimensions, which must equal
    ``normalized_shape``; then ``* weight + bias`` (both of ``normalized_shape``)."""
    require_float("layer_norm", input)
    if _bfloat16_input("layer_norm", input, weight, bias):
        return in_float32(layer_norm, input, normalized_shape, weight, bias, eps)
    shape = _as_shape(normalized_shape)
    k = len(shape)
    if k == 0 or tuple(input.shape[input.ndim - k:]) != shape or input.ndim < k:
        raise ShapeError(f"layer_norm: given normalized_shape={list(shape)}, expected an "
                         f"input of shape [*, {', '.join(map(str, shape))}], got shape "
                         f"{list(input.shape)}")
    for name, t in (("weight", weight), ("bias", bias)):
        if t is not None and tuple(t.shape) != shape:
            raise ShapeError(f"layer_norm: {name} must have normalized_shape {list(shape)}, "
                             f"got shape {list(t.shape)}")
    axes = tuple(range(input.ndim - k, input.ndim))
    return normalize_op(input, weight, bias, axes, eps)[0]


def _as_shape(shape: int | Sequence[int]) -> tuple[int, ...]:
    if isinstance(shape, (int, np.integer)):
        return (int(shape),)
    return tuple(int(s) for s in shape)


def group_norm(input: Tensor, num_groups: int, weight: Tensor | None = None,
               bias: Tensor | None = None, eps: float = 1e-5) -> Tensor:
    """Split the channels of an ``(N, C, ...)`` input into ``num_groups`` groups and
    normalise each group of each sample; then ``* weight + bias`` per channel."""
    require_float("group_norm", input)
    if _bfloat16_input("group_norm", input, weight, bias):
        return in_float32(group_norm, input, num_groups, weight, bias, eps)
    if input.ndim < 2:
        raise ShapeError(f"group_norm: expected an input of shape (N, C, ...) with at least "
                         f"2 dimensions, got shape {list(input.shape)}")
    n, channels = input.shape[0], input.shape[1]
    if num_groups <= 0 or channels % num_groups:
        raise ShapeError(f"group_norm: the {channels} channels of the input (shape "
                         f"{list(input.shape)}) must be divisible by num_groups={num_groups}")
    for name, t in (("weight", weight), ("bias", bias)):
        _check_vector("group_norm", name, t, channels, input)
    grouped = reshape(input, (n, num_groups, input.numel() // max(n * num_groups, 1)))
    out, _, _ = normalize_op(grouped, None, None, (2,), eps, "NativeGroupNormBackward0")
    out = reshape(out, tuple(input.shape))
    stat_shape = (1, channels) + (1,) * (input.ndim - 2)
    return _scale_shift(out, _reshaped(weight, stat_shape), _reshaped(bias, stat_shape))
