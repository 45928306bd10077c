"""PyTorch-style ``repr`` of tensors: ``tensor([1., 2.], device='cuda:0', dtype=...)``."""

from __future__ import annotations

import numpy as np

from . import _dtypes

# dtypes PyTorch leaves out of the repr because they are what tensor() infers (and the
# default float dtype, see _implied).
_IMPLIED = {_dtypes.int64, _dtypes.bool_}
_PREFIX = "tensor("


def _float_formatter(values: np.ndarray):
    """A formatter giving every element the same width, in PyTorch's styles."""
    finite = values[np.isfinite(values)].astype(np.float64)
    if finite.size == 0:
        style = "{:.4f}"
    else:
        big = np.abs(finite).max()
        nonzero = np.abs(finite[finite != 0])
        small = nonzero.min() if nonzero.size else 0.0
        ratio_big = bool(small) and big / small > 1e3
        if np.all(finite == np.round(finite)) and big < 1e8 and not ratio_big:
            style = "{:.0f}."
        elif big >= 1e8 or (small and (small < 1e-4 or big / small > 1e3)):
            style = "{:.4e}"
        else:
            style = "{:.4f}"

    def one(v: float) -> str:
        return _special(v) or style.format(v)

    # PyTorch sizes the columns by the non-zero finite values; nan/inf may stick out.
    width = max((len(style.format(v)) for v in finite[finite != 0]), default=1)
    return lambda v: one(v).rjust(width)


def _special(value: float) -> str:
    if np.isnan(value):
        return "nan"
    if np.isinf(value):
        return "inf" if value > 0 else "-inf"
    return ""


def format_values(host: np.ndarray, indent: int) -> str:
    """The values part of a repr, wrapped and indented like PyTorch."""
    options = {"separator": ", ", "prefix": " " * indent, "max_line_width": 80,
               "threshold": 1000, "edgeitems": 3}
    if _dtypes.is_bfloat16(host.dtype):
        host = host.astype(np.float32)  # (numpy prints bfloat16 without float formatting)
    if host.dtype.kind == "f":
        # Like PyTorch, a long tensor's style comes from the values it shows.
        options["formatter"] = {"float_kind": _float_formatter(_summarized(host))}
    elif host.dtype.kind == "b":
        width = 4 if _summarized(host).all() else 5  # PyTorch pads to the widest shown
        options["formatter"] = {"bool": lambda v: ("True" if v else "False").rjust(width)}
    text = np.array2string(host, **options)
    return text.replace(", ...,", ",  ...,")  # PyTorch's spacing around elided values


def _summarized(host: np.ndarray, threshold: int = 1000, edge: int = 3) -> np.ndarray:
    """The elements a repr shows: ``edge`` at each end of every long dimension."""
    if host.size <= threshold:
        return host
    for axis, size in enumerate(host.shape):
        if size > 2 * edge:
            keep = np.r_[0:edge, size - edge : size]
            host = host.take(keep, axis=axis)
    return host


def tensor_repr(t) -> str:
    """``repr(tensor)``."""
    if t.device.type == "meta":
        dtype = "" if t.dtype == _dtypes.DEFAULT_FLOAT else f", dtype=flambeau.{t.dtype}"
        return f"tensor(..., device='meta', size={tuple(t.shape)}{dtype})"
    host = t._k.to_numpy(t._data)
    body = format_values(host, len(_PREFIX))
    extras = []
    if host.size == 0 and host.ndim > 1:
        extras.append(f"size={tuple(host.shape)}")
    if t.device.type != "cpu":
        extras.append(f"device='{t.device}'")
    implied = t.dtype in _IMPLIED or t.dtype == _dtypes.DEFAULT_FLOAT
    if not implied or (host.size == 0 and t.dtype != _dtypes.DEFAULT_FLOAT):
        extras.append(f"dtype=flambeau.{t.dtype}")
    if t.grad_fn is not None:
        extras.append(f"grad_fn=<{t.grad_fn.name()}>")
    elif t.requires_grad:
        extras.append("requires_grad=True")
    return _PREFIX + body + "".join(", " + e for e in extras) + ")"
