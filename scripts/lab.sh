#!/usr/bin/env bash
# The seed's scenario as a lab on one machine: two Client Access nodes behind
# the cluster name mail.ehlo.dk, each running nlbd and real services, reached
# over IPv4 and IPv6.
#
#   scripts/lab.sh up   [--mode unicast|multicast|igmp] [--build DIR]
#   scripts/lab.sh demo [--mode unicast|multicast|igmp] [--build DIR]
#   scripts/lab.sh down
#
# Network namespaces (tests/cluster/lib.sh builds them):
#   switch : Linux bridge br0 (IPv6 off: it only bridges)
#   client : 20 client addresses 10.77.0.101..120 and fd77::101..120, plus
#            fd77:0:N:{1,2,ffff}::7 (N = 1..16: 16 /48s) for network affinity
#   cas01  : host id 1, nlbd (wire: net_af_packet on the bridge, IPv6 off;
#            local: net_tap with the VIPs 10.77.0.10 and fd77::10 and the
#            dedicated address 10.77.0.11), nginx on :443 (TLS) and :80,
#            SMTP listener on :25 (IPv4 and IPv6)
#   cas02  : host id 2, the same with 10.77.0.12
#   router : fd77::2 on the bridge, fd78::1 on an MTU-1280 link to
#   remote : fd78::101..112 (MTU 1500): a real path-MTU drop for PMTUD
# Names are prefixed with $LAB_NS_PREFIX when it is set (the test does).
# IPv6 is switched on only inside these namespaces; no other interface is
# touched. Cluster files, certificates, logs: $LAB_DIR (default /tmp/nlbd-lab).
#
# `up` leaves the lab running (`ip netns exec client curl --cacert
# $LAB_DIR/pki/ca.crt --resolve 'mail.ehlo.dk:443:[fd77::10],10.77.0.10'
# -6 https://mail.ehlo.dk/owa`, -4 for IPv4); `down` removes it. `demo`
# brings a fresh lab up, runs the scenario, prints the report, exits non-zero
# if any expectation failed and always tears the lab down. Needs root.
# Environment: LAB_BOUND_SLACK_MS (polling slack on the failover bound, 300),
# LAB_STRICT_REJOIN=1 (resets while a node rejoins fail the demo), KEEP=1 /
# KEEP_ON_FAIL=1 (keep $LAB_DIR with logs), NLBD / NLBCTL (binaries).
set -euo pipefail
lab_sh_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

# shellcheck source=lab_igmp.sh
source "$lab_sh_root/scripts/lab_igmp.sh"

usage() { sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | grep '^#' | sed 's/^# \{0,1\}//'; exit 2; }

cmd=${1:-}
[[ -n $cmd ]] || usage
shift
mode=unicast
build=$lab_sh_root/build
while (($#)); do
    case $1 in
        --mode) mode=${2:?--mode needs unicast, multicast or igmp}; shift 2 ;;
        --mode=*) mode=${1#--mode=}; shift ;;
        --build) build=${2:?--build needs a directory}; shift 2 ;;
        --build=*) build=${1#--build=}; shift ;;
        -h|--help) usage ;;
        *) echo "lab: unknown argument '$1'" >&2; usage ;;
    esac
done
case $mode in unicast|multicast|igmp) ;; *) echo "lab: --mode must be unicast, multicast or igmp" >&2; exit 2 ;; esac

# --- names -------------------------------------------------------------------
pfx=${LAB_NS_PREFIX:-}
LAB_PREFIX=lab          # interface names: labw (wire), labt (tap), labe, labc, labsI
LAB_SW_NS=${pfx}switch
LAB_CL_NS=${pfx}client
declare -A LAB_NODE_NS=([1]=${pfx}cas01 [2]=${pfx}cas02)
LAB_DIR=${LAB_DIR:-${TMPDIR:-/tmp}/nlbd-lab${pfx:+.$pfx}}
LAB_MODE=$mode
CLUSTER=mail.ehlo.dk
DOMAIN=ehlo.dk
NODE_NAMES=([1]=cas01 [2]=cas02)
NETBIOS=([1]=CAS01 [2]=CAS02)
DEDICATED=([1]=10.77.0.11 [2]=10.77.0.12)
# PMTUD: a remote IPv6 client (fd78::101..112) behind a router whose link to
# it has MTU 1280 while the client's own interface has 1500 (a real path MTU
# drop on the client's side).
LAB_RT_NS=${pfx}router
LAB_RM_NS=${pfx}remote
RT6=fd77::2
REMOTE_FIRST=101
REMOTES=12
LAB_ALL_NS=("$LAB_SW_NS" "$LAB_CL_NS" "${LAB_NODE_NS[1]}" "${LAB_NODE_NS[2]}" "$LAB_RT_NS" "$LAB_RM_NS")
# IPv6 clients (lib.sh adds fd77::101..120 beside 10.77.0.101..120) and, for
# network affinity, 16 client networks fd77:0:N::/48 with three addresses
# each in different /64s (a /64 mask or single affinity would split them).
NET6_ADDRS=()
for ((n6 = 1; n6 <= 16; ++n6)); do
    for s6 in 1 2 ffff; do NET6_ADDRS+=("$(printf 'fd77:0:%x:%s::7' "$n6" "$s6")"); done
done
unset n6 s6

lab_exists() {
    local ns
    for ns in "${LAB_ALL_NS[@]}"; do
        ip netns list 2>/dev/null | awk '{print $1}' | grep -qx "$ns" && return 0
    done
    return 1
}

# Removes the lab by its fixed names: every process inside its namespaces
# (all started by the lab), the namespaces, the work dir.
lab_down() {
    local ns p found=0
    for ns in "${LAB_ALL_NS[@]}"; do
        ip netns list 2>/dev/null | awk '{print $1}' | grep -qx "$ns" || continue
        found=1
        for p in $(ip netns pids "$ns" 2>/dev/null); do kill -TERM "$p" 2>/dev/null || true; done
    done
    if ((found)); then
        sleep 0.5
        for ns in "${LAB_ALL_NS[@]}"; do
            for p in $(ip netns pids "$ns" 2>/dev/null); do kill -KILL "$p" 2>/dev/null || true; done
        done
        sleep 0.2
        for ns in "${LAB_ALL_NS[@]}"; do ip netns del "$ns" 2>/dev/null || true; done
    fi
    rm -rf "$LAB_DIR"
    ((found)) && echo "lab: down (namespaces ${LAB_ALL_NS[*]} removed)" || echo "lab: nothing to remove"
}

# --- bring-up ----------------------------------------------------------------
lab_need_tools() {
    local t missing=()
    for t in nginx curl openssl jq socat ethtool timeout tcpdump; do command -v "$t" >/dev/null || missing+=("$t"); done
    [[ $mode == unicast ]] || command -v nft >/dev/null || missing+=(nft)
    if ((${#missing[@]})); then
        echo "SKIP: the lab needs ${missing[*]} (scripts/setup.sh installs them)" >&2
        exit 77
    fi
}

# Certificates: a lab CA and one SAN certificate for every name of the
# scenario. As in the seed, it is made for cas01 and moved to cas02 as a
# password-protected PKCS#12 file (nlbctl cert issue / export / import when
# this build has them, else the openssl CLI). nginx on casNN uses
# pki/casNN.crt + pki/casNN.key; clients trust pki/ca.crt.
lab_has_cert_cmd() { [[ -x ${LAB_NLBCTL:-} ]] && "$LAB_NLBCTL" cert --help 2>&1 | grep -q -- "--new-ca-key"; }
lab_make_certs() {
    local d=$LAB_WORK/pki
    mkdir -m 0700 "$d"
    if lab_has_cert_cmd; then
        od -An -N12 -tx1 /dev/urandom | tr -d ' \n' > "$d/p12.pass"
        if "$LAB_NLBCTL" cert issue --cluster "$CLUSTER" --node "cas01.$DOMAIN,cas02.$DOMAIN" \
                --netbios CAS01,CAS02 --cert "$d/cas01.crt" --key "$d/cas01.key" \
                --new-ca "$d/ca.crt" --new-ca-key "$d/ca.key" --ca-name "nlbd lab CA" --days 7 \
                > "$LAB_WORK/cert.log" 2>&1 &&
            "$LAB_NLBCTL" cert export --cert "$d/cas01.crt" --key "$d/cas01.key" --ca "$d/ca.crt" \
                --out "$d/$CLUSTER.p12" --password-file "$d/p12.pass" >> "$LAB_WORK/cert.log" 2>&1 &&
            "$LAB_NLBCTL" cert import --in "$d/$CLUSTER.p12" --password-file "$d/p12.pass" \
                --cert "$d/cas02.crt" --key "$d/cas02.key" >> "$LAB_WORK/cert.log" 2>&1; then
            LAB_CERT_TOOL="nlbctl cert issue --new-ca, moved to cas02 with nlbctl cert export/import (PKCS#12)"
            return 0
        fi
        echo "lab: nlbctl cert failed ($(tail -n1 "$LAB_WORK/cert.log")); using openssl" >&2
    fi
    local san="DNS:$CLUSTER,DNS:autodiscover.$DOMAIN,DNS:cas01.$DOMAIN,DNS:cas02.$DOMAIN,DNS:CAS01,DNS:CAS02"
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 7 \
        -subj "/O=nlbd lab/CN=nlbd lab CA" -keyout "$d/ca.key" -out "$d/ca.crt" 2>/dev/null
    openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
        -subj "/O=nlbd lab/CN=$CLUSTER" -addext "subjectAltName=$san" \
        -keyout "$d/cas01.key" -out "$d/cas01.csr" 2>/dev/null
    openssl x509 -req -in "$d/cas01.csr" -CA "$d/ca.crt" -CAkey "$d/ca.key" -CAcreateserial \
        -days 7 -copy_extensions copy -out "$d/cas01.crt" 2>/dev/null
    cp "$d/cas01.crt" "$d/cas02.crt"
    cp "$d/cas01.key" "$d/cas02.key"
    LAB_CERT_TOOL="openssl (nlbctl cert is not in this build)"
}

# lab_write_node_config I : node I's cluster file from the template. The
# health check and telemetry snippets go in when this nlbd accepts them
# (LAB_FEATURES, probed once by lab_probe_features).
lab_write_node_config() {
    local i=$1 c=$lab_sh_root/configs/lab empty=/dev/null
    local health=$empty tele=$empty
    [[ " ${LAB_FEATURES:-} " == *" health "* ]] && health=$c/health_443.toml.in
    [[ " ${LAB_FEATURES:-} " == *" telemetry "* ]] && tele=$c/telemetry.toml.in
    sed -e "/^#@HEALTH_443@\$/r $health" -e "/^#@HEALTH_443@\$/d" \
        -e "/^#@TELEMETRY@\$/r $tele" -e "/^#@TELEMETRY@\$/d" \
        "$c/cluster.toml.in" |
    sed -e "s|@NAME@|$CLUSTER|g" -e "s|@VIP@|$LAB_VIP|g" -e "s|@VIP6@|$LAB_VIP6|g" -e "s|@MODE@|$LAB_MODE|g" \
        -e "s|@HB_INTERVAL_MS@|$LAB_HB_INTERVAL_MS|g" -e "s|@HB_TOLERANCE@|$LAB_HB_TOLERANCE|g" \
        -e "s|@SECRET_FILE@|cluster.key|g" -e "s|@HOST_ID@|$i|g" \
        -e "s|@DEDICATED_IP@|${DEDICATED[$i]}|g" -e "s|@WIRE_IF@|${P}w|g" -e "s|@TAP_IF@|${P}t|g" \
        > "$LAB_WORK/node$i.toml"
}

# lab_probe_features : which optional parts this nlbd accepts (health checks
# per port rule, telemetry); each is tried with --check-config on node 1's file.
lab_probe_features() {
    local f keep=""
    for f in health telemetry; do
        LAB_FEATURES="$keep $f"
        lab_write_node_config 1
        if "$LAB_NLBD" --config "$LAB_WORK/node1.toml" --check-config > "$LAB_WORK/probe.$f.log" 2>&1; then
            keep+=" $f"
        fi
    done
    LAB_FEATURES=${keep# }
}

# lab_remote_topology : router (labg fd77::2/16 on the switch, labh
# fd78::1/64 MTU 1280 toward the remote client, forwarding) and the remote
# client (labf fd78::101..112/64, MTU 1500, default route via fd78::1).
lab_remote_topology() {
    local rt=$LAB_RT_NS rm=$LAB_RM_NS a
    lab_ns_add "$rt" || return 1
    lab_ns_add "$rm" || return 1
    ip -n "$LAB_SW_NS" link add "${P}r" type veth peer name "${P}g" netns "$rt"
    ip -n "$LAB_SW_NS" link set "${P}r" master br0 up
    ip -n "$rt" link add "${P}h" type veth peer name "${P}f" netns "$rm"
    ip -n "$rt" link set "${P}h" mtu 1280
    ip netns exec "$rt" sysctl -qw net.ipv6.conf.all.forwarding=1 >/dev/null
    ip -n "$rt" -6 addr add "$RT6/16" dev "${P}g" nodad
    # Neighbour solicitations for forwarded packets come from a link-local
    # address (the namespaces make none by themselves).
    ip -n "$rt" -6 addr add fe80::2/64 dev "${P}g" nodad
    ip -n "$rt" -6 addr add fd78::1/64 dev "${P}h" nodad
    ip -n "$rt" -6 addr add fe80::1/64 dev "${P}h" nodad
    ip -n "$rm" link set "${P}f" mtu 1500
    for ((a = REMOTE_FIRST; a < REMOTE_FIRST + REMOTES; ++a)); do
        ip -n "$rm" -6 addr add "fd78::$a/64" dev "${P}f" nodad
    done
    ip -n "$rt" link set "${P}g" up
    ip -n "$rt" link set "${P}h" up
    ip -n "$rm" link set "${P}f" up
    ip -n "$rm" -6 route add default via fd78::1 dev "${P}f"
    # Real checksums on the way to the nodes' af_packet ports (see lib.sh).
    ip netns exec "$rt" ethtool -K "${P}g" tx off >/dev/null
    ip netns exec "$rt" ethtool -K "${P}h" tx off >/dev/null
    ip netns exec "$rm" ethtool -K "${P}f" tx off >/dev/null
    LAB_RT_MAC=$(ip -n "$rt" -br link show "${P}g" | awk '{print $3}')
}

lab_start_nginx() {
    local i=$1 ns=${LAB_NODE_NS[$1]} d=$LAB_WORK/${NODE_NAMES[$1]}
    mkdir -p "$d/tmp"
    local big; big=$(head -c 3072 /dev/zero | tr '\0' 'x')
    sed -e "s|@NODE@|${NODE_NAMES[$i]}|g" -e "s|@NETBIOS@|${NETBIOS[$i]}|g" -e "s|@DIR@|$d|g" \
        -e "s|@CLUSTER@|$CLUSTER|g" -e "s|@DOMAIN@|$DOMAIN|g" -e "s|@BIG@|$big|" \
        -e "s|@CERT@|$LAB_WORK/pki/${NODE_NAMES[$i]}.crt|g" -e "s|@KEY@|$LAB_WORK/pki/${NODE_NAMES[$i]}.key|g" \
        "$lab_sh_root/configs/lab/nginx.conf.in" > "$d/nginx.conf"
    rm -f "$d/nginx.pid"
    ip netns exec "$ns" nginx -e "$d/error.log" -p "$d" -c "$d/nginx.conf" >> "$d/nginx.out" 2>&1 &
    LAB_PIDS+=($!)
    local k
    for ((k = 0; k < 50; ++k)); do
        [[ -s $d/nginx.pid ]] && ip netns exec "$ns" ss -Hltn 'sport = :443' | grep -q . && return 0
        sleep 0.1
    done
    echo "lab: nginx on ${NODE_NAMES[$i]} did not start: $(tail -n 3 "$d/error.log" "$d/nginx.out" 2>/dev/null)" >&2
    return 1
}

lab_stop_nginx() {
    local i=$1 d=$LAB_WORK/${NODE_NAMES[$1]} p
    p=$(cat "$d/nginx.pid" 2>/dev/null) || return 0
    kill -TERM "$p" 2>/dev/null || true
    for _ in $(seq 1 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
}

lab_start_smtp() {
    local i=$1 ns=${LAB_NODE_NS[$1]}
    ip netns exec "$ns" socat TCP-LISTEN:25,fork,reuseaddr \
        SYSTEM:"echo '220 ${NODE_NAMES[$i]}.$DOMAIN ESMTP nlbd-lab'; sleep 1" >/dev/null 2>&1 &
    LAB_PIDS+=($!)
    ip netns exec "$ns" socat TCP6-LISTEN:25,ipv6only=1,fork,reuseaddr \
        SYSTEM:"echo '220 ${NODE_NAMES[$i]}.$DOMAIN ESMTP nlbd-lab'; sleep 1" >/dev/null 2>&1 &
    LAB_PIDS+=($!)
}

lab_bring_up() {
    lab_need_tools
    if lab_exists; then
        if [[ $cmd == demo ]]; then
            echo "lab: a lab is already up; tearing it down first"
            lab_down >/dev/null
        else
            echo "lab: already up (namespaces ${LAB_ALL_NS[*]}); run '$0 down' first" >&2
            exit 1
        fi
    fi
    rm -rf "$LAB_DIR"
    LAB_WORK_DIR=$LAB_DIR
    LAB_IPV6=1
    # shellcheck source=../tests/cluster/lib.sh
    source "$lab_sh_root/tests/cluster/lib.sh"
    lab_require
    export LAB_PREFIX LAB_WORK_DIR
    lab_init "$build" >/dev/null
    [[ -x $LAB_NLBCTL ]] || { echo "lab: $LAB_NLBCTL is not built" >&2; exit 1; }
    lab_topology 2 || lab_fail "topology"
    local n6
    for n6 in "${NET6_ADDRS[@]}"; do ip -n "$LAB_CL_NS" -6 addr add "$n6/16" dev "${P}e" nodad; done
    lab_remote_topology || lab_fail "router and remote client"
    if [[ $LAB_MODE == igmp ]]; then lab_igmp_switch || lab_fail "igmp: snooping switch and captures"; fi
    lab_make_certs || lab_fail "certificates"
    od -An -N32 -tx1 /dev/urandom | tr -d ' \n' > "$LAB_WORK/cluster.key"
    chmod 0600 "$LAB_WORK/cluster.key"
    local i
    lab_probe_features
    for i in 1 2; do lab_write_node_config "$i"; done
    for i in 1 2; do
        "$LAB_NLBD" --config "$LAB_WORK/node$i.toml" --check-config > "$LAB_WORK/check.$i.log" 2>&1 ||
            lab_fail "node $i's cluster file: $(cat "$LAB_WORK/check.$i.log")"
    done
    # Services first (they listen on every address), so that the health
    # checks find them as soon as nlbd starts.
    for i in 1 2; do
        lab_start_nginx "$i" || lab_fail "nginx on ${NODE_NAMES[$i]}"
        lab_start_smtp "$i"
    done
    for i in 1 2; do
        LAB_T_START[$i]=$(lab_now_ms)
        lab_start_node "$i" || lab_fail "start nlbd on ${NODE_NAMES[$i]}"
        ip -n "${LAB_NODE_NS[$i]}" addr add "${DEDICATED[$i]}/32" dev "${P}t"
        # The remote network through the router (its MAC as a permanent
        # neighbour, as the client's is for the gateway); no MTU probing, so
        # only a packet-too-big that reaches this node shrinks its segments.
        ip -n "${LAB_NODE_NS[$i]}" -6 neigh replace "$RT6" lladdr "$LAB_RT_MAC" dev "${P}t" nud permanent
        ip -n "${LAB_NODE_NS[$i]}" -6 route replace fd78::/64 via "$RT6" dev "${P}t" onlink
        ip netns exec "${LAB_NODE_NS[$i]}" sysctl -qw net.ipv4.tcp_mtu_probing=0 >/dev/null
    done
    lab_wait_converged "1 2" 15000 || lab_fail "the nodes did not converge"
    lab_wait_serving 10000 || lab_fail "the nodes do not both serve HTTPS: $(rule0_state 1) / $(rule0_state 2)"
}

# lab_wait_serving TIMEOUT_MS : both nodes converged on [1,2], rule 0 (HTTPS)
# enabled with a share of the buckets and nothing dirty on either (health
# checks up, hand-overs done): the steady state the demo starts from.
lab_wait_serving() {
    local t0 i q ok
    t0=$(lab_now_ms)
    while :; do
        ok=1
        for i in 1 2; do
            q=$(lab_ctl "$i" --json query 2>/dev/null | jq -r \
                '"\(.converged) \(.members|map(tostring)|join(",")) \(.rules[0].state) \(.rules[0].buckets_owned) \(.dirty_buckets)"' 2>/dev/null) || q=""
            [[ $q =~ ^true\ 1,2\ enabled\ [1-9][0-9]*\ 0$ ]] || ok=0
        done
        ((ok)) && return 0
        (( $(lab_now_ms) - t0 < $1 )) || return 1
        sleep 0.05
    done
}

lab_print_up() {
    cat <<EOF
lab: up in $LAB_MODE mode, cluster $CLUSTER = VIPs $LAB_VIP and $LAB_VIP6, certificate by $LAB_CERT_TOOL
  namespaces : ${LAB_ALL_NS[*]}  (work dir $LAB_WORK)
  nodes      : ${LAB_NODE_NS[1]} host 1 (${DEDICATED[1]}), ${LAB_NODE_NS[2]} host 2 (${DEDICATED[2]})
  try        : ip netns exec $LAB_CL_NS curl -6 --cacert $LAB_WORK/pki/ca.crt \\
                 --resolve '$CLUSTER:443:[$LAB_VIP6],$LAB_VIP' https://$CLUSTER/owa   (-4: IPv4)
               $LAB_NLBCTL --socket $LAB_WORK/ctl.1.sock query
               ip -n ${LAB_NODE_NS[1]} link set ${P}w down   # disable cas01's adapter
  remove     : $0 down
EOF
}

# --- the demo ----------------------------------------------------------------
# Every client request runs in the client namespace through $LAB_WORK/req.sh,
# which reads "ADDR HOST PATH" lines and prints
#   ADDR HOST PATH CURL_RC NODE T_START_MS T_END_MS
# (NODE: the node named in the body, "-" when nothing came back). ADDR is the
# last byte of a client's IPv4 address (101 = 10.77.0.101, over IPv4) or a
# whole IPv6 address (fd77::101, over IPv6). curl resolves every name to both
# VIPs (--resolve NAME:PORT:[fd77::10],10.77.0.10) and -4/-6 picks the family.
# PATH "http:/..." is plain HTTP on port 80 (the node is named in X-Served-By).
lab_write_req_script() {
    cat > "$LAB_WORK/req.sh" <<'REQ'
#!/usr/bin/env bash
# req.sh CA VIP VIP6 [LOOP_ADDR END_MS PERIOD_S]
ca=$1 vip=$2 vip6=$3
one() {
    local a=$1 host=$2 path=$3 t0 t1 body rc node fam src port=443 url out=()
    if [[ $a == *:* ]]; then fam=-6 src=$a; else fam=-4 src=10.77.0.$a; fi
    if [[ $path == http:* ]]; then
        port=80 url=http://$host${path#http:}
        out=(-o /dev/null -w '%header{x-served-by}')
    else
        url=https://$host$path
    fi
    t0=$(date +%s%3N)
    body=$(curl -sS "$fam" --cacert "$ca" --resolve "$host:$port:[$vip6],$vip" --interface "$src" \
        --connect-timeout 3 --max-time 5 "${out[@]}" "$url" 2>>"$ERRLOG")
    rc=$?
    t1=$(date +%s%3N)
    if [[ $body == *"<ServedBy>"* ]]; then node=${body#*<ServedBy>}; else node=$body; fi
    node=${node%%.*}; node=${node%%[[:space:]]*}
    [[ $rc -eq 0 && -n $node ]] || node=-
    echo "$a $host $path $rc $node $t0 $t1"
}
if (($# >= 6)); then
    while (($(date +%s%3N) < $5)); do one "$4" mail.ehlo.dk /owa; sleep "$6"; done
else
    while read -r a host path; do one "$a" "$host" "$path"; done
fi
REQ
    chmod +x "$LAB_WORK/req.sh"
}

# req_batch : stdin "ADDR HOST PATH" lines -> result lines on stdout.
req_batch() {
    ERRLOG=$LAB_WORK/curl.err ip netns exec "$LAB_CL_NS" "$LAB_WORK/req.sh" "$LAB_WORK/pki/ca.crt" "$LAB_VIP" "$LAB_VIP6"
}

# req_loop NAME ADDR END_MS : background loop of /owa requests until END_MS.
req_loop() {
    ERRLOG=$LAB_WORK/curl.err ip netns exec "$LAB_CL_NS" "$LAB_WORK/req.sh" "$LAB_WORK/pki/ca.crt" "$LAB_VIP" "$LAB_VIP6" \
        "$2" "$3" 0.05 > "$LAB_WORK/loop.$1" 2>/dev/null &
    LAB_PIDS+=($!)
    DEMO_LOOPS+=($!)
}
# wait_listening ERRFILE : until the tcpdump writing ERRFILE says it listens
# (bounded: 5 s), so that a capture misses nothing of what follows.
wait_listening() {
    local k
    for ((k = 0; k < 100; ++k)); do grep -q 'listening on' "$1" 2>/dev/null && return 0; sleep 0.05; done
    echo "lab: tcpdump did not start ($(cat "$1" 2>/dev/null))" >&2
}
wait_loops() { local p; for p in "${DEMO_LOOPS[@]}"; do wait "$p" 2>/dev/null || true; done; DEMO_LOOPS=(); }

# wait_owns_all I MEMBERS TIMEOUT_MS : polls node I's query (nlbctl only, no
# jq: cheap enough for a 10 ms poll on a loaded machine) until it says
# converged with exactly MEMBERS (e.g. "2" or "1,2") and, for a single member,
# owns every bucket of rule 0.
wait_owns_all() {
    local i=$1 members=$2 timeout_ms=$3 t0 q
    t0=$(lab_now_ms)
    while :; do
        q=$(lab_ctl "$i" --json query 2>/dev/null) || q=""
        q=${q//[$' \n\t']/}
        if [[ $q == *'"converged":true'* && $q == *"\"members\":[$members]"* ]]; then
            local b=${q##*\"buckets\":}
            b=${b%%[^0-9]*}
            [[ $members == *,* || $q == *"\"buckets_owned\":$b,"* ]] && return 0
        fi
        (( $(lab_now_ms) - t0 < timeout_ms )) || return 1
        sleep 0.01
    done
}

# rule0_state I : "STATE BUCKETS_OWNED" of node I's rule 0 (HTTPS);
# rule0_buckets I : the bucket count.
rule0_state() { lab_ctl "$1" --json query 2>/dev/null | jq -r '"\(.rules[0].state) \(.rules[0].buckets_owned)"' 2>/dev/null || true; }
rule0_buckets() { lab_ctl "$1" --json query 2>/dev/null | jq -r '.buckets' 2>/dev/null || true; }

DEMO_RESULTS=()   # "PASS|FAIL|WARN text"
expect() {        # expect COND_RC TEXT
    if [[ $1 == 0 ]]; then DEMO_RESULTS+=("PASS  $2"); else DEMO_RESULTS+=("FAIL  $2"); fi
}
DEMO_TABLE=()
table_row() {     # table_row PHASE FILE : counts of the result lines in FILE
    local phase=$1 f=$2
    DEMO_TABLE+=("$(awk -v p="$phase" '{n++; if ($4 != 0) f++; else c[$5]++}
        END {printf "%-38s %8d %7d %7d %7d", p, n, c["cas01"], c["cas02"], f}' "$f")")
}

lab_demo() {
    local t_begin; t_begin=$(lab_now_ms)
    local ca=$LAB_WORK/pki/ca.crt a i f k
    local first=$LAB_CLIENT_FIRST last=$((LAB_CLIENT_FIRST + LAB_CLIENTS - 1))
    local bound=$(( (LAB_HB_TOLERANCE + 2) * LAB_HB_INTERVAL_MS )) slack=${LAB_BOUND_SLACK_MS:-300}
    DEMO_LOOPS=()
    lab_write_req_script
    echo "nlbd lab demo: $CLUSTER ($LAB_VIP and $LAB_VIP6, $LAB_MODE mode) on ${LAB_NODE_NS[1]} + ${LAB_NODE_NS[2]}," \
         "heartbeats ${LAB_HB_INTERVAL_MS} ms x ${LAB_HB_TOLERANCE} (HMAC), certificate by $LAB_CERT_TOOL"
    echo "  certificate names: $(openssl x509 -in "$LAB_WORK/pki/cas01.crt" -noout -ext subjectAltName | tail -n +2 | sed 's/^ *//')"
    # Every neighbour solicitation / advertisement between the client and
    # the segment, from before the first IPv6 packet on (IPv6 checks below).
    ip netns exec "$LAB_SW_NS" timeout 600 tcpdump -U -l -n -e -v -i "${P}c" \
        'icmp6 and (ip6[40] == 135 or ip6[40] == 136)' > "$LAB_WORK/nd.txt" 2> "$LAB_WORK/nd.err" &
    local nd_pid=$!
    LAB_PIDS+=($nd_pid)
    wait_listening "$LAB_WORK/nd.err"
    lab_wait_answer "$first" 1 >/dev/null 2>&1 || true

    # 1. Spread: one /owa request from each of the 20 client addresses.
    for ((a = first; a <= last; ++a)); do echo "$a $CLUSTER /owa"; done | req_batch > "$LAB_WORK/p1"
    table_row "1 spread: 1 x /owa per client" "$LAB_WORK/p1"
    declare -gA OWNER=()
    while read -r a _ _ rc node _; do [[ $rc == 0 ]] && OWNER[$a]=$node; done < "$LAB_WORK/p1"
    local n1 n2 nf
    read -r n1 n2 nf < <(awk '{if ($4 != 0) f++; else c[$5]++} END {print c["cas01"]+0, c["cas02"]+0, f+0}' "$LAB_WORK/p1")
    expect $(( nf == 0 ? 0 : 1 )) "every client is answered over verified TLS ($((20 - nf))/20)"
    expect $(( n1 > 0 && n2 > 0 ? 0 : 1 )) "requests from 20 clients spread over both nodes (cas01 $n1, cas02 $n2)"

    # 2. Single affinity: every client again, on the three services.
    for ((a = first; a <= last; ++a)); do
        echo "$a $CLUSTER /owa"; echo "$a autodiscover.$DOMAIN /autodiscover/autodiscover.xml"
        echo "$a $CLUSTER /Microsoft-Server-ActiveSync"
    done | req_batch > "$LAB_WORK/p2"
    table_row "2 affinity: owa+autodiscover+activesync" "$LAB_WORK/p2"
    local moved=0
    while read -r a _ _ rc node _; do
        [[ $rc == 0 && $node == "${OWNER[$a]:-}" ]] || moved=$((moved + 1))
    done < "$LAB_WORK/p2"
    expect $(( moved == 0 ? 0 : 1 )) "single affinity: each client stays on its node for all 3 services ($moved of 60 elsewhere or failed)"

    # 3. The certificate covers every name (verified by curl), and only those.
    local bad=""
    for f in "$CLUSTER" "autodiscover.$DOMAIN" "cas01.$DOMAIN" "cas02.$DOMAIN" CAS01 CAS02; do
        echo "$first $f /owa"
    done | req_batch > "$LAB_WORK/p3"
    bad=$(awk '$4 != 0 {printf "%s(curl %s) ", $2, $4}' "$LAB_WORK/p3")
    expect "$([[ -z $bad ]]; echo $?)" "TLS verified (curl --cacert) for mail, autodiscover, cas01, cas02, CAS01, CAS02 ${bad:+- failed: $bad}"
    local rc_other
    rc_other=$(echo "$first owa.$DOMAIN /owa" | req_batch | awk '{print $4}')
    expect $(( rc_other == 60 ? 0 : 1 )) "a name the certificate lacks (owa.$DOMAIN) is refused by curl (curl exit $rc_other, 60 = bad certificate)"

    if lab_has_cert_cmd; then
        local also="autodiscover.$DOMAIN,cas01.$DOMAIN,cas02.$DOMAIN,CAS01,CAS02" out rc=0
        out=$(ip netns exec "$LAB_CL_NS" "$LAB_NLBCTL" cert check --connect "$LAB_VIP:443" --sni "$CLUSTER" \
            --name "$CLUSTER" --also "$also" --ca "$ca" 2>&1) || rc=$?
        echo "$out" > "$LAB_WORK/certcheck.ok"
        expect $rc "nlbctl cert check through the VIP (SNI $CLUSTER): $(head -n1 <<<"$out")"
        rc=0
        out=$(ip netns exec "$LAB_CL_NS" "$LAB_NLBCTL" cert check --connect "$LAB_VIP:443" --sni "owa.$DOMAIN" \
            --name "owa.$DOMAIN" --ca "$ca" 2>&1) || rc=$?
        echo "$out" > "$LAB_WORK/certcheck.bad"
        expect $(( rc == 1 ? 0 : 1 )) "nlbctl cert check warns before users see it: $(grep -m1 -i "owa.$DOMAIN" <<<"$out" | sed 's/^ *//')"
    fi

    # 4. SMTP: excluded on the VIP, answered by each node on its own address.
    local smtp_vip smtp1 smtp2
    smtp_vip=$(ip netns exec "$LAB_CL_NS" timeout 5 socat -T 2 -u \
        "TCP:$LAB_VIP:25,bind=10.77.0.$first,connect-timeout=2" - 2>/dev/null | head -n1 || true)
    smtp1=$(ip netns exec "${LAB_NODE_NS[1]}" timeout 5 socat -T 2 -u "TCP:${DEDICATED[1]}:25,connect-timeout=2" - 2>/dev/null | head -n1 || true)
    smtp2=$(ip netns exec "${LAB_NODE_NS[2]}" timeout 5 socat -T 2 -u "TCP:${DEDICATED[2]}:25,connect-timeout=2" - 2>/dev/null | head -n1 || true)
    expect "$([[ -z $smtp_vip ]]; echo $?)" "SMTP on the VIP ($LAB_VIP:25) gets no answer (disabled port rule)${smtp_vip:+: got '$smtp_vip'}"
    expect "$([[ $smtp1 == "220 cas01.$DOMAIN ESMTP"* && $smtp2 == "220 cas02.$DOMAIN ESMTP"* ]]; echo $?)" \
        "each node's own SMTP listener answers locally ('${smtp1%% nlbd-lab}' / '${smtp2%% nlbd-lab}')"

    # The cluster MAC of the mode, as the client learned it from ARP.
    local want_mac got_mac
    case $LAB_MODE in
        unicast) want_mac=$(lab_cluster_mac) ;;
        multicast) want_mac=03$(lab_cluster_mac | cut -c3-) ;;
        igmp) want_mac=$(IFS=.; set -- $LAB_VIP; printf '01:00:5e:7f:%02x:%02x' "$3" "$4") ;;
    esac
    got_mac=$(ip -n "$LAB_CL_NS" neigh show "$LAB_VIP" | awk '{for (k = 1; k < NF; ++k) if ($k == "lladdr") print $(k + 1)}')
    expect "$([[ $got_mac == "$want_mac" ]]; echo $?)" "$LAB_MODE mode: the client reaches the VIP at the cluster MAC $want_mac (ARP: ${got_mac:-none})"

    # --- IPv6: the same checks through the IPv6 VIP ($LAB_VIP6) --------------
    local a6=() v
    for ((a = first; a <= last; ++a)); do a6+=("fd77::$a"); done
    # 1v6. Spread.
    printf '%s mail.ehlo.dk /owa\n' "${a6[@]}" | req_batch > "$LAB_WORK/p1v6"
    table_row "1v6 spread: 1 x /owa per v6 client" "$LAB_WORK/p1v6"
    declare -gA OWNER6=()
    while read -r a _ _ rc node _; do [[ $rc == 0 ]] && OWNER6[$a]=$node; done < "$LAB_WORK/p1v6"
    read -r n1 n2 nf < <(awk '{if ($4 != 0) f++; else c[$5]++} END {print c["cas01"]+0, c["cas02"]+0, f+0}' "$LAB_WORK/p1v6")
    expect $(( nf == 0 ? 0 : 1 )) "IPv6: every client (fd77::$first..$last) is answered through [$LAB_VIP6] over verified TLS ($((20 - nf))/20)"
    expect $(( n1 > 0 && n2 > 0 ? 0 : 1 )) "IPv6: requests from 20 clients spread over both nodes (cas01 $n1, cas02 $n2)"
    # 2v6. Single affinity: the source address alone picks the node.
    for a in "${a6[@]}"; do
        echo "$a $CLUSTER /owa"; echo "$a autodiscover.$DOMAIN /autodiscover/autodiscover.xml"
        echo "$a $CLUSTER /Microsoft-Server-ActiveSync"
    done | req_batch > "$LAB_WORK/p2v6"
    table_row "2v6 affinity: owa+autodiscover+as" "$LAB_WORK/p2v6"
    moved=0
    while read -r a _ _ rc node _; do
        [[ $rc == 0 && $node == "${OWNER6[$a]:-}" ]] || moved=$((moved + 1))
    done < "$LAB_WORK/p2v6"
    expect $(( moved == 0 ? 0 : 1 )) "IPv6 single affinity: each client stays on its node for all 3 services ($moved of 60 elsewhere or failed)"
    # 3v6. Certificate names through the IPv6 VIP.
    for f in "$CLUSTER" "autodiscover.$DOMAIN" "cas01.$DOMAIN" "cas02.$DOMAIN" CAS01 CAS02; do
        echo "${a6[0]} $f /owa"
    done | req_batch > "$LAB_WORK/p3v6"
    bad=$(awk '$4 != 0 {printf "%s(curl %s) ", $2, $4}' "$LAB_WORK/p3v6")
    expect "$([[ -z $bad ]]; echo $?)" "IPv6: TLS verified for mail, autodiscover, cas01, cas02, CAS01, CAS02 ${bad:+- failed: $bad}"
    rc_other=$(echo "${a6[0]} owa.$DOMAIN /owa" | req_batch | awk '{print $4}')
    expect $(( rc_other == 60 ? 0 : 1 )) "IPv6: a name the certificate lacks (owa.$DOMAIN) is refused by curl (curl exit $rc_other)"
    # 4v6. SMTP excluded on the IPv6 VIP, while each node's IPv6 listener
    #      answers inside the node (so the silence is nlbd's doing).
    smtp_vip=$(ip netns exec "$LAB_CL_NS" timeout 5 socat -T 2 -u \
        "TCP6:[$LAB_VIP6]:25,bind=[${a6[0]}],connect-timeout=2" - 2>/dev/null | head -n1 || true)
    smtp1=$(ip netns exec "${LAB_NODE_NS[1]}" timeout 5 socat -T 2 -u "TCP6:[$LAB_VIP6]:25,connect-timeout=2" - 2>/dev/null | head -n1 || true)
    smtp2=$(ip netns exec "${LAB_NODE_NS[2]}" timeout 5 socat -T 2 -u "TCP6:[$LAB_VIP6]:25,connect-timeout=2" - 2>/dev/null | head -n1 || true)
    expect "$([[ -z $smtp_vip ]]; echo $?)" "IPv6: SMTP on the VIP ([$LAB_VIP6]:25) gets no answer (disabled port rule)${smtp_vip:+: got '$smtp_vip'}"
    expect "$([[ $smtp1 == "220 cas01.$DOMAIN ESMTP"* && $smtp2 == "220 cas02.$DOMAIN ESMTP"* ]]; echo $?)" \
        "IPv6: each node's SMTP listener on [$LAB_VIP6]:25 answers inside the node ('${smtp1%% nlbd-lab}' / '${smtp2%% nlbd-lab}')"
    # Network affinity (rule 1, HTTP :80): IPv4 /24, IPv6 /48.
    for ((a = first; a <= last; ++a)); do echo "$a $CLUSTER http:/"; done | req_batch > "$LAB_WORK/pnet4"
    table_row "net4 affinity: http, one /24" "$LAB_WORK/pnet4"
    read -r n1 n2 nf < <(awk '{if ($4 != 0) f++; else c[$5]++} END {print c["cas01"]+0, c["cas02"]+0, f+0}' "$LAB_WORK/pnet4")
    expect $(( nf == 0 && (n1 == 0 || n2 == 0) ? 0 : 1 )) "network affinity (IPv4 /24): the 20 clients of 10.77.0.0/24 all go to one node on :80 (cas01 $n1, cas02 $n2, failed $nf)"
    printf '%s mail.ehlo.dk http:/\n' "${NET6_ADDRS[@]}" | req_batch > "$LAB_WORK/pnet6"
    table_row "net6 affinity: http, 16 x /48 x 3" "$LAB_WORK/pnet6"
    local split_nets
    read -r n1 n2 nf split_nets < <(awk '{split($1, g, ":"); net = g[3]; if ($4 != 0) f++; else {c[$5]++; seen[net, $5] = 1; nets[net] = 1}}
        END {s = 0; for (n in nets) if ((n, "cas01") in seen && (n, "cas02") in seen) s++;
             print c["cas01"]+0, c["cas02"]+0, f+0, s}' "$LAB_WORK/pnet6")
    expect $(( nf == 0 && split_nets == 0 ? 0 : 1 )) \
        "network affinity (IPv6 /48): the 3 clients of each fd77:0:N::/48 (in 3 different /64s) share a node ($split_nets of 16 networks split, $nf failed)"
    expect $(( n1 > 0 && n2 > 0 ? 0 : 1 )) "network affinity (IPv6 /48): the 16 networks spread over both nodes (cas01 $((n1 / 3)), cas02 $((n2 / 3)) networks)"
    # Neighbour discovery: the client learned the IPv6 VIP at the cluster
    # MAC; every solicitation for it was answered once, by one host.
    got_mac=$(ip -n "$LAB_CL_NS" -6 neigh show "$LAB_VIP6" | awk '{for (k = 1; k < NF; ++k) if ($k == "lladdr") print $(k + 1)}')
    expect "$([[ $got_mac == "$want_mac" ]]; echo $?)" "IPv6: the client reaches [$LAB_VIP6] at the cluster MAC $want_mac (ip -6 neigh: ${got_mac:-none})"
    sleep 0.2
    kill "$nd_pid" 2>/dev/null || true
    wait "$nd_pid" 2>/dev/null || true
    local nd_ns nd_na nd_src nd_tll
    read -r nd_ns nd_na nd_src nd_tll < <(awk -v vip="$LAB_VIP6" '
        / neighbor solicitation, / && $0 ~ ("who has " vip "$") {ns++}
        / neighbor advertisement, / && $0 ~ ("tgt is " vip ",") {na++; src[$2] = 1; want = 1; next}
        want && /destination link-address option/ {tll[$NF] = 1; want = 0}
        END {s = ""; for (m in src) s = s (s == "" ? "" : ",") m; t = ""; for (m in tll) t = t (t == "" ? "" : ",") m;
             print ns+0, na+0, (s == "" ? "none" : s), (t == "" ? "none" : t)}' "$LAB_WORK/nd.txt")
    expect $(( nd_ns > 0 && nd_na == nd_ns ? 0 : 1 )) "IPv6: each neighbour solicitation for [$LAB_VIP6] got exactly one advertisement ($nd_ns solicited, $nd_na advertised)"
    expect "$([[ $nd_src != *,* && $nd_src != none && $nd_tll == "$want_mac" ]]; echo $?)" \
        "IPv6: the advertisements come from one host ($nd_src) and name the cluster MAC (target link-layer address $nd_tll)"

    # PMTUD through the cluster: the remote clients (fd78::101..112, behind
    # the router's MTU-1280 link, MSS from their own 1500) fetch /big (3
    # KiB) in parallel. The nodes send full 1500-byte segments, the router
    # answers each with an ICMPv6 packet-too-big to the VIP, and nlbd must
    # hand it to the node that owns the flow; a lost or misdelivered one
    # stalls that transfer (no MTU probing on the nodes) until curl gives up.
    local big_size pm_out pm_ok pm_n1 pm_n2 pm_bad ptb_sent exc_miss=""
    big_size=$(( ${#NODE_NAMES[1]} + 1 + ${#DOMAIN} + 5 + 3072 + 1 ))   # "casNN.ehlo.dk big\n", 3 KiB, "\n"
    # Every packet-too-big nlbd hands to each node's stack (tap), in hex.
    local pm_pids=()
    for i in 1 2; do
        ip netns exec "${LAB_NODE_NS[$i]}" timeout 60 tcpdump -U -l -n -x -i "${P}t" \
            'icmp6 and ip6[40] == 2' > "$LAB_WORK/ptb.$i.txt" 2> "$LAB_WORK/ptb.$i.err" &
        pm_pids+=($!); LAB_PIDS+=($!)
    done
    wait_listening "$LAB_WORK/ptb.1.err"
    wait_listening "$LAB_WORK/ptb.2.err"
    pm_out=$(ip netns exec "$LAB_RM_NS" bash -c '
        for ((a = '"$REMOTE_FIRST"'; a < '"$REMOTE_FIRST + $REMOTES"'; ++a)); do
            ( f='"$LAB_WORK"'/big.$a
              sz=$(curl -sS -6 --cacert '"$ca"' --resolve "'"$CLUSTER"':443:['"$LAB_VIP6"']" --interface "fd78::$a" \
                  --connect-timeout 3 --max-time 8 -o "$f" -w "%{size_download}" "https://'"$CLUSTER"'/big" 2>/dev/null)
              echo "fd78::$a ${sz:-0} $(head -c 5 "$f" 2>/dev/null || echo -)" ) &
        done
        wait')
    printf '%s\n' "$pm_out" > "$LAB_WORK/ppmtu"
    read -r pm_ok pm_n1 pm_n2 pm_bad < <(awk -v want="$big_size" '{if ($2 == want) {ok++; c[$3]++} else bad = bad " " $1 "(" $2 " B)"}
        END {print ok+0, c["cas01"]+0, c["cas02"]+0, (bad == "" ? "-" : bad)}' "$LAB_WORK/ppmtu")
    ptb_sent=$(ip netns exec "$LAB_RT_NS" awk '$1 == "Icmp6OutPktTooBigs" {print $2}' /proc/net/snmp6)
    sleep 0.3
    for i in "${pm_pids[@]}"; do kill "$i" 2>/dev/null || true; wait "$i" 2>/dev/null || true; done
    # ptb.I.txt -> the client address quoted in each packet-too-big (the
    # inner packet's destination: bytes 72..87 of the outer IPv6 packet).
    ptb_clients() {
        awk '/^[^ \t]/ {if (d != "") print d; d = ""; hi = ""} $1 == "0x0040:" {hi = $6}
             $1 == "0x0050:" && hi == "fd78" {x = $5; sub(/^0+/, "", x); d = "fd78::" x}
             END {if (d != "") print d}' "$LAB_WORK/ptb.$1.txt"
    }
    ptb_clients 1 | sort | uniq -c > "$LAB_WORK/ptb.1.count"
    ptb_clients 2 | sort | uniq -c > "$LAB_WORK/ptb.2.count"
    local ptb_wrong="" ptb_own=0
    while read -r a sz node; do
        [[ $sz == "$big_size" ]] || continue
        local own=1 other=2
        [[ $node == cas02 ]] && own=2 other=1
        if grep -q " $a\$" "$LAB_WORK/ptb.$own.count"; then ptb_own=$((ptb_own + 1)); else exc_miss+=" $a($node)"; fi
        grep -q " $a\$" "$LAB_WORK/ptb.$other.count" && ptb_wrong+=" $a(also cas0$other)"
    done < "$LAB_WORK/ppmtu"
    DEMO_TABLE+=("$(printf '%-38s %8d %7d %7d %7d' "pmtu: 12 v6 remotes x 3 KiB /big" "$REMOTES" "$pm_n1" "$pm_n2" "$((REMOTES - pm_ok))")")
    expect $(( ${ptb_sent:-0} > 0 ? 0 : 1 )) "PMTUD: the path MTU really drops: the router sent ${ptb_sent:-0} ICMPv6 packet-too-big (MTU 1280) to [$LAB_VIP6]"
    expect $(( pm_ok == REMOTES ? 0 : 1 )) "PMTUD: every remote client behind the 1280 link gets all of /big ($pm_ok/$REMOTES$([[ $pm_bad == - ]] || echo "; short: $pm_bad"); a stalled transfer = packet-too-big lost or sent to the wrong node)"
    expect $(( pm_n1 > 0 && pm_n2 > 0 ? 0 : 1 )) "PMTUD: both nodes served remote clients, so both got their packet-too-big (cas01 $pm_n1, cas02 $pm_n2)"
    expect "$([[ -z $exc_miss && -z $ptb_wrong && $ptb_own -gt 0 ]]; echo $?)" \
        "PMTUD: the packet-too-big for each remote client reached the node serving it and never the other ($ptb_own/$pm_ok seen on the owner's tap${exc_miss:+; missing:$exc_miss}${ptb_wrong:+; misdelivered:$ptb_wrong})"

    # 5. Failover: clients of both nodes request continuously; cas01's adapter
    #    goes down mid-run.
    local c1=() c2=()
    for ((a = first; a <= last; ++a)); do
        [[ ${OWNER[$a]:-} == cas01 && ${#c1[@]} -lt 3 ]] && c1+=("$a")
        [[ ${OWNER[$a]:-} == cas02 && ${#c2[@]} -lt 3 ]] && c2+=("$a")
    done
    local c1v6=() c2v6=()
    for a in "${a6[@]}"; do
        [[ ${OWNER6[$a]:-} == cas01 && ${#c1v6[@]} -lt 3 ]] && c1v6+=("$a")
        [[ ${OWNER6[$a]:-} == cas02 && ${#c2v6[@]} -lt 3 ]] && c2v6+=("$a")
    done
    c1+=("${c1v6[@]}"); c2+=("${c2v6[@]}")
    local t_start t_down t_conv t_end conv_ok=1
    t_start=$(lab_now_ms); t_end=$((t_start + 6000))
    for a in "${c1[@]}" "${c2[@]}"; do req_loop "fo.$a" "$a" "$t_end"; done
    sleep 1.5
    t_down=$(lab_now_ms)
    ip -n "${LAB_NODE_NS[1]}" link set "${P}w" down
    wait_owns_all 2 2 10000 && conv_ok=0
    t_conv=$(lab_now_ms)
    wait_loops
    cat "$LAB_WORK"/loop.fo.* > "$LAB_WORK/p5"
    table_row "3 failover: 6+6 v4/v6 loop, cas01 down" "$LAB_WORK/p5"
    local conv_ms=$((t_conv - t_down)) settle=$((t_down + bound + slack))
    expect $(( conv_ok == 0 && conv_ms <= bound + slack ? 0 : 1 )) \
        "cas02 owns every bucket ${conv_ms} ms after cas01's adapter went down (bound ${bound} ms + ${slack} ms polling slack)"
    local late_bad first_c2 last_fail c2_fail
    late_bad=$(awk -v s="$settle" '$6 >= s && ($4 != 0 || $5 != "cas02")' "$LAB_WORK/p5" | wc -l)
    local late_n; late_n=$(awk -v s="$settle" '$6 >= s' "$LAB_WORK/p5" | wc -l)
    expect $(( late_bad == 0 && late_n > 0 ? 0 : 1 )) \
        "every request started after the detection window is served by cas02 ($((late_n - late_bad))/$late_n)"
    local late6_bad late6_n
    late6_bad=$(awk -v s="$settle" '$1 ~ /:/ && $6 >= s && ($4 != 0 || $5 != "cas02")' "$LAB_WORK/p5" | wc -l)
    late6_n=$(awk -v s="$settle" '$1 ~ /:/ && $6 >= s' "$LAB_WORK/p5" | wc -l)
    expect $(( late6_bad == 0 && late6_n > 0 && ${#c1v6[@]} > 0 ? 0 : 1 )) \
        "IPv6: every request of the v6 clients (${#c1v6[@]} of cas01, ${#c2v6[@]} of cas02) started after the detection window is served by cas02 ($((late6_n - late6_bad))/$late6_n)"
    local c1re c2re
    c1re="^($(IFS="|"; echo "${c1[*]}")) "
    first_c2=$(awk -v d="$t_down" -v re="$c1re" '$0 ~ re && $4 == 0 && $5 == "cas02" && $7 > d {print $7 - d; exit}' <(sort -k7n "$LAB_WORK/p5"))
    last_fail=$(awk -v d="$t_down" '$4 != 0 {x = $7 - d} END {if (x != "") print x}' "$LAB_WORK/p5")
    c2re="^($(IFS="|"; echo "${c2[*]}")) "
    c2_fail=$(awk -v re="$c2re" '$0 ~ re && ($4 != 0 || $5 != "cas02")' "$LAB_WORK/p5" | wc -l)
    local c2v6_n; c2v6_n=$(awk -v re="$c2re" '$0 ~ re && $1 ~ /:/' "$LAB_WORK/p5" | wc -l)
    expect $(( c2_fail == 0 && c2v6_n > 0 ? 0 : 1 )) "clients of cas02 (IPv4 and IPv6) never notice the failover ($c2_fail failed or moved, $c2v6_n IPv6 requests)"

    # 6. Rejoin: the adapter comes back; cas01 takes its share again.
    local t_up t_rej rej_ok=1
    t_start=$(lab_now_ms); t_end=$((t_start + 4000))
    for a in "${c1[@]}" "${c2[@]}"; do req_loop "rj.$a" "$a" "$t_end"; done
    sleep 1
    t_up=$(lab_now_ms)
    ip -n "${LAB_NODE_NS[1]}" link set "${P}w" up
    lab_wait_converged "1 2" 15000 >/dev/null 2>&1 && rej_ok=0
    t_rej=$(lab_now_ms)
    wait_loops
    cat "$LAB_WORK"/loop.rj.* > "$LAB_WORK/p6"
    table_row "4 rejoin: 6+6 v4/v6 loop, cas01 back" "$LAB_WORK/p6"
    local rj_fail; rj_fail=$(awk '$4 != 0' "$LAB_WORK/p6" | wc -l)
    local rj6_fail rj6_n
    rj6_fail=$(awk '$1 ~ /:/ && $4 != 0' "$LAB_WORK/p6" | wc -l)
    rj6_n=$(awk '$1 ~ /:/' "$LAB_WORK/p6" | wc -l)
    # Strict for IPv6 (no WARN escape): a rejoining host takes nothing
    # before it has reconverged, so no request may fail.
    expect $(( rej_ok )) "cas01 rejoins: converged on [1,2] $((t_rej - t_up)) ms after its adapter came back"
    if ((rj_fail == 0)) || [[ ${LAB_STRICT_REJOIN:-0} == 1 ]]; then
        expect $(( rj_fail == 0 ? 0 : 1 )) "no failed request while cas01 rejoins ($rj_fail failed)"
    else
        DEMO_RESULTS+=("WARN  $rj_fail request(s) reset while cas01 rejoined (both nodes answered a SYN" \
            "      right after link-up: known nlbd rejoin issue; LAB_STRICT_REJOIN=1 makes this a failure)")
    fi
    expect $(( rj6_fail == 0 && rj6_n > 0 ? 0 : 1 )) "IPv6: no failed request while cas01 rejoins ($rj6_fail of $rj6_n failed)"
    for ((a = first; a <= last; ++a)); do echo "$a $CLUSTER /owa"; done | req_batch > "$LAB_WORK/p7"
    table_row "5 spread after rejoin: 1 x /owa each" "$LAB_WORK/p7"
    read -r n1 n2 nf < <(awk '{if ($4 != 0) f++; else c[$5]++} END {print c["cas01"]+0, c["cas02"]+0, f+0}' "$LAB_WORK/p7")
    expect $(( n1 > 0 && n2 > 0 && nf == 0 ? 0 : 1 )) "cas01 takes its share again (cas01 $n1, cas02 $n2, failed $nf)"
    printf '%s mail.ehlo.dk /owa\n' "${a6[@]}" | req_batch > "$LAB_WORK/p7v6"
    table_row "5v6 spread after rejoin" "$LAB_WORK/p7v6"
    moved=$(awk -v list="$(for a in "${a6[@]}"; do printf '%s=%s ' "$a" "${OWNER6[$a]:-}"; done)" \
        'BEGIN {n = split(list, x, " "); for (k = 1; k <= n; ++k) {split(x[k], y, "="); o[y[1]] = y[2]}}
         $4 != 0 || $5 != o[$1] {m++} END {print m+0}' "$LAB_WORK/p7v6")
    expect $(( moved == 0 ? 0 : 1 )) "IPv6: after the rejoin every v6 client is back on its node of phase 1v6 ($moved of 20 elsewhere or failed)"

    # 8. Health checks (when this nlbd has them): nginx stops on cas02 -> the
    #    HTTPS rule drains there, cas01 takes every new client; nginx comes
    #    back -> cas02 takes its share again.
    if [[ " $LAB_FEATURES " == *" health "* ]]; then
        local t_h0 t_drained="" t_back="" st
        t_h0=$(lab_now_ms)
        lab_stop_nginx 2
        for ((k = 0; k < 100; ++k)); do
            st=$(rule0_state 1)
            [[ $st == "enabled "* && ${st#* } == "$(rule0_buckets 1)" ]] && { t_drained=$(lab_now_ms); break; }
            sleep 0.1
        done
        expect "$([[ -n $t_drained ]]; echo $?)" \
            "HTTPS stopped on cas02: its health check drains the rule, cas01 owns every bucket${t_drained:+ after $((t_drained - t_h0)) ms} (cas02: $(rule0_state 2 | cut -d' ' -f1), health $(lab_ctl 2 --json query 2>/dev/null | jq -r '.rules[0].health.state // "?"'))"
        for ((a = first; a <= last; ++a)); do echo "$a $CLUSTER /owa"; done | req_batch > "$LAB_WORK/p8"
        table_row "6 health: nginx stopped on cas02" "$LAB_WORK/p8"
        read -r n1 n2 nf < <(awk '{if ($4 != 0) f++; else c[$5]++} END {print c["cas01"]+0, c["cas02"]+0, f+0}' "$LAB_WORK/p8")
        expect $(( n1 == LAB_CLIENTS ? 0 : 1 )) "while cas02's web server is down every client is served by cas01 (cas01 $n1, cas02 $n2, failed $nf)"
        t_h0=$(lab_now_ms)
        lab_start_nginx 2 || true
        for ((k = 0; k < 100; ++k)); do
            st=$(rule0_state 2)
            [[ $st == "enabled "* && ${st#* } -gt 0 ]] && wait_owns_all 1 1,2 100 && { t_back=$(lab_now_ms); break; }
            sleep 0.1
        done
        expect "$([[ -n $t_back ]]; echo $?)" "HTTPS back on cas02: the rule is enabled again${t_back:+ after $((t_back - t_h0)) ms}"
        for ((a = first; a <= last; ++a)); do echo "$a $CLUSTER /owa"; done | req_batch > "$LAB_WORK/p9"
        table_row "7 health: nginx back on cas02" "$LAB_WORK/p9"
        read -r n1 n2 nf < <(awk '{if ($4 != 0) f++; else c[$5]++} END {print c["cas01"]+0, c["cas02"]+0, f+0}' "$LAB_WORK/p9")
        expect $(( n1 > 0 && n2 > 0 && nf == 0 ? 0 : 1 )) "cas02 serves its share again (cas01 $n1, cas02 $n2, failed $nf)"
    fi

    # Telemetry (when this nlbd has it): a /metrics excerpt of each node.
    local metrics_lines=()
    if [[ " $LAB_FEATURES " == *" telemetry "* ]]; then
        for i in 1 2; do
            ip netns exec "${LAB_NODE_NS[$i]}" curl -s --max-time 3 http://127.0.0.1:9100/metrics \
                > "$LAB_WORK/metrics.$i" 2>/dev/null || true
        done
        expect "$(grep -q '^nlbd_info' "$LAB_WORK/metrics.1" && grep -q '^nlbd_info' "$LAB_WORK/metrics.2"; echo $?)" \
            "Prometheus /metrics answers on both nodes ($(grep -vc '^#' "$LAB_WORK/metrics.1" || true) samples on cas01)"
        mapfile -t metrics_lines < <(grep -E '^nlbd_(packets_total\{verdict="(accepted|accepted_conn|not_owner|disabled_rule|heartbeat)"|buckets_owned\{rule="0"|rule_state\{rule="0"|rule_health_up|rule_health_transitions_total|heartbeats_sent_total|connections )' \
            "$LAB_WORK/metrics.2" 2>/dev/null | head -n 12)
    fi

    # igmp mode: reports at start, periodic and after link-up, leaves at stop,
    # with snooping on the bridge (scripts/lab_igmp.sh). Stops both nodes.
    if [[ $LAB_MODE == igmp ]]; then lab_igmp_checks "$t_down" "$t_up"; fi

    # --- report ---------------------------------------------------------------
    echo
    printf '%-38s %8s %7s %7s %7s\n' "phase" requests cas01 cas02 failed
    printf '%s\n' "${DEMO_TABLE[@]}"
    echo
    echo "clients:      cas01's $(for a in "${c1[@]}"; do [[ $a == *:* ]] && printf '%s ' "$a" || printf '10.77.0.%s ' "$a"; done)| cas02's $(for a in "${c2[@]}"; do [[ $a == *:* ]] && printf '%s ' "$a" || printf '10.77.0.%s ' "$a"; done)"
    echo "failover timeline (t = 0: cas01's adapter down, ip link set ${P}w down in ${LAB_NODE_NS[1]}):"
    {
        printf '%d|cas02 owns all buckets (nlbctl query; bound %d ms)\n' "$conv_ms" "$bound"
        [[ -n $first_c2 ]] && printf '%d|first request of a cas01 client answered by cas02\n' "$first_c2"
        [[ -n $last_fail ]] && printf '%d|last failed request (in the detection window)\n' "$last_fail"
        printf '%d|from here on every request must be served by cas02\n' "$((bound + slack))"
    } | sort -t'|' -k1n | awk -F'|' '{printf "  t = %6d ms  %s\n", $1, $2}'
    printf '  rejoin: cas01 converged with cas02 %d ms after link-up\n' "$((t_rej - t_up))"
    if [[ -n ${IGMP_SUMMARY:-} ]]; then echo "$IGMP_SUMMARY"; fi
    if ((${#metrics_lines[@]})); then
        echo "cas02 /metrics excerpt (ip netns exec ${LAB_NODE_NS[2]} curl http://127.0.0.1:9100/metrics):"
        printf '  %s\n' "${metrics_lines[@]}"
    fi
    echo
    printf '%s\n' "${DEMO_RESULTS[@]}"
    local nfail; nfail=$(printf '%s\n' "${DEMO_RESULTS[@]}" | grep -c '^FAIL' || true)
    echo
    if ((nfail)); then
        lab_dump_logs
        echo "lab demo: FAILED ($nfail of $(printf '%s\n' "${DEMO_RESULTS[@]}" | grep -c '^PASS\|^FAIL') expectations) in $(( ($(lab_now_ms) - t_begin) / 1000 )) s"
        exit 1
    fi
    echo "lab demo: PASS ($(printf '%s\n' "${DEMO_RESULTS[@]}" | grep -c '^PASS') expectations) in $(( ($(lab_now_ms) - t_begin) / 1000 )) s; tearing the lab down"
}

case $cmd in
    up)
        [[ $(id -u) -eq 0 ]] || { echo "SKIP: the lab needs root (network namespaces)" >&2; exit 77; }
        LAB_NLBD_TIMEOUT=0   # no time limit: the lab stays until `down`
        lab_bring_up
        lab_print_up
        # Leave everything running: drop lib.sh's cleanup trap.
        trap - EXIT INT TERM
        ;;
    down)
        lab_down
        ;;
    demo)
        [[ $(id -u) -eq 0 ]] || { echo "SKIP: the lab needs root (network namespaces)" >&2; exit 77; }
        LAB_NLBD_TIMEOUT=${LAB_NLBD_TIMEOUT:-300}
        lab_bring_up
        lab_demo   # exits non-zero on a failed expectation; lib.sh's trap tears down
        ;;
    *) usage ;;
esac
