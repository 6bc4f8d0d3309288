#!/usr/bin/env bash
# Cluster test 4 (drainstop): `nlbctl drainstop` on node 3 while a client
# holds a long-lived TCP connection on it:
#  - node 3 reports draining, nodes 1 and 2 converge on [1,2] and own every
#    bucket; new connections (also from node 3's client) go to nodes 1 and 2;
#  - the established connection on node 3 keeps working to its end;
#  - once it is closed, node 3 stops by itself (bounded wait).
#   tests/cluster/test_drainstop.sh BUILDDIR
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=lib.sh
source "$here/lib.sh"
lab_require
lab_init "${1:?usage: $0 BUILDDIR}"
[[ -x $LAB_NLBCTL ]] || lab_fail "nlbctl not built ($LAB_NLBCTL)"

lab_topology 3 || lab_fail "topology"
for i in 1 2 3; do lab_write_config "$i" "" >/dev/null; done
for i in 1 2 3; do lab_start_node "$i" || lab_fail "start node $i"; done
lab_wait_converged "1 2 3" 15000 || lab_fail "cold start: no convergence"
lab_wait_answer $LAB_CLIENT_FIRST 50 >/dev/null || lab_fail "no answer from the VIP"
lab_owners || lab_fail "clients without an answer:$LAB_UNSERVED"
echo "owners before: $(lab_owner_summary)"
a3=""
for ((a = LAB_CLIENT_FIRST; a < LAB_CLIENT_FIRST + LAB_CLIENTS; ++a)); do
    [[ -z $a3 && ${LAB_OWNER[$a]} == node3 ]] && a3=$a
done
[[ -n $a3 ]] || lab_fail "no client on node 3"

lines=60   # 6 s
lab_rst_watch
lab_echo_client n3 "$a3" $lines
sleep 0.5

t0=$(lab_now_ms)
lab_ctl 3 drainstop >/dev/null || lab_fail "nlbctl drainstop failed on node 3"
lab_wait_converged "1 2" 10000 || lab_fail "nodes 1 and 2 did not take over node 3's buckets"
t1=$(lab_now_ms)
echo "drainstop: nodes 1, 2 own every bucket $((t1 - t0)) ms later: $LAB_CONV_SUMMARY"
q3=$(lab_query 3)
echo "node 3 while its connection is open: $(jq -c '{state, host_state, held_foreign, owned: .rules[0].buckets_owned}' <<<"$q3")"
[[ $(jq -r .host_state <<<"$q3") == draining ]] || lab_soft_fail "node 3 is not draining while its connection is open"

# New connections, also from node 3's client, go to nodes 1 and 2.
lab_owners || lab_soft_fail "during drain, clients without an answer:$LAB_UNSERVED"
echo "owners during drain: $(lab_owner_summary)"
for a in "${!LAB_OWNER[@]}"; do
    [[ ${LAB_OWNER[$a]} != node3 ]] || lab_soft_fail "new connection from 10.77.0.$a accepted by draining node 3"
done
q3=$(lab_query 3)
[[ $(jq -r .host_state <<<"$q3") == draining ]] || lab_soft_fail "node 3 left draining before its connection closed: $(jq -c '{state, host_state, held_foreign}' <<<"$q3")"

lab_echo_result n3 $lines || lab_soft_fail "the established connection on draining node 3 broke"
echo "$LAB_ECHO_SUMMARY (client 10.77.0.$a3 on node 3)"
t2=$(lab_now_ms)
stopped=0
for ((k = 0; k < 300; ++k)); do
    q3=$(lab_query 3)
    [[ $(jq -r .host_state <<<"$q3" 2>/dev/null) == stopped ]] && { stopped=1; break; }
    sleep 0.1
done
t3=$(lab_now_ms)
if ((stopped)); then
    echo "node 3 stopped by itself $((t3 - t2)) ms after its last connection ended"
else
    lab_soft_fail "node 3 did not stop within 30 s after its connection closed: $(jq -c '{state, host_state, held_foreign}' <<<"$q3")"
fi
lab_check_exactly_once || lab_soft_fail "a connection was served twice"
lab_rst_report
lab_finish "drainstop kept node 3's connection, moved new ones to nodes 1 and 2, node 3 stopped by itself"
