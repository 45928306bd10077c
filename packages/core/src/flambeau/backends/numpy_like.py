"""Where numpy's API and the contract disagree, fixed once for every numpy-like backend.

A backend built on numpy, or on a library that mirrors numpy's API (cupy), maps most
kernels to one library call. In a few places the library's answer differs from the
contract's; these helpers give the contract's answer with arrays of any such library,
so flambeau-cpu and flambeau-cuda (and your backend) write each fix once:

* :func:`keep_integers` wraps floor, ceil and round: an integer (or bool) is its own
  floor, ceil and round, and the contract keeps its dtype, where numpy and cupy may
  return floats (``rint`` always does; floor and ceil did before numpy 2.1).
* :func:`keep_dtype` wraps sum and prod: the contract keeps the input's dtype (numpy and
  cupy widen small integer types, int8 to int64).
* :func:`getitem` is the basic-slicing kernel: a view even when every axis gets an int.
* :func:`into` writes a result into an ``out=`` array, for kernels the library computes
  without ``out=``.
* :func:`via_float32` computes bfloat16 arrays (``ml_dtypes``) in float32 and rounds
  the result back, as CPUs without bfloat16 arithmetic do: numpy's bfloat16 matmul
  returns float32, and its sums accumulate in bfloat16.

>>> import numpy as np
>>> from flambeau.backends import numpy_like
>>> rint = numpy_like.keep_integers(np.rint)
>>> rint(np.array([1, 2], np.int8)).dtype, np.rint(np.array([1, 2], np.int8)).dtype
(dtype('int8'), dtype('float16'))
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

__all__ = ["getitem", "into", "keep_dtype", "keep_integers", "via_float32"]


def into(result: Any, out: Any | None) -> Any:
    """``result``, or ``result`` written into ``out`` and ``out`` returned when given.

    >>> import numpy as np
    >>> out = np.zeros(2)
    >>> into(np.ones(2), out) is out, out.tolist()
    (True, [1.0, 1.0])
    """
    if out is None:
        return result
    out[...] = result
    return out


def keep_integers(rounding: Callable[..., Any]) -> Callable[..., Any]:
    """``rounding`` (a floor, ceil or round function taking ``out=``) made to return
    integer and bool arrays unchanged, as a copy (or written into ``out``).

    >>> import numpy as np
    >>> keep_integers(np.ceil)(np.array([3], np.int16))
    array([3], dtype=int16)
    """

    def kernel(x: Any, out: Any | None = None) -> Any:
        if x.dtype.kind in "biu":
            return x.copy() if out is None else into(x, out)
        return rounding(x) if out is None else rounding(x, out=out)

    kernel.__name__ = kernel.__qualname__ = getattr(rounding, "__name__", "rounding")
    return kernel


def keep_dtype(reduction: Callable[..., Any]) -> Callable[..., Any]:
    """``reduction`` (a sum or product taking ``axis``, ``keepdims`` and ``dtype``)
    computed in, and returning, its input's dtype.

    >>> import numpy as np
    >>> keep_dtype(np.sum)(np.array([100, 100], np.int8), axis=None).dtype
    dtype('int8')
    """

    def kernel(x: Any, axis: Any = None, keepdims: bool = False) -> Any:
        return reduction(x, axis=axis, keepdims=keepdims, dtype=x.dtype)

    kernel.__name__ = kernel.__qualname__ = getattr(reduction, "__name__", "reduction")
    return kernel


def getitem(x: Any, index: tuple) -> Any:
    """``x[index]`` for the contract's ``getitem`` (ints and slices): always a view.

    With an int for every axis, ``x[index]`` is a scalar (numpy) or a copy; the trailing
    ``...`` makes it a 0-d view, through which writes reach ``x``.

    >>> import numpy as np
    >>> x = np.zeros((2, 2))
    >>> getitem(x, (1, 0))[...] = 5
    >>> x.tolist()
    [[0.0, 0.0], [5.0, 0.0]]
    """
    return x[(*index, ...)]


def via_float32(kernel: Callable[..., Any]) -> Callable[..., Any]:
    """``kernel`` (of arrays, then other arguments) computing bfloat16 arrays in float32 and
    rounding its array result back to bfloat16; other dtypes go straight through.

    >>> import numpy as np, ml_dtypes
    >>> a = np.ones((1, 300), ml_dtypes.bfloat16)
    >>> via_float32(np.matmul)(a, a.T).dtype, np.matmul(a, a.T).dtype
    (dtype(bfloat16), dtype('float32'))
    """

    def wrapped(x: Any, *args: Any, **kwargs: Any) -> Any:
        if x.dtype.kind != "V":  # (numpy's only other V dtypes are structured ones)
            return kernel(x, *args, **kwargs)
        args = tuple(a.astype("float32") if getattr(a, "dtype", None) == x.dtype else a
                     for a in args)
        result = kernel(x.astype("float32"), *args, **kwargs)
        return result.astype(x.dtype) if result.dtype.name == "float32" else result

    wrapped.__name__ = wrapped.__qualname__ = getattr(kernel, "__name__", "kernel")
    return wrapped
