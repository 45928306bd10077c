"""Binds the operations of ``flambeau._ops`` to :class:`Tensor` as methods and operators.

Type checkers cannot see ``setattr``: ``_tensor_methods.pyi``, a stub generated from
``METHODS`` and ``PROPERTIES``, declares these methods for them. After changing either table
or a bound function's signature, run ``hatch run python tools/gen_tensor_stub.py``
(``tests/test_typing.py`` fails until then). Bound functions must be annotated defs.
"""

from __future__ import annotations

from typing import Any

from . import _device, _dtypes, _random
from ._device import resolve_device
from ._ops import elementwise as ew
from ._ops import indexing, inplace, linalg, norms, reduction, shape, sorting
from ._ops import softmax as softmax_ops
from ._ops._common import cast
from ._tensor import Tensor, _wrap
from .autograd._engine import record
from .autograd._mode import STATE
from .errors import FlambeauError


def _parse_to(args: tuple, kwargs: dict) -> tuple[Any, Any]:
    device = kwargs.pop("device", None)
    dtype = kwargs.pop("dtype", None)
    kwargs.pop("non_blocking", None)
    kwargs.pop("copy", None)
    if kwargs:
        raise TypeError(f"to() got unexpected arguments {sorted(kwargs)}")
    for arg in args:
        if isinstance(arg, Tensor):
            device, dtype = arg.device, arg.dtype
        elif isinstance(arg, (str, _device.Device)):
            device = arg
        elif arg is not None:
            dtype = arg
    return device, dtype


def to(self: Tensor, *args: Any, **kwargs: Any) -> Tensor:
    """This tensor on another device and/or with another dtype (``self`` if already so).

    ``x.to("cuda:0")``, ``x.to(flambeau.float64)``, ``x.to(other)`` (other's device and
    dtype) and keywords ``device=``, ``dtype=`` all work. Copies between backends go
    through the host; gradients flow back across devices and float dtypes.
    """
    device, dtype = _parse_to(args, dict(kwargs))
    out = self
    if device is not None:
        target, kernels = resolve_device(device)
        if target != self._device:
            out = _move(self, target, kernels)
    if dtype is not None:
        out = cast(out, _dtypes.as_dtype(dtype))
    return out


def _move(x: Tensor, target: _device.Device, kernels: Any) -> Tensor:
    # Between devices of one backend its from_peer kernel, if any, skips the host.
    if _dtypes.is_bfloat16(x.dtype):
        _dtypes.check_device(x.dtype, target)
    peer = getattr(kernels, "from_peer", None) if target.type == x._device.type else None
    data = peer(x._data) if peer is not None else kernels.from_numpy(x._k.to_numpy(x._data))
    out = _wrap(data, target, kernels)
    if STATE.enabled and x.requires_grad:
        source = x._device
        record(out, "ToCopyBackward0", (x,), lambda g: (to(g, source),))
    return out


def cpu(self: Tensor) -> Tensor:
    """This tensor on the cpu device."""
    return to(self, "cpu")


def cuda(self: Tensor, device: Any = None) -> Tensor:
    """This tensor on a CUDA device (``cuda:0`` by default, or index/name ``device``)."""
    if device is None:
        return to(self, "cuda:0")
    return to(self, _device.Device("cuda", device) if isinstance(device, int) else device)


def _dtype_method(dtype: Any, name: str) -> Any:
    def method(self: Tensor) -> Tensor:
        return cast(self, dtype)

    method.__name__ = name
    method.__doc__ = f"This tensor as {dtype}."
    return method


def bfloat16(self: Tensor) -> Tensor:
    """This tensor as bfloat16 (``ml_dtypes`` is imported on first use)."""
    return cast(self, _dtypes.load_bfloat16())


def type_(self: Tensor, dtype: Any = None) -> Any:
    """Without arguments, the type name (``'flambeau.FloatTensor'``); else ``to(dtype)``."""
    if dtype is None:
        names = {"float32": "Float", "float64": "Double", "float16": "Half", "int64": "Long",
                 "int32": "Int", "int16": "Short", "int8": "Char", "uint8": "Byte",
                 "bool": "Bool", "bfloat16": "BFloat16"}
        return f"flambeau.{names[self.dtype.name]}Tensor"
    return cast(self, _dtypes.as_dtype(dtype))


def _getitem(self: Tensor, index: Any) -> Tensor:
    return indexing.getitem(self, index)


def _setitem(self: Tensor, index: Any, value: Any) -> None:
    indexing.setitem(self, index, value)


def _iop(op: str) -> Any:
    def method(self: Tensor, other: Any) -> Tensor:
        return inplace.binary_(op, self, other)

    method.__name__ = f"__i{op}__"
    return method


def _view(self: Tensor, *shape_or_dtype: Any) -> Tensor:
    if len(shape_or_dtype) == 1 and not isinstance(shape_or_dtype[0], (int, tuple, list)):
        raise FlambeauError("view(dtype) reinterpretation is not supported; use .to(dtype)")
    return shape.view(self, *shape_or_dtype)


def _reversed(self: Tensor) -> Tensor:
    return shape.flip(self, 0) if self.ndim else self


def _type_as(self: Tensor, other: Tensor) -> Tensor:
    return cast(self, other.dtype)


def _pos(self: Tensor) -> Tensor:
    return self


def _rmatmul(self: Tensor, other: Tensor) -> Tensor:
    return linalg.matmul(other, self)


def _where(self: Tensor, condition: Tensor, other: Any) -> Tensor:
    return ew.where(condition, self, other)


def _reshape_as(self: Tensor, other: Tensor) -> Tensor:
    return shape.reshape(self, other.shape)


def _T(self: Tensor) -> Tensor:
    return shape.permute(self, tuple(reversed(range(self.ndim))))


def _mT(self: Tensor) -> Tensor:
    return shape.transpose(self, -2, -1)


def _new_tensor(self: Tensor, data: Any, *, dtype: Any = None, device: Any = None,
                requires_grad: bool = False) -> Tensor:
    from ._creation import tensor

    return tensor(data, dtype=dtype or self.dtype, device=device or self.device,
                  requires_grad=requires_grad)


def _new_filled(name: str) -> Any:
    from . import _creation

    maker = getattr(_creation, name)

    def method(self: Tensor, *size: Any, dtype: Any = None, device: Any = None,
               requires_grad: bool = False) -> Tensor:
        return maker(*size, dtype=dtype or self.dtype, device=device or self.device,
                     requires_grad=requires_grad)

    method.__name__ = "new_" + name
    return method


METHODS: dict[str, Any] = {
    # conversions
    "to": to, "cpu": cpu, "cuda": cuda, "type": type_,
    "float": _dtype_method(_dtypes.float32, "float"),
    "double": _dtype_method(_dtypes.float64, "double"),
    "half": _dtype_method(_dtypes.float16, "half"), "bfloat16": bfloat16,
    "int": _dtype_method(_dtypes.int32, "int"),
    "long": _dtype_method(_dtypes.int64, "long"),
    "short": _dtype_method(_dtypes.int16, "short"),
    "bool": _dtype_method(_dtypes.bool_, "bool"),
    "byte": _dtype_method(_dtypes.uint8, "byte"),
    "new_tensor": _new_tensor, "new_zeros": _new_filled("zeros"),
    "new_ones": _new_filled("ones"), "new_empty": _new_filled("empty"),
    # operators
    "__add__": ew.add, "__radd__": ew.add, "__sub__": ew.sub, "__rsub__": ew.rsub,
    "__mul__": ew.mul, "__rmul__": ew.mul, "__truediv__": ew.div, "__rtruediv__": ew._rdiv,
    "__floordiv__": ew.floor_divide, "__rfloordiv__": ew._rfloordiv,
    "__mod__": ew.remainder, "__rmod__": ew._rmod, "__pow__": ew.pow, "__rpow__": ew._rpow,
    "__matmul__": linalg.matmul, "__rmatmul__": _rmatmul,
    "__neg__": ew.neg, "__pos__": _pos, "__abs__": ew.abs,
    "__eq__": ew.eq, "__ne__": ew.ne, "__lt__": ew.lt, "__le__": ew.le, "__gt__": ew.gt,
    "__ge__": ew.ge, "__and__": ew._and, "__or__": ew._or, "__xor__": ew._xor,
    "__rand__": ew._and, "__ror__": ew._or, "__rxor__": ew._xor, "__invert__": ew._invert,
    "__iadd__": _iop("add"), "__isub__": _iop("sub"), "__imul__": _iop("mul"),
    "__itruediv__": _iop("div"), "__ipow__": _iop("pow"), "__imod__": _iop("mod"),
    "__ifloordiv__": _iop("floordiv"),
    "__getitem__": _getitem, "__setitem__": _setitem, "__reversed__": _reversed,
    # elementwise
    "add": ew.add, "sub": ew.sub, "subtract": ew.sub, "mul": ew.mul, "multiply": ew.mul,
    "div": ew.div, "divide": ew.div, "true_divide": ew.div, "floor_divide": ew.floor_divide,
    "remainder": ew.remainder, "pow": ew.pow, "neg": ew.neg, "negative": ew.neg,
    "abs": ew.abs, "sign": ew.sign, "exp": ew.exp, "expm1": ew.expm1, "log": ew.log,
    "log1p": ew.log1p, "sqrt": ew.sqrt, "rsqrt": ew.rsqrt, "reciprocal": ew.reciprocal,
    "sin": ew.sin, "cos": ew.cos, "tanh": ew.tanh, "erf": ew.erf, "sigmoid": ew.sigmoid,
    "relu": ew.relu, "square": ew.square, "floor": ew.floor, "ceil": ew.ceil,
    "round": ew.round, "trunc": ew.trunc, "clamp": ew.clamp, "clip": ew.clamp,
    "maximum": ew.maximum, "minimum": ew.minimum, "eq": ew.eq, "ne": ew.ne, "lt": ew.lt,
    "le": ew.le, "gt": ew.gt, "ge": ew.ge, "logical_and": ew.logical_and,
    "logical_or": ew.logical_or, "logical_xor": ew.logical_xor,
    "logical_not": ew.logical_not, "isnan": ew.isnan, "isinf": ew.isinf,
    "isfinite": ew.isfinite,
    "where": _where,
    # reductions
    "sum": reduction.sum, "mean": reduction.mean, "prod": reduction.prod,
    "max": reduction.max, "min": reduction.min, "amax": reduction.amax,
    "amin": reduction.amin, "argmax": reduction.argmax, "argmin": reduction.argmin,
    "var": reduction.var, "std": reduction.std, "logsumexp": reduction.logsumexp,
    "all": reduction.all, "any": reduction.any, "cumsum": reduction.cumsum,
    "count_nonzero": reduction.count_nonzero,
    "softmax": softmax_ops.softmax, "log_softmax": softmax_ops.log_softmax,
    # linear algebra
    "matmul": linalg.matmul, "mm": linalg.mm, "bmm": linalg.bmm, "mv": linalg.mv,
    "dot": linalg.dot, "outer": linalg.outer, "norm": norms.norm,
    # shape
    "reshape": shape.reshape, "view": _view,
    "view_as": _reshape_as, "reshape_as": _reshape_as,
    "permute": shape.permute, "transpose": shape.transpose,
    "swapaxes": shape.transpose, "t": shape.t, "movedim": shape.movedim,
    "squeeze": shape.squeeze, "unsqueeze": shape.unsqueeze, "flatten": shape.flatten,
    "unflatten": shape.unflatten, "expand": shape.expand,
    "expand_as": shape.expand_as, "broadcast_to": shape.broadcast_to,
    "split": shape.split, "chunk": shape.chunk, "unbind": shape.unbind, "flip": shape.flip,
    "repeat": shape.repeat, "tile": shape.tile, "narrow": shape.narrow,
    "clone": shape.clone, "contiguous": shape.contiguous,
    # indexing
    "gather": indexing.gather, "scatter_add": indexing.scatter_add,
    "index_select": indexing.index_select, "masked_fill": indexing.masked_fill,
    "nonzero": indexing.nonzero,
    # in place
    "add_": inplace.add_, "sub_": inplace.sub_, "mul_": inplace.mul_, "div_": inplace.div_,
    "pow_": inplace.pow_, "fill_": inplace.fill_, "zero_": inplace.zero_,
    "copy_": inplace.copy_, "clamp_": inplace.clamp_, "clip_": inplace.clamp_,
    "masked_fill_": inplace.masked_fill_, "scatter_add_": inplace.scatter_add_,
    **inplace.UNARY_INPLACE,
    # random
    "uniform_": _random.uniform_, "normal_": _random.normal_,
    "bernoulli": _random.bernoulli,
    # issue 15: sorting, comparisons, blends, triangles
    "sort": sorting.sort, "argsort": sorting.argsort, "topk": sorting.topk,
    "kthvalue": sorting.kthvalue, "unique": sorting.unique, "cumprod": reduction.cumprod,
    "allclose": ew.allclose, "isclose": ew.isclose, "equal": ew.equal, "lerp": ew.lerp,
    "is_floating_point": ew.is_floating_point, "nan_to_num": ew.nan_to_num,
    "type_as": _type_as, "roll": shape.roll, "repeat_interleave": indexing.repeat_interleave,
    "tril": linalg.tril, "triu": linalg.triu, "diag": linalg.diag, "baddbmm": linalg.baddbmm,
}

PROPERTIES = {"T": _T, "mT": _mT}


def bind() -> None:
    """Attach every method and property to :class:`Tensor` (idempotent)."""
    for name, fn in METHODS.items():
        setattr(Tensor, name, fn)
    for name, fn in PROPERTIES.items():
        setattr(Tensor, name, property(fn))
