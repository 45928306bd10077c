"""DataLoader worker processes: the same batches as num_workers=0, errors with the worker's
traceback, dead and slow workers, seeds, worker info, iterable datasets, shutdown.

Every test runs under a hard alarm (no hang can stall the suite) and checks that no
worker process outlives it. Most use ``fork`` (fast); the equivalence and error tests also
run under ``spawn``, where everything sent to a worker is pickled.
"""

from __future__ import annotations

import gc
import multiprocessing
import os
import random
import signal
import threading
import time

import numpy as np
import pytest

import flambeau
from flambeau.errors import DataLoaderError
from flambeau.utils import data
from flambeau.utils.data import DataLoader, get_worker_info

pytestmark = pytest.mark.skipif(not hasattr(signal, "SIGALRM"), reason="POSIX test")
HARD_LIMIT_SECONDS = 30


@pytest.fixture(autouse=True)
def hard_timeout_and_no_orphans():
    def expire(signum, frame):
        raise TimeoutError(f"test still running after {HARD_LIMIT_SECONDS} s: a hang")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.alarm(HARD_LIMIT_SECONDS)
    try:
        yield
        gc.collect()  # iterators left behind shut their workers down when collected
        deadline = time.monotonic() + 5
        while multiprocessing.active_children() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert multiprocessing.active_children() == []
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def gen(seed: int = 0) -> flambeau.Generator:
    return flambeau.Generator().manual_seed(seed)


# Module-level datasets and functions: spawn pickles them by reference.


class Samples(data.Dataset):
    """Sample i: a dict of a float tensor, a numpy array, an int and a string."""

    def __init__(self, n: int = 23) -> None:
        self.n = n

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int):
        return {"x": flambeau.full((2,), float(i)), "a": np.full(3, i, dtype=np.int32),
                "i": i, "name": f"s{i}"}


class FailsAt(data.Dataset):
    def __init__(self, bad: int) -> None:
        self.bad = bad

    def __len__(self) -> int:
        return 8

    def __getitem__(self, i: int):
        if i == self.bad:
            raise ValueError(f"sample {i} is corrupt")
        return i


class KillsWorker(data.Dataset):
    """Worker 1 kills itself with SIGKILL on its first sample."""

    def __len__(self) -> int:
        return 64

    def __getitem__(self, i: int):
        if get_worker_info().id == 1:
            os.kill(os.getpid(), signal.SIGKILL)
        return i


class Slow(data.Dataset):
    def __init__(self, seconds: float, n: int = 8) -> None:
        self.seconds, self.n = seconds, n

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int):
        time.sleep(self.seconds)
        return os.getpid()


class Randomness(data.Dataset):
    """What each worker's random generators give."""

    def __len__(self) -> int:
        return 4

    def __getitem__(self, i: int):
        info = get_worker_info()
        return (info.id, info.seed, info.num_workers, type(info.dataset).__name__,
                random.random(), flambeau.rand(1).item(), float(np.random.rand()))


class Stream(data.IterableDataset):
    def __init__(self, n: int, shard: bool) -> None:
        self.n, self.shard = n, shard

    def __iter__(self):
        info = get_worker_info()
        if self.shard and info is not None:
            return iter(range(info.id, self.n, info.num_workers))
        return iter(range(self.n))


def record_init(worker_id: int) -> None:
    random.seed(1000 + worker_id)  # overrides the loader's seeding, as in PyTorch


def unpicklable_collate(batch):
    return lambda: batch


def tensor_collate(batch):
    return flambeau.tensor(batch) * 2


# --- the same batches as in the main process -------------------------------------------


def _plain(batch):
    return {k: (v.tolist() if hasattr(v, "tolist") else v) for k, v in batch.items()}


# spawn starts slowly (each worker imports flambeau): one persistent start covers it.
@pytest.mark.parametrize(("context", "persistent"), [("fork", False), ("fork", True),
                                                     ("spawn", True)])
def test_workers_give_the_batches_of_num_workers_0(context, persistent):
    main = DataLoader(Samples(), batch_size=4, shuffle=True, generator=gen(7))
    workers = DataLoader(Samples(), batch_size=4, shuffle=True, generator=gen(7),
                         num_workers=2, multiprocessing_context=context,
                         persistent_workers=persistent)
    for _ in range(2):  # two epochs: the generator advances alike
        batches = list(workers)
        assert [_plain(b) for b in main] == [_plain(b) for b in batches]
    batch = batches[0]
    assert batch["x"].dtype == flambeau.float32 and batch["a"].dtype == flambeau.int32
    assert batch["i"].dtype == flambeau.int64 and isinstance(batch["x"], flambeau.Tensor)
    assert batch["name"] == ["s" + str(i) for i in batch["i"].tolist()]


def test_tensor_dataset_and_custom_collate_through_workers():
    ds = data.TensorDataset(flambeau.arange(40.0).reshape(20, 2), flambeau.arange(20))
    main = [[t.tolist() for t in b] for b in DataLoader(ds, batch_size=6)]
    workers = DataLoader(ds, batch_size=6, num_workers=3, prefetch_factor=1)
    assert [[t.tolist() for t in b] for b in workers] == main
    doubled = DataLoader(range(5), batch_size=2, num_workers=2, collate_fn=tensor_collate)
    assert [b.tolist() for b in doubled] == [[0, 2], [4, 6], [8]]
    unbatched = DataLoader(Samples(3), batch_size=None, num_workers=2)
    assert [b["i"] for b in unbatched] == [0, 1, 2]


# --- errors ----------------------------------------------------------------------------


@pytest.mark.parametrize(("context", "workers"), [("fork", 2), ("spawn", 1)])
def test_a_worker_exception_comes_with_its_traceback(context, workers):
    loader = DataLoader(FailsAt(5), batch_size=2, num_workers=workers,
                        multiprocessing_context=context)
    it = iter(loader)
    assert next(it).tolist() == [0, 1] and next(it).tolist() == [2, 3]
    with pytest.raises(ValueError) as caught:
        next(it)
    text = str(caught.value)
    assert text.startswith("Caught ValueError in DataLoader worker process 0.\n"
                           "Original Traceback (most recent call last):")
    assert "sample 5 is corrupt" in text and "in __getitem__" in text
    assert next(it).tolist() == [6, 7]  # the loader goes on, as PyTorch's does
    del it


def test_a_worker_killed_by_a_signal_is_named():
    with pytest.raises(DataLoaderError, match=r"DataLoader worker 1 \(pid \d+\) was killed by "
                                              r"signal SIGKILL"):
        list(DataLoader(KillsWorker(), batch_size=2, num_workers=2))


def test_a_worker_killed_from_outside_is_an_error_not_a_hang():
    it = iter(DataLoader(Slow(0.05, n=40), batch_size=1, num_workers=2))
    pid = next(it).item()
    os.kill(pid, signal.SIGKILL)
    with pytest.raises(DataLoaderError, match="was killed by signal SIGKILL"):
        for _ in it:
            pass
    with pytest.raises(DataLoaderError, match="shut down after an error"):
        next(it)


class Big(data.Dataset):
    """16 MB samples: a kill lands while the worker writes one into its pipe."""

    def __len__(self) -> int:
        return 100

    def __getitem__(self, i: int):
        return np.full(4_000_000, os.getpid(), dtype=np.float32)


def test_a_worker_killed_while_sending_a_batch_is_an_error_not_a_hang():
    it = iter(DataLoader(Big(), batch_size=None, num_workers=2))
    pid = int(next(it)[0].item())
    killer = threading.Timer(0.005, os.kill, (pid, signal.SIGKILL))
    killer.start()
    with pytest.raises(DataLoaderError, match="was killed by signal SIGKILL"):
        for _ in it:
            pass
    killer.join()
    del it


def test_timeout():
    start = time.monotonic()
    with pytest.raises(DataLoaderError, match=r"DataLoader timed out after 0\.3 seconds"):
        next(iter(DataLoader(Slow(5.0), batch_size=1, num_workers=1, timeout=0.3)))
    assert time.monotonic() - start < 4


def test_an_unpicklable_batch_is_an_error_not_a_hang():
    with pytest.raises(TypeError, match="could not pickle its result"):
        next(iter(DataLoader(range(4), batch_size=2, num_workers=1,
                             collate_fn=unpicklable_collate)))


# --- seeds and worker info -------------------------------------------------------------


def test_worker_seeds_and_info_follow_pytorch():
    def run():
        loader = DataLoader(Randomness(), batch_size=None, num_workers=2, generator=gen(3))
        return list(loader)

    first, again = run(), run()
    assert first == again  # reproducible from the loader's generator
    ids = [row[0] for row in first]
    assert ids == [0, 1, 0, 1] and {row[2] for row in first} == {2}
    assert {row[3] for row in first} == {"Randomness"}
    w0, w1 = first[0], first[1]
    assert w1[1] == w0[1] + 1  # seed = base_seed + worker_id
    assert w0[4:] != w1[4:]  # random, flambeau and numpy differ between workers
    base = w0[1]
    r = random.Random(base)
    assert w0[4] == r.random()
    assert w0[5] == flambeau.rand(1, generator=gen(base)).item()
    np_state = np.random.RandomState(data._worker.numpy_seed(base, 0))
    assert w0[6] == np_state.rand()


def test_numpy_seed_is_pytorchs():
    worker = pytest.importorskip("torch.utils.data._utils.worker")
    for base, wid in [(0, 0), (12345, 1), (2**62 + 17, 3)]:
        assert data._worker.numpy_seed(base, wid).tolist() == worker._generate_state(base, wid)


def test_worker_init_fn_runs_in_each_worker():
    loader = DataLoader(Randomness(), batch_size=None, num_workers=2, worker_init_fn=record_init)
    rows = list(loader)
    assert rows[0][4] == random.Random(1000).random()
    assert rows[1][4] == random.Random(1001).random()


# --- iterable datasets -----------------------------------------------------------------


def test_iterable_dataset_each_worker_iterates_its_own_copy():
    sharded = DataLoader(Stream(10, shard=True), batch_size=2, num_workers=3)
    assert sorted(i for b in sharded for i in b.tolist()) == list(range(10))
    unbatched = DataLoader(Stream(5, shard=True), batch_size=None, num_workers=2)
    assert sorted(int(i) for i in unbatched) == list(range(5))
    duplicated = DataLoader(Stream(4, shard=False), batch_size=2, num_workers=2)
    assert sorted(i for b in duplicated for i in b.tolist()) == [0, 0, 1, 1, 2, 2, 3, 3]


# --- lifetime --------------------------------------------------------------------------


def test_breaking_out_of_the_loop_stops_the_workers():
    for _ in DataLoader(Slow(0.01, n=50), batch_size=1, num_workers=2):
        assert len(multiprocessing.active_children()) == 2
        break
    gc.collect()
    assert multiprocessing.active_children() == []  # joined by the iterator's finalizer


def test_persistent_workers_are_reused_and_keep_the_order():
    pids = DataLoader(Slow(0.0, n=6), batch_size=2, num_workers=2, persistent_workers=True)
    first = {p for b in pids for p in b.tolist()}
    assert first == {p for b in pids for p in b.tolist()} and len(first) == 2
    persistent = DataLoader(range(6), batch_size=2, num_workers=2, shuffle=True,
                            generator=gen(1), persistent_workers=True)
    main = DataLoader(range(6), batch_size=2, shuffle=True, generator=gen(1))
    for _ in range(2):  # epoch after epoch, the order of num_workers=0
        assert [b.tolist() for b in persistent] == [b.tolist() for b in main]
    half = iter(persistent)
    next(half)  # an unfinished epoch, then a new one: its stale batches are dropped
    assert sorted(i for b in persistent for i in b.tolist()) == list(range(6))
    del pids, persistent, half
