"""The main-process side of ``num_workers > 0``: start the workers, hand out batches of
indices, collect the batches in order, watch for dead workers, shut everything down.

The sampler runs here, in the main process, so the batches are the ones ``num_workers=0``
gives, in the same order: batch ``k`` goes to worker ``k mod num_workers`` (skipping
workers whose iterable dataset is exhausted), and since each worker answers its own tasks
in order on its own result queue, the next batch is always the next answer of a known
worker. While waiting for it, the main process checks every ``_POLL_SECONDS`` that the
worker is alive, so a worker killed by a signal is an error naming it, not a hang.

The main thread never reads a pipe itself: one receiver thread per worker moves its
answers from the worker's result queue to an in-process queue. A worker killed while
writing a large batch leaves half a message in its pipe, and a read of it would block
forever; with the receiver in between, only that (daemonic) thread is stuck and the main
thread still sees the death and raises.

Workers are daemonic and are shut down (``None`` on their queue, join, terminate the
stragglers) when the iterator is exhausted, garbage-collected, or fails; a
``weakref.finalize`` does it, so a ``break`` out of the loop is enough.
"""

from __future__ import annotations

import itertools
import multiprocessing
import pickle
import queue
import signal
import threading
import time
import weakref
from collections import deque
from typing import Any

from ...errors import DataLoaderError
from ._worker import END, WorkerError, worker_loop
from .collate import unpack

_POLL_SECONDS = 0.1
_JOIN_SECONDS = 1.0


def _forward(results: Any, inbox: queue.Queue, stop: threading.Event) -> None:
    """A receiver thread: a worker's answers, from its pipe to the main thread."""
    while not stop.is_set():
        try:
            inbox.put(results.get(timeout=_POLL_SECONDS))
        except queue.Empty:
            continue
        except (OSError, EOFError, ValueError):  # the queue was closed: shutting down
            return


def _shutdown(workers: list, index_queues: list, result_queues: list,
              stop: threading.Event, receivers: list) -> None:
    stop.set()
    for q in index_queues:
        try:
            q.put(None)
        except (OSError, ValueError):
            pass
    deadline = time.monotonic() + _JOIN_SECONDS
    for w in workers:
        w.join(timeout=max(deadline - time.monotonic(), 0))
    for w in workers:
        if w.is_alive():
            w.terminate()
            w.join(timeout=_JOIN_SECONDS)
    for t in receivers:
        t.join(timeout=2 * _POLL_SECONDS)  # (one stuck on half a message stays, daemonic)
    for q in (*index_queues, *result_queues):
        q.cancel_join_thread()  # never block the main process on a dead worker's pipe
        q.close()


def _death_message(worker_id: int, process: Any) -> str:
    code = process.exitcode
    if code is not None and code < 0:
        try:
            name = signal.Signals(-code).name
            what = f"was killed by signal {name} ({signal.strsignal(-code)})"
        except ValueError:
            what = f"was killed by signal {-code}"
    else:
        what = f"exited unexpectedly with exit code {code}"
    return (f"DataLoader worker {worker_id} (pid {process.pid}) {what}. If it ran out of "
            "memory (SIGKILL), lower batch_size or num_workers; num_workers=0 shows the "
            "dataset's errors in the main process")


class MultiProcessIter:
    """Iterates over a ``DataLoader`` with worker processes."""

    def __init__(self, loader: Any, base_seed: int) -> None:
        ctx = loader.multiprocessing_context or multiprocessing.get_context()
        n = loader.num_workers
        self._num_workers, self._timeout = n, loader.timeout
        self._prefetch = loader.prefetch_factor * n
        self._persistent = loader.persistent_workers
        self._workers: list[Any] = []
        self._index_queues = [ctx.Queue() for _ in range(n)]
        self._result_queues = [ctx.Queue() for _ in range(n)]
        self._inboxes: list[queue.Queue] = [queue.Queue() for _ in range(n)]
        self._epoch = 0
        stop = threading.Event()
        receivers: list[threading.Thread] = []
        # Registered first: workers already started are stopped if a later one fails to.
        self._finalizer = weakref.finalize(self, _shutdown, self._workers, self._index_queues,
                                           self._result_queues, stop, receivers)
        for i in range(n):
            process = ctx.Process(
                target=worker_loop, name=f"DataLoader worker {i}", daemon=True,
                args=(loader.dataset, loader._iterable, loader._auto_collation,
                      loader.collate_fn, loader.drop_last, base_seed, loader.worker_init_fn,
                      i, n, self._index_queues[i], self._result_queues[i]))
            process.start()
            self._workers.append(process)
        for results, inbox in zip(self._result_queues, self._inboxes):  # after the forks
            receivers.append(threading.Thread(target=_forward, args=(results, inbox, stop),
                                              name="DataLoader receiver", daemon=True))
            receivers[-1].start()
        self._start_epoch(loader, first=True)

    def _start_epoch(self, loader: Any, first: bool = False) -> None:
        self._index_sampler = loader._index_sampler
        self._sampler_iter = iter(self._index_sampler)
        self._epoch += 1
        self._active = [True] * self._num_workers
        self._turns = itertools.cycle(range(self._num_workers))
        self._pending: deque[tuple[int, int]] = deque()  # (task id, worker), in order
        self._task_id = 0
        if not first:
            for q in self._index_queues:
                q.put("reset")
        for _ in range(self._prefetch):
            self._send()

    @property
    def alive(self) -> bool:
        """Whether the workers are still running."""
        return self._finalizer.alive

    def reset(self, loader: Any) -> None:
        """A new epoch on the same (persistent) workers."""
        self._start_epoch(loader)

    def _send(self) -> None:
        if not any(self._active):
            return
        try:
            index = next(self._sampler_iter)
        except StopIteration:
            return
        worker = next(w for w in self._turns if self._active[w])
        self._index_queues[worker].put((self._epoch, self._task_id, index))
        self._pending.append((self._task_id, worker))
        self._task_id += 1

    def __iter__(self) -> MultiProcessIter:
        return self

    def __next__(self) -> Any:
        if self._pending and not self._finalizer.alive:
            raise DataLoaderError("the DataLoader's workers were shut down after an error; "
                                  "start a new epoch with iter(loader)")
        while self._pending:
            task_id, worker = self._pending.popleft()
            payload = self._receive(worker, task_id)
            if isinstance(payload, str) and payload == END:
                self._active[worker] = False  # its later tasks answer END as well
            self._send()  # keep prefetch_factor tasks per active worker in flight
            if isinstance(payload, str) and payload == END:
                continue
            if isinstance(payload, WorkerError):
                payload.reraise()
            return unpack(payload)
        if not self._persistent:
            self._finalizer()
        raise StopIteration

    def _receive(self, worker: int, task_id: int) -> Any:
        deadline = time.monotonic() + self._timeout if self._timeout else None
        results = self._inboxes[worker]
        while True:
            wait = _POLL_SECONDS if deadline is None else \
                max(min(_POLL_SECONDS, deadline - time.monotonic()), 0)
            try:
                epoch, answered, blob = results.get(timeout=wait)
            except queue.Empty:
                if not self._workers[worker].is_alive():
                    self._abort()
                    raise DataLoaderError(_death_message(worker, self._workers[worker])) \
                        from None
                if deadline is not None and time.monotonic() >= deadline:
                    self._abort()
                    raise DataLoaderError(
                        f"DataLoader timed out after {self._timeout} seconds waiting for "
                        f"worker {worker}; raise timeout= or make the dataset faster"
                    ) from None
                continue
            if epoch == self._epoch and answered == task_id:
                return pickle.loads(blob)
            # else: the answer to a task of an abandoned epoch (persistent workers)

    def __len__(self) -> int:
        return len(self._index_sampler)

    def _abort(self) -> None:
        """Shut down without waiting for the workers' current batches."""
        for w in self._workers:
            if w.is_alive():
                w.terminate()
        self._finalizer()

    def shutdown(self) -> None:
        """Stop the workers now (also done on exhaustion and garbage collection)."""
        self._finalizer()
