#!/usr/bin/env bash
# Cluster test 5 (authenticated heartbeats): with [cluster] secret_file set,
# real heartbeats are captured on the switch and hostile ones injected from
# the client namespace (tests/cluster/hb_inject.py, raw AF_PACKET):
# verbatim replays, a forged "host 1 stopped" frame, a forged new host 9, a
# frame without its HMAC and a truncated one. Membership must not change
# (same epoch, members [1,2,3], converged, no epoch change) and every node
# counts them: replayed, bad_mac, missing_mac, truncated.
#   tests/cluster/test_forged_heartbeats.sh BUILDDIR
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=lib.sh
source "$here/lib.sh"
lab_require
lab_init "${1:?usage: $0 BUILDDIR}"
[[ -x $LAB_NLBCTL ]] || lab_fail "nlbctl not built ($LAB_NLBCTL)"
command -v tcpdump >/dev/null || { echo "SKIP: tcpdump is not installed"; exit 77; }
py=/usr/bin/python3; [[ -x $py ]] || py=python3

lab_topology 3 || lab_fail "topology"
head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' > "$LAB_WORK/secret.key"
chmod 600 "$LAB_WORK/secret.key"
for i in 1 2 3; do lab_write_config "$i" "" "secret_file = \"$LAB_WORK/secret.key\"" >/dev/null; done
for i in 1 2 3; do lab_start_node "$i" || lab_fail "start node $i"; done
lab_wait_converged "1 2 3" 15000 || lab_fail "cold start: no convergence"
echo "converged with authenticated heartbeats: $LAB_CONV_SUMMARY"

# Capture real heartbeats on the bridge (bounded: 30 frames or 5 s).
ip netns exec "${P}sw" timeout 5 tcpdump -n -i br0 -c 30 -w "$LAB_WORK/hb.pcap" 'ether proto 0x88b5' 2>/dev/null || true
[[ -s $LAB_WORK/hb.pcap ]] || lab_fail "no heartbeat captured"
sleep 0.3   # the captured frames are now older than the nodes' last accepted ones

# Counters before: live from `nlbctl stats`; where that fails, 0 (nothing
# hostile was sent yet) and the after values come from --stats-json at exit.
declare -A before=() epoch_changes=()
live_stats=1
for i in 1 2 3; do
    before[$i]=$(lab_stats "$i" | jq -c '.heartbeats' 2>/dev/null || true)
    if [[ -z ${before[$i]} || ${before[$i]} == null ]]; then
        live_stats=0
        before[$i]='{"replayed":0,"bad_mac":0,"missing_mac":0,"truncated":0}'
    fi
    epoch_changes[$i]=$(jq -r '.epoch_changes // 0' <<<"${LAB_Q[$i]}")
done
((live_stats)) || echo "note: 'nlbctl stats --json' failed ($(lab_ctl 1 --json stats 2>&1 >/dev/null | head -n 1)); using --stats-json at exit"
epoch=$(jq -r .epoch <<<"${LAB_Q[1]}")
declare -A after_of=()

ip netns exec "${P}cl" "$py" "$here/hb_inject.py" --iface "${P}e" --pcap "$LAB_WORK/hb.pcap" \
    --repeat 3 replay forge newhost nomac truncate || lab_fail "injector failed"
sleep $(( (LAB_HB_TOLERANCE + 2) * LAB_HB_INTERVAL_MS / 1000 + 1 ))

lab_converged_on "1 2 3" || lab_soft_fail "membership changed after the injection: $LAB_CONV_SUMMARY"
echo "after injection: $LAB_CONV_SUMMARY"
for i in 1 2 3; do
    [[ $(jq -r .epoch <<<"${LAB_Q[$i]}") == "$epoch" ]] || lab_soft_fail "node $i: epoch changed ($epoch -> $(jq -r .epoch <<<"${LAB_Q[$i]}"))"
    ec=$(jq -r '.epoch_changes // 0' <<<"${LAB_Q[$i]}")
    [[ $ec == "${epoch_changes[$i]}" ]] || lab_soft_fail "node $i: epoch_changes ${epoch_changes[$i]} -> $ec"
    [[ $(jq -r '[.peers[].id] | map(select(. == 9)) | length' <<<"${LAB_Q[$i]}") == 0 ]] || lab_soft_fail "node $i lists forged host 9 as a peer"
    if ((live_stats)); then after=$(lab_stats "$i" | jq -c '.heartbeats'); else after=""; fi
    after_of[$i]=$after
done
if ((!live_stats)); then
    for i in 1 2 3; do lab_stop_node "$i"; after_of[$i]=$(jq -c '.heartbeats' "$LAB_WORK/stats.$i.json" 2>/dev/null || true); done
fi
for i in 1 2 3; do
    after=${after_of[$i]}
    [[ -n $after && $after != null ]] || { lab_soft_fail "node $i: no heartbeat counters"; continue; }
    line="node $i:"
    for c in replayed bad_mac missing_mac truncated; do
        b=$(jq -r ".$c" <<<"${before[$i]}"); a=$(jq -r ".$c" <<<"$after")
        line+=" $c $b->$a"
        (( a > b )) || lab_soft_fail "node $i: counter $c did not increase ($b -> $a)"
    done
    echo "$line"
done
lab_finish "forged and replayed heartbeats changed nothing and were counted on every node"
