"""Dtypes and the type-promotion rules, in one place.

flambeau dtypes *are* numpy dtypes: ``flambeau.float32 is numpy.dtype("float32")``.

Defaults (as in PyTorch):

* Python floats and float data make ``float32`` tensors; Python ints make ``int64``;
  bools make ``bool``. ``zeros``/``ones``/``rand``... default to ``float32``,
  ``arange`` of ints to ``int64``.

Promotion for an operation on several operands (as in PyTorch): every operand is a
*category* — bool < integer < floating — and one of three kinds, by priority:
tensors with at least one dimension, 0-d tensors, and Python scalars.

1. The result category is the highest category among all operands.
2. The result dtype is the promotion (``numpy.promote_types``) of the dtypes of the
   highest-priority kind that reaches that category; Python scalars of that category
   give the default dtype (``float32`` for floats, ``int64`` for ints).

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
DEFAULT_FLOAT = float32
DEFAULT_INT = int64

# Category of a dtype kind: bool < integer < floating.
_CATEGORY = {"b": 0, "u": 1, "i": 1, "f": 2}
_SCALAR_DEFAULT = {0: bool_, 1: int64, 2: float32}


def as_dtype(value: Any) -> np.dtype:
    """Turn ``value`` (a numpy dtype, its name, a numpy type or ``bool``/``int``/``float``)
    into a supported dtype, or raise a :class:`~flambeau.errors.DTypeError`."""
    from .errors import DTypeError

    if isinstance(value, np.dtype) and value in TENSOR_DTYPES:
        return value
    if value is float:
        return float32  # torch: a Python float means the default float dtype
    try:
        dt = ALIASES[value] if isinstance(value, str) and value in ALIASES else np.dtype(value)
    except TypeError:
        dt = None
    if dt is None or dt not in TENSOR_DTYPES:
        names = ", ".join(str(d) for d in TENSOR_DTYPES)
        raise DTypeError(f"unsupported dtype {value!r}; expected one of {names}")
    return dt


def category(dtype: np.dtype) -> int:
    """0 for bool, 1 for integers, 2 for floats."""
    return _CATEGORY[dtype.kind]


def scalar_dtype(value: Any) -> np.dtype:
    """The default dtype of a Python scalar."""
    if isinstance(value, (bool, np.bool_)):
        return bool_
    if isinstance(value, (int, np.integer)):
        return int64
    return float32


def result_type(*operands: Any) -> np.dtype:
    """The dtype of an operation on ``operands`` (tensors or Python scalars); see module doc."""
    best = [(-1, None), (-1, None), (-1, None)]  # per kind: (category, dtype)
    for op in operands:
        dtype = getattr(op, "dtype", None)
        if dtype is None:
            kind, dtype = 2, scalar_dtype(op)
            cat = category(dtype)
            dtype = _SCALAR_DEFAULT[cat]
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
