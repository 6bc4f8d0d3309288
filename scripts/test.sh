#!/usr/bin/env bash
# Installs what is missing, builds, and runs every test: unit tests (no EAL),
# replay tests (the real nlbd on net_pcap), config checks and a bounded fuzz run.
#   scripts/test.sh [BUILD_DIR]       (default: build)
# Run as root (as CI does), a skipped test is a failure: every test skips (77)
# only for something setup.sh installs or root provides, so a skip there means
# a missing install step, not a passing test.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-build}
cd "$here"
scripts/setup.sh "$build"

# A stale log from an earlier run must not be read as this run's results.
testlog="$build/meson-logs/testlog.json"
rm -f "$testlog"

# Tests run one at a time: replay tests start DPDK processes that poll, and the
# CI machine has two cores.
rc=0
meson test -C "$build" --print-errorlogs --num-processes 1 || rc=$?

if [ "$(id -u)" -eq 0 ]; then
  if [ ! -f "$testlog" ]; then
    echo "test.sh: $testlog was not written; cannot tell whether a test was skipped" >&2
    exit $((rc ? rc : 1))
  fi
  skipped=$(python3 - "$testlog" <<'PY'
import json, sys
path = sys.argv[1]
with open(path) as f:
    for n, line in enumerate(f, 1):
        line = line.strip()
        if not line:
            continue
        try:
            t = json.loads(line)
        except ValueError as e:
            sys.exit(f"{path}:{n}: not JSON: {e}")
        if t.get("result") == "SKIP":
            print(t.get("name", f"<unnamed test, {path}:{n}>"))
PY
  ) || { echo "test.sh: cannot read $testlog" >&2; exit $((rc ? rc : 1)); }
  if [ -n "$skipped" ]; then
    {
      echo "test.sh: FAIL: skipped while running as root (a skip here is a missing"
      echo "install step: add the package to scripts/setup.sh, do not accept the skip):"
      while IFS= read -r name; do echo "  SKIP $name"; done <<<"$skipped"
      echo "test.sh: see each test's output in $build/meson-logs/testlog.txt"
    } >&2
    exit $((rc ? rc : 1))
  fi
fi
exit "$rc"
