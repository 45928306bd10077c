"""Device names: parsing, value semantics, defaults, and the errors of unusable devices."""

from __future__ import annotations

import numpy as np
import pytest

import flambeau
from flambeau.errors import DeviceUnavailableError, InvalidDeviceError


def test_parse_type_and_index():
    dev = flambeau.device("cuda:1")
    assert (dev.type, dev.index) == ("cuda", 1)
    assert str(dev) == "cuda:1"
    assert repr(dev) == "device(type='cuda', index=1)"
    assert flambeau.device("cuda", 1) == dev
    assert flambeau.device(dev) is dev


def test_type_without_index():
    dev = flambeau.device("cpu")
    assert (dev.type, dev.index) == ("cpu", None)
    assert str(dev) == "cpu" and repr(dev) == "device(type='cpu')"


def test_value_semantics():
    assert flambeau.device("cuda:0") == flambeau.device("cuda:0")
    assert flambeau.device("cuda") == flambeau.device("cuda:0")  # absent index means 0
    assert flambeau.device("cuda:0") != flambeau.device("cuda:1")
    assert flambeau.device("cpu") != flambeau.device("cuda")
    assert len({flambeau.device("cpu"), flambeau.device("cpu:0"), flambeau.device("cuda")}) == 2
    assert flambeau.device("cpu:0") == "cpu"
    assert flambeau.device("cpu:0") != "not a device"


@pytest.mark.parametrize("name", ["cpu", "cuda:1", "opencl:0", "meta", "cuda:7"])
def test_well_known_types_construct_without_hardware(name):
    assert str(flambeau.device(name)) == name


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("", "empty device name"),
        ("cuda:-1", "must be a non-negative integer, got '-1'"),
        ("cuda:x", "must be a non-negative integer, got 'x'"),
        ("cuda:", "must be a non-negative integer, got ''"),
        ("cuda:1:2", "must be a non-negative integer, got '1:2'"),
        ("CPU:0 ", "did you mean 'cpu:0'"),
        (" cpu", "did you mean 'cpu'"),
        ("cu da", "malformed device name"),
        ("cuda:\u0661", "must be a non-negative integer"),  # an Arabic-Indic digit
    ],
)
def test_malformed_names_are_refused_clearly(name, message):
    with pytest.raises(InvalidDeviceError, match=message):
        flambeau.device(name)


def test_non_string_is_refused():
    with pytest.raises(InvalidDeviceError, match=r"expected a device name.*got int"):
        flambeau.device(3)
    with pytest.raises(InvalidDeviceError, match="already has an index"):
        flambeau.device("cuda:0", 1)
    with pytest.raises(InvalidDeviceError, match=r"non-negative integer, got -2"):
        flambeau.device("cuda", -2)


def test_unknown_type_lists_installed_types_and_packages():
    with pytest.raises(InvalidDeviceError) as err:
        flambeau.device("nosuch:0")
    message = str(err.value)
    assert "unknown device type 'nosuch'" in message
    assert "installed device types: boxed, cpu" in message
    assert "cuda (flambeau-cuda)" in message and "opencl (flambeau-opencl)" in message
    assert isinstance(err.value, ValueError)


def test_using_a_missing_backend_says_what_to_install(clean_registry):
    if flambeau.backends.get("cuda") is not None:
        flambeau.backends.unregister("cuda")  # as if flambeau-cuda were not installed
    with pytest.raises(DeviceUnavailableError, match=r"no installed backend provides 'cuda'") as e:
        _ = flambeau.device("cuda:1").info
    assert "pip install" in str(e.value) and "flambeau-cuda" in str(e.value)
    assert isinstance(e.value, RuntimeError)


def test_index_out_of_range_says_how_many_exist():
    with pytest.raises(DeviceUnavailableError, match=r"cpu:3 does not exist.*1 device\(s\), "
                       r"cpu:0 to cpu:0"):
        _ = flambeau.device("cpu:3").info
    with pytest.raises(DeviceUnavailableError, match=r"2 device\(s\), boxed:0 to boxed:1"):
        _ = flambeau.device("boxed:2").info


def test_devices_lists_every_device_of_every_backend():
    found = flambeau.devices()
    assert flambeau.device("cpu:0") in found
    assert [str(d) for d in found if d.type == "boxed"] == ["boxed:0", "boxed:1"]
    assert "numpy" in found[found.index(flambeau.device("cpu"))].info.name


def _hardware_count(kind: str) -> int:
    """Devices of a hardware backend here: 0 when its package is absent (or no hardware)."""
    backend = flambeau.backends.get(kind)
    return backend.device_count() if backend is not None else 0


def test_device_count():
    assert flambeau.device_count("cpu") == 1
    assert flambeau.device_count("boxed") == 2
    assert flambeau.device_count("cuda") == _hardware_count("cuda")
    assert flambeau.device_count("opencl") == _hardware_count("opencl")
    with pytest.raises(InvalidDeviceError, match="unknown device type 'nosuch'"):
        flambeau.device_count("nosuch")


def test_torch_shaped_helpers():
    for kind, module in (("cuda", flambeau.cuda), ("opencl", flambeau.opencl)):
        assert module.device_count() == _hardware_count(kind)
        assert module.is_available() is (_hardware_count(kind) > 0)
    # Without flambeau-cuda the error says what to install; with it, why no GPU was found.
    if _hardware_count("cuda") == 0:
        with pytest.raises(DeviceUnavailableError, match=r"flambeau-cuda|found no devices"):
            flambeau.cuda.synchronize()
    flambeau.synchronize("cpu")


def test_default_device_env_set_and_with_blocks(monkeypatch):
    monkeypatch.delenv("FLAMBEAU_DEVICE", raising=False)
    assert flambeau.get_default_device() == flambeau.device("cpu")
    monkeypatch.setenv("FLAMBEAU_DEVICE", "boxed:1")
    assert flambeau.get_default_device() == flambeau.device("boxed:1")
    try:
        flambeau.set_default_device("boxed:0")
        assert flambeau.get_default_device() == flambeau.device("boxed:0")
        with flambeau.device("cpu"):
            assert flambeau.get_default_device() == flambeau.device("cpu")
            with flambeau.device("boxed:1") as inner:
                assert flambeau.get_default_device() is inner
            assert flambeau.get_default_device() == flambeau.device("cpu")
        assert flambeau.get_default_device() == flambeau.device("boxed:0")
    finally:
        flambeau.set_default_device(None)
    assert flambeau.get_default_device() == flambeau.device("boxed:1")


def test_bad_default_device_env_is_reported(monkeypatch):
    monkeypatch.setenv("FLAMBEAU_DEVICE", "cuda:x")
    with pytest.raises(InvalidDeviceError, match="got 'x'"):
        flambeau.get_default_device()


def test_device_info():
    info = flambeau.device("cpu").info
    assert info.memory_bytes is None or info.memory_bytes > 0
    assert np.dtype("float32") in info.dtypes and np.dtype("int64") in info.dtypes
