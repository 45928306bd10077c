"""The random-number algorithm of the contract: Philox4x32-10, counter based.

Element ``i`` of the stream for ``seed`` is word ``i % 4`` of the Philox4x32-10 block
computed with key ``(seed & 0xFFFFFFFF, seed >> 32)`` and counter
``(b & 0xFFFFFFFF, b >> 32, 0, 0)`` where ``b = i // 4``. A backend's ``random_bits(n,
seed, offset)`` returns elements ``offset .. offset + n - 1``; every backend must
produce the same bits as :func:`random_bits` here (the conformance kit checks).

Philox is from Salmon et al., "Parallel random numbers: as easy as 1, 2, 3" (SC'11);
constants as in their Random123 library.
"""

from __future__ import annotations

import numpy as np

PHILOX_M0 = 0xD2511F53
PHILOX_M1 = 0xCD9E8D57
PHILOX_W0 = 0x9E3779B9
PHILOX_W1 = 0xBB67AE85
ROUNDS = 10
_MASK32 = np.uint64(0xFFFFFFFF)


def _mulhilo(a: int, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    product = np.uint64(a) * b.astype(np.uint64)
    return product >> np.uint64(32), product & _MASK32


def philox4x32(counter: np.ndarray, key: tuple[int, int]) -> np.ndarray:
    """Philox4x32-10 of ``counter`` (shape ``(n, 4)``, uint32) under ``key``; -> (n, 4)."""
    c0, c1, c2, c3 = (counter[:, j].astype(np.uint64) for j in range(4))
    k0, k1 = key
    for _ in range(ROUNDS):
        hi0, lo0 = _mulhilo(PHILOX_M0, c0)
        hi1, lo1 = _mulhilo(PHILOX_M1, c2)
        c0, c1, c2, c3 = hi1 ^ c1 ^ np.uint64(k0), lo1, hi0 ^ c3 ^ np.uint64(k1), lo0
        k0 = (k0 + PHILOX_W0) & 0xFFFFFFFF
        k1 = (k1 + PHILOX_W1) & 0xFFFFFFFF
    return np.stack([c0, c1, c2, c3], axis=1).astype(np.uint32)


def random_bits(n: int, seed: int, offset: int = 0) -> np.ndarray:
    """Reference stream: uint32 elements ``offset .. offset + n - 1`` for ``seed``.

    >>> random_bits(2, seed=0).tolist()
    [1713891541, 3781805453]
    """
    if n < 0 or offset < 0 or not 0 <= seed < 2**64:
        raise ValueError(f"need n >= 0, offset >= 0 and 0 <= seed < 2**64; got {n, seed, offset}")
    if n == 0:
        return np.empty(0, np.uint32)
    first, last = offset // 4, (offset + n - 1) // 4
    blocks = np.arange(first, last + 1, dtype=np.uint64)
    counter = np.zeros((blocks.size, 4), np.uint32)
    counter[:, 0] = (blocks & _MASK32).astype(np.uint32)
    counter[:, 1] = (blocks >> np.uint64(32)).astype(np.uint32)
    words = philox4x32(counter, (seed & 0xFFFFFFFF, seed >> 32)).reshape(-1)
    start = offset - first * 4
    return words[start : start + n].copy()
