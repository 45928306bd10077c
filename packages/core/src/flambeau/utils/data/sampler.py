"""Samplers: which indices a ``DataLoader`` reads, and in what order.

Random samplers draw from a flambeau :class:`~flambeau.Generator` (Philox, the same bits
on every machine and backend); without one they draw a fresh seed from the default
generator each epoch, as PyTorch does.

>>> import flambeau
>>> from flambeau.utils.data import BatchSampler, RandomSampler, SequentialSampler
>>> list(BatchSampler(SequentialSampler(range(7)), batch_size=3, drop_last=False))
[[0, 1, 2], [3, 4, 5], [6]]
>>> g = flambeau.Generator().manual_seed(0)
>>> sorted(RandomSampler(range(5), generator=g))
[0, 1, 2, 3, 4]
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator, Sequence, Sized
from typing import Any

import numpy as np


def _draw_seed(generator: Any) -> int:
    """A non-negative 63-bit seed from ``generator`` (the default one when None)."""
    from ..._random import randint

    high, low = randint(0, 2**32, (2,), generator=generator, device="cpu").tolist()
    return ((high << 32) | low) & (2**63 - 1)


def check_generator(generator: Any, who: str) -> None:
    """Refuse anything but a flambeau Generator (a torch.Generator would fail later)."""
    from ..._random import Generator

    if generator is not None and not isinstance(generator, Generator):
        kind = type(generator)
        raise TypeError(f"{who}: generator must be a flambeau.Generator (for example "
                        f"flambeau.Generator().manual_seed(0)) or None, got "
                        f"{kind.__module__}.{kind.__qualname__}")


def _randperm(n: int, generator: Any) -> list[int]:
    from ..._random import randperm

    return randperm(n, generator=generator, device="cpu").tolist()


def _check_positive_int(name: str, value: Any) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
        raise ValueError(f"{name} should be a positive integer value, but got "
                         f"{name}={value!r}")


class Sampler:
    """Base class: ``__iter__`` yields indices (or batches of them), ``__len__`` counts them
    when it can."""

    def __init__(self, data_source: Sized | None = None) -> None:
        pass

    def __iter__(self) -> Iterator[Any]:
        raise NotImplementedError


class SequentialSampler(Sampler):
    """``0, 1, ..., len(data_source) - 1``."""

    def __init__(self, data_source: Sized) -> None:
        self.data_source = data_source

    def __iter__(self) -> Iterator[int]:
        return iter(range(len(self.data_source)))

    def __len__(self) -> int:
        return len(self.data_source)


class RandomSampler(Sampler):
    """A random permutation of the indices (each epoch a new one), or ``num_samples``
    indices drawn with ``replacement``."""

    def __init__(self, data_source: Sized, replacement: bool = False,
                 num_samples: int | None = None, generator: Any = None) -> None:
        self.data_source = data_source
        self.replacement = replacement
        self._num_samples = num_samples
        self.generator = generator
        check_generator(generator, "RandomSampler")
        if not isinstance(replacement, bool):
            raise TypeError(f"replacement should be a boolean value, but got "
                            f"replacement={replacement}")
        _check_positive_int("num_samples", self.num_samples)

    @property
    def num_samples(self) -> int:
        return len(self.data_source) if self._num_samples is None else self._num_samples

    def __iter__(self) -> Iterator[int]:
        from ..._random import Generator, randint

        n = len(self.data_source)
        generator = self.generator
        if generator is None:
            generator = Generator(_draw_seed(None))
        if self.replacement:
            yield from randint(0, n, (self.num_samples,), generator=generator,
                               device="cpu").tolist()
            return
        for _ in range(self.num_samples // n):
            yield from _randperm(n, generator)
        if self.num_samples % n:  # (PyTorch draws this permutation even when it is unused)
            yield from _randperm(n, generator)[: self.num_samples % n]

    def __len__(self) -> int:
        return self.num_samples


class SubsetRandomSampler(Sampler):
    """The given ``indices`` in a random order."""

    def __init__(self, indices: Sequence[Any], generator: Any = None) -> None:
        self.indices = indices
        self.generator = generator

    def __iter__(self) -> Iterator[Any]:
        for i in _randperm(len(self.indices), self.generator):
            yield self.indices[i]

    def __len__(self) -> int:
        return len(self.indices)


class WeightedRandomSampler(Sampler):
    """``num_samples`` indices of ``0..len(weights)-1``, index ``i`` with probability
    proportional to ``weights[i]``; without ``replacement`` an index comes at most once.

    >>> import flambeau
    >>> g = flambeau.Generator().manual_seed(0)
    >>> sorted(WeightedRandomSampler([0.0, 1.0, 0.0, 2.0], 2, replacement=False, generator=g))
    [1, 3]
    """

    def __init__(self, weights: Sequence[float], num_samples: int, replacement: bool = True,
                 generator: Any = None) -> None:
        _check_positive_int("num_samples", num_samples)
        if not isinstance(replacement, bool):
            raise ValueError(f"replacement should be a boolean value, but got "
                             f"replacement={replacement}")
        w = np.asarray(weights, dtype=np.float64)
        if w.ndim != 1:
            raise ValueError(f"weights should be a 1d sequence but given weights have shape "
                             f"{tuple(w.shape)}")
        if not np.isfinite(w).all() or (w < 0).any():
            raise ValueError("weights must be finite and non-negative, got "
                             f"{w[~np.isfinite(w) | (w < 0)][:3].tolist()} among them")
        positive = int((w > 0).sum())
        if positive == 0:
            raise ValueError("invalid weights: they sum to 0, so nothing can be drawn")
        if not replacement and num_samples > positive:
            raise ValueError(f"cannot draw {num_samples} samples without replacement from "
                             f"{positive} indices of non-zero weight")
        self.weights = w
        self.num_samples = num_samples
        self.replacement = replacement
        self.generator = generator

    def __iter__(self) -> Iterator[int]:
        from ..._random import rand

        u = rand(self.num_samples if self.replacement else len(self.weights),
                 dtype="float64", generator=self.generator, device="cpu").numpy()
        if self.replacement:  # inverse CDF
            cdf = np.cumsum(self.weights)
            chosen = np.searchsorted(cdf, u * cdf[-1], side="right")
            yield from np.minimum(chosen, len(cdf) - 1).tolist()
            return
        # Exponential race (Efraimidis-Spirakis): the smallest -log(u) / w win, in order.
        with np.errstate(divide="ignore", invalid="ignore"):
            keys = -np.log1p(-u) / self.weights
        yield from np.argsort(keys, kind="stable")[: self.num_samples].tolist()

    def __len__(self) -> int:
        return self.num_samples


class BatchSampler(Sampler):
    """Groups the indices of ``sampler`` into lists of ``batch_size`` (the last one
    shorter unless ``drop_last``)."""

    def __init__(self, sampler: Sampler | Iterable[Any], batch_size: int,
                 drop_last: bool) -> None:
        _check_positive_int("batch_size", batch_size)
        if not isinstance(drop_last, bool):
            raise ValueError(f"drop_last should be a boolean value, but got "
                             f"drop_last={drop_last}")
        self.sampler = sampler
        self.batch_size = batch_size
        self.drop_last = drop_last

    def __iter__(self) -> Iterator[list[Any]]:
        it = iter(self.sampler)
        if self.drop_last:
            yield from (list(batch) for batch in zip(*[it] * self.batch_size))
            return
        batch = list(itertools.islice(it, self.batch_size))
        while batch:
            yield batch
            batch = list(itertools.islice(it, self.batch_size))

    def __len__(self) -> int:
        n = len(self.sampler)  # type: ignore[arg-type]
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)
