"""Count code lines and hold the line budget of STYLE.md; exit 1 above it.

Code lines are the lines of Python source that hold code: blank lines, comment lines and
docstrings (of modules, classes and functions) do not count. Every package's ``src``
folder under ``packages/`` and ``examples/`` is counted, per file and per package; the
core is counted in three parts: its runtime; the training utilities that sit on top of it
(``flambeau/utils`` and ``flambeau/distributed``: data loading and multi-process training,
which DESIGN.md places above nn/optim); and its conformance kit (``flambeau/testing``),
which is test code shipped to backend authors.

Budget: no file over :data:`FILE_BUDGET` code lines, the core runtime under
:data:`CORE_BUDGET` and the training utilities under :data:`UTILS_BUDGET`. (The runtime
budget was 9,000 when the house was tidied; hooks, norms and gradient clipping, then the
breadth of D2L's later chapters (attention, transformer, sorting, einsum, schedulers, bf16)
raised it to 12,500.) Run it as ``python tools/loc.py`` (``--quiet``: totals only).
"""

from __future__ import annotations

import argparse
import ast
import io
import sys
import tokenize
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FILE_BUDGET = 800
CORE_BUDGET = 12_500
UTILS_BUDGET = 3_500
KIT = Path("packages/core/src/flambeau/testing")
UTILS = (Path("packages/core/src/flambeau/utils"), Path("packages/core/src/flambeau/distributed"))

_NOT_CODE = {tokenize.COMMENT, tokenize.NL, tokenize.NEWLINE, tokenize.INDENT,
             tokenize.DEDENT, tokenize.ENCODING, tokenize.ENDMARKER}


def code_lines(source: str) -> int:
    """The number of lines of ``source`` that hold code, docstrings not counted."""
    lines: set[int] = set()
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if token.type not in _NOT_CODE:
            lines.update(range(token.start[0], token.end[0] + 1))
    return len(lines - _docstring_lines(ast.parse(source)))


def _docstring_lines(tree: ast.AST) -> set[int]:
    lines: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            first = node.body[0] if node.body else None
            if (isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant)
                    and isinstance(first.value.value, str)):
                lines.update(range(first.lineno, first.end_lineno + 1))
    return lines


def count(root: Path = ROOT) -> dict[str, dict[Path, int]]:
    """Code lines per file (relative to ``root``), grouped by package."""
    groups: dict[str, dict[Path, int]] = {}
    for src in sorted([*root.glob("packages/*/src"), *root.glob("examples/*/src")]):
        for path in sorted(src.rglob("*.py")):
            rel = path.relative_to(root)
            package = str(src.parent.relative_to(root))
            if rel.is_relative_to(KIT):
                package += " (conformance kit)"
            elif any(rel.is_relative_to(part) for part in UTILS):
                package += " (training utilities)"
            elif rel.is_relative_to("packages/core"):
                package += " (runtime)"
            groups.setdefault(package, {})[rel] = code_lines(path.read_text(encoding="utf-8"))
    return groups


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quiet", action="store_true", help="print the totals only")
    args = parser.parse_args(argv)
    groups = count()
    if not args.quiet:
        for files in groups.values():
            for path, n in files.items():
                print(f"{n:7,d}  {path}")
        print()
    print(f"{'code lines':>10}  {'files':>5}  package")
    for package, files in groups.items():
        print(f"{sum(files.values()):10,d}  {len(files):5d}  {package}")
    problems = [f"{path}: {n:,} code lines, over the {FILE_BUDGET} of one file (split it "
                f"along its sections)" for files in groups.values()
                for path, n in files.items() if n > FILE_BUDGET]
    core = sum(groups.get("packages/core (runtime)", {}).values())
    if core >= CORE_BUDGET:
        problems.append(f"core runtime: {core:,} code lines, the budget is under "
                        f"{CORE_BUDGET:,} (remove or compose before adding)")
    utils = sum(groups.get("packages/core (training utilities)", {}).values())
    if utils >= UTILS_BUDGET:
        problems.append(f"core training utilities: {utils:,} code lines, the budget is under "
                        f"{UTILS_BUDGET:,}")
    for problem in problems:
        print(f"over budget: {problem}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
