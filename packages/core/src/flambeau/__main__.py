"""The ``flambeau`` command: ``flambeau devices``, ``flambeau demo [--device NAME]`` and
``flambeau run -n N script.py`` (many processes under MPI); ``flambeau --version``."""

from __future__ import annotations

import argparse
import sys

from . import __version__, _config, _device, _dtypes, backends


def _format_bytes(n: int | None) -> str:
    return "memory unknown" if n is None else f"{n / 2**30:.1f} GiB"


def print_devices(out=sys.stdout) -> int:
    """Print installed backends, their devices and the plugins that failed; return 0."""
    installed = backends.available()
    print(f"flambeau {__version__}, contract version {backends.CONTRACT_VERSION}", file=out)
    if installed:
        print("backends:", file=out)
    elif _config.plugin_autoload_disabled():
        var = _config.DISABLE_PLUGIN_AUTOLOAD_VAR
        print(f"backends: none loaded: plugin autoload is off ({var} is set); unset it to "
              "load the installed backends", file=out)
    else:
        print("backends: none installed", file=out)
    for name, backend in sorted(installed.items()):
        count = _device._safe_count(backend)
        origin = backends.REGISTRY.origin(name)
        print(f"  {name}: {count} device(s)  [{origin}, {type(backend).__module__}]", file=out)
        reason = _device.unavailable_reason(backend) if count == 0 else None
        if reason:
            print(f"    no devices: {reason}", file=out)
        for index in range(count):
            info = backend.device_info(index)
            # only what tensors can hold: a backend may list kernel-only dtypes (uint32)
            dtypes = ", ".join(str(d) for d in info.dtypes if _dtypes.is_supported(d))
            print(f"    {name}:{index}  {info.name}, {_format_bytes(info.memory_bytes)}", file=out)
            print(f"      dtypes: {dtypes}", file=out)
            if info.extra:
                print("      " + ", ".join(f"{k}: {v}" for k, v in info.extra.items()), file=out)
    failures = backends.errors()
    if failures:
        print("plugins that failed to load:", file=out)
        for failure in failures:
            print(f"  {failure}", file=out)
    if not installed and not _config.plugin_autoload_disabled():
        print('install one with: pip install "flambeau[cpu]"', file=out)
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``flambeau`` command."""
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["run"]:  # its arguments go on to mpiexec and the script: not argparse's
        from .distributed.launch import main as run

        return run(argv[1:])
    parser = argparse.ArgumentParser(prog="flambeau", description=__doc__)
    parser.add_argument("--version", action="version", version=f"flambeau {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("devices", help="list backends, devices and plugin errors")
    commands.add_parser("run", help="run a script on N processes: flambeau run -n N script.py")
    demo = commands.add_parser("demo", help="train a small model on the digits data set")
    demo.add_argument("--device", default=None, help="device name, e.g. cpu or cuda:0")
    demo.add_argument("--model", choices=("mlp", "lenet"), default="mlp")
    demo.add_argument("--epochs", type=int, default=15)
    args = parser.parse_args(argv)
    if args.command == "devices":
        return print_devices()
    from .demo import run_demo

    return run_demo(args.device, args.model, args.epochs)


if __name__ == "__main__":
    sys.exit(main())
