#!/usr/bin/env bash
# Installs what is missing, builds, and runs every test: unit tests (no EAL),
# replay tests (the real nlbd on net_pcap), config checks and a bounded fuzz run.
#   scripts/test.sh [BUILD_DIR]       (default: build)
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-build}
cd "$here"
scripts/setup.sh "$build"
# Tests run one at a time: replay tests start DPDK processes that poll, and the
# CI machine has two cores.
meson test -C "$build" --print-errorlogs --num-processes 1
