#!/usr/bin/env bash
# dpdk-dumpcap on a running nlbd (docs/capture.md): with hugepages nlbd runs
# with a shared EAL configuration (--file-prefix=nlbd-<host id>) and
# rte_pdump_init(), so Debian's dpdk-dumpcap, a secondary process, captures
# what the wire port receives without stopping the appliance.
#
# CI machines have no hugepages: this test reserves some for itself
# (vm.nr_hugepages raised by 256 x 2 MiB, a private hugetlbfs mount) and puts
# both back at exit. nlbd: host 62, net_null wire port (endless 64-byte
# frames), adaptive idle. Asserts: nlbd announces the capture prefix;
# dpdk-dumpcap -D lists the ports; `-i 0 -c 200` writes a pcapng with 200
# frames of 64 bytes (read back with tcpdump); nlbd serves on meanwhile and
# afterwards (its wire RX counter still grows); the capture left no
# callbacks behind (a second capture works too).
#   tests/capture/test_dumpcap.sh BUILDDIR
set -euo pipefail
build=$(cd "${1:?usage: $0 BUILDDIR}" && pwd)
nlbd=${NLBD:-$build/src/daemon/nlbd}
nlbctl=${NLBCTL:-$build/src/ctl/nlbctl}
for f in "$nlbd" "$nlbctl"; do [[ -x $f ]] || { echo "test_dumpcap: $f not built" >&2; exit 1; }; done
command -v dpdk-dumpcap > /dev/null || { echo "test_dumpcap: dpdk-dumpcap missing (package dpdk)" >&2; exit 1; }
command -v tcpdump > /dev/null || { echo "test_dumpcap: tcpdump missing" >&2; exit 1; }
[[ $(id -u) == 0 ]] || { echo "test_dumpcap: needs root (hugepages)" >&2; exit 1; }

work=$(mktemp -d "${TMPDIR:-/tmp}/nlbd-dumpcap.XXXXXX")
pages_before=$(cat /proc/sys/vm/nr_hugepages)
mounted=0
pid=
cleanup() {
    if [[ -n $pid ]]; then kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi
    if (( mounted )); then umount "$work/huge" 2>/dev/null || umount -l "$work/huge" 2>/dev/null || true; fi
    echo "$pages_before" > /proc/sys/vm/nr_hugepages 2>/dev/null || true
    rm -rf /var/run/dpdk/nlbd-62
    if [[ ${KEEP:-0} == 1 ]]; then echo "test_dumpcap: kept $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT
failures=0
pass() { echo "ok   - $*"; }
fail() { echo "FAIL - $*"; failures=$((failures + 1)); }

# Hugepages for this test only.
echo $((pages_before + 256)) > /proc/sys/vm/nr_hugepages
free=$(awk '/HugePages_Free/ { print $2 }' /proc/meminfo)
(( free >= 128 )) || { echo "test_dumpcap: could not reserve hugepages (HugePages_Free $free)" >&2; exit 1; }
mkdir -p "$work/huge"
mount -t hugetlbfs -o pagesize=2M nodev "$work/huge"
mounted=1

cat > "$work/cluster.toml" <<CFG
[cluster]
name = "dumpcap.test"
vips = ["192.0.2.10"]
static_members = [62]

[host]
id = 62

[ports.wire]
device = "net_null0,size=64"

[ports.local]
device = "net_null1,no-rx=1"

[dataplane]
idle_policy = "adaptive"
CFG
timeout -k 5 90 "$nlbd" --config "$work/cluster.toml" --run-for 60 --ctl-socket "$work/ctl.sock" \
    -- --huge-dir "$work/huge" -m 256 --no-pci --log-level=lib.eal:error > "$work/nlbd.log" 2>&1 &
pid=$!
for _ in $(seq 1 100); do [[ -S $work/ctl.sock ]] && break; kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
[[ -S $work/ctl.sock ]] || { cat "$work/nlbd.log"; echo "test_dumpcap: nlbd did not start" >&2; exit 1; }
grep -q "packet capture: dpdk-dumpcap --file-prefix=nlbd-62" "$work/nlbd.log" \
    && pass "nlbd announces the capture prefix" || fail "no capture line: $(grep -i 'capture\|EAL args' "$work/nlbd.log")"
grep -q -- "--file-prefix=nlbd-62" "$work/nlbd.log" && ! grep -q -- "--in-memory" "$work/nlbd.log" \
    && pass "EAL runs with a shared configuration (nlbd-62)" || fail "EAL args: $(grep 'EAL args' "$work/nlbd.log")"

# The original lengths of a pcapng's enhanced packet blocks: "LEN x COUNT", ...
epb_lengths() {
    python3 - "$1" <<'PY'
import collections, struct, sys
d = open(sys.argv[1], "rb").read()
lens = collections.Counter()
off = 0
while off + 12 <= len(d):
    btype, blen = struct.unpack_from("<II", d, off)
    if blen < 12:
        break
    if btype == 6:  # enhanced packet block: if id, ts hi, ts lo, caplen, origlen
        lens[struct.unpack_from("<I", d, off + 24)[0]] += 1
    off += blen
print(", ".join(f"{k} x {v}" for k, v in sorted(lens.items())) or "none")
PY
}
rx() { "$nlbctl" --socket "$work/ctl.sock" --json stats | python3 -c 'import json,sys; print(json.load(sys.stdin)["ports"]["wire"]["rx_packets"])'; }

set +e
list=$(timeout 30 dpdk-dumpcap --file-prefix=nlbd-62 -D 2>&1); rc=$?
set -e
[[ $rc == 0 && $list == *net_null0* ]] && pass "dpdk-dumpcap -D lists the wire port" || fail "dpdk-dumpcap -D: exit $rc: $list"

for round in 1 2; do
    rx0=$(rx)
    set +e
    out=$(timeout 30 dpdk-dumpcap --file-prefix=nlbd-62 -i 0 -c 200 -q -w "$work/cap$round.pcapng" 2>&1); rc=$?
    set -e
    [[ $rc == 0 ]] && pass "capture $round: dpdk-dumpcap -i 0 -c 200 exits 0" || fail "capture $round: exit $rc: $out"
    # dumpcap stops after the burst that reached the count: at least 200.
    n=$(tcpdump -nn -r "$work/cap$round.pcapng" 2>/dev/null | wc -l)
    lens=$(epb_lengths "$work/cap$round.pcapng")
    (( n >= 200 && n <= 200 + 64 )) && [[ $lens == "64 x $n" ]] \
        && pass "capture $round: $n frames, all of 64 bytes, in the pcapng" \
        || fail "capture $round: $n frames (tcpdump), lengths: $lens"
    sleep 0.3
    rx1=$(rx)
    (( rx1 > rx0 )) && pass "capture $round: nlbd keeps receiving ($rx0 -> $rx1)" || fail "capture $round: rx stuck at $rx0"
done
kill -0 "$pid" 2>/dev/null && pass "nlbd still runs" || fail "nlbd ended during the capture"

kill -TERM "$pid"; wait "$pid" 2>/dev/null || true; pid=
(( failures == 0 )) || { tail -20 "$work/nlbd.log"; echo "test_dumpcap: $failures check(s) failed"; exit 1; }
echo "test_dumpcap: all checks passed"
