"""flambeau.utils.data in the main process: datasets, samplers, collate (against torch's
default_collate on the same inputs), DataLoader's arguments and its errors."""

from __future__ import annotations

import collections
import subprocess
import sys
import warnings

import numpy as np
import pytest

import flambeau
from flambeau.errors import FlambeauIndexError, ShapeError
from flambeau.utils import data
from flambeau.utils.data import (
    BatchSampler,
    ConcatDataset,
    DataLoader,
    RandomSampler,
    SequentialSampler,
    Subset,
    SubsetRandomSampler,
    TensorDataset,
    WeightedRandomSampler,
    default_collate,
    default_convert,
    random_split,
)

Point = collections.namedtuple("Point", ["x", "y"])


@pytest.fixture
def torch():
    return pytest.importorskip("torch")


def gen(seed: int = 0) -> flambeau.Generator:
    return flambeau.Generator().manual_seed(seed)


# --- datasets --------------------------------------------------------------------------


def test_tensor_dataset_rows_and_length():
    ds = TensorDataset(flambeau.arange(12.0).reshape(6, 2), flambeau.arange(6))
    assert len(ds) == 6
    x, y = ds[4]
    assert x.tolist() == [8.0, 9.0] and y.item() == 4


def test_tensor_dataset_of_unequal_first_dims_names_the_sizes():
    with pytest.raises(ShapeError, match=r"got sizes \[5, 5, 4\] \(tensor 2 has 4 rows, "
                                         r"tensor 0 has 5\)"):
        TensorDataset(flambeau.zeros(5, 2), flambeau.zeros(5), flambeau.zeros(4))
    with pytest.raises(ShapeError, match="tensor 0 has no first dimension"):
        TensorDataset(flambeau.tensor(1.0))
    with pytest.raises(ValueError, match="at least one tensor"):
        TensorDataset()


def test_subset_concat_and_chain():
    ds = TensorDataset(flambeau.arange(10))
    sub = Subset(ds, [7, 2, 5])
    assert len(sub) == 3 and sub[0][0].item() == 7
    assert [s[0].item() for s in sub.__getitems__([2, 0])] == [5, 7]
    both = ConcatDataset([range(3), range(10, 14)])
    assert len(both) == 7 and [both[i] for i in (0, 3, 6, -1)] == [0, 10, 13, 13]
    with pytest.raises(ValueError, match="should not exceed dataset length"):
        both[-8]
    assert len(ds + sub) == 13

    class Stream(data.IterableDataset):
        def __init__(self, n):
            self.n = n

        def __iter__(self):
            return iter(range(self.n))

    assert list(Stream(2) + Stream(3)) == [0, 1, 0, 1, 2]
    with pytest.raises(TypeError, match="ChainDataset"):
        ConcatDataset([Stream(2)])


@pytest.mark.parametrize(("n", "lengths"), [
    (10, [0.3, 0.7]), (11, [0.5, 0.5]), (7, [0.2, 0.3, 0.5]), (30, [0.1] * 10),
    (5, [1 / 3, 1 / 3, 1 / 3]), (3, [0.25, 0.25, 0.25, 0.25]), (10, [4, 6]),
])
def test_random_split_lengths_match_torch(torch, n, lengths):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # empty splits warn in both libraries
        ours = random_split(range(n), lengths, generator=gen(0))
        theirs = torch.utils.data.random_split(range(n), lengths,
                                               generator=torch.Generator().manual_seed(0))
    assert [len(s) for s in ours] == [len(s) for s in theirs]
    assert sorted(i for s in ours for i in s) == list(range(n))


def test_random_split_is_reproducible_and_checks_lengths():
    first = [list(s) for s in random_split(range(20), [5, 15], generator=gen(3))]
    assert first == [list(s) for s in random_split(range(20), [5, 15], generator=gen(3))]
    with pytest.raises(ValueError, match=r"does not equal the length .* \(9 != 10\)"):
        random_split(range(10), [4, 5])
    with pytest.raises(ValueError, match="Fraction at index 2 is not between 0 and 1"):
        random_split(range(10), [0.5, 0.7, -0.2])
    with pytest.warns(UserWarning, match="Length of split at index 1 is 0"):
        random_split(range(1), [0.5, 0.5])


# --- samplers --------------------------------------------------------------------------


def test_sequential_and_random_samplers():
    assert list(SequentialSampler(range(4))) == [0, 1, 2, 3]
    sampler = RandomSampler(range(50), generator=gen(0))
    first, second = list(sampler), list(sampler)
    assert sorted(first) == sorted(second) == list(range(50)) and first != second
    assert first == list(RandomSampler(range(50), generator=gen(0)))
    # Without a generator, each epoch draws a seed from the default generator.
    flambeau.manual_seed(5)
    a = list(RandomSampler(range(50)))
    flambeau.manual_seed(5)
    assert a == list(RandomSampler(range(50)))


def test_random_sampler_num_samples_and_replacement():
    more = list(RandomSampler(range(4), num_samples=10, generator=gen(0)))
    assert len(more) == 10 and sorted(more[:8]) == [0, 0, 1, 1, 2, 2, 3, 3]
    drawn = list(RandomSampler(range(3), replacement=True, num_samples=200, generator=gen(0)))
    assert len(drawn) == 200 and set(drawn) == {0, 1, 2}
    with pytest.raises(ValueError, match="num_samples should be a positive integer value, "
                                         "but got num_samples=0"):
        RandomSampler(range(3), num_samples=0)
    with pytest.raises(TypeError, match="replacement should be a boolean"):
        RandomSampler(range(3), replacement=1)
    with pytest.raises(TypeError, match=r"generator must be a flambeau\.Generator"):
        RandomSampler(range(3), generator=object())


def test_subset_random_sampler():
    order = list(SubsetRandomSampler([10, 20, 30, 40], generator=gen(1)))
    assert sorted(order) == [10, 20, 30, 40]


def test_weighted_random_sampler_semantics():
    weights = [0.0, 1.0, 3.0, 0.0]
    drawn = np.array(list(WeightedRandomSampler(weights, 20_000, generator=gen(0))))
    assert set(drawn.tolist()) == {1, 2}  # zero weights are never drawn
    assert abs((drawn == 2).mean() - 0.75) < 0.02
    once = list(WeightedRandomSampler([1, 5, 1, 5, 0], 4, replacement=False, generator=gen(0)))
    assert sorted(once) == [0, 1, 2, 3]
    # Without replacement the heavy indices tend to come first.
    firsts = [next(iter(WeightedRandomSampler([1, 9], 1, replacement=False, generator=gen(s))))
              for s in range(300)]
    assert abs(np.mean(firsts) - 0.9) < 0.06
    with pytest.raises(ValueError, match="cannot draw 3 samples without replacement from 2"):
        WeightedRandomSampler([1, 0, 1], 3, replacement=False)
    with pytest.raises(ValueError, match="non-negative"):
        WeightedRandomSampler([1, -1], 1)
    with pytest.raises(ValueError, match="1d sequence"):
        WeightedRandomSampler([[1, 2]], 1)


@pytest.mark.parametrize("drop_last", [False, True])
@pytest.mark.parametrize(("n", "size"), [(10, 3), (9, 3), (2, 5)])
def test_batch_sampler_matches_torch(torch, n, size, drop_last):
    ours = BatchSampler(SequentialSampler(range(n)), size, drop_last)
    theirs = torch.utils.data.BatchSampler(range(n), size, drop_last)
    assert list(ours) == list(theirs) and len(ours) == len(theirs)


@pytest.mark.parametrize("bad", [0, -1, 2.0, True, None])
def test_bad_batch_size_is_a_clear_error(bad):
    message = f"batch_size should be a positive integer value, but got batch_size={bad!r}"
    with pytest.raises(ValueError, match=message.replace("(", r"\(")):
        BatchSampler(range(4), bad, False)
    if bad is not None:  # None means "no batching" to a DataLoader
        with pytest.raises(ValueError, match="batch_size should be a positive integer"):
            DataLoader(range(4), batch_size=bad)


# --- collate, against torch ------------------------------------------------------------


def _same(ours, theirs, torch, where="batch"):
    """Same structure, types, dtypes, shapes and values."""
    if isinstance(theirs, torch.Tensor):
        assert isinstance(ours, flambeau.Tensor), where
        assert str(ours.dtype) == str(theirs.dtype).removeprefix("torch."), where
        assert ours.shape == tuple(theirs.shape), where
        np.testing.assert_array_equal(ours.numpy(), theirs.numpy(), err_msg=where)
        return
    assert type(ours) is type(theirs), (where, type(ours), type(theirs))
    if isinstance(theirs, dict):
        assert list(ours) == list(theirs), where
        for key in theirs:
            _same(ours[key], theirs[key], torch, f"{where}[{key!r}]")
    elif isinstance(theirs, (list, tuple)):
        assert len(ours) == len(theirs), where
        for i, (a, b) in enumerate(zip(ours, theirs)):
            _same(a, b, torch, f"{where}[{i}]")
    else:
        assert ours == theirs, where


def _inputs():
    rng = np.random.default_rng(0)
    arrays32 = [rng.standard_normal((2, 3)).astype(np.float32) for _ in range(3)]
    return {
        "ints": [1, 2, 3],
        "floats": [0.5, 1.5],
        "bools": [True, False],
        "int then float": [1, 2.5],
        "bool then int": [True, 2],
        "strings": ["a", "b"],
        "bytes": [b"a", b"b"],
        "float32 arrays": arrays32,
        "float64 arrays": [a.astype(np.float64) for a in arrays32],
        "int32 arrays": [np.arange(3, dtype=np.int32)] * 2,
        "0-d arrays": [np.array(1.5, dtype=np.float32), np.array(2.5, dtype=np.float32)],
        "numpy scalars": [np.float32(1.0), np.float32(2.0)],
        "mixed numpy scalars": [np.float32(1.0), np.float64(2.0)],
        "numpy ints": [np.int64(3), np.int64(4)],
        "tuples": [(1, 0.5, "x"), (2, 1.5, "y")],
        "lists": [[1, 2], [3, 4]],
        "dicts": [{"a": 1, "b": {"c": 0.5, "d": [1, 2]}}, {"a": 2, "b": {"c": 1.5, "d": [3, 4]}}],
        "namedtuples": [Point(1, 0.5), Point(2, 1.5)],
        "tensors": [rng.standard_normal((2, 2)).astype(np.float32) for _ in range(2)],
    }


@pytest.mark.parametrize("name", list(_inputs()))
def test_default_collate_matches_torch(torch, name):
    batch = _inputs()[name]
    if name == "tensors":
        ours = default_collate([flambeau.tensor(a) for a in batch])
        theirs = torch.utils.data.default_collate([torch.tensor(a) for a in batch])
    else:
        ours = default_collate(batch)
        theirs = torch.utils.data.default_collate(batch)
    _same(ours, theirs, torch)


@pytest.mark.parametrize("value", [
    np.arange(3), np.float32(2.0), {"a": np.ones(2), "b": "s"}, (np.zeros(1), 1), [1, 2.0],
    Point(np.int32(1), "y"), "text", 3.5,
])
def test_default_convert_matches_torch(torch, value):
    _same(default_convert(value), torch.utils.data.default_convert(value), torch)


def test_collate_of_mismatched_shapes_names_the_field_and_both_shapes():
    batch = [{"x": (flambeau.zeros(2), 0)}, {"x": (flambeau.zeros(3), 1)}]
    with pytest.raises(ShapeError, match=r"element 1 of the batch, field 'x' / position 0, has "
                                         r"shape \[3\], but element 0 has shape \[2\]"):
        default_collate(batch)
    with pytest.raises(ShapeError, match=r"element 2 of the batch, position 1, has shape "
                                         r"\[1, 2\], but element 0 has shape \[2\]"):
        default_collate([(0, np.zeros(2)), (1, np.zeros(2)), (2, np.zeros((1, 2)))])
    with pytest.raises(ShapeError, match="each element in list of batch should be of equal "
                                         "size: element 1 of the batch has length 3"):
        default_collate([[1, 2], [1, 2, 3]])


def test_collate_rejects_what_torch_rejects():
    with pytest.raises(TypeError, match="batch must contain tensors, numpy arrays, numbers"):
        default_collate([object(), object()])
    with pytest.raises(TypeError, match="found <U1"):
        default_collate([np.array(["a"]), np.array(["b"])])


# --- DataLoader ------------------------------------------------------------------------


def test_loader_batches_lengths_and_drop_last():
    ds = TensorDataset(flambeau.arange(10.0), flambeau.arange(10))
    loader = DataLoader(ds, batch_size=4)
    batches = list(loader)
    assert len(loader) == 3 and [len(x) for x, _ in batches] == [4, 4, 2]
    assert isinstance(batches[0], list) and batches[0][1].dtype == flambeau.int64
    assert len(DataLoader(ds, batch_size=4, drop_last=True)) == 2
    assert [len(x) for x, _ in DataLoader(ds, batch_size=4, drop_last=True)] == [4, 4]
    assert [x.item() for x, _ in DataLoader(ds, batch_size=None)][:3] == [0.0, 1.0, 2.0]
    assert list(DataLoader(range(3), batch_size=None)) == [0, 1, 2]  # default_convert
    assert DataLoader(ds, pin_memory=True).pin_memory  # accepted, a no-op


def test_shuffle_is_reproducible_and_new_each_epoch():
    ds = TensorDataset(flambeau.arange(10))

    def epochs(loader, n=3):
        return [[i for (b,) in loader for i in b.tolist()] for _ in range(n)]

    a = epochs(DataLoader(ds, batch_size=4, shuffle=True, generator=gen(0)))
    b = epochs(DataLoader(ds, batch_size=4, shuffle=True, generator=gen(0)))
    assert a == b
    assert a[0] != a[1] != a[2] and all(sorted(e) == list(range(10)) for e in a)
    # The same order on every machine and every run (Philox): a golden value.
    assert a[0] == [7, 6, 9, 0, 5, 8, 3, 1, 2, 4]


def test_fast_path_gives_the_batches_of_per_sample_collate():
    ds = TensorDataset(flambeau.randn(50, 3, generator=gen(1)), flambeau.arange(50))
    seen = []

    def listing_collate(batch):
        seen.append(type(batch))
        return default_collate(batch)

    fast = list(DataLoader(ds, batch_size=8, shuffle=True, generator=gen(2)))
    slow = list(DataLoader(ds, batch_size=8, shuffle=True, generator=gen(2),
                           collate_fn=listing_collate))
    assert set(seen) == {list}  # a user's collate_fn gets a list, as in PyTorch
    for (xf, yf), (xs, ys) in zip(fast, slow):
        assert xf.tolist() == xs.tolist() and yf.tolist() == ys.tolist()
        assert xf.dtype == xs.dtype and yf.dtype == ys.dtype
    sub = random_split(ds, [0.5, 0.5], generator=gen(0))[0]  # Subset keeps the fast path
    _, yb = next(iter(DataLoader(sub, batch_size=5)))
    assert yb.tolist() == [sub.indices[i] for i in range(5)]


def test_iterable_dataset_in_the_main_process():
    class Stream(data.IterableDataset):
        def __iter__(self):
            return iter(range(7))

        def __len__(self):
            return 7

    assert [b.tolist() for b in DataLoader(Stream(), batch_size=3)] == [[0, 1, 2], [3, 4, 5],
                                                                      [6]]
    assert len(DataLoader(Stream(), batch_size=3, drop_last=True)) == 2
    assert [b.tolist() for b in DataLoader(Stream(), batch_size=3, drop_last=True)] == \
        [[0, 1, 2], [3, 4, 5]]


def test_sampler_out_of_range_names_the_index_and_the_length():
    ds = TensorDataset(flambeau.arange(10))
    with pytest.raises(FlambeauIndexError, match=r"the sampler yielded index 12, but the "
                                                 r"dataset has 10 samples \(valid indices: "
                                                 r"0 to 9\)"):
        list(DataLoader(ds, sampler=[0, 12, 3], batch_size=2))
    with pytest.raises(IndexError, match="index 10, but the dataset has 10 samples"):
        list(DataLoader(ds, sampler=[10], batch_size=None))
    with pytest.raises(IndexError, match="index -11"):
        list(DataLoader(list(range(10)), batch_sampler=[[1, -11]]))


class _Stream(data.IterableDataset):
    def __iter__(self):
        return iter(range(3))


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"shuffle": True, "sampler": [0]}, "sampler option is mutually exclusive with shuffle"),
    ({"batch_sampler": [[0]], "batch_size": 2}, "batch_sampler option is mutually exclusive"),
    ({"batch_sampler": [[0]], "shuffle": True}, "batch_sampler option is mutually exclusive"),
    ({"batch_sampler": [[0]], "sampler": [0]}, "batch_sampler option is mutually exclusive"),
    ({"batch_sampler": [[0]], "drop_last": True}, "batch_sampler option is mutually exclusive"),
    ({"batch_size": None, "drop_last": True}, "batch_size=None option disables auto-batching"),
    ({"persistent_workers": True}, "persistent_workers option needs num_workers > 0"),
    ({"prefetch_factor": 2}, "prefetch_factor option could only be specified in multiproc"),
    ({"num_workers": 1, "prefetch_factor": -1}, "prefetch_factor option should be non-neg"),
    ({"num_workers": 1, "prefetch_factor": 0}, "prefetch_factor=0 would never ask"),
    ({"timeout": -1}, "timeout option should be non-negative"),
    ({"timeout": 5}, "timeout=5 needs num_workers > 0"),
    ({"num_workers": -1}, "num_workers option should be non-negative"),
    ({"multiprocessing_context": "spawn"}, "multiprocessing_context can only be used with"),
    ({"num_workers": 1, "multiprocessing_context": "nope"}, "should specify a valid start"),
    ({"generator": 0}, "generator must be a flambeau.Generator"),
])
def test_conflicting_arguments_raise_torchs_errors(kwargs, message):
    with pytest.raises((ValueError, TypeError), match=message.replace("(", r"\(")):
        DataLoader(range(4), **kwargs)


@pytest.mark.parametrize("kwargs", [{"shuffle": True}, {"sampler": [0]},
                                    {"batch_sampler": [[0]]}])
def test_iterable_dataset_refuses_samplers_and_shuffle(kwargs):
    with pytest.raises(ValueError, match="DataLoader with IterableDataset: expected "
                                         "unspecified"):
        DataLoader(_Stream(), **kwargs)


def test_loader_attributes_are_frozen_after_init():
    loader = DataLoader(range(4), batch_size=2)
    with pytest.raises(ValueError, match="batch_size attribute should not be set after "
                                         "DataLoader is initialized"):
        loader.batch_size = 3
    loader.num_workers = 0  # others may change, as in PyTorch


def test_get_worker_info_is_none_in_the_main_process():
    assert data.get_worker_info() is None


def test_import_flambeau_does_not_import_multiprocessing():
    code = ("import sys; before = set(sys.modules); import flambeau; "
            "flambeau.utils.data.DataLoader(range(3)); "
            "print(sorted(m for m in set(sys.modules) - before if 'multiprocessing' in m))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=60, check=True)
    assert out.stdout.strip() == "[]"
