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
import os
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
inline unsigned long long __umul64hi(unsigned long long a, unsigned long long b) {
    return (unsigned long long)(((unsigned __int128)a * b) >> 64);
}
inline float __fmul_rn(float a, float b) { return a * b; }
inline float __fadd_rn(float a, float b) { return a + b; }
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


#: What the emulated streams and NCCL did, in order: ("record", stream, event), ("wait",
#: stream, event), ("nccl", method, stream, count, dtype, op or root); tests read it.
LOG: list[tuple] = []


class FakeEvent:
    """cupy.cuda.Event: numbered; the host emulation runs everything at once, so it is
    always complete."""

    count = 0

    def __init__(self, *args, **kwargs):
        FakeEvent.count += 1
        self.id = FakeEvent.count

    def record(self, stream=None):
        LOG.append(("record", stream.ptr if stream is not None else 0, self.id))

    def query(self):
        return True

    def synchronize(self):
        pass


class FakeStream(_Null):
    """cupy.cuda.Stream with a pointer of its own, whose event calls go to :data:`LOG`."""

    count = 0

    def __init__(self, *args, **kwargs):
        FakeStream.count += 1
        self.ptr = 0x1000 + FakeStream.count  # never 0: NCCL must not get the null stream

    def record(self, event=None):
        event = event if event is not None else FakeEvent()
        event.record(self)
        return event

    def wait_event(self, event):
        LOG.append(("wait", self.ptr, event.id))


# NCCL's constants as cupy_backends.cuda.libs.nccl has them (NCCL's own enum values).
_NCCL_OPS = {"NCCL_SUM": 0, "NCCL_PROD": 1, "NCCL_MAX": 2, "NCCL_MIN": 3, "NCCL_AVG": 4}
_NCCL_TYPES = {"NCCL_INT8": 0, "NCCL_CHAR": 0, "NCCL_UINT8": 1, "NCCL_INT32": 2, "NCCL_INT": 2,
               "NCCL_UINT32": 3, "NCCL_INT64": 4, "NCCL_UINT64": 5, "NCCL_FLOAT16": 6,
               "NCCL_HALF": 6, "NCCL_FLOAT32": 7, "NCCL_FLOAT": 7, "NCCL_FLOAT64": 8,
               "NCCL_DOUBLE": 8, "NCCL_BFLOAT16": 9}
_NCCL_NUMPY = {0: np.int8, 1: np.uint8, 2: np.int32, 3: np.uint32, 4: np.int64, 5: np.uint64,
               6: np.float16, 7: np.float32, 8: np.float64}
try:
    import ml_dtypes

    _NCCL_NUMPY[9] = ml_dtypes.bfloat16
except ImportError:
    pass


def _memory(ptr, count, datatype):
    """The ``count`` elements of NCCL type ``datatype`` at address ``ptr`` (host memory
    in the emulation), as a writable numpy array."""
    assert isinstance(ptr, int) and ptr > 0, f"bad buffer pointer {ptr!r}"
    assert isinstance(count, (int, np.integer)) and count > 0, f"bad count {count!r}"
    dtype = np.dtype(_NCCL_NUMPY[datatype])
    raw = (ctypes.c_char * (int(count) * dtype.itemsize)).from_address(ptr)
    return np.frombuffer(raw, dtype)


def _raw(a):
    """The bytes of ``a``, for MPI (which takes no bfloat16)."""
    return a.view(np.uint8)


def _reduce(stacked, op):
    """NCCL's reduction of the rows of ``stacked`` (one per rank), in rank order."""
    if op == _NCCL_OPS["NCCL_SUM"] or op == _NCCL_OPS["NCCL_AVG"]:
        total = np.add.reduce(stacked, axis=0, dtype=stacked.dtype)
        if op == _NCCL_OPS["NCCL_SUM"]:
            return total
        if total.dtype.kind == "f":
            return (total / len(stacked)).astype(total.dtype)
        return (np.abs(total) // len(stacked) * np.sign(total)).astype(total.dtype)
    ufunc = {1: np.multiply, 2: np.maximum, 3: np.minimum}[op]
    return ufunc.reduce(stacked, axis=0, dtype=stacked.dtype)


class FakeNcclCommunicator:
    """cupy.cuda.nccl.NcclCommunicator(ndev, commId, rank) on MPI: the same calls, with
    raw pointers, counts, NCCL dtypes, ops and a stream, performed at once on the
    emulated (host) arrays. Checks that every rank got the same id and its own rank."""

    def __init__(self, ndev, commId, rank):
        from mpi4py import MPI

        assert isinstance(commId, tuple) and len(commId) == 128, "NCCL ids are 128 chars"
        assert all(isinstance(c, int) and -128 <= c < 128 for c in commId), "not C chars"
        seen = MPI.COMM_WORLD.allgather((commId, ndev, rank))
        assert all(s[0] == commId and s[1] == ndev for s in seen), "ranks got different ids"
        assert sorted(s[2] for s in seen) == list(range(ndev)), f"ranks {seen}"
        self.comm = MPI.COMM_WORLD.Split(0, rank)
        self.ndev, self.rank = ndev, rank

    def _check(self, name, stream, count, datatype, extra):
        assert isinstance(stream, int) and stream > 0x1000, f"{name}: stream {stream!r}"
        LOG.append(("nccl", name, stream, count, datatype, extra))

    def allReduce(self, sendbuf, recvbuf, count, datatype, op, stream):
        self._check("allReduce", stream, count, datatype, op)
        send = _memory(sendbuf, count, datatype)
        stacked = np.empty((self.ndev, count), send.dtype)
        self.comm.Allgather(_raw(send), _raw(stacked))
        _memory(recvbuf, count, datatype)[...] = _reduce(stacked, op)

    def reduceScatter(self, sendbuf, recvbuf, recvcount, datatype, op, stream):
        self._check("reduceScatter", stream, recvcount, datatype, op)
        send = _memory(sendbuf, recvcount * self.ndev, datatype)
        stacked = np.empty((self.ndev, self.ndev * recvcount), send.dtype)
        self.comm.Allgather(_raw(send), _raw(stacked))
        mine = stacked[:, self.rank * recvcount:(self.rank + 1) * recvcount]
        _memory(recvbuf, recvcount, datatype)[...] = _reduce(mine, op)

    def allGather(self, sendbuf, recvbuf, count, datatype, stream):
        self._check("allGather", stream, count, datatype, None)
        send = np.array(_memory(sendbuf, count, datatype))
        self.comm.Allgather(_raw(send), _raw(_memory(recvbuf, count * self.ndev, datatype)))

    def broadcast(self, sendbuff, recvbuff, count, datatype, root, stream):
        self._check("broadcast", stream, count, datatype, root)
        data = np.array(_memory(sendbuff, count, datatype))
        self.comm.Bcast(_raw(data), root)
        _memory(recvbuff, count, datatype)[...] = data

    def bcast(self, buff, count, datatype, root, stream):
        self._check("bcast", stream, count, datatype, root)
        self.comm.Bcast(_raw(_memory(buff, count, datatype)), root)

    def destroy(self):
        if self.comm is not None:
            self.comm.Free()
            self.comm = None


def fake_nccl() -> types.ModuleType:
    """A stand-in for ``cupy.cuda.nccl``: its constants, ``get_unique_id``,
    ``get_version`` (``CUDAEMU_NCCL_VERSION``, default 2.21.5) and the communicator."""
    nccl = types.ModuleType("cupy.cuda.nccl")
    nccl.available = True
    nccl.__dict__.update(_NCCL_OPS)
    nccl.__dict__.update(_NCCL_TYPES)
    nccl.NcclError = type("NcclError", (RuntimeError,), {})
    nccl.NcclCommunicator = FakeNcclCommunicator
    nccl.get_unique_id = lambda: tuple(b - 256 if b > 127 else b for b in os.urandom(128))
    nccl.get_version = lambda: int(os.environ.get("CUDAEMU_NCCL_VERSION", "22105"))
    return nccl


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
    cp.cuda = types.ModuleType("cupy.cuda")
    cp.cuda.__dict__.update(Device=_Null, Stream=FakeStream, Event=FakeEvent, runtime=runtime,
                            memory=types.SimpleNamespace(OutOfMemoryError=OutOfMemoryError),
                            nccl=fake_nccl())
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
    sys.modules.update({"cupy": cp, "cupy.cuda": cp.cuda, "cupy.cuda.nccl": cp.cuda.nccl,
                        "cupy._core": core, "cupy._core._routines_linalg": linalg,
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

    def collectives(self, index, group):
        """flambeau-cuda's NCCL engine on the emulated NCCL where ``CUDAEMU_NCCL=1``;
        else none (the host engine: the path of a GPU without NCCL)."""
        if os.environ.get("CUDAEMU_NCCL") != "1":
            return None
        from flambeau_cuda.collectives import make_engine

        return make_engine(self._kernels, group)


backends.register(EmulatedBackend())
if os.environ.get("CUDAEMU_NCCL") == "1":  # tests check that the NCCL engine did the work
    atexit.register(lambda: print(f"emulated NCCL calls: {sum(e[0] == 'nccl' for e in LOG)}",
                                  flush=True))
