#!/usr/bin/env bash
# Cluster test 3 (failover, as in the seed: disable the first node's adapter):
#  - node 1's wire link goes down -> nodes 2 and 3 converge on [2,3] and own
#    every bucket; time from link-down to full ownership is measured against
#    (tolerance + 2) x interval (+ LAB_BOUND_SLACK_MS for the 10 ms polling
#    through nlbctl on a loaded machine, default 300);
#  - new connections from every client keep succeeding, served once;
#  - clients of nodes 2 and 3 keep their node (only node 1's buckets move);
#  - long-lived TCP connections (a line every 100 ms) on nodes 2 and 3 are
#    never broken, through the failover and the rejoin;
#  - link up -> node 1 rejoins, takes back only its share: every client that
#    moves, moves to node 1.
#   tests/cluster/test_failover.sh BUILDDIR
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=lib.sh
source "$here/lib.sh"
lab_require
lab_init "${1:?usage: $0 BUILDDIR}"
[[ -x $LAB_NLBCTL ]] || lab_fail "nlbctl not built ($LAB_NLBCTL)"
bound=$(( (LAB_HB_TOLERANCE + 2) * LAB_HB_INTERVAL_MS ))
slack=${LAB_BOUND_SLACK_MS:-300}

lab_topology 3 || lab_fail "topology"
for i in 1 2 3; do lab_write_config "$i" "" >/dev/null; done
for i in 1 2 3; do lab_start_node "$i" || lab_fail "start node $i"; done
lab_wait_converged "1 2 3" 15000 || lab_fail "cold start: no convergence"
echo "converged: $LAB_CONV_SUMMARY"
lab_wait_answer $LAB_CLIENT_FIRST 50 >/dev/null || lab_fail "no answer from the VIP"
lab_owners || lab_fail "clients without an answer:$LAB_UNSERVED"
declare -A before=()
for a in "${!LAB_OWNER[@]}"; do before[$a]=${LAB_OWNER[$a]}; done
echo "owners before: $(lab_owner_summary)"

a2=""; a3=""
for ((a = LAB_CLIENT_FIRST; a < LAB_CLIENT_FIRST + LAB_CLIENTS; ++a)); do
    [[ -z $a2 && ${before[$a]} == node2 ]] && a2=$a
    [[ -z $a3 && ${before[$a]} == node3 ]] && a3=$a
done
[[ -n $a2 && -n $a3 ]] || lab_fail "no client on node 2 or node 3: $(lab_owner_summary)"
lines=200
lab_rst_watch
lab_echo_client n2 "$a2" $lines
lab_echo_client n3 "$a3" $lines
sleep 1

# --- node 1's adapter goes down -------------------------------------------
t0=$(lab_now_ms)
ip -n "${P}n1" link set "${P}w" down
lab_wait_converged "2 3" 10000 || lab_fail "survivors did not converge"
t1=$(lab_now_ms)
elapsed=$((t1 - t0))
echo "failover: survivors own every bucket $elapsed ms after link-down (bound $bound ms): $LAB_CONV_SUMMARY"
(( elapsed <= bound + slack )) || lab_fail "failover took $elapsed ms > bound $bound ms + slack $slack ms"

lab_owners || lab_fail "after failover, clients without an answer:$LAB_UNSERVED"
echo "owners after failover: $(lab_owner_summary)"
declare -A during=()
for a in "${!LAB_OWNER[@]}"; do
    during[$a]=${LAB_OWNER[$a]}
    [[ ${during[$a]} != node1 ]] || lab_fail "10.77.0.$a still served by node 1 after its link went down"
    if [[ ${before[$a]} != node1 && ${before[$a]} != "${during[$a]}" ]]; then
        lab_fail "10.77.0.$a moved from ${before[$a]} to ${during[$a]} (only node 1's clients may move)"
    fi
done

q1=$(lab_query 1)
echo "isolated node 1: $(jq -c '{state, converged, epoch, members, owned: .rules[0].buckets_owned, map_digest}' <<<"$q1")"
echo "survivor node 2: $(jq -c '{state, converged, epoch, members, owned: .rules[0].buckets_owned, map_digest}' <<<"${LAB_Q[2]}")"

# --- link up: node 1 rejoins ----------------------------------------------
t2=$(lab_now_ms)
ip -n "${P}n1" link set "${P}w" up
lab_wait_converged "1 2 3" 15000 || lab_fail "node 1 did not rejoin"
t3=$(lab_now_ms)
echo "rejoin: converged on [1,2,3] $((t3 - t2)) ms after link-up: $LAB_CONV_SUMMARY"
buckets=$(jq -r .buckets <<<"${LAB_Q[1]}")
own1=$(jq -r '.rules[0].buckets_owned' <<<"${LAB_Q[1]}")
(( own1 >= buckets / 3 - 1 && own1 <= buckets / 3 + 2 )) || lab_fail "node 1 took back $own1 of $buckets buckets, not its share"
lab_owners || lab_fail "after rejoin, clients without an answer:$LAB_UNSERVED"
echo "owners after rejoin: $(lab_owner_summary)"
for a in "${!LAB_OWNER[@]}"; do
    if [[ ${LAB_OWNER[$a]} != "${during[$a]}" && ${LAB_OWNER[$a]} != node1 ]]; then
        lab_soft_fail "10.77.0.$a moved from ${during[$a]} to ${LAB_OWNER[$a]} on rejoin (only moves to node 1 allowed)"
    fi
done
lab_check_exactly_once || lab_soft_fail "a connection was served twice"

lab_echo_result n2 $lines || lab_soft_fail "long-lived connection on node 2 broke"
echo "$LAB_ECHO_SUMMARY (client 10.77.0.$a2 on node 2)"
lab_echo_result n3 $lines || lab_soft_fail "long-lived connection on node 3 broke"
echo "$LAB_ECHO_SUMMARY (client 10.77.0.$a3 on node 3)"
lab_rst_report
lab_finish "failover in $elapsed ms (bound $bound), new connections served, survivors' connections intact, node 1 rejoined with its share"
