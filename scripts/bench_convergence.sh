#!/usr/bin/env bash
# Convergence benchmark (SPEC §4 target: survivors own a dead host's buckets
# within (tolerance + 2) x interval). Builds the 3-node lab of
# tests/cluster/lib.sh once (network namespaces, bridge, real nlbd processes
# with dynamic membership), then repeats:
#   link down on node 1's wire veth -> poll `nlbctl query` on nodes 2 and 3
#   every 10 ms until both are converged on [2,3] and own every bucket
#   (time = link-down to full ownership, includes the polling granularity);
#   meanwhile a client makes one new connection every ~50 ms, rotating over
#   20 client addresses (1 s connect timeout, i.e. a lost SYN is not retried),
#   and a long-lived connection on node 2 echoes a line every 100 ms;
#   link up -> wait for node 1 to rejoin (time measured too).
# Prints a table per run and min / median / max.
#
#   scripts/bench_convergence.sh [RUNS] [BUILDDIR]     (defaults: 10, build)
# Environment: LAB_HB_INTERVAL_MS (100), LAB_HB_TOLERANCE (5). Needs root.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
runs=${1:-10}
build=${2:-build}
cd "$here"
# shellcheck source=../tests/cluster/lib.sh
source tests/cluster/lib.sh
lab_require
lab_init "$build"
[[ -x $LAB_NLBCTL ]] || lab_fail "nlbctl not built ($LAB_NLBCTL)"
bound=$(( (LAB_HB_TOLERANCE + 2) * LAB_HB_INTERVAL_MS ))

lab_topology 3 || lab_fail "topology"
for i in 1 2 3; do lab_write_config "$i" "" >/dev/null; done
for i in 1 2 3; do lab_start_node "$i" >/dev/null || lab_fail "start node $i"; done
lab_wait_converged "1 2 3" 15000 || lab_fail "cold start: no convergence"
lab_wait_answer $LAB_CLIENT_FIRST 50 >/dev/null || lab_fail "no answer from the VIP"
lab_owners || lab_fail "clients without an answer:$LAB_UNSERVED"
a2=""
for ((a = LAB_CLIENT_FIRST; a < LAB_CLIENT_FIRST + LAB_CLIENTS; ++a)); do
    [[ -z $a2 && ${LAB_OWNER[$a]} == node2 ]] && a2=$a
done
[[ -n $a2 ]] || lab_fail "no client on node 2"

# load_loop SECONDS OUT : new connections, one every ~50 ms, round robin.
load_loop() {
    local secs=$1 out=$2 end a=$LAB_CLIENT_FIRST ok=0 fail=0 r
    end=$(( $(lab_now_ms) + secs * 1000 ))
    while (( $(lab_now_ms) < end )); do
        r=$(ip netns exec "${P}cl" timeout 3 socat -T 2 -u \
            "TCP:$LAB_VIP:8080,bind=10.77.0.$a,connect-timeout=1" - 2>/dev/null | head -n 1 || true)
        if [[ $r =~ ^node ]]; then ok=$((ok + 1)); else fail=$((fail + 1)); fi
        a=$(( a + 1 )); (( a < LAB_CLIENT_FIRST + LAB_CLIENTS )) || a=$LAB_CLIENT_FIRST
        sleep 0.05
    done
    echo "$ok $fail" > "$out"
}

echo "nlbd convergence benchmark: 3 nodes, heartbeat ${LAB_HB_INTERVAL_MS} ms x ${LAB_HB_TOLERANCE}, bound ${bound} ms, $runs runs"
echo "machine: $(nproc) CPUs, $(uname -r); time = link-down -> nodes 2,3 converged on [2,3] owning all buckets (10 ms polling)"
printf '%-4s %12s %12s %10s %10s %12s\n' run failover_ms rejoin_ms new_ok new_failed long_lived
fo=(); rj=(); lost_total=0; broken=0
for ((r = 1; r <= runs; ++r)); do
    lab_echo_client "r$r" "$a2" 60
    sleep 0.5
    load_loop 3 "$LAB_WORK/load.$r" &
    lp=$!
    sleep 0.3
    t0=$(lab_now_ms)
    ip -n "${P}n1" link set "${P}w" down
    lab_wait_converged "2 3" 10000 || lab_fail "run $r: survivors did not converge"
    t1=$(lab_now_ms)
    wait $lp || true
    t2=$(lab_now_ms)
    ip -n "${P}n1" link set "${P}w" up
    lab_wait_converged "1 2 3" 20000 || lab_fail "run $r: node 1 did not rejoin"
    t3=$(lab_now_ms)
    if lab_echo_result "r$r" 60; then ll=intact; else ll=BROKEN; broken=$((broken + 1)); fi
    read -r ok fail < "$LAB_WORK/load.$r"
    lost_total=$((lost_total + fail))
    fo+=($((t1 - t0))); rj+=($((t3 - t2)))
    printf '%-4s %12s %12s %10s %10s %12s\n' "$r" "$((t1 - t0))" "$((t3 - t2))" "$ok" "$fail" "$ll"
    sleep 1
done

stats() {  # min median max of the arguments
    printf '%s\n' "$@" | sort -n | awk '{v[NR]=$1} END {m = (NR % 2) ? v[(NR+1)/2] : (v[NR/2] + v[NR/2+1]) / 2; printf "%d %d %d", v[1], m, v[NR]}'
}
read -r fmin fmed fmax <<<"$(stats "${fo[@]}")"
read -r rmin rmed rmax <<<"$(stats "${rj[@]}")"
echo
printf '%-28s %8s %8s %8s\n' "" min median max
printf '%-28s %8s %8s %8s\n' "failover (link-down) ms" "$fmin" "$fmed" "$fmax"
printf '%-28s %8s %8s %8s\n' "rejoin (link-up) ms" "$rmin" "$rmed" "$rmax"
within=0; for v in "${fo[@]}"; do (( v <= bound )) && within=$((within + 1)); done
echo "failover within the ${bound} ms bound: $within of $runs runs"
echo "new connections failed during failover (1 s connect timeout, no retry): $lost_total in total"
echo "long-lived connections on a survivor broken: $broken of $runs"
