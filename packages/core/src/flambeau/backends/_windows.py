"""Sliding-window arithmetic shared by the core and backends' convolution and pooling.

Along one spatial axis of size ``size``, zero- (or -inf-) padded by ``padding`` on both
sides, window ``o`` reads positions ``o * stride - padding + i * dilation`` for
``i < kernel``, as in PyTorch.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def window_count(size: int, kernel: int, stride: int, padding: int, dilation: int = 1,
                 ceil_mode: bool = False) -> int:
    """How many windows fit along one axis (may be <= 0 when none does).

    ``ceil_mode`` (pooling) keeps a last partial window when it starts inside the input
    or its left padding, as PyTorch does.

    >>> window_count(28, 5, 1, 2), window_count(5, 2, 2, 0, ceil_mode=True)
    (28, 3)
    """
    span = size + 2 * padding - dilation * (kernel - 1) - 1
    if not ceil_mode:
        return span // stride + 1
    count = -(-span // stride) + 1
    if (count - 1) * stride >= size + padding:
        count -= 1
    return count


def window_shape(size: Sequence[int], kernel: Sequence[int], stride: Sequence[int],
                 padding: Sequence[int], dilation: Sequence[int] | None = None,
                 ceil_mode: bool = False) -> tuple[int, ...]:
    """How many windows fit along each spatial axis: :func:`window_count` per axis, 0
    where none fits (never negative).

    ``size`` holds the spatial sizes only (``x.shape[2:]`` of an NCHW array); the other
    arguments have one entry per spatial axis, and ``dilation`` defaults to 1 on every axis.

    >>> window_shape((28, 28), (5, 5), (1, 1), (2, 2))
    (28, 28)
    >>> window_shape((5, 5), (2, 2), (2, 2), (0, 0), ceil_mode=True)
    (3, 3)
    """
    dilation = (1,) * len(size) if dilation is None else dilation
    return tuple(max(0, window_count(n, k, s, p, d, ceil_mode)) for n, k, s, p, d in
                 zip(size, kernel, stride, padding, dilation))


def ceil_padding(size: Sequence[int], out: Sequence[int], kernel: Sequence[int],
                 stride: Sequence[int], padding: Sequence[int],
                 dilation: Sequence[int] | None = None) -> tuple[int, ...]:
    """Padding to add at the end of each spatial axis, after ``padding``, so that all
    ``out`` windows of that axis lie inside the padded input.

    Only ``ceil_mode`` pooling needs any: its last window may run past the padded input
    (:func:`window_count`). Arguments as in :func:`window_shape`, with ``out`` the window
    counts it gives.

    >>> ceil_padding((5, 5), (3, 3), (2, 2), (2, 2), (0, 0))
    (1, 1)
    >>> ceil_padding((28, 28), (28, 28), (5, 5), (1, 1), (2, 2))
    (0, 0)
    """
    dilation = (1,) * len(size) if dilation is None else dilation
    return tuple(max(0, (o - 1) * s + d * (k - 1) + 1 - n - 2 * p) for n, o, k, s, p, d in
                 zip(size, out, kernel, stride, padding, dilation))


def avg_pool_divisors(size: tuple[int, int], out: tuple[int, int], kernel: tuple[int, int],
                      stride: tuple[int, int], padding: tuple[int, int],
                      count_include_pad: bool) -> np.ndarray:
    """The float64 (Ho, Wo) divisors of ``avg_pool2d`` (PyTorch's rule).

    A window is clipped to the padded input (which matters only with ``ceil_mode``); with
    ``count_include_pad`` it counts the padding it covers, else only input positions.

    >>> avg_pool_divisors((3, 3), (2, 2), (2, 2), (2, 2), (1, 1), False).tolist()
    [[1.0, 2.0], [2.0, 4.0]]
    """
    axes = []
    for n, o, k, s, p in zip(size, out, kernel, stride, padding):
        start = np.arange(o) * s - p
        end = np.minimum(start + k, n + p)
        if not count_include_pad:
            start, end = np.maximum(start, 0), np.minimum(end, n)
        axes.append((end - start).astype(np.float64))
    return np.outer(axes[0], axes[1])
