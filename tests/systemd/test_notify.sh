#!/usr/bin/env bash
# systemd's notification protocol, end to end (docs/systemd.md): the real nlbd
# (one dynamic host, net_null ports, no NIC, no hugepages, two lcores: control
# and one worker) with NOTIFY_SOCKET pointing at a socket this test reads
# (notify_listen.py) and WATCHDOG_USEC=1 s. Asserts:
#  - READY=1 comes once, after the control socket exists, with MAINPID;
#  - STATUS= carries the convergence state;
#  - WATCHDOG=1 about every 0.5 s while the worker runs;
#  - nlbctl reload and SIGHUP each give RELOADING=1 then READY=1;
#  - a worker thread stalled (stall_thread.py: ptrace-stops that thread only)
#    stops the WATCHDOG=1 pings, and they resume when it runs again;
#  - SIGTERM gives STOPPING=1.
#   tests/systemd/test_notify.sh BUILDDIR
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
build=$(cd "${1:?usage: $0 BUILDDIR}" && pwd)
nlbd=${NLBD:-$build/src/daemon/nlbd}
nlbctl=${NLBCTL:-$build/src/ctl/nlbctl}
for f in "$nlbd" "$nlbctl"; do [[ -x $f ]] || { echo "test_notify: $f not built" >&2; exit 1; }; done

work=$(mktemp -d "${TMPDIR:-/tmp}/nlbd-notify.XXXXXX")
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
    if [[ ${KEEP:-0} == 1 ]]; then echo "test_notify: kept $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT
cd "$work"
failures=0
pass() { echo "ok   - $*"; }
fail() { echo "FAIL - $*"; failures=$((failures + 1)); }
now() { python3 -c 'import time; print(f"{time.monotonic():.3f}")'; }
# count PATTERN [SINCE]: messages matching ^PATTERN received after SINCE.
count() { awk -v s="${2:-0}" -v p="$3" '$1 > s && index($2, p) == 1 { n++ } END { print n + 0 }' messages; }
wait_for() {  # wait_for PATTERN SINCE SECONDS
    local end=$(( $(date +%s) + $3 ))
    while (( $(date +%s) <= end )); do
        (( $(count x "$2" "$1") > 0 )) && return 0
        sleep 0.1
    done
    return 1
}

cat > cluster.toml <<CFG
[cluster]
name = "notify.test"
vips = ["192.0.2.10"]
heartbeat_interval_ms = 100

[host]
id = 1

[ports.wire]
device = "net_null0,no-rx=1"

[ports.local]
device = "net_null1,no-rx=1"

[dataplane]
idle_policy = "adaptive"
CFG

python3 "$here/notify_listen.py" "$work/notify.sock" messages 120 &
pids+=($!)
for _ in $(seq 1 50); do [[ -S notify.sock ]] && break; sleep 0.1; done
[[ -S notify.sock ]] || { echo "test_notify: the listener did not bind" >&2; exit 1; }

NOTIFY_SOCKET="$work/notify.sock" WATCHDOG_USEC=1000000 timeout -k 5 100 "$nlbd" --config cluster.toml \
    --run-for 90 --ctl-socket "$work/ctl.sock" \
    -- -l 0,1 --no-huge -m 256 --no-shconf --no-pci --log-level=lib.eal:error > nlbd.log 2>&1 &
pids+=($!)
wrapper=$!
nlbd_pid=
for _ in $(seq 1 100); do
    nlbd_pid=$(pgrep -P "$wrapper" -x nlbd || true)
    [[ -n $nlbd_pid ]] && break
    sleep 0.1
done
[[ -n $nlbd_pid ]] || { cat nlbd.log; echo "test_notify: nlbd did not start" >&2; exit 1; }

# READY=1, once, after the control socket exists.
if wait_for READY=1 0 20; then
    pass "READY=1 received"
else
    cat nlbd.log; fail "no READY=1 within 20 s"; exit 1
fi
[[ -S ctl.sock ]] && pass "the control socket exists at READY" || fail "READY=1 before the control socket"
grep -q "MAINPID=$nlbd_pid" messages && pass "MAINPID=$nlbd_pid" || fail "MAINPID missing or wrong: $(grep MAINPID messages)"
(( $(count x 0 READY=1) == 1 )) && pass "READY=1 sent once" || fail "READY=1 sent $(count x 0 READY=1) times"

# STATUS= with the convergence state (a lone host converges as the default host).
for _ in $(seq 1 50); do grep -q "STATUS=converged" messages && break; sleep 0.1; done
grep -q "STATUS=converged_default, members \[1\]" messages && pass "STATUS: $(grep STATUS= messages | tail -1 | cut -d' ' -f2-)" \
    || fail "no STATUS with the convergence state: $(grep STATUS= messages | tail -3)"

# WATCHDOG=1 every WATCHDOG_USEC / 2 while the worker runs.
t0=$(now); sleep 2.2
n=$(count x "$t0" WATCHDOG=1)
(( n >= 3 && n <= 6 )) && pass "WATCHDOG=1 $n times in 2.2 s" || fail "WATCHDOG=1 $n times in 2.2 s (want 3..6)"

# Reload: nlbctl reload, then SIGHUP: RELOADING=1, then READY=1 again.
t0=$(now)
"$nlbctl" --socket ctl.sock reload > reload.out 2>&1 || fail "nlbctl reload: $(cat reload.out)"
wait_for READY=1 "$t0" 5 || true
r=$(count x "$t0" RELOADING=1); y=$(count x "$t0" READY=1)
(( r == 1 && y == 1 )) && pass "nlbctl reload: RELOADING=1 then READY=1" || fail "nlbctl reload: RELOADING=1 x$r, READY=1 x$y"
awk -v s="$t0" '$1 > s && ($2 == "RELOADING=1" || $2 == "READY=1") { print $2 }' messages | tr '\n' ' ' > order
[[ $(cat order) == "RELOADING=1 READY=1 " ]] && pass "RELOADING=1 before READY=1" || fail "order: $(cat order)"
t0=$(now)
kill -HUP "$nlbd_pid"
wait_for READY=1 "$t0" 5 && (( $(count x "$t0" RELOADING=1) == 1 )) && pass "SIGHUP: RELOADING=1 then READY=1" \
    || fail "SIGHUP: $(awk -v s="$t0" '$1 > s' messages | grep -v WATCHDOG | tr '\n' ' ')"
kill -0 "$nlbd_pid" 2>/dev/null && pass "nlbd still runs after SIGHUP" || fail "SIGHUP ended nlbd"

# A stalled worker stops the watchdog pings; they resume when it runs again.
worker_thread=$(for t in /proc/"$nlbd_pid"/task/*; do c=$(cat "$t/comm"); if [[ $c == rte-worker-* ]]; then echo "$c"; fi; done | head -1)
[[ -n $worker_thread ]] || { fail "no rte-worker thread in nlbd"; ls /proc/"$nlbd_pid"/task; }
if [[ -n $worker_thread ]]; then
    python3 "$here/stall_thread.py" "$nlbd_pid" "$worker_thread" 3 > stall.out 2>&1 &
    stall=$!
    pids+=($stall)
    for _ in $(seq 1 30); do [[ -s stall.out ]] && break; sleep 0.1; done
    t_stall=$(now)
    # Up to one ping may already be due from before the stall (WATCHDOG_USEC / 2).
    sleep 2.5
    n=$(count x "$(python3 -c "print($t_stall + 0.6)")" WATCHDOG=1)
    (( n == 0 )) && pass "no WATCHDOG=1 while $worker_thread is stalled (thread $(head -1 stall.out))" \
        || fail "WATCHDOG=1 sent $n times while $worker_thread was stalled: $(cat stall.out)"
    wait "$stall" || fail "stall_thread failed: $(cat stall.out)"
    t0=$(now); sleep 1.5
    n=$(count x "$t0" WATCHDOG=1)
    (( n >= 1 )) && pass "WATCHDOG=1 resumes once the worker runs ($n in 1.5 s)" || fail "no WATCHDOG=1 after the stall ended"
fi

# SIGTERM: STOPPING=1.
t0=$(now)
kill -TERM "$nlbd_pid"
wait "$wrapper" 2>/dev/null || true
(( $(count x "$t0" STOPPING=1) == 1 )) && pass "SIGTERM: STOPPING=1" || fail "no STOPPING=1 after SIGTERM"

if (( failures != 0 )); then
    echo "--- messages (last 30):"; tail -30 messages
    echo "--- nlbd log (last 20):"; tail -20 nlbd.log
    echo "test_notify: $failures check(s) failed"
    exit 1
fi
echo "test_notify: all checks passed"
