"""Loss functions (PyTorch's names, arguments and reductions), composed from tensor ops.

Every loss takes ``reduction``: ``"mean"`` (the default), ``"sum"`` or ``"none"`` (the
per-element losses). Class-index cross entropy without label smoothing uses the
backend's optional fused ``cross_entropy`` kernel where there is one (reference:
:func:`cross_entropy_reference`).
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

from .._dtypes import is_bfloat16, is_floating
from .._tensor import Tensor, _wrap
from ..autograd import no_grad
from ..autograd._engine import record
from ..autograd._mode import STATE
from ..errors import DTypeError, FlambeauIndexError, ScalarTypeError, ShapeError
from . import elementwise as ew
from . import reduction as red
from ._common import (
    arange_like,
    bfloat16_in_float32,
    cast,
    has_values,
    int_range,
    needs_grad,
    same_device,
)
from ._dispatch import FLOAT_KERNEL_DTYPES, FusedKernel, fused_kernel
from .indexing import gather, take
from .shape import movedim, reshape, squeeze_axes, unsqueeze
from .softmax import log_softmax, softmax

_REDUCTIONS = ("mean", "sum", "none")


def _bfloat16_mismatch(op: str, input: Tensor, other: Any, what: str) -> None:
    """PyTorch refuses a bfloat16 operand beside another float dtype here."""
    if (isinstance(other, Tensor) and other.dtype != input.dtype
            and (is_bfloat16(other.dtype) or is_bfloat16(input.dtype))):
        raise DTypeError(f"{op}: expected {what} of the input's dtype {input.dtype}, got "
                         f"{other.dtype}; convert one of them first")


def _check_reduction(reduction: str) -> None:
    if reduction not in _REDUCTIONS:
        raise ValueError(f"reduction must be 'mean', 'sum' or 'none', got {reduction!r}")


def _reduce(loss: Tensor, reduction: str) -> Tensor:
    if reduction == "mean":
        return red.mean(loss)
    if reduction == "sum":
        return red.sum(loss)
    return loss


def _pointwise_target(op: str, input: Tensor, target: Any, reduction: str) -> Tensor:
    """Check ``reduction`` and ``target``; warn, as PyTorch does, when shapes differ."""
    _check_reduction(reduction)
    if not isinstance(target, Tensor):
        raise TypeError(f"{op}: target must be a Tensor, got {type(target).__name__}")
    if tuple(target.shape) != tuple(input.shape):
        warnings.warn(f"{op}: using a target size ({list(target.shape)}) that is different "
                      f"from the input size ({list(input.shape)}); they will be broadcast, "
                      "which is likely not what you want", UserWarning, stacklevel=4)
    return target


# --- regression -------------------------------------------------------------------------


@bfloat16_in_float32
def mse_loss(input: Tensor, target: Tensor, reduction: str = "mean") -> Tensor:
    """Squared error ``(input - target) ** 2``.

    >>> import flambeau
    >>> mse_loss(flambeau.tensor([1.0, 2.0]), flambeau.tensor([1.0, 4.0])).item()
    2.0
    """
    target = _pointwise_target("mse_loss", input, target, reduction)
    diff = ew.sub(input, target)
    return _reduce(ew.mul(diff, diff), reduction)


@bfloat16_in_float32
def l1_loss(input: Tensor, target: Tensor, reduction: str = "mean") -> Tensor:
    """Absolute error ``|input - target|`` (gradient 0 where they are equal).

    >>> import flambeau
    >>> l1_loss(flambeau.tensor([1.0, 2.0]), flambeau.tensor([1.0, 4.0])).item()
    1.0
    """
    target = _pointwise_target("l1_loss", input, target, reduction)
    return _reduce(ew.abs(ew.sub(input, target)), reduction)


@bfloat16_in_float32
def huber_loss(input: Tensor, target: Tensor, reduction: str = "mean",
               delta: float = 1.0) -> Tensor:
    """``0.5 * d**2`` where ``|d| < delta``, else ``delta * (|d| - 0.5 * delta)``, for
    ``d = input - target``.

    >>> import flambeau
    >>> huber_loss(flambeau.tensor([0.5, 3.0]), flambeau.zeros(2), "none").tolist()
    [0.125, 2.5]
    """
    if delta <= 0:
        raise ValueError(f"huber_loss: delta must be positive, got {delta}")
    target = _pointwise_target("huber_loss", input, target, reduction)
    # PyTorch's huber loss takes the input's dtype, whatever the target's.
    return _reduce(cast(_huber(input, target, delta), input.dtype), reduction)


def _huber(input: Tensor, target: Tensor, delta: float) -> Tensor:
    """The elementwise Huber loss, in the operands' promoted dtype."""
    diff = ew.sub(input, target)
    size = ew.abs(diff)
    quadratic = ew.mul(ew.mul(diff, diff), 0.5)
    linear = ew.mul(ew.sub(size, 0.5 * delta), delta)
    return ew.where(ew.lt(size, delta), quadratic, linear)


@bfloat16_in_float32
def smooth_l1_loss(input: Tensor, target: Tensor, reduction: str = "mean",
                   beta: float = 1.0) -> Tensor:
    """``0.5 * d**2 / beta`` where ``|d| < beta``, else ``|d| - 0.5 * beta``
    (``huber_loss / beta``; plain L1 for ``beta=0``)."""
    if beta < 0:
        raise ValueError(f"smooth_l1_loss: beta must be non-negative, got {beta}")
    target = _pointwise_target("smooth_l1_loss", input, target, reduction)
    if beta == 0:
        return _reduce(ew.abs(ew.sub(input, target)), reduction)
    return _reduce(ew.div(_huber(input, target, beta), beta), reduction)


# --- classification ---------------------------------------------------------------------


def _class_targets(op: str, input: Tensor, target: Tensor) -> tuple[Tensor, Tensor, bool]:
    """Check class-index targets for an ``(N, C, d1, ...)`` or ``(C,)`` input; returns
    (input, int64 target), both with a batch dimension, and whether one was added."""
    if not isinstance(target, Tensor):
        raise TypeError(f"{op}: target must be a Tensor, got {type(target).__name__}")
    if input.ndim == 0:
        raise ShapeError(f"{op}: expected an input of shape (C,), (N, C) or (N, C, d1, ...), "
                         "got a 0-d tensor")
    if target.dtype.kind not in "iu":
        raise DTypeError(f"{op}: expected class indices of an integer dtype, got a target of "
                         f"dtype {target.dtype} and shape {list(target.shape)}; class "
                         "probabilities need a float target of the input's shape")
    same_device(op, input, target)
    unbatched = input.ndim == 1
    if unbatched:
        input, target = unsqueeze(input, 0), unsqueeze(target, 0)
    shape = input._data.shape  # (not .shape: a Size per look, on every step)
    expected = (shape[0], *shape[2:])
    if tuple(target._data.shape) != expected:
        shape = list(input.shape[1:]) if unbatched else list(input.shape)
        want = [] if unbatched else list(expected)
        raise ShapeError(f"{op}: expected a target of shape {want} for an input of shape "
                         f"{shape}, got {list(target.shape[1:] if unbatched else target.shape)}")
    return input, cast(target, np.dtype(np.int64)), unbatched


def _class_weights(op: str, input: Tensor, target: Tensor, weight: Tensor | None,
                   ignore_index: int) -> tuple[Tensor, Tensor, Tensor]:
    """Per-element class weights (0 where ignored), the ignore mask and the targets with
    ignored entries set to 0; checks the weight's shape and the targets' range."""
    classes = input.shape[1]
    if weight is not None:
        if weight.dtype != input.dtype:  # PyTorch refuses it too (a RuntimeError)
            raise ScalarTypeError(f"{op}: expected scalar type {input.dtype} but found "
                                  f"{weight.dtype}: the class weight must have the input's "
                                  f"dtype; convert it with weight.to({input.dtype})")
        same_device(op, input, weight)
        if tuple(weight.shape) != (classes,):
            raise ShapeError(f"{op}: weight must have shape [{classes}] (one per class of "
                             f"the input of shape {list(input.shape)}), got "
                             f"{list(weight.shape)}")
    ignored = ew.eq(target, ignore_index)
    safe = ew.where(ignored, 0, target)
    extent = int_range(safe)
    if extent is not None:
        lo, hi = extent
        if lo < 0 or hi >= classes:
            raise FlambeauIndexError(
                f"{op}: target {lo if lo < 0 else hi} is out of bounds for {classes} classes; "
                f"class indices must be in [0, {classes}) or equal ignore_index="
                f"{ignore_index}")
    if weight is None:
        w = cast(ew.logical_not(ignored), input.dtype)
    else:
        w = ew.where(ignored, 0.0, take(weight, safe, 0))
    return w, ignored, safe


def _picked(op: str, logp: Tensor, target: Tensor, weight: Tensor | None,
            ignore_index: int) -> tuple[Tensor, Tensor, Tensor]:
    """Per-element ``-weight[t] * logp[t]`` (0 where ignored), the per-element weights
    and the ignore mask."""
    w, ignored, safe = _class_weights(op, logp, target, weight, ignore_index)
    picked = squeeze_axes(gather(logp, 1, unsqueeze(safe, 1)), (1,))
    loss = ew.where(ignored, 0.0, ew.neg(ew.mul(picked, w)))
    return loss, w, ignored


@bfloat16_in_float32
def nll_loss(input: Tensor, target: Tensor, weight: Tensor | None = None,
             ignore_index: int = -100, reduction: str = "mean") -> Tensor:
    """Negative log likelihood: ``-weight[t] * input[n, t]`` for class-index targets ``t``
    and log-probabilities ``input`` of shape ``(N, C, d1, ...)`` (or ``(C,)``).

    ``"mean"`` divides by the summed weights of the targets not equal to ``ignore_index``.

    >>> import flambeau
    >>> logp = flambeau.tensor([[-1.0, -2.0], [-3.0, -4.0]])
    >>> nll_loss(logp, flambeau.tensor([1, 0]), reduction="none").tolist()
    [2.0, 3.0]
    """
    _check_reduction(reduction)
    input, target, unbatched = _class_targets("nll_loss", input, target)
    loss, w, _ = _picked("nll_loss", input, target, weight, ignore_index)
    return _finish(loss, w, reduction, unbatched)


def _finish(loss: Tensor, w: Tensor, reduction: str, unbatched: bool) -> Tensor:
    if reduction == "mean":
        return ew.div(red.sum(loss), red.sum(w))
    if reduction == "sum":
        return red.sum(loss)
    return squeeze_axes(loss, (0,)) if unbatched else loss


@bfloat16_in_float32
def cross_entropy(input: Tensor, target: Tensor, weight: Tensor | None = None,
                  ignore_index: int = -100, reduction: str = "mean",
                  label_smoothing: float = 0.0) -> Tensor:
    """Cross entropy of logits ``input`` of shape ``(N, C, d1, ...)`` (or ``(C,)``).

    ``target`` holds class indices (shape ``(N, d1, ...)``, integers; ``ignore_index``
    entries count for nothing) or class probabilities (a float tensor of the input's
    shape). ``weight`` rescales each class; ``label_smoothing`` mixes the target with
    the uniform distribution, as in PyTorch.

    >>> import flambeau
    >>> logits = flambeau.tensor([[0.0, 0.0], [0.0, 0.0]])
    >>> round(cross_entropy(logits, flambeau.tensor([0, 1])).item(), 4)
    0.6931
    """
    _check_reduction(reduction)
    if not 0.0 <= label_smoothing <= 1.0:
        raise ValueError(f"cross_entropy: label_smoothing must be in [0, 1], got "
                         f"{label_smoothing}")
    if not isinstance(target, Tensor):
        raise TypeError(f"cross_entropy: target must be a Tensor, got {type(target).__name__}")
    if not is_floating(input.dtype):
        raise DTypeError(f"cross_entropy: expected float logits, got dtype {input.dtype}")
    shape = tuple(input._data.shape)  # (not .shape: a Size per look, on every step)
    if shape and tuple(target._data.shape) == shape:
        return _soft_cross_entropy(input, target, weight, reduction, label_smoothing)
    input, target, unbatched = _class_targets("cross_entropy", input, target)
    if (weight is None and label_smoothing == 0 and reduction != "none" and input.ndim == 2
            and target.dtype.kind in "iu"):
        fast = _plain_cross_entropy(input, target, ignore_index, reduction)
        if fast is not None:
            return fast
    kernel = fused_kernel("cross_entropy", input, dtypes=FLOAT_KERNEL_DTYPES)
    if label_smoothing == 0 and kernel is not None:
        w, ignored, safe = _class_weights("cross_entropy", input, target, weight, ignore_index)
        rows = _fused_cross_entropy(kernel, input, safe)
        return _finish(ew.where(ignored, 0.0, ew.mul(rows, w)), w, reduction, unbatched)
    logp = log_softmax(input, 1)
    loss, w, ignored = _picked("cross_entropy", logp, target, weight, ignore_index)
    if label_smoothing == 0:
        return _finish(loss, w, reduction, unbatched)
    classes = input.shape[1]
    smooth = _class_sum(logp, weight)
    smooth = ew.where(ignored, 0.0, ew.neg(smooth))
    if reduction == "mean":
        total = red.sum(w)
        loss, smooth = ew.div(red.sum(loss), total), ew.div(red.sum(smooth), total)
    elif reduction == "sum":
        loss, smooth = red.sum(loss), red.sum(smooth)
    elif unbatched:
        loss, smooth = squeeze_axes(loss, (0,)), squeeze_axes(smooth, (0,))
    return ew.add(ew.mul(loss, 1.0 - label_smoothing),
                  ew.mul(smooth, label_smoothing / classes))


def _plain_cross_entropy(input: Tensor, target: Tensor, ignore_index: int,
                         reduction: str) -> Tensor | None:
    """The common case — (N, C) logits, class indices, no weights, smoothing or ignored
    entries, a mean or a sum — as one recorded node: the general path records about
    fifteen, which dominated small training steps. ``None`` when the case does not apply.
    """
    n, classes = input._data.shape
    if 0 <= ignore_index < classes:
        return None  # the ignored class may be among the targets
    extent = int_range(target)
    if extent is None or extent[0] < 0 or extent[1] >= classes:
        return None  # empty, meta, ignore_index or out of range: the general path decides
    flat = target if target.dtype == np.int64 else cast(target, np.dtype("int64"))
    kernel = fused_kernel("cross_entropy", input, dtypes=FLOAT_KERNEL_DTYPES)
    if kernel is not None:
        rows = kernel(input, flat)
    else:
        with no_grad():  # one node, with the closed-form gradient, is recorded below
            rows = cross_entropy_reference(input, flat)
    k = input._k  # the sum and scale straight on the kernels: this runs every step
    total = k.reduce("sum", rows._data, None, False)
    scale = 1.0 / n if reduction == "mean" else 1.0
    out = _wrap(k.binary("mul", total, scale), input._device, k)
    if STATE.enabled and input.requires_grad:

        def backward(g: Tensor) -> tuple:
            return (_cross_entropy_grad(input, flat, ew.mul(g, scale)),)

        name = "NllLossBackward0"  # PyTorch's name for the node a cross entropy ends in
        record(out, name, (input,), backward, (input,))
    return out


def cross_entropy_reference(logits: Tensor, target: Tensor) -> Tensor:
    """Per-row ``logsumexp(logits[n]) - logits[n, target[n]]`` for logits (N, C) and int64
    targets (N,) in [0, C), as a composition (the reference for the fused
    ``cross_entropy`` kernel)."""
    picked = squeeze_axes(gather(logits, 1, unsqueeze(target, 1)), (1,))
    return ew.sub(red.logsumexp(logits, 1), picked)


def _fused_cross_entropy(kernel: FusedKernel, input: Tensor, target: Tensor) -> Tensor:
    """:func:`cross_entropy_reference` by the backend's kernel, for (N, C, d1, ...) logits
    and in-range targets (N, d1, ...); the gradient is ``g * (softmax - one_hot)``."""
    classes = input.shape[1]
    logits = reshape(movedim(input, 1, -1), (-1, classes)) if input.ndim > 2 else input
    flat = reshape(target, (-1,))
    rows = kernel(logits, flat)
    if needs_grad(logits):

        def backward(g: Tensor) -> tuple:
            return (_cross_entropy_grad(logits, flat, g),)

        record(rows, "CrossEntropyBackward0", (logits,), backward, (logits,))
    return reshape(rows, tuple(target.shape))


def cross_entropy_grad_reference(logits: Tensor, target: Tensor, grad: Tensor) -> Tensor:
    """``(softmax(logits, 1) - one_hot(target)) * grad[:, None]`` for logits (N, C), int64
    targets (N,) in [0, C) and ``grad`` (N,) or 0-d: the gradient of
    :func:`cross_entropy_reference`'s rows, composed around :func:`softmax` (whose own
    kernel the kit checks separately). The reference for the fused ``cross_entropy_grad``
    kernel, and differentiable, for ``create_graph``."""
    classes = logits.shape[1]
    one_hot = cast(ew.eq(unsqueeze(target, 1), arange_like(classes, logits)), logits.dtype)
    return ew.mul(ew.sub(softmax(logits, 1), one_hot), unsqueeze(grad, 1) if grad.ndim else grad)


def _cross_entropy_grad(logits: Tensor, target: Tensor, grad: Tensor) -> Tensor:
    # Under create_graph (grad mode on in a backward) the gradient must stay differentiable.
    kernel = fused_kernel("cross_entropy_grad", logits, not STATE.enabled, FLOAT_KERNEL_DTYPES)
    if kernel is None:
        return cross_entropy_grad_reference(logits, target, grad)
    return kernel(logits, target, grad)


def _class_sum(x: Tensor, weight: Tensor | None) -> Tensor:
    """``sum(x * weight, dim=1)`` with ``weight`` (C,) broadcast along dimension 1 (and
    the dtypes promoted, as PyTorch's soft-target cross entropy does)."""
    if weight is not None:
        x = ew.mul(x, reshape(weight, (1, -1) + (1,) * (x.ndim - 2)))
    return red.sum(x, 1)


def _soft_cross_entropy(input: Tensor, target: Tensor, weight: Tensor | None,
                        reduction: str, label_smoothing: float) -> Tensor:
    if target.dtype.kind != "f":
        raise DTypeError(f"cross_entropy: a target of the input's shape "
                         f"{list(input.shape)} holds class probabilities and must be float, "
                         f"got dtype {target.dtype}")
    unbatched = input.ndim == 1
    if unbatched:
        input, target = unsqueeze(input, 0), unsqueeze(target, 0)
    classes = input.shape[1]
    if weight is not None and tuple(weight.shape) != (classes,):
        raise ShapeError(f"cross_entropy: weight must have shape [{classes}], got "
                         f"{list(weight.shape)}")
    if label_smoothing > 0:
        target = ew.add(ew.mul(target, 1.0 - label_smoothing), label_smoothing / classes)
    loss = ew.neg(_class_sum(ew.mul(log_softmax(input, 1), target), weight))
    if reduction == "mean":
        return red.mean(loss)  # over the N * d1 * ... samples, whatever the weights
    if reduction == "sum":
        return red.sum(loss)
    return squeeze_axes(loss, (0,)) if unbatched else loss


# --- binary -----------------------------------------------------------------------------


def _binary_target(op: str, input: Tensor, target: Any) -> None:
    if not isinstance(target, Tensor):
        raise TypeError(f"{op}: target must be a Tensor, got {type(target).__name__}")
    if tuple(target.shape) != tuple(input.shape):
        raise ShapeError(f"{op}: the target size {list(target.shape)} must be the same as the "
                         f"input size {list(input.shape)}")


@bfloat16_in_float32
def binary_cross_entropy(input: Tensor, target: Tensor, weight: Tensor | None = None,
                         reduction: str = "mean") -> Tensor:
    """``-weight * (t * log(x) + (1 - t) * log(1 - x))`` for probabilities ``x`` in [0, 1];
    the logs are clamped at -100 as in PyTorch, so the loss stays finite.

    >>> import flambeau
    >>> round(binary_cross_entropy(flambeau.tensor([0.5]), flambeau.tensor([1.0])).item(), 4)
    0.6931
    """
    _check_reduction(reduction)
    _binary_target("binary_cross_entropy", input, target)
    if not is_floating(input.dtype):
        raise DTypeError(f"binary_cross_entropy: expected float probabilities, got dtype "
                         f"{input.dtype}")
    _bfloat16_mismatch("binary_cross_entropy", input, target, "a target")
    _bfloat16_mismatch("binary_cross_entropy", input, weight, "a weight")
    target = cast(target, input.dtype)
    outside = ew.logical_or(ew.lt(input, 0), ew.gt(input, 1))
    if input.numel() and has_values(input) and red.any(outside).item():
        raise ValueError("binary_cross_entropy: all elements of input should be between 0 "
                         "and 1 (pass logits to binary_cross_entropy_with_logits instead)")
    loss = _bce(input, target)
    if weight is not None:
        loss = ew.mul(loss, weight)
    return _reduce(loss, reduction)


_BCE_EPS = 1e-12


def _bce(x: Tensor, t: Tensor) -> Tensor:
    # A primitive for numerics: through the clamped logs the composition's gradient is
    # 0/0 at x = 0 or 1; PyTorch's is (x - t) / max(x * (1 - x), 1e-12).
    with no_grad():
        log_x, log_1mx = _clamped_logs(x)
        out = ew.neg(ew.add(ew.mul(t, log_x), ew.mul(ew.rsub(t, 1.0), log_1mx)))
    if STATE.enabled and (x.requires_grad or t.requires_grad):

        def backward(g: Tensor) -> tuple:
            grad_x = grad_t = None
            if x.requires_grad:
                denominator = ew.clamp(ew.mul(x, ew.rsub(x, 1.0)), min=_BCE_EPS)
                grad_x = ew.div(ew.mul(g, ew.sub(x, t)), denominator)
            if t.requires_grad:
                lx, l1mx = _clamped_logs(x)
                grad_t = ew.mul(g, ew.sub(l1mx, lx))
            return grad_x, grad_t

        record(out, "BinaryCrossEntropyBackward0", (x, t), backward, (x, t))
    return out


def _clamped_logs(x: Tensor) -> tuple[Tensor, Tensor]:
    return (ew.clamp(ew.log(x), min=-100.0), ew.clamp(ew.log(ew.rsub(x, 1.0)), min=-100.0))


@bfloat16_in_float32
def binary_cross_entropy_with_logits(input: Tensor, target: Tensor,
                                     weight: Tensor | None = None, reduction: str = "mean",
                                     pos_weight: Tensor | None = None) -> Tensor:
    """``binary_cross_entropy(sigmoid(input), target)`` computed stably from logits:
    ``(1 - t) * x + (1 + (pos_weight - 1) * t) * log(1 + exp(-x))``.

    ``pos_weight`` weighs the positive term (one value per class, broadcast along the
    last dimension).

    >>> import flambeau
    >>> x = flambeau.tensor([0.0, 100.0])
    >>> binary_cross_entropy_with_logits(x, flambeau.tensor([1.0, 0.0]), reduction="none")
    tensor([  0.6931, 100.0000])
    """
    _check_reduction(reduction)
    _binary_target("binary_cross_entropy_with_logits", input, target)
    if not is_floating(input.dtype):
        raise DTypeError(f"binary_cross_entropy_with_logits: expected float logits, got "
                         f"dtype {input.dtype}")
    if is_floating(target.dtype) and is_bfloat16(target.dtype) != is_bfloat16(input.dtype):
        input = cast(input, target.dtype)  # bfloat16 beside float32: PyTorch's is the target's
    target = cast(target, input.dtype)
    # log(1 + exp(-x)) = max(-x, 0) + log1p(exp(-|x|)): exp never overflows.
    softplus_neg = ew.add(ew.maximum(ew.neg(input), 0.0),
                          ew.log1p(ew.exp(ew.neg(ew.abs(input)))))
    if pos_weight is not None:
        softplus_neg = ew.mul(softplus_neg, ew.add(ew.mul(ew.sub(pos_weight, 1.0), target), 1.0))
    loss = ew.add(ew.mul(ew.rsub(target, 1.0), input), softplus_neg)
    if weight is not None:
        loss = ew.mul(loss, weight)
    return _reduce(loss, reduction)

