"""What doctest mode collects (pyproject.toml turns it on for the whole run).

- Under ``tests/``, test files only: helper modules there are not documentation, and some
  must not be imported into the run (``cuda_emulation.py`` puts a stand-in for cupy in
  ``sys.modules``; ``typing/`` holds scripts for mypy).
- Under the packages' ``src/`` folders, every module, but for those that import an
  optional GPU library at their top where it is missing, as in CI (flambeau-cuda's
  kernels import cupy): the run's summary names them.
"""

from __future__ import annotations

import ast
import fnmatch
import importlib.util
import sys
from pathlib import Path

import pytest

#: Libraries that a package may need at import and CI does not install (no GPU).
OPTIONAL_IMPORTS = ("cupy", "cupyx")

_left_out: list[str] = []


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    if collection_path.suffix != ".py":
        return None
    if collection_path.is_relative_to(config.rootpath / "tests"):
        patterns = [*config.getini("python_files"), "conftest.py"]
        return not any(fnmatch.fnmatch(collection_path.name, p) for p in patterns) or None
    missing = [name for name in sorted(_top_level_imports(collection_path))
               if name in OPTIONAL_IMPORTS and not _installed(name)]
    if not missing:
        return None
    _left_out.append(f"{collection_path.relative_to(config.rootpath)} "
                     f"(needs {', '.join(missing)})")
    return True


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if _left_out:
        terminalreporter.write_line("doctests not collected, a library is missing: "
                                    + "; ".join(sorted(set(_left_out))))


def _installed(name: str) -> bool:
    # A stand-in put in sys.modules (tests/cuda_emulation.py) has no spec to find.
    return name in sys.modules or importlib.util.find_spec(name) is not None


def _top_level_imports(path: Path) -> set[str]:
    names = set()
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module.split(".")[0])
    return names
