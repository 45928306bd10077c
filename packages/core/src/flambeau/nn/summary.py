"""``summary(model, input_shape)``: layers, output shapes and parameter counts, computed on
the ``meta`` device so that no weight or activation is allocated, lazy layers included.

The model is left exactly as it was: parameters, buffers and layer attributes are put
back after the meta run (a lazy model stays lazy).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from .._device import resolve_device
from .._meta import MetaArray
from .._random import default_generator
from .._tensor import Tensor
from ..autograd import no_grad
from .module import _TRACERS, Module
from .parameter import Parameter, is_lazy


@dataclass
class SummaryRow:
    """One called layer: dotted name, type, nesting depth, output shape, own parameters."""

    name: str
    kind: str
    depth: int
    output_shape: Any = None
    params: int = 0


@dataclass(frozen=True)
class ModelSummary:
    """The result of :func:`summary`; ``str()`` gives the table."""

    rows: tuple[SummaryRow, ...]
    total_params: int
    trainable_params: int = field(default=0)

    def __str__(self) -> str:
        header = f"{'Layer (type)':<40}{'Output Shape':<24}{'Param #':>12}"
        rule = "=" * len(header)
        lines = [header, rule]
        for row in self.rows:
            label = "  " * row.depth + f"{row.name} ({row.kind})"
            lines.append(f"{label:<40}{_shape_text(row.output_shape):<24}{row.params:>12,}")
        lines += [rule, f"Total params: {self.total_params:,}",
                  f"Trainable params: {self.trainable_params:,}",
                  f"Non-trainable params: {self.total_params - self.trainable_params:,}"]
        return "\n".join(lines)


def _shape_text(shape: Any) -> str:
    """``[2, 3]`` for one shape; ``[2, 3], ([1, 2], [1, 2])`` for nested outputs."""
    if isinstance(shape, tuple) and shape and isinstance(shape[0], tuple):
        return ", ".join(_nested_text(s) for s in shape)
    return str(list(shape or ()))


def _nested_text(shape: tuple) -> str:
    if shape and isinstance(shape[0], tuple):
        return "(" + ", ".join(_nested_text(s) for s in shape) + ")"
    return str(list(shape))


def _output_shape(out: Any) -> tuple:
    if isinstance(out, Tensor):
        return tuple(out.shape)
    if isinstance(out, (tuple, list)):
        return tuple(_output_shape(o) for o in out if isinstance(o, (Tensor, tuple, list)))
    return ()


class _Recorder:
    """Collects a row per layer call, in the order layers are entered."""

    def __init__(self, model: Module) -> None:
        self.names = {id(m): n for n, m in model.named_modules()}
        self.rows: list[SummaryRow] = []
        self.open: list[SummaryRow] = []

    def enter(self, module: Module) -> None:
        name = self.names.get(id(module), "")
        row = SummaryRow(name or type(module).__name__, type(module).__name__,
                         name.count(".") + 1 if name else 0)
        self.rows.append(row)
        self.open.append(row)

    def exit(self, module: Module, out: Any) -> None:
        row = self.open.pop()
        row.output_shape = _output_shape(out)
        row.params = sum(p.numel() for p in module._parameters.values() if p is not None)


def summary(model: Module, input_shape: Sequence[int] | Sequence[Sequence[int]], *,
            dtype: Any = None, print_table: bool = True) -> ModelSummary:
    """Trace ``model`` on a meta input of ``input_shape`` and report every layer.

    ``input_shape`` includes the batch dimension; give a list of shapes for a model with
    several inputs.

    >>> from flambeau import nn
    >>> s = summary(nn.Sequential(nn.LazyLinear(8), nn.ReLU()), (2, 4), print_table=False)
    >>> s.total_params
    40
    """
    from .._creation import empty

    shapes = list(input_shape)
    several = bool(shapes) and isinstance(shapes[0], (tuple, list))
    inputs = [empty(*s, dtype=dtype, device="meta") for s in (shapes if several else [shapes])]
    recorder = _Recorder(model)
    with _OnMeta(model), no_grad():
        _TRACERS.append(recorder)
        try:
            model(*inputs)
        finally:
            _TRACERS.pop()
        params = {id(p): p for p in model.parameters()}.values()
        result = ModelSummary(tuple(recorder.rows), sum(p.numel() for p in params),
                              sum(p.numel() for p in params if p.requires_grad))
    if print_table:
        print(result)
    return result


class _OnMeta:
    """Swap every parameter and buffer of a model for a meta stand-in, then restore."""

    def __init__(self, model: Module) -> None:
        self.model = model
        self.saved: dict[int, tuple[Tensor, dict]] = {}
        self.attributes: list[tuple[Module, dict]] = []

    def __enter__(self) -> None:
        # Lazy layers initialise on the meta run; their draws must not move the stream.
        self.random_state = default_generator.get_state()
        device, kernels = resolve_device("meta")
        for module in self.model.modules():
            self.attributes.append((module, dict(module.__dict__)))
            for table in (module._parameters, module._buffers):
                for value in table.values():
                    if value is None or id(value) in self.saved:
                        continue
                    self.saved[id(value)] = (value, _state_of(value))
                    if is_lazy(value):
                        value._lazy.device = "meta"
                    else:  # storage swapped for a meta array, restored on exit
                        value._data = MetaArray(value._data.shape, value._data.dtype)
                        value._device, value._k = device, kernels

    def __exit__(self, *exc: object) -> None:
        for value, state in self.saved.values():
            lazy_device = state.pop("lazy_device", None)
            for name, item in state.items():
                setattr(value, name, item)
            if isinstance(value, Parameter) and value._lazy is not None:
                value._lazy.device = lazy_device
        for module, attributes in self.attributes:
            module.__dict__.clear()
            module.__dict__.update(attributes)
        default_generator.set_state(self.random_state)


def _state_of(value: Tensor) -> dict:
    # The storage slots the meta run swaps out, to put back as they were.
    state = {"_data": value._data, "_device": value._device, "_k": value._k,
             "grad": value.grad}
    if isinstance(value, Parameter):
        state["_lazy"] = value._lazy
        state["lazy_device"] = value._lazy.device if value._lazy is not None else None
    return state
