#!/usr/bin/env bash
# Installs what nlbd needs on Debian 12 (as root, or through sudo) and builds it.
#   scripts/setup.sh [BUILD_DIR]      (default: build)
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-build}

packages=(
  g++ meson ninja-build pkg-config
  libdpdk-dev dpdk
  dpdk-dev          # dpdk-testpmd (benchmark smoke test), dpdk-telemetry.py (telemetry suite)
  libssl-dev libhwloc-dev libtomlplusplus-dev
  libgtest-dev libbenchmark-dev libpcap-dev
  clang libclang-rt-14-dev
  iproute2 tcpdump python3
  socat ethtool curl
  nginx-light openssl jq nftables
  bird2             # tests/scaleout, scripts/lab_routed.sh: BIRD 2 as the routing daemon (docs/scale-out.md)
  # tests/package: dpkg-buildpackage (build-essential is implied by every
  # Build-Depends), lintian, systemd-analyze, man, YAML for the alert rules
  build-essential debhelper lintian systemd man-db python3-yaml git
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}" >&2
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -qq
  $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

cd "$here"
if [ ! -f "$build/build.ninja" ]; then
  meson setup "$build" --buildtype=release >/dev/null
fi
ninja -C "$build"
