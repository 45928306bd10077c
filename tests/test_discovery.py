"""Plugin discovery: lazy loading, isolation of broken plugins, in-process registration."""

from __future__ import annotations

import logging
import subprocess
import sys
import threading

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
    error = _only_error()
    assert (error.name, error.distribution) == ("aaa", "aaa-backend")
    assert error.message == (
        "backend 'cpu' was refused: the device type 'cpu' is reserved for the in-repo "
        "distribution flambeau-cpu, and this backend comes from aaa-backend 1.0; a "
        "third-party backend must use a device type of its own"
    )
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


# --- Reliability (issue 11): threads, names reserved for in-repo backends, sys.exit ---

# Defect 2. A slow entry-point scan holds the first query open long enough for the other
# threads to arrive while discovery runs; they must wait for it, not see an empty registry.
FIRST_QUERY_RACE = """
import importlib.metadata, threading, time
import flambeau
from flambeau import backends

real_entry_points = importlib.metadata.entry_points

def slow_entry_points(**params):
    time.sleep(0.2)  # a slow sys.path scan, as on a big environment
    return real_entry_points(**params)

importlib.metadata.entry_points = slow_entry_points
failures = []

def first_query(i, barrier):
    barrier.wait()
    try:
        if i % 2:
            assert flambeau.ones(2).tolist() == [1.0, 1.0]
        else:
            count = flambeau.device_count("cpu")
            assert count == 1, f"device_count('cpu') returned {count}"
    except BaseException as exc:
        failures.append(f"thread {i}: {type(exc).__name__}: {exc}")

for _ in range(5):
    backends.reload()  # the first round runs in a fresh interpreter, the others after reload
    barrier = threading.Barrier(8)
    threads = [threading.Thread(target=first_query, args=(i, barrier)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
print(len(failures))
print("\\n".join(failures[:4]))
"""


def test_first_device_query_from_eight_threads_waits_for_discovery():
    result = subprocess.run([sys.executable, "-c", FIRST_QUERY_RACE], capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split("\n", 1)[0] == "0", result.stdout


def _in_threads(count, query):
    barrier = threading.Barrier(count)
    results: list = [None] * count

    def run(i):
        barrier.wait()
        try:
            results[i] = query()
        except BaseException as exc:
            results[i] = f"{type(exc).__name__}: {exc}"

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return results


def test_threads_wait_for_a_slow_plugin_to_load(fake_dists):
    fake_dists.add("slow-backend", "slow", "fakeplugin_slow",
                   "import time\ntime.sleep(0.3)\n" + _good("slow"))
    fake_dists.add("late-backend", "zlate", "fakeplugin_zlate", _good("zlate"))
    results = _in_threads(8, lambda: (flambeau.device_count("slow"),
                                      flambeau.device_count("zlate")))
    assert results == [(1, 1)] * 8
    assert backends.errors() == []


def test_plugin_querying_devices_while_it_loads_sees_the_backends_loaded_so_far(fake_dists):
    source = _good("reentrant") + (
        "\nimport flambeau\nSEEN = []\n\n"
        "@hookimpl\n"
        "def flambeau_backends():\n"
        "    loaded = flambeau.backends.available()\n"
        "    SEEN.append((flambeau.device_count('cpu'), 'reentrant' in loaded))\n"
        "    return [Backend()]\n"
    )
    fake_dists.add("reentrant-backend", "reentrant", "fakeplugin_reentrant", source)
    # In another thread, so that a deadlock fails the test instead of hanging it.
    assert _in_threads(1, lambda: flambeau.device_count("reentrant")) == [1]
    assert sys.modules["fakeplugin_reentrant"].SEEN == [(1, False)]
    assert backends.errors() == []


def test_keyboard_interrupt_while_loading_propagates_and_discovery_runs_again(fake_dists):
    fake_dists.add("ctrlc-backend", "ctrlc", "fakeplugin_ctrlc", "raise KeyboardInterrupt\n")
    with pytest.raises(KeyboardInterrupt):
        flambeau.devices()
    (fake_dists.root / "fakeplugin_ctrlc.py").write_text(_good("ctrlc"))
    assert flambeau.device_count("ctrlc") == 1
    assert flambeau.device_count("cpu") == 1
    assert backends.errors() == []


# Defect 5. The in-repo backends own their device types, whatever the load order.
@pytest.mark.parametrize("name", ["cpu", "opencl"])
def test_entry_point_named_like_an_in_repo_backend_is_not_loaded(fake_dists, name):
    # Prepended to sys.path, the impostor's entry point comes before the real one.
    fake_dists.add("evil-backend", name, "fakeplugin_evil", _good(name), version="6.6")
    real = backends.get(name)
    assert type(real).__module__.startswith(f"flambeau_{name}.")
    assert "fakeplugin_evil" not in sys.modules  # never even imported
    error = _only_error()
    assert (error.name, error.distribution, error.version) == (name, "evil-backend", "6.6")
    assert error.message == (
        f"entry point {name!r} = fakeplugin_evil was not loaded: the device type {name!r} "
        f"is reserved for the in-repo distribution flambeau-{name}; a third-party backend "
        "must use a device type of its own (rename its entry point and its backend)"
    )
    assert str(error).startswith(f"{name} (evil-backend 6.6): entry point")


def test_backend_named_like_an_absent_in_repo_backend_is_refused(fake_dists):
    # A fake flambeau-cuda that fails to load hides the installed one: no real cuda backend.
    fake_dists.add("flambeau_cuda", "cuda", "fakeplugin_nocuda", "raise ImportError('no cupy')\n")
    fake_dists.add("gpu-impostor", "zgpu", "fakeplugin_zgpu", _good("cuda"))
    assert backends.get("cuda") is None
    assert flambeau.device_count("cuda") == 0
    errors = {error.distribution: error for error in backends.errors()}
    assert sorted(errors) == ["flambeau_cuda", "gpu-impostor"]
    assert errors["gpu-impostor"].name == "zgpu"
    assert errors["gpu-impostor"].message.startswith(
        "backend 'cuda' was refused: the device type 'cuda' is reserved for the in-repo "
        "distribution flambeau-cuda, and this backend comes from gpu-impostor 1.0"
    )


def test_register_in_process_may_still_replace_an_in_repo_backend(clean_registry):
    from flambeau_cpu import CpuBackend

    replacement = CpuBackend()
    backends.register(replacement, replace=True)
    assert backends.get("cpu") is replacement


# Defect 6. sys.exit in a plugin is a failure like any other, not the end of the program.
def test_plugin_calling_sys_exit_on_import_is_recorded_and_the_rest_load(fake_dists):
    fake_dists.add("exit-backend", "exiter", "fakeplugin_exiter", "import sys\nsys.exit(3)\n")
    fake_dists.add("after-backend", "zafter", "fakeplugin_zafter", _good("zafter"))
    assert flambeau.device_count("zafter") == 1
    assert flambeau.ones(2).tolist() == [1.0, 1.0]
    error = _only_error()
    assert (error.name, error.distribution) == ("exiter", "exit-backend")
    assert error.message == (
        "failed to load: the plugin called sys.exit(3) while loading; a plugin must raise "
        "an exception instead (the error is recorded and the other backends keep working)"
    )
    assert "SystemExit: 3" in error.traceback


def test_hook_calling_sys_exit_is_recorded(fake_dists):
    source = "import sys\nfrom flambeau.backends import hookimpl\n\n@hookimpl\n" \
             "def flambeau_backends():\n    sys.exit('no driver')\n"
    fake_dists.add("exit-backend", "exiter", "fakeplugin_exithook", source)
    assert flambeau.device_count("cpu") == 1
    assert _only_error().message.startswith(
        "failed to load: the plugin called sys.exit('no driver') while loading;")


@pytest.mark.parametrize("raised", ["SystemExit()", "RuntimeError('no name yet')"])
def test_backend_raising_while_it_is_checked_is_recorded(fake_dists, raised):
    source = _good("unused") + (
        "\nclass Odd(Backend):\n    @property\n    def name(self):\n"
        f"        raise {raised}\n\n"
        "@hookimpl\ndef flambeau_backends():\n    return [Odd()]\n"
    )
    fake_dists.add("odd-backend", "odd", "fakeplugin_odd", source)
    fake_dists.add("after-backend", "zafter", "fakeplugin_zafter2", _good("zafter"))
    assert flambeau.device_count("zafter") == 1
    error = _only_error()
    assert (error.name, error.distribution) == ("odd", "odd-backend")
    expected = "called sys.exit() while" if raised == "SystemExit()" else "RuntimeError: no name"
    assert error.message.startswith("a backend object of type Odd could not be checked: ")
    assert expected in error.message


def test_keyboard_interrupt_in_a_backend_check_propagates(fake_dists):
    source = _good("unused") + (
        "\nclass Odd(Backend):\n    @property\n    def name(self):\n"
        "        raise KeyboardInterrupt\n\n"
        "@hookimpl\ndef flambeau_backends():\n    return [Odd()]\n"
    )
    fake_dists.add("odd-backend", "odd", "fakeplugin_odd_ctrlc", source)
    with pytest.raises(KeyboardInterrupt):
        flambeau.devices()


# Optional: a plugin that hangs on import can be found from a log line naming it.
def test_each_plugin_is_logged_before_it_loads(fake_dists, caplog):
    fake_dists.add("noisy-backend", "noisy", "fakeplugin_noisy",
                   "import logging\nlogging.getLogger('fakeplugin').warning('importing')\n"
                   + _good("noisy"), version="0.3")
    with caplog.at_level(logging.DEBUG, logger="flambeau.backends"):
        assert flambeau.device_count("noisy") == 1
    messages = [(r.name, r.getMessage()) for r in caplog.records]
    loading = ("flambeau.backends",
               "loading backend plugin 'noisy' (fakeplugin_noisy) from noisy-backend 0.3")
    assert loading in messages
    assert messages.index(loading) < messages.index(("fakeplugin", "importing"))
    assert any(name == "flambeau.backends" and m.startswith("loaded backend plugin 'noisy' in ")
               for name, m in messages)
