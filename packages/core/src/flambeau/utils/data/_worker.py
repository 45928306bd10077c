"""Inside a ``DataLoader`` worker process: who it is, how it is seeded, and its loop.

Protocol (main process -> worker, on the worker's own index queue): ``(epoch, task_id,
indices)`` asks for one batch; ``"reset"`` starts a new epoch (persistent workers: the
iterable dataset restarts); ``None`` says exit. Worker -> main, on the worker's own result
queue: ``(epoch, task_id, blob)``, ``blob`` the pickled batch (numpy arrays, see
:class:`~flambeau.utils.data.collate.Shipped`), a :class:`WorkerError`, or
:data:`END` (the worker's iterable dataset is exhausted). The worker pickles the batch
itself so that an unpicklable batch becomes an error in the main process, not a hang.

Seeds, as in PyTorch: worker ``i`` of an iterator with base seed ``b`` (drawn from the
loader's generator) seeds flambeau's default generator and ``random`` with ``b + i``, and
numpy's legacy global generator with ``SeedSequence([i, b & 0xffffffff, b >> 32, 0])``'s
first four words (what PyTorch's ``_generate_state`` computes).
"""

from __future__ import annotations

import os
import pickle
import queue
import random
import traceback
from typing import Any

import numpy as np

END = "flambeau.utils.data: iterable dataset exhausted"
_POLL_SECONDS = 1.0  # how often an idle worker checks that its parent is alive


class WorkerInfo:
    """What a worker process knows about itself: ``id``, ``num_workers``, ``seed`` and its
    copy of ``dataset``. Read-only."""

    __slots__ = ("dataset", "id", "num_workers", "seed")
    id: int
    num_workers: int
    seed: int
    dataset: Any

    def __init__(self, **fields: Any) -> None:
        for name, value in fields.items():
            object.__setattr__(self, name, value)

    def __setattr__(self, name: str, value: Any) -> None:
        raise RuntimeError(f"Cannot assign attributes to {type(self).__name__} objects")

    def __repr__(self) -> str:
        return (f"WorkerInfo(id={self.id}, num_workers={self.num_workers}, seed={self.seed}, "
                f"dataset={self.dataset!r})")


_worker_info: WorkerInfo | None = None


def get_worker_info() -> WorkerInfo | None:
    """This worker's :class:`WorkerInfo` inside a ``DataLoader`` worker process, None in
    the main process. Use it in ``IterableDataset.__iter__`` or ``worker_init_fn`` to give
    each worker its own share of the data.

    >>> get_worker_info() is None
    True
    """
    return _worker_info


def numpy_seed(base_seed: int, worker_id: int) -> np.ndarray:
    """The seed PyTorch gives numpy's global generator in worker ``worker_id``."""
    mask = 0xFFFFFFFF
    entropy = [worker_id, base_seed & mask, base_seed >> 32, 0]
    return np.random.SeedSequence(entropy).generate_state(4)


class WorkerError:
    """An exception raised in a worker, carried to the main process as its type and the
    traceback text, and raised there again (PyTorch's ``ExceptionWrapper``)."""

    def __init__(self, worker_id: int, exc: BaseException) -> None:
        self.exc_type = type(exc)
        self.where = f"in DataLoader worker process {worker_id}"
        self.text = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))

    def reraise(self) -> None:
        msg = f"Caught {self.exc_type.__name__} {self.where}.\nOriginal {self.text}"
        try:
            exc = self.exc_type(msg)
        except Exception:
            raise RuntimeError(msg) from None
        raise exc


def _encoders(collate_fn: Any) -> tuple[Any, Any]:
    """(the collate function a worker runs, what turns its output into numpy)."""
    from .collate import (
        collate_to_numpy,
        convert_to_numpy,
        default_collate,
        default_convert,
        pack,
    )

    if collate_fn is default_collate:
        return collate_to_numpy, None
    if collate_fn is default_convert:
        return convert_to_numpy, None
    return collate_fn, pack


def _pickled(payload: Any, worker_id: int) -> bytes:
    try:
        return pickle.dumps(payload, protocol=pickle.HIGHEST_PROTOCOL)
    except Exception as exc:  # an unpicklable batch, or an unpicklable exception
        if isinstance(payload, WorkerError):  # keep the traceback text, lose the type
            payload.exc_type = RuntimeError
            return pickle.dumps(payload)
        note = TypeError(f"the worker could not pickle its result to send it to the main "
                         f"process ({type(exc).__name__}: {exc}); return tensors, numpy "
                         "arrays, numbers, strings, lists, tuples and dicts")
        return pickle.dumps(WorkerError(worker_id, note))


def worker_loop(dataset: Any, iterable: bool, auto_collation: bool, collate_fn: Any,
                drop_last: bool, base_seed: int, init_fn: Any, worker_id: int,
                num_workers: int, index_queue: Any, result_queue: Any) -> None:
    """The body of worker process ``worker_id`` (a module-level function: spawn-safe)."""
    global _worker_info
    import flambeau

    from ._fetch import make_fetcher

    seed = base_seed + worker_id
    random.seed(seed)
    flambeau.manual_seed(seed)
    np.random.seed(numpy_seed(base_seed, worker_id))
    _worker_info = WorkerInfo(id=worker_id, num_workers=num_workers, seed=seed,
                              dataset=dataset)
    collate, encode = _encoders(collate_fn)
    parent = os.getppid()

    def start() -> Any:
        return make_fetcher(iterable, dataset, auto_collation, collate, drop_last)

    fetcher, init_error = None, None
    try:
        if init_fn is not None:
            init_fn(worker_id)
        fetcher = start()
    except Exception as exc:
        init_error = WorkerError(worker_id, exc)
    try:
        while True:
            try:
                task = index_queue.get(timeout=_POLL_SECONDS)
            except queue.Empty:
                if os.getppid() != parent:  # the main process is gone: don't linger
                    break
                continue
            if task is None:
                break
            if task == "reset":
                if init_error is None:
                    fetcher = start()
                continue
            epoch, task_id, index = task
            payload: Any
            if init_error is not None:
                payload = init_error
            else:
                try:
                    batch = fetcher.fetch(index)  # type: ignore[union-attr]
                    payload = batch if encode is None else encode(batch)
                except StopIteration:
                    payload = END if iterable else WorkerError(
                        worker_id, RuntimeError("the dataset raised StopIteration"))
                except Exception as exc:
                    payload = WorkerError(worker_id, exc)
            result_queue.put((epoch, task_id, _pickled(payload, worker_id)))
            del payload
    except KeyboardInterrupt:
        pass  # the main process gets the interrupt too, and shuts the workers down
    result_queue.cancel_join_thread()  # nobody reads what is left: exit without flushing
