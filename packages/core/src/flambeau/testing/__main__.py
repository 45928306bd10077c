"""``python -m flambeau.testing DEVICE [pytest args]``: run the conformance kit on DEVICE."""

from __future__ import annotations

import importlib
import sys


def main(argv: list[str] | None = None) -> int:
    """Run every check module of the kit on the named device; return pytest's exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0].startswith("-"):
        print(__doc__.strip(), file=sys.stderr)
        print("example: python -m flambeau.testing cpu -q", file=sys.stderr)
        return 2
    import pytest

    from . import CHECK_MODULES

    files = [importlib.import_module(m).__file__ for m in CHECK_MODULES]
    return int(
        pytest.main(
            [*files, "-p", "flambeau.testing.plugin", "--flambeau-device", argv[0], *argv[1:]]
        )
    )


if __name__ == "__main__":
    sys.exit(main())
