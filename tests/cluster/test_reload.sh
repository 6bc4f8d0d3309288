#!/usr/bin/env bash
# Cluster test 7 (reload, docs/reload.md), three real nodes, real TCP clients:
#  - node 3 lists the same port rules in another order: the cluster converges;
#  - SIGHUP reloads (the daemon keeps running);
#  - a broken file and a restart-only key are refused (exit 1, file:line:key or
#    the key named) and the old configuration keeps serving;
#  - a rolling change of the 9000 rule, host by host, then a rule added and
#    the heartbeat interval changed on every host: a request loop on the
#    unchanged 8080 rule fails no request, the established connection on 9000
#    is never broken, no connection is served twice; converged at the end;
#  - the host state file: `stop` survives a restart of node 3; a corrupt file
#    gives a warning and the configured initial state.
#   tests/cluster/test_reload.sh BUILDDIR
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=lib.sh
source "$here/lib.sh"
lab_require
lab_init "${1:?usage: $0 BUILDDIR}"
[[ -x $LAB_NLBCTL ]] || lab_fail "nlbctl not built ($LAB_NLBCTL)"

rule() {  # rule PORT AFFINITY
    printf '\n[[port_rule]]\nvip = "%s"\nports = "%s"\nprotocol = "tcp"\nmode = "multiple"\naffinity = "%s"\n' \
        "$LAB_VIP" "$1" "$2"
}
# write_node I RULES...: node I's file with these rules (each "PORT:AFFINITY").
write_node() {
    local i=$1 f; shift
    f=$(lab_write_config "$i" "" "${EXTRA:-}")
    sed -i "s|^id = $i\$|id = $i\nstate_file = \"$LAB_WORK/state.$i\"|" "$f"
    for r in "$@"; do rule "${r%%:*}" "${r#*:}" >> "$f"; done
}

lab_topology 3 || lab_fail "topology"
write_node 1 8080:none 9000:single
write_node 2 8080:none 9000:single
write_node 3 9000:single 8080:none          # same rules, another order
for i in 1 2 3; do lab_start_node "$i" || lab_fail "start node $i"; done
lab_wait_converged "1 2 3" 15000 || lab_fail "same rules in another order: no convergence: $(lab_query 3)"
echo "same rules in another order: converged: $LAB_CONV_SUMMARY"
lab_wait_answer $LAB_CLIENT_FIRST 50 >/dev/null || lab_fail "no answer from the VIP"

# SIGHUP: a reload, not a stop. Sent to nlbd itself: LAB_NLBD_PID is the
# `timeout -k 5` around it, which would forward the signal and then SIGKILL
# its child 5 s later.
nlbd1=$(pgrep -P "${LAB_NLBD_PID[1]}" -x nlbd) || lab_fail "no nlbd process under node 1's timeout"
kill -HUP "$nlbd1"
sleep 0.5
kill -0 "$nlbd1" 2>/dev/null || lab_fail "SIGHUP ended nlbd"
grep -q "nlbd: reload: no change" "$LAB_WORK/nlbd.1.log" || lab_soft_fail "SIGHUP did not reload: $(tail -3 "$LAB_WORK/nlbd.1.log")"

# Long-lived connection on 9000 and a request loop on 8080 throughout.
lab_rst_watch
lab_echo_client e1 $((LAB_CLIENT_FIRST + 1)) 150   # 15 s
loop_out="$LAB_WORK/loop.out"
(
    set +e
    for ((k = 0; k < 400; ++k)); do
        [[ -f $LAB_WORK/loop.stop ]] && break
        a=$((LAB_CLIENT_FIRST + 2 + k % (LAB_CLIENTS - 2)))
        r=$(lab_request "$a")
        if [[ $r =~ ^node[0-9]+$ ]]; then echo ok; else echo "fail $a"; fi
        sleep 0.05
    done > "$loop_out"
) &
LAB_PIDS+=($!)
loop_pid=$!

# A broken file is refused with file:line and the old configuration serves on.
cp "$LAB_WORK/node2.toml" "$LAB_WORK/node2.good"
printf '\n[[port_rule]]\nvip = "%s"\nports = "8000-8100"\nprotocol = "tcp"\n' "$LAB_VIP" >> "$LAB_WORK/node2.toml"
if out=$(lab_ctl 2 reload 2>&1); then lab_soft_fail "overlapping rule accepted: $out"; fi
echo "overlapping rule: $out"
[[ $out == *node2.toml:* && $out == *port_rule* ]] || lab_soft_fail "the refusal does not name file:line and key: $out"
echo 'this is = = not toml' >> "$LAB_WORK/node2.toml"
if out=$(lab_ctl 2 reload 2>&1); then lab_soft_fail "syntax error accepted: $out"; fi
[[ $out == *node2.toml:* ]] || lab_soft_fail "syntax error not located: $out"
cp "$LAB_WORK/node2.good" "$LAB_WORK/node2.toml"
sed -i 's/^buckets = 4096$/buckets = 2048/' "$LAB_WORK/node2.toml"
if out=$(lab_ctl 2 reload 2>&1); then lab_soft_fail "a bucket count change was applied live: $out"; fi
echo "restart key: $out"
[[ $out == *cluster.buckets* ]] || lab_soft_fail "the refusal does not name cluster.buckets: $out"
cp "$LAB_WORK/node2.good" "$LAB_WORK/node2.toml"
lab_wait_converged "1 2 3" 5000 || lab_soft_fail "refused reloads disturbed the cluster"

# Rolling change of the 9000 rule (affinity single -> none), host by host.
for i in 1 2 3; do
    write_node "$i" 8080:none 9000:none
    out=$(lab_ctl "$i" reload 2>&1) || lab_soft_fail "reload of node $i failed: $out"
    echo "node $i reload: $(tr '\n' ' ' <<<"$out")"
    sleep 1.5
    if ((i < 3)); then
        # query names the differing rule, the hosts of each version, the one in force
        q=$(lab_query 2)
        diffs=$(jq -c '[.rule_differences[]? | {rule, versions: [.versions[] | {hosts, active}]}]' <<<"$q")
        echo "  rule_differences on node 2: $diffs"
        # Node 1 (and node 2 after its reload) against the rest: the majority's version is in force.
        want_new=$([[ $i == 1 ]] && echo '[1]' || echo '[1,2]')
        jq -e --argjson w "$want_new" '.rule_differences | length == 1 and .[0].rule == "10.77.0.10:9000/tcp"
            and ([.[0].versions[] | select(.hosts == $w)] | length == 1)
            and ([.[0].versions[] | select(.active)] | length == 1)' <<<"$q" >/dev/null ||
            lab_soft_fail "query does not name the differing rule and its hosts after node $i's reload: $diffs"
    fi
done
lab_wait_converged "1 2 3" 10000 || lab_soft_fail "rolling change: no convergence: $(lab_query 1)"
echo "rolling change: converged: $LAB_CONV_SUMMARY"
# A rule added and the heartbeat interval changed on every host.
for i in 1 2 3; do
    write_node "$i" 8080:none 9000:none 7000:single
    sed -i 's/^heartbeat_interval_ms = .*/heartbeat_interval_ms = 150/' "$LAB_WORK/node$i.toml"
    out=$(lab_ctl "$i" reload 2>&1) || lab_soft_fail "reload of node $i failed: $out"
    [[ $out == *7000* ]] || lab_soft_fail "node $i reload does not report the added rule: $out"
done
lab_wait_converged "1 2 3" 10000 || lab_soft_fail "added rule / interval: no convergence: $(lab_query 1)"
q=$(lab_ctl 1 --json params)
[[ $(jq -r .heartbeat_interval_ms <<<"$q") == 150 ]] || lab_soft_fail "interval not applied: $q"
[[ $(jq '.rules | length' <<<"$q") == 3 ]] || lab_soft_fail "rule not added: $q"

lab_echo_result e1 150 || lab_soft_fail "the established connection on 9000 broke during the reloads"
echo "$LAB_ECHO_SUMMARY"
touch "$LAB_WORK/loop.stop"
wait "$loop_pid" 2>/dev/null || true
total=$(wc -l < "$loop_out"); failed=$(grep -c '^fail' "$loop_out" || true)
echo "request loop on the unchanged 8080 rule: $total requests, $failed failed"
((total > 20)) || lab_soft_fail "the request loop made only $total requests"
((failed == 0)) || lab_soft_fail "$failed requests to the unchanged rule failed: $(grep '^fail' "$loop_out" | head -3 | tr '\n' ' ')"
lab_check_exactly_once || lab_soft_fail "a connection was served twice"
lab_rst_report

# Host state file: `stop` survives a restart; a corrupt file is ignored with a warning.
lab_ctl 3 stop >/dev/null || lab_fail "nlbctl stop on node 3"
[[ -s $LAB_WORK/state.3 ]] || lab_soft_fail "no state file written for node 3"
lab_stop_node 3
lab_start_node 3 || lab_fail "restart node 3"
q3=$(lab_query 3)
[[ $(jq -r .host_state <<<"$q3") == stopped ]] || lab_soft_fail "node 3 did not come back stopped: $q3"
grep -q "restored host stopped" "$LAB_WORK/nlbd.3.log" || lab_soft_fail "no restore message"
lab_stop_node 3
printf 'garbage\n' >> "$LAB_WORK/state.3"
lab_start_node 3 || lab_fail "restart node 3 (corrupt state)"
grep -q "warning: state file .*ignored" "$LAB_WORK/nlbd.3.log" || lab_soft_fail "corrupt state file without a warning: $(grep state "$LAB_WORK/nlbd.3.log")"
lab_wait_converged "1 2 3" 10000 || lab_soft_fail "node 3 did not start as configured with a corrupt state file: $(lab_query 3)"
lab_finish "reload: reordered rules converge, SIGHUP reloads, bad files and restart keys refused, rolling change without a failed request or broken connection, state file kept and checked"
