"""Sparse functions of ``nn.functional``: embedding (with max_norm renormalisation) and
one_hot."""

from __future__ import annotations

import math

import numpy as np

from .._tensor import Tensor, _wrap
from ..autograd import no_grad
from ..autograd._engine import record
from ..autograd._mode import STATE
from ..errors import DTypeError, FlambeauIndexError, ScalarTypeError, ShapeError
from . import elementwise as ew
from . import reduction
from ._common import arange_like, cast, full_like_device, has_values, int_range, same_device
from .indexing import setitem, take
from .shape import expand, reshape, unsqueeze


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


def one_hot(tensor: Tensor, num_classes: int = -1) -> Tensor:
    """Int64 one-hot encoding of class indices.

    >>> import flambeau
    >>> from flambeau.nn import functional as F
    >>> F.one_hot(flambeau.tensor([0, 2]), 3).tolist()
    [[1, 0, 0], [0, 0, 1]]
    """
    if tensor.dtype != np.int64:  # PyTorch's words, RuntimeError
        raise ScalarTypeError(f"one_hot is only applicable to index tensor of type LongTensor "
                              f"(int64), got dtype {tensor.dtype}; convert it with .long()")
    if num_classes < 0:
        if not tensor.numel():
            raise ShapeError("one_hot: can not infer the number of classes from an empty "
                             "tensor; pass num_classes")
        num_classes = int(tensor.max().item()) + 1
    if tensor.numel() and (tensor.min().item() < 0 or tensor.max().item() >= num_classes):
        raise ShapeError(f"one_hot: class values must be in [0, {num_classes}), got "
                         f"{tensor.min().item()}..{tensor.max().item()}")
    classes = arange_like(num_classes, tensor)
    return cast(ew.eq(unsqueeze(tensor, -1), classes), tensor.dtype)
