"""Everyday PyTorch runtime names against PyTorch: the RNG state (``get_rng_state`` /
``set_rng_state``, ``Generator.get_state`` / ``set_state``), the default dtype,
``finfo`` / ``iinfo``, ``inference_mode``, ``set_grad_enabled`` and ``no_grad`` as
decorators, ``compile`` (a pass-through), and the ``flambeau.cuda`` / ``flambeau.opencl``
helpers (on ``opencl:0`` where PoCL is installed, and without a GPU for cuda).
"""

from __future__ import annotations

import sys

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import flambeau  # noqa: E402
from flambeau.errors import DeviceUnavailableError, InvalidDeviceError  # noqa: E402


def name(dtype):
    return str(dtype).replace("torch.", "")


# --- RNG state ---------------------------------------------------------------------------


def draws(generator=None):
    kw = {} if generator is None else {"generator": generator}
    return [flambeau.rand(5, **kw).tolist(), flambeau.randn(2, 3, **kw).tolist(),
            flambeau.randint(0, 100, (4,), **kw).tolist(), flambeau.randperm(6, **kw).tolist(),
            flambeau.rand(3, dtype=flambeau.float64, **kw).tolist()]


def test_rng_state_is_a_uint8_tensor_like_torchs():
    state, t_state = flambeau.get_rng_state(), torch.get_rng_state()
    assert isinstance(state, flambeau.Tensor) and state.device == flambeau.device("cpu")
    assert name(state.dtype) == name(t_state.dtype) == "uint8" and state.ndim == t_state.ndim
    flambeau.manual_seed(258)
    assert flambeau.get_rng_state().tolist() == [2, 1] + [0] * 14  # seed, then offset 0
    flambeau.rand(3)
    assert flambeau.get_rng_state().tolist()[8:] == [3] + [0] * 7  # three words used


def test_rng_state_round_trip_replays_the_same_numbers():
    flambeau.manual_seed(7)
    flambeau.rand(11)
    state = flambeau.get_rng_state()
    first = draws()
    assert draws() != first
    flambeau.set_rng_state(state)
    assert draws() == first
    # the same as PyTorch's contract
    torch.manual_seed(7)
    t_state = torch.get_rng_state()
    t_first = torch.rand(4)
    torch.set_rng_state(t_state)
    assert torch.equal(torch.rand(4), t_first)


def test_generator_state_round_trip():
    g = flambeau.Generator().manual_seed(3)
    draws(g)
    state = g.get_state()
    first = draws(g)
    assert g.set_state(state) is g  # returns the generator, as PyTorch's does
    assert draws(g) == first
    other = flambeau.Generator()
    other.set_state(state)
    assert draws(other) == first and other.initial_seed() == 3


def test_rng_state_replays_on_every_device(device):
    flambeau.manual_seed(11)
    state = flambeau.get_rng_state()
    first = flambeau.rand(6, device=device).tolist()
    flambeau.set_rng_state(state)
    assert flambeau.rand(6, device=device).tolist() == first
    flambeau.set_rng_state(state)
    assert flambeau.rand(6).tolist() == first  # and the same numbers on the host


def test_bad_rng_states_are_refused_like_torch():
    with pytest.raises(TypeError) as theirs:
        torch.set_rng_state([1, 2])
    with pytest.raises(TypeError, match=r"expected a uint8 flambeau\.Tensor from get_state"):
        flambeau.set_rng_state([1, 2])
    assert "ByteTensor" in str(theirs.value)
    with pytest.raises(TypeError):
        torch.set_rng_state(torch.zeros(5056))
    with pytest.raises(TypeError, match="RNG state must be a uint8 tensor"):
        flambeau.set_rng_state(flambeau.zeros(16))
    with pytest.raises(RuntimeError, match="found the input RNG state size to be 3"):
        torch.set_rng_state(torch.zeros(3, dtype=torch.uint8))
    with pytest.raises(RuntimeError, match=r"Expected an RNG state of 16 bytes .* found the "
                                           r"input RNG state size to be 3"):
        flambeau.set_rng_state(flambeau.zeros(3, dtype=flambeau.uint8))
    from_torch = flambeau.tensor(torch.get_rng_state().numpy())
    with pytest.raises(RuntimeError, match="states from PyTorch's generator cannot be loaded"):
        flambeau.default_generator.set_state(from_torch)


# --- default dtype -------------------------------------------------------------------------


@pytest.fixture
def restore_default_dtype():
    yield
    flambeau.set_default_dtype(flambeau.float32)
    torch.set_default_dtype(torch.float32)


def made(lib):
    ints = lib.tensor([1, 2])
    return {
        "tensor(list of floats)": lib.tensor([1.5, 2.0]), "tensor(float)": lib.tensor(2.5),
        "tensor(list of ints)": ints, "tensor(float32 array)": lib.tensor(
            np.ones(2, np.float32)), "zeros": lib.zeros(2), "ones": lib.ones(2, 2),
        "empty": lib.empty(3), "full(float)": lib.full((2,), 1.5), "full(int)": lib.full((2,), 1),
        "rand": lib.rand(2), "randn": lib.randn(2), "arange(float)": lib.arange(3.0),
        "arange(int)": lib.arange(3), "linspace": lib.linspace(0, 1, 3), "eye": lib.eye(2),
        "zeros_like(int)": lib.zeros_like(ints), "ints + float": ints + 2.5,
        "ints / int": ints / 2, "float32 + float": lib.ones(2, dtype=lib.float32) + 2.5,
        "float16 + float": lib.ones(2, dtype=lib.float16) + 2.5, "Tensor()": lib.Tensor([1, 2]),
        "dtype=float": lib.zeros(2, dtype=float), "Linear weight": lib.nn.Linear(2, 3).weight,
        "mean": ints.float().mean(), "normal_": lib.empty(2).normal_(),
    }


@pytest.mark.parametrize("dtype", ["float32", "float64", "float16", "bfloat16"])
def test_default_dtype_affects_new_tensors_like_torch(dtype, restore_default_dtype):
    if dtype == "bfloat16":
        pytest.importorskip("ml_dtypes")
    flambeau.set_default_dtype(getattr(flambeau, dtype))
    torch.set_default_dtype(getattr(torch, dtype))
    assert name(flambeau.get_default_dtype()) == name(torch.get_default_dtype()) == dtype
    ours, theirs = made(flambeau), made(torch)
    got = {key: name(t.dtype) for key, t in ours.items()}
    want = {key: name(t.dtype) for key, t in theirs.items()}
    assert got == want
    assert name(flambeau.finfo().dtype) == dtype


def test_repr_leaves_out_the_default_dtype_like_torch(restore_default_dtype):
    def reprs(lib):
        return [repr(lib.tensor([1.5, 2.0])), repr(lib.tensor([1.5, 2.0], dtype=lib.float32)),
                repr(lib.tensor([1.5], dtype=lib.float64)), repr(lib.tensor([])),
                repr(lib.tensor([], dtype=lib.float32)), repr(lib.tensor([3]))]

    for dtype in ("float64", "float32"):
        flambeau.set_default_dtype(getattr(flambeau, dtype))
        torch.set_default_dtype(getattr(torch, dtype))
        assert reprs(flambeau) == [r.replace("torch.", "flambeau.") for r in reprs(torch)]


def test_only_float_default_dtypes(restore_default_dtype):
    for lib in (flambeau, torch):
        with pytest.raises(TypeError, match="only floating-point types are supported as the "
                                            "default type"):
            lib.set_default_dtype(lib.int64)
    assert flambeau.get_default_dtype() == flambeau.float32


# --- finfo / iinfo ---------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", ["float16", "float32", "float64", "bfloat16"])
def test_finfo_matches_torch(dtype):
    if dtype == "bfloat16":
        pytest.importorskip("ml_dtypes")
    ours, theirs = flambeau.finfo(getattr(flambeau, dtype)), torch.finfo(getattr(torch, dtype))
    for attr in ("bits", "eps", "max", "min", "tiny", "smallest_normal", "resolution", "dtype"):
        assert getattr(ours, attr) == getattr(theirs, attr), attr
        assert type(getattr(ours, attr)) is type(getattr(theirs, attr)), attr
    assert repr(ours) == repr(theirs)
    assert flambeau.finfo(dtype).eps == theirs.eps  # a dtype name works too


@pytest.mark.parametrize("dtype", ["uint8", "int8", "int16", "int32", "int64"])
def test_iinfo_matches_torch(dtype):
    ours, theirs = flambeau.iinfo(getattr(flambeau, dtype)), torch.iinfo(getattr(torch, dtype))
    for attr in ("bits", "max", "min", "dtype"):
        assert getattr(ours, attr) == getattr(theirs, attr), attr
        assert type(getattr(ours, attr)) is type(getattr(theirs, attr)), attr
    assert repr(ours) == repr(theirs)


def test_finfo_of_the_default_dtype_and_wrong_kinds():
    assert flambeau.finfo().eps == torch.finfo().eps
    for lib in (flambeau, torch):
        with pytest.raises(TypeError, match=r"finfo\(\) requires a floating point input type"):
            lib.finfo(lib.int32)
        with pytest.raises(TypeError, match=r"iinfo\(\) requires an integer input type"):
            lib.iinfo(lib.float32)
        with pytest.raises(TypeError):
            lib.iinfo(lib.bool)


# --- grad modes and compile -----------------------------------------------------------------


def modes(lib):
    """is_grad_enabled() and requires_grad in the ways scripts use the grad modes."""
    x = lib.ones(2, requires_grad=True)
    seen = []
    with lib.inference_mode():
        seen += [lib.is_grad_enabled(), (x * 2).requires_grad]
        with lib.inference_mode(False):
            seen.append(lib.is_grad_enabled())
        seen.append(lib.is_grad_enabled())
    with lib.no_grad(), lib.inference_mode(mode=False):
        seen.append(lib.is_grad_enabled())

    @lib.inference_mode
    def bare(t):
        return lib.is_grad_enabled(), (t * 2).requires_grad

    @lib.inference_mode()
    def called(t):
        return lib.is_grad_enabled(), (t * 2).requires_grad

    @lib.set_grad_enabled(False)
    def off(t):
        return lib.is_grad_enabled(), (t * 2).requires_grad

    @lib.no_grad
    def bare_no_grad(t):
        return lib.is_grad_enabled()

    seen.append(lib.is_grad_enabled())  # decorating changed nothing
    seen += [*bare(x), *called(x), *off(x), bare_no_grad(x), lib.is_grad_enabled()]
    with lib.no_grad():

        @lib.set_grad_enabled(True)
        def on(t):
            return lib.is_grad_enabled(), (t * 2).requires_grad

        seen += [*on(x), lib.is_grad_enabled()]
    lib.set_grad_enabled(False)
    seen.append(lib.is_grad_enabled())
    lib.set_grad_enabled(True)
    seen.append(lib.is_grad_enabled())
    return seen


def test_grad_modes_behave_like_torch():
    assert modes(flambeau) == modes(torch)


def test_inference_mode_is_no_grad_and_its_tensors_are_ordinary():
    x = flambeau.ones(2, requires_grad=True)
    with flambeau.inference_mode():
        y = x * 3
    y.requires_grad_()  # PyTorch refuses this for an inference tensor; flambeau allows it
    (y * x).sum().backward()
    assert x.grad.tolist() == [3.0, 3.0]
    assert flambeau.autograd.inference_mode is flambeau.inference_mode


def test_compile_returns_the_model_unchanged():
    net = flambeau.nn.Linear(3, 2)
    assert flambeau.compile(net) is net
    assert flambeau.compile(net, mode="max-autotune", fullgraph=True, dynamic=False,
                            backend="inductor", options={"x": 1}, disable=True) is net

    def f(t):
        return t + 1

    assert flambeau.compile(f) is f
    assert flambeau.compile(mode="reduce-overhead")(f) is f

    @flambeau.compile
    def g(t):
        return t * 2

    assert g(flambeau.ones(2)).tolist() == [2.0, 2.0]
    assert "nothing is compiled" in flambeau.compile.__doc__


# --- flambeau.cuda / flambeau.opencl ----------------------------------------------------------


NAMES = ["device_count", "is_available", "synchronize", "manual_seed", "manual_seed_all",
         "get_device_name", "memory_allocated", "empty_cache"]


@pytest.mark.parametrize("module", ["cuda", "opencl"])
def test_the_torch_cuda_names_are_there(module):
    for fn in NAMES:
        assert callable(getattr(getattr(flambeau, module), fn)) and hasattr(torch.cuda, fn)


@pytest.mark.skipif(flambeau.cuda.device_count() > 0, reason="checks the no-GPU behaviour")
def test_cuda_helpers_without_a_gpu_behave_like_torchs():
    flambeau.manual_seed(5)
    state = flambeau.get_rng_state().tolist()
    flambeau.cuda.manual_seed(1)  # no-ops, like PyTorch's without a GPU
    flambeau.cuda.manual_seed_all(1)
    assert flambeau.get_rng_state().tolist() == state
    assert flambeau.cuda.memory_allocated() == torch.cuda.memory_allocated() == 0
    flambeau.cuda.empty_cache()
    torch.cuda.empty_cache()
    with pytest.raises(DeviceUnavailableError, match="cuda:0"):
        flambeau.cuda.get_device_name()
    with pytest.raises(DeviceUnavailableError, match="cuda:1"):
        flambeau.cuda.get_device_name(1)
    with pytest.raises(InvalidDeviceError, match="expected a cuda device, got opencl:0"):
        flambeau.cuda.get_device_name("opencl:0")


def _with_devices(module):
    count = getattr(flambeau, module).device_count()
    return pytest.param(module, marks=pytest.mark.skipif(
        count == 0, reason=f"no {module} device here (PoCL gives opencl:0)"))


WITH_DEVICES = [_with_devices("opencl"), _with_devices("cuda")]


@pytest.mark.parametrize("module", WITH_DEVICES)
def test_device_name(module):
    helpers, count = getattr(flambeau, module), getattr(flambeau, module).device_count()
    want = flambeau.device(f"{module}:0").info.name
    assert want
    for spec in (None, 0, f"{module}:0", module, flambeau.device(f"{module}:0")):
        assert helpers.get_device_name(spec) == want
    with pytest.raises(DeviceUnavailableError, match=f"{module}:{count} does not exist"):
        helpers.get_device_name(count)
    with pytest.raises(InvalidDeviceError, match=f"expected a {module} device, got cpu"):
        helpers.get_device_name("cpu")


@pytest.mark.parametrize("module", WITH_DEVICES)
def test_memory_allocated_and_empty_cache(module):
    helpers = getattr(flambeau, module)
    helpers.synchronize()
    before = helpers.memory_allocated()
    x = flambeau.zeros(1 << 20, device=f"{module}:0")  # 4 MiB
    assert helpers.memory_allocated(0) - before >= 4 << 20
    del x
    assert helpers.memory_allocated(f"{module}:0") == before
    helpers.empty_cache()
    assert helpers.memory_allocated() == before
    if module == "opencl":
        allocator = flambeau.backends.get("opencl").state(0).allocator
        y = flambeau.zeros(1 << 20, device="opencl:0")
        del y
        assert allocator.cached_bytes >= 4 << 20  # the freed buffer is cached...
        helpers.empty_cache()
        assert allocator.cached_bytes == 0  # ...until empty_cache hands it back


@pytest.mark.parametrize("module", WITH_DEVICES)
def test_manual_seed_seeds_the_one_generator(module):
    helpers = getattr(flambeau, module)
    flambeau.manual_seed(9)
    want = flambeau.rand(4, device=f"{module}:0").tolist()
    flambeau.rand(7)
    helpers.manual_seed(9)
    assert flambeau.rand(4, device=f"{module}:0").tolist() == want
    helpers.manual_seed_all(9)
    assert flambeau.rand(4).tolist() == want  # the same stream on the host


def test_cuda_backend_counts_cupys_pool_of_the_right_gpu(monkeypatch):
    """The cuda backend's ``memory_allocated`` without a GPU: a stand-in for cupy."""
    cuda_backend = pytest.importorskip("flambeau_cuda.backend")
    current = []

    class Device:
        def __init__(self, index):
            self.index = index

        def __enter__(self):
            current.append(self.index)

        def __exit__(self, *exc):
            current.pop()

    class Pool:
        def used_bytes(self):
            return 1000 + current[-1]

    fake = type(sys)("cupy")
    fake.cuda = type(sys)("cupy.cuda")
    fake.cuda.Device = Device
    fake.get_default_memory_pool = Pool
    monkeypatch.setitem(sys.modules, "cupy", fake)
    backend = cuda_backend.CudaBackend()
    backend._count = 2
    assert backend.memory_allocated(1) == 1001 and not current
    with pytest.raises(IndexError, match="cuda:0 to cuda:1; got index 2"):
        backend.memory_allocated(2)
