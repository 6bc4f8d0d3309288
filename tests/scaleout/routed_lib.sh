# shellcheck shell=bash disable=SC2034  # globals read by lib.sh (LAB_*) and by the callers (RL_T_*)
# Routed scale-out lab (SPEC §11, docs/scale-out.md), sourced by
# scripts/lab_routed.sh and tests/scaleout/test_routed.sh. Builds on
# tests/cluster/lib.sh (prefix, work dir, EXIT cleanup, nlbd start, queries).
#
#   clients ns ${P}cl: 10.77.0.101..120/24, default route via the router
#        |  veth ${P}e <-> ${P}rc (10.77.0.1/24)
#   router ns ${P}rt: BIRD 2, one eBGP session (AS 65000 <-> 65001) per nlbd
#        host over its own management link; kernel protocol with `merge paths`
#        (ECMP) and net.ipv4.fib_multipath_hash_policy = 1 (L4 hash)
#        |  ${P}ra 10.77.1.1/24            |  ${P}rb 10.77.2.1/24
#   switch ns ${P}sw: bridge bra (segment A)   bridge brb (segment B)
#        |  nodes 1, 2: cluster A           |  nodes 3, 4: cluster B
#   node ns ${P}nI: nlbd (wire: af_packet on ${P}w, local: tap ${P}t with the
#        anycast VIP 10.99.0.10), BIRD 2 (its own config, socket and log in
#        the work dir) peering over ${P}m (10.79.0.4I-2/30) with the router.
#   Cluster A: vips = [10.99.0.10, 10.77.1.10]; B: [10.99.0.10, 10.77.2.10].
#   Every host announces 10.99.0.10/32 with BGP next hop its cluster's
#   segment VIP, which the default host answers ARP for with the cluster MAC:
#   the router sends to the cluster MAC, which the bridge floods to every
#   host of the segment (NLB's "every host sees every frame").
#
# The nodes' kernels never answer on the wire (arp_ignore = 8); the
# management links use permanent neighbour entries. Every wait is bounded.

# shellcheck source=../cluster/lib.sh
source "$(cd "$(dirname "${BASH_SOURCE[0]}")/../cluster" && pwd)/lib.sh"

RL_ANYCAST=10.99.0.10
RL_WITHDRAW_DELAY_MS=${RL_WITHDRAW_DELAY_MS:-1000}
RL_BIRD=${RL_BIRD:-$(command -v bird || echo /usr/sbin/bird)}
RL_BIRDC=${RL_BIRDC:-$(command -v birdc || echo /usr/sbin/birdc)}

# Which cluster node I belongs to (a or b) and its segment number (1, 2).
rl_cluster_of() { if (($1 <= 2)); then echo a; else echo b; fi; }
rl_seg_of() { if (($1 <= 2)); then echo 1; else echo 2; fi; }
rl_next_hop() { echo "10.77.$1.10"; }  # segment S's cluster next hop

# Missing tools are a missing install step (scripts/setup.sh installs them).
# Not root: skip (77). Root: every tool must be there (exit 1 otherwise).
rl_require() {
    if [[ $(id -u) -ne 0 ]]; then
        echo "SKIP: the routed lab needs root (network namespaces, veth, bridges, tap)"; exit 77
    fi
    local t
    for t in "$RL_BIRD" "$RL_BIRDC" ip socat timeout ethtool jq ss; do
        command -v "$t" >/dev/null || { echo "FAIL: '$t' is not installed (scripts/setup.sh installs bird2, socat, jq, ethtool, iproute2)" >&2; exit 1; }
    done
    [[ -e /dev/net/tun ]] || { echo "FAIL: /dev/net/tun is missing (net_tap needs it)" >&2; exit 1; }
    # As root a namespace that cannot be made is a broken machine, not a skip.
    local probe
    probe="nlbdp$(lab_rand)"
    ip netns add "$probe" 2>/dev/null || { echo "FAIL: cannot create a network namespace (ip netns add)" >&2; exit 1; }
    ip netns del "$probe" 2>/dev/null || true
}

rl_mac() { ip -n "$1" -br link show "$2" | awk '{print $3}'; }

# rl_topology : every namespace and link of the picture above.
rl_topology() {
    LAB_NODES=4
    local sw=$LAB_SW_NS cl=$LAB_CL_NS rt=${P}rt i a ns s
    RL_RT_NS=$rt
    lab_ns_add "$sw" noipv6 || return 1
    lab_ns_add "$cl" noipv6 || return 1
    lab_ns_add "$rt" noipv6 || return 1
    ip -n "$sw" link add bra type bridge stp_state 0 forward_delay 0
    ip -n "$sw" link add brb type bridge stp_state 0 forward_delay 0
    ip -n "$sw" link set bra up
    ip -n "$sw" link set brb up

    # Clients <-> router.
    ip -n "$rt" link add "${P}rc" type veth peer name "${P}e" netns "$cl"
    ip -n "$rt" addr add 10.77.0.1/24 dev "${P}rc"
    ip -n "$rt" link set "${P}rc" up
    ip -n "$cl" link set "${P}e" up
    ip netns exec "$cl" ethtool -K "${P}e" tx off >/dev/null
    for ((a = LAB_CLIENT_FIRST; a < LAB_CLIENT_FIRST + LAB_CLIENTS; ++a)); do
        ip -n "$cl" addr add "10.77.0.$a/24" dev "${P}e"
    done
    ip -n "$cl" route add default via 10.77.0.1

    # Router <-> segments (router side computes real checksums: af_packet on
    # the nodes passes frames on as they are).
    for s in 1 2; do
        local br=bra side=ra
        [[ $s == 2 ]] && br=brb side=rb
        ip -n "$rt" link add "${P}$side" type veth peer name "${P}p$side" netns "$sw"
        ip -n "$rt" addr add "10.77.$s.1/24" dev "${P}$side"
        ip -n "$rt" link set "${P}$side" up
        ip netns exec "$rt" ethtool -K "${P}$side" tx off >/dev/null
        ip -n "$sw" link set "${P}p$side" master "$br" up
    done
    RL_RT_MAC[1]=$(rl_mac "$rt" "${P}ra")
    RL_RT_MAC[2]=$(rl_mac "$rt" "${P}rb")
    ip netns exec "$rt" sysctl -qw net.ipv4.ip_forward=1 net.ipv4.fib_multipath_hash_policy=1 \
        net.ipv4.conf.all.rp_filter=0 net.ipv4.conf.default.rp_filter=0 >/dev/null

    for ((i = 1; i <= 4; ++i)); do
        ns=$(lab_node_ns "$i")
        lab_ns_add "$ns" noipv6 || return 1
        local br=bra; [[ $(rl_seg_of "$i") == 2 ]] && br=brb
        ip -n "$sw" link add "${P}s$i" type veth peer name "${P}w" netns "$ns"
        ip -n "$sw" link set "${P}s$i" master "$br" up
        ip -n "$ns" link set "${P}w" up
        ip netns exec "$ns" sysctl -qw net.ipv4.conf.all.arp_ignore=8 >/dev/null 2>&1 || true
        # Management link for BGP, /30 per node, static neighbours both ways.
        local r=$((4 * i - 3)) n=$((4 * i - 2))
        ip -n "$rt" link add "${P}m$i" type veth peer name "${P}m" netns "$ns"
        ip -n "$rt" addr add "10.79.0.$r/30" dev "${P}m$i"
        ip -n "$ns" addr add "10.79.0.$n/30" dev "${P}m"
        ip -n "$rt" link set "${P}m$i" up
        ip -n "$ns" link set "${P}m" up
        ip -n "$rt" neigh replace "10.79.0.$n" lladdr "$(rl_mac "$ns" "${P}m")" dev "${P}m$i" nud permanent
        ip -n "$ns" neigh replace "10.79.0.$r" lladdr "$(rl_mac "$rt" "${P}m$i")" dev "${P}m" nud permanent
    done
}

# rl_router_bird : the router's BIRD (ECMP over the clusters' next hops).
rl_router_bird() {
    local f=$LAB_WORK/bird.rt.conf i
    {
        echo "router id 10.79.0.1;"
        echo "log \"$LAB_WORK/bird.rt.log\" all;"
        echo "protocol device { scan time 10; }"
        echo "protocol direct { ipv4; interface \"${P}ra\", \"${P}rb\"; }"
        echo "protocol kernel { ipv4 { import none; export all; }; merge paths on; }"
        for ((i = 1; i <= 4; ++i)); do
            echo "protocol bgp node$i { local 10.79.0.$((4 * i - 3)) as 65000; neighbor 10.79.0.$((4 * i - 2)) as 65001;"
            echo "  hold time 3; keepalive time 1; connect retry time 1; connect delay time 1; error wait time 1, 2;"
            echo "  ipv4 { import all; export none; }; }"
        done
    } > "$f"
    rl_start_bird rt "$RL_RT_NS" "$f"
}

# rl_start_bird NAME NS CONF : BIRD in the foreground (its pid is ours),
# control socket $LAB_WORK/bird.NAME.ctl; waits (5 s) until it answers.
rl_start_bird() {
    local name=$1 ns=$2 conf=$3 k
    ip netns exec "$ns" "$RL_BIRD" -f -c "$conf" -s "$LAB_WORK/bird.$name.ctl" \
        > "$LAB_WORK/bird.$name.out" 2>&1 &
    LAB_PIDS+=($!)
    for ((k = 0; k < 50; ++k)); do
        "$RL_BIRDC" -s "$LAB_WORK/bird.$name.ctl" show status 2>/dev/null | grep -q "Daemon is up" && return 0
        sleep 0.1
    done
    echo "routed lab: BIRD $name did not start: $(tail -3 "$LAB_WORK/bird.$name.out")" >&2
    return 1
}

# rl_node_bird I : node I's BIRD, including the file its nlbd writes.
rl_node_bird() {
    local i=$1 ns f inc
    ns=$(lab_node_ns "$i")
    f=$LAB_WORK/bird.$i.conf
    inc=$LAB_WORK/announce.$i.conf
    # Before nlbd writes it: nothing announced (BIRD needs the file to exist).
    printf 'protocol static nlbd_announce {\n    ipv4;\n}\nfilter nlbd_export {\n    reject;\n}\n' > "$inc"
    {
        echo "router id 10.79.0.$((4 * i - 2));"
        echo "log \"$LAB_WORK/bird.$i.log\" all;"
        echo "include \"$inc\";"
        echo "protocol device { scan time 10; }"
        echo "protocol bgp uplink { local 10.79.0.$((4 * i - 2)) as 65001; neighbor 10.79.0.$((4 * i - 3)) as 65000;"
        echo "  hold time 3; keepalive time 1; connect retry time 1; connect delay time 1; error wait time 1, 2;"
        echo "  ipv4 { import none; export filter nlbd_export; }; }"
    } > "$f"
    rl_start_bird "$i" "$ns" "$f"
}

# rl_write_config I : node I's cluster file (cluster a or b, dynamic membership).
rl_write_config() {
    local i=$1 c s
    c=$(rl_cluster_of "$i"); s=$(rl_seg_of "$i")
    cat > "$LAB_WORK/node$i.toml" <<TOML
[cluster]
name = "routed-$c.nlbd.test"
vips = ["$RL_ANYCAST", "$(rl_next_hop "$s")"]
mode = "unicast"
buckets = 4096
heartbeat_interval_ms = $LAB_HB_INTERVAL_MS
heartbeat_tolerance = $LAB_HB_TOLERANCE

[host]
id = $i

[dataplane]
idle_policy = "adaptive"

[ports.wire]
device = "net_af_packet$i,iface=${P}w,qpairs=1"

[ports.local]
device = "net_tap$i,iface=${P}t"

# Health-checked: the rule drains on this host while :7000 does not answer
# (rl_health I down|up), which withdraws this host's announcement.
[[port_rule]]
vip = "$RL_ANYCAST"
ports = "0-65535"
protocol = "both"
health_check = "tcp"
health_port = 7000
health_interval_ms = 200
health_timeout_ms = 100
health_rise = 2
health_fall = 2

[announce]
daemon = "bird"
include_file = "$LAB_WORK/announce.$i.conf"
control_socket = "$LAB_WORK/bird.$i.ctl"
birdc = "$RL_BIRDC"
next_hop = "$(rl_next_hop "$s")"
vips = ["$RL_ANYCAST"]
withdraw_delay_ms = $RL_WITHDRAW_DELAY_MS
command_timeout_ms = 3000
retry_interval_ms = 500
TOML
}

# rl_start_node I : BIRD, then nlbd (lib.sh's lab_start_node with this
# node's segment as the gateway: replies go to the router's MAC).
rl_start_node() {
    local i=$1 s
    s=$(rl_seg_of "$i")
    LAB_VIP=$RL_ANYCAST
    LAB_GW=10.77.$s.1
    LAB_CLIENT_MAC=${RL_RT_MAC[$s]}
    lab_start_node "$i" || return 1
    rl_health "$i" up
}

# rl_health I up|down : node I's health-check service (VIP:7000).
declare -gA RL_HEALTH_PID=()
rl_health() {
    local i=$1 p=${RL_HEALTH_PID[$1]:-}
    if [[ $2 == down ]]; then
        [[ -n $p ]] && kill -TERM "$p" 2>/dev/null
        wait "$p" 2>/dev/null || true
        unset "RL_HEALTH_PID[$i]"
        return 0
    fi
    [[ -n $p ]] && return 0
    ip netns exec "$(lab_node_ns "$i")" socat TCP-LISTEN:7000,bind=$RL_ANYCAST,fork,reuseaddr EXEC:true \
        >/dev/null 2>&1 &
    RL_HEALTH_PID[$i]=$!
    LAB_PIDS+=($!)
}

# rl_wait_announce I STATE MS : until node I's announce state is STATE.
rl_wait_announce() {
    local i=$1 want=$2 ms=$3 t0
    t0=$(lab_now_ms)
    while (( $(lab_now_ms) - t0 < ms )); do
        [[ $(rl_announce_state "$i") == "$want" ]] && return 0
        sleep 0.05
    done
    return 1
}

# rl_up : the whole lab, both clusters converged.
rl_up() {
    declare -gA RL_RT_MAC=()
    LAB_HB_INTERVAL_MS=${LAB_HB_INTERVAL_MS:-100}
    rl_topology || return 1
    rl_router_bird || return 1
    local i
    for ((i = 1; i <= 4; ++i)); do
        rl_write_config "$i"
        rl_node_bird "$i" || return 1
    done
    for ((i = 1; i <= 4; ++i)); do rl_start_node "$i" || return 1; done
    lab_wait_converged "1 2" 30000 || return 1
    lab_wait_converged "3 4" 30000 || return 1
}

# rl_route_hops : the router's next hops for the anycast VIP ("10.77.1.10
# 10.77.2.10", sorted), empty when it has no route.
rl_route_hops() {
    ip -n "$RL_RT_NS" -4 route show "$RL_ANYCAST/32" 2>/dev/null |
        grep -o 'via [0-9.]*' | awk '{print $2}' | sort -u | paste -sd' ' -
}

# rl_wait_hops WANT MS : until the router's next hops are WANT (polls every
# 10 ms); prints the milliseconds it took; 1 after MS.
rl_wait_hops() {
    local want=$1 ms=$2 t0 now
    t0=$(lab_now_ms)
    while :; do
        [[ $(rl_route_hops) == "$want" ]] && { echo $(( $(lab_now_ms) - t0 )); return 0; }
        now=$(lab_now_ms)
        ((now - t0 < ms)) || return 1
        sleep 0.01
    done
}

# rl_owner_clusters : one request per client address (lab_owners); sets
# RL_NA and RL_NB, the answers from cluster a (node1/2) and b (node3/4).
rl_owner_clusters() {
    lab_owners || true
    local a
    RL_NA=0 RL_NB=0
    for ((a = LAB_CLIENT_FIRST; a < LAB_CLIENT_FIRST + LAB_CLIENTS; ++a)); do
        case ${LAB_OWNER[$a]:-} in
            node1 | node2) ((++RL_NA)) ;;
            node3 | node4) ((++RL_NB)) ;;
        esac
    done
}

# rl_echo_node ADDR : the node whose kernel holds the established echo
# connection from 10.77.0.ADDR (ss in every node namespace), or nothing.
rl_echo_node() {
    local a=$1 i
    for ((i = 1; i <= 4; ++i)); do
        if ip netns exec "$(lab_node_ns "$i")" ss -Htn state established "( sport = :9000 )" 2>/dev/null |
            grep -q "10.77.0.$a:"; then
            echo "$i"; return 0
        fi
    done
}

# rl_announce_state I : node I's query .announce.state.
rl_announce_state() { lab_query "$1" | jq -r '.announce.state // "none"' 2>/dev/null; }

# rl_scenario : the scale-out properties (docs/scale-out.md), with soft
# failures (lab_soft_fail) and timings in RL_T_* (milliseconds).
rl_scenario() {
    local ms hops

    # 1. Both clusters announce: the router has both next hops.
    if ms=$(rl_wait_hops "10.77.1.10 10.77.2.10" 30000); then
        echo "router: ECMP over both clusters ($ms ms after convergence)"
    else
        lab_soft_fail "router has no ECMP route over both clusters: '$(rl_route_hops)'"
        return 1
    fi
    local i
    for i in 1 2 3 4; do
        [[ $(rl_announce_state "$i") == announced ]] || lab_soft_fail "node $i: announce state $(rl_announce_state "$i"), not announced"
    done

    # 2. New flows spread over both clusters.
    local na nb
    rl_owner_clusters; na=$RL_NA nb=$RL_NB
    echo "20 new connections: cluster A $na, cluster B $nb ($(lab_owner_summary))"
    ((na > 0 && nb > 0)) || lab_soft_fail "flows not spread over both clusters: A $na, B $nb"
    ((na + nb == LAB_CLIENTS)) || lab_soft_fail "$((LAB_CLIENTS - na - nb)) connection(s) unanswered:$LAB_UNSERVED"

    # 2b. Health gating: a host whose rule's health check is down withdraws
    # its own announcement (the cluster keeps the route through the other);
    # both down withdraw the cluster; both up announce it again.
    local t0
    rl_health 1 down
    if rl_wait_announce 1 withdrawn 10000; then
        hops=$(rl_route_hops)
        [[ $hops == "10.77.1.10 10.77.2.10" ]] || lab_soft_fail "route changed while node 2 still announces: '$hops'"
        echo "health down on node 1: node 1 withdrawn, the router keeps cluster A through node 2"
    else
        lab_soft_fail "node 1 still announces with its health check down: $(rl_announce_state 1)"
    fi
    t0=$(lab_now_ms)
    rl_health 2 down
    if ms=$(rl_wait_hops "10.77.2.10" 10000); then
        RL_T_HEALTH_DOWN=$ms
        echo "health down on node 2 too: cluster A withdrawn $ms ms after its service stopped (health_fall 2 x 200 ms)"
    else
        lab_soft_fail "cluster A still routed with its health checks down on both hosts: '$(rl_route_hops)'"
    fi
    rl_owner_clusters; na=$RL_NA nb=$RL_NB
    ((na == 0 && nb == LAB_CLIENTS)) || lab_soft_fail "cluster A unhealthy: new flows A $na, B $nb (want 0, $LAB_CLIENTS)"
    t0=$(lab_now_ms)
    rl_health 1 up
    rl_health 2 up
    if ms=$(rl_wait_hops "10.77.1.10 10.77.2.10" 10000); then
        RL_T_HEALTH_UP=$ms
        echo "health up again: cluster A announced $ms ms after its services started (health_rise 2 x 200 ms)"
    else
        lab_soft_fail "cluster A not announced again after its health checks came up: '$(rl_route_hops)'"
    fi
    for i in 1 2; do rl_wait_announce "$i" announced 10000 || lab_soft_fail "node $i: $(rl_announce_state "$i") after health up"; done

    # 2c. Wire link down: the host withdraws at once (no grace: it is cut
    # off its segment); the cluster keeps the route through the other host;
    # link up: it converges again and announces.
    ip -n "$LAB_SW_NS" link set "${P}s1" down
    if rl_wait_announce 1 withdrawn 2000; then  # < converging_grace_ms: the link gate, not the grace
        hops=$(rl_route_hops)
        [[ $hops == "10.77.1.10 10.77.2.10" ]] || lab_soft_fail "route changed while node 2 still announces: '$hops'"
        echo "wire link of node 1 down: node 1 withdrawn, the router keeps cluster A through node 2"
    else
        lab_soft_fail "node 1 still announces with its wire link down: $(rl_announce_state 1)"
    fi
    ip -n "$LAB_SW_NS" link set "${P}s1" up
    rl_wait_announce 1 announced 15000 || lab_soft_fail "node 1 did not announce again after its link came up: $(rl_announce_state 1)"
    lab_wait_converged "1 2" 15000 || lab_soft_fail "cluster A did not converge again after the link came up"

    # 3. Long-lived connections (one per client address 111..118), then see
    # which cluster holds each: the one holding more is the survivor.
    local a lines=200 n
    for a in 111 112 113 114 115 116 117 118; do lab_echo_client "e$a" "$a" "$lines" 0.1; done
    sleep 1.5
    declare -gA RL_ECHO_AT=()
    local ca=0 cb=0
    for a in 111 112 113 114 115 116 117 118; do
        n=$(rl_echo_node "$a")
        RL_ECHO_AT[$a]=$n
        case $n in 1 | 2) ((++ca)) ;; 3 | 4) ((++cb)) ;; esac
    done
    echo "long-lived connections: cluster A $ca, cluster B $cb"
    ((ca + cb == 8)) || lab_soft_fail "only $((ca + cb)) of 8 long-lived connections established"
    local x1 x2 y_hop xname
    if ((ca > cb)); then
        x1=3 x2=4 y_hop=10.77.1.10 xname=B
    else
        x1=1 x2=2 y_hop=10.77.2.10 xname=A
    fi
    echo "withdrawing cluster $xname (nodes $x1, $x2); the other keeps its connections"

    # 4. One host of X stops: the other still announces, the route stays.
    lab_ctl "$x1" stop >/dev/null || lab_soft_fail "nlbctl stop on node $x1 failed"
    sleep 1
    hops=$(rl_route_hops)
    [[ $hops == "10.77.1.10 10.77.2.10" ]] || lab_soft_fail "route changed while node $x2 still announces: '$hops'"

    # 4b. A host joining a cluster that announces does not flap the route:
    # the view re-converges, the announcing host keeps announcing
    # (converging_grace_ms). The router keeps both next hops throughout.
    local gaps=0 polls=0 t_end mark
    mark=$(lab_events "$x2" | jq -s 'map(.seq) | max // 0')
    lab_ctl "$x1" start >/dev/null || lab_soft_fail "nlbctl start on node $x1 failed"
    t_end=$(( $(lab_now_ms) + 2000 ))
    while (( $(lab_now_ms) < t_end && polls < 400 )); do
        [[ $(rl_route_hops) == "10.77.1.10 10.77.2.10" ]] || ((++gaps))
        ((++polls)); sleep 0.01
    done
    ((gaps == 0)) || lab_soft_fail "route flapped while node $x1 joined cluster $xname: $gaps of $polls polls without both next hops"
    lab_wait_converged "$x1 $x2" 10000 || lab_soft_fail "node $x1 did not rejoin: $LAB_CONV_SUMMARY"
    echo "node $x1 joined cluster $xname again: route kept in $polls polls over 2 s ($gaps gaps)"
    local flaps
    flaps=$(lab_events "$x2" | jq -s --argjson m "${mark:-0}" \
        'map(select(.seq > $m and .kind == "announce" and (.text | test("^wanted: \\[none\\]")))) | length')
    [[ $flaps == 0 ]] || lab_soft_fail "node $x2 withdrew ${flaps:-?} time(s) while node $x1 joined"
    lab_ctl "$x1" stop >/dev/null || lab_soft_fail "nlbctl stop on node $x1 failed"
    sleep 0.5

    # 5. drainstop of X's last started host: withdraw first, drain after.
    local out
    t0=$(lab_now_ms)
    out=$(lab_ctl "$x2" --json drainstop 2>&1) || lab_soft_fail "drainstop on node $x2 failed: $out"
    [[ $(jq -r '.withdraw_first // false' <<<"$out" 2>/dev/null) == true ]] ||
        lab_soft_fail "drainstop of the last started host did not withdraw first: $out"
    if ms=$(rl_wait_hops "$y_hop" 10000); then
        RL_T_WITHDRAW=$ms
        echo "router: cluster $xname withdrawn $ms ms after drainstop"
    else
        lab_soft_fail "router still routes to cluster $xname 10 s after drainstop: '$(rl_route_hops)'"
    fi
    # Withdrawal first: the host is still started once the route is gone.
    local hs
    hs=$(lab_query "$x2" | jq -r '.host_state' 2>/dev/null)
    if (( $(lab_now_ms) - t0 < RL_WITHDRAW_DELAY_MS )); then
        [[ $hs == started ]] || lab_soft_fail "node $x2 is $hs right after the withdrawal: the drain did not wait"
    fi
    # Then it drains (after withdraw_delay_ms).
    local k
    for ((k = 0; k < 100; ++k)); do
        hs=$(lab_query "$x2" | jq -r '.host_state' 2>/dev/null)
        [[ $hs == draining || $hs == stopped ]] && break
        sleep 0.1
    done
    RL_T_DRAIN=$(( $(lab_now_ms) - t0 ))
    [[ $hs == draining || $hs == stopped ]] || lab_soft_fail "node $x2 did not drain after the withdrawal (state $hs)"
    ((RL_T_DRAIN >= RL_WITHDRAW_DELAY_MS)) || lab_soft_fail "node $x2 drained $RL_T_DRAIN ms after drainstop, before withdraw_delay_ms ($RL_WITHDRAW_DELAY_MS)"
    echo "node $x2: $hs $RL_T_DRAIN ms after drainstop (withdraw_delay_ms $RL_WITHDRAW_DELAY_MS)"
    # The event log has the withdrawal before the state change.
    local wseq dseq
    wseq=$(lab_events "$x2" | jq -r 'select(.kind == "announce" and (.text | test("^withdrawn"))) | .seq' | tail -1)
    dseq=$(lab_events "$x2" | jq -r 'select(.kind == "host_state" and (.text | test("-> draining"))) | .seq' | tail -1)
    if [[ -z $wseq || -z $dseq ]] || ((wseq > dseq)); then
        lab_soft_fail "event log of node $x2: withdrawal (seq ${wseq:-none}) not before draining (seq ${dseq:-none})"
    fi

    # 6. New connections all go to the surviving cluster.
    rl_owner_clusters; na=$RL_NA nb=$RL_NB
    echo "20 new connections after the withdrawal: cluster A $na, cluster B $nb"
    if [[ $xname == A ]]; then ((na == 0 && nb == LAB_CLIENTS)) || lab_soft_fail "after withdrawing A: A $na, B $nb"
    else ((nb == 0 && na == LAB_CLIENTS)) || lab_soft_fail "after withdrawing B: A $na, B $nb"; fi

    # 7. The VIP is announced again when a host of X starts.
    t0=$(lab_now_ms)
    lab_ctl "$x1" start >/dev/null || lab_soft_fail "nlbctl start on node $x1 failed"
    if ms=$(rl_wait_hops "10.77.1.10 10.77.2.10" 15000); then
        RL_T_ANNOUNCE=$ms
        echo "router: cluster $xname announced again $ms ms after 'nlbctl start' on node $x1"
    else
        lab_soft_fail "cluster $xname not announced again 15 s after start: '$(rl_route_hops)'"
    fi
    rl_owner_clusters; na=$RL_NA nb=$RL_NB
    echo "20 new connections after the re-announcement: cluster A $na, cluster B $nb"
    ((na > 0 && nb > 0)) || lab_soft_fail "flows not spread again after the re-announcement: A $na, B $nb"

    # 8. The survivors' long-lived connections were untouched.
    local kept=0 lost=0 on_x=0
    for a in 111 112 113 114 115 116 117 118; do
        n=${RL_ECHO_AT[$a]:-}
        if [[ $n == "$x1" || $n == "$x2" ]]; then ((++on_x)); continue; fi
        if lab_echo_result "e$a" "$lines"; then ((++kept)); else ((++lost)); lab_soft_fail "surviving cluster: $LAB_ECHO_SUMMARY"; fi
    done
    echo "long-lived connections on the surviving cluster: $kept kept, $lost broken ($on_x were on cluster $xname)"
    RL_KEPT=$kept RL_LOST=$lost
    ((kept > 0)) || lab_soft_fail "no long-lived connection on the surviving cluster to check"

    # 8b. Reload: where nlbd drives BIRD needs a restart (refused, named);
    # what it announces and its timings are live.
    local y1=1 f
    [[ $x1 == 1 ]] && y1=3
    f=$LAB_WORK/node$y1.toml
    cp "$f" "$f.orig"
    sed -i "s|^include_file = .*|include_file = \"$LAB_WORK/other.$y1.conf\"|" "$f"
    if out=$(lab_ctl "$y1" reload 2>&1); then
        lab_soft_fail "reload moving announce.include_file was applied: $out"
    elif [[ $out != *announce.include_file* ]]; then
        lab_soft_fail "refused reload does not name announce.include_file: $out"
    fi
    cp "$f.orig" "$f"
    sed -i "s|^withdraw_delay_ms = .*|withdraw_delay_ms = 2500|" "$f"
    out=$(lab_ctl "$y1" --json reload 2>&1) || lab_soft_fail "live reload of withdraw_delay_ms refused: $out"
    jq -e '.changes | map(select(test("announce.withdraw_delay_ms"))) | length == 1' <<<"$out" >/dev/null 2>&1 ||
        lab_soft_fail "reload did not report announce.withdraw_delay_ms: $out"
    [[ $(rl_announce_state "$y1") == announced ]] || lab_soft_fail "node $y1: $(rl_announce_state "$y1") after a live reload"
    cp "$f.orig" "$f"
    echo "reload: include_file refused (named), withdraw_delay_ms applied live, node $y1 still announced"

    # 9. A clean stop of nlbd withdraws: x1 is X's only started host again.
    t0=$(lab_now_ms)
    kill -TERM "${LAB_NLBD_PID[$x1]}" 2>/dev/null || true
    if ms=$(rl_wait_hops "$y_hop" 10000); then
        RL_T_STOP=$(( $(lab_now_ms) - t0 ))
        echo "router: cluster $xname withdrawn $RL_T_STOP ms after SIGTERM to nlbd on node $x1"
    else
        lab_soft_fail "nlbd stopped on node $x1 but the router still has '$(rl_route_hops)'"
    fi
    lab_stop_node "$x1"
    echo "nlbd on node $x1 exited $(( $(lab_now_ms) - t0 )) ms after SIGTERM"
    if grep -q "route " "$LAB_WORK/announce.$x1.conf"; then
        lab_soft_fail "node $x1's include file still announces after nlbd stopped: $(grep 'route ' "$LAB_WORK/announce.$x1.conf")"
    fi
}
