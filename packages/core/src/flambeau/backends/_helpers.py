"""Shape, axis and dtype helpers every backend (and the core) shares."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np

from ..errors import FlambeauIndexError, ShapeError

#: Every dtype a tensor can have, by name. ``uint32`` exists only for random bits.
DTYPES: dict[str, np.dtype] = {
    name: np.dtype(name)
    for name in (
        "bool",
        "uint8",
        "int8",
        "int16",
        "int32",
        "int64",
        "float16",
        "float32",
        "float64",
        "uint32",
    )
}
FLOAT_DTYPES: tuple[np.dtype, ...] = tuple(np.dtype(n) for n in ("float16", "float32", "float64"))
INT_DTYPES: tuple[np.dtype, ...] = tuple(
    np.dtype(n) for n in ("uint8", "int8", "int16", "int32", "int64", "uint32")
)


def broadcast_shape(*shapes: Sequence[int]) -> tuple[int, ...]:
    """The numpy broadcast of ``shapes``.

    >>> broadcast_shape((3, 1), (4,))
    (3, 4)

    Raises:
        ShapeError: when two sizes differ and neither is 1.
    """
    if len(shapes) == 2 and shapes[0] == shapes[1]:
        return tuple(shapes[0])
    ndim = max((len(s) for s in shapes), default=0)
    result = [1] * ndim
    for shape in shapes:
        for i, size in enumerate(shape, start=ndim - len(shape)):
            if size == result[i] or size == 1:
                continue
            if result[i] == 1:
                result[i] = size
            else:
                listed = " and ".join(str(tuple(s)) for s in shapes)
                raise ShapeError(
                    f"shapes {listed} cannot be broadcast together: "
                    f"size {result[i]} and size {size} at dimension {i - ndim}"
                )
    return tuple(result)


def normalize_axis(axis: int, ndim: int) -> int:
    """Turn a possibly negative axis into ``0 <= axis < ndim``.

    >>> normalize_axis(-1, 3)
    2
    """
    if not isinstance(axis, (int, np.integer)) or isinstance(axis, bool):
        raise TypeError(f"dimension must be an int, got {type(axis).__name__}")
    if not -ndim <= axis < max(ndim, 1):
        raise FlambeauIndexError(
            f"dimension out of range: expected one in [{-ndim}, {ndim - 1}], got {axis}"
        )
    return int(axis) % max(ndim, 1)


def normalize_axes(axes: int | Iterable[int] | None, ndim: int) -> tuple[int, ...]:
    """Sorted, non-negative, duplicate-free axes; ``None`` means every axis.

    >>> normalize_axes((-1, 0), 3)
    (0, 2)
    """
    if axes is None:
        return tuple(range(ndim))
    if isinstance(axes, (int, np.integer)):
        axes = (axes,)
    result = sorted(normalize_axis(a, ndim) for a in axes)
    if len(set(result)) != len(result):
        raise ValueError(f"dimension listed twice in {tuple(axes)}")
    return tuple(result)
