"""Sliding-window arithmetic shared by the core and backends' convolution and pooling.

Along one spatial axis of size ``size``, zero- (or -inf-) padded by ``padding`` on both
sides, window ``o`` reads positions ``o * stride - padding + i * dilation`` for
``i < kernel``, as in PyTorch.
"""

from __future__ import annotations

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
