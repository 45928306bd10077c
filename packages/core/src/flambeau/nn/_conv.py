"""Convolution and pooling for ``nn.functional``, on any backend.

Every operation here has two implementations:

* a **composition** of tensor operations that every backend has: im2col by padding and
  strided slicing, stacked and multiplied with ``matmul``. Autograd differentiates it,
  and it is the reference the conformance kit compares fused kernels against
  (``flambeau.testing.fused_checks``);
* the backend's **optional fused kernels** (``conv2d``, ``conv2d_grad_input``,
  ``conv2d_grad_weight``, ``max_pool2d``[``_grad``], ``avg_pool2d``[``_grad``]; see
  :data:`flambeau.backends.OPTIONAL_KERNELS`), used where the backend has them, with
  backward rules recorded here.

Three operations close under differentiation: ``conv2d(x, w)``, its input gradient
``grad_input(g, w)`` (which is also ``conv_transpose2d``) and its weight gradient
``grad_weight(g, x)``. The gradient of each is made of the three, so a fused forward
pass keeps working under double backward, and a backend may provide any subset of the
fused kernels. 1-d convolutions run as 2-d ones of height 1.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, NamedTuple

import numpy as np

from .._ops import elementwise as ew
from .._ops._common import (
    Tensor,
    _wrap,
    arange_like,
    full_like_device,
    needs_grad,
    record,
    same_device,
)
from .._ops.indexing import gather, scatter_add
from .._ops.linalg import matmul
from .._ops.reduction import argmax
from .._ops.reduction import sum as _sum
from .._ops.shape import (
    flip,
    pad,
    permute,
    reshape,
    slice_tensor,
    squeeze_axes,
    stack,
    transpose,
    unsqueeze,
)
from ..backends import avg_pool_divisors, window_count
from ..errors import DTypeError, ShapeError

Pair = tuple[int, int]


class ConvArgs(NamedTuple):
    """What a 2-d convolution kernel takes besides its arrays."""

    stride: Pair
    padding: Pair
    dilation: Pair
    groups: int


class PoolArgs(NamedTuple):
    """What a 2-d pooling kernel takes besides its arrays, and the output size."""

    kernel: Pair
    stride: Pair
    padding: Pair
    dilation: Pair
    ceil_mode: bool
    out: Pair


# --- argument handling ------------------------------------------------------------------


def _tuple(value: Any, n: int, what: str, op: str, minimum: int) -> tuple[int, ...]:
    """``value`` (an int or a sequence of 1 or ``n`` ints) as ``n`` ints >= ``minimum``."""
    items = tuple(value) if isinstance(value, (tuple, list)) else (value,)
    if len(items) == 1:
        items = items * n
    if len(items) != n or not all(
            isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in items):
        raise ValueError(f"{op}: {what} must be an int or {n} ints, got {value!r}")
    items = tuple(int(v) for v in items)
    if any(v < minimum for v in items):
        raise ValueError(f"{op}: {what} must be >= {minimum}, got {value!r}")
    return items


def _check_float(op: str, *tensors: Tensor | None) -> None:
    tensors = tuple(t for t in tensors if t is not None)
    for t in tensors:
        if not isinstance(t, Tensor):
            raise TypeError(f"{op}: expected Tensors, got {type(t).__name__}")
    first = tensors[0]
    for t in tensors:
        if t.dtype.kind != "f" or t.dtype != first.dtype:
            raise DTypeError(
                f"{op}: expected floating-point tensors of one dtype, got "
                f"{', '.join(str(u.dtype) for u in tensors)}; convert them first, e.g. "
                "with .float()")
        same_device(op, first, t)


def _batched(op: str, input: Tensor, nd: int) -> tuple[Tensor, bool]:
    """``input`` with a batch dimension, and whether one was added."""
    if input.ndim not in (nd + 1, nd + 2):
        raise ShapeError(f"{op}: expected a {nd + 1}-d (unbatched) or {nd + 2}-d (batched) "
                         f"input, got shape {list(input.shape)}")
    return (unsqueeze(input, 0), True) if input.ndim == nd + 1 else (input, False)


def _same_padding(op: str, x: Tensor, kernel: Sequence[int], stride: Sequence[int],
                  dilation: Sequence[int]) -> tuple[Tensor, tuple[int, ...]]:
    """PyTorch's ``padding="same"``: the input padded by one more at the end of an axis
    whose total padding is odd, and the symmetric padding left to do."""
    if any(s != 1 for s in stride):
        raise ValueError(f"{op}: padding='same' is not supported for strided convolutions "
                         f"(stride={tuple(stride)}); give the padding as numbers")
    totals = [d * (k - 1) for k, d in zip(kernel, dilation)]
    extra = [t % 2 for t in totals]
    if any(extra):
        widths: list[int] = []
        for e in reversed(extra):
            widths += [0, e]
        x = pad(x, widths)
    return x, tuple(t // 2 for t in totals)


# --- convolution ------------------------------------------------------------------------


def conv1d(input: Tensor, weight: Tensor, bias: Tensor | None = None, stride: Any = 1,
           padding: Any = 0, dilation: Any = 1, groups: int = 1) -> Tensor:
    """1-d convolution (cross-correlation) of ``input`` (N, C, L) or (C, L) with
    ``weight`` (O, C // groups, k), as ``torch.nn.functional.conv1d``.

    >>> import flambeau
    >>> from flambeau.nn import functional as F
    >>> F.conv1d(flambeau.ones(1, 1, 5), flambeau.ones(1, 1, 3)).tolist()
    [[[3.0, 3.0, 3.0]]]
    """
    return _conv_nd("conv1d", 1, input, weight, bias, stride, padding, dilation, groups)


def conv2d(input: Tensor, weight: Tensor, bias: Tensor | None = None, stride: Any = 1,
           padding: Any = 0, dilation: Any = 1, groups: int = 1) -> Tensor:
    """2-d convolution (cross-correlation) of ``input`` (N, C, H, W) or (C, H, W) with
    ``weight`` (O, C // groups, kh, kw), as ``torch.nn.functional.conv2d``.

    ``stride``, ``padding`` and ``dilation`` are ints or pairs; ``padding`` may also be
    ``"valid"`` (none) or ``"same"`` (output as large as the input; stride 1 only).

    >>> import flambeau
    >>> from flambeau.nn import functional as F
    >>> F.conv2d(flambeau.ones(1, 1, 3, 3), flambeau.ones(1, 1, 2, 2), padding=1).shape
    flambeau.Size([1, 1, 4, 4])
    """
    return _conv_nd("conv2d", 2, input, weight, bias, stride, padding, dilation, groups)


def _conv_nd(op: str, nd: int, input: Tensor, weight: Tensor, bias: Tensor | None,
             stride: Any, padding: Any, dilation: Any, groups: int) -> Tensor:
    _check_float(op, input, weight, bias)
    x, unbatched = _batched(op, input, nd)
    if weight.ndim != nd + 2:
        raise ShapeError(f"{op}: expected a {nd + 2}-d weight (out_channels, in_channels / "
                         f"groups, *kernel_size), got shape {list(weight.shape)}")
    groups = _tuple(groups, 1, "groups", op, 1)[0]
    stride = _tuple(stride, nd, "stride", op, 1)
    dilation = _tuple(dilation, nd, "dilation", op, 1)
    out_channels, kernel = weight.shape[0], tuple(weight.shape[2:])
    if out_channels % groups:
        raise ShapeError(f"{op}: given groups={groups}, the weight's out_channels (dimension "
                         f"0) must be divisible by {groups}, got weight of shape "
                         f"{list(weight.shape)}")
    if x.shape[1] != weight.shape[1] * groups:
        raise ShapeError(
            f"{op}: given groups={groups} and a weight of shape {list(weight.shape)}, "
            f"expected an input with {weight.shape[1] * groups} channels, got "
            f"{x.shape[1]} channels (input shape {list(input.shape)})")
    if isinstance(padding, str):
        if padding == "same":
            x, padding = _same_padding(op, x, kernel, stride, dilation)
        elif padding == "valid":
            padding = (0,) * nd
        else:
            raise ValueError(f"{op}: padding must be 'valid', 'same', an int or {nd} ints, "
                             f"got {padding!r}")
    padding = _tuple(padding, nd, "padding", op, 0)
    spatial = tuple(x.shape[2:])
    if any(window_count(n, k, 1, p, d) < 1
                    for n, k, p, d in zip(spatial, kernel, padding, dilation)):
        raise ShapeError(
            f"{op}: the padded input "
            f"({' x '.join(str(n + 2 * p) for n, p in zip(spatial, padding))}) is smaller "
            f"than the dilated kernel "
            f"({' x '.join(str(d * (k - 1) + 1) for k, d in zip(kernel, dilation))}); input "
            f"shape {list(input.shape)}, weight shape {list(weight.shape)}")
    w = weight
    if nd == 1:
        x, w = unsqueeze(x, 2), unsqueeze(w, 2)
        stride, padding, dilation = (1, *stride), (0, *padding), (1, *dilation)
    out = conv2d_op(x, w, ConvArgs(stride, padding, dilation, groups))
    if nd == 1:
        out = squeeze_axes(out, (2,))
    if bias is not None:
        if tuple(bias.shape) != (out_channels,):
            raise ShapeError(f"{op}: expected a bias of shape [{out_channels}], got "
                             f"{list(bias.shape)}")
        out = ew.add(out, reshape(bias, (out_channels,) + (1,) * nd))
    return squeeze_axes(out, (0,)) if unbatched else out


def conv_transpose2d(input: Tensor, weight: Tensor, bias: Tensor | None = None,
                     stride: Any = 1, padding: Any = 0, output_padding: Any = 0,
                     groups: int = 1, dilation: Any = 1) -> Tensor:
    """Transposed 2-d convolution (the gradient of ``conv2d`` with respect to its input)
    of ``input`` (N, C, H, W) or (C, H, W) with ``weight`` (C, O // groups, kh, kw), as
    ``torch.nn.functional.conv_transpose2d``.

    The output has ``(H - 1) * stride - 2 * padding + dilation * (kh - 1) +
    output_padding + 1`` rows (likewise columns).

    >>> import flambeau
    >>> from flambeau.nn import functional as F
    >>> F.conv_transpose2d(flambeau.ones(1, 1, 2, 2), flambeau.ones(1, 1, 2, 2),
    ...                    stride=2).shape
    flambeau.Size([1, 1, 4, 4])
    """
    op = "conv_transpose2d"
    _check_float(op, input, weight, bias)
    x, unbatched = _batched(op, input, 2)
    if weight.ndim != 4:
        raise ShapeError(f"{op}: expected a 4-d weight (in_channels, out_channels / groups, "
                         f"kh, kw), got shape {list(weight.shape)}")
    groups = _tuple(groups, 1, "groups", op, 1)[0]
    stride = _tuple(stride, 2, "stride", op, 1)
    padding = _tuple(padding, 2, "padding", op, 0)
    dilation = _tuple(dilation, 2, "dilation", op, 1)
    output_padding = _tuple(output_padding, 2, "output_padding", op, 0)
    if x.shape[1] != weight.shape[0] or weight.shape[0] % groups:
        raise ShapeError(
            f"{op}: given groups={groups} and a weight of shape {list(weight.shape)}, "
            f"expected an input with {weight.shape[0]} channels (divisible by groups), got "
            f"{x.shape[1]} channels (input shape {list(input.shape)})")
    if any(op_ >= max(s, d)
                    for op_, s, d in zip(output_padding, stride, dilation)):
        raise ValueError(f"{op}: output_padding must be smaller than stride or dilation, got "
                         f"output_padding={output_padding}, stride={stride}, "
                         f"dilation={dilation}")
    size = tuple((n - 1) * s - 2 * p + d * (k - 1) + o + 1 for n, s, p, d, k, o in zip(
        x.shape[2:], stride, padding, dilation, weight.shape[2:], output_padding))
    if any(n < 1 for n in size):
        raise ShapeError(f"{op}: the output would have size {list(size)} for input shape "
                         f"{list(input.shape)} and weight shape {list(weight.shape)}")
    out_channels = weight.shape[1] * groups
    x_shape = (x.shape[0], out_channels, *size)
    out = conv2d_grad_input_op(x, weight, x_shape, ConvArgs(stride, padding, dilation, groups),
                               name="ConvolutionBackward0")
    if bias is not None:
        if tuple(bias.shape) != (out_channels,):
            raise ShapeError(f"{op}: expected a bias of shape [{out_channels}], got "
                             f"{list(bias.shape)}")
        out = ew.add(out, reshape(bias, (out_channels, 1, 1)))
    return squeeze_axes(out, (0,)) if unbatched else out


def conv2d_op(x: Tensor, w: Tensor, args: ConvArgs, fused: bool = True) -> Tensor:
    """``conv2d`` of checked 4-d operands: the backend's fused kernel where it has one
    (and ``fused``), else the composition."""
    kernel = getattr(x._k, "conv2d", None) if fused else None
    if kernel is None:
        return _conv2d_composed(x, w, args, fused)
    out = _wrap(kernel(x._data, w._data, *args), x._device, x._k)
    if needs_grad(x, w):
        x_shape, w_shape = x._data.shape, w._data.shape
        rx, rw = x.requires_grad, w.requires_grad

        def backward(g: Tensor) -> tuple:
            return (conv2d_grad_input_op(g, w, x_shape, args, fused) if rx else None,
                    conv2d_grad_weight_op(g, x, w_shape, args, fused) if rw else None)

        record(out, "ConvolutionBackward0", (x, w), backward, (x, w))
    return out


def conv2d_grad_input_op(g: Tensor, w: Tensor, x_shape: tuple[int, ...], args: ConvArgs,
                         fused: bool = True,
                         name: str = "ConvolutionBackwardBackward0") -> Tensor:
    """The gradient of ``conv2d``'s input (of shape ``x_shape``) for output gradient ``g``;
    differentiable in ``g`` and ``w``."""
    kernel = getattr(g._k, "conv2d_grad_input", None) if fused else None
    if kernel is None:
        return _grad_input_composed(g, w, tuple(x_shape), args, fused)
    out = _wrap(kernel(g._data, w._data, tuple(x_shape), *args), g._device, g._k)
    if needs_grad(g, w):
        g_shape, w_shape = g._data.shape, w._data.shape
        rg, rw = g.requires_grad, w.requires_grad

        def backward(gg: Tensor) -> tuple:
            # <gg, A_w^T g> = <conv2d(gg, w), g>: conv2d is the adjoint in g and in w.
            return (_first_windows(conv2d_op(gg, w, args, fused), g_shape) if rg else None,
                    conv2d_grad_weight_op(g, gg, w_shape, args, fused) if rw else None)

        record(out, name, (g, w), backward, (g, w))
    return out


def conv2d_grad_weight_op(g: Tensor, x: Tensor, w_shape: tuple[int, ...], args: ConvArgs,
                          fused: bool = True) -> Tensor:
    """The gradient of ``conv2d``'s weight (of shape ``w_shape``) for output gradient
    ``g`` and input ``x``; differentiable in ``g`` and ``x``."""
    kernel = getattr(g._k, "conv2d_grad_weight", None) if fused else None
    if kernel is None:
        return _grad_weight_composed(g, x, tuple(w_shape), args)
    out = _wrap(kernel(g._data, x._data, tuple(w_shape), *args), g._device, g._k)
    if needs_grad(g, x):
        g_shape, x_shape = g._data.shape, x._data.shape
        rg, rx = g.requires_grad, x.requires_grad

        def backward(gw: Tensor) -> tuple:
            return (_first_windows(conv2d_op(x, gw, args, fused), g_shape) if rg else None,
                    conv2d_grad_input_op(g, gw, x_shape, args, fused) if rx else None)

        record(out, "ConvolutionBackwardBackward0", (g, x), backward, (g, x))
    return out


def _first_windows(y: Tensor, shape: tuple[int, ...]) -> Tensor:
    """``y`` cut to its first ``shape[2:]`` windows (gradients may cover fewer windows than
    their input allows, e.g. in ``conv_transpose2d`` with ``output_padding``)."""
    if y._data.shape == tuple(shape):
        return y
    return slice_tensor(y, (slice(None), slice(None), slice(0, shape[2]), slice(0, shape[3])))


def _windows(x: Tensor, kernel: Pair, stride: Pair, dilation: Pair, out: Pair) -> Tensor:
    """im2col of an already padded ``x``: (N, C, kh * kw, Ho, Wo), one strided slice per
    kernel position."""
    (kh, kw), (sh, sw), (dh, dw), (ho, wo) = kernel, stride, dilation, out
    pieces = [
        slice_tensor(x, (slice(None), slice(None),
                         slice(i * dh, i * dh + (ho - 1) * sh + 1, sh),
                         slice(j * dw, j * dw + (wo - 1) * sw + 1, sw)))
        for i in range(kh) for j in range(kw)
    ]
    return stack(pieces, 2)


def _pad2d(x: Tensor, padding: Pair, extra: Pair = (0, 0), value: float = 0.0) -> Tensor:
    """``x`` padded by ``padding`` on both sides and ``extra`` more at the end."""
    (ph, pw), (eh, ew_) = padding, extra
    if not (ph or pw or eh or ew_):
        return x
    return pad(x, (pw, pw + ew_, ph, ph + eh), value=value)


def _conv2d_composed(x: Tensor, w: Tensor, args: ConvArgs, fused: bool = False) -> Tensor:
    n, _, h, wd = x._data.shape
    o, cg, kh, kw = w._data.shape
    g = args.groups
    out = (window_count(h, kh, args.stride[0], args.padding[0], args.dilation[0]),
           window_count(wd, kw, args.stride[1], args.padding[1], args.dilation[1]))
    cols = _windows(_pad2d(x, args.padding), (kh, kw), args.stride, args.dilation, out)
    cols = reshape(cols, (n, g, cg * kh * kw, out[0] * out[1]))
    y = matmul(reshape(w, (g, o // g, cg * kh * kw)), cols)  # (N, G, O // G, Ho * Wo)
    return reshape(y, (n, o, *out))


def _grad_weight_composed(g: Tensor, x: Tensor, w_shape: tuple[int, ...],
                          args: ConvArgs) -> Tensor:
    n, o, ho, wo = g._data.shape
    _, cg, kh, kw = w_shape
    groups = args.groups
    cols = _windows(_pad2d(x, args.padding), (kh, kw), args.stride, args.dilation, (ho, wo))
    cols = reshape(cols, (n, groups, cg * kh * kw, ho * wo))
    gm = reshape(g, (n, groups, o // groups, ho * wo))
    return reshape(_sum(matmul(gm, transpose(cols, -1, -2)), 0), w_shape)


def _grad_input_composed(g: Tensor, w: Tensor, x_shape: tuple[int, ...], args: ConvArgs,
                         fused: bool = False) -> Tensor:
    """A full correlation of ``g``, zero-stuffed by the stride, with the flipped kernel."""
    n, o, ho, wo = g._data.shape
    _, cg, kh, kw = w._data.shape
    h, wd = x_shape[2:]
    (sh, sw), (ph, pw), (dh, dw), groups = args
    if sh > 1 or sw > 1:  # ho * sh rows: each row of g followed by sh - 1 zero rows
        g = reshape(pad(reshape(g, (n, o, ho, 1, wo, 1)), (0, sw - 1, 0, 0, 0, sh - 1)),
                    (n, o, ho * sh, wo * sw))
    top, left = dh * (kh - 1) - ph, dw * (kw - 1) - pw
    g = pad(g, (left, wd - wo * sw + pw, top, h - ho * sh + ph))  # negative amounts crop
    wt = reshape(w, (groups, o // groups, cg, kh, kw))
    wt = reshape(flip(permute(wt, (0, 2, 1, 3, 4)), (3, 4)), (groups * cg, o // groups, kh, kw))
    return conv2d_op(g, wt, ConvArgs((1, 1), (0, 0), (dh, dw), groups), fused)


# --- pooling ----------------------------------------------------------------------------


def _pool_args(op: str, x: Tensor, kernel_size: Any, stride: Any, padding: Any,
               dilation: Any, ceil_mode: bool, input_shape: Sequence[int]) -> PoolArgs:
    kernel = _tuple(kernel_size, 2, "kernel_size", op, 1)
    stride = kernel if stride is None or (isinstance(stride, (tuple, list)) and not stride) \
        else _tuple(stride, 2, "stride", op, 1)
    padding = _tuple(padding, 2, "padding", op, 0)
    dilation = _tuple(dilation, 2, "dilation", op, 1)
    for k, p, d in zip(kernel, padding, dilation):
        if 2 * p > d * (k - 1) + 1:
            raise ValueError(f"{op}: padding should be at most half of the (dilated) kernel "
                             f"size, got padding={padding}, kernel_size={kernel}, "
                             f"dilation={dilation}")
    h, w = x._data.shape[2:]
    out = (window_count(h, kernel[0], stride[0], padding[0], dilation[0], ceil_mode),
           window_count(w, kernel[1], stride[1], padding[1], dilation[1], ceil_mode))
    if out[0] < 1 or out[1] < 1:
        raise ShapeError(f"{op}: input of shape {list(input_shape)} is too small for "
                         f"kernel_size={kernel}, stride={stride}, padding={padding}, "
                         f"dilation={dilation}: the output would be {out[0]} x {out[1]}")
    return PoolArgs(kernel, stride, padding, dilation, bool(ceil_mode), out)


def _ceil_extra(x_shape: Sequence[int], args: PoolArgs) -> Pair:
    """Padding needed at the end of each axis so that every window (ceil_mode's last one
    included) lies inside the padded input."""
    return tuple(max(0, (o - 1) * s + d * (k - 1) + 1 - n - 2 * p) for n, o, s, d, k, p
                 in zip(x_shape[2:], args.out, args.stride, args.dilation, args.kernel,
                        args.padding))


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
    _check_float(op, input)
    x, unbatched = _batched(op, input, 2)
    args = _pool_args(op, x, kernel_size, stride, padding, dilation, ceil_mode, input.shape)
    values, indices = max_pool2d_op(x, args, return_indices)
    if unbatched:
        values = squeeze_axes(values, (0,))
        indices = squeeze_axes(indices, (0,)) if return_indices else None
    return (values, indices) if return_indices else values


def max_pool2d_op(x: Tensor, args: PoolArgs, want_indices: bool = True,
                  fused: bool = True) -> tuple[Tensor, Tensor | None]:
    """(values, indices or None) of a checked 4-d input."""
    kernel = getattr(x._k, "max_pool2d", None) if fused else None
    if kernel is None:
        return _max_pool_composed(x, args, want_indices)
    values, indices = kernel(x._data, *args[:5])
    out = _wrap(values, x._device, x._k)
    idx = _wrap(indices, x._device, x._k)
    if needs_grad(x):
        x_shape = x._data.shape
        record(out, "MaxPool2DWithIndicesBackward0", (x,),
               lambda g: (max_pool2d_grad_op(g, idx, x_shape, args, fused),))
    return out, idx


def max_pool2d_grad_op(g: Tensor, indices: Tensor, x_shape: tuple[int, ...], args: PoolArgs,
                       fused: bool = True) -> Tensor:
    """``g`` summed into the input positions ``indices`` name; differentiable in ``g``."""
    n, c, h, w = x_shape
    kernel = getattr(g._k, "max_pool2d_grad", None) if fused else None
    flat_index = reshape(indices, (n, c, -1))
    if kernel is None:
        zeros = full_like_device(0, (n, c, h * w), g.dtype, g)
        return reshape(scatter_add(zeros, 2, flat_index, reshape(g, (n, c, -1))), x_shape)
    out = _wrap(kernel(g._data, indices._data, tuple(x_shape), *args[:5]), g._device, g._k)
    if needs_grad(g):
        g_shape = g._data.shape
        record(out, "MaxPool2DWithIndicesBackwardBackward0", (g,),
               lambda gg: (reshape(gather(reshape(gg, (n, c, h * w)), 2, flat_index),
                                   g_shape),))
    return out


def _max_pool_composed(x: Tensor, args: PoolArgs,
                       want_indices: bool) -> tuple[Tensor, Tensor | None]:
    xp = _pad2d(x, args.padding, _ceil_extra(x._data.shape, args), -math.inf)
    cols = _windows(xp, args.kernel, args.stride, args.dilation, args.out)  # (N, C, K, ...)
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
    _check_float(op, input)
    x, unbatched = _batched(op, input, 2)
    args = _pool_args(op, x, kernel_size, stride, padding, 1, ceil_mode, input.shape)
    if divisor_override is not None:
        divisor_override = _tuple(divisor_override, 1, "divisor_override", op, 1)[0]
    out = avg_pool2d_op(x, args, bool(count_include_pad), divisor_override)
    return squeeze_axes(out, (0,)) if unbatched else out


def _avg_extra(args: PoolArgs, count_include_pad: bool, divisor: int | None) -> tuple:
    """avg_pool2d's kernel arguments (PoolArgs has dilation, which avg pooling lacks)."""
    return (args.kernel, args.stride, args.padding, args.ceil_mode, count_include_pad, divisor)


def avg_pool2d_op(x: Tensor, args: PoolArgs, count_include_pad: bool, divisor: int | None,
                  fused: bool = True) -> Tensor:
    """``avg_pool2d`` of a checked 4-d input."""
    kernel = getattr(x._k, "avg_pool2d", None) if fused else None
    if kernel is None:
        return _avg_pool_composed(x, args, count_include_pad, divisor)
    out = _wrap(kernel(x._data, *_avg_extra(args, count_include_pad, divisor)), x._device,
                x._k)
    if needs_grad(x):
        x_shape = x._data.shape
        record(out, "AvgPool2DBackward0", (x,), lambda g: (
            avg_pool2d_grad_op(g, x_shape, args, count_include_pad, divisor, fused),))
    return out


def avg_pool2d_grad_op(g: Tensor, x_shape: tuple[int, ...], args: PoolArgs,
                       count_include_pad: bool, divisor: int | None,
                       fused: bool = True) -> Tensor:
    """The gradient of ``avg_pool2d``'s input; differentiable in ``g``."""
    kernel = getattr(g._k, "avg_pool2d_grad", None) if fused else None
    if kernel is None:
        return _avg_pool_grad_composed(g, tuple(x_shape), args, count_include_pad, divisor,
                                       fused)
    out = _wrap(kernel(g._data, tuple(x_shape), *_avg_extra(args, count_include_pad, divisor)),
                g._device, g._k)
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
    return _wrap(like._k.from_numpy(host.astype(like.dtype)), like._device, like._k)


def _avg_pool_composed(x: Tensor, args: PoolArgs, count_include_pad: bool,
                       divisor: int | None) -> Tensor:
    xp = _pad2d(x, args.padding, _ceil_extra(x._data.shape, args))
    sums = _sum(_windows(xp, args.kernel, args.stride, args.dilation, args.out), 2)
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
    _check_float(op, input)
    x, unbatched = _batched(op, input, 2)
    h, w = x._data.shape[2:]
    sizes = tuple(output_size) if isinstance(output_size, (tuple, list)) else (output_size,)
    if len(sizes) == 1:
        sizes = sizes * 2
    sizes = tuple(n if s is None else s for s, n in zip(sizes, (h, w)))
    oh, ow = _tuple(sizes, 2, "output_size", op, 1)
    if h == 0 or w == 0:
        raise ShapeError(f"{op}: expected an input with non-zero height and width, got shape "
                         f"{list(input.shape)}")
    if h % oh == 0 and w % ow == 0:
        args = _pool_args(op, x, (h // oh, w // ow), None, 0, 1, False, input.shape)
        out = avg_pool2d_op(x, args, True, None)
    else:  # windows of varying sizes: average rows, then columns, by matrix products
        rows = _wrap(x._k.from_numpy(_adaptive_matrix(h, oh, x.dtype)), x._device, x._k)
        cols = _wrap(x._k.from_numpy(_adaptive_matrix(w, ow, x.dtype).T.copy()), x._device,
                     x._k)
        out = matmul(matmul(rows, x), cols)
    return squeeze_axes(out, (0,)) if unbatched else out


def _adaptive_matrix(size: int, out: int, dtype: np.dtype) -> np.ndarray:
    """(out, size): row i averages adaptive window i."""
    matrix = np.zeros((out, size), np.float64)
    for i in range(out):
        start, end = (i * size) // out, -(-((i + 1) * size) // out)
        matrix[i, start:end] = 1.0 / (end - start)
    return matrix.astype(dtype)
