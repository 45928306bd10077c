"""Every CUDA source of flambeau-cuda compiles for sm_90 (H100) with nvcc, without a GPU.

* the raw kernels, ``flambeau_cuda/sources/*.cu``, as NVRTC gets them at run time (local
  includes pasted in by ``flambeau_cuda.programs.source``);
* the cupy ElementwiseKernels, whose sources are data (``programs.ELEMENTWISE``), each
  wrapped in a kernel per float type;
* every kernel the Python code asks for by name exists, for each float type it is asked
  for, in the PTX of its file;
* no other kernel source hides in the package: only ``programs.py`` builds cupy kernels.

Skips (with the reason) where nvcc is not installed.
"""

from __future__ import annotations

import ast
import re
import shutil
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("flambeau_cuda", reason="flambeau-cuda is not installed")

from flambeau_cuda import programs

ARCH = "sm_90"
NVCC = shutil.which("nvcc")
PACKAGE = Path(programs.__file__).parent
CTYPES = {"float32": "float", "float64": "double"}  # what the elementwise T stands for

pytestmark = pytest.mark.skipif(
    NVCC is None, reason="nvcc (the CUDA toolkit) is not on PATH: the CUDA sources cannot be "
    "compile-checked here")


def _nvcc_ptx(folder: Path, name: str, text: str) -> tuple[str, str]:
    """(PTX, "") when ``text`` compiles for ARCH, else ("", nvcc's complaint)."""
    source, ptx = folder / name, folder / f"{name}.ptx"
    source.write_text(text)
    result = subprocess.run(
        [NVCC, f"-arch={ARCH}", "--ptx", "-Werror", "all-warnings", "-o", str(ptx),
         str(source)], capture_output=True, text=True, timeout=600)
    if result.returncode != 0:
        return "", result.stdout + result.stderr
    return ptx.read_text(), ""


def _elementwise_unit(spec: programs.ElementwiseSource, dtype: str) -> str:
    """A translation unit with ``spec``'s operation in a kernel over T = ``dtype``: each
    parameter a local variable, as in the kernels cupy generates."""

    def params(text: str) -> list[tuple[str, str]]:
        return [tuple(p.split()) for p in text.split(",")]

    ins, outs = params(spec.in_params), params(spec.out_params)
    arguments = [f"const T* {n}_" for _, n in ins] + [f"T* {n}_" for _, n in outs]
    body = [f"const T {n} = {n}_[i];" for _, n in ins] + [f"T {n};" for _, n in outs]
    body += [f"{spec.operation};"] + [f"{n}_[i] = {n};" for _, n in outs]
    suffix = programs.SUFFIX[np.dtype(dtype)]
    return (f"namespace unit_{suffix} {{\ntypedef {CTYPES[dtype]} T;\n"
            f'extern "C" __global__ void {spec.name}_{suffix}({", ".join(arguments)}, '
            "long long n) {\n  const long long i = blockIdx.x * (long long)blockDim.x + "
            "threadIdx.x;\n  if (i >= n) return;\n  " + "\n  ".join(body) + "\n}\n}\n")


@pytest.fixture(scope="module")
def compiled(tmp_path_factory) -> dict[str, tuple[str, str]]:
    """PTX or error per unit: every .cu file and every elementwise kernel (in parallel)."""
    folder = tmp_path_factory.mktemp("cuda")
    units = {name: programs.source(name) for name in programs.source_names()}
    for key, spec in programs.ELEMENTWISE.items():
        units[f"elementwise_{key}.cu"] = "".join(_elementwise_unit(spec, d) for d in CTYPES)
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = pool.map(lambda item: _nvcc_ptx(folder, *item), units.items())
        return dict(zip(units, results))


def test_there_are_sources_to_check():
    assert {"philox.cu", "softmax.cu", "conv.cu", "pool.cu", "norm.cu", "optim.cu"} <= set(
        programs.source_names())


@pytest.mark.parametrize("name", programs.source_names())
def test_raw_kernel_source_compiles(compiled, name):
    _, error = compiled[name]
    assert not error, f"sources/{name} does not compile for {ARCH}:\n{error}"


@pytest.mark.parametrize("key", sorted(programs.ELEMENTWISE))
def test_elementwise_kernel_source_compiles(compiled, key):
    _, error = compiled[f"elementwise_{key}.cu"]
    assert not error, f"ElementwiseKernel {key!r} does not compile for {ARCH}:\n{error}"


def _requested_kernels() -> list[tuple[str, str, bool]]:
    """(file, kernel, per dtype) of every ``self._raw.get("file.cu", "kernel"[, dtype])``
    call in the package."""
    found = []
    for path in sorted(PACKAGE.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                    and node.func.attr == "get" and len(node.args) >= 2
                    and all(isinstance(a, ast.Constant) for a in node.args[:2])
                    and str(node.args[0].value).endswith(".cu")):
                found.append((node.args[0].value, node.args[1].value, len(node.args) > 2))
    return found


def test_the_python_code_asks_for_kernels():
    assert len(_requested_kernels()) >= 10


@pytest.mark.parametrize(("file", "kernel", "typed"), _requested_kernels())
def test_every_kernel_asked_for_exists(compiled, file, kernel, typed):
    ptx, error = compiled[file]
    assert not error, f"sources/{file} does not compile"
    names = [f"{kernel}_{s}" for s in programs.SUFFIX.values()] if typed else [kernel]
    entries = set(re.findall(r"\.entry\s+(\w+)\(", ptx))
    missing = [n for n in names if n not in entries]
    assert not missing, f"sources/{file} has no kernel(s) {missing}; it has {sorted(entries)}"


def test_no_kernel_source_outside_the_checked_places():
    builders = {"RawKernel", "RawModule", "ElementwiseKernel", "ReductionKernel", "fuse"}
    offenders = []
    for path in sorted(PACKAGE.glob("*.py")):
        if path.name == "programs.py":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call):
                func = node.func
                name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
                if name in builders:
                    offenders.append(f"{path.name}:{node.lineno} {name}")
    assert not offenders, ("cupy kernels must be built in flambeau_cuda/programs.py, from "
                           f"sources/*.cu or ELEMENTWISE, so that this test compiles them: "
                           f"{offenders}")
