"""Turning the sampler's indices into a collated batch, in the main process or a worker.

A map-style fetch reads ``dataset.__getitems__(indices)`` when the dataset has it (one
fancy index for a whole batch of a ``TensorDataset``), else ``dataset[i]`` per index,
then collates. An iterable-style fetch takes the next samples of the dataset's iterator.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from ...errors import FlambeauIndexError
from .collate import collate_to_numpy, default_collate
from .dataset import StackedSamples


def dataset_length(dataset: Any) -> int | None:
    """``len(dataset)``, or None for a dataset without one."""
    try:
        return len(dataset)
    except TypeError:
        return None


def check_indices(indices: Any, length: int | None) -> None:
    """Raise an IndexError naming the first integer index outside the dataset."""
    if length is None:
        return
    try:
        low, high = min(indices), max(indices)
    except (TypeError, ValueError):
        return  # keys that are not numbers (dict-like datasets), or an empty batch
    if not isinstance(high, (int, np.integer)) or isinstance(high, bool):
        return
    if high >= length or low < -length:
        bad = next(i for i in indices if i >= length or i < -length)
        raise FlambeauIndexError(
            f"the sampler yielded index {bad}, but the dataset has {length} samples (valid "
            f"indices: 0 to {length - 1}); check the sampler or batch_sampler passed to "
            "the DataLoader")


class MapFetcher:
    """Batches of a map-style dataset."""

    def __init__(self, dataset: Any, auto_collation: bool, collate_fn: Callable,
                 drop_last: bool) -> None:
        self.dataset, self.auto_collation, self.collate_fn = dataset, auto_collation, collate_fn
        self.length = dataset_length(dataset)
        self.stacked_ok = collate_fn in (default_collate, collate_to_numpy)
        getitems = getattr(dataset, "__getitems__", None)
        self.getitems = getitems if callable(getitems) else None

    def fetch(self, index: Any) -> Any:
        if not self.auto_collation:
            check_indices((index,), self.length)
            return self.collate_fn(self.dataset[index])
        check_indices(index, self.length)
        if self.getitems is not None:
            data = self.getitems(index)
            if isinstance(data, StackedSamples) and not self.stacked_ok:
                data = list(data)  # a user's collate_fn gets the list PyTorch gives it
        else:
            data = [self.dataset[i] for i in index]
        return self.collate_fn(data)


class IterableFetcher:
    """Batches of an iterable-style dataset: ``len(index)`` samples at a time."""

    def __init__(self, dataset: Any, auto_collation: bool, collate_fn: Callable,
                 drop_last: bool) -> None:
        self.auto_collation, self.collate_fn, self.drop_last = \
            auto_collation, collate_fn, drop_last
        self.iterator: Iterator[Any] = iter(dataset)
        self.ended = False

    def fetch(self, index: Any) -> Any:
        if self.ended:
            raise StopIteration
        if not self.auto_collation:
            return self.collate_fn(next(self.iterator))
        data = []
        for _ in index:
            try:
                data.append(next(self.iterator))
            except StopIteration:
                self.ended = True
                break
        if not data or (self.drop_last and len(data) < len(index)):
            raise StopIteration
        return self.collate_fn(data)


def make_fetcher(iterable: bool, dataset: Any, auto_collation: bool, collate_fn: Callable,
                 drop_last: bool) -> MapFetcher | IterableFetcher:
    kind = IterableFetcher if iterable else MapFetcher
    return kind(dataset, auto_collation, collate_fn, drop_last)
