"""Normalisation layers: BatchNorm1d/2d/3d (and their lazy names), LayerNorm, GroupNorm.

Lazy batch norms (``num_features=None``) hold uninitialised parameters *and* lazy
buffers: ``running_mean`` and ``running_var`` are :func:`~flambeau.nn.UninitializedBuffer`
objects (uninitialised ``Parameter(requires_grad=False)`` registered as buffers), so
``state_dict``, ``load_state_dict`` and ``to()`` treat them exactly like lazy weights
before the first forward. ``num_batches_tracked`` has a known shape and exists at once.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ... import _dtypes
from ..._creation import full, tensor
from ..._tensor import Tensor
from .. import functional as F
from .. import init
from ..module import LayerInputError, Module
from ..parameter import Parameter, UninitializedBuffer, is_lazy, lazy_alias

_DEFAULTS = {"weight": 1.0, "bias": 0.0, "running_mean": 0.0, "running_var": 1.0}


class _BatchNorm(Module):
    """Batch normalisation over dimension 1 of ``(N, C, ...)`` inputs (PyTorch's)."""

    _dims: tuple[int, ...] = ()
    _rank: str = ""
    _layout: str = ""  # the expected shape, "{}" standing for the channels

    def __init__(self, num_features: int | None, eps: float = 1e-5,
                 momentum: float | None = 0.1, affine: bool = True,
                 track_running_stats: bool = True, device: Any = None, dtype: Any = None,
                 *, bias: bool = True) -> None:
        super().__init__()
        self.num_features = num_features
        self.eps = eps
        self.momentum = momentum
        self.affine = affine
        self.track_running_stats = track_running_stats
        lazy = num_features is None

        def vector(name: str, is_parameter: bool) -> Tensor:
            if lazy:
                value = Parameter() if is_parameter else UninitializedBuffer()
                value._lazy_to(device, dtype)
                return value
            data = full((num_features,), _DEFAULTS[name], device=device,
                        dtype=_dtypes.DEFAULT_FLOAT if dtype is None else dtype)
            return Parameter(data) if is_parameter else data

        if affine:
            self.weight = vector("weight", True)
            if bias:
                self.bias = vector("bias", True)
            else:
                self.register_parameter("bias", None)
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)
        if track_running_stats:
            self.register_buffer("running_mean", vector("running_mean", False))
            self.register_buffer("running_var", vector("running_var", False))
            self.register_buffer("num_batches_tracked",
                                 tensor(0, dtype=_dtypes.int64, device=device))
        else:
            for name in ("running_mean", "running_var", "num_batches_tracked"):
                self.register_buffer(name, None)

    def reset_running_stats(self) -> None:
        """Running mean 0, running variance 1, no batches tracked (lazy ones wait)."""
        if not self.track_running_stats:
            return
        for name in ("running_mean", "running_var"):
            value = self._buffers[name]
            if not is_lazy(value):
                init.constant_(value, _DEFAULTS[name])
        init.zeros_(self.num_batches_tracked)

    def reset_parameters(self) -> None:
        """PyTorch's defaults: running stats reset, weight 1, bias 0."""
        self.reset_running_stats()
        if self.weight is not None:
            init.ones_(self.weight)
        if self.bias is not None:
            init.zeros_(self.bias)

    # --- shapes -------------------------------------------------------------------------

    def _vectors(self) -> list[tuple[str, Tensor]]:
        return [(name, table[name]) for table in (self._parameters, self._buffers)
                for name in _DEFAULTS if table.get(name) is not None]

    def _prepare(self, input: Tensor) -> None:
        """Check the input's rank and channels; give lazy parameters and buffers their
        shape (``num_features`` comes from the input, or from values loaded already)."""
        if input.ndim not in self._dims:
            raise LayerInputError(self, f"expected a {self._rank} input "
                                        f"{self._layout.format('C')}, got shape "
                                        f"{list(input.shape)}")
        channels = input.shape[1]
        vectors = self._vectors()
        if self.num_features is None:
            known = [v.shape[0] for _, v in vectors if not is_lazy(v)]
            self.num_features = known[0] if known else channels
        if channels != self.num_features:
            raise LayerInputError(self, f"expected an input with num_features="
                                        f"{self.num_features} channels in dimension 1, i.e. "
                                        f"of shape {self._layout.format(self.num_features)}, "
                                        f"got shape {list(input.shape)}")
        for name, value in vectors:
            if is_lazy(value):
                fill = _DEFAULTS[name]
                value.materialize((channels,), device=input.device,
                                  default_init=lambda t, fill=fill: init.constant_(t, fill))

    def _lazy_loaded(self) -> None:
        known = [v.shape[0] for _, v in self._vectors() if not is_lazy(v)]
        if self.num_features is None and known:
            self.num_features = known[0]

    # --- forward ------------------------------------------------------------------------

    def forward(self, input: Tensor) -> Tensor:
        self._prepare(input)
        factor = 0.0 if self.momentum is None else self.momentum
        if self.training and self.track_running_stats and self.num_batches_tracked is not None:
            self.num_batches_tracked.add_(1)
            if self.momentum is None:  # a cumulative moving average
                tracked = self.num_batches_tracked  # (a meta tensor has no value to read)
                factor = 1.0 / float(tracked.item()) if tracked.device.type != "meta" else 1.0
        # Batch statistics while training, and always when there are no running ones.
        use_batch = self.training or (self.running_mean is None and self.running_var is None)
        keep = not self.training or self.track_running_stats
        return F.batch_norm(input, self.running_mean if keep else None,
                            self.running_var if keep else None, self.weight, self.bias,
                            use_batch, factor, self.eps)

    def extra_repr(self) -> str:
        features = 0 if self.num_features is None else self.num_features
        bias = ", bias=False" if self.affine and self.bias is None else ""
        return (f"{features}, eps={self.eps}, momentum={self.momentum}, affine={self.affine}"
                f"{bias}, track_running_stats={self.track_running_stats}")



class BatchNorm1d(_BatchNorm):
    """Batch normalisation of ``(N, C)`` or ``(N, C, L)`` inputs over all but dimension 1.

    >>> from flambeau import nn
    >>> nn.BatchNorm1d(6)
    BatchNorm1d(6, eps=1e-05, momentum=0.1, affine=True, track_running_stats=True)
    """

    _dims = (2, 3)
    _rank = "2-d or 3-d"
    _layout = "(N, {0}) or (N, {0}, L)"


class BatchNorm2d(_BatchNorm):
    """Batch normalisation of ``(N, C, H, W)`` inputs, per channel.

    >>> from flambeau import nn
    >>> bn = nn.BatchNorm2d(6)
    >>> [name for name, _ in bn.named_buffers()]
    ['running_mean', 'running_var', 'num_batches_tracked']
    """

    _dims = (4,)
    _rank = "4-d"
    _layout = "(N, {0}, H, W)"


class BatchNorm3d(_BatchNorm):
    """Batch normalisation of ``(N, C, D, H, W)`` inputs, per channel."""

    _dims = (5,)
    _rank = "5-d"
    _layout = "(N, {0}, D, H, W)"


def _lazy_batch_norm(layer: type) -> Any:
    def build(eps: float = 1e-5, momentum: float | None = 0.1, affine: bool = True,
              track_running_stats: bool = True, device: Any = None, dtype: Any = None, *,
              bias: bool = True) -> _BatchNorm:
        return layer(None, eps, momentum, affine, track_running_stats, device, dtype,
                     bias=bias)

    return lazy_alias(
        "Lazy" + layer.__name__, layer, build,
        f"``Lazy{layer.__name__}()``: a :class:`{layer.__name__}` whose num_features (and so "
        "its weight, bias and running statistics) come from the first input.")


LazyBatchNorm1d = _lazy_batch_norm(BatchNorm1d)
LazyBatchNorm2d = _lazy_batch_norm(BatchNorm2d)
LazyBatchNorm3d = _lazy_batch_norm(BatchNorm3d)


def _affine_parameters(layer: Module, shape: tuple, affine: bool, bias: bool, device: Any,
                       dtype: Any) -> None:
    """Register ``weight`` (ones) and ``bias`` (zeros) of ``shape``, or ``None`` placeholders."""
    dt = _dtypes.DEFAULT_FLOAT if dtype is None else dtype
    if affine:
        layer.weight = Parameter(full(shape, 1.0, device=device, dtype=dt))
    else:
        layer.register_parameter("weight", None)
    if affine and bias:
        layer.bias = Parameter(full(shape, 0.0, device=device, dtype=dt))
    else:
        layer.register_parameter("bias", None)


def _reset_affine(layer: Module) -> None:
    if layer.weight is not None:
        init.ones_(layer.weight)
    if layer.bias is not None:
        init.zeros_(layer.bias)


class LayerNorm(Module):
    """Normalise over the last dimensions, which must equal ``normalized_shape``.

    >>> from flambeau import nn
    >>> nn.LayerNorm(10)
    LayerNorm((10,), eps=1e-05, elementwise_affine=True)
    """

    def __init__(self, normalized_shape: int | Sequence[int], eps: float = 1e-5,
                 elementwise_affine: bool = True, bias: bool = True, device: Any = None,
                 dtype: Any = None) -> None:
        super().__init__()
        shape = (normalized_shape,) if isinstance(normalized_shape, int) else \
            tuple(int(s) for s in normalized_shape)
        self.normalized_shape = shape
        self.eps = eps
        self.elementwise_affine = elementwise_affine
        _affine_parameters(self, shape, elementwise_affine, bias, device, dtype)

    def reset_parameters(self) -> None:
        """Weight 1, bias 0."""
        _reset_affine(self)

    def forward(self, input: Tensor) -> Tensor:
        k = len(self.normalized_shape)
        if input.ndim < k or tuple(input.shape[input.ndim - k:]) != self.normalized_shape:
            dims = ", ".join(map(str, self.normalized_shape))
            raise LayerInputError(self, f"expected an input whose last dimensions are "
                                        f"normalized_shape={self.normalized_shape}, i.e. of "
                                        f"shape (*, {dims}), got shape {list(input.shape)}")
        return F.layer_norm(input, self.normalized_shape, self.weight, self.bias, self.eps)

    def extra_repr(self) -> str:
        bias = ", bias=False" if self.elementwise_affine and self.bias is None else ""
        return (f"{self.normalized_shape}, eps={self.eps}, "
                f"elementwise_affine={self.elementwise_affine}{bias}")


class GroupNorm(Module):
    """Split the channels into ``num_groups`` groups and normalise each group per sample.

    >>> from flambeau import nn
    >>> nn.GroupNorm(2, 6)
    GroupNorm(2, 6, eps=1e-05, affine=True)
    """

    def __init__(self, num_groups: int, num_channels: int, eps: float = 1e-5,
                 affine: bool = True, device: Any = None, dtype: Any = None, *,
                 bias: bool = True) -> None:
        super().__init__()
        if num_groups <= 0 or num_channels % num_groups:
            raise ValueError(f"GroupNorm: num_channels={num_channels} must be divisible by "
                             f"num_groups={num_groups}")
        self.num_groups, self.num_channels = num_groups, num_channels
        self.eps, self.affine = eps, affine
        _affine_parameters(self, (num_channels,), affine, bias, device, dtype)

    def reset_parameters(self) -> None:
        """Weight 1, bias 0."""
        _reset_affine(self)

    def forward(self, input: Tensor) -> Tensor:
        if input.ndim < 2 or input.shape[1] != self.num_channels:
            raise LayerInputError(self, f"expected an input of shape (N, {self.num_channels}, "
                                        f"*) with num_channels={self.num_channels} in "
                                        f"dimension 1, got shape {list(input.shape)}")
        return F.group_norm(input, self.num_groups, self.weight, self.bias, self.eps)

    def extra_repr(self) -> str:
        bias = ", bias=False" if self.affine and self.bias is None else ""
        return f"{self.num_groups}, {self.num_channels}, eps={self.eps}, affine={self.affine}{bias}"
