#!/usr/bin/env bash
# Cluster test 1 (static membership): three nlbd nodes in network namespaces
# on one bridge serve VIP:8080 for 20 client addresses; every request is
# served by exactly one node, all three nodes serve a share, and single
# affinity keeps each client address on one node across source ports.
#   tests/cluster/test_static_spread.sh BUILDDIR
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=lib.sh
source "$here/lib.sh"
lab_require
lab_init "${1:?usage: $0 BUILDDIR}"

lab_topology 3 || lab_fail "topology"
for i in 1 2 3; do lab_write_config "$i" "1, 2, 3" >/dev/null; done
for i in 1 2 3; do lab_start_node "$i" || lab_fail "start node $i"; done

# First answer (ARP for the VIP, nlbd warm-up): bounded wait.
first=$(lab_wait_answer $LAB_CLIENT_FIRST 50) || lab_fail "no answer from the VIP within 10 s"
echo "first answer: $first"

declare -A owner=()
declare -A per_node=()
rounds=3
for ((r = 1; r <= rounds; ++r)); do
    for ((a = LAB_CLIENT_FIRST; a < LAB_CLIENT_FIRST + LAB_CLIENTS; ++a)); do
        ans=$(lab_request "$a")
        [[ $ans =~ ^node[1-3]$ ]] || lab_fail "round $r: client 10.77.0.$a got '${ans}'"
        if [[ -n ${owner[$a]:-} && ${owner[$a]} != "$ans" ]]; then
            lab_fail "single affinity broken: 10.77.0.$a served by ${owner[$a]} then $ans"
        fi
        owner[$a]=$ans
        per_node[$ans]=$(( ${per_node[$ans]:-0} + 1 ))
    done
done
echo "answers per node over $rounds rounds of $LAB_CLIENTS clients: node1=${per_node[node1]:-0} node2=${per_node[node2]:-0} node3=${per_node[node3]:-0}"
for n in node1 node2 node3; do
    (( ${per_node[$n]:-0} > 0 )) || lab_fail "$n served nothing (no spread)"
done

# Exactly once: every connection was completed by one node only. The
# servers log each peer (address:port); no peer may appear on two nodes and
# the total equals the number of requests made (plus the warm-up ones).
for i in 1 2 3; do sort -u "$LAB_WORK/served.$i" 2>/dev/null || true; done | sort > "$LAB_WORK/peers.all"
dups=$(uniq -d "$LAB_WORK/peers.all" | wc -l)
(( dups == 0 )) || lab_fail "$dups connections were served by more than one node: $(uniq -d "$LAB_WORK/peers.all" | head -3 | tr '\n' ' ')"
total=$(cat "$LAB_WORK"/served.[123] | wc -l)
(( total >= rounds * LAB_CLIENTS )) || lab_fail "only $total connections served, expected >= $((rounds * LAB_CLIENTS))"
for a in "${!owner[@]}"; do
    n=${owner[$a]#node}
    for i in 1 2 3; do
        [[ $i == "$n" || ! -f $LAB_WORK/served.$i ]] && continue
        ! grep -q "^10\.77\.0\.$a " "$LAB_WORK/served.$i" || lab_fail "10.77.0.$a answered by node$n but also served by node$i"
    done
done
echo "PASS: $total connections, each served by exactly one node; spread over 3 nodes; single affinity holds"
