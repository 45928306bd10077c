"""flambeau-cuda: what must hold without a GPU, and CUDA-specific behaviour on one.

Without a GPU (CI): the package imports, ``flambeau.cuda.device_count()`` is 0 and the
reason is shown, the TF32 switch and the out-of-memory message work, and the kernel code
(kernels.py, fused.py and sources/*.cu compiled for the host) passes the conformance kit on
a host emulation of the GPU (tests/cuda_emulation.py). With a GPU: TF32, out of memory,
stream asynchrony, DLPack with torch and cupy, peer copies between two GPUs. The
conformance kit itself runs on ``cuda:0`` through tests/test_conformance.py, which takes
every device there is.
"""

from __future__ import annotations

import importlib
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import flambeau
from flambeau.errors import DeviceUnavailableError, OutOfMemoryError

flambeau_cuda = pytest.importorskip("flambeau_cuda", reason="flambeau-cuda is not installed")

from flambeau_cuda import backend as cuda_backend  # noqa: E402

GPUS = flambeau.cuda.device_count()
_WHY = flambeau.backends.get("cuda").unavailable_reason() if GPUS == 0 else None
needs_gpu = pytest.mark.skipif(GPUS == 0, reason=f"no CUDA GPU here: {_WHY}")
needs_two_gpus = pytest.mark.skipif(GPUS < 2, reason=f"needs 2 CUDA GPUs, found {GPUS}")
no_gpu_only = pytest.mark.skipif(GPUS > 0, reason="checks the no-GPU behaviour")


def _run(code: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=300, env={**os.environ, **env})


# --- without a GPU ------------------------------------------------------------------------


def test_the_plugin_provides_the_cuda_backend():
    backend = flambeau.backends.get("cuda")
    assert isinstance(backend, flambeau_cuda.CudaBackend)
    assert not [e for e in flambeau.backends.errors() if e.name == "cuda"]
    assert flambeau.cuda.device_count() == backend.device_count() == GPUS
    assert flambeau.cuda.is_available() is (GPUS > 0)


def test_importing_needs_neither_cupy_nor_a_gpu():
    code = ("import sys; import flambeau_cuda, flambeau_cuda.plugin, flambeau_cuda.backend; "
            "assert 'cupy' not in sys.modules, 'importing flambeau_cuda imported cupy'; "
            "print('ok')")
    result = _run(code)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"


@no_gpu_only
def test_no_gpu_means_zero_devices_and_a_reason_everywhere():
    assert flambeau.cuda.device_count() == 0 and _WHY
    assert not [d for d in flambeau.devices() if d.type == "cuda"]
    with pytest.raises(DeviceUnavailableError, match="found no devices on this machine: ") as e:
        flambeau.zeros(2, device="cuda")
    assert _WHY in str(e.value)
    result = subprocess.run([sys.executable, "-m", "flambeau", "devices"], capture_output=True,
                            text=True, timeout=120)
    assert "cuda: 0 device(s)" in result.stdout
    assert f"no devices: {_WHY}" in result.stdout


def test_without_cupy_the_reason_says_what_to_install(monkeypatch):
    for name in ("cupy", "cupy_backends", "cupy_backends.cuda", "cupy_backends.cuda.api",
                 "cupy_backends.cuda.api.runtime"):
        monkeypatch.setitem(sys.modules, name, None)  # import raises ImportError
    count, reason = cuda_backend.probe()
    assert count == 0
    assert reason.startswith("cupy is not installed") and "flambeau-cuda[cuda12]" in reason


def test_dlpack_index_names_only_cuda_devices_that_exist():
    backend = flambeau.backends.get("cuda")
    assert backend.dlpack_index(1, 0) is None  # kDLCPU
    assert backend.dlpack_index(2, GPUS) is None
    if GPUS:
        assert backend.dlpack_index(2, GPUS - 1) == GPUS - 1


def test_tf32_is_off_unless_asked_for():
    code = "import flambeau_cuda; print(flambeau_cuda.tf32_enabled())"
    assert _run(code, FLAMBEAU_CUDA_TF32="").stdout.strip() == "False"
    assert _run(code, FLAMBEAU_CUDA_TF32="1").stdout.strip() == "True"
    before = flambeau_cuda.tf32_enabled()
    try:
        flambeau_cuda.set_tf32(True)
        assert flambeau_cuda.tf32_enabled() is True
        flambeau_cuda.set_tf32(False)
        assert flambeau_cuda.tf32_enabled() is False
    finally:
        flambeau_cuda.set_tf32(before)


def test_out_of_memory_error_names_device_and_sizes():
    cupy = pytest.importorskip("cupy", reason="cupy is not installed")
    cause = cupy.cuda.memory.OutOfMemoryError(3 * 2**40, 2**30)
    error = cuda_backend.out_of_memory(0, cause)
    assert isinstance(error, OutOfMemoryError) and isinstance(error, MemoryError)
    message = str(error)
    assert message.startswith("cuda:0 is out of memory: requested 3,298,534,883,328 bytes")
    assert "free" in message and "Tensors that existed before are intact" in message


def test_empty_cache_is_a_no_op_without_gpus():
    flambeau_cuda.empty_cache()


def test_kernel_code_passes_the_conformance_kit_on_the_host_emulation(tmp_path):
    """kernels.py, fused.py and sources/*.cu (compiled for the host, one thread) on numpy
    instead of cupy: the glue and the kernels' index arithmetic, not cupy or the GPU."""
    if shutil.which("g++") is None:
        pytest.skip("g++ is not installed: the CUDA kernels cannot be compiled for the host")
    from flambeau.testing import CHECK_MODULES

    files = [importlib.import_module(m).__file__ for m in CHECK_MODULES]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(Path(__file__).parent), os.environ.get("PYTHONPATH", "")])}
    result = subprocess.run(
        [sys.executable, "-m", "pytest", *files, "-q", "-x", "-p", "no:cacheprovider",
         "-p", "flambeau.testing.plugin", "-p", "cuda_emulation",
         "--flambeau-device", "cudaemu:0", "--basetemp", str(tmp_path / "kit")],
        capture_output=True, text=True, timeout=900, env=env, cwd=tmp_path)
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-3000:]
    assert " passed" in result.stdout


# --- on a GPU -----------------------------------------------------------------------------


@needs_gpu
def test_device_info_reports_name_memory_and_compute_capability():
    info = flambeau.device("cuda:0").info
    assert info.name and info.vendor == "NVIDIA"
    assert info.memory_bytes > 2**30
    major, minor = info.extra["compute_capability"].split(".")
    assert int(major) >= 3 and minor.isdigit()
    assert 0 < int(info.extra["free_bytes"]) <= info.memory_bytes
    assert np.dtype("float16") in info.dtypes


@needs_gpu
def test_every_fused_kernel_is_there():
    from flambeau._device import kernels_for

    kernels = kernels_for(flambeau.device("cuda:0"))
    wanted = [k for k in flambeau.backends.OPTIONAL_KERNELS if not k.endswith("_shared")]
    assert [k for k in wanted if getattr(kernels, k, None) is None] == []


@needs_gpu
def test_tf32_switch_changes_float32_matmul_precision():
    if float(flambeau.device("cuda:0").info.extra["compute_capability"]) < 8.0:
        pytest.skip("TF32 needs compute capability 8.0 or newer")
    rng = np.random.default_rng(0)
    a, b = (rng.standard_normal((1024, 1024)).astype(np.float32) for _ in range(2))
    exact = a.astype(np.float64) @ b.astype(np.float64)
    x, y = flambeau.tensor(a, device="cuda:0"), flambeau.tensor(b, device="cuda:0")

    def relative_error() -> float:
        return float(np.abs((x @ y).numpy() - exact).max() / np.abs(exact).max())

    before = flambeau_cuda.tf32_enabled()
    try:
        flambeau_cuda.set_tf32(False)
        ieee = relative_error()
        flambeau_cuda.set_tf32(True)
        tf32 = relative_error()
    finally:
        flambeau_cuda.set_tf32(before)
    assert ieee < 1e-5, f"float32 matmul without TF32 has relative error {ieee}"
    assert tf32 > 1e-4, f"TF32 on should lose precision; relative error {tf32}"


@needs_gpu
def test_out_of_memory_is_clear_and_leaves_tensors_usable():
    kept = flambeau.ones(1000, device="cuda:0")
    total = flambeau.device("cuda:0").info.memory_bytes
    with pytest.raises(OutOfMemoryError, match=r"cuda:0 is out of memory: requested [\d,]+ "
                       r"bytes, but [\d,]+ bytes are free"):
        flambeau.empty(2 * total // 4, device="cuda:0")
    assert kept.sum().item() == 1000.0
    assert (kept + 1).sum().item() == 2000.0


@needs_gpu
def test_work_is_queued_asynchronously_on_a_stream_of_its_own():
    from flambeau._device import kernels_for

    kernels = kernels_for(flambeau.device("cuda:0"))
    assert kernels.stream.ptr not in (0, 1, 2)  # not the legacy or per-thread default
    a = flambeau.randn(4096, 4096, device="cuda:0")
    (a @ a).sum().item()  # warm up: cuBLAS handle, kernels compiled
    start = time.perf_counter()
    for _ in range(20):
        c = a @ a
    queued = time.perf_counter() - start
    flambeau.cuda.synchronize()
    finished = time.perf_counter() - start
    assert queued < 0.5 * finished, (queued, finished)
    assert np.isfinite(c[0, 0].item())  # .item() waits for the value


@needs_gpu
def test_dlpack_shares_memory_with_cupy_both_ways():
    cupy = pytest.importorskip("cupy")
    t = flambeau.arange(6.0, device="cuda:0")
    view = cupy.from_dlpack(t)  # ordered after t's work on flambeau's stream
    view[0] = 42.0  # on cupy's current stream: wait for it before flambeau reads
    cupy.cuda.get_current_stream().synchronize()
    assert t[0].item() == 42.0
    source = cupy.arange(4, dtype=cupy.float32)
    adopted = flambeau.from_dlpack(source)
    assert adopted.device == flambeau.device("cuda:0")
    source[1] = 7.0
    cupy.cuda.get_current_stream().synchronize()
    assert adopted[1].item() == 7.0


@needs_gpu
def test_dlpack_shares_memory_with_torch_both_ways():
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("this torch has no CUDA")
    t = flambeau.arange(6.0, device="cuda:0") * 2
    shared = torch.from_dlpack(t)
    assert shared.is_cuda and shared.tolist() == [0.0, 2.0, 4.0, 6.0, 8.0, 10.0]
    shared[0] = 42.0  # on torch's stream: wait for it before flambeau reads
    torch.cuda.synchronize()
    assert t[0].item() == 42.0
    source = torch.arange(4.0, device="cuda:0")
    adopted = flambeau.from_dlpack(source)
    assert adopted.device == flambeau.device("cuda:0")
    source[1] = 7.0
    torch.cuda.synchronize()
    assert adopted[1].item() == 7.0
    assert flambeau.from_dlpack(source, device="cpu").device == flambeau.device("cpu")


@needs_gpu
def test_cuda_helpers_and_a_training_step_match_the_cpu():
    from flambeau import nn

    flambeau.manual_seed(0)
    cpu_net = nn.Sequential(nn.Linear(20, 16), nn.ReLU(), nn.Linear(16, 3))
    gpu_net = nn.Sequential(nn.Linear(20, 16), nn.ReLU(), nn.Linear(16, 3))
    gpu_net.load_state_dict(cpu_net.state_dict())
    gpu_net.cuda()
    x = flambeau.randn(8, 20)
    y = flambeau.tensor([0, 1, 2, 0, 1, 2, 0, 1])
    losses = []
    for net, xs, ys in ((cpu_net, x, y), (gpu_net, x.cuda(), y.cuda(0))):
        optimizer = flambeau.optim.Adam(net.parameters(), lr=0.01)
        for _ in range(3):
            loss = nn.functional.cross_entropy(net(xs), ys)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        losses.append(loss.item())
    assert losses[1] == pytest.approx(losses[0], rel=1e-4)
    for p, q in zip(cpu_net.parameters(), gpu_net.parameters()):
        np.testing.assert_allclose(q.detach().cpu().numpy(), p.detach().numpy(), rtol=1e-4,
                                   atol=1e-5)
    flambeau.cuda.synchronize()


@needs_two_gpus
def test_peer_copies_between_gpus():
    x = flambeau.randn(300, 200, device="cuda:0", requires_grad=True)
    y = x.to("cuda:1")
    assert y.device == flambeau.device("cuda:1")
    np.testing.assert_array_equal(y.detach().cpu().numpy(), x.detach().cpu().numpy())
    y.sum().backward()
    assert x.grad.device == flambeau.device("cuda:0")
    assert x.grad.sum().item() == 300 * 200
    z = x.detach()[:, ::2].to("cuda:1")  # a strided view
    np.testing.assert_array_equal(z.cpu().numpy(), x.detach().cpu().numpy()[:, ::2])
