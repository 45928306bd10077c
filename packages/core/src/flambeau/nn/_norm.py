"""Normalisation and embedding functions: batch_norm, layer_norm, group_norm, embedding.

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

import math
from collections.abc import Sequence

import numpy as np

from .._ops import elementwise as ew
from .._ops import reduction
from .._ops._common import (
    STATE,
    _wrap,
    cast,
    full_like_device,
    has_values,
    int_range,
    needs_grad,
    record,
    require_float,
    same_device,
    unbroadcast,
)
from .._ops.shape import expand, reshape
from .._tensor import Tensor
from ..autograd import no_grad
from ..errors import DTypeError, FlambeauIndexError, ShapeError


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


def _arrays(kernels_out: tuple, like: Tensor) -> tuple[Tensor, ...]:
    return tuple(_wrap(a, like._device, like._k) for a in kernels_out)


def _data(t: Tensor | None) -> object:
    return None if t is None else t._data


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
    kernel = getattr(x._k, "layer_norm", None) if fused else None
    if kernel is not None:
        y, mean, var = _arrays(kernel(x._data, _data(weight), _data(bias), axes, eps), x)
    else:
        previous, STATE.enabled = STATE.enabled, False
        try:
            y, mean, var = layer_norm_reference(x, weight, bias, axes, eps)
        finally:
            STATE.enabled = previous
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
    kernel = getattr(x._k, "batch_norm", None) if fused else None
    if kernel is None:
        return batch_norm_reference(x, weight, bias, mean.detach(), var.detach(), eps)
    y = _wrap(kernel(x._data, _data(weight), _data(bias), mean._data, var._data, eps),
              x._device, x._k)
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


# --- value checks (shared with the losses) ----------------------------------------------


# --- embedding --------------------------------------------------------------------------


def embedding(input: Tensor, weight: Tensor, padding_idx: int | None = None,
              max_norm: float | None = None, norm_type: float = 2.0,
              scale_grad_by_freq: bool = False, sparse: bool = False) -> Tensor:
    """Rows of ``weight`` (num_embeddings, embedding_dim) picked by integer ``input``;
    the result has shape ``input.shape + (embedding_dim,)``.

    ``padding_idx``: that row gets no gradient. ``max_norm``: rows picked whose
    ``norm_type``-norm exceeds it are rescaled in place first. ``scale_grad_by_freq``:
    each row's gradient is divided by how often the row occurs in ``input``.

    >>> import flambeau
    >>> w = flambeau.tensor([[0.0, 0.0], [1.0, 2.0]])
    >>> embedding(flambeau.tensor([1, 1, 0]), w).tolist()
    [[1.0, 2.0], [1.0, 2.0], [0.0, 0.0]]
    """
    if sparse:
        raise NotImplementedError("embedding: sparse gradients are not supported; use "
                                  "sparse=False")
    if not isinstance(input, Tensor) or input.dtype.kind not in "iu":
        got = input.dtype if isinstance(input, Tensor) else type(input).__name__
        raise DTypeError(f"embedding: indices must be an integer tensor, got {got}")
    if weight.ndim != 2:
        raise ShapeError(f"embedding: weight must be 2-d (num_embeddings, embedding_dim), "
                         f"got shape {list(weight.shape)}")
    same_device("embedding", weight, input)
    rows, dim = weight.shape
    extent = int_range(input)
    if extent is not None:
        lo, hi = extent
        if lo < 0 or hi >= rows:
            raise FlambeauIndexError(
                f"embedding: index {lo if lo < 0 else hi} is out of range for "
                f"{rows} embeddings; indices must be in [0, {rows})")
    if padding_idx is not None:
        padding_idx = _normalize_padding_idx(padding_idx, rows)
    index = cast(input, np.dtype(np.int64))
    if max_norm is not None and has_values(weight):
        _renorm_rows(weight, index, max_norm, norm_type)
    out = _wrap(weight._k.take(weight._data, index._data, 0), weight._device, weight._k)
    if STATE.enabled and weight.requires_grad:

        def backward(g: Tensor) -> tuple:
            return (_embedding_grad(g, index, rows, dim, padding_idx, scale_grad_by_freq),)

        record(out, "EmbeddingBackward0", (weight,), backward)
    return out


def _normalize_padding_idx(padding_idx: int, rows: int) -> int:
    if not -rows <= padding_idx < rows:
        raise ValueError(f"padding_idx must be within [-{rows}, {rows}) for {rows} "
                         f"embeddings, got {padding_idx}")
    return padding_idx + rows if padding_idx < 0 else padding_idx


def _embedding_grad(g: Tensor, index: Tensor, rows: int, dim: int, padding_idx: int | None,
                    scale_grad_by_freq: bool) -> Tensor:
    n = index.numel()
    flat = reshape(index, (n, 1))
    grad = full_like_device(0, (rows, dim), g.dtype, g)
    g._k.scatter_add(grad._data, 0, expand(flat, (n, dim))._data, reshape(g, (n, dim))._data)
    if scale_grad_by_freq:
        counts = full_like_device(0, (rows, 1), g.dtype, g)
        ones = full_like_device(1, (n, 1), g.dtype, g)
        g._k.scatter_add(counts._data, 0, flat._data, ones._data)
        grad = ew.div(grad, ew.maximum(counts, 1.0))
    if padding_idx is not None:
        grad._k.setitem(grad._data, (padding_idx,), 0)
    return grad


def _renorm_rows(weight: Tensor, index: Tensor, max_norm: float, norm_type: float) -> None:
    """Rescale, in place, the rows of ``weight`` used by ``index`` whose norm exceeds
    ``max_norm`` (PyTorch's ``embedding_renorm_``)."""
    from .._ops.indexing import setitem, take

    used = np.unique(index._k.to_numpy(index._data))
    if used.size == 0:
        return
    with no_grad():
        ids = _wrap(index._k.from_numpy(used), index._device, index._k)
        picked = take(weight, ids, 0)
        if math.isinf(norm_type):
            norms = reduction.amax(ew.abs(picked), 1, keepdim=True)
        else:
            norms = ew.pow(reduction.sum(ew.pow(ew.abs(picked), norm_type), 1, keepdim=True),
                           1.0 / norm_type)
        scale = ew.where(ew.gt(norms, max_norm), ew.div(max_norm, ew.add(norms, 1e-7)), 1.0)
        setitem(weight, ids, ew.mul(picked, scale))


__all__ = ["batch_norm", "embedding", "group_norm", "layer_norm"]
