"""The READMEs stay true: their Python examples run as written, and the quick start is
the two lines CI runs, safe on an externally managed Python (PEP 668)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"


def _quick_start() -> list[str]:
    quick = re.search(r"## Quick start.*?```sh\n(.*?)```", README.read_text(), flags=re.S)
    return [line.strip() for line in quick.group(1).splitlines() if line.strip()]


@pytest.mark.parametrize("readme", [README, ROOT / "packages" / "core" / "README.md"],
                         ids=["root", "core"])
def test_readme_python_examples_run(readme, tmp_path, monkeypatch, capsys):
    blocks = re.findall(r"```python\n(.*?)```", readme.read_text(), flags=re.S)
    assert blocks, f"{readme} lost its Python example"
    monkeypatch.chdir(tmp_path)
    namespace = {"__name__": "readme"}
    for block in blocks:
        exec(compile(block, str(readme), "exec"), namespace)
    assert "Total params" in capsys.readouterr().out
    assert (tmp_path / "mlp.params").stat().st_size > 0


def test_readme_quick_start_is_two_lines_that_ci_runs():
    lines = _quick_start()
    assert len(lines) == 2
    ci = (ROOT / ".ci" / "run").read_text().splitlines()
    for line in lines:
        assert line in ci, f"CI must run the README's line {line!r} as written"
    assert "bash tools/setup_check.sh" in ci


def test_quick_start_installs_only_into_a_venv_in_the_clone():
    setup, test = _quick_start()
    # Nothing goes into the interpreter found on PATH: it makes .venv, and every install
    # and every hatch command after that runs from the venv.
    first, *rest = setup.split(" && ")
    assert first == "python3 -m venv .venv"
    assert rest and all(step.startswith(".venv/bin/") for step in rest)
    assert test.startswith(".venv/bin/hatch ")
    assert ".venv/" in (ROOT / ".gitignore").read_text().splitlines()
    # The setup check reads the line from the README; it holds no copy that could drift.
    check = (ROOT / "tools" / "setup_check.sh").read_text()
    assert "README.md" in check and setup not in check


def test_the_lighter_command_is_the_test_environment_without_torch():
    tomllib = pytest.importorskip("tomllib")
    text = README.read_text()
    assert ".venv/bin/hatch run no-torch:test" in text
    envs = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["hatch"]["envs"]
    light, full = envs["no-torch"], envs["hatch-test"]
    assert light["template"] == "hatch-test" and "test" in light["scripts"]
    assert "-p tests.without_torch" in light["scripts"]["test"]
    assert any(d.startswith("torch") for d in full["extra-dependencies"])
    assert not any(d.startswith("torch") for d in light["extra-dependencies"])
    assert sorted(light["extra-dependencies"]) == sorted(
        d for d in full["extra-dependencies"] if not d.startswith("torch"))
