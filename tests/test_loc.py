"""tools/loc.py: the line budget of STYLE.md holds, and the counter counts code only."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import textwrap
from pathlib import Path

TOOL = Path(__file__).resolve().parents[1] / "tools" / "loc.py"


def _tool():
    spec = importlib.util.spec_from_file_location("loc", TOOL)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_code_lines_leave_out_blanks_comments_and_docstrings():
    source = textwrap.dedent('''
        """The module's
        docstring."""

        # a comment
        x = 1  # code with a comment

        def f():
            """One line."""
            return """a string,
        not a docstring"""


        class C:
            """Doc."""

            y = 2
    ''')
    # x = 1, def f, the two lines of the return, class C, y = 2
    assert _tool().code_lines(source) == 6


def test_line_budget():
    """No file over 800 code lines, the core runtime under 9,000 (STYLE.md)."""
    result = subprocess.run([sys.executable, str(TOOL), "--quiet"], capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
