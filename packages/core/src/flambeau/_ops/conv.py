"""Convolution for ``nn.functional``, on any backend.

Every operation here has two implementations:

* a **composition** of tensor operations that every backend has: im2col by padding and
  strided slicing, stacked and multiplied with ``matmul``. Autograd differentiates it,
  and it is the reference the conformance kit compares fused kernels against
  (``flambeau.testing.fused_checks``);
* the backend's **optional fused kernels** (``conv2d``, ``conv2d_grad_input``,
  ``conv2d_grad_weight``; see :data:`flambeau.backends.OPTIONAL_KERNELS`), used where
  the backend has them, with backward rules recorded here.

Three operations close under differentiation: ``conv2d(x, w)``, its input gradient
``grad_input(g, w)`` (which is also ``conv_transpose2d``) and its weight gradient
``grad_weight(g, x)``. The gradient of each is made of the three, so a fused forward
pass keeps working under double backward, and a backend may provide any subset of the
fused kernels. 1-d convolutions run as 2-d ones of height 1. Pooling, which shares the
argument checks and im2col, is in :mod:`flambeau._ops.pooling`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

import numpy as np

from .._tensor import Tensor
from ..autograd._engine import record
from ..backends import window_count, window_shape
from ..errors import DTypeError, ShapeError
from . import elementwise as ew
from ._common import bfloat16_in_float32, needs_grad, same_device
from ._dispatch import fused_kernel
from .linalg import matmul
from .reduction import sum as _sum
from .shape import (
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

Pair = tuple[int, int]


class ConvArgs(NamedTuple):
    """What a 2-d convolution kernel takes besides its arrays."""

    stride: Pair
    padding: Pair
    dilation: Pair
    groups: int


# --- argument handling ------------------------------------------------------------------


def int_tuple(value: Any, n: int, what: str, op: str, minimum: int) -> tuple[int, ...]:
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


def check_float(op: str, *tensors: Tensor | None) -> None:
    """Raise unless ``tensors`` (``None`` skipped) are float tensors of one dtype and
    device."""
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


def with_batch(op: str, input: Tensor, nd: int) -> tuple[Tensor, bool]:
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


@bfloat16_in_float32
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


@bfloat16_in_float32
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
    check_float(op, input, weight, bias)
    x, unbatched = with_batch(op, input, nd)
    if weight.ndim != nd + 2:
        raise ShapeError(f"{op}: expected a {nd + 2}-d weight (out_channels, in_channels / "
                         f"groups, *kernel_size), got shape {list(weight.shape)}")
    groups = int_tuple(groups, 1, "groups", op, 1)[0]
    stride = int_tuple(stride, nd, "stride", op, 1)
    dilation = int_tuple(dilation, nd, "dilation", op, 1)
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
    padding = int_tuple(padding, nd, "padding", op, 0)
    spatial = tuple(x.shape[2:])
    if any(window_count(n, k, 1, p, d) < 1
                    for n, k, p, d in zip(spatial, kernel, padding, dilation)):
        raise ShapeError(
            f"{op}: the padded input "
            f"({' x '.join(str(n + 2 * p) for n, p in zip(spatial, padding))}) is smaller "
            f"than the dilated kernel "
            f"({' x '.join(str(d * (k - 1) + 1) for k, d in zip(kernel, dilation))}); input "
            f"shape {list(input.shape)}, weight shape {list(weight.shape)}")
    if bias is not None and tuple(bias.shape) != (out_channels,):
        raise ShapeError(f"{op}: expected a bias of shape [{out_channels}], got "
                         f"{list(bias.shape)}")
    w = weight
    if nd == 1:
        x, w = unsqueeze(x, 2), unsqueeze(w, 2)
        stride, padding, dilation = (1, *stride), (0, *padding), (1, *dilation)
    out = conv2d_op(x, w, ConvArgs(stride, padding, dilation, groups), bias=bias)
    if nd == 1:
        out = squeeze_axes(out, (2,))
    return squeeze_axes(out, (0,)) if unbatched else out


@bfloat16_in_float32
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
    check_float(op, input, weight, bias)
    x, unbatched = with_batch(op, input, 2)
    if weight.ndim != 4:
        raise ShapeError(f"{op}: expected a 4-d weight (in_channels, out_channels / groups, "
                         f"kh, kw), got shape {list(weight.shape)}")
    groups = int_tuple(groups, 1, "groups", op, 1)[0]
    stride = int_tuple(stride, 2, "stride", op, 1)
    padding = int_tuple(padding, 2, "padding", op, 0)
    dilation = int_tuple(dilation, 2, "dilation", op, 1)
    output_padding = int_tuple(output_padding, 2, "output_padding", op, 0)
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


def conv2d_op(x: Tensor, w: Tensor, args: ConvArgs, fused: bool = True,
              bias: Tensor | None = None) -> Tensor:
    """``conv2d`` of checked 4-d operands, plus ``bias`` (checked: one per output
    channel, of ``x``'s dtype and device): the backend's fused kernel where it has one
    (and ``fused``), else the composition.

    The fused kernel's output is new, so the bias is added into it in place and its
    gradient (the output gradient summed over all but the channels) taken in the same
    node: the channel-broadcast add made a second output-sized array, 0.15 ms of LeNet's
    first convolution (bench/bench_speed.py --rows lenet).
    """
    kernel = fused_kernel("conv2d", x, fused)
    if kernel is None:
        out = _conv2d_composed(x, w, args, fused)
        return out if bias is None else ew.add(out, reshape(bias, (-1, 1, 1)))
    out = kernel(x, w, *args)
    if bias is not None:
        k, data = out._k, out._data
        k.binary("add", data, k.reshape(bias._data, (data.shape[1], 1, 1)), out=data)
    if needs_grad(x, w, bias):
        x_shape, w_shape = x._data.shape, w._data.shape
        rx, rw, rb = x.requires_grad, w.requires_grad, getattr(bias, "requires_grad", False)

        def backward(g: Tensor) -> tuple:
            return (conv2d_grad_input_op(g, w, x_shape, args, fused) if rx else None,
                    conv2d_grad_weight_op(g, x, w_shape, args, fused) if rw else None,
                    _sum(g, (0, 2, 3)) if rb else None)

        record(out, "ConvolutionBackward0", (x, w, bias), backward, (x, w))
    return out


def conv2d_grad_input_op(g: Tensor, w: Tensor, x_shape: tuple[int, ...], args: ConvArgs,
                         fused: bool = True,
                         name: str = "ConvolutionBackwardBackward0") -> Tensor:
    """The gradient of ``conv2d``'s input (of shape ``x_shape``) for output gradient ``g``;
    differentiable in ``g`` and ``w``."""
    kernel = fused_kernel("conv2d_grad_input", g, fused)
    if kernel is None:
        return _grad_input_composed(g, w, tuple(x_shape), args, fused)
    out = kernel(g, w, tuple(x_shape), *args)
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
    kernel = fused_kernel("conv2d_grad_weight", g, fused)
    if kernel is None:
        return _grad_weight_composed(g, x, tuple(w_shape), args)
    out = kernel(g, x, tuple(w_shape), *args)
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


def im2col(x: Tensor, kernel: Pair, stride: Pair, dilation: Pair, out: Pair) -> Tensor:
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


def pad2d(x: Tensor, padding: Pair, extra: Pair = (0, 0), value: float = 0.0) -> Tensor:
    """``x`` padded by ``padding`` on both sides and ``extra`` more at the end."""
    (ph, pw), (eh, ew_) = padding, extra
    if not (ph or pw or eh or ew_):
        return x
    return pad(x, (pw, pw + ew_, ph, ph + eh), value=value)


def _conv2d_composed(x: Tensor, w: Tensor, args: ConvArgs, fused: bool = False) -> Tensor:
    n, _, h, wd = x._data.shape
    o, cg, kh, kw = w._data.shape
    g = args.groups
    out = window_shape((h, wd), (kh, kw), args.stride, args.padding, args.dilation)
    cols = im2col(pad2d(x, args.padding), (kh, kw), args.stride, args.dilation, out)
    cols = reshape(cols, (n, g, cg * kh * kw, out[0] * out[1]))
    y = matmul(reshape(w, (g, o // g, cg * kh * kw)), cols)  # (N, G, O // G, Ho * Wo)
    return reshape(y, (n, o, *out))


def _grad_weight_composed(g: Tensor, x: Tensor, w_shape: tuple[int, ...],
                          args: ConvArgs) -> Tensor:
    n, o, ho, wo = g._data.shape
    _, cg, kh, kw = w_shape
    groups = args.groups
    cols = im2col(pad2d(x, args.padding), (kh, kw), args.stride, args.dilation, (ho, wo))
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
