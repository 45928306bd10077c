"""Datasets: map-style (``Dataset``) and iterable-style (``IterableDataset``), PyTorch's
wrappers around them, and ``random_split``.

>>> import flambeau
>>> from flambeau.utils.data import TensorDataset, random_split
>>> ds = TensorDataset(flambeau.arange(10.0), flambeau.arange(10))
>>> len(ds), ds[3]
(10, (tensor(3.), tensor(3)))
>>> train, test = random_split(ds, [0.8, 0.2], generator=flambeau.Generator().manual_seed(0))
>>> len(train), len(test)
(8, 2)
"""

from __future__ import annotations

import bisect
import itertools
import math
import warnings
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import numpy as np

from ...errors import ShapeError


class Dataset:
    """A map-style dataset: ``__getitem__(index)`` and usually ``__len__``.

    Subclasses may also define ``__getitems__(indices)``, returning the samples of a
    whole batch at once; the ``DataLoader`` uses it when present (as PyTorch 2.x does).
    """

    def __getitem__(self, index: Any) -> Any:
        raise NotImplementedError("Subclasses of Dataset should implement __getitem__.")

    def __add__(self, other: Dataset) -> ConcatDataset:
        return ConcatDataset([self, other])


class IterableDataset(Dataset):
    """A dataset that is a stream: ``__iter__`` yields the samples.

    With ``num_workers > 0`` every worker process iterates its own copy of the dataset,
    so each sample comes once per worker unless ``__iter__`` shards the stream with
    :func:`~flambeau.utils.data.get_worker_info` (as in PyTorch).
    """

    def __iter__(self) -> Iterator[Any]:
        raise NotImplementedError("Subclasses of IterableDataset should implement __iter__.")

    def __add__(self, other: Dataset) -> ChainDataset:  # type: ignore[override]
        return ChainDataset([self, other])


class StackedSamples(Sequence):
    """The samples of one batch of a :class:`TensorDataset`, held as the already indexed
    columns (one fancy index per tensor, not one per sample).

    ``default_collate`` returns the columns as they are; any other collate function sees
    an ordinary sequence of sample tuples.
    """

    def __init__(self, columns: tuple[Any, ...]) -> None:
        self.columns = columns

    def __len__(self) -> int:
        return len(self.columns[0])

    def __getitem__(self, i: Any) -> Any:
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self)))]
        return tuple(column[i] for column in self.columns)


class TensorDataset(Dataset):
    """Samples are the rows of tensors that share their first dimension.

    >>> import flambeau
    >>> TensorDataset(flambeau.zeros(3, 2), flambeau.zeros(4))
    Traceback (most recent call last):
    ...
    flambeau.errors.ShapeError: TensorDataset: ... got sizes [3, 4] (tensor 1 has 4 rows, ...
    """

    def __init__(self, *tensors: Any) -> None:
        if not tensors:
            raise ValueError("TensorDataset needs at least one tensor")
        for i, t in enumerate(tensors):
            if not getattr(t, "shape", ()):
                raise ShapeError(f"TensorDataset: tensor {i} has no first dimension (shape "
                                 f"{list(getattr(t, 'shape', ()))}); samples are its rows")
        sizes = [t.shape[0] for t in tensors]
        bad = next((i for i, n in enumerate(sizes) if n != sizes[0]), None)
        if bad is not None:
            raise ShapeError(
                f"TensorDataset: every tensor needs the same size in its first dimension, "
                f"got sizes {sizes} (tensor {bad} has {sizes[bad]} rows, tensor 0 has "
                f"{sizes[0]}); slice them to one length")
        self.tensors = tensors

    def __getitem__(self, index: Any) -> tuple[Any, ...]:
        return tuple(t[index] for t in self.tensors)

    def __getitems__(self, indices: Sequence[Any]) -> StackedSamples:
        # One gather per tensor for the whole batch: the DataLoader's fast path (a shuffled
        # epoch of 60,000 x 784 in batches of 256 takes 0.3x torch's time, bench_data.py).
        index = np.asarray(indices, dtype=np.int64)
        return StackedSamples(tuple(t[index] for t in self.tensors))

    def __len__(self) -> int:
        return self.tensors[0].shape[0]


class ConcatDataset(Dataset):
    """The samples of several map-style datasets, one after the other."""

    def __init__(self, datasets: Iterable[Dataset]) -> None:
        self.datasets = list(datasets)
        if not self.datasets:
            raise ValueError("datasets should not be an empty iterable")
        for d in self.datasets:
            if isinstance(d, IterableDataset):
                raise TypeError("ConcatDataset does not support IterableDataset; use "
                                "ChainDataset")
        self.cumulative_sizes = list(itertools.accumulate(
            len(d) for d in self.datasets))  # type: ignore[arg-type]

    def __len__(self) -> int:
        return self.cumulative_sizes[-1]

    def __getitem__(self, idx: int) -> Any:
        if idx < 0:
            if -idx > len(self):
                raise ValueError("absolute value of index should not exceed dataset length")
            idx = len(self) + idx
        which = bisect.bisect_right(self.cumulative_sizes, idx)
        start = self.cumulative_sizes[which - 1] if which else 0
        return self.datasets[which][idx - start]


class ChainDataset(IterableDataset):
    """Several iterable datasets, one stream after the other."""

    def __init__(self, datasets: Iterable[Dataset]) -> None:
        self.datasets = datasets

    def __iter__(self) -> Iterator[Any]:
        for d in self.datasets:
            if not isinstance(d, IterableDataset):
                raise TypeError("ChainDataset only supports IterableDataset")
            yield from d

    def __len__(self) -> int:
        return sum(len(d) for d in self.datasets)  # type: ignore[arg-type, misc]


class Subset(Dataset):
    """The samples of ``dataset`` at ``indices``."""

    def __init__(self, dataset: Dataset, indices: Sequence[Any]) -> None:
        self.dataset = dataset
        self.indices = indices

    def __getitem__(self, idx: Any) -> Any:
        if isinstance(idx, list):
            return self.dataset[[self.indices[i] for i in idx]]
        return self.dataset[self.indices[idx]]

    def __getitems__(self, indices: Sequence[Any]) -> Any:
        inner = [self.indices[i] for i in indices]
        if callable(getattr(self.dataset, "__getitems__", None)):
            return self.dataset.__getitems__(inner)  # type: ignore[attr-defined]
        return [self.dataset[i] for i in inner]

    def __len__(self) -> int:
        return len(self.indices)


def random_split(dataset: Dataset, lengths: Sequence[int | float],
                 generator: Any = None) -> list[Subset]:
    """Split ``dataset`` at random into non-overlapping subsets of the given ``lengths``.

    ``lengths`` may be fractions summing to 1: each split gets ``floor(frac * n)`` samples
    and the remainder is dealt one at a time, round-robin, from the first split (PyTorch's
    rule). ``generator`` (default: flambeau's default generator) draws the permutation.
    """
    from ..._random import randperm
    from .sampler import check_generator

    check_generator(generator, "random_split")
    n = len(dataset)  # type: ignore[arg-type]
    if math.isclose(sum(lengths), 1) and sum(lengths) <= 1:
        sizes = []
        for i, frac in enumerate(lengths):
            if frac < 0 or frac > 1:
                raise ValueError(f"Fraction at index {i} is not between 0 and 1")
            sizes.append(math.floor(n * frac))
        for i in range(n - sum(sizes)):
            sizes[i % len(sizes)] += 1
        for i, size in enumerate(sizes):
            if size == 0:
                warnings.warn(f"Length of split at index {i} is 0. This might result in an "
                              "empty dataset.", stacklevel=2)
        lengths = sizes
    if any(not isinstance(k, (int, np.integer)) or k < 0 for k in lengths):
        raise ValueError(f"random_split: lengths must be non-negative ints or fractions "
                         f"summing to 1, got {list(lengths)}")
    if sum(lengths) != n:
        raise ValueError(f"Sum of input lengths does not equal the length of the input "
                         f"dataset! ({sum(lengths)} != {n})")
    order = randperm(n, generator=generator, device="cpu").tolist()
    return [Subset(dataset, order[end - k:end])
            for end, k in zip(itertools.accumulate(lengths), lengths)]
