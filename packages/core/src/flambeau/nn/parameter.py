"""``Parameter``: a tensor a module owns and optimizers update; possibly not yet shaped.

Laziness is a state of the parameter, not a class: an uninitialised parameter has no
shape and no data yet, only what to do once it has them (a default initialiser, any
initialisers applied meanwhile, a target device and dtype). Touching its values before
then raises :class:`UninitializedParameterError` saying how to initialise it.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any, SupportsIndex

import numpy as np

from .. import _dtypes
from .._device import resolve_device
from .._tensor import Tensor, _copy_state, _wrap
from ..errors import FlambeauError, UninitializedParameterError

_ADVICE = ("run the model once on an example input (its shapes are inferred from it) or "
           "load a state dict into it first")


class _Pending:
    """Stands in for the device array of an uninitialised parameter; any use is an error."""

    __slots__ = ()

    def __getattr__(self, name: str) -> Any:
        # Probes for dunder or private names (hasattr(), inspect.unwrap, copy, doctest's
        # finder) must see an ordinary missing attribute, not the lazy-parameter error.
        if name.startswith("_"):
            raise AttributeError(name)
        raise UninitializedParameterError(f"this parameter is uninitialized (lazy): {_ADVICE}")

    def __repr__(self) -> str:
        return "<pending>"


PENDING = _Pending()


class Parameter(Tensor):
    """A tensor registered as a module parameter (``requires_grad`` by default).

    ``Parameter()`` without data is uninitialised: lazy layers create them and give them
    a shape on their first forward.

    >>> import flambeau
    >>> p = Parameter(flambeau.zeros(2))
    >>> p.requires_grad, p.is_leaf
    (True, True)
    """

    __slots__ = ("_lazy",)

    def __init__(self, data: Tensor | None = None, requires_grad: bool = True) -> None:
        if data is None:
            _copy_state(self, _wrap(PENDING, None, None))
            self.requires_grad = requires_grad
            self._lazy: _LazyState | None = _LazyState()
            return
        if not isinstance(data, Tensor):
            raise TypeError(f"Parameter data must be a Tensor, got {type(data).__name__}")
        # A parameter is written in place by optimizers: it must own its elements.
        _copy_state(self, data.detach().contiguous())
        self._version = [0, 0]
        self._base = None
        self._lazy = None
        self.requires_grad = requires_grad
        if requires_grad and not _dtypes.is_floating(self.dtype):
            raise TypeError(f"only floating-point parameters can require gradients, got "
                            f"{self.dtype}; pass requires_grad=False")

    @property
    def data(self) -> Tensor:
        """A detached alias sharing the storage. Of a lazy parameter, a stand-in whose
        in-place calls (``weight.data.normal_(0, 0.01)``, ``bias.data.fill_(0)``) are
        remembered and applied at materialisation, after the layer's own initialiser: a
        deliberate difference from PyTorch, which discards them silently."""
        return _LazyData(self) if self._lazy is not None else Tensor.data.fget(self)

    @data.setter
    def data(self, value: Tensor) -> None:
        Tensor.data.fset(self, value)

    # --- lazy state ---------------------------------------------------------------------

    def is_uninitialized(self) -> bool:
        """True until a lazy parameter gets its shape."""
        return self._lazy is not None

    def defer(self, initializer: Callable[[Parameter], Any]) -> None:
        """Run ``initializer(self)`` once the parameter is materialised (Gluon's deferred
        init); runs it at once when the parameter already has its data."""
        if self._lazy is None:
            initializer(self)
        else:
            self._lazy.initializers.append(initializer)

    def materialize(self, shape: tuple[int, ...], default_init: Callable | None = None,
                    device: Any = None, dtype: Any = None) -> None:
        """Give a lazy parameter its ``shape``: allocate it, run ``default_init`` and then
        every initialiser applied while it was lazy, in order."""
        lazy = self._lazy
        if lazy is None:
            raise FlambeauError("materialize() on a parameter that is already initialized")
        dev = lazy.device if lazy.device is not None else device
        dt = lazy.dtype or (dtype and _dtypes.as_dtype(dtype)) or _dtypes.DEFAULT_FLOAT
        dev, kernels = resolve_device(dev)
        # Storage: the lazy parameter allocates its own, in place (the object is kept). A
        # default initialiser writes every element: zeroing first would be a wasted pass.
        self._data = (kernels.full(tuple(shape), 0, dt) if default_init is None
                      else kernels.empty(tuple(shape), dt))
        self._device, self._k = dev, kernels
        self._lazy = None
        from ..autograd import no_grad

        with no_grad():
            if default_init is not None:
                default_init(self)
            for initializer in lazy.initializers:
                initializer(self)

    def _lazy_to(self, device: Any, dtype: Any) -> None:
        assert self._lazy is not None
        if device is not None:
            self._lazy.device = device
        if dtype is not None:
            self._lazy.dtype = _dtypes.as_dtype(dtype)

    # --- presentation and copying -------------------------------------------------------

    def __repr__(self) -> str:
        if self._lazy is not None:
            return "<UninitializedParameter>"
        return "Parameter containing:\n" + super().__repr__()

    def __deepcopy__(self, memo: dict) -> Parameter:
        if id(self) in memo:
            return memo[id(self)]
        if self._lazy is not None:
            out = Parameter(None, self.requires_grad)
            out._lazy = copy.deepcopy(self._lazy, memo)
        else:
            # Storage: a copy of this parameter's own array, on its device.
            out = Parameter(_wrap(self._k.copy(self._data), self._device, self._k),
                            self.requires_grad)
            if self.grad is not None:
                out.grad = self.grad.__deepcopy__(memo)
        memo[id(self)] = out
        return out

    def __reduce_ex__(self, protocol: SupportsIndex) -> Any:
        return (_rebuild_parameter, (None if self._lazy is not None else
                                     self.numpy(force=True), str(self._device),
                                     self.requires_grad))


class _LazyState:
    """What an uninitialised parameter will do once it has a shape."""

    __slots__ = ("buffer", "device", "dtype", "initializers")

    def __init__(self) -> None:
        self.initializers: list[Callable] = []
        self.device: Any = None
        self.dtype: np.dtype | None = None
        self.buffer = False  # made by UninitializedBuffer()

    def __deepcopy__(self, memo: dict) -> _LazyState:
        out = _LazyState()
        out.initializers = list(self.initializers)
        out.device, out.dtype, out.buffer = self.device, self.dtype, self.buffer
        return out


class _LazyData:
    """``.data`` of a lazy parameter: in-place calls wait for its materialisation (in the
    order made); anything else raises the lazy parameter's error."""

    __slots__ = ("_param",)

    def __init__(self, param: Parameter) -> None:
        self._param = param

    def defer(self, initializer: Callable[[Parameter], Any]) -> None:
        self._param.defer(initializer)  # (what nn.init's initialisers call on lazy tensors)

    def __getattr__(self, name: str) -> Any:
        if not name.endswith("_") or name.startswith("_"):
            return getattr(PENDING, name)

        def deferred(*args: Any, **kwargs: Any) -> _LazyData:
            self._param.defer(lambda p: getattr(p.data, name)(*args, **kwargs))
            return self

        return deferred


def _rebuild_parameter(host: np.ndarray | None, device: str, requires_grad: bool) -> Parameter:
    if host is None:
        return Parameter(None, requires_grad)
    from .._creation import tensor

    return Parameter(tensor(host, dtype=host.dtype, device=device), requires_grad)


class _Uninitialized(type):
    """The type of ``UninitializedParameter`` and ``UninitializedBuffer``: calling one makes
    a lazy :class:`Parameter` (no class of its own: laziness is a state), and ``isinstance``
    checks for that state, as PyTorch code does."""

    _buffer: bool

    def __call__(cls, requires_grad: bool = True, device: Any = None,
                 dtype: Any = None) -> Parameter:
        out = Parameter(None, requires_grad and not cls._buffer)
        assert out._lazy is not None
        out._lazy.buffer = cls._buffer
        out._lazy_to(device, dtype)
        return out

    def __instancecheck__(cls, instance: Any) -> bool:
        return (isinstance(instance, Parameter) and instance._lazy is not None
                and instance._lazy.buffer == cls._buffer)


class UninitializedParameter(metaclass=_Uninitialized):
    """A parameter without shape or data yet (what lazy layers hold before the first call).

    >>> from flambeau import nn
    >>> isinstance(nn.LazyLinear(2).weight, nn.parameter.UninitializedParameter)
    True
    """

    _buffer = False


class UninitializedBuffer(metaclass=_Uninitialized):
    """A lazy buffer (e.g. a lazy batch norm's running statistics): an uninitialised
    ``Parameter(requires_grad=False)`` registered with ``register_buffer``. Being a lazy
    parameter, it follows ``to()``, takes its shape from ``load_state_dict`` and is
    materialised by its layer like a lazy weight; it is never among ``parameters()``."""

    _buffer = True


def is_lazy(value: Any) -> bool:
    """True for an uninitialised parameter (or the ``.data`` of one)."""
    return isinstance(value, _LazyData) or (isinstance(value, Parameter)
                                            and value._lazy is not None)


# --- lazy layer names (``nn.LazyLinear`` ...) -------------------------------------------
# ``nn.LazyLinear(10)`` returns an ``nn.Linear`` with uninitialised parameters, so after
# the first forward ``type(m) == nn.Linear`` holds (D2L relies on it) without swapping
# classes as PyTorch does. ``isinstance(m, nn.LazyLinear)`` is true while ``m`` is such a
# layer that still waits for its shapes.


class _LazyAlias(type):
    """Metaclass of the lazy names: calling builds the real layer; isinstance checks it
    is that layer with parameters (or lazy buffers) still uninitialised."""

    _build: Callable[..., Any]
    _layer: type

    def __call__(cls, *args: Any, **kwargs: Any) -> Any:
        return cls._build(*args, **kwargs)

    def __instancecheck__(cls, instance: Any) -> bool:
        return isinstance(instance, cls._layer) and any(
            is_lazy(p)
            for table in (instance._parameters, instance._buffers) for p in table.values()
        )


def lazy_alias(name: str, layer: type, build: Callable[..., Any], doc: str) -> type:
    """A lazy name for ``layer`` whose constructor is ``build``."""
    return _LazyAlias(name, (), {"_build": staticmethod(build), "_layer": layer,
                                 "__doc__": doc, "__module__": "flambeau.nn"})


def weight_and_bias(weight_shape: tuple[int, ...] | None, bias_size: int, bias: bool,
                    device: Any = None, dtype: Any = None
                    ) -> tuple[Parameter, Parameter | None]:
    """A layer's weight and optional bias: uninitialised storage of the given shapes, or
    lazy parameters (kept device and dtype, shapes at the first forward) when
    ``weight_shape`` is ``None``. The layer initialises them."""
    if weight_shape is None:
        weight, bias_param = Parameter(), Parameter() if bias else None
        if device is not None or dtype is not None:
            for p in (weight, bias_param):
                if p is not None:
                    p._lazy_to(device, dtype)
        return weight, bias_param
    from .._creation import empty  # (the creation module imports this one's users)

    weight = Parameter(empty(*weight_shape, device=device, dtype=dtype))
    return weight, Parameter(empty(bias_size, device=device, dtype=dtype)) if bias else None
