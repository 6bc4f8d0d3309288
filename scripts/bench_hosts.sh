#!/usr/bin/env bash
# Many-hosts benchmark (issue 14; SPEC §4: at least 64 hosts). For each
# cluster size, a fresh lab of tests/cluster/lib.sh (network namespaces on a
# Linux bridge, one real nlbd per host, dynamic membership, no services):
#   - cold start: every nlbd launched at once (lab_start_nodes); time =
#     launch -> the last node's `converged` event with every host, from the
#     nodes' own event logs (nlbctl --json display, read after the fact from
#     every node at once); "ready" = every node up with its tap configured;
#   - RSS per nlbd process (VmRSS: mean and max);
#   - failover, RUNS times: kill -9 of host 2, then 3, ...; "dead" = kill ->
#     the last survivor's `host_left ... dead` event, "failover" = kill -> the
#     last survivor's `converged` event on the survivors (bound
#     (tolerance + 2) x interval).
# Needs root. Each size runs in its own child (its own lab and EXIT trap).
#
#   scripts/bench_hosts.sh [SIZE...]            (default: 16 32 64)
# Environment: BUILD (build), RUNS (3), LAB_EAL_MEM (96: MB of EAL memory per
# nlbd, --no-huge), LAB_HB_INTERVAL_MS (100), LAB_HB_TOLERANCE (5),
# CONVERGE_WAIT_S (60 + 1 per host: how long to wait for a convergence),
# LAB_CONV_POLL_S (1: seconds between convergence polls).
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"
build=${BUILD:-build}
runs=${RUNS:-3}
export LAB_EAL_MEM=${LAB_EAL_MEM:-96}
# Times come from the events: poll for convergence only once a second, so
# that the polls (an nlbctl per node) take little of the CPUs the nodes need.
export LAB_CONV_POLL_S=${LAB_CONV_POLL_S:-1}

if [[ ${1:-} != --one ]]; then
    sizes=("${@:-16 32 64}")
    # shellcheck disable=SC2206
    sizes=(${sizes[*]})
    echo "nlbd many-hosts benchmark: sizes ${sizes[*]}, $runs failovers each, heartbeat ${LAB_HB_INTERVAL_MS:-100} ms x ${LAB_HB_TOLERANCE:-5}, EAL --no-huge -m $LAB_EAL_MEM"
    echo "machine: $(nproc) CPUs, $(awk '/MemTotal/ {printf "%.0f GiB", $2 / 1048576}' /proc/meminfo), $(uname -r); nlbd $(git rev-parse --short HEAD 2>/dev/null || echo '?')"
    results=()
    for n in "${sizes[@]}"; do
        log=$(mktemp "${TMPDIR:-/tmp}/bench_hosts.$n.XXXXXX")
        if "$0" --one "$n" 2>&1 | tee "$log" | sed -u "s/^/[$n] /"; then :; fi
        r=$(grep '^RESULT ' "$log" | tail -n 1 || true)
        results+=("${r:-RESULT $n FAILED (see above)}")
        rm -f "$log"
    done
    echo
    printf '%-6s %10s %12s %14s %16s %22s %22s\n' hosts ready_ms cold_conv_ms "rss_MiB mn/mx" "mem_used_MiB" "dead_ms (runs)" "failover_ms (runs)"
    for r in "${results[@]}"; do
        # shellcheck disable=SC2086
        set -- $r
        if [[ $3 == FAILED ]]; then echo "$2 failed: ${*:3}"; continue; fi
        printf '%-6s %10s %12s %14s %16s %22s %22s\n' "$2" "$3" "$4" "$5/$6" "$7" "${8:--}" "${9:--}"
    done
    exit 0
fi

# --- one size --------------------------------------------------------------------
n=${2:?--one N}
# shellcheck source=../tests/cluster/lib.sh
source tests/cluster/lib.sh
lab_require
# shellcheck disable=SC2034  # read by lib.sh
LAB_SERVICES=0
lab_init "$build"
[[ -x $LAB_NLBCTL ]] || lab_fail "nlbctl not built ($LAB_NLBCTL)"
wait_ms=$(( (${CONVERGE_WAIT_S:-$((60 + n))}) * 1000 ))
all=$(lab_node_ids "$n")
mem0=$(awk '/MemAvailable/ {print int($2 / 1024)}' /proc/meminfo)

lab_topology "$n" || lab_fail "topology"
for i in $all; do lab_write_config "$i" "" >/dev/null; done
LAB_START_WAIT_S=$((30 + 2 * n)) lab_start_nodes "$all" || lab_fail "start of $n nodes"
ready=$(( $(lab_now_ms) - LAB_LAUNCH_MS ))
echo "ready: $n nodes up, taps configured, $ready ms after launch"
lab_wait_converged "$all" "$wait_ms" || lab_fail "cold start: $n nodes did not converge in $wait_ms ms"
lab_events_all "$all"
lab_event_times "$all" converged "$(lab_converged_re "$all")" "$LAB_LAUNCH_MS" || lab_fail "cold start: no converged event: $LAB_EVT"
cold=$(( $(lab_event_span 3) - LAB_LAUNCH_MS ))
echo "cold start: one converged view $cold ms after launch (the first node $(( $(lab_event_span 2) - LAB_LAUNCH_MS )) ms)"
sleep 2
rss=$(lab_rss_kib "$all" | awk '{s += $2; if ($2 > m) m = $2} END {printf "%d %d", s / NR / 1024, m / 1024}')
used=$(( mem0 - $(awk '/MemAvailable/ {print int($2 / 1024)}' /proc/meminfo) ))
echo "RSS per nlbd: mean/max $rss MiB; MemAvailable dropped by $used MiB for $n nodes"

left=$all
fo=(); dead=()
for ((r = 1; r <= runs && r < n; ++r)); do
    v=$((r + 1))
    left=$(tr ' ' '\n' <<<"$left" | grep -vx "$v" | paste -sd' ' -)
    sleep 1
    t0=$(lab_now_ms)
    lab_kill_node "$v" || lab_fail "kill -9 node $v"
    # A run that cannot be timed ends the series (the cluster's state is then
    # unknown); the runs before it are still reported.
    if ! lab_wait_converged "$left" "$wait_ms"; then
        echo "failover $r: host $v killed; the survivors did not converge in $wait_ms ms"
        fo+=("none"); dead+=("none"); break
    fi
    lab_events_all "$left"
    if ! lab_event_times "$left" converged "$(lab_converged_re "$left")" "$t0"; then
        # `display` returns the latest 30 events: a node whose view changed
        # more often since the kill has lost the one that counts.
        echo "failover $r: host $v killed; converged, but not timed: no converged event on the survivors in a node's latest 30 events ($(grep -c -- ' -1 -1' <<<"$LAB_EVT") nodes)"
        fo+=("untimed"); dead+=("untimed"); break
    fi
    f=$(( $(lab_event_span 2) - t0 ))
    lab_event_times "$left" host_left "^host $v left the view: dead" "$t0" || true
    d=$(( $(lab_event_span 2) - t0 ))
    echo "failover $r: host $v killed; declared dead by every survivor within $d ms, converged within $f ms"
    fo+=("$f"); dead+=("$d")
done
echo "RESULT $n $ready $cold $rss $used $(IFS=,; echo "${dead[*]}") $(IFS=,; echo "${fo[*]}")"
