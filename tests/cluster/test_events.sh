#!/usr/bin/env bash
# Cluster test (event log, docs/logging.md), three real nodes:
#  - node 1's event log (nlbctl --json display -> events) shows host 2 and 3
#    joining and the convergence with its epoch;
#  - drainstop on node 2 through its control socket: node 2 logs a `command`
#    event naming the caller (uid 0, pid) and the state change, and a
#    `host_state` event; its journal line carries the severity;
#  - node 3 killed (SIGKILL): node 1 logs host 3 `host_left` as dead;
#  - node 3 restarted with another rule set: node 1 logs a `mismatch`
#    (rules_fingerprint), and when node 3 comes back with the same rules,
#    the mismatch clears;
#  - a refused reload (restart-only key) is a `reload` event with the caller;
#  - the counts by kind are in the stats (what Prometheus exports as
#    nlbd_events_total{kind});
#  - nlbctl filter, asked on every node for every client address, names the
#    node that really served that client.
#   tests/cluster/test_events.sh BUILDDIR
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

for h in 2 3; do
    lab_wait_event 1 host_joined "^host $h joined" 5000 && echo "node 1: $(jq -r .text "$LAB_WORK/event.match")" \
        || lab_soft_fail "node 1 has no host_joined event for host $h: $(lab_events 1 | tail -5)"
done
lab_wait_event 1 converged "converged( as the default host)? at epoch [0-9]+ with hosts \\[1,2,3\\]" 5000 \
    && echo "node 1: $(jq -r .text "$LAB_WORK/event.match")" \
    || lab_soft_fail "node 1 has no converged event with hosts [1,2,3]: $(lab_events 1 | tail -5)"

# nlbctl filter agrees with where real connections land: every client
# address, asked on every node, names the node that served it.
lab_owners || lab_soft_fail "clients without an answer:$LAB_UNSERVED"
agree=0
for ((a = LAB_CLIENT_FIRST; a < LAB_CLIENT_FIRST + LAB_CLIENTS; ++a)); do
    [[ -n ${LAB_OWNER[$a]:-} ]] || continue
    for i in 1 2 3; do
        by=$(lab_ctl "$i" --json filter "10.77.0.$a:40000" "$LAB_VIP:8080" tcp | jq -r '.accepted_by')
        if [[ node$by == "${LAB_OWNER[$a]}" ]]; then agree=$((agree + 1))
        else lab_soft_fail "filter on node $i says host $by accepts 10.77.0.$a, ${LAB_OWNER[$a]} served it"; fi
    done
done
(( agree >= 3 * (LAB_CLIENTS - 1) )) && echo "nlbctl filter agrees with the serving node: $agree answers" \
    || lab_soft_fail "filter agreed only $agree times"
out=$(lab_ctl 2 filter "10.77.0.$LAB_CLIENT_FIRST" "$LAB_VIP:8080")
echo "filter on node 2: $(head -2 <<< "$out" | tr '\n' ' ')"
[[ $out == *"is owned by host"* ]] || lab_soft_fail "filter gives no reason: $out"

# An operator command, with who sent it.
lab_ctl 2 drainstop > /dev/null || lab_soft_fail "drainstop on node 2 failed"
if lab_wait_event 2 command "^drainstop: host started -> draining" 5000; then
    who=$(jq -r .who "$LAB_WORK/event.match")
    [[ $who =~ ^uid\ 0\ pid\ [0-9]+$ ]] && echo "node 2: drainstop by $who" \
        || lab_soft_fail "the drainstop event does not name the caller: '$who'"
    [[ $(jq -r .severity "$LAB_WORK/event.match") == notice ]] || lab_soft_fail "command event severity: $(cat "$LAB_WORK/event.match")"
else
    lab_soft_fail "node 2 has no command event for drainstop: $(lab_events 2 | tail -5)"
fi
lab_wait_event 2 host_state "started -> (draining|stopped)" 5000 || lab_soft_fail "node 2 has no host_state event"
grep -q "event command: drainstop: host started -> draining (by uid 0 pid" "$LAB_WORK/nlbd.2.log" \
    || lab_soft_fail "the command event is not in node 2's log: $(grep event "$LAB_WORK/nlbd.2.log" | tail -3)"
lab_ctl 2 start > /dev/null || lab_soft_fail "start on node 2 failed"

# A refused reload is an event too, with the caller.
sed -i 's/^buckets = 4096$/buckets = 2048/' "$LAB_WORK/node1.toml"
lab_ctl 1 reload > /dev/null 2>&1 && lab_soft_fail "a bucket change was applied live"
sed -i 's/^buckets = 2048$/buckets = 4096/' "$LAB_WORK/node1.toml"
lab_wait_event 1 reload "refused: .*cluster.buckets" 3000 && [[ $(jq -r .who "$LAB_WORK/event.match") == uid* ]] \
    || lab_soft_fail "node 1 has no reload event naming the refused key and the caller: $(lab_events 1 | tail -3)"

# Death: node 3 killed without a word.
lab_wait_converged "1 2 3" 15000 || lab_fail "no convergence after start"
nlbd3=$(pgrep -P "${LAB_NLBD_PID[3]}" -x nlbd) || lab_fail "no nlbd under node 3's timeout"
kill -KILL "$nlbd3"
lab_stop_node 3
lab_wait_event 1 host_left "^host 3 left the view: dead: no heartbeat for [0-9]+ ms" 10000 \
    && echo "node 1: $(jq -r .text "$LAB_WORK/event.match")" \
    || lab_soft_fail "node 1 has no host_left (dead) event for host 3: $(lab_events 1 | tail -5)"

# Mismatch: node 3 back with other rules; then with the same rules again.
lab_write_config 3 "" > /dev/null
printf '\n[[port_rule]]\nvip = "%s"\nports = "0-65535"\nprotocol = "both"\nmode = "multiple"\naffinity = "none"\n' \
    "$LAB_VIP" >> "$LAB_WORK/node3.toml"
lab_start_node 3 || lab_fail "restart node 3"
lab_wait_event 1 mismatch "^rules_fingerprint: host 3 applies other port rules" 15000 \
    && echo "node 1: $(jq -r .text "$LAB_WORK/event.match")" \
    || lab_soft_fail "node 1 has no rules_fingerprint mismatch event for host 3: $(lab_events 1 | tail -5)"
lab_stop_node 3
lab_write_config 3 "" > /dev/null
lab_start_node 3 || lab_fail "restart node 3 with the same rules"
lab_wait_event 1 mismatch "^rules_fingerprint with host 3 cleared" 15000 \
    || lab_soft_fail "node 1: the mismatch with host 3 did not clear: $(lab_events 1 | tail -5)"
lab_wait_converged "1 2 3" 15000 || lab_soft_fail "no convergence at the end"

# Counts by kind, as Prometheus exports them.
counts=$(lab_stats 1 | jq -c '.events.by_kind')
for k in host_joined host_left converged mismatch reload; do
    n=$(jq -r --arg k "$k" '.[$k] // 0' <<< "$counts")
    (( n >= 1 )) || lab_soft_fail "stats: events.by_kind.$k = $n: $counts"
done
echo "node 1 event counts: $counts"
lab_finish "event log: joins, convergence, a command with its caller, a refused reload, a death, a mismatch and its end"
