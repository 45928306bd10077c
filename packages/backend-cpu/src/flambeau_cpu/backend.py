"""The ``cpu`` backend object: one device, the host, running numpy."""

from __future__ import annotations

import os
import platform

import numpy as np

from flambeau.backends import CONTRACT_VERSION, DTYPES, DeviceInfo

from .kernels import NumpyKernels
from .memory import total_memory


def _bfloat16() -> np.dtype:
    import ml_dtypes  # (on the first device_info call: its import takes half a second)

    return np.dtype(ml_dtypes.bfloat16)


class CpuBackend:
    """Device type ``cpu``: exactly one device, ``cpu:0``."""

    name = "cpu"
    contract_version = CONTRACT_VERSION

    def __init__(self) -> None:
        self._kernels = NumpyKernels()

    def device_count(self) -> int:
        return 1

    def device_info(self, index: int) -> DeviceInfo:
        self._check(index)
        return DeviceInfo(
            name=f"numpy on {platform.machine() or 'host'} ({os.cpu_count()} cores)",
            memory_bytes=total_memory(),
            dtypes=(*DTYPES.values(), _bfloat16()),  # bfloat16: in float32, rounded back
            vendor=platform.processor() or "",
        )

    def synchronize(self, index: int) -> None:
        self._check(index)  # numpy runs synchronously: nothing is ever pending

    def kernels(self, index: int) -> NumpyKernels:
        self._check(index)
        return self._kernels

    @staticmethod
    def _check(index: int) -> None:
        if index != 0:
            raise IndexError(f"the cpu backend has one device, cpu:0; got index {index}")
