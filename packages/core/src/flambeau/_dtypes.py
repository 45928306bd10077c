"""Dtypes and the type-promotion rules, in one place.

flambeau dtypes *are* numpy dtypes: ``flambeau.float32 is numpy.dtype("float32")``.

Defaults (as in PyTorch):

* Python floats and float data make tensors of the default float dtype (``float32``
  unless :func:`set_default_dtype` changed it); Python ints make ``int64``; bools make
  ``bool``. ``zeros``/``ones``/``rand``... default to the default float dtype,
  ``arange`` of ints to ``int64``. ``dtype=float`` means ``float64``, as in PyTorch.

Promotion for an operation on several operands (as in PyTorch): every operand is a
*category* — bool < integer < floating — and one of three kinds, by priority:
tensors with at least one dimension, 0-d tensors, and Python scalars.

1. The result category is the highest category among all operands.
2. The result dtype is the promotion (``numpy.promote_types``) of the dtypes of the
   highest-priority kind that reaches that category; Python scalars of that category
   give the default dtype (the default float dtype for floats, ``int64`` for ints).

So ``int64 tensor + 2.5`` is ``float32``, ``float16 tensor + 2.5`` stays ``float16``,
``uint8 tensor + int8 tensor`` is ``int16``, and ``float32 tensor + float64 0-d tensor``
stays ``float32``. Division of integers gives ``float32``; ``mean``/``var`` and other
float-only ops refuse integer inputs with an error, like PyTorch.
"""

from __future__ import annotations

from typing import Any

import numpy as np

bool_ = np.dtype("bool")
uint8 = np.dtype("uint8")
int8 = np.dtype("int8")
int16 = np.dtype("int16")
int32 = np.dtype("int32")
int64 = np.dtype("int64")
float16 = np.dtype("float16")
float32 = np.dtype("float32")
float64 = np.dtype("float64")
#: torch's alternative names, exported by ``flambeau/__init__`` (``flambeau.float``...).
ALIASES = {"half": float16, "float": float32, "double": float64, "short": int16,
           "int": int32, "long": int64}

TENSOR_DTYPES = (bool_, uint8, int8, int16, int32, int64, float16, float32, float64)
DEFAULT_FLOAT = float32  # read at each use: set_default_dtype() rebinds it
DEFAULT_INT = int64

# Category of a dtype kind: bool < integer < floating.
_CATEGORY = {"b": 0, "u": 1, "i": 1, "f": 2, "V": 2}  # "V": bfloat16, numpy's only other float


def as_dtype(value: Any) -> np.dtype:
    """Turn ``value`` (a numpy dtype, its name, a numpy type or ``bool``/``int``/``float``)
    into a supported dtype, or raise a :class:`~flambeau.errors.DTypeError`."""
    from .errors import DTypeError

    if isinstance(value, np.dtype) and value in TENSOR_DTYPES:
        return value
    if (value if isinstance(value, str) else getattr(value, "__name__", "")) == "bfloat16":
        return load_bfloat16()
    if value is float:
        return float64  # torch: dtype=float is float64, whatever the default dtype
    try:
        dt = ALIASES[value] if isinstance(value, str) and value in ALIASES else np.dtype(value)
    except TypeError:
        dt = None
    if dt is None or not is_supported(dt):
        names = ", ".join(str(d) for d in TENSOR_DTYPES) + ", bfloat16"
        raise DTypeError(f"unsupported dtype {value!r}; expected one of {names}")
    return dt


def load_bfloat16() -> np.dtype:
    """``flambeau.bfloat16``: numpy's bfloat16 from the ``ml_dtypes`` package, imported on
    first use (its import takes half a second). Tensors of it compute on the cpu in float32,
    rounding each result back, as CPUs without bfloat16 arithmetic do."""
    import ml_dtypes

    return np.dtype(ml_dtypes.bfloat16)


def is_bfloat16(dtype: np.dtype) -> bool:
    """True for bfloat16 (by name: that needs no import of ``ml_dtypes``; the kind first,
    as ``dtype.name`` is slow and this runs in every cast)."""
    return dtype.kind == "V" and dtype.name == "bfloat16"


def is_floating(dtype: np.dtype) -> bool:
    """True for the floating-point dtypes, bfloat16 included (its numpy kind is ``V``)."""
    return dtype.kind == "f" or (dtype.kind == "V" and dtype.name == "bfloat16")


def is_supported(dtype: np.dtype) -> bool:
    """True for the dtypes a tensor can have."""
    return dtype in TENSOR_DTYPES or is_bfloat16(dtype)


def check_device(dtype: np.dtype, device: Any) -> None:
    """Raise when ``device`` cannot hold ``dtype`` (a backend's own kernels check the dtypes
    of the contract; bfloat16 is outside it, so the core checks it: see ``device.info``)."""
    if device.type != "meta" and dtype not in device.info.dtypes:
        from .errors import DTypeError

        names = ", ".join(d.name for d in device.info.dtypes)
        raise DTypeError(f"{device} does not support {dtype} (it supports {names}); keep "
                         f"{dtype} tensors on the cpu, or convert them first with .float()")


def category(dtype: np.dtype) -> int:
    """0 for bool, 1 for integers, 2 for floats."""
    return _CATEGORY[dtype.kind]


def scalar_dtype(value: Any) -> np.dtype:
    """The default dtype of a Python scalar."""
    if isinstance(value, (bool, np.bool_)):
        return bool_
    if isinstance(value, (int, np.integer)):
        return int64
    return DEFAULT_FLOAT


def result_type(*operands: Any) -> np.dtype:
    """The dtype of an operation on ``operands`` (tensors or Python scalars); see module doc."""
    best = [(-1, None), (-1, None), (-1, None)]  # per kind: (category, dtype)
    for op in operands:
        dtype = getattr(op, "dtype", None)
        if dtype is None:
            kind, dtype = 2, scalar_dtype(op)
            cat = category(dtype)
        else:
            kind, cat = (0 if op.ndim else 1), category(dtype)
        best_cat, best_dtype = best[kind]
        if cat > best_cat:
            best[kind] = (cat, dtype)
        elif cat == best_cat and dtype != best_dtype:
            best[kind] = (cat, np.promote_types(best_dtype, dtype))
    top = max(cat for cat, _ in best)
    for cat, dtype in best:
        if cat == top:
            return dtype
    raise ValueError("result_type needs at least one operand")


def set_default_dtype(d: Any) -> None:
    """Make ``d`` the dtype of new float tensors: ``tensor([1.5])``, ``zeros(2)``,
    ``rand(2)``, ``arange(1.0)``, and Python floats in operations with integer tensors.
    Floating dtypes only, as in PyTorch.

    >>> import flambeau
    >>> flambeau.set_default_dtype(flambeau.float64)
    >>> flambeau.tensor([1.5]).dtype, flambeau.zeros(2).dtype
    (dtype('float64'), dtype('float64'))
    >>> flambeau.set_default_dtype(flambeau.float32)
    """
    global DEFAULT_FLOAT
    dt = as_dtype(d)
    if dt.kind != "f" and dt.name != "bfloat16":
        raise TypeError(f"only floating-point types are supported as the default type, got {dt}")
    DEFAULT_FLOAT = dt


def get_default_dtype() -> np.dtype:
    """The dtype of new float tensors (``float32`` unless :func:`set_default_dtype` said
    otherwise)."""
    return DEFAULT_FLOAT


class finfo:
    """Machine limits of a float dtype (the default float dtype if none), with PyTorch's
    attribute names; the values are numpy's, as Python floats.

    Attributes:
        bits: Bits the dtype takes. eps: the gap between 1.0 and the next float.
        max, min: The largest and most negative finite values. tiny, smallest_normal:
        the smallest positive normal number. resolution: ``10 ** -digits``, the decimal
        precision. dtype: The dtype's name (a ``str``, as in PyTorch).

    >>> import flambeau
    >>> flambeau.finfo(flambeau.float16).max, flambeau.finfo().eps
    (65504.0, 1.1920928955078125e-07)
    """

    def __init__(self, type: Any = None) -> None:
        dt = DEFAULT_FLOAT if type is None else as_dtype(type)
        if dt.kind != "f" and dt.name != "bfloat16":
            raise TypeError(f"flambeau.finfo() requires a floating point input type, got "
                            f"{dt}; use flambeau.iinfo for integer types")
        if dt.name == "bfloat16":  # numpy's finfo does not know it; its package's does
            import ml_dtypes

            info = ml_dtypes.finfo(dt)
        else:
            info = np.finfo(dt)
        self.bits = int(info.bits)
        self.eps, self.max, self.min = float(info.eps), float(info.max), float(info.min)
        self.tiny = self.smallest_normal = float(info.smallest_normal)
        self.resolution = 10.0 ** -int(info.precision)
        self.dtype = str(dt)

    def __repr__(self) -> str:
        return (f"finfo(resolution={self.resolution:g}, min={self.min:g}, max={self.max:g}, "
                f"eps={self.eps:g}, smallest_normal={self.smallest_normal:g}, "
                f"tiny={self.tiny:g}, dtype={self.dtype})")


class iinfo:
    """Machine limits of an integer dtype, with PyTorch's attribute names: ``bits``,
    ``max``, ``min`` (Python ints) and ``dtype`` (its name, a ``str``).

    >>> import flambeau
    >>> flambeau.iinfo(flambeau.uint8)
    iinfo(min=0, max=255, dtype=uint8)
    """

    def __init__(self, type: Any) -> None:
        dt = as_dtype(type)
        if dt.kind not in "iu":
            raise TypeError(f"flambeau.iinfo() requires an integer input type, got {dt}; "
                            "use flambeau.finfo for floating types")
        info = np.iinfo(dt)
        self.bits, self.max, self.min = int(info.bits), int(info.max), int(info.min)
        self.dtype = str(dt)

    def __repr__(self) -> str:
        return f"iinfo(min={self.min:g}, max={self.max:g}, dtype={self.dtype})"  # as PyTorch
