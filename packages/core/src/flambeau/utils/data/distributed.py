"""``DistributedSampler``: each rank reads its own share of a data set, as in PyTorch.

>>> from flambeau.utils.data.distributed import DistributedSampler
>>> [list(DistributedSampler(range(5), num_replicas=2, rank=r, shuffle=False))
...  for r in range(2)]
[[0, 2, 4], [1, 3, 0]]
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sized
from typing import Any

from .sampler import Sampler


class DistributedSampler(Sampler):
    """The indices of rank ``rank`` out of ``num_replicas``: every ``num_replicas``-th
    index from ``rank`` on, of the whole index list (shuffled with ``seed + epoch`` when
    ``shuffle``) padded by repeating its start to a multiple of ``num_replicas``, or cut
    to one with ``drop_last``. Every rank gets the same number of indices, and together
    they cover the data set. Call :meth:`set_epoch` before each epoch for a new order.

    The shuffled order comes from ``flambeau.randperm`` with a flambeau ``Generator``
    seeded like PyTorch's (``seed + epoch``): the same on every rank and machine, though
    not PyTorch's permutation.

    Args:
        dataset: Anything with ``len()``.
        num_replicas: The number of ranks (default: the process group's world size).
        rank: This rank (default: the process group's rank).
        shuffle: Shuffle the indices (the same permutation on every rank).
        seed: The seed of the shuffle; equal on every rank.
        drop_last: Drop the tail that does not divide evenly instead of padding.
    """

    def __init__(self, dataset: Sized, num_replicas: int | None = None,
                 rank: int | None = None, shuffle: bool = True, seed: int = 0,
                 drop_last: bool = False) -> None:
        if num_replicas is None or rank is None:
            from ... import distributed as dist

            num_replicas = dist.get_world_size() if num_replicas is None else num_replicas
            rank = dist.get_rank() if rank is None else rank
        if rank >= num_replicas or rank < 0:
            raise ValueError(f"Invalid rank {rank}, rank should be in the interval "
                             f"[0, {num_replicas - 1}]")
        self.dataset = dataset
        self.num_replicas = num_replicas
        self.rank = rank
        self.epoch = 0
        self.drop_last = drop_last
        if drop_last and len(dataset) % num_replicas != 0:
            self.num_samples = math.ceil((len(dataset) - num_replicas) / num_replicas)
        else:
            self.num_samples = math.ceil(len(dataset) / num_replicas)
        self.total_size = self.num_samples * num_replicas
        self.shuffle = shuffle
        self.seed = seed

    def __iter__(self) -> Iterator[Any]:
        n = len(self.dataset)
        if self.shuffle:
            from ..._random import Generator, randperm

            generator = Generator().manual_seed(self.seed + self.epoch)
            indices = randperm(n, generator=generator, device="cpu").tolist()
        else:
            indices = list(range(n))
        if not self.drop_last:
            padding = self.total_size - len(indices)
            if padding <= len(indices):
                indices += indices[:padding]
            else:
                indices += (indices * math.ceil(padding / len(indices)))[:padding]
        else:
            indices = indices[:self.total_size]
        return iter(indices[self.rank:self.total_size:self.num_replicas])

    def __len__(self) -> int:
        return self.num_samples

    def set_epoch(self, epoch: int) -> None:
        """Use ``seed + epoch`` for the next shuffle (call it on every rank alike)."""
        self.epoch = epoch
