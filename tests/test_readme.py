"""The README's code stays true: its Python example runs as written."""

from __future__ import annotations

import re
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_python_example_runs(tmp_path, monkeypatch, capsys):
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)
    assert blocks, "README.md lost its Python example"
    monkeypatch.chdir(tmp_path)
    for block in blocks:
        exec(compile(block, str(README), "exec"), {"__name__": "readme"})
    assert "Total params" in capsys.readouterr().out
    assert (tmp_path / "mlp.params").stat().st_size > 0


def test_readme_quick_start_is_two_lines_and_matches_ci():
    text = README.read_text()
    quick = re.search(r"## Quick start.*?```sh\n(.*?)```", text, flags=re.S).group(1)
    lines = [line for line in quick.strip().splitlines() if line.strip()]
    assert len(lines) == 2
    ci = (README.parent / ".ci" / "run").read_text()
    test_command = lines[1].strip()
    assert test_command in ci, f"CI must run the README's test command {test_command!r}"
