"""flambeau-opencl: OpenCL-specific behaviour on ``opencl:0`` (PoCL in CI).

Device enumeration and the ``FLAMBEAU_OPENCL_DEVICES`` filter, the no-driver case,
asynchrony, the caching allocator, clear errors (out of memory, a dtype the device lacks,
a compile error, a failed launch), the GPU-style launch paths (work-groups with local-memory
trees) run on the CPU device, and the D2L Builders' Guide, save/load and the digits models
on ``opencl:0``. The conformance kit runs on ``opencl:0`` through test_conformance.py,
which takes every device there is.
"""

from __future__ import annotations

import time

import numpy as np
import pytest

import flambeau
from flambeau import demo
from flambeau.errors import BackendError, DeviceUnavailableError, DTypeError, OutOfMemoryError

cl = pytest.importorskip("pyopencl", reason='pyopencl is missing: pip install '
                         '"flambeau-opencl[pocl]"')
flambeau_opencl = pytest.importorskip("flambeau_opencl", reason="flambeau-opencl is not "
                                      "installed: pip install -e packages/backend-opencl[pocl]")

from flambeau_opencl import allocator, backend, device, programs  # noqa: E402
from flambeau_opencl.backend import OpenCLBackend  # noqa: E402

_BACKEND = flambeau.backends.get("opencl")
_COUNT = _BACKEND.device_count() if _BACKEND is not None else 0
_WHY = _BACKEND.unavailable_reason() if _BACKEND is not None else "backend not loaded"
pytestmark = pytest.mark.skipif(_COUNT == 0, reason=f"no OpenCL device here: {_WHY}")

DEV = "opencl:0"


@pytest.fixture(scope="module")
def k():
    from flambeau._device import kernels_for

    return kernels_for(flambeau.device(DEV))


def _state():
    return flambeau.backends.get("opencl").state(0)


# --- devices ---------------------------------------------------------------------------


def test_devices_are_listed_gpus_first_with_their_info():
    devices, reason = backend.find_devices([])
    assert devices and reason is None
    kinds = [backend._type_name(d) for d in devices]
    order = ("GPU", "ACCELERATOR", "CPU", "OTHER")
    assert kinds == sorted(kinds, key=order.index)
    info = flambeau.device(DEV).info
    assert info.name and info.vendor and info.memory_bytes > 0
    assert np.dtype("float32") in info.dtypes and np.dtype("float16") in info.dtypes
    fp64 = "cl_khr_fp64" in devices[0].extensions or bool(devices[0].double_fp_config)
    assert (np.dtype("float64") in info.dtypes) == fp64
    assert {"platform", "type", "float64", "float16"} <= set(info.extra)


def test_environment_variable_filters_devices(monkeypatch):
    first = backend.find_devices([])[0][0]
    kind = backend._type_name(first).lower()
    for selection, count in (("0", 1), (kind, None), (first.name[:6].lower(), None),
                             ("0,nosuchdevice", 1)):
        monkeypatch.setenv("FLAMBEAU_OPENCL_DEVICES", selection)
        found = OpenCLBackend().device_count()
        assert found >= 1 and (count is None or found == count), selection
    monkeypatch.setenv("FLAMBEAU_OPENCL_DEVICES", "nosuchdevice")
    empty = OpenCLBackend()
    assert empty.device_count() == 0
    assert "FLAMBEAU_OPENCL_DEVICES" in empty.unavailable_reason()
    assert first.name.strip() in empty.unavailable_reason()


def test_no_platform_gives_zero_devices_and_says_what_to_install(monkeypatch, clean_registry):
    def no_platforms():
        raise cl.LogicError("clGetPlatformIDs failed: PLATFORM_NOT_FOUND_KHR")

    monkeypatch.setattr(cl, "get_platforms", no_platforms)
    from flambeau_opencl import plugin

    (empty,) = plugin.flambeau_backends()
    assert empty.device_count() == 0
    assert 'pip install "flambeau-opencl[pocl]"' in empty.unavailable_reason()
    flambeau.backends.register(empty, replace=True)
    with pytest.raises(DeviceUnavailableError, match=r"flambeau-opencl\[pocl\]"):
        flambeau.zeros(2, device=DEV)
    with pytest.raises(DeviceUnavailableError, match="no OpenCL device"):
        empty.kernels(0)


def test_bad_index_names_the_devices():
    with pytest.raises(IndexError, match=r"opencl:0 to opencl:"):
        flambeau.backends.get("opencl").device_info(_COUNT)


# --- asynchrony and memory ---------------------------------------------------------------


def test_kernels_are_queued_without_waiting(monkeypatch):
    state = _state()
    reads = []
    real_download = state.download
    monkeypatch.setattr(state, "download", lambda x: reads.append(x.shape) or real_download(x))
    finishes = state.finish_calls
    a = flambeau.randn(512, 512, device=DEV)
    b = flambeau.randn(512, 512, device=DEV)
    for _ in range(3):
        c = flambeau.relu(a @ b + 1).sum(dim=0) * 0.5
    big = flambeau.randn(1536, 1536, device=DEV)
    big = big @ big
    marker = cl.enqueue_marker(state.queue)
    # Nothing waited for the device: the product is still running or queued.
    assert reads == [] and state.finish_calls == finishes
    assert marker.command_execution_status != cl.command_execution_status.COMPLETE
    value = c.sum().item()  # reading a value waits, for that value only
    assert reads == [()] and np.isfinite(value)
    flambeau.synchronize(DEV)
    assert state.finish_calls == finishes + 1
    assert marker.command_execution_status == cl.command_execution_status.COMPLETE


def test_cpu_devices_release_launches_in_batches():
    state = _state()
    if not state.gated:
        pytest.skip(f"{state.label} is not a CPU device: launches go to the driver at once")
    flambeau.synchronize(DEV)
    x = flambeau.ones(4, device=DEV)
    y = x + 1
    marker = cl.enqueue_marker(state.queue)
    time.sleep(0.05)
    # Held back behind the gate: the driver has not been told to start yet.
    assert marker.command_execution_status != cl.command_execution_status.COMPLETE
    for _ in range(device.GATE_BATCH):
        y = y + 1
    marker.wait()  # a full batch opened the gate: this returns
    assert y.numpy().tolist() == [2.0 + device.GATE_BATCH] * 4  # reading opens the next one
    y = y + 1  # held again; release() (also what runs at exit) lets it go without a read
    marker = cl.enqueue_marker(state.queue)
    time.sleep(0.05)
    assert marker.command_execution_status != cl.command_execution_status.COMPLETE
    state.release()
    marker.wait()


def test_caching_allocator_reuses_freed_buffers():
    alloc = _state().allocator
    x = flambeau.ones(1000, device=DEV)
    for _ in range(3):
        y = x * 2 + 1
    del y
    before = alloc.stats()["buffers_created"]
    for _ in range(50):
        y = x * 2 + 1
        del y
    flambeau.synchronize(DEV)
    assert alloc.stats()["buffers_created"] == before
    assert alloc.stats()["cached_bytes"] > 0
    flambeau_opencl.empty_cache()
    assert alloc.stats()["cached_bytes"] == 0


def test_bucket_sizes():
    assert [allocator.bucket(n) for n in (0, 1, 256, 257, 4096, 5000, 1 << 20)] == \
        [256, 256, 256, 512, 4096, 5120, 1 << 20]
    for n in range(4097, 1 << 22, 9973):
        assert n <= allocator.bucket(n) <= n * 1.25


def test_out_of_memory_is_clear_and_leaves_tensors_usable():
    x = flambeau.arange(10.0, device=DEV)
    with pytest.raises(OutOfMemoryError) as info:
        flambeau.empty(2**40, dtype=flambeau.float32, device=DEV)
    message = str(info.value)
    assert "opencl:0" in message and "4.0 TiB" in message and str(2**42) in message
    assert "free" in message
    assert x.sum().item() == 45.0


def test_a_dtype_the_device_lacks_is_refused_before_any_compile():
    lacking = OpenCLBackend()
    state = lacking.state(0)
    state.has_fp64 = False
    state.dtypes = device.supported_dtypes(False)
    k = lacking.kernels(0)
    with pytest.raises(DTypeError, match=r"opencl:0 .* does not support float64.*cl_khr_fp64"):
        k.from_numpy(np.zeros(3))
    with pytest.raises(DTypeError, match="float64"):
        k.cast(k.from_numpy(np.zeros(3, np.float32)), np.dtype("float64"))
    assert np.dtype("float64") not in state._programs


def test_compile_errors_name_the_program_and_quote_the_build_log(monkeypatch):
    state = OpenCLBackend().state(0)
    original = programs.read_source

    def broken(name):
        text = original(name)
        return text + "\n__kernel void oops(__global float* y) { y[0] = undefined_name; }\n" \
            if name == "elementwise.cl" else text

    monkeypatch.setattr(programs, "read_source", broken)
    with pytest.raises(programs.ProgramBuildError) as info:
        state.program(np.dtype("int16"))
    message = str(info.value)
    assert "'int16'" in message and "opencl:0" in message and "Build log" in message
    assert "undefined_name" in message


def test_a_failed_launch_is_a_clear_error_not_a_hang(k):
    state = _state()
    kernel = state.kernel(np.dtype("float32"), "fill")
    y = k.empty((4,), np.dtype("float32"))
    args = [programs.LIN.pack(4, 4, 0, 0, 0, 0, 0, 0), y.buffer, b"\0\0\0\0"]
    with pytest.raises(BackendError, match=r"opencl:0 .*kernel 'fill' failed"):
        state.run(kernel, (3,), (2,), args)  # 3 work-items in groups of 2: invalid
    flambeau.synchronize(DEV)
    assert k.to_numpy(k.full((2,), 1.5, np.dtype("float32"))).tolist() == [1.5, 1.5]


def test_scatter_add_without_64_bit_atomics_is_deterministic():
    plain = OpenCLBackend()
    plain.state(0).has_int64_atomics = False
    k = plain.kernels(0)
    rng = np.random.default_rng(0)
    for dtype in (np.float64, np.int64):
        dst = rng.integers(-5, 5, (4, 6)).astype(dtype)
        src = rng.integers(-5, 5, (7, 6)).astype(dtype)
        index = rng.integers(0, 4, (7, 6))
        d = k.from_numpy(dst)
        k.scatter_add(d, 0, k.from_numpy(index), k.from_numpy(src))
        expected = dst.copy()
        np.add.at(expected, (index, np.arange(6)[None, :]), src)
        np.testing.assert_array_equal(k.to_numpy(d), expected)


@pytest.mark.parametrize("dtype", ["float16", "int8", "uint8", "int16", "int32", "uint32"])
def test_scatter_add_of_small_and_32_bit_types_accumulates_duplicates(k, dtype):
    rng = np.random.default_rng(3)
    dst = rng.integers(0, 5, (5, 7)).astype(dtype)
    src = rng.integers(0, 5, (9, 7)).astype(dtype)
    index = rng.integers(0, 5, (9, 7))
    d = k.from_numpy(dst)
    k.scatter_add(d, 0, k.from_numpy(index), k.from_numpy(src))
    expected = dst.copy()
    np.add.at(expected, (index, np.arange(7)[None, :]), src)
    np.testing.assert_array_equal(k.to_numpy(d), expected)


# --- GPU-style launches (groups of many work-items, local-memory trees) on this device -----


@pytest.fixture(scope="module")
def gpu_style():
    return OpenCLBackend(gpu_style=True).kernels(0)


def test_gpu_style_reductions(gpu_style):
    k = gpu_style
    rng = np.random.default_rng(1)
    x = rng.standard_normal((3, 700, 5)).astype(np.float32)
    d = k.from_numpy(x)
    for axes in [(1,), (0, 2), None, (2,)]:
        for op in ("sum", "max", "min"):
            got = k.to_numpy(k.reduce(op, d, axes, False))
            np.testing.assert_allclose(got, getattr(x, op)(axis=axes), rtol=1e-5, atol=1e-4)
    long = rng.standard_normal(200_000).astype(np.float32)
    got = k.to_numpy(k.reduce("sum", k.from_numpy(long), None, False))
    assert abs(float(got) - float(long.astype(np.float64).sum())) < 1e-2
    flags = rng.random((50, 300)) < 0.999
    np.testing.assert_array_equal(k.to_numpy(k.reduce("all", k.from_numpy(flags), (1,), False)),
                                  flags.all(axis=1))
    ties = rng.integers(0, 3, (40, 600)).astype(np.float32)
    for axis in (0, 1, None):
        np.testing.assert_array_equal(
            k.to_numpy(k.arg_reduce("argmax", k.from_numpy(ties), axis, False)),
            ties.argmax(axis=axis))


def test_gpu_style_elementwise_matmul_and_fused(gpu_style):
    k = gpu_style
    rng = np.random.default_rng(2)
    a = rng.standard_normal((2, 33, 65)).astype(np.float32)
    b = rng.standard_normal((65, 17)).astype(np.float32)
    np.testing.assert_allclose(k.to_numpy(k.matmul(k.from_numpy(a), k.from_numpy(b))), a @ b,
                               rtol=1e-4, atol=1e-4)
    bias = rng.standard_normal(17).astype(np.float32)
    c = k.binary("add", k.from_numpy(a @ b), k.from_numpy(bias))
    np.testing.assert_allclose(k.to_numpy(c), a @ b + bias, rtol=1e-6)
    logits = rng.standard_normal((9, 300)).astype(np.float32)
    expected = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    np.testing.assert_allclose(k.to_numpy(k.softmax(k.from_numpy(logits), 1)), expected,
                               rtol=1e-5, atol=1e-7)
    np.testing.assert_array_equal(k.to_numpy(k.random_bits(1001, 5, 3)),
                                  flambeau.backends.philox.random_bits(1001, 5, 3))


# --- models on opencl:0 -------------------------------------------------------------------


@pytest.fixture
def on_opencl():
    flambeau.set_default_device(DEV)
    yield
    flambeau.set_default_device(None)


def _d2l_sections():
    import test_d2l_builders_guide as guide

    return [getattr(guide, name) for name in dir(guide) if name.startswith("test_")]


@pytest.mark.parametrize("section", _d2l_sections(), ids=lambda f: f.__name__[5:])
def test_d2l_builders_guide_runs_on_opencl(section, on_opencl):
    section()
    assert flambeau.get_default_device() == flambeau.device(DEV)


def test_save_and_load_on_opencl(tmp_path, on_opencl):
    from flambeau import nn

    flambeau.manual_seed(0)
    net = nn.Sequential(nn.Linear(20, 256), nn.ReLU(), nn.Linear(256, 10))
    x = flambeau.randn(2, 20)
    y = net(x)
    flambeau.save({"x": x, "parts": [x[0], flambeau.arange(4)]}, tmp_path / "x")
    loaded = flambeau.load(tmp_path / "x", device=DEV)
    assert loaded["x"].device == flambeau.device(DEV)
    np.testing.assert_array_equal(loaded["x"].numpy(), x.numpy())
    np.testing.assert_array_equal(loaded["parts"][1].numpy(), np.arange(4))
    flambeau.save(net.state_dict(), tmp_path / "mlp.params")
    clone = nn.Sequential(nn.Linear(20, 256), nn.ReLU(), nn.Linear(256, 10))
    clone.load_state_dict(flambeau.load(tmp_path / "mlp.params", device=DEV))
    np.testing.assert_array_equal(clone(x).detach().numpy(), y.detach().numpy())
    on_cpu = flambeau.load(tmp_path / "mlp.params", device="cpu")
    np.testing.assert_array_equal(on_cpu["0.weight"].numpy(), net[0].weight.detach().numpy())


@pytest.mark.parametrize(("make", "epochs"), [(demo.make_mlp, 15), (demo.make_lenet, 10)],
                         ids=["mlp", "lenet"])
def test_digits_models_train_to_the_cpu_accuracy(make, epochs):
    pytest.importorskip("sklearn", reason="scikit-learn provides the digits data set")
    results = {}
    for name in ("cpu", DEV):
        x_train, y_train, x_test, y_test = demo.load_digits_split(name)
        flambeau.manual_seed(0)
        with flambeau.device(name):
            model = make()
            history = demo.train(model, x_train, y_train, epochs=epochs)
        results[name] = (history, demo.accuracy(model, x_test, y_test))
    (cpu_history, cpu_accuracy), (history, accuracy) = results["cpu"], results[DEV]
    assert history[0] == pytest.approx(cpu_history[0], rel=1e-4)
    assert history[-1] < history[0] / 5
    assert accuracy >= 0.95 and abs(accuracy - cpu_accuracy) <= 0.02
