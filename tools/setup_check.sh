#!/usr/bin/env bash
# The newcomer's setup check: run the README's first quick-start line in a fresh clone with
# the system's externally managed Python (PEP 668, e.g. Debian's /usr/bin/python3) first
# on PATH, and check that the demo completes.
#
#   tools/setup_check.sh            # clone HEAD, then lay uncommitted edits on top
#
# The line is read from the clone's README.md, never copied here. Hatch keeps its
# environments in a temporary data folder (removed afterwards); uv's download cache is
# shared, so a warm run installs from disk. Skips (exit 0, with a message) where there is
# no system python3 >= 3.10 carrying the EXTERNALLY-MANAGED marker.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
system_python="${SETUP_CHECK_PYTHON:-/usr/bin/python3}"

if [ ! -x "$system_python" ]; then
  echo "setup check skipped: no system interpreter at $system_python"; exit 0
fi
marker="$("$system_python" -c 'import os, sys, sysconfig
ok = sys.version_info >= (3, 10)
path = os.path.join(sysconfig.get_path("stdlib"), "EXTERNALLY-MANAGED")
print(path if ok and os.path.exists(path) else "")')"
if [ -z "$marker" ]; then
  echo "setup check skipped: $system_python is older than 3.10 or not externally managed"
  exit 0
fi

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
git clone --quiet "$root" "$work/clone"
# What is checked is what the developer sees: uncommitted edits and new files go on top.
git -C "$root" ls-files -z --modified --others --exclude-standard \
  | (cd "$root" && tar --null --ignore-failed-read -T - -cf -) | tar -C "$work/clone" -xf -

mkdir "$work/bin"
ln -s "$system_python" "$work/bin/python3"
ln -s "$system_python" "$work/bin/python"
export PATH="$work/bin:$PATH"
export HATCH_DATA_DIR="$work/hatch-data"
unset VIRTUAL_ENV PYTHONPATH
echo "setup check: $(python3 --version) ($system_python, $marker) in $work/clone"

cd "$work/clone"
line="$(sed -n '/^## Quick start/,/^## /p' README.md | sed -n '/^```sh$/,/^```$/p' | sed -n 2p)"
[ -n "$line" ] || { echo "setup check: no quick-start line found in README.md"; exit 1; }
# The scenario is real: installing into this interpreter is refused.
if python3 -m pip install --dry-run --quiet hatch >/dev/null 2>&1; then
  echo "setup check: note: pip install into $system_python was not refused"
fi
echo "setup check: running the README's first line: $line"
started=$(date +%s)
bash -euo pipefail -c "$line" 2>&1 | tee "$work/demo.log"
echo "setup check: the first line took $(( $(date +%s) - started )) s"
grep -q "test accuracy:" "$work/demo.log" || { echo "setup check: the demo did not finish"; exit 1; }
# Idempotent: the same line again reuses the virtual environment and hatch's (warm run).
started=$(date +%s)
bash -euo pipefail -c "$line" >"$work/again.log" 2>&1 || { cat "$work/again.log"; exit 1; }
grep -q "test accuracy:" "$work/again.log" || { echo "setup check: the rerun failed"; exit 1; }
echo "setup check: the same line again (warm) took $(( $(date +%s) - started )) s"
echo "setup check: what it installed: .venv $(du -sh .venv | cut -f1)," \
  "hatch's environments $(du -sh "$HATCH_DATA_DIR" | cut -f1)"
echo "setup check: passed"
