"""Helpers shared by the op checks."""

from __future__ import annotations

import contextlib

import numpy as np

import flambeau

from ..kernel_checks import _sample


def _x(shape, dtype="float32", seed=0, low=-3, high=3) -> np.ndarray:
    dtype = np.dtype(dtype)
    return np.asarray(_sample(tuple(shape), dtype, seed, low, high), dtype)


def _loose(dtype) -> dict:
    """Tolerances for results summed or composed from several rounded steps."""
    return {"float16": {"rtol": 1e-2, "atol": 1e-2}, "float32": {"rtol": 1e-4, "atol": 1e-5},
            "float64": {"rtol": 1e-9, "atol": 1e-11}}.get(np.dtype(dtype).name, {})


@contextlib.contextmanager
def _case(label: str):
    """Name the case in the message of a failure inside the block."""
    try:
        yield
    except AssertionError as exc:
        exc.args = (f"{label}: {exc}",)
        raise


def _devices_other_than(device) -> list:
    return [d for d in flambeau.devices() if d != device]
