"""Resampling for ``nn.functional``: ``interpolate`` (nearest, linear family, area) and the
padding modes that repeat the input's own values (reflect, replicate, circular).

Both are separable and index-driven: the positions (or, for the linear modes, a small
interpolation matrix) are computed on the host per spatial axis with PyTorch's
formulas, then applied with ``take`` or ``matmul``, whose gradients they inherit.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from .._tensor import Tensor
from ..errors import ShapeError
from ._common import to_tensor
from .conv import check_float
from .indexing import take
from .linalg import matmul
from .pooling import adaptive_avg_pool2d
from .shape import movedim

_LINEAR = {"linear": 3, "bilinear": 4, "trilinear": 5}
_MODES = ("nearest", "nearest-exact", "area", *_LINEAR)


def interpolate(input: Tensor, size: Any = None, scale_factor: Any = None,
                mode: str = "nearest", align_corners: bool | None = None,
                recompute_scale_factor: bool | None = None,
                antialias: bool = False) -> Tensor:
    """Resize the spatial dimensions of ``input`` (N, C, *spatial) to ``size`` or by
    ``scale_factor``, as ``torch.nn.functional.interpolate``.

    Modes: ``nearest`` and ``nearest-exact`` (1 to 3 spatial dimensions), ``linear``
    (N, C, L), ``bilinear`` (N, C, H, W), ``trilinear`` (N, C, D, H, W), with
    ``align_corners`` False (pixel centres, the default) or True (corner pixels
    aligned), and ``area`` (N, C, H, W; adaptive average pooling).

    >>> import flambeau
    >>> from flambeau.nn import functional as F
    >>> F.interpolate(flambeau.tensor([[[1.0, 2.0]]]), scale_factor=2).tolist()
    [[[1.0, 1.0, 2.0, 2.0]]]
    >>> F.interpolate(flambeau.tensor([[[1.0, 2.0]]]), size=3, mode="linear",
    ...               align_corners=True).tolist()
    [[[1.0, 1.5, 2.0]]]
    """
    op = "interpolate"
    if mode not in _MODES:
        raise NotImplementedError(f"{op}: mode={mode!r} is not supported; choose one of "
                                  f"{', '.join(_MODES)}")
    if mode in ("nearest", "nearest-exact", "area"):
        if align_corners is not None:
            raise ValueError(f"{op}: align_corners can only be set with the interpolating "
                             f"modes linear, bilinear and trilinear, got mode={mode!r}")
    elif align_corners is None:
        align_corners = False
    if antialias:
        raise NotImplementedError(f"{op}: antialias=True is not supported")
    check_float(op, input)
    if input.ndim not in (3, 4, 5):
        raise ShapeError(f"{op}: expected a 3-d, 4-d or 5-d input (N, C, *spatial), got "
                         f"shape {list(input.shape)}")
    need = 4 if mode == "area" else _LINEAR.get(mode, input.ndim)
    if input.ndim != need:
        raise ShapeError(f"{op}: got a {input.ndim}-d input, but mode={mode!r} needs a "
                         f"{need}-d one (shape {list(input.shape)})")
    spatial = tuple(input.shape[2:])
    sizes, scales = _output_size(op, spatial, size, scale_factor, recompute_scale_factor)
    if mode == "area":
        return adaptive_avg_pool2d(input, sizes)
    out = input
    for axis, (n_in, n_out, scale) in enumerate(zip(spatial, sizes, scales), start=2):
        if mode.startswith("nearest"):
            host = _nearest(n_in, n_out, scale, mode == "nearest-exact")
            out = take(out, to_tensor(host, out, np.dtype(np.int64)), axis)
        else:
            weights = _linear_weights(n_in, n_out, scale, bool(align_corners), out.dtype)
            moved = movedim(out, axis, -1)
            out = movedim(matmul(moved, to_tensor(weights.T.copy(), out, out.dtype)), -1, axis)
    return out


def _output_size(op: str, spatial: Sequence[int], size: Any, scale_factor: Any,
                 recompute: bool | None) -> tuple[tuple[int, ...], tuple[float | None, ...]]:
    """The output sizes, and the scale factors the index formulas use (``None`` where the
    ratio of sizes is used instead), checked as PyTorch checks them."""
    dims = len(spatial)
    if (size is None) == (scale_factor is None):
        raise ValueError(f"{op}: give exactly one of size and scale_factor, got "
                         f"size={size!r}, scale_factor={scale_factor!r}")
    if size is not None:
        if recompute:
            raise ValueError(f"{op}: recompute_scale_factor is not meaningful with an "
                             "explicit size")
        sizes = tuple(size) if isinstance(size, (tuple, list)) else (size,) * dims
        if len(sizes) != dims or not all(isinstance(s, (int, np.integer)) for s in sizes):
            raise ValueError(f"{op}: size must be an int or {dims} ints for an input with "
                             f"spatial dimensions {list(spatial)}, got {size!r}")
        return tuple(int(s) for s in sizes), (None,) * dims
    factors = tuple(scale_factor) if isinstance(scale_factor, (tuple, list)) \
        else (scale_factor,) * dims
    if len(factors) != dims:
        raise ValueError(f"{op}: scale_factor must be a number or {dims} numbers for an "
                         f"input with spatial dimensions {list(spatial)}, got "
                         f"{scale_factor!r}")
    sizes = tuple(math.floor(float(n) * float(f)) for n, f in zip(spatial, factors))
    if any(s < 1 for s in sizes):
        raise ShapeError(f"{op}: the output size {list(sizes)} (input {list(spatial)} scaled "
                         f"by {scale_factor!r}) must be positive")
    return sizes, (None,) * dims if recompute else tuple(float(f) for f in factors)


def _source_scale(n_in: int, n_out: int, scale: float | None, dtype: Any) -> Any:
    """PyTorch's input-per-output step: ``1 / scale_factor`` when one was given, else the
    ratio of sizes, in ``dtype`` (the kernels' arithmetic)."""
    return dtype(1.0 / scale) if scale is not None and scale > 0 else dtype(n_in) / dtype(n_out)


def _nearest(n_in: int, n_out: int, scale: float | None, exact: bool) -> np.ndarray:
    step = _source_scale(n_in, n_out, scale, np.float32)
    out = np.arange(n_out)
    source = np.floor((out + 0.5) * np.float64(step)) if exact else \
        np.floor(out.astype(np.float32) * step)
    return np.minimum(source.astype(np.int64), n_in - 1)


def _linear_weights(n_in: int, n_out: int, scale: float | None, align_corners: bool,
                    dtype: Any) -> np.ndarray:
    """(n_out, n_in): row ``o`` blends the two inputs nearest to output ``o``'s source."""
    kind = np.float64 if dtype == np.float64 else np.float32
    out = np.arange(n_out).astype(kind)
    if align_corners:
        step = kind(n_in - 1) / kind(n_out - 1) if n_out > 1 else kind(0)
        source = out * step
    else:
        source = np.maximum(_source_scale(n_in, n_out, scale, kind) * (out + kind(0.5))
                            - kind(0.5), kind(0))
    low = np.minimum(np.floor(source).astype(np.int64), n_in - 1)
    high = np.minimum(low + 1, n_in - 1)
    frac = np.clip(source - low, 0, 1).astype(kind)
    weights = np.zeros((n_out, n_in), kind)
    np.add.at(weights, (np.arange(n_out), low), kind(1) - frac)
    np.add.at(weights, (np.arange(n_out), high), frac)
    return weights


# --- padding by repeating the input ------------------------------------------------------

_PAD_MODES = ("reflect", "replicate", "circular")


def pad_repeating(input: Tensor, pad: Sequence[int], mode: str) -> Tensor:
    """``pad`` for ``mode`` reflect, replicate or circular: each padded dimension is read
    back through an index (``take``, so the gradient sums into the repeated elements)."""
    op = "pad"
    if mode not in _PAD_MODES:
        raise NotImplementedError(f"{op}: unknown padding mode {mode!r}; choose constant, "
                                  f"{', '.join(_PAD_MODES)}")
    count = len(pad) // 2
    if input.ndim not in (count + 1, count + 2) or count > 3:
        raise NotImplementedError(
            f"{op}: padding of {len(pad)} values is not supported for a {input.ndim}-d "
            f"input with mode={mode!r}: pad 2 values of a 2-d or 3-d input, 4 of a 3-d or "
            f"4-d one, 6 of a 4-d or 5-d one")
    out = input
    for i in range(count):
        axis = input.ndim - 1 - i
        before, after, size = int(pad[2 * i]), int(pad[2 * i + 1]), input.shape[axis]
        if before < 0 or after < 0:
            raise ValueError(f"{op}: negative padding (cropping) is only supported with "
                             f"mode='constant', got {list(pad)}; slice the input first")
        if size == 0:
            raise ShapeError(f"{op}: cannot pad dimension {axis} of size 0 with "
                             f"mode={mode!r} (input shape {list(input.shape)})")
        limit = size - 1 if mode == "reflect" else size if mode == "circular" else None
        if limit is not None and max(before, after) > limit:
            raise ShapeError(f"{op}: mode={mode!r} pads at most {limit} on a side of "
                             f"dimension {axis} of size {size}, got ({before}, {after}) "
                             f"(input shape {list(input.shape)})")
        if before or after:
            host = _repeat_index(np.arange(-before, size + after), size, mode)
            out = take(out, to_tensor(host, out, np.dtype(np.int64)), axis)
    return out


def _repeat_index(positions: np.ndarray, size: int, mode: str) -> np.ndarray:
    if mode == "replicate":
        return np.clip(positions, 0, size - 1)
    if mode == "circular":
        return positions % size
    reflected = np.abs(positions)
    return np.where(reflected >= size, 2 * (size - 1) - reflected, reflected)
