#!/usr/bin/env bash
# Membership under heartbeat loss (issue 14, docs/cluster.md "Failure
# detection"), on two real nlbd hosts at 100 ms x 5 (the lab's setting):
#  1. LOSS_PCT (default 20) % of the heartbeat frames are dropped at random on
#     the switch, independently per frame and receiver (an nftables bridge
#     rule: numgen random), for LOSS_S (default 120) seconds: no host leaves
#     the other's view and no epoch changes. The switch's counters prove the
#     loss was applied (dropped / seen within +-5 points of LOSS_PCT).
#  2. Every heartbeat is dropped for BLACKOUT_MS (default 1200 ms, more than
#     the dead interval and less than the dead interval + the hold): both
#     hosts declare the other dead while both are alive and serving (a
#     heartbeat partition). Long-lived TCP sessions on both hosts (a line
#     every 200 ms through the whole test) lose nothing: no RST reaches a
#     client and every line is echoed. After the heal the two converge on one
#     map again, and new connections are served exactly once.
#   tests/scaleout/test_heartbeat_loss.sh BUILDDIR
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=../cluster/lib.sh
source "$here/../cluster/lib.sh"
lab_require
command -v nft >/dev/null || { echo "SKIP: nft is not installed (scripts/setup.sh installs it)"; exit 77; }
command -v tcpdump >/dev/null || { echo "SKIP: tcpdump is not installed (scripts/setup.sh installs it)"; exit 77; }
lab_init "${1:?usage: $0 BUILDDIR}"
[[ -x $LAB_NLBCTL ]] || lab_fail "nlbctl not built ($LAB_NLBCTL)"
loss_pct=${LOSS_PCT:-20}
loss_s=${LOSS_S:-120}
blackout_ms=${BLACKOUT_MS:-1200}

lab_topology 2 || lab_fail "topology"
for i in 1 2; do lab_write_config "$i" "" >/dev/null; done
for i in 1 2; do lab_start_node "$i" || lab_fail "start node $i"; done
lab_wait_converged "1 2" 15000 || lab_fail "cold start: no convergence"
echo "converged: $LAB_CONV_SUMMARY"
lab_wait_answer $LAB_CLIENT_FIRST 50 >/dev/null || lab_fail "no answer from the VIP"
lab_owners || lab_fail "clients without an answer:$LAB_UNSERVED"
# Each heartbeat says whom its sender heard: host 1 learns that host 2 hears it.
heard=$(lab_query 1 | jq -c '.peers[] | select(.id == 2) | .heard')
[[ $heard == "[1]" ]] || lab_fail "host 1 sees host 2 hearing $heard, not [1]"

# Two long-lived sessions on each host, for the whole test.
declare -A per=()
sessions=()
for ((a = LAB_CLIENT_FIRST; a < LAB_CLIENT_FIRST + LAB_CLIENTS; ++a)); do
    o=${LAB_OWNER[$a]}
    (( ${per[$o]:-0} < 2 )) || continue
    per[$o]=$(( ${per[$o]:-0} + 1 ))
    sessions+=("$a")
done
(( ${#sessions[@]} == 4 )) || lab_fail "want 2 clients per host: $(lab_owner_summary)"
period=0.2
lines=$(( (loss_s + 40) * 5 ))
lab_rst_watch
for a in "${sessions[@]}"; do lab_echo_client "s$a" "$a" "$lines" "$period"; done
sleep 2

epochs() { local i s=0 e; for i in 1 2; do e=$(lab_query "$i" | jq -r '.epoch_changes // empty'); [[ -n $e ]] || return 1; s=$((s + e)); done; echo "$s"; }
left_events() { local i; for i in 1 2; do lab_events "$i" | jq -c 'select(.kind == "host_left")'; done | wc -l; }

# --- 1. random loss ---------------------------------------------------------
e0=$(epochs) || lab_fail "no query answer"
l0=$(left_events)
lab_hb_loss "$loss_pct" || lab_fail "cannot install the loss rule"
echo "dropping $loss_pct% of heartbeat frames for $loss_s s"
end=$(( $(lab_now_ms) + loss_s * 1000 ))
flaps=0
while (( $(lab_now_ms) < end )); do
    sleep 5
    lab_converged_on "1 2" || { flaps=$((flaps + 1)); echo "  not converged: $LAB_CONV_SUMMARY"; }
done
seen=$(lab_hb_counter seen); dropped=$(lab_hb_counter dropped)
lab_hb_loss 0
e1=$(epochs) || lab_fail "no query answer after the loss"
l1=$(left_events)
pct_x10=$(( dropped * 1000 / (seen > 0 ? seen : 1) ))
echo "loss: $dropped of $seen heartbeat frames dropped ($((pct_x10 / 10)).$((pct_x10 % 10)) %), epoch changes $((e1 - e0)), hosts left a view $((l1 - l0)) times, not converged at $flaps of the 5 s checks"
(( seen > loss_s * 2 * 3 * 10 / 2 )) || lab_soft_fail "too few heartbeat frames crossed the switch ($seen)"
(( pct_x10 >= (loss_pct - 5) * 10 && pct_x10 <= (loss_pct + 5) * 10 )) ||
    lab_soft_fail "the switch dropped $((pct_x10 / 10)) % of the heartbeats, not about $loss_pct %"
(( e1 == e0 )) || lab_soft_fail "$((e1 - e0)) epoch changes under $loss_pct % heartbeat loss"
(( l1 == l0 )) || lab_soft_fail "a host left a view $((l1 - l0)) times under $loss_pct % heartbeat loss"

# --- 2. heartbeat blackout: a false death on both sides ---------------------
lab_hb_loss 100 || lab_fail "cannot install the blackout rule"
t0=$(lab_now_ms)
sleep "$(awk -v m="$blackout_ms" 'BEGIN { printf "%.3f", m / 1000 }')"
lab_hb_loss 0
echo "heartbeat blackout of $(( $(lab_now_ms) - t0 )) ms"
for i in 1 2; do
    lab_wait_event "$i" host_left "host $((3 - i)) left the view: dead" 3000 ||
        lab_soft_fail "host $i did not declare host $((3 - i)) dead during the blackout (the test needs a false death)"
done
lab_wait_converged "1 2" 15000 || lab_fail "no convergence after the blackout"
echo "converged again: $LAB_CONV_SUMMARY"

for a in "${sessions[@]}"; do
    if lab_echo_result "s$a" "$lines"; then echo "  $LAB_ECHO_SUMMARY"; else lab_soft_fail "$LAB_ECHO_SUMMARY (client 10.77.0.$a on ${LAB_OWNER[$a]})"; fi
done
lab_rst_report
rst=$(grep -c . "$LAB_WORK/rst.txt" 2>/dev/null || true)
(( ${rst:-0} == 0 )) || lab_soft_fail "${rst} TCP resets reached the clients"

: > "$LAB_WORK/served.1"; : > "$LAB_WORK/served.2"
lab_owners || lab_soft_fail "after the heal, clients without an answer:$LAB_UNSERVED"
lab_check_exactly_once || lab_soft_fail "a connection was served twice after the heal"
lab_finish "no false death at $loss_pct % heartbeat loss for $loss_s s; a heartbeat blackout of $blackout_ms ms lost no connection"
