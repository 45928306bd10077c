"""Lazy layer names (``LazyLinear`` ...): ordinary layers whose parameters are lazy.

``nn.LazyLinear(10)`` returns an ``nn.Linear`` with uninitialised parameters, so after
the first forward ``type(m) == nn.Linear`` holds (D2L relies on it) without swapping
classes as PyTorch does. ``isinstance(m, nn.LazyLinear)`` is true while ``m`` is such a
layer that still waits for its shapes.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .parameter import is_lazy


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
