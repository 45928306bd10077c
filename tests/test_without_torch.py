"""tests/without_torch.py, the plugin of ``hatch run no-torch:test``: without PyTorch, its
reference checks are left out with one line, not a skip line each."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

_FILES = {
    "test_whole_module.py": """
        import pytest
        torch = pytest.importorskip("torch", reason="PyTorch (CPU) is the reference")
        def test_a(): pass
        def test_b(): pass
    """,
    "test_some_tests.py": """
        import pytest
        def test_needs_it():
            pytest.importorskip("torch")
        def test_other_skip():
            pytest.skip("not for this reason")
        def test_plain(): pass
    """,
}


def _run(tmp_path: Path, torch_hidden: bool) -> subprocess.CompletedProcess:
    for name, text in _FILES.items():
        (tmp_path / name).write_text(textwrap.dedent(text))
    (tmp_path / "pytest.ini").write_text("[pytest]\n")
    hide = "sys.modules['torch'] = None; " if torch_hidden else ""
    code = (f"import sys; {hide}import pytest; sys.exit(pytest.main(['-ra', '-p', "
            f"'tests.without_torch', '-p', 'no:randomly', '-p', 'no:cacheprovider', "
            f"'--rootdir', {str(tmp_path)!r}, '-c', {str(tmp_path / 'pytest.ini')!r}, "
            f"{str(tmp_path)!r}]))")
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=ROOT, timeout=120)


def test_without_torch_one_line_replaces_the_skips(tmp_path):
    result = _run(tmp_path, torch_hidden=True)
    assert result.returncode == 0, result.stdout
    lines = result.stdout.splitlines()
    assert [line for line in lines if "PyTorch is not installed" in line] == [
        "PyTorch is not installed: left out 1 test modules and 1 tests that compare with it "
        "(`hatch test` runs them)"]
    skipped = [line for line in lines if line.startswith("SKIPPED")]
    assert len(skipped) == 1 and "not for this reason" in skipped[0]  # other skips stay
    assert "1 passed, 1 skipped, 1 needs torch" in lines[-1]


def test_with_torch_the_plugin_does_nothing(tmp_path):
    pytest.importorskip("torch")
    result = _run(tmp_path, torch_hidden=False)
    assert "PyTorch is not installed" not in result.stdout
    assert "4 passed, 1 skipped in" in result.stdout.splitlines()[-1]
