#!/usr/bin/env bash
# Cluster test (cluster-wide view and control, docs/cluster.md), three real
# nodes with authenticated heartbeats:
#  - `nlbctl cluster` on node 1 shows all three hosts as live members with
#    their rules, and the buckets they own add up to the bucket count;
#  - `nlbctl host 2 drainstop` on node 1: node 2 drains (its own query says
#    so), node 1 prints node 2's answer, node 2's event log names who sent it
#    (host 1 and the operator's uid); `host all start` starts every host and
#    prints three answers;
#  - node 3 restarted with another secret: its `host 1 stop` is refused by
#    node 1 (bad HMAC, logged as an event), node 1 stays started, and node 3's
#    nlbctl says node 1 did not answer (exit 1);
#  - node 3 restarted without a secret: `host` is refused before anything is
#    sent (cluster-wide commands are never sent unauthenticated).
#   tests/cluster/test_cluster_control.sh BUILDDIR
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=lib.sh
source "$here/lib.sh"
lab_require
lab_init "${1:?usage: $0 BUILDDIR}"
[[ -x $LAB_NLBCTL ]] || lab_fail "nlbctl not built ($LAB_NLBCTL)"

secret() { head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' > "$1"; chmod 600 "$1"; }
host_state() { lab_query "$1" | jq -r '.host_state // empty'; }

lab_topology 3 || lab_fail "topology"
secret "$LAB_WORK/secret.key"
for i in 1 2 3; do lab_write_config "$i" "" "secret_file = \"$LAB_WORK/secret.key\"" >/dev/null; done
for i in 1 2 3; do lab_start_node "$i" || lab_fail "start node $i"; done
lab_wait_converged "1 2 3" 15000 || lab_fail "cold start: no convergence"

# The cluster-wide view from node 1.
view=$(lab_ctl 1 --json cluster) || lab_fail "nlbctl cluster failed"
n=$(jq '[.hosts[] | select(.member and .alive)] | length' <<< "$view")
(( n == 3 )) && echo "cluster view: 3 live members" || lab_soft_fail "cluster view: $n live members: $view"
owned=$(jq '[.hosts[].rules[0].owned] | add' <<< "$view")
[[ $owned == 4096 ]] && echo "cluster view: buckets owned add up to 4096" || lab_soft_fail "owned buckets sum $owned: $view"
for h in 2 3; do
    jq -e --argjson h "$h" '.hosts[] | select(.host == $h) | .rules | length > 0' <<< "$view" > /dev/null \
        || lab_soft_fail "cluster view: host $h's rules are not known: $view"
done
lab_ctl 2 cluster | grep -q "^host 1: started (member)" || lab_soft_fail "nlbctl cluster text: $(lab_ctl 2 cluster | head -5)"

# Drainstop of host 2, from host 1.
out=$(lab_ctl 1 host 2 drainstop 2>&1) || lab_soft_fail "host 2 drainstop failed: $out"
echo "nlbctl host 2 drainstop (on node 1): $out"
[[ $out == *"host 2: host started -> draining"* ]] || lab_soft_fail "no answer from host 2: $out"
st=$(host_state 2)
[[ $st == draining || $st == stopped ]] && echo "node 2 is $st" || lab_soft_fail "node 2 is '$st' after a remote drainstop"
[[ $(host_state 1) == started ]] || lab_soft_fail "node 1 changed state: $(host_state 1)"
if lab_wait_event 2 command "^drainstop: host started -> draining" 5000; then
    who=$(jq -r .who "$LAB_WORK/event.match")
    [[ $who =~ ^host\ 1:\ uid\ 0\ pid\ [0-9]+$ ]] && echo "node 2 logged the drainstop by '$who'" \
        || lab_soft_fail "node 2's event does not name host 1 and the operator: '$who'"
else
    lab_soft_fail "node 2 has no command event for the remote drainstop: $(lab_events 2 | tail -3)"
fi
lab_wait_event 1 command "^sent 'drainstop' to host 2" 2000 || lab_soft_fail "node 1 did not log what it sent"

# Every host at once.
out=$(lab_ctl 1 host all start 2>&1) || lab_soft_fail "host all start failed: $out"
answers=$(grep -c "^host [123]: " <<< "$out" || true)
(( answers == 3 )) && echo "host all start: 3 answers" || lab_soft_fail "host all start: $answers answers: $out"
for i in 1 2 3; do [[ $(host_state "$i") == started ]] || lab_soft_fail "node $i is $(host_state "$i") after host all start"; done

# A host with another secret: refused and logged, nothing changes.
lab_stop_node 3
secret "$LAB_WORK/other.key"
lab_write_config 3 "" "secret_file = \"$LAB_WORK/other.key\"" > /dev/null
lab_start_node 3 || lab_fail "restart node 3 with another secret"
sleep 1
if out=$(lab_ctl 3 host 1 stop 2>&1); then lab_soft_fail "a wrongly keyed command was answered: $out"; fi
echo "host 1 stop from a host with another secret: $out"
[[ $out == *"host 1: no answer"* ]] || lab_soft_fail "node 3 does not say host 1 did not answer: $out"
[[ $(host_state 1) == started ]] || lab_soft_fail "node 1 obeyed a wrongly keyed command: $(host_state 1)"
lab_wait_event 1 command "^refused an operator command frame from host 3 .*HMAC" 5000 \
    && echo "node 1 logged: $(jq -r .text "$LAB_WORK/event.match")" \
    || lab_soft_fail "node 1 did not log the refused command frame: $(lab_events 1 | tail -3)"

# A host without a secret sends no command at all.
lab_stop_node 3
lab_write_config 3 "" > /dev/null
lab_start_node 3 || lab_fail "restart node 3 without a secret"
if out=$(lab_ctl 3 host 1 stop 2>&1); then lab_soft_fail "host without a secret sent a command: $out"; fi
[[ $out == *secret_file* ]] && echo "without a secret: $out" || lab_soft_fail "the refusal does not name secret_file: $out"
[[ $(host_state 1) == started ]] || lab_soft_fail "node 1 is $(host_state 1)"

lab_finish "cluster-wide view and control: view from node 1, remote drainstop with who, host all, wrong secret refused and logged, no secret refused"
