"""``python -m flambeau.testing DEVICE [pytest args]``: run the conformance kit on DEVICE.

``python -m flambeau.testing DEVICE --ranks N [pytest args]`` runs the collective checks
(``flambeau.testing.collective_checks``) on N processes under MPI instead; a DEVICE
without an index (``opencl``) gives each rank a device of its own.
"""

from __future__ import annotations

import importlib
import subprocess
import sys

#: Seconds after which mpiexec ends a multi-rank run that hangs (unless set already).
RANKS_TIMEOUT_S = 600


def main(argv: list[str] | None = None) -> int:
    """Run every check module of the kit on the named device; return pytest's exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0].startswith("-"):
        asked = argv[:1] in (["-h"], ["--help"])
        out = sys.stdout if asked else sys.stderr
        print(f"usage: python -m flambeau.testing DEVICE [--ranks N] [pytest arguments]\n\n"
              f"{__doc__.strip()}\nexample: python -m flambeau.testing cpu -q", file=out)
        return 0 if asked else 2
    try:
        import pytest
    except ImportError:
        print('the conformance kit runs on pytest, which is not installed: '
              'pip install "flambeau[testing]"', file=sys.stderr)
        return 2
    if "--ranks" in argv:
        return _on_ranks(argv)

    from . import CHECK_MODULES

    files = [importlib.import_module(m).__file__ for m in CHECK_MODULES]
    return int(
        pytest.main(
            [*files, "-p", "flambeau.testing.plugin", "--flambeau-device", argv[0], *argv[1:]]
        )
    )


def _on_ranks(argv: list[str]) -> int:
    """The collective checks on ``--ranks N`` processes: ``mpiexec ... -m pytest``."""
    from ..distributed import launch
    from ..errors import DistributedError
    from . import RANK_CHECK_MODULES

    at = argv.index("--ranks")
    rest = argv[1:at] + argv[at + 2:]
    try:
        ranks = launch.parse_args(["-n", argv[at + 1] if at + 1 < len(argv) else "", "x"])[0]
        command = launch.build_command(ranks, [
            "-m", "pytest", *(importlib.import_module(m).__file__ for m in RANK_CHECK_MODULES),
            "-p", "flambeau.testing.plugin",
            # every rank runs the checks in one order (pytest-randomly would shuffle them
            # per rank) and the ranks share no cache
            "-p", "no:randomly", "-p", "no:cacheprovider", "--flambeau-device", argv[0],
            *rest])
    except DistributedError as exc:
        print(exc, file=sys.stderr)
        return 2
    env = launch.rank_environment(ranks)
    env.setdefault("MPIEXEC_TIMEOUT", str(RANKS_TIMEOUT_S))
    return subprocess.call(command, env=env)


if __name__ == "__main__":
    sys.exit(main())
