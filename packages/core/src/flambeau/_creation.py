"""Creating tensors: from data, filled, ranges, identity, ``*_like``, DLPack."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from . import _device, _dtypes
from ._device import resolve_device
from ._tensor import Tensor, _wrap
from .errors import DTypeError, ShapeError


def _finish(data: Any, device: Any, kernels: Any, requires_grad: bool) -> Tensor:
    t = _wrap(data, device, kernels)
    if requires_grad:
        t.requires_grad_(True)
    return t


def _infer_host(data: Any, dtype: np.dtype | None) -> np.ndarray:
    """``data`` as a numpy array of a supported dtype (PyTorch's defaults when unspecified)."""
    if isinstance(data, Tensor):
        host = data._k.to_numpy(data._data)
    elif isinstance(data, (list, tuple)) and any(isinstance(x, Tensor) for x in _flat(data)):
        host = np.array([_infer_host(x, None) for x in data])
    else:
        try:
            host = np.array(data)
        except ValueError as exc:
            raise ShapeError(f"could not make a tensor from the data: {exc}") from None
    if dtype is not None:
        return host.astype(dtype)
    if host.dtype.kind == "f" and not isinstance(data, (np.ndarray, np.generic, Tensor)):
        return host.astype(_dtypes.DEFAULT_FLOAT)  # Python floats: the default float dtype
    if host.dtype.kind in "iu" and not isinstance(data, (np.ndarray, np.generic, Tensor)):
        return host.astype(_dtypes.int64)
    if host.size == 0 and host.dtype == np.float64 and not isinstance(data, np.ndarray):
        return host.astype(_dtypes.DEFAULT_FLOAT)
    if not _dtypes.is_supported(host.dtype):
        raise DTypeError(
            f"cannot make a tensor from data of numpy dtype {host.dtype}; supported: "
            + ", ".join(str(d) for d in _dtypes.TENSOR_DTYPES)
        )
    return host


def _flat(data: Any):
    for item in data:
        if isinstance(item, (list, tuple)):
            yield from _flat(item)
        else:
            yield item


def tensor(data: Any, *, dtype: Any = None, device: Any = None,
           requires_grad: bool = False) -> Tensor:
    """A new tensor holding a copy of ``data`` (nested lists, numbers, numpy arrays, tensors).

    >>> import flambeau
    >>> flambeau.tensor([[1, 2], [3, 4]]).dtype
    dtype('int64')
    """
    dt = None if dtype is None else _dtypes.as_dtype(dtype)
    host = _infer_host(data, dt)
    if device is None and isinstance(data, Tensor):
        device = data.device
    dev, kernels = resolve_device(device)
    if _dtypes.is_bfloat16(host.dtype):
        _dtypes.check_device(host.dtype, dev)
    return _finish(kernels.from_numpy(host), dev, kernels, requires_grad)


def as_tensor(data: Any, dtype: Any = None, device: Any = None) -> Tensor:
    """``data`` as a tensor, reusing it when it already is one with that dtype and device."""
    if isinstance(data, Tensor):
        out = data
        if device is not None:
            out = out.to(device)
        return out if dtype is None else out.to(_dtypes.as_dtype(dtype))
    return tensor(data, dtype=dtype, device=device)


def from_numpy(array: np.ndarray) -> Tensor:
    """A tensor on the cpu device sharing ``array``'s memory, as in PyTorch: writes to one
    show in the other. The cpu backend's arrays are host memory (its ``from_numpy_shared``
    kernel); a cpu backend without that kernel, and arrays it cannot adopt (read-only,
    unaligned, negative strides, foreign byte order), get a copy.

    >>> import numpy as np, flambeau
    >>> a = np.zeros(2, np.float32)
    >>> t = flambeau.from_numpy(a)
    >>> a[0] = 5
    >>> t
    tensor([5., 0.])
    """
    if not isinstance(array, np.ndarray):
        raise TypeError(f"from_numpy expects a numpy.ndarray, got {type(array).__name__}")
    if not _dtypes.is_supported(array.dtype):
        raise DTypeError(f"from_numpy: unsupported numpy dtype {array.dtype}")
    return _adopt(array, *resolve_device("cpu"))


def _adopt(array: np.ndarray, dev: Any, kernels: Any) -> Tensor:
    """``array``'s memory as a tensor where the kernels can share it, else a copy."""
    share = getattr(kernels, "from_numpy_shared", None)
    flags = array.flags
    if (share is None or not (flags.writeable and flags.aligned) or array.dtype.byteorder
            not in "=|" or any(s < 0 for s in array.strides)):
        return _wrap(kernels.from_numpy(array), dev, kernels)
    out = _wrap(share(array), dev, kernels)
    if not flags.c_contiguous:  # what view() must know (see Tensor._strides)
        from ._ops.shape import layout

        out._strides = layout(array.shape, tuple(s // array.itemsize for s in array.strides))
    return out


def from_dlpack(obj: Any, device: Any = None) -> Tensor:
    """A tensor from any object implementing ``__dlpack__``.

    Memory on a device whose backend can adopt it (a CUDA tensor of torch or cupy, with
    flambeau-cuda installed) is shared, not copied, unless ``device`` names another
    device; so is host memory (a cpu tensor of torch, a numpy array) made a cpu tensor, as
    :func:`from_numpy` shares it. Anything else is copied through the host.
    """
    owner = _device.dlpack_owner(obj)
    if owner is not None:
        dev, kernels = owner
        shared = _wrap(kernels.from_dlpack(obj), dev, kernels)
        return shared if device is None else shared.to(device)
    try:
        host = np.from_dlpack(obj)
    except (RuntimeError, BufferError, TypeError) as exc:  # bfloat16 among others
        raise DTypeError(f"from_dlpack: numpy cannot import this object's dtype over DLPack "
                         f"({exc}); convert it in its library first (e.g. .float())") from None
    dev, kernels = resolve_device(device if device is not None else "cpu")
    if dev.type == "cpu":
        return _adopt(host, dev, kernels)
    return tensor(host, dtype=host.dtype, device=dev)


#: The largest size of one dimension (PyTorch's limit too: sizes are int64).
MAX_SIZE = 2**63 - 1


def _shape_args(size: tuple, keyword: Any = None) -> tuple[int, ...]:
    """A shape from varargs ``f(2, 3)``, a sequence ``f((2, 3))`` or ``f(size=(2, 3))``."""
    if keyword is not None:
        if size:
            raise TypeError("give the shape either positionally or as size=, not both")
        size = (keyword,)
    if len(size) == 1 and isinstance(size[0], (tuple, list)):
        size = tuple(size[0])
    shape = tuple(int(s) for s in size)
    if any(s < 0 for s in shape):
        raise ShapeError(f"sizes must be non-negative, got {list(shape)}")
    if any(s > MAX_SIZE for s in shape):
        raise ShapeError(f"sizes must fit in int64 (at most {MAX_SIZE}), got {list(shape)}")
    return shape


def full(size: Any, fill_value: Any, *, dtype: Any = None, device: Any = None,
         requires_grad: bool = False) -> Tensor:
    """A tensor of ``size`` filled with ``fill_value`` (dtype inferred from the value)."""
    shape = _shape_args((size,))
    dt = _dtypes.scalar_dtype(fill_value) if dtype is None else _dtypes.as_dtype(dtype)
    dev, kernels = resolve_device(device)
    return _finish(kernels.full(shape, _cast_scalar(fill_value, dt), dt), dev, kernels,
                   requires_grad)


def _cast_scalar(value: Any, dtype: np.dtype) -> Any:
    if _dtypes.is_floating(dtype):
        return float(value)
    return bool(value) if dtype.kind == "b" else int(value)


def _filled(value: int, size: tuple, dtype: Any, device: Any, requires_grad: bool,
            keyword: Any = None) -> Tensor:
    shape = _shape_args(size, keyword)
    dt = _dtypes.DEFAULT_FLOAT if dtype is None else _dtypes.as_dtype(dtype)
    dev, kernels = resolve_device(device)
    return _finish(kernels.full(shape, _cast_scalar(value, dt), dt), dev, kernels, requires_grad)


def zeros(*shape: Any, size: Any = None, dtype: Any = None, device: Any = None,
          requires_grad: bool = False) -> Tensor:
    """A tensor of zeros (float32 unless ``dtype`` says otherwise)."""
    return _filled(0, shape, dtype, device, requires_grad, size)


def ones(*shape: Any, size: Any = None, dtype: Any = None, device: Any = None,
          requires_grad: bool = False) -> Tensor:
    """A tensor of ones (float32 unless ``dtype`` says otherwise)."""
    return _filled(1, shape, dtype, device, requires_grad, size)


def empty(*shape: Any, size: Any = None, dtype: Any = None, device: Any = None,
          requires_grad: bool = False) -> Tensor:
    """An uninitialised tensor."""
    shape = _shape_args(shape, size)
    dt = _dtypes.DEFAULT_FLOAT if dtype is None else _dtypes.as_dtype(dtype)
    dev, kernels = resolve_device(device)
    return _finish(kernels.empty(shape, dt), dev, kernels, requires_grad)


def _like(input: Tensor, dtype: Any, device: Any) -> tuple[np.dtype, Any]:
    return (input.dtype if dtype is None else _dtypes.as_dtype(dtype),
            input.device if device is None else device)


def zeros_like(input: Tensor, *, dtype: Any = None, device: Any = None,
               requires_grad: bool = False) -> Tensor:
    """Zeros with ``input``'s shape, dtype and device."""
    dt, dev = _like(input, dtype, device)
    return zeros(input.shape, dtype=dt, device=dev, requires_grad=requires_grad)


def ones_like(input: Tensor, *, dtype: Any = None, device: Any = None,
              requires_grad: bool = False) -> Tensor:
    """Ones with ``input``'s shape, dtype and device."""
    dt, dev = _like(input, dtype, device)
    return ones(input.shape, dtype=dt, device=dev, requires_grad=requires_grad)


def full_like(input: Tensor, fill_value: Any, *, dtype: Any = None, device: Any = None,
              requires_grad: bool = False) -> Tensor:
    """``fill_value`` with ``input``'s shape, dtype and device."""
    dt, dev = _like(input, dtype, device)
    return full(input.shape, fill_value, dtype=dt, device=dev, requires_grad=requires_grad)


def empty_like(input: Tensor, *, dtype: Any = None, device: Any = None,
               requires_grad: bool = False) -> Tensor:
    """Uninitialised, with ``input``'s shape, dtype and device."""
    dt, dev = _like(input, dtype, device)
    return empty(input.shape, dtype=dt, device=dev, requires_grad=requires_grad)


def arange(start: Any, end: Any = None, step: Any = 1, *, dtype: Any = None,
           device: Any = None, requires_grad: bool = False) -> Tensor:
    """``start, start + step, ...`` below ``end`` (int64 for integer arguments, else float32)."""
    if end is None:
        start, end = 0, start
    if step == 0:
        raise ValueError("arange: step must be non-zero")
    values = [v.item() if isinstance(v, Tensor) else v for v in (start, end, step)]
    all_ints = all(isinstance(v, (int, np.integer)) for v in values)
    dt = (_dtypes.int64 if all_ints else _dtypes.DEFAULT_FLOAT) if dtype is None else \
        _dtypes.as_dtype(dtype)
    count = max(math.ceil((values[1] - values[0]) / values[2]), 0)
    host = (values[0] + np.arange(count, dtype=np.float64 if not all_ints else np.int64)
            * values[2]).astype(dt)
    dev, kernels = resolve_device(device)
    return _finish(kernels.from_numpy(host), dev, kernels, requires_grad)


def linspace(start: float, end: float, steps: int, *, dtype: Any = None, device: Any = None,
             requires_grad: bool = False) -> Tensor:
    """``steps`` evenly spaced values from ``start`` to ``end`` inclusive."""
    if steps < 0:
        raise ValueError(f"linspace: steps must be non-negative, got {steps}")
    dt = _dtypes.DEFAULT_FLOAT if dtype is None else _dtypes.as_dtype(dtype)
    host = np.linspace(start, end, steps).astype(dt)
    dev, kernels = resolve_device(device)
    return _finish(kernels.from_numpy(host), dev, kernels, requires_grad)


def eye(n: int, m: int | None = None, *, dtype: Any = None, device: Any = None,
        requires_grad: bool = False) -> Tensor:
    """An ``n`` x ``m`` identity matrix."""
    dt = _dtypes.DEFAULT_FLOAT if dtype is None else _dtypes.as_dtype(dtype)
    dev, kernels = resolve_device(device)
    return _finish(kernels.from_numpy(np.eye(n, m, dtype=dt)), dev, kernels, requires_grad)


class _TensorType(type):
    """The type of PyTorch's legacy names ``FloatTensor``, ``LongTensor``...: calling one
    makes a cpu tensor of its dtype from data (``FloatTensor([1, 2])``), or uninitialised
    of a shape (``FloatTensor(2, 3)``); ``isinstance(x, FloatTensor)`` checks that ``x``
    is a cpu tensor of that dtype, as in PyTorch.

    >>> import flambeau
    >>> x = flambeau.FloatTensor([1, 2])
    >>> x, isinstance(x, flambeau.FloatTensor), isinstance(x, flambeau.LongTensor)
    (tensor([1., 2.]), True, False)
    """

    _dtype: str

    def __call__(cls, *args: Any, device: Any = None) -> Tensor:
        dtype = _dtypes.as_dtype(cls._dtype)
        from ._tensor import Size

        if all(isinstance(a, int) and not isinstance(a, bool) for a in args) or (
                len(args) == 1 and isinstance(args[0], Size)):
            return empty(*args or (0,), dtype=dtype, device=device)
        return tensor(args[0], dtype=dtype, device=device)

    def __instancecheck__(cls, instance: Any) -> bool:
        return (isinstance(instance, Tensor) and instance.dtype.name == cls._dtype
                and instance.device.type == "cpu")


def _tensor_type(name: str, dtype: str) -> Any:
    return _TensorType(name + "Tensor", (), {"_dtype": dtype, "__module__": "flambeau",
                                             "__doc__": f"A cpu tensor of {dtype}."})


FloatTensor, DoubleTensor, HalfTensor, BFloat16Tensor = (
    _tensor_type(n, d) for n, d in (("Float", "float32"), ("Double", "float64"),
                                    ("Half", "float16"), ("BFloat16", "bfloat16")))
LongTensor, IntTensor, ShortTensor, CharTensor, ByteTensor, BoolTensor = (
    _tensor_type(n, d) for n, d in (("Long", "int64"), ("Int", "int32"), ("Short", "int16"),
                                    ("Char", "int8"), ("Byte", "uint8"), ("Bool", "bool")))
