"""The ``flambeau`` command and the README demo."""

from __future__ import annotations

import subprocess
import sys


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


def test_devices_command_without_backends():
    result = _run("devices", env_extra={"FLAMBEAU_DISABLE_PLUGIN_AUTOLOAD": "1"})
    assert "backends: none installed" in result.stdout
    assert 'pip install "flambeau[cpu]"' in result.stdout


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
