"""Pooling for ``nn.functional``: max, average (2-d, and 1-d as 2-d of height 1), adaptive
average and adaptive max, on any backend.

As in :mod:`flambeau._ops.conv`, each operation is a composition of tensor operations
(windows by padding and strided slicing), which is also the reference of the backend's
optional fused kernels (``max_pool2d``[``_grad``], ``avg_pool2d``[``_grad``]; see
:data:`flambeau.backends.OPTIONAL_KERNELS`), used where the backend has them with
backward rules recorded here.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, NamedTuple

import numpy as np

from .._tensor import Tensor
from ..autograd._engine import record
from ..backends import avg_pool_divisors, ceil_padding, window_shape
from ..errors import ShapeError
from . import elementwise as ew
from ._common import arange_like, bfloat16_in_float32, full_like_device, needs_grad, to_tensor
from ._dispatch import fused_kernel
from .conv import (
    ConvArgs,
    Pair,
    check_float,
    conv2d_grad_input_op,
    im2col,
    int_tuple,
    pad2d,
    with_batch,
)
from .indexing import gather, scatter_add, take
from .linalg import matmul
from .reduction import argmax
from .reduction import max as reduction_max
from .reduction import sum as _sum
from .shape import reshape, slice_tensor, squeeze_axes, unsqueeze


class PoolArgs(NamedTuple):
    """What a 2-d pooling kernel takes besides its arrays, and the output size."""

    kernel: Pair
    stride: Pair
    padding: Pair
    dilation: Pair
    ceil_mode: bool
    out: Pair


def pool_args(op: str, x: Tensor, kernel_size: Any, stride: Any, padding: Any,
              dilation: Any, ceil_mode: bool, input_shape: Sequence[int]) -> PoolArgs:
    """Checked pooling arguments for a 4-d ``x`` (``input_shape``: the caller's, for
    messages), with the output size."""
    kernel = int_tuple(kernel_size, 2, "kernel_size", op, 1)
    stride = kernel if stride is None or (isinstance(stride, (tuple, list)) and not stride) \
        else int_tuple(stride, 2, "stride", op, 1)
    padding = int_tuple(padding, 2, "padding", op, 0)
    dilation = int_tuple(dilation, 2, "dilation", op, 1)
    for k, p, d in zip(kernel, padding, dilation):
        if 2 * p > d * (k - 1) + 1:
            raise ValueError(f"{op}: padding should be at most half of the (dilated) kernel "
                             f"size, got padding={padding}, kernel_size={kernel}, "
                             f"dilation={dilation}")
    out = window_shape(x._data.shape[2:], kernel, stride, padding, dilation, ceil_mode)
    if out[0] < 1 or out[1] < 1:
        raise ShapeError(f"{op}: input of shape {list(input_shape)} is too small for "
                         f"kernel_size={kernel}, stride={stride}, padding={padding}, "
                         f"dilation={dilation}: the output would be {out[0]} x {out[1]}")
    return PoolArgs(kernel, stride, padding, dilation, bool(ceil_mode), out)


def _ceil_extra(x_shape: Sequence[int], args: PoolArgs) -> Pair:
    return ceil_padding(x_shape[2:], args.out, args.kernel, args.stride, args.padding,
                        args.dilation)


@bfloat16_in_float32
def max_pool2d(input: Tensor, kernel_size: Any, stride: Any = None, padding: Any = 0,
               dilation: Any = 1, ceil_mode: bool = False,
               return_indices: bool = False) -> Tensor | tuple[Tensor, Tensor]:
    """Maximum over each window of ``input`` (N, C, H, W) or (C, H, W), as
    ``torch.nn.functional.max_pool2d``; ``stride`` defaults to ``kernel_size``.

    With ``return_indices`` also the int64 flat position ``h * W + w`` of each maximum.

    >>> import flambeau
    >>> from flambeau.nn import functional as F
    >>> F.max_pool2d(flambeau.arange(16.).reshape(1, 4, 4), 2).tolist()
    [[[5.0, 7.0], [13.0, 15.0]]]
    """
    op = "max_pool2d"
    check_float(op, input)
    x, unbatched = with_batch(op, input, 2)
    args = pool_args(op, x, kernel_size, stride, padding, dilation, ceil_mode, input.shape)
    values, indices = max_pool2d_op(x, args, return_indices)
    if unbatched:
        values = squeeze_axes(values, (0,))
        indices = squeeze_axes(indices, (0,)) if return_indices else None
    return (values, indices) if return_indices else values


def max_pool2d_op(x: Tensor, args: PoolArgs, want_indices: bool = True,
                  fused: bool = True) -> tuple[Tensor, Tensor | None]:
    """(values, indices or None) of a checked 4-d input."""
    kernel = fused_kernel("max_pool2d", x, fused)
    if kernel is None:
        return _max_pool_composed(x, args, want_indices)
    out, idx = kernel(x, *args[:5])
    if needs_grad(x):
        x_shape = x._data.shape
        record(out, "MaxPool2DWithIndicesBackward0", (x,),
               lambda g: (max_pool2d_grad_op(g, idx, x_shape, args, fused),))
    return out, idx


def max_pool2d_grad_op(g: Tensor, indices: Tensor, x_shape: tuple[int, ...], args: PoolArgs,
                       fused: bool = True) -> Tensor:
    """``g`` summed into the input positions ``indices`` name; differentiable in ``g``."""
    n, c, h, w = x_shape
    kernel = fused_kernel("max_pool2d_grad", g, fused)
    flat_index = reshape(indices, (n, c, -1))
    if kernel is None:
        zeros = full_like_device(0, (n, c, h * w), g.dtype, g)
        return reshape(scatter_add(zeros, 2, flat_index, reshape(g, (n, c, -1))), x_shape)
    out = kernel(g, indices, tuple(x_shape), *args[:5])
    if needs_grad(g):
        g_shape = g._data.shape
        record(out, "MaxPool2DWithIndicesBackwardBackward0", (g,),
               lambda gg: (reshape(gather(reshape(gg, (n, c, h * w)), 2, flat_index),
                                   g_shape),))
    return out


def _max_pool_composed(x: Tensor, args: PoolArgs,
                       want_indices: bool) -> tuple[Tensor, Tensor | None]:
    xp = pad2d(x, args.padding, _ceil_extra(x._data.shape, args), -math.inf)
    cols = im2col(xp, args.kernel, args.stride, args.dilation, args.out)  # (N, C, K, ...)
    best = argmax(cols, 2, keepdim=True)
    values = squeeze_axes(gather(cols, 2, best), (2,))
    if not want_indices:
        return values, None
    best = squeeze_axes(best, (2,))
    (kw, w), (sh, sw), (ph, pw), (dh, dw) = ((args.kernel[1], x._data.shape[3]), args.stride,
                                             args.padding, args.dilation)
    rows = ew.add(ew.mul(ew.floor_divide(best, kw), dh),
                  reshape(ew.sub(ew.mul(arange_like(args.out[0], x), sh), ph), (-1, 1)))
    cols_ = ew.add(ew.mul(ew.remainder(best, kw), dw),
                   ew.sub(ew.mul(arange_like(args.out[1], x), sw), pw))
    return values, ew.add(ew.mul(rows, w), cols_)


@bfloat16_in_float32
def avg_pool2d(input: Tensor, kernel_size: Any, stride: Any = None, padding: Any = 0,
               ceil_mode: bool = False, count_include_pad: bool = True,
               divisor_override: int | None = None) -> Tensor:
    """Mean over each window of ``input`` (N, C, H, W) or (C, H, W), as
    ``torch.nn.functional.avg_pool2d``; ``stride`` defaults to ``kernel_size``.

    >>> import flambeau
    >>> from flambeau.nn import functional as F
    >>> F.avg_pool2d(flambeau.arange(16.).reshape(1, 4, 4), 2).tolist()
    [[[2.5, 4.5], [10.5, 12.5]]]
    """
    op = "avg_pool2d"
    check_float(op, input)
    x, unbatched = with_batch(op, input, 2)
    args = pool_args(op, x, kernel_size, stride, padding, 1, ceil_mode, input.shape)
    if divisor_override is not None:
        divisor_override = int_tuple(divisor_override, 1, "divisor_override", op, 1)[0]
    out = avg_pool2d_op(x, args, bool(count_include_pad), divisor_override)
    return squeeze_axes(out, (0,)) if unbatched else out


def avg_pool_kernel_args(args: PoolArgs, count_include_pad: bool,
                         divisor: int | None) -> tuple:
    """avg_pool2d's kernel arguments (PoolArgs has dilation, which avg pooling lacks)."""
    return (args.kernel, args.stride, args.padding, args.ceil_mode, count_include_pad, divisor)


def avg_pool2d_op(x: Tensor, args: PoolArgs, count_include_pad: bool, divisor: int | None,
                  fused: bool = True) -> Tensor:
    """``avg_pool2d`` of a checked 4-d input."""
    kernel = fused_kernel("avg_pool2d", x, fused)
    if kernel is None:
        return _avg_pool_composed(x, args, count_include_pad, divisor)
    out = kernel(x, *avg_pool_kernel_args(args, count_include_pad, divisor))
    if needs_grad(x):
        x_shape = x._data.shape
        record(out, "AvgPool2DBackward0", (x,), lambda g: (
            avg_pool2d_grad_op(g, x_shape, args, count_include_pad, divisor, fused),))
    return out


def avg_pool2d_grad_op(g: Tensor, x_shape: tuple[int, ...], args: PoolArgs,
                       count_include_pad: bool, divisor: int | None,
                       fused: bool = True) -> Tensor:
    """The gradient of ``avg_pool2d``'s input; differentiable in ``g``."""
    kernel = fused_kernel("avg_pool2d_grad", g, fused)
    if kernel is None:
        return _avg_pool_grad_composed(g, tuple(x_shape), args, count_include_pad, divisor,
                                       fused)
    out = kernel(g, tuple(x_shape), *avg_pool_kernel_args(args, count_include_pad, divisor))
    if needs_grad(g):
        record(out, "AvgPool2DBackwardBackward0", (g,), lambda gg: (
            avg_pool2d_op(gg, args, count_include_pad, divisor, fused),))
    return out


def _divisors(x_shape: Sequence[int], args: PoolArgs, count_include_pad: bool,
              divisor: int | None, like: Tensor) -> Tensor | int:
    if divisor is not None:
        return divisor
    host = avg_pool_divisors(tuple(x_shape[2:]), args.out, args.kernel, args.stride,
                             args.padding, count_include_pad)
    return to_tensor(host, like, like.dtype)


def _avg_pool_composed(x: Tensor, args: PoolArgs, count_include_pad: bool,
                       divisor: int | None) -> Tensor:
    xp = pad2d(x, args.padding, _ceil_extra(x._data.shape, args))
    sums = _sum(im2col(xp, args.kernel, args.stride, args.dilation, args.out), 2)
    return ew.div(sums, _divisors(x._data.shape, args, count_include_pad, divisor, x))


def _avg_pool_grad_composed(g: Tensor, x_shape: tuple[int, ...], args: PoolArgs,
                            count_include_pad: bool, divisor: int | None,
                            fused: bool) -> Tensor:
    """The window-sum's gradient is that of a convolution with a kernel of ones: run it
    on the (N * C) planes as channels of size 1, over the input grown by ceil_mode's
    extra padding, then cut that off."""
    n, c, h, w = x_shape
    eh, ew_ = _ceil_extra(x_shape, args)
    g = ew.div(g, _divisors(x_shape, args, count_include_pad, divisor, g))
    ones = full_like_device(1, (1, 1, *args.kernel), g.dtype, g)
    planes = reshape(g, (n * c, 1, *args.out))
    conv = ConvArgs(args.stride, args.padding, (1, 1), 1)
    dx = conv2d_grad_input_op(planes, ones, (n * c, 1, h + eh, w + ew_), conv, fused)
    if eh or ew_:
        dx = slice_tensor(dx, (slice(None), slice(None), slice(0, h), slice(0, w)))
    return reshape(dx, x_shape)


@bfloat16_in_float32
def adaptive_avg_pool2d(input: Tensor, output_size: Any) -> Tensor:
    """Mean over ``output_size`` windows that tile ``input`` (N, C, H, W) or (C, H, W), as
    ``torch.nn.functional.adaptive_avg_pool2d``: window ``i`` of an axis of size ``n``
    spans ``floor(i * n / out)`` to ``ceil((i + 1) * n / out)``. ``None`` in
    ``output_size`` keeps that size.

    >>> import flambeau
    >>> from flambeau.nn import functional as F
    >>> F.adaptive_avg_pool2d(flambeau.arange(16.).reshape(1, 4, 4), 1).tolist()
    [[[7.5]]]
    """
    op = "adaptive_avg_pool2d"
    check_float(op, input)
    x, unbatched = with_batch(op, input, 2)
    h, w = x._data.shape[2:]
    oh, ow = _adaptive_sizes(op, output_size, h, w)
    if h == 0 or w == 0:
        raise ShapeError(f"{op}: expected an input with non-zero height and width, got shape "
                         f"{list(input.shape)}")
    if h % oh == 0 and w % ow == 0:
        args = pool_args(op, x, (h // oh, w // ow), None, 0, 1, False, input.shape)
        out = avg_pool2d_op(x, args, True, None)
    else:  # windows of varying sizes: average rows, then columns, by matrix products
        rows = to_tensor(_adaptive_matrix(h, oh, x.dtype), x, x.dtype)
        cols = to_tensor(_adaptive_matrix(w, ow, x.dtype).T.copy(), x, x.dtype)
        out = matmul(matmul(rows, x), cols)
    return squeeze_axes(out, (0,)) if unbatched else out


def _adaptive_matrix(size: int, out: int, dtype: np.dtype) -> np.ndarray:
    """(out, size): row i averages adaptive window i."""
    matrix = np.zeros((out, size), np.float64)
    for i in range(out):
        start, end = (i * size) // out, -(-((i + 1) * size) // out)
        matrix[i, start:end] = 1.0 / (end - start)
    return matrix.astype(dtype)


def _pool1d_args(op: str, x: Tensor, kernel_size: Any, stride: Any, padding: Any,
                 dilation: Any, ceil_mode: bool, input_shape: Sequence[int]) -> PoolArgs:
    """1-d pooling arguments as those of a 2-d pooling of height 1."""
    kernel = int_tuple(kernel_size, 1, "kernel_size", op, 1)
    stride = kernel if stride is None or (isinstance(stride, (tuple, list)) and not stride) \
        else int_tuple(stride, 1, "stride", op, 1)
    padding = int_tuple(padding, 1, "padding", op, 0)
    dilation = int_tuple(dilation, 1, "dilation", op, 1)
    return pool_args(op, x, (1, *kernel), (1, *stride), (0, *padding), (1, *dilation),
                     ceil_mode, input_shape)


def _as_height_1(op: str, input: Tensor, kernel_size: Any, stride: Any, padding: Any,
                 dilation: Any, ceil_mode: bool) -> tuple[Tensor, PoolArgs, tuple[int, ...]]:
    """A 1-d pooling's input as an (N, C, 1, L) tensor, its 2-d arguments, and the axes to
    squeeze from the 2-d result."""
    check_float(op, input)
    x, unbatched = with_batch(op, input, 1)
    x = unsqueeze(x, 2)
    args = _pool1d_args(op, x, kernel_size, stride, padding, dilation, ceil_mode, input.shape)
    return x, args, (0, 2) if unbatched else (2,)


@bfloat16_in_float32
def max_pool1d(input: Tensor, kernel_size: Any, stride: Any = None, padding: Any = 0,
               dilation: Any = 1, ceil_mode: bool = False,
               return_indices: bool = False) -> Tensor | tuple[Tensor, Tensor]:
    """Maximum over each window of ``input`` (N, C, L) or (C, L), as
    ``torch.nn.functional.max_pool1d`` (a 2-d pooling of height 1).

    >>> import flambeau
    >>> from flambeau.nn import functional as F
    >>> F.max_pool1d(flambeau.tensor([[1.0, 3.0, 2.0, 0.0]]), 2).tolist()
    [[3.0, 2.0]]
    """
    x, args, drop = _as_height_1("max_pool1d", input, kernel_size, stride, padding, dilation,
                                 ceil_mode)
    values, indices = max_pool2d_op(x, args, return_indices)
    values = squeeze_axes(values, drop)
    if not return_indices:
        return values
    return values, squeeze_axes(indices, drop)


@bfloat16_in_float32
def avg_pool1d(input: Tensor, kernel_size: Any, stride: Any = None, padding: Any = 0,
               ceil_mode: bool = False, count_include_pad: bool = True) -> Tensor:
    """Mean over each window of ``input`` (N, C, L) or (C, L), as
    ``torch.nn.functional.avg_pool1d`` (a 2-d pooling of height 1).

    >>> import flambeau
    >>> from flambeau.nn import functional as F
    >>> F.avg_pool1d(flambeau.tensor([[1.0, 3.0, 2.0, 0.0]]), 2).tolist()
    [[2.0, 1.0]]
    """
    x, args, drop = _as_height_1("avg_pool1d", input, kernel_size, stride, padding, 1,
                                 ceil_mode)
    return squeeze_axes(avg_pool2d_op(x, args, bool(count_include_pad), None), drop)


@bfloat16_in_float32
def adaptive_max_pool2d(input: Tensor, output_size: Any,
                        return_indices: bool = False) -> Tensor | tuple[Tensor, Tensor]:
    """Maximum over ``output_size`` windows that tile ``input`` (N, C, H, W) or (C, H, W),
    as ``torch.nn.functional.adaptive_max_pool2d`` (windows as in
    :func:`adaptive_avg_pool2d`); with ``return_indices`` also the flat position
    ``h * W + w`` of each maximum.

    Windows of one axis are gathered to a common length (a shorter window repeats its
    last element, which leaves its maximum alone), columns first, then rows.

    >>> import flambeau
    >>> from flambeau.nn import functional as F
    >>> F.adaptive_max_pool2d(flambeau.arange(9.).reshape(1, 3, 3), 2).tolist()
    [[[4.0, 5.0], [7.0, 8.0]]]
    """
    op = "adaptive_max_pool2d"
    check_float(op, input)
    x, unbatched = with_batch(op, input, 2)
    h, w = x._data.shape[2:]
    oh, ow = _adaptive_sizes(op, output_size, h, w)
    if h == 0 or w == 0:
        raise ShapeError(f"{op}: expected an input with non-zero height and width, got shape "
                         f"{list(input.shape)}")
    # Columns first, then rows: of tied maxima PyTorch takes the first in row-major order.
    cols, col_at = _window_max(x, 3, w, ow)   # (N, C, H, ow)
    values, row_at = _window_max(cols, 2, h, oh)  # (N, C, oh, ow)
    if unbatched:
        values = squeeze_axes(values, (0,))
    if not return_indices:
        return values
    indices = ew.add(ew.mul(row_at, w), gather(col_at, 2, row_at))
    return values, squeeze_axes(indices, (0,)) if unbatched else indices


def _adaptive_sizes(op: str, output_size: Any, h: int, w: int) -> Pair:
    sizes = tuple(output_size) if isinstance(output_size, (tuple, list)) else (output_size,)
    if len(sizes) == 1:
        sizes = sizes * 2
    sizes = tuple(n if s is None else s for s, n in zip(sizes, (h, w)))
    oh, ow = int_tuple(sizes, 2, "output_size", op, 1)
    return oh, ow


def _window_max(x: Tensor, axis: int, size: int, out: int) -> tuple[Tensor, Tensor]:
    """Maxima of the ``out`` adaptive windows along ``axis`` (4-d ``x``), and the position
    along ``axis`` of each."""
    starts = [(i * size) // out for i in range(out)]
    ends = [-(-((i + 1) * size) // out) for i in range(out)]
    longest = max(e - s for s, e in zip(starts, ends))
    host = np.array([[min(s + j, e - 1) for j in range(longest)] for s, e in zip(starts, ends)])
    windows = take(x, to_tensor(host, x, np.dtype(np.int64)), axis)  # axis -> (out, longest)
    values, which = reduction_max(windows, axis + 1)
    shape = [1, 1, 1, 1]
    shape[axis] = out
    first = reshape(to_tensor(np.array(starts), x, np.dtype(np.int64)), tuple(shape))
    return values, ew.add(which, first)
