"""Plugin discovery: lazy loading, isolation of broken plugins, in-process registration."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

import flambeau
from flambeau import backends
from flambeau.errors import BackendError, DeviceUnavailableError, InvalidDeviceError

# A working backend in a fake distribution: delegates to the cpu backend's kernels.
GOOD_PLUGIN = """
from flambeau.backends import hookimpl, CONTRACT_VERSION, DeviceInfo
from flambeau_cpu.kernels import NumpyKernels
import numpy as np

class Backend:
    name = {name!r}
    contract_version = {version}
    def device_count(self): return 1
    def device_info(self, i): return DeviceInfo("fake", None, (np.dtype("float32"),))
    def synchronize(self, i): pass
    def kernels(self, i): return NumpyKernels()

@hookimpl
def flambeau_backends():
    return [Backend()]
"""


def _good(name="fake", version="CONTRACT_VERSION"):
    return GOOD_PLUGIN.format(name=name, version=version)


def _only_error():
    errors = backends.errors()
    assert len(errors) == 1, errors
    return errors[0]


def test_import_flambeau_does_not_load_plugins():
    code = (
        "import sys, flambeau; "
        "assert 'flambeau_cpu' not in sys.modules, 'plugin loaded at import'; "
        "flambeau.device('cpu'); assert 'flambeau_cpu' not in sys.modules; "
        "flambeau.devices(); assert 'flambeau_cpu' in sys.modules; print('ok')"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"


def test_a_working_third_party_plugin_is_found(fake_dists):
    fake_dists.add("fake-backend", "fake", "fakeplugin_good", _good())
    assert flambeau.device_count("fake") == 1
    assert flambeau.device("fake:0").info.name == "fake"
    assert backends.errors() == []


def test_plugin_that_fails_to_import_is_recorded_and_skipped(fake_dists):
    fake_dists.add("broken-backend", "broken", "fakeplugin_broken",
                   "import no_such_module_anywhere\n", version="2.5")
    assert flambeau.device_count("cpu") == 1  # everything else keeps working
    error = _only_error()
    assert (error.name, error.distribution, error.version) == ("broken", "broken-backend", "2.5")
    assert "ModuleNotFoundError" in error.message and "no_such_module_anywhere" in error.message
    assert "Traceback" in error.traceback and "no_such_module_anywhere" in error.traceback
    assert str(error).startswith("broken (broken-backend 2.5): failed to load")


def test_hook_that_raises_is_recorded(fake_dists):
    source = "from flambeau.backends import hookimpl\n\n@hookimpl\ndef flambeau_backends():\n" \
             "    raise RuntimeError('driver exploded')\n"
    fake_dists.add("raising-backend", "raising", "fakeplugin_raising", source)
    assert "driver exploded" in _only_error().message
    assert flambeau.device_count("cpu") == 1


def test_module_without_the_hook_is_recorded(fake_dists):
    fake_dists.add("empty-backend", "empty", "fakeplugin_empty", "x = 1\n")
    assert "implements no flambeau_backends hook" in _only_error().message


def test_hook_with_a_bad_signature_is_recorded(fake_dists):
    source = "from flambeau.backends import hookimpl\n\n@hookimpl\ndef flambeau_backends(x):\n" \
             "    return []\n"
    fake_dists.add("sig-backend", "sig", "fakeplugin_sig", source)
    assert "PluginValidationError" in _only_error().message


def test_wrong_contract_version_names_both_versions(fake_dists):
    fake_dists.add("old-backend", "old", "fakeplugin_old", _good("old", version=0))
    message = _only_error().message
    assert "implements contract version 0" in message
    assert f"needs contract version {backends.CONTRACT_VERSION}" in message
    with pytest.raises(InvalidDeviceError, match=r"old \(old-backend 1.0\)"):
        flambeau.device("old")


def test_two_plugins_claiming_one_prefix(fake_dists):
    fake_dists.add("first-backend", "twin_a", "fakeplugin_twin_a", _good("twin"))
    fake_dists.add("second-backend", "twin_b", "fakeplugin_twin_b", _good("twin"))
    error = _only_error()
    assert error.distribution == "second-backend"
    assert "'twin' is claimed twice: by first-backend 1.0 and by second-backend 1.0" in str(error)
    assert flambeau.device_count("twin") == 1


def test_plugin_claiming_cpu_does_not_shadow_the_real_one(fake_dists):
    fake_dists.add("aaa-backend", "aaa", "fakeplugin_aaa", _good("cpu"))
    assert "claimed twice: by flambeau-cpu" in _only_error().message
    assert "numpy" in flambeau.device("cpu").info.name


def test_invalid_backend_name_is_recorded(fake_dists):
    fake_dists.add("caps-backend", "caps", "fakeplugin_caps", _good("My Device"))
    assert "expected a lower-case identifier" in _only_error().message


def test_failed_plugins_are_listed_in_device_errors(fake_dists):
    fake_dists.add("broken-backend", "broken", "fakeplugin_broken2", "raise ImportError('x')\n")
    with pytest.raises(InvalidDeviceError, match=r"failed to load:\n  - broken \(broken-backend"):
        flambeau.device("broken:0")


def test_autoload_can_be_disabled(monkeypatch, clean_registry):
    monkeypatch.setenv("FLAMBEAU_DISABLE_PLUGIN_AUTOLOAD", "1")
    backends.reload()
    assert backends.available() == {}
    assert flambeau.devices() == []
    assert flambeau.device_count("cpu") == 0
    with pytest.raises(DeviceUnavailableError, match=r"no flambeau backend is installed.*"
                       r"pip install flambeau-cpu(?s:.*)FLAMBEAU_DISABLE_PLUGIN_AUTOLOAD"):
        _ = flambeau.device("cpu").info
    from flambeau_cpu import CpuBackend

    backends.register(CpuBackend())
    assert flambeau.devices() == [flambeau.device("cpu:0")]


class _MiniBackend:
    name = "mini"
    contract_version = backends.CONTRACT_VERSION

    def __init__(self, kernels=None):
        from flambeau_cpu.kernels import NumpyKernels

        self._kernels = kernels if kernels is not None else NumpyKernels()

    def device_count(self):
        return 1

    def device_info(self, index):
        return backends.DeviceInfo("mini", None, (np.dtype("float32"),))

    def synchronize(self, index):
        pass

    def kernels(self, index):
        return self._kernels


def test_register_in_process(clean_registry):
    backends.register(_MiniBackend())
    assert flambeau.device("mini:0").info.name == "mini"
    with pytest.raises(BackendError, match="'mini' is claimed twice"):
        backends.register(_MiniBackend())
    backends.register(_MiniBackend(), replace=True)
    assert backends.unregister("mini").name == "mini"
    with pytest.raises(KeyError, match="no backend named 'mini'"):
        backends.unregister("mini")


def test_register_refuses_contract_breakers(clean_registry):
    broken = _MiniBackend()
    broken.contract_version = 99
    with pytest.raises(BackendError, match=r"contract version 99.*needs contract version"):
        backends.register(broken)
    nameless = _MiniBackend()
    nameless.name = ""
    with pytest.raises(BackendError, match="lower-case identifier"):
        backends.register(nameless)


def test_kernel_set_missing_required_kernels_is_refused_on_use(clean_registry):
    from flambeau._device import kernels_for

    backends.register(_MiniBackend(kernels=object()))
    with pytest.raises(BackendError, match=r"lacks the required kernel.*empty"):
        kernels_for(flambeau.device("mini"))
