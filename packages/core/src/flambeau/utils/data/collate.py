"""Collating samples into batches (PyTorch's ``default_collate`` rules), and the numpy
form in which worker processes send batches back.

Rules, element type -> batch: tensor -> stacked tensor; numpy array -> tensor of its
dtype; numpy scalar -> tensor; Python ``float`` -> float64 tensor, ``int`` -> int64,
``bool`` -> bool; ``str``/``bytes`` -> unchanged; mapping -> same mapping of collated
values; namedtuple -> same namedtuple; tuple -> list; other sequences -> same type.

>>> from flambeau.utils.data import default_collate
>>> default_collate([{"x": 1.5, "y": 0}, {"x": 2.5, "y": 1}])
{'x': tensor([1.5000, 2.5000], dtype=flambeau.float64), 'y': tensor([0, 1])}
>>> default_collate([(0, "a"), (1, "b")])
[tensor([0, 1]), ('a', 'b')]
"""

from __future__ import annotations

import collections.abc as abc
import copy
import re
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from ..._dtypes import TENSOR_DTYPES
from ..._tensor import Tensor
from ...errors import ShapeError
from .dataset import StackedSamples

_STRING_OR_OBJECT = re.compile(r"[SaUO]")
_ERR = ("default_collate: batch must contain tensors, numpy arrays, numbers, dicts or "
        "lists; found {}")

Leaf = Callable[[np.ndarray, Any], Any]  # (host array, device or None) -> batch leaf


class Shipped:
    """A tensor on its way from a worker process: its values as a numpy array and the
    name of its device (None: the default device of the receiving process)."""

    __slots__ = ("array", "device")

    def __init__(self, array: np.ndarray, device: str | None) -> None:
        self.array, self.device = array, device

    def __reduce__(self) -> Any:
        return Shipped, (self.array, self.device)


def _tensor_leaf(array: np.ndarray, device: Any) -> Tensor:
    from ..._creation import from_numpy, tensor
    from ..._device import get_default_device

    if (device or str(get_default_device())) == "cpu" and array.dtype in TENSOR_DTYPES:
        return from_numpy(array)  # one copy, not the two of tensor(..., dtype=)
    return tensor(array, dtype=array.dtype, device=device)


def _shipped_leaf(array: np.ndarray, device: Any) -> Shipped:
    return Shipped(array, device)


def _where(path: Sequence[str]) -> str:
    return f", {' / '.join(path)}," if path else ""


def _check_same_shape(shapes: list[tuple[int, ...]], path: Sequence[str]) -> None:
    bad = next((i for i, s in enumerate(shapes) if s != shapes[0]), None)
    if bad is not None:
        raise ShapeError(
            f"default_collate: element {bad} of the batch{_where(path)} has shape "
            f"{list(shapes[bad])}, but element 0 has shape {list(shapes[0])}; samples must "
            "have equal shapes to be stacked (pad or crop them, or pass a collate_fn)")


def _collate(batch: Sequence[Any], path: list[str], leaf: Leaf) -> Any:
    if isinstance(batch, StackedSamples):  # TensorDataset's fast path: already batched
        if leaf is _tensor_leaf:
            return list(batch.columns)
        return [Shipped(c.numpy(force=True), str(c.device)) for c in batch.columns]
    elem = batch[0]
    if isinstance(elem, Tensor):
        _check_same_shape([tuple(t.shape) for t in batch], path)
        if leaf is _tensor_leaf:
            from ..._ops.shape import stack

            return stack(list(batch))
        return Shipped(np.stack([t.numpy(force=True) for t in batch]), str(elem.device))
    if isinstance(elem, np.ndarray):
        if _STRING_OR_OBJECT.search(elem.dtype.str):
            raise TypeError(_ERR.format(elem.dtype))
        _check_same_shape([np.shape(a) for a in batch], path)
        return leaf(np.stack(batch), None)
    if isinstance(elem, (np.bool_, np.number)):
        return leaf(np.asarray(batch), None)
    if isinstance(elem, float):
        return leaf(np.asarray(batch, dtype=np.float64), None)
    if isinstance(elem, int):  # and bool: PyTorch's torch.tensor(batch) dtypes
        host = np.asarray(batch)
        if host.dtype.kind == "f":
            host = host.astype(np.float32)
        elif host.dtype.kind in "iu":
            host = host.astype(np.int64)
        return leaf(host, None)
    if isinstance(elem, (str, bytes)):
        return batch
    if isinstance(elem, abc.Mapping):
        items = {key: _collate([d[key] for d in batch], [*path, f"field {key!r}"], leaf)
                 for key in elem}
        return _rebuild_mapping(elem, items)
    if isinstance(elem, tuple) and hasattr(elem, "_fields"):  # namedtuple
        return type(elem)(*(_collate(samples, [*path, f"field {name!r}"], leaf)
                            for name, samples in zip(elem._fields, zip(*batch))))
    if isinstance(elem, abc.Sequence):
        sizes = [len(e) for e in batch]
        bad = next((i for i, n in enumerate(sizes) if n != sizes[0]), None)
        if bad is not None:
            raise ShapeError(
                f"default_collate: each element in list of batch should be of equal size: "
                f"element {bad} of the batch{_where(path)} has length {sizes[bad]}, but "
                f"element 0 has length {sizes[0]}")
        columns = [_collate(samples, [*path, f"position {i}"], leaf)
                   for i, samples in enumerate(zip(*batch))]
        return columns if isinstance(elem, tuple) else _rebuild_sequence(elem, columns)
    raise TypeError(_ERR.format(type(elem)))


def _rebuild_mapping(like: abc.Mapping, items: dict) -> Any:
    """``items`` in a mapping of ``like``'s type where that type allows it (PyTorch)."""
    try:
        if isinstance(like, abc.MutableMapping):
            clone = copy.copy(like)
            clone.update(items)
            return clone
        return type(like)(items)  # type: ignore[call-arg]
    except TypeError:
        return items


def _rebuild_sequence(like: abc.Sequence, items: list) -> Any:
    try:
        if isinstance(like, abc.MutableSequence):
            clone = copy.copy(like)
            for i, item in enumerate(items):
                clone[i] = item
            return clone
        return type(like)(items)  # type: ignore[call-arg]
    except TypeError:
        return items


def default_collate(batch: Sequence[Any]) -> Any:
    """Stack a list of samples into a batch, following the structure of the samples.

    A collate error names where in the sample it happened and both shapes:

    >>> import flambeau
    >>> default_collate([{"x": flambeau.zeros(2)}, {"x": flambeau.zeros(3)}])
    Traceback (most recent call last):
    ...
    flambeau.errors.ShapeError: default_collate: element 1 of the batch, field 'x', has ...
    """
    return _collate(batch, [], _tensor_leaf)


def collate_to_numpy(batch: Sequence[Any]) -> Any:
    """``default_collate`` with :class:`Shipped` numpy arrays where tensors would be (what a
    worker process sends)."""
    return _collate(batch, [], _shipped_leaf)


def _convert(data: Any, leaf: Leaf) -> Any:
    if isinstance(data, Tensor):
        return data if leaf is _tensor_leaf else Shipped(data.numpy(force=True),
                                                          str(data.device))
    if isinstance(data, np.ndarray):
        return data if _STRING_OR_OBJECT.search(data.dtype.str) else leaf(data, None)
    if isinstance(data, (np.bool_, np.number)):
        return leaf(np.asarray(data), None)
    if isinstance(data, abc.Mapping):
        return _rebuild_mapping(data, {k: _convert(v, leaf) for k, v in data.items()})
    if isinstance(data, tuple) and hasattr(data, "_fields"):
        return type(data)(*(_convert(d, leaf) for d in data))
    if isinstance(data, tuple):
        return [_convert(d, leaf) for d in data]
    if isinstance(data, abc.Sequence) and not isinstance(data, (str, bytes)):
        return _rebuild_sequence(data, [_convert(d, leaf) for d in data])
    return data


def default_convert(data: Any) -> Any:
    """Turn the numpy arrays and numpy scalars in ``data`` into tensors, keeping its
    structure (the ``DataLoader``'s collate function when ``batch_size=None``).

    >>> import numpy as np
    >>> default_convert({"a": np.arange(3), "b": "text"})
    {'a': tensor([0, 1, 2]), 'b': 'text'}
    """
    return _convert(data, _tensor_leaf)


def convert_to_numpy(data: Any) -> Any:
    """``default_convert`` with :class:`Shipped` arrays where tensors would be."""
    return _convert(data, _shipped_leaf)


def pack(data: Any) -> Any:
    """Replace the tensors in ``data`` (through dicts, lists, tuples, namedtuples) by
    :class:`Shipped` arrays, for a worker's own ``collate_fn`` output."""
    return _map_structure(data, Tensor, lambda t: Shipped(t.numpy(force=True), str(t.device)))


def unpack(data: Any) -> Any:
    """The inverse of :func:`pack` in the main process: :class:`Shipped` -> tensors."""
    return _map_structure(data, Shipped, lambda s: _tensor_leaf(s.array, s.device))


def _map_structure(data: Any, kind: type, fn: Callable[[Any], Any]) -> Any:
    if isinstance(data, kind):
        return fn(data)
    if type(data) in (list, tuple):
        return type(data)(_map_structure(d, kind, fn) for d in data)
    if isinstance(data, tuple) and hasattr(data, "_fields"):
        return type(data)(*(_map_structure(d, kind, fn) for d in data))
    if isinstance(data, abc.Mapping):
        return _rebuild_mapping(data, {k: _map_structure(v, kind, fn) for k, v in data.items()})
    return data
