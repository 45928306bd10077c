"""``flambeau.utils.data``: datasets, samplers and ``DataLoader``, as ``torch.utils.data``.

>>> import flambeau
>>> from flambeau.utils import data
>>> features, labels = flambeau.randn(100, 3), flambeau.arange(100)
>>> loader = data.DataLoader(data.TensorDataset(features, labels), batch_size=32,
...                          shuffle=True, generator=flambeau.Generator().manual_seed(0))
>>> [tuple(x.shape) for x, _ in loader]
[(32, 3), (32, 3), (32, 3), (4, 3)]
"""

from __future__ import annotations

from ._worker import WorkerInfo, get_worker_info
from .collate import default_collate, default_convert
from .dataloader import DataLoader
from .dataset import (
    ChainDataset,
    ConcatDataset,
    Dataset,
    IterableDataset,
    Subset,
    TensorDataset,
    random_split,
)
from .distributed import DistributedSampler
from .sampler import (
    BatchSampler,
    RandomSampler,
    Sampler,
    SequentialSampler,
    SubsetRandomSampler,
    WeightedRandomSampler,
)

__all__ = [
    "DistributedSampler",
    "BatchSampler", "ChainDataset", "ConcatDataset", "DataLoader", "Dataset",
    "IterableDataset", "RandomSampler", "Sampler", "SequentialSampler", "Subset",
    "SubsetRandomSampler", "TensorDataset", "WeightedRandomSampler", "WorkerInfo",
    "default_collate", "default_convert", "get_worker_info", "random_split",
]
