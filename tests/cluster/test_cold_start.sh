#!/usr/bin/env bash
# Cluster test 2 (dynamic membership, heartbeats): three nlbd nodes started
# from cold converge: every node reports converged, the same epoch and the
# members [1,2,3]; their buckets cover the whole map exactly once, each host
# holds its fair share +-1; and every client is then served by exactly one
# node, spread over all three.
#   tests/cluster/test_cold_start.sh BUILDDIR
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=lib.sh
source "$here/lib.sh"
lab_require
lab_init "${1:?usage: $0 BUILDDIR}"
[[ -x $LAB_NLBCTL ]] || lab_fail "nlbctl not built ($LAB_NLBCTL)"

lab_topology 3 || lab_fail "topology"
for i in 1 2 3; do lab_write_config "$i" "" >/dev/null; done
t0=$(lab_now_ms)
for i in 1 2 3; do lab_start_node "$i" || lab_fail "start node $i"; done
t1=$(lab_now_ms)
lab_wait_converged "1 2 3" 15000 || lab_fail "cold start: no convergence"
t2=$(lab_now_ms)
echo "converged $((t2 - t1)) ms after the last node started ($((t2 - t0)) ms after the first): $LAB_CONV_SUMMARY"

buckets=$(jq -r .buckets <<<"${LAB_Q[1]}")
for i in 1 2 3; do
    own=$(jq -r '.rules[0].buckets_owned' <<<"${LAB_Q[$i]}")
    (( own >= buckets / 3 - 1 && own <= buckets / 3 + 2 )) || lab_fail "node $i owns $own of $buckets buckets (not a fair share)"
    dh=$(jq -r .default_host <<<"${LAB_Q[$i]}")
    [[ $dh == 1 ]] || lab_fail "node $i says the default host is $dh, expected 1"
done
st1=$(jq -r .state <<<"${LAB_Q[1]}")
echo "node 1 state: $st1"

lab_wait_answer $LAB_CLIENT_FIRST 50 >/dev/null || lab_fail "no answer from the VIP"
declare -A per=()
lab_owners || lab_fail "clients without an answer:$LAB_UNSERVED"
for a in "${!LAB_OWNER[@]}"; do per[${LAB_OWNER[$a]}]=$(( ${per[${LAB_OWNER[$a]}]:-0} + 1 )); done
echo "clients per node: node1=${per[node1]:-0} node2=${per[node2]:-0} node3=${per[node3]:-0}"
for n in node1 node2 node3; do (( ${per[$n]:-0} > 0 )) || lab_fail "$n serves no client"; done
lab_check_exactly_once || lab_fail "a connection was served twice"
echo "PASS: cold start converged (epoch $(jq -r .epoch <<<"${LAB_Q[1]}")), buckets covered once, fair shares, clients spread and served once"
