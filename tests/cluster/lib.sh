# Multi-node lab for nlbd (sourced by tests/cluster/*.sh and scripts/bench_convergence.sh).
#
# Topology, all created per run under a unique prefix P (nlbd + 4 random hex)
# and removed by an EXIT trap, also on failure or timeout:
#
#   ns ${P}sw : Linux bridge br0 (the "switch"; the host's interfaces are never touched)
#   ns ${P}cl : client, veth ${P}e <-> ${P}c on br0, addresses 10.77.0.101..120/24
#   ns ${P}nI : node I (1..3), veth ${P}w <-> ${P}sI on br0. nlbd runs here with
#               wire port  net_af_packet on ${P}w (up, no address: the node's
#                          kernel never answers the wire itself)
#               local port net_tap ${P}t, created by nlbd; the lab then gives it
#                          MAC = cluster MAC, VIP/32, a route to the client subnet
#                          through a gateway address whose neighbour entry is the
#                          client's MAC (so replies are addressed to the client).
#   Replies of the node's kernel: tap -> nlbd (source MAC masked in unicast
#   mode) -> wire -> bridge -> client.
#   The names can be chosen by the caller before lab_init (LAB_PREFIX,
#   LAB_WORK_DIR, LAB_SW_NS, LAB_CL_NS, LAB_NODE_NS[I]; scripts/lab.sh uses
#   switch, client, cas01, cas02) and LAB_MODE picks the cluster mode
#   (unicast by default; multicast/igmp mark the tap's cluster-MAC frames as
#   for the host with an nftables ingress rule).
#   Services on VIP in every node ns: :8080 answers the node's name and logs
#   the peer address (served.I), :9000 is an echo service (long-lived
#   connections).
#
# Every wait loop is bounded in count and time. Functions fail (return 1) with
# a message on stderr; tests use `lab_fail MSG` to print the logs and exit 1.
#
# Many hosts (tests/scaleout, scripts/bench_hosts.sh; docs/lab.md "Many
# hosts"): the node count is a parameter (lab_topology N, default
# LAB_NODE_COUNT = 3; lab_node_ids N prints 1..N); lab_start_nodes "IDS"
# launches every nlbd at once, then configures each node as it becomes ready;
# lab_converged_on and lab_events_all / lab_buckets_all ask every node at once
# (a background job per node, each bounded by nlbctl's 5 s timeout); the
# event log's own timestamps (lab_event_times) time convergence after the
# fact. Parameters (environment, all optional):
#   LAB_NODE_COUNT     nodes when lab_topology gets no count (3)
#   LAB_EAL_MEM        EAL memory per nlbd in MB, --no-huge (256; 96 is
#                      enough for one worker at the default NIC profile,
#                      whose two mbuf pools take 2 x 8191 x 2176 bytes; 64
#                      is not)
#   LAB_CLIENTS        client addresses 10.77.0.101.. (20, at most 100)
#   LAB_START_WAIT_S   lab_start_nodes: seconds for all nodes to be ready
#                      (10 + 1 per node)
#   LAB_HB_INTERVAL_MS, LAB_HB_TOLERANCE  heartbeats (100, 5)
#   LAB_SERVICES       0: start no services on the nodes (benchmarks; 1)
#   LAB_CONV_POLL_S    lab_wait_converged: seconds between passes (0.01)

LAB_VIP=10.77.0.10
LAB_GW=10.77.0.1
LAB_CLIENT_FIRST=101
LAB_CLIENTS=${LAB_CLIENTS:-20}
LAB_NODE_COUNT=${LAB_NODE_COUNT:-3}
LAB_EAL_MEM=${LAB_EAL_MEM:-256}
LAB_HB_INTERVAL_MS=${LAB_HB_INTERVAL_MS:-100}
LAB_HB_TOLERANCE=${LAB_HB_TOLERANCE:-5}
# IPv6 (LAB_IPV6=1; scripts/lab.sh sets it): the client and node namespaces
# keep IPv6 on (the switch and every wire interface keep it off, so no
# kernel speaks on the segment), the client gets fd77::101..120 beside its
# IPv4 addresses, the taps LAB_VIP6 with a route to fd77::/16 through
# LAB_GW6 (the client's MAC, as for IPv4). Off by default: the cluster tests
# run IPv4 only.
LAB_IPV6=${LAB_IPV6:-0}
LAB_VIP6=fd77::10
LAB_GW6=fd77::1
LAB_NET6=fd77::/16

lab_here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
lab_root=$(cd "$lab_here/../.." && pwd)

# Skip (exit 77) unless we can build the lab.
lab_require() {
    if [[ $(id -u) -ne 0 ]]; then
        echo "SKIP: cluster tests need root (network namespaces, veth, bridge, tap)"; exit 77
    fi
    if ! command -v ip >/dev/null || ! ip netns list >/dev/null 2>&1; then
        echo "SKIP: 'ip netns' is not available"; exit 77
    fi
    for t in socat timeout ethtool; do
        command -v "$t" >/dev/null || { echo "SKIP: '$t' is not installed (scripts/setup.sh installs it)"; exit 77; }
    done
    [[ -e /dev/net/tun ]] || { echo "SKIP: /dev/net/tun is missing (net_tap needs it)"; exit 77; }
    local probe="nlbdp$(lab_rand)"
    if ! ip netns add "$probe" 2>/dev/null; then
        echo "SKIP: cannot create a network namespace here"; exit 77
    fi
    ip netns del "$probe" 2>/dev/null || true
}

# lab_node_ns I : node I's namespace (default ${P}nI).
lab_node_ns() { echo "${LAB_NODE_NS[$1]:-${P}n$1}"; }

# Cluster mode written by lab_write_config and used to configure the taps:
# unicast (default), multicast or igmp.
LAB_MODE=${LAB_MODE:-unicast}
# Multi-core nodes (docs/multicore.md): LAB_WORKERS=N gives every node N
# workers through a generated NIC profile. LAB_DISPATCH=rss opens the wire
# af_packet port with qpairs=N (the kernel's PACKET_FANOUT hash spreads flows
# over the N sockets: the vdev's RSS); distributor keeps one queue and an RX
# lcore spreads flows to the workers.
LAB_WORKERS=${LAB_WORKERS:-1}
LAB_DISPATCH=${LAB_DISPATCH:-rss}

lab_rand() { od -An -N2 -tx1 /dev/urandom | tr -d ' \n'; }

# lab_init BUILDDIR : prefix, work dir, binaries, EXIT trap.
lab_init() {
    local build=${1:?lab_init BUILDDIR}
    build=$(cd "$build" && pwd)
    LAB_NLBD=${NLBD:-$build/src/daemon/nlbd}
    LAB_NLBCTL=${NLBCTL:-$build/src/ctl/nlbctl}
    [[ -x $LAB_NLBD ]] || { echo "lab: $LAB_NLBD is not built" >&2; exit 1; }
    # LAB_PREFIX, LAB_WORK_DIR and the namespace names (LAB_SW_NS, LAB_CL_NS,
    # LAB_NODE_NS[I]) may be set by the caller (scripts/lab.sh names them
    # switch, client, cas01, ...); by default everything is unique per run.
    P=${LAB_PREFIX:-nlbd$(lab_rand)}
    if [[ -n ${LAB_WORK_DIR:-} ]]; then
        LAB_WORK=$LAB_WORK_DIR
        mkdir -p "$LAB_WORK" && chmod 0700 "$LAB_WORK"
    else
        LAB_WORK=$(mktemp -d "${TMPDIR:-/tmp}/${P}.XXXXXX")
    fi
    LAB_SW_NS=${LAB_SW_NS:-${P}sw}
    LAB_CL_NS=${LAB_CL_NS:-${P}cl}
    declare -gA LAB_NODE_NS
    LAB_NS=()
    LAB_PIDS=()
    declare -gA LAB_NLBD_PID=()
    trap lab_cleanup EXIT
    trap 'exit 130' INT TERM
    echo "lab: prefix $P, work dir $LAB_WORK"
}

lab_cleanup() {
    local rc=$?
    set +e
    # Killed background jobs make bash print "Killed ..." job reports: quiet.
    exec 2>/dev/null
    # nlbd first (SIGTERM, then SIGKILL), by the pids we started.
    local p
    for p in "${LAB_NLBD_PID[@]}"; do kill -TERM "$p" 2>/dev/null; done
    for _ in $(seq 1 30); do
        local alive=0
        for p in "${LAB_NLBD_PID[@]}"; do kill -0 "$p" 2>/dev/null && alive=1; done
        ((alive)) || break
        sleep 0.1
    done
    for p in "${LAB_NLBD_PID[@]}" "${LAB_PIDS[@]}"; do kill -KILL "$p" 2>/dev/null; done
    # Whatever still runs inside our own namespaces was started by this run.
    local ns
    for ns in "${LAB_NS[@]}"; do
        for p in $(ip netns pids "$ns" 2>/dev/null); do kill -KILL "$p" 2>/dev/null; done
    done
    wait 2>/dev/null
    for ns in "${LAB_NS[@]}"; do ip netns del "$ns" 2>/dev/null; done
    if [[ ${KEEP:-0} == 1 || ($rc -ne 0 && ${KEEP_ON_FAIL:-0} == 1) ]]; then
        echo "lab: kept $LAB_WORK"
    else
        rm -rf "$LAB_WORK"
    fi
    return $rc
}

lab_fail() {
    echo "FAIL: $*" >&2
    lab_dump_logs
    exit 1
}

# lab_soft_fail MSG : records a failure and goes on (lab_finish reports).
LAB_FAILURES=()
lab_soft_fail() { echo "FAIL: $*" >&2; LAB_FAILURES+=("$*"); }
lab_finish() {
    if ((${#LAB_FAILURES[@]})); then
        lab_dump_logs
        echo "FAILED (${#LAB_FAILURES[@]}):" >&2
        printf '  - %s\n' "${LAB_FAILURES[@]}" >&2
        exit 1
    fi
    echo "PASS: $*"
}

lab_dump_logs() {
    local f
    for f in "$LAB_WORK"/nlbd.*.log; do
        [[ -f $f ]] || continue
        echo "--- $(basename "$f") (last 40 lines)" >&2
        tail -n 40 "$f" >&2
    done
}

lab_ns_add() {
    ip netns add "$1" || return 1
    LAB_NS+=("$1")
    ip -n "$1" link set lo up
    if [[ $LAB_IPV6 == 1 && ${2:-} != noipv6 ]]; then
        # Only inside this namespace: interfaces made here later get no
        # link-local address, send no router solicitation and do no DAD, so
        # the only IPv6 on the segment is what the lab sends on purpose.
        ip netns exec "$1" sysctl -qw net.ipv6.conf.default.addr_gen_mode=1 \
            net.ipv6.conf.default.accept_ra=0 net.ipv6.conf.default.router_solicitations=0 \
            net.ipv6.conf.default.accept_dad=0 net.ipv6.conf.default.dad_transmits=0 \
            net.ipv6.conf.all.accept_ra=0 >/dev/null
        ip netns exec "$1" sysctl -qw net.ipv6.conf.all.disable_ipv6=0 net.ipv6.conf.default.disable_ipv6=0 >/dev/null
    else
        ip netns exec "$1" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1 >/dev/null
    fi
}

# Cluster MAC of the VIP in unicast mode: 02:bf:w:x:y:z.
lab_cluster_mac() {
    local IFS=.
    # shellcheck disable=SC2086
    set -- $LAB_VIP
    printf '02:bf:%02x:%02x:%02x:%02x' "$1" "$2" "$3" "$4"
}

# lab_node_ids N : "1 2 ... N".
lab_node_ids() { seq -s ' ' 1 "${1:?lab_node_ids N}"; }

# lab_topology N : switch, client and N node namespaces (default
# LAB_NODE_COUNT).
lab_topology() {
    local n=${1:-$LAB_NODE_COUNT} i a
    (( LAB_CLIENTS >= 1 && LAB_CLIENTS <= 100 )) || { echo "lab: LAB_CLIENTS=$LAB_CLIENTS is not 1..100" >&2; return 1; }
    LAB_NODES=$n
    local sw=$LAB_SW_NS cl=$LAB_CL_NS ns
    lab_ns_add "$sw" noipv6 || return 1
    ip -n "$sw" link add br0 type bridge stp_state 0 forward_delay 0
    ip -n "$sw" link set br0 up

    lab_ns_add "$cl" || return 1
    ip -n "$sw" link add "${P}c" type veth peer name "${P}e" netns "$cl"
    ip -n "$sw" link set "${P}c" master br0 up
    ip -n "$cl" link set "${P}e" up
    # veth hands frames over with a partial checksum (TX offload); af_packet on
    # the nodes would pass them on unfinished and the nodes' kernels would drop
    # them as TcpInCsumErrors. Make the client compute real checksums.
    ip netns exec "$cl" ethtool -K "${P}e" tx off >/dev/null
    for ((a = LAB_CLIENT_FIRST; a < LAB_CLIENT_FIRST + LAB_CLIENTS; ++a)); do
        ip -n "$cl" addr add "10.77.0.$a/24" dev "${P}e"
        if [[ $LAB_IPV6 == 1 ]]; then ip -n "$cl" -6 addr add "fd77::$a/16" dev "${P}e" nodad; fi
    done
    LAB_CLIENT_MAC=$(ip -n "$cl" -br link show "${P}e" | awk '{print $3}')

    for ((i = 1; i <= n; ++i)); do
        ns=$(lab_node_ns "$i")
        lab_ns_add "$ns" || return 1
        ip -n "$sw" link add "${P}s$i" type veth peer name "${P}w" netns "$ns"
        ip -n "$sw" link set "${P}s$i" master br0 up
        # The wire carries no IPv6 of the node's own (nlbd speaks there).
        if [[ $LAB_IPV6 == 1 ]]; then ip netns exec "$ns" sysctl -qw "net.ipv6.conf.${P}w.disable_ipv6=1" >/dev/null; fi
        ip -n "$ns" link set "${P}w" up
        # The node's kernel must stay silent on the wire.
        ip netns exec "$ns" sysctl -qw net.ipv4.conf.all.arp_ignore=8 >/dev/null 2>&1 || true
    done
}

# lab_write_config I MEMBERS EXTRA : node I's cluster file. MEMBERS "1,2,3"
# gives static membership, "" dynamic. EXTRA is appended to [cluster].
lab_write_config() {
    local i=$1 members=$2 extra=${3:-}
    local f="$LAB_WORK/node$i.toml"
    {
        echo "[cluster]"
        echo "name = \"lab.nlbd.test\""
        echo "vips = [\"$LAB_VIP\"]"
        echo "mode = \"$LAB_MODE\""
        echo "buckets = 4096"
        [[ -n $members ]] && echo "static_members = [$members]"
        echo "heartbeat_interval_ms = $LAB_HB_INTERVAL_MS"
        echo "heartbeat_tolerance = $LAB_HB_TOLERANCE"
        [[ -n $extra ]] && echo "$extra"
        echo
        echo "[host]"
        echo "id = $i"
        echo
        echo "[dataplane]"
        echo "idle_policy = \"adaptive\""
        echo
        echo "[ports.wire]"
        if [[ $LAB_WORKERS -gt 1 && $LAB_DISPATCH == rss ]]; then
            echo "device = \"net_af_packet$i,iface=${P}w,qpairs=$LAB_WORKERS\""
        else
            echo "device = \"net_af_packet$i,iface=${P}w,qpairs=1\""
        fi
        echo
        echo "[ports.local]"
        echo "device = \"net_tap$i,iface=${P}t\""
    } > "$f"
    echo "$f"
}

# lab_nlbd_supports OPTION : nlbd's --help mentions it (--help read once).
lab_nlbd_supports() {
    [[ -n ${LAB_NLBD_HELP:-} ]] || LAB_NLBD_HELP=$("$LAB_NLBD" --help 2>&1 || true)
    grep -q -- "$1" <<<"$LAB_NLBD_HELP"
}

# lab_start_node I [nlbd options...] : runs nlbd in node I's namespace, waits
# for its tap, configures the node's stack on it and starts the services.
lab_start_node() {
    local i=$1; shift
    lab_launch_node "$i" "$@" || return 1
    # Wait for the tap and the lcores line (bounded: 200 x 0.1 s).
    local k rc
    for ((k = 0; k < 200; ++k)); do
        rc=0; lab_node_ready "$i" || rc=$?
        ((rc == 0)) && break
        ((rc == 2)) && { echo "lab: nlbd $i exited at start" >&2; return 1; }
        sleep 0.1
    done
    ((k < 200)) || { echo "lab: nlbd $i did not start (no tap or no worker) in 20 s" >&2; return 1; }
    lab_configure_node "$i"
}

# lab_start_nodes "I J ..." [nlbd options...] : launches every listed nlbd at
# once, then configures each node (tap, addresses, services) as soon as it is
# ready, in whatever order they get there. Bounded: LAB_START_WAIT_S (10 s +
# 1 s per node) for all of them. Sets LAB_LAUNCH_MS (wall clock, ms) to the
# time just before the first launch. Few processes per pass (one grep over
# the pending logs, one `ip -batch` per node): with 32 nodes on 2 busy CPUs
# every fork counts.
lab_start_nodes() {
    local ids=($1); shift
    local i end pending=() logs=() ready
    LAB_LAUNCH_MS=$(lab_now_ms)
    for i in "${ids[@]}"; do lab_launch_node "$i" "$@" || return 1; done
    end=$(( $(lab_now_ms) + ${LAB_START_WAIT_S:-$((10 + ${#ids[@]}))} * 1000 ))
    pending=("${ids[@]}")
    while ((${#pending[@]})); do
        logs=()
        for i in "${pending[@]}"; do logs+=("$LAB_WORK/nlbd.$i.log"); done
        # The lcores line comes after the ports started: the tap exists then.
        ready=" $(grep -l "^nlbd: lcores:" "${logs[@]}" 2>/dev/null | sed 's/.*nlbd\.\([0-9]*\)\.log$/\1/' | tr '\n' ' ') "
        local left=()
        for i in "${pending[@]}"; do
            if [[ $ready == *" $i "* ]]; then
                lab_configure_node "$i" || { echo "lab: configuring node $i failed" >&2; return 1; }
            elif ! kill -0 "${LAB_NLBD_PID[$i]}" 2>/dev/null; then
                echo "lab: nlbd $i exited at start" >&2; return 1
            else
                left+=("$i")
            fi
        done
        pending=("${left[@]}")
        ((${#pending[@]})) || break
        (( $(lab_now_ms) < end )) || { echo "lab: nodes ${pending[*]} not ready after ${LAB_START_WAIT_S:-$((10 + ${#ids[@]}))} s" >&2; return 1; }
        sleep 0.2
    done
}

# lab_launch_node I [nlbd options...] : starts nlbd in node I's namespace in
# the background (pid of its `timeout` wrapper in LAB_NLBD_PID[I]); returns
# at once. The node's lcores go to CPU (I-1) mod nproc.
lab_launch_node() {
    local i=$1; shift
    local ns; ns=$(lab_node_ns "$i")
    local cpu=$(( (i - 1) % $(nproc) ))
    local ctl=() lcores=(-l "$cpu") nic=()
    if (( LAB_WORKERS > 1 )); then
        local rxq=1 l map=""
        [[ $LAB_DISPATCH == rss ]] && rxq=$LAB_WORKERS
        printf '[nic]\nname = "lab-%s-%s"\nworkers = %s\ndispatch = "%s"\nrx_queues = %s\nmempool_size = 16383\n' \
            "$LAB_WORKERS" "$LAB_DISPATCH" "$LAB_WORKERS" "$LAB_DISPATCH" "$rxq" > "$LAB_WORK/nic.$i.toml"
        nic=(--nic "$LAB_WORK/nic.$i.toml")
        # main, (distributor), workers: round-robin over the CPUs, shifted per node.
        for ((l = 0; l < LAB_WORKERS + 2; ++l)); do map+="${map:+,}$l@$(( (l + i) % $(nproc) ))"; done
        lcores=(--lcores "$map")
    fi
    if lab_nlbd_supports --control-socket; then
        ctl=(--control-socket "$LAB_WORK/ctl.$i.sock")
    fi
    ip netns exec "$ns" timeout -k 5 "${LAB_NLBD_TIMEOUT:-900}" "$LAB_NLBD" \
        --config "$LAB_WORK/node$i.toml" "${ctl[@]}" "${nic[@]}" --stats-json "$LAB_WORK/stats.$i.json" "$@" \
        -- --no-huge -m "$LAB_EAL_MEM" --no-pci --no-shconf "${lcores[@]}" --log-level=lib.eal:error \
        > "$LAB_WORK/nlbd.$i.log" 2>&1 &
    LAB_NLBD_PID[$i]=$!
}

# lab_node_ready I : 0 when node I's nlbd made its tap and reported its
# lcores (the PMD sets the tap's MAC when the port starts: configure the tap
# only then), 2 when it exited, 1 not yet.
lab_node_ready() {
    local i=$1 ns; ns=$(lab_node_ns "$i")
    kill -0 "${LAB_NLBD_PID[$i]}" 2>/dev/null || return 2
    grep -q "^nlbd: lcores:" "$LAB_WORK/nlbd.$i.log" 2>/dev/null || return 1
    ip -n "$ns" link show "${P}t" >/dev/null 2>&1 || return 1
    return 0
}

# lab_configure_node I : the node's stack on its tap (cluster MAC or the
# multicast rule, VIP, gateway, routes) and its services.
lab_configure_node() {
    local i=$1 ns; ns=$(lab_node_ns "$i")
    if [[ $LAB_MODE == unicast ]]; then
        # One `ip` process for the whole node (see lab_start_nodes).
        {
            echo "link set ${P}t down"
            echo "link set ${P}t address $(lab_cluster_mac)"
            echo "link set ${P}t up"
            echo "addr add $LAB_VIP/32 dev ${P}t"
            echo "neigh replace $LAB_GW lladdr $LAB_CLIENT_MAC dev ${P}t nud permanent"
            echo "route replace $LAB_GW/32 dev ${P}t"
            echo "route replace 10.77.0.0/24 via $LAB_GW dev ${P}t onlink"
            if [[ $LAB_IPV6 == 1 ]]; then
                echo "addr add $LAB_VIP6/128 dev ${P}t nodad"
                echo "neigh replace $LAB_GW6 lladdr $LAB_CLIENT_MAC dev ${P}t nud permanent"
                echo "route replace $LAB_GW6/128 dev ${P}t"
                echo "route replace $LAB_NET6 via $LAB_GW6 dev ${P}t onlink"
            fi
        } | ip -n "$ns" -batch - || { echo "lab: ip -batch on node $i failed" >&2; return 1; }
        lab_start_services "$i"
        return
    else
        # Multicast modes: nlbd hands the node frames addressed to the
        # multicast cluster MAC, which the kernel classifies as
        # PACKET_MULTICAST and TCP then discards. The node is the cluster
        # MAC's intended receiver: mark those frames as for this host.
        lab_tap_accept_cluster_mac "$ns" || return 1
    fi
    ip -n "$ns" addr add "$LAB_VIP/32" dev "${P}t"
    ip -n "$ns" neigh replace "$LAB_GW" lladdr "$LAB_CLIENT_MAC" dev "${P}t" nud permanent
    ip -n "$ns" route replace "$LAB_GW/32" dev "${P}t"
    ip -n "$ns" route replace 10.77.0.0/24 via "$LAB_GW" dev "${P}t" onlink
    if [[ $LAB_IPV6 == 1 ]]; then
        ip -n "$ns" -6 addr add "$LAB_VIP6/128" dev "${P}t" nodad
        ip -n "$ns" -6 neigh replace "$LAB_GW6" lladdr "$LAB_CLIENT_MAC" dev "${P}t" nud permanent
        ip -n "$ns" -6 route replace "$LAB_GW6/128" dev "${P}t"
        ip -n "$ns" -6 route replace "$LAB_NET6" via "$LAB_GW6" dev "${P}t" onlink
    fi
    lab_start_services "$i"
}

# lab_tap_accept_cluster_mac NS : nftables netdev ingress rule on the tap.
lab_tap_accept_cluster_mac() {
    local ns=$1
    command -v nft >/dev/null || { echo "lab: multicast modes need nft (nftables)" >&2; return 1; }
    ip netns exec "$ns" nft -f - <<NFT || { echo "lab: nft rule on ${P}t failed" >&2; return 1; }
table netdev nlbdlab {
    chain tap_in {
        type filter hook ingress device "${P}t" priority 0; policy accept;
        meta pkttype multicast meta pkttype set host
    }
}
NFT
    ip -n "$ns" link set "${P}t" up
}

lab_start_services() {
    local i=$1 ns; ns=$(lab_node_ns "$i")
    [[ ${LAB_SERVICES:-1} == 1 ]] || return 0   # LAB_SERVICES=0: none (benchmarks)
    # Stale servers of an earlier start of this node (rejoin) are still bound.
    if [[ -z ${LAB_SERVICES_UP[$i]:-} ]]; then
        ip netns exec "$ns" socat TCP-LISTEN:8080,bind=$LAB_VIP,fork,reuseaddr \
            SYSTEM:"echo node$i; echo \$SOCAT_PEERADDR \$SOCAT_PEERPORT >> $LAB_WORK/served.$i" \
            >/dev/null 2>&1 &
        LAB_PIDS+=($!)
        ip netns exec "$ns" socat TCP-LISTEN:9000,bind=$LAB_VIP,fork,reuseaddr EXEC:cat \
            >/dev/null 2>&1 &
        LAB_PIDS+=($!)
        declare -gA LAB_SERVICES_UP
        LAB_SERVICES_UP[$i]=1
    fi
}

lab_stop_node() {
    local i=$1 p=${LAB_NLBD_PID[$1]:-}
    [[ -n $p ]] || return 0
    kill -TERM "$p" 2>/dev/null || true
    for _ in $(seq 1 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$p" 2>/dev/null || true
    wait "$p" 2>/dev/null || true
    unset "LAB_NLBD_PID[$i]"
}

# lab_request ADDR_SUFFIX [PORT] : one request from client address 10.77.0.X;
# prints the answer ("nodeI") or nothing.
lab_request() {
    local a=$1 port=${2:-8080}
    local out
    out=$(ip netns exec "$LAB_CL_NS" timeout 5 socat -T 3 -u \
        "TCP:$LAB_VIP:$port,bind=10.77.0.$a,connect-timeout=2" - 2>/dev/null) || true
    printf '%s\n' "${out%%$'\n'*}"
}

# lab_wait_answer ADDR TRIES : retries a request until it is answered.
lab_wait_answer() {
    local a=$1 tries=${2:-30} r k
    for ((k = 0; k < tries; ++k)); do
        r=$(lab_request "$a")
        [[ -n $r ]] && { echo "$r"; return 0; }
        sleep 0.2
    done
    return 1
}

# Control socket helpers (dynamic membership).
lab_ctl() {
    local i=$1; shift
    [[ -x $LAB_NLBCTL ]] || { echo "lab: $LAB_NLBCTL is not built" >&2; return 1; }
    timeout 5 "$LAB_NLBCTL" --socket "$LAB_WORK/ctl.$i.sock" "$@"
}

lab_now_ms() { date +%s%3N; }

# lab_query I : node I's `nlbctl query --json` (one line), or nothing.
lab_query() { lab_ctl "$1" --json query 2>/dev/null | jq -c . 2>/dev/null || true; }

# lab_par_ctl "I J ..." NAME ARGS... : runs `nlbctl --json ARGS` on every
# listed node at once (a background job each, bounded by lab_ctl's 5 s
# timeout); node I's JSON answer goes to $LAB_WORK/NAME.I (empty when it
# did not answer).
lab_par_ctl() {
    local nodes=($1) name=$2 i pids=(); shift 2
    for i in "${nodes[@]}"; do
        ( lab_ctl "$i" --json "$@" > "$LAB_WORK/$name.$i" 2>/dev/null || : > "$LAB_WORK/$name.$i" ) &
        pids+=($!)
    done
    wait "${pids[@]}" 2>/dev/null || true
}

# lab_query_all "I J ..." : every node's query at once into LAB_Q[I].
lab_query_all() {
    local i
    lab_par_ctl "$1" q query
    for i in $1; do LAB_Q[$i]=""; IFS= read -r -d '' "LAB_Q[$i]" 2>/dev/null < "$LAB_WORK/q.$i" || true; done
}

# lab_converged_on "I J ..." : true when every listed node says converged, all
# have the same epoch, their members are exactly the listed nodes, and their
# buckets_owned of rule 0 add up to the bucket count. Leaves the queries in
# LAB_Q[I] and a one-line summary in LAB_CONV_SUMMARY.
declare -gA LAB_Q=()
lab_converged_on() {
    local nodes=($1) want i epoch="" sum=0 ok=0 buckets=0 summary="" files=()
    want=$(printf '%s\n' "${nodes[@]}" | sort -n | paste -sd, -)
    lab_query_all "${nodes[*]}"
    # One jq for every node's answer (an exec per node per pass is too much
    # for many nodes on a busy machine).
    declare -A row=()
    for i in "${nodes[@]}"; do [[ -s $LAB_WORK/q.$i ]] && files+=("$LAB_WORK/q.$i"); done
    if ((${#files[@]})); then
        local f conv ep mem own b
        while IFS=$'\t' read -r f conv ep mem own b; do
            row[${f##*.}]="$conv $ep $mem $own $b"
        done < <(jq -r '[input_filename, .converged, .epoch, (.members|map(tostring)|join(",")), (.rules[0].buckets_owned // 0), .buckets] | @tsv' "${files[@]}" 2>/dev/null)
    fi
    for i in "${nodes[@]}"; do
        [[ -n ${row[$i]:-} ]] || { ok=1; summary+=" n$i:noanswer"; continue; }
        local conv ep mem own b
        read -r conv ep mem own b <<<"${row[$i]}"
        summary+=" n$i:conv=$conv,epoch=$ep,members=[$mem],owned=$own"
        [[ $conv == true ]] || ok=1
        [[ -z $epoch || $epoch == "$ep" ]] || ok=1
        epoch=$ep
        [[ $mem == "$want" ]] || ok=1
        sum=$((sum + own)); buckets=$b
    done
    ((sum == buckets)) || ok=1
    LAB_CONV_SUMMARY="${summary# } sum=$sum/$buckets"
    return $ok
}

# lab_wait_converged "I J ..." TIMEOUT_MS : polls every LAB_CONV_POLL_S
# (0.01 s; many nodes: the polls themselves load the CPUs the nodes need,
# and the event log times convergence anyway) (bounded).
lab_wait_converged() {
    local nodes=$1 timeout_ms=${2:-10000} t0 now
    t0=$(lab_now_ms)
    while :; do
        lab_converged_on "$nodes" && return 0
        now=$(lab_now_ms)
        ((now - t0 < timeout_ms)) || { echo "lab: not converged on [$nodes] after $timeout_ms ms: $LAB_CONV_SUMMARY" >&2; return 1; }
        sleep "${LAB_CONV_POLL_S:-0.01}"
    done
}

# lab_owners : one request per client address; fills LAB_OWNER[addr]=nodeI.
# Returns 1 when some client got no answer (its address in LAB_UNSERVED).
declare -gA LAB_OWNER=()
lab_owners() {
    local a ans rc=0
    LAB_OWNER=(); LAB_UNSERVED=""
    for ((a = LAB_CLIENT_FIRST; a < LAB_CLIENT_FIRST + LAB_CLIENTS; ++a)); do
        ans=$(lab_request "$a")
        if [[ $ans =~ ^node[0-9]+$ ]]; then LAB_OWNER[$a]=$ans; else LAB_UNSERVED+=" $a"; rc=1; fi
    done
    return $rc
}

lab_owner_summary() {
    local a s=""
    for ((a = LAB_CLIENT_FIRST; a < LAB_CLIENT_FIRST + LAB_CLIENTS; ++a)); do s+="$a:${LAB_OWNER[$a]:--} "; done
    echo "$s"
}

# lab_check_exactly_once : no peer (address:port) was served by two nodes.
lab_check_exactly_once() {
    local i
    for i in $(seq 1 "$LAB_NODES"); do sort -u "$LAB_WORK/served.$i" 2>/dev/null || true; done | sort > "$LAB_WORK/peers.all"
    [[ -s $LAB_WORK/peers.all ]] || { echo "lab: the services logged no connection" >&2; return 1; }
    local d; d=$(uniq -d "$LAB_WORK/peers.all" | wc -l)
    ((d == 0)) || { echo "lab: $d connections served by more than one node: $(uniq -d "$LAB_WORK/peers.all" | head -3 | tr '\n' ' ')" >&2; return 1; }
}

# lab_echo_client NAME ADDR LINES [PERIOD_S] : a long-lived connection from
# 10.77.0.ADDR to VIP:9000 sending one line every PERIOD_S (default 0.1 s)
# and reading the echoes into echo.NAME.out; its exit status goes to
# echo.NAME.rc. Runs in the background; pid in LAB_ECHO_PID[NAME].
declare -gA LAB_ECHO_PID=()
lab_echo_client() {
    local name=$1 a=$2 n=$3 period=${4:-0.1}
    (
        set +e +o pipefail
        for ((k = 1; k <= n; ++k)); do echo "ping $k" || break; sleep "$period"; done |
            ip netns exec "$LAB_CL_NS" socat -T 5 - "TCP:$LAB_VIP:9000,bind=10.77.0.$a,connect-timeout=2" \
                > "$LAB_WORK/echo.$name.out" 2> "$LAB_WORK/echo.$name.err"
        echo "${PIPESTATUS[1]}" > "$LAB_WORK/echo.$name.rc"
    ) &
    LAB_ECHO_PID[$name]=$!
    LAB_PIDS+=($!)
}

# lab_echo_result NAME LINES : waits (bounded) for the client to finish;
# true when it exited 0 and every line came back in order.
lab_echo_result() {
    local name=$1 n=$2 k
    for ((k = 0; k < 600; ++k)); do [[ -f $LAB_WORK/echo.$name.rc ]] && break; sleep 0.1; done
    local rc; rc=$(cat "$LAB_WORK/echo.$name.rc" 2>/dev/null || echo timeout)
    local got; got=$(grep -c '^ping ' "$LAB_WORK/echo.$name.out" 2>/dev/null || true)
    LAB_ECHO_SUMMARY="echo $name: rc=$rc, $got/$n lines echoed"
    [[ $rc == 0 && $got == "$n" ]] && diff -q <(seq 1 "$n" | sed 's/^/ping /') "$LAB_WORK/echo.$name.out" >/dev/null
}

# lab_events I : node I's event log (nlbctl --json display), one JSON event
# per line ({"seq","time","kind","severity","text","who"}), or nothing.
lab_events() { lab_ctl "$1" --json display 2>/dev/null | jq -c '.events[]' 2>/dev/null || true; }
# lab_wait_event I KIND REGEX [MS] : until node I has an event of KIND whose
# text matches REGEX (default 10 s); the latest match is left in
# $LAB_WORK/event.match. (jq -e judges only the last input, so the output is
# selected and tested instead.)
lab_wait_event() {
    local i=$1 kind=$2 re=$3 ms=${4:-10000} end
    end=$(( $(lab_now_ms) + ms ))
    while (( $(lab_now_ms) < end )); do
        lab_events "$i" | jq -c --arg k "$kind" --arg r "$re" 'select(.kind == $k and (.text | test($r)))' 2>/dev/null \
            | tail -1 > "$LAB_WORK/event.match"
        [[ -s $LAB_WORK/event.match ]] && return 0
        sleep 0.2
    done
    return 1
}

# lab_stats I : node I's live stats JSON (nlbctl stats --json).
lab_stats() { lab_ctl "$1" --json stats 2>/dev/null | jq -c . 2>/dev/null || true; }

# lab_rst_watch : records every TCP RST that crosses the switch toward the
# client (with Ethernet headers: the masked source MAC 02-0I-... names the
# node that sent it). lab_rst_report prints them.
lab_rst_watch() {
    ip netns exec "$LAB_SW_NS" timeout 900 tcpdump -l -n -e -i "${P}c" \
        'tcp[tcpflags] & tcp-rst != 0' > "$LAB_WORK/rst.txt" 2>/dev/null &
    LAB_PIDS+=($!)
}
lab_rst_report() {
    local n; n=$(grep -c . "$LAB_WORK/rst.txt" 2>/dev/null || true)
    echo "TCP resets seen by the client: ${n:-0}"
    [[ ${n:-0} == 0 ]] || head -n 10 "$LAB_WORK/rst.txt"
}

# ---- many hosts: events, bucket maps, processes --------------------------------

# lab_events_all "I J ..." : every node's event log at once, one JSON event
# per line in $LAB_WORK/events.I, each with "ms" added: its timestamp in
# milliseconds since the epoch (nlbd's wall clock, the same clock as
# lab_now_ms on this machine). `display` returns the latest 30 events.
lab_events_all() {
    local i
    lab_par_ctl "$1" display display
    for i in $1; do
        jq -c '.events[] | . + {ms: (((.time[0:19] + "Z") | fromdateiso8601) * 1000 + (.time[20:23] | tonumber))}' \
            "$LAB_WORK/display.$i" > "$LAB_WORK/events.$i" 2>/dev/null || : > "$LAB_WORK/events.$i"
    done
}

# lab_converged_re "I J ..." : regex of the text of a `converged` event whose
# members are exactly the listed hosts.
lab_converged_re() {
    local m; m=$(printf '%s\n' $1 | sort -n | paste -sd, -)
    echo "^converged( as the default host)? at epoch [0-9]+ with hosts \\[$m\\]\$"
}

# lab_event_times "I J ..." KIND REGEX SINCE_MS : after lab_events_all, for
# each listed node the first and the last time (ms) of an event of KIND whose
# text matches REGEX, at or after SINCE_MS: "I FIRST LAST" per line in
# LAB_EVT (-1 -1 when the node has none). Returns 1 when some node has none.
lab_event_times() {
    local i rc=0 line
    LAB_EVT=""
    for i in $1; do
        line=$(jq -rs --arg k "$2" --arg r "$3" --argjson t "$4" \
            '[.[] | select(.kind == $k and (.text | test($r)) and .ms >= $t) | .ms] | if length == 0 then "-1 -1" else "\(min) \(max)" end' \
            "$LAB_WORK/events.$i" 2>/dev/null) || line="-1 -1"
        [[ -n $line ]] || line="-1 -1"
        [[ $line != "-1 -1" ]] || rc=1
        LAB_EVT+="$i $line"$'\n'
    done
    return $rc
}

# lab_event_span COLUMN : over LAB_EVT, the latest FIRST (COLUMN 2) or LAST
# (COLUMN 3) time: when the slowest node got there.
lab_event_span() { awk -v c="$1" '$c > m {m = $c} END {printf "%.0f\n", m}' <<<"$LAB_EVT"; }

# lab_buckets_all "I J ..." [PORT] : every node's bucket owners of the rule
# that covers PORT (8080) at once (nlbctl buckets); owners of node I, one
# host id per bucket, space separated, in LAB_OWNERS[I] (empty when it did
# not answer), its epoch in LAB_OWNERS_EPOCH[I].
declare -gA LAB_OWNERS=() LAB_OWNERS_EPOCH=()
lab_buckets_all() {
    local i
    lab_par_ctl "$1" buckets buckets "${2:-8080}"
    for i in $1; do
        LAB_OWNERS[$i]=$(jq -r '.rules[0].owners | map(tostring) | join(" ")' "$LAB_WORK/buckets.$i" 2>/dev/null || true)
        LAB_OWNERS_EPOCH[$i]=$(jq -r '.epoch' "$LAB_WORK/buckets.$i" 2>/dev/null || true)
    done
}

# lab_same_map "I J ..." : after lab_buckets_all, every listed node has the
# same owners (one agreed map); LAB_MAP is that map.
lab_same_map() {
    local nodes=($1) i
    LAB_MAP=${LAB_OWNERS[${nodes[0]}]:-}
    [[ -n $LAB_MAP ]] || { echo "lab: node ${nodes[0]} gave no bucket map" >&2; return 1; }
    for i in "${nodes[@]}"; do
        [[ ${LAB_OWNERS[$i]:-} == "$LAB_MAP" ]] || { echo "lab: node $i's bucket map differs from node ${nodes[0]}'s" >&2; return 1; }
    done
}

# lab_map_moves BEFORE AFTER : "FROM>TO COUNT" per owner change between two
# maps (space-separated owners), one per line; LAB_MOVED = buckets moved.
lab_map_moves() {
    LAB_MOVES=$(paste -d' ' <(tr ' ' '\n' <<<"$1") <(tr ' ' '\n' <<<"$2") |
        awk '$1 != $2 {n[$1 ">" $2]++} END {for (k in n) print k, n[k]}' | sort -n)
    LAB_MOVED=$(awk '{s += $2} END {print s + 0}' <<<"$LAB_MOVES")
}

# lab_map_count MAP HOST : buckets HOST owns in MAP.
lab_map_count() { tr ' ' '\n' <<<"$1" | grep -cx "$2" || true; }

# lab_nlbd_pid I : the nlbd process of node I (the child of its `timeout`).
# (/proc's children list; pgrep when the kernel has no such list).
lab_nlbd_pid() {
    local w=${LAB_NLBD_PID[$1]:-0} c
    if [[ -r /proc/$w/task/$w/children ]]; then
        for c in $(cat "/proc/$w/task/$w/children" 2>/dev/null); do
            [[ $(cat "/proc/$c/comm" 2>/dev/null) == nlbd ]] && { echo "$c"; return 0; }
        done
        return 0
    fi
    pgrep -P "$w" -x nlbd 2>/dev/null | head -n 1
}

# lab_hb_loss PCT : the switch drops PCT % of the heartbeat frames (EtherType
# 0x88B5) it forwards, at random, independently per frame and receiver
# (nftables numgen), counting them; 100 drops all; 0 removes the rule.
lab_hb_loss() {
    ip netns exec "$LAB_SW_NS" nft delete table bridge hbloss 2>/dev/null || true
    (( $1 > 0 )) || return 0
    local pick="numgen random mod 100 < $1"
    (( $1 < 100 )) || pick=""
    ip netns exec "$LAB_SW_NS" nft -f - <<EOF
table bridge hbloss {
  counter seen { }
  counter dropped { }
  chain hb {
    type filter hook forward priority 0; policy accept;
    ether type 0x88b5 counter name seen
    ether type 0x88b5 $pick counter name dropped drop
  }
}
EOF
}
# lab_hb_counter seen|dropped : heartbeat frames the loss rule saw / dropped.
lab_hb_counter() {
    ip netns exec "$LAB_SW_NS" nft -j list counter bridge hbloss "$1" | jq '.nftables[] | select(.counter) | .counter.packets'
}

# lab_kill_node I : SIGKILL to node I's nlbd (a host that dies: no leave
# announced, its tap goes away); waits (bounded) for it to be gone.
lab_kill_node() {
    local i=$1 p k
    p=$(lab_nlbd_pid "$i")
    [[ -n $p ]] || { echo "lab: node $i has no nlbd to kill" >&2; return 1; }
    # Its `timeout` dies of the same signal: out of the job table first, so
    # that bash prints no "Killed" report for it.
    disown "${LAB_NLBD_PID[$i]}" 2>/dev/null || true
    kill -KILL "$p" || return 1
    for ((k = 0; k < 50; ++k)); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    unset "LAB_NLBD_PID[$i]"
}

# lab_rss_kib "I J ..." : VmRSS (KiB) of every listed node's nlbd, one per
# line "I KIB".
lab_rss_kib() {
    local i p
    for i in $1; do
        p=$(lab_nlbd_pid "$i")
        echo "$i $(awk '/^VmRSS:/ {print $2}' "/proc/$p/status" 2>/dev/null || echo 0)"
    done
}
