"""Convolution and pooling layers: Conv1d, Conv2d, ConvTranspose2d (and their lazy
names), MaxPool1d/2d, AvgPool1d/2d, AdaptiveAvgPool2d, AdaptiveMaxPool2d, with PyTorch's
arguments and reprs."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..._tensor import Tensor
from ...errors import ShapeError
from .. import functional as F
from ..init import default_linear_init, default_linear_init_bias
from ..module import LayerInputError, Module
from ..parameter import lazy_alias, weight_and_bias


def _ntuple(value: Any, n: int, what: str) -> tuple[int, ...]:
    items = tuple(value) if isinstance(value, (tuple, list)) else (value,) * n
    if len(items) != n or not all(isinstance(v, int) and not isinstance(v, bool)
                                  for v in items):
        raise ValueError(f"{what} must be an int or {n} ints, got {value!r}")
    return tuple(int(v) for v in items)


class _ConvNd(Module):
    """What Conv1d, Conv2d and ConvTranspose2d share: arguments, parameters, laziness
    (``in_channels=None``: read from the first input), checks and repr."""

    _nd: int = 2
    _transposed: bool = False

    def __init__(self, in_channels: int | None, out_channels: int, kernel_size: Any,
                 stride: Any = 1, padding: Any = 0, dilation: Any = 1, groups: int = 1,
                 bias: bool = True, padding_mode: str = "zeros", device: Any = None,
                 dtype: Any = None, output_padding: Any = 0) -> None:
        super().__init__()
        nd, name = self._nd, type(self).__name__
        if not isinstance(groups, int) or groups < 1:
            raise ValueError(f"{name}: groups must be a positive int, got {groups!r}")
        if out_channels % groups or (in_channels is not None and in_channels % groups):
            raise ValueError(f"{name}: in_channels ({in_channels}) and out_channels "
                             f"({out_channels}) must both be divisible by groups ({groups})")
        if padding_mode != "zeros":
            raise ValueError(f"{name}: padding_mode={padding_mode!r} is not supported; "
                             "only 'zeros' is")
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.kernel_size = _ntuple(kernel_size, nd, "kernel_size")
        self.stride = _ntuple(stride, nd, "stride")
        self.dilation = _ntuple(dilation, nd, "dilation")
        self.output_padding = _ntuple(output_padding, nd, "output_padding")
        if isinstance(padding, str):
            if self._transposed or padding not in ("same", "valid"):
                raise ValueError(f"{name}: padding must be an int or {nd} ints"
                                 f"{'' if self._transposed else ', valid or same'}, got "
                                 f"{padding!r}")
            if padding == "same" and any(s != 1 for s in self.stride):
                raise ValueError(f"{name}: padding='same' is not supported for strided "
                                 f"convolutions (stride={self.stride})")
            self.padding: tuple[int, ...] | str = padding
        else:
            self.padding = _ntuple(padding, nd, "padding")
        self.groups = groups
        self.padding_mode = padding_mode
        self.transposed = self._transposed
        shape = None if in_channels is None else self._weight_shape(in_channels)
        self.weight, self.bias = weight_and_bias(shape, out_channels, bias, device, dtype)
        if shape is not None:
            self.reset_parameters()
        if not bias:
            self.register_parameter("bias", None)

    def _weight_shape(self, in_channels: int) -> tuple[int, ...]:
        if self._transposed:
            return (in_channels, self.out_channels // self.groups, *self.kernel_size)
        return (self.out_channels, in_channels // self.groups, *self.kernel_size)

    def reset_parameters(self) -> None:
        """PyTorch's default initialisation: kaiming_uniform(a=sqrt(5)) weights and
        U(±1/sqrt(fan_in)) biases."""
        default_linear_init(self.weight, self.bias)

    def _check_input(self, input: Tensor) -> None:
        nd = self._nd
        if not isinstance(input, Tensor) or input.ndim not in (nd + 1, nd + 2):
            shape = list(input.shape) if isinstance(input, Tensor) else type(input).__name__
            raise LayerInputError(self, f"expected a {nd + 1}-d (unbatched) or {nd + 2}-d "
                                        f"(batched) input, got {shape}")
        channels = input.shape[-nd - 1]
        if self.weight.is_uninitialized():
            if channels % self.groups:
                raise LayerInputError(self, f"expected input channels (dimension {-nd - 1}) "
                                            f"divisible by groups={self.groups}, got shape "
                                            f"{list(input.shape)}")
            self._materialize(input)
        elif channels != self.in_channels:
            raise LayerInputError(
                self, f"expected an input with in_channels={self.in_channels} (dimension "
                      f"{-nd - 1}) for a weight of shape {list(self.weight.shape)}, got shape "
                      f"{list(input.shape)}")

    def _materialize(self, input: Tensor) -> None:
        self.in_channels = input.shape[-self._nd - 1]
        self.weight.materialize(self._weight_shape(self.in_channels), device=input.device,
                                default_init=lambda w: default_linear_init(w, None))
        if self.bias is not None:
            weight = self.weight
            self.bias.materialize((self.out_channels,), device=input.device,
                                  default_init=lambda b: default_linear_init_bias(b, weight))

    def _call(self, fn: Callable[..., Tensor], *args: Any, **kwargs: Any) -> Tensor:
        """``fn(*args, **kwargs)`` with its shape errors reported as this layer's."""
        try:
            return fn(*args, **kwargs)
        except LayerInputError:
            raise
        except ShapeError as err:
            raise LayerInputError(self, str(err)) from err

    def extra_repr(self) -> str:
        nd = self._nd
        in_channels = 0 if self.in_channels is None else self.in_channels
        s = (f"{in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
             f"stride={self.stride}")
        if self.padding != (0,) * nd:
            s += f", padding={self.padding}"
        if self.dilation != (1,) * nd:
            s += f", dilation={self.dilation}"
        if self.output_padding != (0,) * nd:
            s += f", output_padding={self.output_padding}"
        if self.groups != 1:
            s += f", groups={self.groups}"
        if self.bias is None:
            s += ", bias=False"
        return s


class Conv1d(_ConvNd):
    """1-d convolution over (N, C_in, L) or (C_in, L) inputs; weight of shape
    (out_channels, in_channels // groups, kernel_size). ``in_channels=None`` makes it lazy.

    >>> from flambeau import nn
    >>> nn.Conv1d(4, 8, 3, stride=2)
    Conv1d(4, 8, kernel_size=(3,), stride=(2,))
    """

    _nd = 1

    def forward(self, input: Tensor) -> Tensor:
        self._check_input(input)
        return self._call(F.conv1d, input, self.weight, self.bias, self.stride, self.padding,
                          self.dilation, self.groups)


class Conv2d(_ConvNd):
    """2-d convolution over (N, C_in, H, W) or (C_in, H, W) inputs; weight of shape
    (out_channels, in_channels // groups, kh, kw). ``in_channels=None`` makes it lazy.

    >>> from flambeau import nn
    >>> nn.Conv2d(1, 6, kernel_size=5, padding=2)
    Conv2d(1, 6, kernel_size=(5, 5), stride=(1, 1), padding=(2, 2))
    """

    _nd = 2

    def forward(self, input: Tensor) -> Tensor:
        self._check_input(input)
        return self._call(F.conv2d, input, self.weight, self.bias, self.stride, self.padding,
                          self.dilation, self.groups)


class ConvTranspose2d(_ConvNd):
    """Transposed 2-d convolution (the gradient of Conv2d with respect to its input):
    weight of shape (in_channels, out_channels // groups, kh, kw).

    ``forward(input, output_size=None)``: ``output_size`` picks among the output sizes a
    stride > 1 makes possible, as in PyTorch.

    >>> from flambeau import nn
    >>> nn.ConvTranspose2d(4, 6, 3, stride=2, output_padding=1)
    ConvTranspose2d(4, 6, kernel_size=(3, 3), stride=(2, 2), output_padding=(1, 1))
    """

    _nd = 2
    _transposed = True

    def __init__(self, in_channels: int | None, out_channels: int, kernel_size: Any,
                 stride: Any = 1, padding: Any = 0, output_padding: Any = 0, groups: int = 1,
                 bias: bool = True, dilation: Any = 1, padding_mode: str = "zeros",
                 device: Any = None, dtype: Any = None) -> None:
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation,
                         groups, bias, padding_mode, device, dtype, output_padding)

    def forward(self, input: Tensor, output_size: Any = None) -> Tensor:
        self._check_input(input)
        output_padding = self.output_padding if output_size is None else \
            self._output_padding(input, output_size)
        return self._call(F.conv_transpose2d, input, self.weight, self.bias, self.stride,
                          self.padding, output_padding, self.groups, self.dilation)

    def _output_padding(self, input: Tensor, output_size: Any) -> tuple[int, ...]:
        sizes = list(output_size)[-2:]
        result = []
        for d, size in enumerate(sizes):
            n = input.shape[input.ndim - 2 + d]
            smallest = ((n - 1) * self.stride[d] - 2 * self.padding[d]
                        + self.dilation[d] * (self.kernel_size[d] - 1) + 1)
            largest = smallest + max(self.stride[d], self.dilation[d]) - 1
            if not smallest <= size <= largest:
                raise LayerInputError(
                    self, f"requested output_size {list(output_size)} is not reachable from "
                          f"input shape {list(input.shape)}: dimension {d - 2} must be "
                          f"between {smallest} and {largest}")
            result.append(size - smallest)
        return tuple(result)


def _lazy_builder(layer: type) -> Callable[..., Any]:
    def build(out_channels: int, kernel_size: Any, *args: Any, **kwargs: Any) -> Any:
        return layer(None, out_channels, kernel_size, *args, **kwargs)

    return build


LazyConv1d = lazy_alias(
    "LazyConv1d", Conv1d, _lazy_builder(Conv1d),
    "``LazyConv1d(out_channels, kernel_size, ...)``: a :class:`Conv1d` whose in_channels "
    "come from the first input.")
LazyConv2d = lazy_alias(
    "LazyConv2d", Conv2d, _lazy_builder(Conv2d),
    "``LazyConv2d(out_channels, kernel_size, ...)``: a :class:`Conv2d` whose in_channels "
    "come from the first input.")
LazyConvTranspose2d = lazy_alias(
    "LazyConvTranspose2d", ConvTranspose2d, _lazy_builder(ConvTranspose2d),
    "``LazyConvTranspose2d(out_channels, kernel_size, ...)``: a :class:`ConvTranspose2d` "
    "whose in_channels come from the first input.")


class _Pool2d(Module):
    """Input checks shared by the pooling layers (2-d; 1-d with ``_nd = 1``)."""

    _nd = 2

    def _call(self, fn: Callable[..., Any], input: Tensor, *args: Any, **kwargs: Any) -> Any:
        if not isinstance(input, Tensor) or input.ndim not in (self._nd + 1, self._nd + 2):
            shape = list(input.shape) if isinstance(input, Tensor) else type(input).__name__
            dims = "L" if self._nd == 1 else "H, W"
            raise LayerInputError(self, f"expected a {self._nd + 1}-d (C, {dims}) or "
                                        f"{self._nd + 2}-d (N, C, {dims}) input, got {shape}")
        try:
            return fn(input, *args, **kwargs)
        except ShapeError as err:
            raise LayerInputError(self, str(err)) from err


class MaxPool2d(_Pool2d):
    """Maximum over windows; ``stride`` defaults to ``kernel_size``.

    >>> from flambeau import nn
    >>> nn.MaxPool2d(2)
    MaxPool2d(kernel_size=2, stride=2, padding=0, dilation=1, ceil_mode=False)
    """

    def __init__(self, kernel_size: Any, stride: Any = None, padding: Any = 0,
                 dilation: Any = 1, return_indices: bool = False,
                 ceil_mode: bool = False) -> None:
        super().__init__()
        self.kernel_size = kernel_size
        self.stride = stride if stride is not None else kernel_size
        self.padding = padding
        self.dilation = dilation
        self.return_indices = return_indices
        self.ceil_mode = ceil_mode

    def forward(self, input: Tensor) -> Any:
        return self._call(F.max_pool2d, input, self.kernel_size, self.stride, self.padding,
                          self.dilation, ceil_mode=self.ceil_mode,
                          return_indices=self.return_indices)

    def extra_repr(self) -> str:
        return (f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}, "
                f"dilation={self.dilation}, ceil_mode={self.ceil_mode}")


class AvgPool2d(_Pool2d):
    """Mean over windows; ``stride`` defaults to ``kernel_size``; padding counts in the
    mean unless ``count_include_pad=False``.

    >>> from flambeau import nn
    >>> nn.AvgPool2d(2)
    AvgPool2d(kernel_size=2, stride=2, padding=0)
    """

    def __init__(self, kernel_size: Any, stride: Any = None, padding: Any = 0,
                 ceil_mode: bool = False, count_include_pad: bool = True,
                 divisor_override: int | None = None) -> None:
        super().__init__()
        self.kernel_size = kernel_size
        self.stride = stride if stride is not None else kernel_size
        self.padding = padding
        self.ceil_mode = ceil_mode
        self.count_include_pad = count_include_pad
        self.divisor_override = divisor_override

    def forward(self, input: Tensor) -> Tensor:
        return self._call(F.avg_pool2d, input, self.kernel_size, self.stride, self.padding,
                          self.ceil_mode, self.count_include_pad, self.divisor_override)

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"


class AdaptiveAvgPool2d(_Pool2d):
    """Mean over ``output_size`` windows that tile the input (``None`` keeps a size).

    >>> from flambeau import nn
    >>> nn.AdaptiveAvgPool2d((1, 1))
    AdaptiveAvgPool2d(output_size=(1, 1))
    """

    def __init__(self, output_size: Any) -> None:
        super().__init__()
        self.output_size = output_size

    def forward(self, input: Tensor) -> Tensor:
        return self._call(F.adaptive_avg_pool2d, input, self.output_size)

    def extra_repr(self) -> str:
        return f"output_size={self.output_size}"


class AdaptiveMaxPool2d(_Pool2d):
    """Maximum over ``output_size`` windows that tile the input (``None`` keeps a size).

    >>> from flambeau import nn
    >>> nn.AdaptiveMaxPool2d((5, 7))
    AdaptiveMaxPool2d(output_size=(5, 7))
    """

    def __init__(self, output_size: Any, return_indices: bool = False) -> None:
        super().__init__()
        self.output_size, self.return_indices = output_size, return_indices

    def forward(self, input: Tensor) -> Any:
        return self._call(F.adaptive_max_pool2d, input, self.output_size, self.return_indices)

    def extra_repr(self) -> str:
        return f"output_size={self.output_size}"


class MaxPool1d(MaxPool2d):
    """Maximum over windows of (N, C, L) or (C, L) inputs; ``stride`` defaults to
    ``kernel_size``.

    >>> from flambeau import nn
    >>> nn.MaxPool1d(3, stride=2)
    MaxPool1d(kernel_size=3, stride=2, padding=0, dilation=1, ceil_mode=False)
    """

    _nd = 1

    def forward(self, input: Tensor) -> Any:
        return self._call(F.max_pool1d, input, self.kernel_size, self.stride, self.padding,
                          self.dilation, ceil_mode=self.ceil_mode,
                          return_indices=self.return_indices)


class AvgPool1d(AvgPool2d):
    """Mean over windows of (N, C, L) or (C, L) inputs; ``stride`` defaults to
    ``kernel_size``.

    >>> from flambeau import nn
    >>> nn.AvgPool1d(3, stride=2)
    AvgPool1d(kernel_size=(3,), stride=(2,), padding=(0,))
    """

    _nd = 1

    def __init__(self, kernel_size: Any, stride: Any = None, padding: Any = 0,
                 ceil_mode: bool = False, count_include_pad: bool = True) -> None:
        one = lambda v: tuple(v) if isinstance(v, (tuple, list)) else (v,)  # noqa: E731
        super().__init__(one(kernel_size), one(stride if stride is not None else kernel_size),
                         one(padding), ceil_mode, count_include_pad)

    def forward(self, input: Tensor) -> Tensor:
        return self._call(F.avg_pool1d, input, self.kernel_size, self.stride, self.padding,
                          self.ceil_mode, self.count_include_pad)
