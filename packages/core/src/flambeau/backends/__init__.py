"""The backend contract: everything a device backend author needs, in one place.

A backend is a pip-installable distribution that declares an entry point in the group
``flambeau.backends``, pointing at a module that implements the pluggy hook
:func:`~flambeau.backends._hookspecs.BackendHookSpecs.flambeau_backends` (project name
``flambeau``) with :data:`hookimpl`. The hook returns :class:`Backend` objects; each
gives a :class:`Kernels` object per device implementing every kernel of
:data:`REQUIRED_KERNELS` (and optionally some of :data:`OPTIONAL_KERNELS`).

Plugins load lazily, on the first device query, each inside its own error boundary:
a broken plugin is recorded in :func:`errors` and skipped. ``FLAMBEAU_DISABLE_PLUGIN_
AUTOLOAD=1`` turns entry-point loading off; :func:`register` adds a backend in-process.

Helpers, so that no backend rederives them: dtype tables, :func:`broadcast_shape` and
axis normalisation, window arithmetic for convolution and pooling (:func:`window_count`,
:func:`window_shape`, :func:`ceil_padding`, :func:`avg_pool_divisors`),
:func:`out_of_memory`, the Philox reference (:mod:`.philox`) and, for backends on numpy
or cupy, :mod:`.numpy_like`.

Check a backend with the conformance kit: ``python -m flambeau.testing DEVICE``.
See ``docs/writing-a-backend.md`` for a walk-through.
"""

from __future__ import annotations

from typing import Any

from . import numpy_like, philox
from ._helpers import (
    DTYPES,
    FLOAT_DTYPES,
    INT_DTYPES,
    broadcast_shape,
    normalize_axes,
    normalize_axis,
)
from ._hookspecs import ENTRY_POINT_GROUP, PROJECT_NAME, BackendHookSpecs, hookimpl, hookspec
from ._memory import format_bytes, out_of_memory
from ._protocol import (
    ARG_REDUCE_OPS,
    BINARY_OPS,
    COLLECTIVE_OPS,
    CONTRACT_VERSION,
    OPTIONAL_KERNELS,
    REDUCE_OPS,
    REQUIRED_KERNELS,
    UNARY_OPS,
    Backend,
    CollectiveEngine,
    CollectiveWork,
    DeviceArray,
    DeviceInfo,
    Kernels,
    ProcessGroupInfo,
)
from ._registry import REGISTRY, PluginFailure, validate_backend, validate_kernels
from ._registry import PluginError as PluginError  # the former name, kept for imports
from ._windows import avg_pool_divisors, ceil_padding, window_count, window_shape


def register(backend: Any, *, replace: bool = False) -> None:
    """Register a backend object in-process (no entry point needed).

    Installed plugins are discovered first, so taking over a type an installed plugin
    provides (``cpu``, say) needs ``replace=True``.

    Raises:
        BackendError: if it breaks the contract, or its name is taken and not ``replace``.
    """
    REGISTRY.register(backend, replace=replace)


def unregister(name: str) -> Backend:
    """Remove the backend called ``name`` and return it."""
    return REGISTRY.unregister(name)


def available() -> dict[str, Backend]:
    """Every loaded backend, by device-type name (loads plugins on first call)."""
    return REGISTRY.all()


def get(name: str) -> Backend | None:
    """The backend for device type ``name``, or ``None``."""
    return REGISTRY.get(name)


def errors() -> list[PluginFailure]:
    """Plugins that failed to load or register, with the reason and traceback."""
    return REGISTRY.errors()


def reload() -> None:
    """Forget every backend and error; the next query discovers plugins again."""
    from .._device import clear_kernel_cache

    REGISTRY.reset()
    clear_kernel_cache()


__all__ = [
    "ARG_REDUCE_OPS",
    "BINARY_OPS",
    "COLLECTIVE_OPS",
    "CONTRACT_VERSION",
    "DTYPES",
    "ENTRY_POINT_GROUP",
    "FLOAT_DTYPES",
    "INT_DTYPES",
    "OPTIONAL_KERNELS",
    "PROJECT_NAME",
    "REDUCE_OPS",
    "REQUIRED_KERNELS",
    "UNARY_OPS",
    "Backend",
    "BackendHookSpecs",
    "CollectiveEngine",
    "CollectiveWork",
    "DeviceArray",
    "DeviceInfo",
    "Kernels",
    "PluginFailure",
    "ProcessGroupInfo",
    "available",
    "avg_pool_divisors",
    "broadcast_shape",
    "ceil_padding",
    "errors",
    "format_bytes",
    "get",
    "hookimpl",
    "hookspec",
    "normalize_axes",
    "normalize_axis",
    "numpy_like",
    "out_of_memory",
    "philox",
    "register",
    "reload",
    "unregister",
    "validate_backend",
    "validate_kernels",
    "window_count",
    "window_shape",
]
