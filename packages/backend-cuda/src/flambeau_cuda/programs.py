"""The CUDA sources of flambeau-cuda and the kernels (programs) compiled from them.

``sources/*.cu`` hold the raw kernels, ``extern "C"`` and one per float type (``name_f32``,
``name_f64``); :func:`source` gives a file's text as NVRTC gets it, with its local
``#include "..."`` lines replaced by the files they name. :data:`ELEMENTWISE` lists the
cupy ElementwiseKernels, as data, so that tests/test_cuda_sources.py compiles them too
(with nvcc, for sm_90) and no kernel source escapes that check.

cupy is imported only when a kernel is first needed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib import resources
from typing import Any

import numpy as np

#: Kernel name suffix per float dtype the raw kernels are instantiated for.
SUFFIX = {np.dtype("float32"): "f32", np.dtype("float64"): "f64"}
#: Threads per block of the elementwise raw kernels.
BLOCK = 256
#: Most blocks a grid-stride kernel is launched with.
MAX_BLOCKS = 1 << 16

_INCLUDE = re.compile(r'^#include "([^"]+)"[ \t]*$', re.MULTILINE)


def source_names() -> list[str]:
    """The kernel source files (``*.cu``) in ``flambeau_cuda/sources``."""
    folder = resources.files(__package__) / "sources"
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".cu"))


def source(name: str) -> str:
    """The text of ``sources/<name>`` with local includes pasted in (each file once)."""
    folder = resources.files(__package__) / "sources"
    seen: set[str] = set()

    def expand(file: str) -> str:
        if file in seen:
            return ""
        seen.add(file)
        text = (folder / file).read_text(encoding="utf-8").replace("#pragma once\n", "")
        return _INCLUDE.sub(lambda m: expand(m.group(1)), text)

    return expand(name)


@dataclass(frozen=True)
class ElementwiseSource:
    """The arguments of one ``cupy.ElementwiseKernel``; ``T`` is float or double."""

    in_params: str
    out_params: str
    operation: str
    name: str


ELEMENTWISE: dict[str, ElementwiseSource] = {
    # (x - mean) / sqrt(var + eps) * weight + bias, broadcast: layer and batch norm after
    # their statistics (weight 1 and bias 0 stand for absent ones).
    "normalize": ElementwiseSource(
        "T x, T mean, T var, T weight, T bias, T eps", "T y",
        "y = (x - mean) / sqrt(var + eps) * weight + bias", "flambeau_normalize"),
}

_ELEMENTWISE_KERNELS: dict[str, Any] = {}


def elementwise(name: str) -> Any:
    """The ``cupy.ElementwiseKernel`` of :data:`ELEMENTWISE` ``name`` (built once; cupy
    compiles it per device and dtype on first use)."""
    kernel = _ELEMENTWISE_KERNELS.get(name)
    if kernel is None:
        import cupy

        spec = ELEMENTWISE[name]
        kernel = _ELEMENTWISE_KERNELS[name] = cupy.ElementwiseKernel(
            spec.in_params, spec.out_params, spec.operation, spec.name)
    return kernel


class RawKernels:
    """The raw kernels of one device, compiled (by cupy, through NVRTC, with its on-disk
    cache) the first time each source file is used there."""

    def __init__(self) -> None:
        self._modules: dict[str, Any] = {}
        self._functions: dict[tuple[str, str], Any] = {}

    def get(self, file: str, name: str, dtype: np.dtype | None = None) -> Any:
        """Kernel ``name`` (``name_f32``/``name_f64`` for ``dtype``) of ``sources/<file>``;
        call it with the kernel set's device current."""
        if dtype is not None:
            name = f"{name}_{SUFFIX[np.dtype(dtype)]}"
        function = self._functions.get((file, name))
        if function is None:
            module = self._modules.get(file)
            if module is None:
                import cupy

                module = self._modules[file] = cupy.RawModule(code=source(file))
            function = self._functions[(file, name)] = module.get_function(name)
        return function


def launch(function: Any, total: int, args: tuple, block: int = BLOCK) -> None:
    """Run grid-stride ``function`` over ``total`` items (nothing when there are none)."""
    if total > 0:
        function((min(-(-total // block), MAX_BLOCKS),), (block,), args)


def launch_rows(function: Any, rows: int, cols: int, args: tuple) -> None:
    """Run a one-block-per-row ``function`` (its blocks reduce with all their threads)."""
    if rows > 0:
        block = 32
        while block < min(cols, 512):
            block *= 2
        function((min(rows, MAX_BLOCKS),), (block,), args)
