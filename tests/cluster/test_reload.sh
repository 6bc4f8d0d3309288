#!/usr/bin/env bash
# Cluster test 7 (reload, docs/reload.md), three real nodes, real TCP clients:
#  - node 3 lists the same port rules in another order: the cluster converges;
#  - SIGHUP reloads (the daemon keeps running);
#  - a broken file and a restart-only key are refused (exit 1, file:line:key or
#    the key named) and the old configuration keeps serving;
#  (a rolling rule change over the live lab is not here yet: see docs/reload.md,
#  "Known gap"; the membership side is proven in membership_test.cpp);
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

# SIGHUP: a reload, not a stop.
kill -HUP "${LAB_NLBD_PID[1]}"
sleep 0.5
kill -0 "${LAB_NLBD_PID[1]}" 2>/dev/null || lab_fail "SIGHUP ended nlbd"
grep -q "nlbd: reload: no change" "$LAB_WORK/nlbd.1.log" || lab_soft_fail "SIGHUP did not reload: $(tail -3 "$LAB_WORK/nlbd.1.log")"

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
lab_finish "reload: reordered rules converge, SIGHUP reloads, bad files and restart keys refused, state file kept and checked"
