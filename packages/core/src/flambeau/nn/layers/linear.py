"""Fully connected layers: Linear, LazyLinear, Identity, Bilinear-free."""

from __future__ import annotations

from typing import Any

from ..._tensor import Tensor
from .. import functional as F
from ..init import default_linear_init, default_linear_init_bias
from ..module import LayerInputError, Module
from ..parameter import lazy_alias, weight_and_bias


class Linear(Module):
    """``y = x @ weight.T + bias`` with ``weight`` of shape (out_features, in_features).

    ``in_features=None`` makes it lazy: the size is read from the first input.

    >>> from flambeau import nn
    >>> nn.Linear(20, 256)
    Linear(in_features=20, out_features=256, bias=True)
    """

    def __init__(self, in_features: int | None, out_features: int, bias: bool = True,
                 device: Any = None, dtype: Any = None) -> None:
        super().__init__()
        self.in_features = in_features
        self.out_features = out_features
        shape = None if in_features is None else (out_features, in_features)
        self.weight, self.bias = weight_and_bias(shape, out_features, bias, device, dtype)
        if shape is not None:
            self.reset_parameters()
        if not bias:
            self.register_parameter("bias", None)

    def reset_parameters(self) -> None:
        """PyTorch's default initialisation."""
        default_linear_init(self.weight, self.bias)

    def _materialize(self, input: Tensor) -> None:
        self.in_features = input.shape[-1]
        self.weight.materialize((self.out_features, self.in_features), device=input.device,
                                default_init=lambda w: default_linear_init(w, None))
        if self.bias is not None:
            bound_from = self.weight
            self.bias.materialize(
                (self.out_features,), device=input.device,
                default_init=lambda b: default_linear_init_bias(b, bound_from))

    def _lazy_loaded(self) -> None:
        if not self.weight.is_uninitialized():
            self.in_features = self.weight.shape[1]

    def forward(self, input: Tensor) -> Tensor:
        # Straight from the table: self.weight takes Module.__getattr__ (0.4 us a look).
        params = self._parameters
        weight = params["weight"] if "weight" in params else self.weight
        if weight.is_uninitialized():
            if input.ndim == 0:
                raise LayerInputError(self, "expected an input with at least 1 dimension, "
                                            "got a 0-d tensor")
            self._materialize(input)
        elif input.ndim == 0 or input.shape[-1] != self.in_features:
            raise LayerInputError(
                self, f"expected an input whose last dimension is in_features="
                      f"{self.in_features}, got shape {list(input.shape)}")
        return F.linear(input, weight, params["bias"] if "bias" in params else self.bias)

    def extra_repr(self) -> str:
        in_features = 0 if self.in_features is None else self.in_features
        return (f"in_features={in_features}, out_features={self.out_features}, "
                f"bias={self.bias is not None}")


LazyLinear = lazy_alias(
    "LazyLinear", Linear,
    lambda out_features, bias=True, device=None, dtype=None: Linear(
        None, out_features, bias, device=device, dtype=dtype),
    "``LazyLinear(out_features)``: a :class:`Linear` whose in_features come from the first "
    "input.",
)


class Identity(Module):
    """Returns its input."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__()

    def forward(self, input: Any) -> Any:
        return input
