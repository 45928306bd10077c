"""Comparing a device's results to numpy references."""

from __future__ import annotations

import numpy as np

_TOLERANCES = {
    np.dtype("float16"): (2e-3, 2e-3),
    np.dtype("float32"): (2e-5, 1e-6),
    np.dtype("float64"): (1e-10, 1e-12),
}


def tolerance(dtype: np.dtype) -> tuple[float, float]:
    """(rtol, atol) for comparing values of ``dtype``; exact (0, 0) for non-floats."""
    return _TOLERANCES.get(np.dtype(dtype), (0.0, 0.0))


def assert_close(actual: np.ndarray, expected: np.ndarray, *, dtype: object = None,
                 rtol: float | None = None, atol: float | None = None, what: str = "") -> None:
    """Assert same shape, same dtype (``dtype`` if given, else ``expected``'s) and close values.

    NaNs must match NaNs; integer and bool values must match exactly.
    """
    expected = np.asarray(expected)
    want_dtype = np.dtype(dtype) if dtype is not None else expected.dtype
    label = f"{what}: " if what else ""
    assert isinstance(actual, np.ndarray), f"{label}expected a numpy array, got {type(actual)}"
    assert actual.shape == expected.shape, (
        f"{label}shape {actual.shape} differs from the reference {expected.shape}"
    )
    assert actual.dtype == want_dtype, f"{label}dtype {actual.dtype}, expected {want_dtype}"
    default_rtol, default_atol = tolerance(want_dtype)
    np.testing.assert_allclose(
        actual.astype(np.float64) if want_dtype.kind == "f" else actual,
        expected.astype(np.float64) if want_dtype.kind == "f" else expected.astype(want_dtype),
        rtol=default_rtol if rtol is None else rtol,
        atol=default_atol if atol is None else atol,
        equal_nan=True,
        err_msg=label,
    )
