#!/usr/bin/env bash
# The defaults a new operator meets (docs/nlbctl.md, docs/install.md):
#  - nlbd started with only --config (no socket option) and a bare
#    `nlbctl query` find each other: nlbd listens on
#    /run/nlbd/nlbd-<host id>.sock and points /run/nlbd/nlbd.sock, nlbctl's
#    default, at it (removed again when nlbd stops);
#  - nlbd without --config reads /etc/nlbd/cluster.toml and says so when it
#    is missing (this test never writes /etc);
#  - every program's --help exits 0.
# Uses host id 63 so that its socket names meet no other daemon; refuses to
# run when /run/nlbd/nlbd.sock is already a live daemon's (it never replaces one).
#   tests/systemd/test_defaults.sh BUILDDIR
set -euo pipefail
build=$(cd "${1:?usage: $0 BUILDDIR}" && pwd)
nlbd=${NLBD:-$build/src/daemon/nlbd}
nlbctl=${NLBCTL:-$build/src/ctl/nlbctl}
for f in "$nlbd" "$nlbctl"; do [[ -x $f ]] || { echo "test_defaults: $f not built" >&2; exit 1; }; done

work=$(mktemp -d "${TMPDIR:-/tmp}/nlbd-defaults.XXXXXX")
pid=
cleanup() {
    if [[ -n $pid ]]; then kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi
    rm -rf "$work"
}
trap cleanup EXIT
failures=0
pass() { echo "ok   - $*"; }
fail() { echo "FAIL - $*"; failures=$((failures + 1)); }

if [[ -S /run/nlbd/nlbd.sock ]] && "$nlbctl" --timeout 1000 params > /dev/null 2>&1; then
    echo "test_defaults: a daemon already answers on /run/nlbd/nlbd.sock; stop it first" >&2
    exit 1
fi

cat > "$work/cluster.toml" <<CFG
[cluster]
name = "defaults.test"
vips = ["192.0.2.10"]
static_members = [63]

[host]
id = 63

[ports.wire]
device = "net_null0,no-rx=1"

[ports.local]
device = "net_null1,no-rx=1"

[dataplane]
idle_policy = "adaptive"
CFG
timeout -k 5 60 "$nlbd" --config "$work/cluster.toml" --run-for 40 \
    -- --no-huge -m 256 --no-shconf --no-pci --log-level=lib.eal:error > "$work/nlbd.log" 2>&1 &
pid=$!
for _ in $(seq 1 100); do [[ -S /run/nlbd/nlbd-63.sock ]] && break; sleep 0.1; done
[[ -S /run/nlbd/nlbd-63.sock ]] && pass "nlbd listens on /run/nlbd/nlbd-63.sock" \
    || { cat "$work/nlbd.log"; fail "no /run/nlbd/nlbd-63.sock"; }
set +e
out=$("$nlbctl" query 2>&1); rc=$?
set -e
[[ $rc == 0 && $out == *"Cluster defaults.test"* ]] && pass "bare nlbctl query reaches it" \
    || fail "bare nlbctl query: exit $rc: $out"
kill -TERM "$pid"; wait "$pid" 2>/dev/null || true; pid=
[[ ! -e /run/nlbd/nlbd.sock && ! -L /run/nlbd/nlbd.sock ]] && pass "nlbctl's default link is removed at exit" \
    || fail "/run/nlbd/nlbd.sock left behind: $(ls -l /run/nlbd/nlbd.sock)"

# No --config: /etc/nlbd/cluster.toml, named when missing.
if [[ ! -e /etc/nlbd/cluster.toml ]]; then
    set +e
    out=$("$nlbd" --check-config 2>&1); rc=$?
    set -e
    [[ $rc == 1 && $out == */etc/nlbd/cluster.toml* ]] && pass "without --config nlbd reads /etc/nlbd/cluster.toml" \
        || fail "nlbd without --config: exit $rc: $out"
else
    out=$("$nlbd" --check-config 2>&1) || true
    [[ $out == *"config /etc/nlbd/cluster.toml"* || $out == */etc/nlbd/cluster.toml* ]] \
        && pass "without --config nlbd reads /etc/nlbd/cluster.toml" || fail "nlbd without --config: $out"
fi

# --help everywhere.
for p in "$nlbd" "$nlbctl" "$build"/src/tools/nlbd-pcapgen "$build"/src/tools/nlbd-replay-check \
         "$build"/src/tools/nlbd-pcap-split; do
    if "$p" --help > "$work/help" 2>&1 && [[ -s $work/help ]]; then pass "$(basename "$p") --help exits 0"
    else fail "$(basename "$p") --help: exit $?, $(head -2 "$work/help")"; fi
done

(( failures == 0 )) || { echo "test_defaults: $failures check(s) failed"; exit 1; }
echo "test_defaults: all checks passed"
