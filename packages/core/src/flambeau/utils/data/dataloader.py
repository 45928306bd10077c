"""``DataLoader``: batches from a dataset, in the main process or in worker processes.

>>> import flambeau
>>> from flambeau.utils.data import DataLoader, TensorDataset
>>> ds = TensorDataset(flambeau.arange(10.0).reshape(5, 2), flambeau.arange(5))
>>> loader = DataLoader(ds, batch_size=2, shuffle=True,
...                     generator=flambeau.Generator().manual_seed(0))
>>> len(loader)
3
>>> [y.tolist() for _, y in loader] == [y.tolist() for _, y in loader]  # a new epoch...
False
>>> sorted(i for _, y in loader for i in y.tolist())  # ...of the same samples
[0, 1, 2, 3, 4]

Reproducibility: the loader's ``generator`` (default: flambeau's default generator) gives
the shuffling order and, at each ``iter(loader)``, a base seed for the workers (drawn
whether or not there are workers, so the order does not depend on ``num_workers``).
Worker ``i`` seeds flambeau's default generator and ``random`` with ``base_seed + i``, and
numpy's global generator from both, as PyTorch does; ``get_worker_info().seed`` tells it.

Worker processes (``num_workers > 0``) use ``multiprocessing_context`` (default: Python's
default start method, as PyTorch: ``fork`` on Linux before Python 3.14). Pass ``"spawn"``
once a GPU device (CUDA, OpenCL) is in use in the main process: forking a process that
holds a GPU context is unsafe. With ``spawn`` the dataset, ``collate_fn`` and
``worker_init_fn`` are pickled, so they must be defined at module level. Workers send numpy
arrays back; the main process makes the tensors.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from ._fetch import make_fetcher
from .collate import default_collate, default_convert
from .dataset import IterableDataset
from .sampler import (
    BatchSampler,
    RandomSampler,
    Sampler,
    SequentialSampler,
    _draw_seed,
    check_generator,
)


class _InfiniteConstantSampler(Sampler):
    """``None`` forever: an iterable dataset decides itself what comes next."""

    def __iter__(self) -> Any:
        while True:
            yield None


_FROZEN = ("batch_size", "batch_sampler", "sampler", "drop_last", "dataset",
           "persistent_workers")


class DataLoader:
    """Iterate over ``dataset`` in batches (PyTorch's arguments and rules).

    Args:
        dataset: a map-style dataset (``__getitem__``, ``__len__``) or an
            :class:`IterableDataset`.
        batch_size: samples per batch; None turns batching off (each item is converted
            with ``default_convert``, not stacked).
        shuffle: a new random order every epoch (map-style datasets only).
        sampler / batch_sampler: custom index (or batch-of-indices) order.
        num_workers: worker processes loading batches (0: in the main process).
        collate_fn: turns a list of samples into a batch (``default_collate``).
        pin_memory: accepted for PyTorch compatibility; a no-op.
        drop_last: drop the last, incomplete batch.
        timeout: seconds to wait for a worker's batch before raising (0: forever).
        worker_init_fn: called as ``worker_init_fn(worker_id)`` in each worker.
        multiprocessing_context: a start method name or a multiprocessing context.
        generator: the :class:`flambeau.Generator` for shuffling and worker seeds.
        prefetch_factor: batches in flight per worker (default 2 with workers).
        persistent_workers: keep the workers alive between epochs.
        pin_memory_device, in_order: accepted for PyTorch compatibility (batches always
            come in the sampler's order).
    """

    def __init__(self, dataset: Any, batch_size: int | None = 1, shuffle: bool | None = None,
                 sampler: Sampler | Iterable | None = None,
                 batch_sampler: Sampler | Iterable | None = None, num_workers: int = 0,
                 collate_fn: Callable | None = None, pin_memory: bool = False,
                 drop_last: bool = False, timeout: float = 0,
                 worker_init_fn: Callable | None = None, multiprocessing_context: Any = None,
                 generator: Any = None, *, prefetch_factor: int | None = None,
                 persistent_workers: bool = False, pin_memory_device: str = "",
                 in_order: bool = True) -> None:
        if not isinstance(num_workers, int) or num_workers < 0:
            raise ValueError("num_workers option should be non-negative; use num_workers=0 "
                             "to disable multiprocessing.")
        if timeout < 0:
            raise ValueError("timeout option should be non-negative")
        if timeout > 0 and num_workers == 0:
            raise ValueError(f"timeout={timeout} needs num_workers > 0: without workers "
                             "batches load in the main process and cannot time out")
        if num_workers == 0 and prefetch_factor is not None:
            raise ValueError("prefetch_factor option could only be specified in "
                             "multiprocessing. Let num_workers > 0 to enable "
                             "multiprocessing, otherwise set prefetch_factor to None.")
        if num_workers > 0 and prefetch_factor is None:
            prefetch_factor = 2
        elif prefetch_factor is not None and prefetch_factor < 0:
            raise ValueError("prefetch_factor option should be non-negative")
        elif prefetch_factor == 0:
            raise ValueError("prefetch_factor=0 would never ask a worker for a batch; use "
                             "1 or more (the default is 2)")
        if persistent_workers and num_workers == 0:
            raise ValueError("persistent_workers option needs num_workers > 0")
        check_generator(generator, "DataLoader")
        iterable = isinstance(dataset, IterableDataset)
        if iterable:
            if shuffle not in (False, None):
                raise ValueError(f"DataLoader with IterableDataset: expected unspecified "
                                 f"shuffle option, but got shuffle={shuffle}")
            if sampler is not None:
                raise ValueError(f"DataLoader with IterableDataset: expected unspecified "
                                 f"sampler option, but got sampler={sampler}")
            if batch_sampler is not None:
                raise ValueError(f"DataLoader with IterableDataset: expected unspecified "
                                 f"batch_sampler option, but got batch_sampler={batch_sampler}")
        shuffle = bool(shuffle)
        if sampler is not None and shuffle:
            raise ValueError("sampler option is mutually exclusive with shuffle")
        if batch_sampler is not None:
            if batch_size != 1 or shuffle or sampler is not None or drop_last:
                raise ValueError("batch_sampler option is mutually exclusive with "
                                 "batch_size, shuffle, sampler, and drop_last")
            batch_size, drop_last = None, False
        elif batch_size is None and drop_last:
            raise ValueError("batch_size=None option disables auto-batching and is "
                             "mutually exclusive with drop_last")
        if sampler is None:
            if iterable:
                sampler = _InfiniteConstantSampler()
            elif shuffle:
                sampler = RandomSampler(dataset, generator=generator)
            else:
                sampler = SequentialSampler(dataset)
        if batch_size is not None and batch_sampler is None:
            batch_sampler = BatchSampler(sampler, batch_size, drop_last)

        self.dataset, self.num_workers, self.timeout = dataset, num_workers, timeout
        self.prefetch_factor, self.pin_memory = prefetch_factor, pin_memory
        self.pin_memory_device, self.in_order = pin_memory_device, in_order
        self.worker_init_fn, self.generator = worker_init_fn, generator
        self.multiprocessing_context = _context(multiprocessing_context, num_workers)
        self.batch_size, self.drop_last = batch_size, drop_last
        self.sampler, self.batch_sampler = sampler, batch_sampler
        self._iterable = iterable
        if collate_fn is None:
            collate_fn = default_collate if batch_sampler is not None else default_convert
        self.collate_fn = collate_fn
        self.persistent_workers = persistent_workers
        self._iterator: Any = None
        self._initialized = True

    def __setattr__(self, name: str, value: Any) -> None:
        if getattr(self, "_initialized", False) and name in _FROZEN:
            raise ValueError(f"{name} attribute should not be set after "
                             f"{type(self).__name__} is initialized")
        super().__setattr__(name, value)

    @property
    def _auto_collation(self) -> bool:
        return self.batch_sampler is not None

    @property
    def _index_sampler(self) -> Any:
        return self.batch_sampler if self._auto_collation else self.sampler

    def __iter__(self) -> Any:
        if not (self.persistent_workers and self.num_workers > 0):
            return self._get_iterator()
        if self._iterator is None or not self._iterator.alive:  # first epoch, or after a failure
            self._iterator = self._get_iterator()
        else:
            _draw_seed(self.generator)  # as a fresh iterator would: the same stream
            self._iterator.reset(self)
        return self._iterator

    def _get_iterator(self) -> Any:
        base_seed = _draw_seed(self.generator)
        if self.num_workers == 0:
            return _SingleProcessIter(self)
        from ._multiprocess import MultiProcessIter  # multiprocessing only when needed

        return MultiProcessIter(self, base_seed)

    def __len__(self) -> int:
        if not self._iterable:
            return len(self._index_sampler)
        length = len(self.dataset)
        if self.batch_size is not None:
            length = length // self.batch_size if self.drop_last else \
                -(-length // self.batch_size)
        return length


class _SingleProcessIter:
    """Batches loaded in the main process."""

    def __init__(self, loader: DataLoader) -> None:
        self._index_sampler = loader._index_sampler
        self._sampler_iter = iter(self._index_sampler)
        self._fetcher = make_fetcher(loader._iterable, loader.dataset,
                                     loader._auto_collation, loader.collate_fn,
                                     loader.drop_last)

    def __iter__(self) -> _SingleProcessIter:
        return self

    def __next__(self) -> Any:
        return self._fetcher.fetch(next(self._sampler_iter))

    def __len__(self) -> int:
        return len(self._index_sampler)


def _context(context: Any, num_workers: int) -> Any:
    """The multiprocessing context asked for (None: Python's default, chosen later)."""
    if context is None:
        return None
    if num_workers == 0:
        raise ValueError("multiprocessing_context can only be used with multi-process "
                         f"loading (num_workers > 0), but got num_workers={num_workers}")
    import multiprocessing

    if isinstance(context, str):
        methods = multiprocessing.get_all_start_methods()
        if context not in methods:
            raise ValueError(f"multiprocessing_context option should specify a valid start "
                             f"method in {methods!r}, but got "
                             f"multiprocessing_context={context!r}")
        return multiprocessing.get_context(context)
    if not isinstance(context, multiprocessing.context.BaseContext):
        raise TypeError("multiprocessing_context option should be a valid context object or "
                        f"a string specifying the start method, but got "
                        f"multiprocessing_context={context}")
    return context
