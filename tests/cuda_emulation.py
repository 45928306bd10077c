"""pytest plugin: flambeau-cuda's kernel code on the host, as the device ``cudaemu:0``.

For machines without a GPU (CI): ``flambeau_cuda.kernels`` and ``fused`` are loaded
against a stand-in for cupy made of numpy, and the raw kernels of ``sources/*.cu`` are
compiled for the CPU with g++ (the file's own code; only ``common.cuh`` is swapped for
:data:`HOST_PRELUDE`). A launch runs one thread, so every grid-stride loop covers all of
its items and a block reduction is the identity; launches are checked as cupy would need
them (argument count and dtypes, C-contiguous arrays, non-empty grids, block sizes).

This checks the Python glue and the kernels' index arithmetic. It says nothing about
cupy's own behaviour, warp-level code or concurrency: that needs a GPU
(bench/gpu-check.sh). Used by tests/test_cuda.py::test_kernel_code_passes_the_conformance_
kit_on_the_host_emulation, in a subprocess of its own (it replaces ``cupy`` in
``sys.modules``)::

    PYTHONPATH=tests python -m pytest <kit files> -p flambeau.testing.plugin \
        -p cuda_emulation --flambeau-device cudaemu:0
"""

from __future__ import annotations

import atexit
import ctypes
import hashlib
import math
import re
import shutil
import subprocess
import sys
import tempfile
import types
from pathlib import Path

import numpy as np

HOST_PRELUDE = r"""
#include <cmath>
#include <cstring>
#include <algorithm>
#include <limits>
typedef long long i64;
struct Dim3 { unsigned int x, y, z; };
static Dim3 blockIdx = {0, 0, 0}, threadIdx = {0, 0, 0}, blockDim = {1, 1, 1},
            gridDim = {1, 1, 1};
extern "C" void emulation_set_block_y(unsigned int y) { blockIdx.y = y; }
#define __global__
#define __device__
#define __forceinline__ inline
using std::min; using std::max;
inline float exp_of(float x) { return std::exp(x); }
inline double exp_of(double x) { return std::exp(x); }
inline float log_of(float x) { return std::log(x); }
inline double log_of(double x) { return std::log(x); }
inline float sqrt_of(float x) { return std::sqrt(x); }
inline double sqrt_of(double x) { return std::sqrt(x); }
template <typename T> inline T infinity() { return std::numeric_limits<T>::infinity(); }
template <typename T> inline bool is_nan(T x) { return x != x; }
template <typename T> inline bool is_inf(T x) { return x == infinity<T>() || x == -infinity<T>(); }
template <typename T> inline T max_nan(T a, T b) { return (b > a || is_nan(b)) ? b : a; }
inline i64 thread_index() { return (i64)blockIdx.x * blockDim.x + threadIdx.x; }
inline i64 thread_count() { return (i64)gridDim.x * blockDim.x; }
struct SumOp { template <typename T> T operator()(T a, T b) const { return a + b; } };
struct MaxOp { template <typename T> T operator()(T a, T b) const { return max_nan(a, b); } };
template <typename T, typename Op> T block_reduce(T value, Op, T) { return value; }
inline unsigned int __umulhi(unsigned int a, unsigned int b) {
    return (unsigned int)(((unsigned long long)a * b) >> 32);
}
"""

_BUILD = Path(tempfile.mkdtemp(prefix="cudaemu-"))
atexit.register(shutil.rmtree, _BUILD, ignore_errors=True)


def _compile(code: str, common: str) -> ctypes.CDLL:
    text = code.replace(common, HOST_PRELUDE)
    digest = hashlib.sha1(text.encode()).hexdigest()[:16]
    source, library = _BUILD / f"{digest}.cpp", _BUILD / f"{digest}.so"
    if not library.exists():
        source.write_text(text)
        subprocess.run(["g++", "-std=c++17", "-O1", "-shared", "-fPIC", "-o", str(library),
                        str(source)], check=True)
    return ctypes.CDLL(str(library))


class FakeArray(np.ndarray):
    """A numpy array that answers like a cupy one where the backend asks."""

    def get(self, stream=None, blocking=True):
        return np.array(self, order="C")

    @property
    def data(self):
        return types.SimpleNamespace(ptr=self.ctypes.data)

    @property
    def device(self):
        return types.SimpleNamespace(id=0)


def _fake(result):
    if isinstance(result, tuple):
        return tuple(_fake(r) for r in result)
    if isinstance(result, (np.ndarray, np.generic)) and not isinstance(result, FakeArray):
        return np.asarray(result).view(FakeArray)
    return result


def _wrap(fn):
    def call(*args, **kwargs):
        return _fake(fn(*args, **kwargs))
    return call


class _Null:
    def __init__(self, *args, **kwargs):
        self.ptr = 0

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def record(self):
        return None

    def wait_event(self, event):
        pass

    def synchronize(self):
        pass


# ctypes of the kernels' scalar parameter types, and the numpy dtype cupy must be given.
_CTYPE = {"i64": ctypes.c_int64, "long long": ctypes.c_int64, "int": ctypes.c_int32,
          "unsigned int": ctypes.c_uint32, "unsigned long long": ctypes.c_uint64,
          "float": ctypes.c_float, "double": ctypes.c_double}
_NUMPY_OF = {ctypes.c_int64: np.int64, ctypes.c_int32: np.int32, ctypes.c_uint32: np.uint32,
             ctypes.c_uint64: np.uint64, ctypes.c_float: np.float32, ctypes.c_double: np.float64}


class HostKernel:
    """A raw kernel compiled for the host, called as cupy calls a RawKernel: checks the
    arguments as the GPU would need them, then runs one thread per blockIdx.y."""

    def __init__(self, library, name, params):
        self.function = getattr(library, name)
        self.library = library
        self.name = name
        self.params = params  # list of ctypes types, or "ptr"

    def __call__(self, grid, block, args, **kwargs):
        assert len(args) == len(self.params), (
            f"{self.name}: {len(args)} arguments for {len(self.params)} parameters")
        converted = []
        for i, (arg, kind) in enumerate(zip(args, self.params)):
            if kind == "ptr":
                assert isinstance(arg, np.ndarray), f"{self.name} arg {i}: expected an array"
                assert arg.flags.c_contiguous, f"{self.name} arg {i}: not C-contiguous"
                converted.append(ctypes.c_void_p(arg.ctypes.data))
            else:
                assert isinstance(arg, np.generic), (
                    f"{self.name} arg {i}: a Python {type(arg).__name__} (cupy would pass it "
                    "as 64 bits); pass a numpy scalar")
                want = _NUMPY_OF[kind]
                assert arg.dtype == np.dtype(want), (
                    f"{self.name} arg {i}: {arg.dtype}, the kernel takes {np.dtype(want)}")
                converted.append(kind(arg.item()))
        assert 1 <= grid[0] < 2**31 and all(1 <= g <= 65535 for g in grid[1:]), (
            f"{self.name}: grid {grid} is not a valid CUDA launch")
        assert 32 <= block[0] <= 1024 and block[0] % 32 == 0, (
            f"{self.name}: block {block}: the block reductions need whole warps")
        for y in range(grid[1] if len(grid) > 1 else 1):
            self.library.emulation_set_block_y(y)
            self.function(*converted)
        self.library.emulation_set_block_y(0)


class FakeRawModule:
    """cupy.RawModule: the source with common.cuh swapped for HOST_PRELUDE, built by g++;
    each kernel's parameter types read from the preprocessed source."""

    common_text = None

    def __init__(self, code):
        self.code = code
        self.library = _compile(code, FakeRawModule.common_text)
        # Preprocess to expand the per-dtype macros, then read each kernel's parameters.
        expanded = subprocess.run(["g++", "-std=c++17", "-E", "-P", "-x", "c++", "-"],
                                  input=code.replace(FakeRawModule.common_text,
                                                     HOST_PRELUDE.replace("#include", "//")),
                                  capture_output=True, text=True, check=True).stdout
        self.signatures = {}
        for match in re.finditer(r'extern "C"\s+(?:__global__\s+)?void\s+(\w+)\s*\(([^)]*)\)',
                                 expanded):
            params = []
            for p in match.group(2).split(","):
                p = " ".join(p.replace("const", "").split())
                if "*" in p:
                    params.append("ptr")
                else:
                    ctype = " ".join(p.split()[:-1])
                    params.append(_CTYPE[ctype])
            self.signatures[match.group(1)] = params

    def get_function(self, name):
        return HostKernel(self.library, name, self.signatures[name])


class FakeElementwise:
    """cupy.ElementwiseKernel for one-assignment operations: the right-hand side evaluated
    with numpy (broadcasting as cupy does), every argument of the one type T."""

    def __init__(self, in_params, out_params, operation, name):
        self.names = [p.split()[-1] for p in in_params.split(",")]
        self.expression = operation.split("=", 1)[1]

    def __call__(self, *args):
        arrays = [a for a in args if isinstance(a, np.ndarray)]
        dtype = arrays[0].dtype
        values = {n: (np.asarray(a, dtype) if not isinstance(a, np.ndarray) else a)
                  for n, a in zip(self.names, args)}
        for n, a in values.items():
            assert a.dtype == dtype, f"elementwise argument {n} is {a.dtype}, T is {dtype}"
        return _fake(np.asarray(eval(self.expression, {"sqrt": np.sqrt}, values), dtype))


def _asarray(a, dtype=None):
    if isinstance(a, FakeArray) and dtype is None:
        return a
    return np.array(a, dtype=dtype, copy=True).view(FakeArray)


class FakeCupy(types.ModuleType):
    """cupy as numpy: every numpy function, its arrays returned as FakeArray."""

    def __getattr__(self, name):
        obj = getattr(np, name)
        if callable(obj) and not isinstance(obj, type):
            return _wrap(obj)
        return obj


def install() -> types.ModuleType:
    """Put the stand-ins for cupy and cupyx in ``sys.modules`` (for this process)."""
    from flambeau_cuda import programs

    FakeRawModule.common_text = programs.source("common.cuh")
    cp = FakeCupy("cupy")
    cp.ndarray = FakeArray
    cp.asarray = _asarray
    cp.from_dlpack = _wrap(np.from_dlpack)
    cp.RawModule = FakeRawModule
    cp.ElementwiseKernel = FakeElementwise

    class OutOfMemoryError(MemoryError):
        pass

    runtime = types.SimpleNamespace(CUDARuntimeError=RuntimeError,
                                    deviceCanAccessPeer=lambda a, b: 0)
    cp.cuda = types.SimpleNamespace(Device=_Null, Stream=_Null, runtime=runtime,
                                    memory=types.SimpleNamespace(
                                        OutOfMemoryError=OutOfMemoryError))
    core = types.ModuleType("cupy._core")
    linalg = types.ModuleType("cupy._core._routines_linalg")
    linalg.set_compute_type = lambda dtype, kind: None
    linalg.COMPUTE_TYPE_TF32, linalg.COMPUTE_TYPE_DEFAULT = 7, 1
    core._routines_linalg = linalg
    cp._core = core
    cupyx = types.ModuleType("cupyx")

    def scatter_add(a, slices, value):
        np.add.at(a, slices, value)

    cupyx.scatter_add = scatter_add
    scipy = types.ModuleType("cupyx.scipy")
    special = types.ModuleType("cupyx.scipy.special")
    erf = np.vectorize(math.erf, otypes=[np.float64])
    special.erf = _wrap(erf)
    scipy.special = special
    cupyx.scipy = scipy
    sys.modules.update({"cupy": cp, "cupy._core": core, "cupy._core._routines_linalg": linalg,
                        "cupyx": cupyx, "cupyx.scipy": scipy, "cupyx.scipy.special": special})
    return cp


install()

from flambeau import backends  # noqa: E402
from flambeau.backends import CONTRACT_VERSION, DTYPES, DeviceInfo  # noqa: E402
from flambeau_cuda.kernels import CupyKernels  # noqa: E402


class EmulatedBackend:
    """Device type ``cudaemu``: one device whose kernel set is flambeau-cuda's own."""

    name = "cudaemu"
    contract_version = CONTRACT_VERSION

    def __init__(self):
        self._kernels = CupyKernels(0, self)

    def device_count(self):
        return 1

    def device_info(self, index):
        return DeviceInfo("flambeau-cuda kernels emulated on the host", None,
                          tuple(DTYPES.values()))

    def synchronize(self, index):
        pass

    def kernels(self, index):
        return self._kernels


backends.register(EmulatedBackend())
