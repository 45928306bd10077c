"""The random-number algorithm of the contract: Philox4x64-10, counter based.

The stream of ``seed`` is a sequence of uint32 elements. Block ``b`` is the Philox4x64-10
output (four 64-bit words) for key ``(seed, 0)`` and counter ``(b, 0, 0, 0)``; element
``i`` is 64-bit word ``(i // 2) % 4`` of block ``i // 8``, its low 32 bits when ``i`` is
even and its high 32 bits when ``i`` is odd (so on a little-endian host the stream is
the blocks' words viewed as uint32). A backend's ``random_bits(n, seed, offset)``
returns elements ``offset .. offset + n - 1``; every backend must produce the same bits
as :func:`random_bits` here (the conformance kit checks).

This is numpy's own ``numpy.random.Philox`` bit generator: built with ``key=seed`` and
``counter=b - 1`` (it increments the counter before computing a block), its
``random_raw`` words are the stream's 64-bit words from block ``b`` on. :func:`random_bits`
and :func:`chunks` call it (a backend on numpy can do the same); :func:`philox4x64`
spells the algorithm out in numpy for reading and porting (the OpenCL and CUDA kernels
compute it with a 64x64 -> 128-bit multiply: OpenCL ``mul_hi`` on ``ulong``, CUDA
``__umul64hi``).

Philox is from Salmon et al., "Parallel random numbers: as easy as 1, 2, 3" (SC'11);
constants as in their Random123 library. Contract version 1 used Philox4x32-10, whose
numpy spelling was eleven times slower than numpy's C generator.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

PHILOX_M0 = 0xD2E7470EE14C6C93
PHILOX_M1 = 0xCA5A826395121157
PHILOX_W0 = 0x9E3779B97F4A7C15
PHILOX_W1 = 0xBB67AE8584CAA73B
ROUNDS = 10
_MASK32 = np.uint64(0xFFFFFFFF)
_32 = np.uint64(32)


def _mulhilo(a: int, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """High and low 64 bits of ``a * b`` from 32-bit halves (no sum overflows 64 bits)."""
    a_lo, a_hi = np.uint64(a & 0xFFFFFFFF), np.uint64(a >> 32)
    b_lo, b_hi = b & _MASK32, b >> _32
    low_low = a_lo * b_lo
    middle = a_hi * b_lo + (low_low >> _32)
    cross = a_lo * b_hi + (middle & _MASK32)
    return a_hi * b_hi + (middle >> _32) + (cross >> _32), a * b


def philox4x64(counter: np.ndarray, key: tuple[int, int]) -> np.ndarray:
    """Philox4x64-10 of ``counter`` (shape ``(n, 4)``, uint64) under ``key``; -> (n, 4)."""
    c0, c1, c2, c3 = (counter[:, j].astype(np.uint64) for j in range(4))
    k0, k1 = key
    with np.errstate(over="ignore"):
        for _ in range(ROUNDS):
            hi0, lo0 = _mulhilo(PHILOX_M0, c0)
            hi1, lo1 = _mulhilo(PHILOX_M1, c2)
            c0, c1, c2, c3 = hi1 ^ c1 ^ np.uint64(k0), lo1, hi0 ^ c3 ^ np.uint64(k1), lo0
            k0 = (k0 + PHILOX_W0) & 0xFFFFFFFFFFFFFFFF
            k1 = (k1 + PHILOX_W1) & 0xFFFFFFFFFFFFFFFF
    return np.stack([c0, c1, c2, c3], axis=1)


def random_bits(n: int, seed: int, offset: int = 0) -> np.ndarray:
    """Reference stream: uint32 elements ``offset .. offset + n - 1`` for ``seed``.

    >>> random_bits(2, seed=0).tolist()
    [3392549196, 374689182]
    """
    if n < 0 or offset < 0 or not 0 <= seed < 2**64:
        raise ValueError(f"need n >= 0, offset >= 0 and 0 <= seed < 2**64; got {n, seed, offset}")
    if n == 0:
        return np.empty(0, np.uint32)
    first, last = offset // 8, (offset + n - 1) // 8
    generator = np.random.Philox(key=seed, counter=(first - 1) % 2**256)
    words = generator.random_raw(4 * (last - first + 1)).astype("<u8", copy=False)
    start = offset - first * 8
    # A view of at most seven spare elements more: no second full-size copy.
    return words.view("<u4")[start : start + n].astype(np.uint32, copy=False)



def chunks(n: int, seed: int, offset: int = 0, size: int = 1 << 16) -> Iterator[np.ndarray]:
    """Elements ``offset .. offset + n - 1`` of ``seed``'s stream, as consecutive uint32
    arrays of at most ``size`` (a multiple of 8) elements: to fill a large output a
    cache-sized piece at a time (flambeau-cpu's ``random_uniform``).

    >>> [len(c) for c in chunks(20, seed=0, offset=3, size=8)]
    [5, 8, 7]
    """
    bits = np.random.Philox(key=seed, counter=(offset // 8 - 1) % 2**256)
    skip, done = offset % 8, 0  # elements of the first block before offset
    while done < n:
        # Every piece but the last ends on a whole 64-bit word, so the next starts on one.
        count = min(size - skip, n - done)
        words = bits.random_raw((skip + count + 1) // 2).astype("<u8", copy=False)
        yield words.view("<u4")[skip : skip + count].astype(np.uint32, copy=False)
        done, skip = done + count, 0
