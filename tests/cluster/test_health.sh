#!/usr/bin/env bash
# Cluster test 6 (health checks, SPEC §9): three dynamic nodes, one port rule
# on the VIP with health_check = "tcp" on a per-node service (:8081).
#  - every node reports the check up and the rule enabled;
#  - the service stops on node 1: node 1's check goes down ("connect
#    refused"), node 1 drains the rule, nodes 2 and 3 take every bucket and
#    new connections from every client go to them; query and stats show it;
#  - the service starts again: node 1's check goes up, the rule is enabled
#    and node 1 serves its share again;
#  - the operator wins: a rule drained with `nlbctl drain` on node 2 stays
#    drained when node 2's check goes down and up again.
#   tests/cluster/test_health.sh BUILDDIR
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=lib.sh
source "$here/lib.sh"
lab_require
lab_init "${1:?usage: $0 BUILDDIR}"
[[ -x $LAB_NLBCTL ]] || lab_fail "nlbctl not built ($LAB_NLBCTL)"
command -v jq >/dev/null || { echo "SKIP: jq is not installed"; exit 77; }

HEALTH_PORT=8081
rule="
[[port_rule]]
vip = \"$LAB_VIP\"
ports = \"0-65535\"
protocol = \"both\"
mode = \"multiple\"
affinity = \"single\"
health_check = \"tcp\"
health_port = $HEALTH_PORT
health_interval_ms = 200
health_timeout_ms = 150
health_rise = 2
health_fall = 2
"

declare -A HEALTH_PID=()
# health_service_start I : the service the check probes, on node I's VIP.
health_service_start() {
    local i=$1 ns; ns=$(lab_node_ns "$i")
    ip netns exec "$ns" socat TCP-LISTEN:$HEALTH_PORT,bind=$LAB_VIP,fork,reuseaddr SYSTEM:"echo ok" \
        >/dev/null 2>&1 &
    HEALTH_PID[$i]=$!
    LAB_PIDS+=($!)
}
health_service_stop() {
    local i=$1 p=${HEALTH_PID[$1]:-}
    [[ -n $p ]] || return 0
    kill -TERM "$p" 2>/dev/null || true
    wait "$p" 2>/dev/null || true
    unset "HEALTH_PID[$i]"
}
# rule0 I : node I's rules[0] as {state, owned, health:{state,last,...}}.
rule0() { lab_query "$1" | jq -c '.rules[0] | {state, owned: .buckets_owned, health}' 2>/dev/null || true; }
# wait_rule I RULE_STATE HEALTH_STATE TIMEOUT_MS : polls node I's rule 0.
wait_rule() {
    local i=$1 rs=$2 hs=$3 t_end=$(( $(lab_now_ms) + $4 )) q
    while (( $(lab_now_ms) < t_end )); do
        q=$(lab_query "$i")
        if [[ $(jq -r '.rules[0].state' <<<"$q" 2>/dev/null) == "$rs" &&
              $(jq -r '.rules[0].health.state' <<<"$q" 2>/dev/null) == "$hs" ]]; then
            return 0
        fi
        sleep 0.1
    done
    return 1
}
# wait_owned_zero I TIMEOUT_MS : node I owns no bucket of rule 0 and the
# others' buckets add up to the bucket count.
wait_owned_zero() {
    local i=$1 t_end=$(( $(lab_now_ms) + $2 ))
    while (( $(lab_now_ms) < t_end )); do
        if lab_converged_on "1 2 3" && [[ $(jq -r '.rules[0].buckets_owned' <<<"${LAB_Q[$i]}") == 0 ]]; then
            return 0
        fi
        sleep 0.1
    done
    return 1
}

lab_topology 3 || lab_fail "topology"
for i in 1 2 3; do lab_write_config "$i" "" "$rule" >/dev/null; done
for i in 1 2 3; do lab_start_node "$i" || lab_fail "start node $i"; done
for i in 1 2 3; do health_service_start "$i"; done
for i in 1 2 3; do
    wait_rule "$i" enabled up 15000 || lab_fail "node $i: health check not up / rule not enabled: $(rule0 "$i")"
done
lab_wait_converged "1 2 3" 15000 || lab_fail "cold start: no convergence: $LAB_CONV_SUMMARY"
lab_wait_answer $LAB_CLIENT_FIRST 50 >/dev/null || lab_fail "no answer from the VIP"
lab_owners || lab_fail "clients without an answer:$LAB_UNSERVED"
echo "owners with every service up: $(lab_owner_summary)"
n1=0
for a in "${!LAB_OWNER[@]}"; do [[ ${LAB_OWNER[$a]} == node1 ]] && n1=$((n1 + 1)); done
((n1 > 0)) || lab_fail "node 1 served no client before the test"
echo "node 1 rule 0: $(rule0 1)"

# --- the service fails on node 1 -------------------------------------------
t0=$(lab_now_ms)
health_service_stop 1
wait_rule 1 draining down 10000 || lab_fail "node 1 did not drain rule 0 after its service stopped: $(rule0 1)"
t1=$(lab_now_ms)
echo "service stopped on node 1: rule 0 draining $((t1 - t0)) ms later: $(rule0 1)"
last=$(lab_query 1 | jq -r '.rules[0].health.last')
[[ $last == "connect refused" ]] || lab_soft_fail "node 1's last health result is '$last', not 'connect refused'"
wait_owned_zero 1 10000 || lab_fail "nodes 2 and 3 did not take node 1's buckets: $LAB_CONV_SUMMARY"
t2=$(lab_now_ms)
echo "nodes 2, 3 own every bucket $((t2 - t0)) ms after the service stopped: $LAB_CONV_SUMMARY"
for i in 2 3; do
    [[ $(jq -r '.rules[0].state' <<<"${LAB_Q[$i]}") == enabled ]] || lab_soft_fail "node $i's rule 0 is not enabled"
done
lab_owners || lab_soft_fail "with node 1 drained, clients without an answer:$LAB_UNSERVED"
echo "owners with node 1's service down: $(lab_owner_summary)"
for a in "${!LAB_OWNER[@]}"; do
    [[ ${LAB_OWNER[$a]} != node1 ]] || lab_soft_fail "new connection from 10.77.0.$a went to node 1 while its service was down"
done
stats=$(lab_ctl 1 --json stats 2>/dev/null | jq -c '.health' 2>/dev/null || true)
echo "node 1 health counters: $(jq -c '{checks, ok, failed, transitions}' <<<"$stats" 2>/dev/null)"
[[ $(jq -r '.rules[0].failed // 0' <<<"$stats" 2>/dev/null) -ge 2 ]] || lab_soft_fail "stats JSON lacks node 1's failed checks: $stats"
[[ $(jq -r '.rules[0].state' <<<"$stats" 2>/dev/null) == down ]] || lab_soft_fail "stats JSON does not show node 1's check down: $stats"

# --- the service comes back -------------------------------------------------
t3=$(lab_now_ms)
health_service_start 1
wait_rule 1 enabled up 10000 || lab_fail "node 1 did not enable rule 0 after its service came back: $(rule0 1)"
t4=$(lab_now_ms)
echo "service back on node 1: rule 0 enabled $((t4 - t3)) ms later"
back=0
for ((k = 0; k < 100; ++k)); do
    if lab_converged_on "1 2 3" && (( $(jq -r '.rules[0].buckets_owned' <<<"${LAB_Q[1]}") > 0 )); then back=1; break; fi
    sleep 0.1
done
((back)) || lab_fail "node 1 owns no bucket after its service came back: $LAB_CONV_SUMMARY"
lab_owners || lab_soft_fail "after the rejoin, clients without an answer:$LAB_UNSERVED"
echo "owners after node 1 rejoined: $(lab_owner_summary)"
n1=0
for a in "${!LAB_OWNER[@]}"; do [[ ${LAB_OWNER[$a]} == node1 ]] && n1=$((n1 + 1)); done
((n1 > 0)) || lab_soft_fail "node 1 serves no client after its service came back"

# --- the operator wins --------------------------------------------------------
lab_ctl 2 drain all >/dev/null || lab_fail "nlbctl drain all on node 2 failed"
wait_rule 2 draining up 5000 || lab_fail "node 2's rule 0 not draining after nlbctl drain: $(rule0 2)"
health_service_stop 2
wait_rule 2 draining down 10000 || lab_fail "node 2's check did not go down: $(rule0 2)"
health_service_start 2
wait_rule 2 draining up 10000 || lab_soft_fail "node 2's check did not go up, or health re-enabled a rule the operator drained: $(rule0 2)"
sleep 0.5
[[ $(lab_query 2 | jq -r '.rules[0].state') == draining ]] || lab_soft_fail "health re-enabled node 2's rule that the operator drained"
echo "operator's drain on node 2 kept through a health down/up: $(rule0 2)"
lab_ctl 2 enable all >/dev/null || lab_soft_fail "nlbctl enable all on node 2 failed"
wait_rule 2 enabled up 5000 || lab_soft_fail "node 2's rule not enabled after nlbctl enable: $(rule0 2)"

lab_check_exactly_once || lab_soft_fail "a connection was served twice"
lab_finish "a failing service drained its rule on node 1 (new connections to nodes 2, 3), its recovery rejoined it; the operator's drain won over health"
