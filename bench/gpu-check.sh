#!/usr/bin/env bash
# The prepared GPU check of flambeau-cuda (issue 7), for a fresh NVIDIA machine with
# Python 3.12, cupy-cuda13x and torch preinstalled and no network:
#
#   1. install flambeau, flambeau-cpu and flambeau-cuda from this checkout without
#      dependencies (pip --no-deps --no-build-isolation --no-index when hatchling is
#      there; else the sources in place on PYTHONPATH, with their entry points registered
#      by generated .dist-info folders);
#   2. in parallel: the conformance kit on cuda:0 (one process per check module), the CUDA
#      tests (tests/test_cuda*.py), the D2L chapter tests with FLAMBEAU_DEVICE=cuda:0, and
#      flambeau.distributed at world size 1 on cuda:0 (bench/nccl_single_gpu.py): the NCCL
#      engine driven directly (no MPI needed), then, where mpi4py is installed, the process
#      group with backend "cuda:nccl" and with "cuda:mpi" (the MPI host engine);
#   3. the benchmark table flambeau-cuda vs torch CUDA (bench/bench_cuda.py), printed last.
#
# Every step has a timeout; the whole run stays under 8 minutes. Exit status: 0 when every
# test step passed (missed speed targets are reported in the table, not failures).
#
# Usage: bash bench/gpu-check.sh        (PYTHON=python3.12 to pick the interpreter)
# Without a GPU, GPU_CHECK_DRY_RUN=1 runs every step on the cpu device (the benchmark
# --quick), to check the script itself.
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$PWD
PY=${PYTHON:-python3}
DEVICE=cuda:0
BENCH_ARGS=()
if [ "${GPU_CHECK_DRY_RUN:-0}" = 1 ]; then
    DEVICE=cpu
    BENCH_ARGS=(--quick)
fi
BUDGET=465                  # seconds for the whole run (the limit is 480)
BENCH_RESERVE=150           # seconds kept for the benchmark after the tests
START=$(date +%s)
WORK=$(mktemp -d "${TMPDIR:-/tmp}/flambeau-gpu-check.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
FAILED=()

elapsed() { echo $(( $(date +%s) - START )); }
section() { printf '\n==================== %s  [t+%ss]\n' "$1" "$(elapsed)"; }
left() { echo $(( BUDGET - $(elapsed) )); }

# --- 1. environment -------------------------------------------------------------------------
section "environment"
[ "$DEVICE" = cpu ] && echo "DRY RUN: every step on the cpu device (GPU_CHECK_DRY_RUN=1)"
echo "checkout: $ROOT ($(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo 'no git'))"
timeout 30 nvidia-smi --query-gpu=index,name,memory.total,driver_version \
    --format=csv,noheader 2>&1 || echo "(nvidia-smi unavailable)"
"$PY" - <<'EOF'
import importlib, importlib.metadata, platform
print(f"python {platform.python_version()} ({platform.python_implementation()})")
for name in ("numpy", "pluggy", "pytest", "hatchling", "cupy", "torch"):
    try:
        module = importlib.import_module(name)
        try:
            version = module.__version__
        except AttributeError:
            version = importlib.metadata.version(name)
        extra = f", cuda available: {module.cuda.is_available()}" if name == "torch" else ""
        print(f"  {name:<10} {version}{extra}")
    except Exception as exc:
        print(f"  {name:<10} MISSING ({type(exc).__name__}: {exc})")
EOF

# --- 2. install -----------------------------------------------------------------------------
section "install flambeau from this checkout (no network, no dependencies)"
PACKAGES=("$ROOT/packages/core" "$ROOT/packages/backend-cpu" "$ROOT/packages/backend-cuda")

register_in_place() {
    # The sources on PYTHONPATH; entry points (how flambeau finds its backends) through
    # .dist-info folders generated from each pyproject.toml.
    local site="$WORK/site"
    mkdir -p "$site"
    "$PY" - "$site" "${PACKAGES[@]}" <<'EOF'
import sys
from pathlib import Path

site, folders = Path(sys.argv[1]), [Path(f) for f in sys.argv[2:]]
FALLBACK = {"flambeau": {}, "flambeau-cpu": {"cpu": "flambeau_cpu.plugin"},
            "flambeau-cuda": {"cuda": "flambeau_cuda.plugin"}}
for folder in folders:
    try:
        import tomllib
        project = tomllib.loads((folder / "pyproject.toml").read_text())["project"]
        name, version = project["name"], project["version"]
        backends = project.get("entry-points", {}).get("flambeau.backends", {})
    except ImportError:  # Python < 3.11: the entry points as of this script
        name = {"core": "flambeau"}.get(folder.name, "flambeau-" + folder.name.split("-")[-1])
        version, backends = "0+local", FALLBACK[name]
    info = site / f"{name.replace('-', '_')}-{version}.dist-info"
    info.mkdir(exist_ok=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
    lines = ["[flambeau.backends]"] + [f"{k} = {v}" for k, v in backends.items()]
    (info / "entry_points.txt").write_text("\n".join(lines) + "\n")
    print(f"  registered {name} {version} from {folder}/src")
EOF
    export PYTHONPATH="$ROOT/packages/core/src:$ROOT/packages/backend-cpu/src:$ROOT/packages/backend-cuda/src:$site${PYTHONPATH:+:$PYTHONPATH}"
}

if "$PY" -c "import hatchling" 2>/dev/null \
        && timeout 180 "$PY" -m pip install --no-deps --no-build-isolation --no-index \
            --disable-pip-version-check --quiet "${PACKAGES[@]}"; then
    echo "installed with pip"
else
    echo "pip install not possible here (no hatchling, or pip refused): sources in place"
    register_in_place
fi
if ! "$PY" -c "import flambeau, flambeau_cpu, flambeau_cuda" 2>"$WORK/import.log"; then
    cat "$WORK/import.log"
    echo "FATAL: flambeau does not import (a dependency missing? it needs numpy and pluggy)"
    exit 1
fi
timeout 120 "$PY" -m flambeau devices
GPUS=$(timeout 120 "$PY" -c "import flambeau; print(flambeau.cuda.device_count())")
if [ "$GPUS" -eq 0 ] && [ "$DEVICE" != cpu ]; then
    echo "FATAL: flambeau sees no CUDA device (the reason is printed above); nothing to check"
    exit 1
fi

# --- 3. tests, in parallel ----------------------------------------------------------------
run_bg() {  # NAME LIMIT COMMAND...: run in the background, log to $WORK/NAME.log
    local name=$1 limit=$2
    shift 2
    (
        if timeout --kill-after=10 "$limit" "$@" >"$WORK/$name.log" 2>&1; then
            echo 0 >"$WORK/$name.rc"
        else
            echo $? >"$WORK/$name.rc"
        fi
    ) &
}

if "$PY" -c "import pytest" 2>/dev/null; then
    TEST_LIMIT=$(( $(left) - BENCH_RESERVE ))
    [ "$TEST_LIMIT" -gt 300 ] && TEST_LIMIT=300
    section "tests on $DEVICE, in parallel (each limited to ${TEST_LIMIT}s)"
    KIT=$("$PY" -c "import flambeau.testing, os; print(os.path.dirname(flambeau.testing.__file__))")
    STEPS=()
    for module in kernel_checks op_checks fused_checks; do
        files=("$KIT/$module.py")  # op_checks is a package: its modules, not __init__.py
        [ -d "$KIT/$module" ] && files=("$KIT/$module"/[a-z]*.py)
        run_bg "kit-$module" "$TEST_LIMIT" "$PY" -m pytest "${files[@]}" -q \
            -p no:cacheprovider -p flambeau.testing.plugin --flambeau-device "$DEVICE"
        STEPS+=("kit-$module")
    done
    run_bg cuda-tests "$TEST_LIMIT" "$PY" -m pytest tests/test_cuda.py tests/test_cuda_sources.py \
        -q -rs -p no:cacheprovider
    STEPS+=(cuda-tests)
    run_bg "d2l-on-$DEVICE" "$TEST_LIMIT" env FLAMBEAU_DEVICE="$DEVICE" "$PY" -m pytest \
        tests/test_d2l_builders_guide.py -q -p no:cacheprovider
    STEPS+=("d2l-on-$DEVICE")
    run_bg "distributed-on-$DEVICE" "$TEST_LIMIT" "$PY" bench/nccl_single_gpu.py \
        --device "$DEVICE"
    STEPS+=("distributed-on-$DEVICE")
    wait
    for step in "${STEPS[@]}"; do
        rc=$(cat "$WORK/$step.rc" 2>/dev/null || echo "?")
        if [ "$rc" = 0 ]; then
            section "$step: passed"
            case $step in  # its PASS/SKIP lines are the report
                distributed-*) cat "$WORK/$step.log" ;;
                *) tail -n 4 "$WORK/$step.log" ;;
            esac
        else
            if [ "$rc" = 124 ] || [ "$rc" = 137 ]; then
                rc="$rc (timed out after ${TEST_LIMIT}s)"
            fi
            section "$step: FAILED, exit $rc"
            tail -n 80 "$WORK/$step.log"
            FAILED+=("$step")
        fi
    done
else
    section "tests SKIPPED: pytest is not installed (no network to install it)"
    FAILED+=("tests-not-run")
fi

section "summary of the checks"
if [ ${#FAILED[@]} -eq 0 ]; then
    echo "every test step passed"
else
    echo "failed: ${FAILED[*]}"
fi

# --- 4. benchmark (printed last) --------------------------------------------------------------
BENCH_LIMIT=$(( $(left) ))
[ "$BENCH_LIMIT" -lt 60 ] && BENCH_LIMIT=60
section "benchmark flambeau-cuda vs torch CUDA on $DEVICE (limit ${BENCH_LIMIT}s)"
bench_rc=0
timeout --kill-after=10 "$BENCH_LIMIT" "$PY" -u bench/bench_cuda.py --device "$DEVICE" \
    ${BENCH_ARGS[@]+"${BENCH_ARGS[@]}"} || bench_rc=$?
if [ "$bench_rc" -gt 1 ]; then
    echo "benchmark FAILED, exit $bench_rc (t+$(elapsed)s)"
    exit 1
fi
[ ${#FAILED[@]} -eq 0 ]
