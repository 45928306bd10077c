"""The ``flambeau`` command and the README demo."""

from __future__ import annotations

import shutil
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import numpy as np
import pytest

import flambeau
from flambeau.errors import DTypeError


def _run(*args: str, env_extra: dict | None = None) -> subprocess.CompletedProcess:
    import os

    env = {**os.environ, **(env_extra or {})}
    return subprocess.run([sys.executable, "-m", "flambeau", *args], capture_output=True,
                          text=True, env=env, timeout=120)


def test_devices_command_lists_backends_and_devices():
    result = _run("devices")
    assert result.returncode == 0, result.stderr
    assert "cpu:0  numpy on" in result.stdout
    assert "boxed: 2 device(s)" in result.stdout
    assert "dtypes: bool, uint8" in result.stdout


def test_devices_command_shows_plugin_errors(tmp_path):
    (tmp_path / "fakeplugin_cli.py").write_text("raise ImportError('missing driver')\n")
    info = tmp_path / "cli_backend-3.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: cli-backend\nVersion: 3.0\n")
    (info / "entry_points.txt").write_text("[flambeau.backends]\nclidev = fakeplugin_cli\n")
    result = _run("devices", env_extra={"PYTHONPATH": str(tmp_path)})
    assert result.returncode == 0, result.stderr
    assert "plugins that failed to load:" in result.stdout
    assert "clidev (cli-backend 3.0): failed to load: ImportError: missing driver" in result.stdout


def test_devices_command_with_autoload_off_says_so():
    result = _run("devices", env_extra={"FLAMBEAU_DISABLE_PLUGIN_AUTOLOAD": "1"})
    assert result.returncode == 0, result.stderr
    assert "none installed" not in result.stdout
    assert "plugin autoload is off (FLAMBEAU_DISABLE_PLUGIN_AUTOLOAD is set); unset it" \
        in result.stdout


def test_devices_command_without_backends():
    # No distribution declares a backend: entry points come back empty.
    code = ("import importlib.metadata as m; m.entry_points = lambda **kw: []; "
            "from flambeau.__main__ import main; main(['devices'])")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=120)
    assert "backends: none installed" in result.stdout, result.stderr
    assert 'pip install "flambeau[cpu]"' in result.stdout


def test_version_from_the_module_and_the_console_script():
    result = _run("--version")
    assert (result.returncode, result.stdout) == (0, f"flambeau {flambeau.__version__}\n")
    assert flambeau.__version__ == metadata.version("flambeau")
    script = shutil.which("flambeau", path=str(Path(sys.executable).parent))
    if script is None:
        pytest.skip("the console script is not installed next to this interpreter")
    installed = subprocess.run([script, "--version"], capture_output=True, text=True,
                               timeout=120)
    assert installed.stdout == result.stdout


def _listed_dtypes(devices_output: str) -> dict[str, list[str]]:
    """Device name -> the dtype names ``flambeau devices`` lists for it."""
    listed, current = {}, None
    for line in devices_output.splitlines():
        if line.startswith("    ") and not line.startswith("     "):
            current = line.split()[0]
        elif line.strip().startswith("dtypes: "):
            listed[current] = line.split("dtypes: ")[1].split(", ")
    return listed


def test_devices_command_shows_backend_versions_and_tensor_dtypes_only():
    result = _run("devices")
    assert f"flambeau {flambeau.__version__}, contract version" in result.stdout
    version = metadata.version("flambeau-cpu")
    assert f"cpu: 1 device(s)  [flambeau-cpu {version}, flambeau_cpu.backend]" in result.stdout
    listed = _listed_dtypes(result.stdout)
    assert {"cpu:0", "boxed:0", "boxed:1"} <= set(listed)
    for device, names in listed.items():  # what is listed, tensors accept; nothing else
        assert "uint32" not in names
        if device.startswith(("cpu", "boxed")):
            for name in names:
                dtype = getattr(flambeau, name)
                assert flambeau.zeros(2, dtype=dtype, device=device).dtype == dtype
    with pytest.raises(DTypeError, match="uint32"):
        flambeau.tensor(np.arange(3, dtype=np.uint32))


def test_demo_trains_on_cpu():
    result = _run("demo", "--device", "cpu", "--epochs", "2")
    assert result.returncode == 0, result.stderr
    assert "training a mlp on the digits data set" in result.stdout
    assert "Total params: 4,810" in result.stdout
    assert "test accuracy:" in result.stdout


def test_demo_on_a_missing_device_fails_clearly():
    result = _run("demo", "--device", "cuda:0")
    assert result.returncode == 1
    assert ("no installed backend provides 'cuda'" in result.stdout  # flambeau-cuda absent
            or "the 'cuda' backend found no devices" in result.stdout)  # or no GPU


def test_demo_on_meta_explains_in_one_line():
    result = _run("demo", "--device", "meta")
    assert result.returncode == 1
    assert "Traceback" not in result.stdout + result.stderr
    assert result.stdout.rstrip().splitlines()[-1] == (
        "error: meta tensors carry shapes but no values, so there is no data to train on; "
        "pick a real device, e.g. --device cpu")


@pytest.mark.parametrize(("declared", "upgrade"), [
    (0, "upgrade the backend: pip install --upgrade old-backend"),
    (99, "upgrade flambeau: pip install --upgrade flambeau"),
])
def test_a_contract_mismatch_names_both_versions_and_the_upgrade(tmp_path, declared, upgrade):
    (tmp_path / "fakeplugin_contract.py").write_text(
        "from flambeau.backends import hookimpl\n"
        "class B:\n"
        "    name = 'olddev'\n"
        f"    contract_version = {declared}\n"
        "@hookimpl\n"
        "def flambeau_backends():\n"
        "    return [B()]\n")
    info = tmp_path / "old_backend-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: old-backend\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text("[flambeau.backends]\nolddev = fakeplugin_contract\n")
    result = _run("devices", env_extra={"PYTHONPATH": str(tmp_path)})
    assert result.returncode == 0, result.stderr
    from flambeau.backends import CONTRACT_VERSION

    assert (f"olddev (old-backend 1.0): backend 'olddev' implements contract version "
            f"{declared}, but flambeau {flambeau.__version__} needs contract version "
            f"{CONTRACT_VERSION}; {upgrade}") in result.stdout
