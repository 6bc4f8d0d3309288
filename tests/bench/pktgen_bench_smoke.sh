#!/usr/bin/env bash
# Smoke test of scripts/pktgen_bench.sh (suite bench_smoke): its fallback path
# (dpdk-testpmd txonly as the generator, nlbd's wire port a net_memif server)
# for 3 s. Passes when the script exits 0 and nlbd received more than 0 frames
# from the generator; exits 77 (skip) when this machine cannot run it (no
# dpdk-testpmd, not root, or net_memif cannot come up here).
#   pktgen_bench_smoke.sh SOURCE_ROOT BUILD_ROOT
set -uo pipefail
src=${1:?source root}
build=${2:?build root}
skip() { echo "SKIP: $*"; exit 77; }

command -v dpdk-testpmd >/dev/null || skip "dpdk-testpmd not installed (the generator of the fallback path)"
(( EUID == 0 )) || skip "needs root (DPDK --no-huge EAL, memif sockets)"
nlbd=${NLBD:-$build/src/daemon/nlbd}
[[ -x $nlbd ]] || { echo "FAIL: no nlbd executable at $nlbd"; exit 1; }

out=$(mktemp -d "${TMPDIR:-/tmp}/nlbd-bench-smoke.XXXXXX")
trap 'rm -rf "$out"' EXIT
# The fallback path is what is tested: never a Pktgen-DPDK from the caller.
env -u PKTGEN NLBD="$nlbd" timeout -k 5 50 "$src/scripts/pktgen_bench.sh" --seconds 3 \
    --result "$out/results.txt" "$build" >"$out/stdout" 2>"$out/stderr"
rc=$?
cat "$out/stdout" "$out/stderr"
(( rc == 77 )) && skip "net_memif cannot work on this machine (see above)"
(( rc == 0 )) || { echo "FAIL: pktgen_bench.sh exited $rc"; exit 1; }
grep -q 'falling back to dpdk-testpmd' "$out/stderr" || { echo "FAIL: the fallback was not announced"; exit 1; }
rx=$(sed -n 's/^nlbd_rx_packets=//p' "$out/results.txt")
gen=$(sed -n 's/^generated_packets=//p' "$out/results.txt")
[[ $rx =~ ^[0-9]+$ ]] || { echo "FAIL: no nlbd_rx_packets in the results file"; exit 1; }
(( rx > 0 )) || { echo "FAIL: nlbd received no frames (generator sent ${gen:-?})"; exit 1; }
echo "PASS: nlbd received $rx frames over net_memif (generator sent ${gen:-?})"
