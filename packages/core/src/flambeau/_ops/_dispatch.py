"""The one place an operation picks a backend's optional fused kernel.

A backend may provide any of :data:`flambeau.backends.OPTIONAL_KERNELS`. An operation
asks :func:`fused_kernel` for one by name and gets it back as a function of tensors, or
``None``; then it runs its reference composition of required kernels, which is also
what the conformance kit (``flambeau.testing.fused_checks``) holds the kernel to.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from .._tensor import Tensor, _wrap

FLOAT_KERNEL_DTYPES = frozenset({np.dtype("float32"), np.dtype("float64")})
"""The dtypes the optional softmax and cross-entropy kernels take."""


class FusedKernel:
    """A backend kernel called with tensors: tensors (and lists of them) go in as device
    arrays, and the arrays it returns (one, a tuple, or ``None`` for an in-place kernel)
    come back as tensors on the device it was picked for. It records no graph: the
    operation that calls it records its own backward rule."""

    __slots__ = ("_device", "_k", "_kernel")

    def __init__(self, kernel: Callable[..., Any], like: Tensor) -> None:
        self._kernel = kernel
        self._device, self._k = like._device, like._k

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        result = self._kernel(*[_array(a) for a in args], **kwargs)
        if result is None:
            return None
        if isinstance(result, tuple):
            return tuple(_wrap(r, self._device, self._k) for r in result)
        return _wrap(result, self._device, self._k)


def _array(value: Any) -> Any:
    if isinstance(value, Tensor):
        return value._data
    if isinstance(value, list):
        return [v._data if isinstance(v, Tensor) else v for v in value]
    return value


def fused_kernel(name: str, like: Tensor, enabled: bool = True,
                 dtypes: frozenset[np.dtype] | None = None) -> FusedKernel | None:
    """The optional kernel ``name`` of ``like``'s backend, or ``None`` when the backend
    has none, when ``like``'s dtype is not among ``dtypes`` (if given), or when not
    ``enabled`` (a caller, such as the conformance kit, asking for the reference).

    Looked up at every call: kernels installed at run time (tests do) take effect.
    """
    if not enabled or (dtypes is not None and like._data.dtype not in dtypes):
        return None
    kernel = getattr(like._k, name, None)
    return None if kernel is None else FusedKernel(kernel, like)


__all__ = ["FLOAT_KERNEL_DTYPES", "FusedKernel", "fused_kernel"]
