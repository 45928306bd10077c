"""The ``cpu`` backend object: one device, the host, running numpy."""

from __future__ import annotations

import os
import platform

from flambeau.backends import CONTRACT_VERSION, DTYPES, DeviceInfo

from .kernels import NumpyKernels
from .memory import total_memory


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
            dtypes=tuple(DTYPES.values()),
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
