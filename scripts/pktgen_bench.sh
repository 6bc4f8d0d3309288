#!/usr/bin/env bash
# Traffic-generator benchmark of nlbd over net_memif (SPEC §10, issue 5).
#
#   scripts/pktgen_bench.sh [--seconds N] [--rate PCT] [--size BYTES] [--flows N]
#                           [--proto udp|tcp] [--result FILE] [--baseline] [--latency]
#                           [BUILD_DIR]
#
# Topology (one machine, two DPDK processes, one memif link):
#   generator --(net_memif client)==socket==(net_memif server)--> nlbd wire port
#   nlbd local port: net_null0,no-rx=1 (a TX sink); with --latency a second
#   memif link instead, back to the generator's port 1.
# nlbd is host 1 of a one-member static cluster (it owns every bucket), VIP
# 10.0.0.100 in unicast mode, one rule for every port (multiple, affinity none),
# so every frame toward the VIP is accepted and sent to the local port.
#
# Generator:
#   - Pktgen-DPDK when $PKTGEN names its executable (e.g. the one
#     ../shared/tools/pktgen/build.sh prints): scripts/pktgen/nlbd.lua sets
#     range traffic (source IPs 10.1.0.1-16, source ports 1024..+FLOWS-1,
#     toward VIP:53/udp or VIP:80/tcp), sends for --seconds at --rate percent
#     of the memif link's nominal speed (memif says 100 Gb/s: 100% is
#     unthrottled), stops, writes its totals to a result file and waits for
#     this script to stop the memif server before it quits. pktgen needs:
#       * a terminal: it runs under `script -qfec CMD /dev/null` (util-linux
#         script(1), Debian package bsdutils), i.e. on a pty, with stdin
#         /dev/null (without one: "scrn_constructor: tcgetattr failed");
#       * about 1.5 GB of EAL memory per port for its mbuf pools (PKTGEN_MEM,
#         MB; default 1536, 3072 with --latency's two ports): hugepages when a
#         hugetlbfs is mounted with that much free, else --no-huge; the free
#         memory is checked first (MemAvailable) and the script stops with a
#         message when it is short (pktgen would panic "Cannot create mbuf
#         pool");
#       * two lcores: the main lcore serves no port.
#     A Lua error ends the run at once: nlbd.lua runs under xpcall, writes
#     status=error and the message to its result file and quits; an error
#     outside it (a syntax error: pktgen prints "lua-shell: ...") is seen in
#     pktgen's log. Either way the script prints the message and exits 1.
#   - otherwise (it says so) dpdk-testpmd --forward-mode=txonly
#     --txonly-multi-flow: UDP toward VIP:53 from varying source addresses,
#     as fast as it can (--rate, --flows and --latency apply to pktgen only);
#     GEN_MODE=flowgen uses --forward-mode=flowgen instead (testpmd's own
#     addresses, not the VIP: nlbd counts them as non-VIP traffic).
# Shutdown order memif needs: the generator stops its traffic, then the server
# side (nlbd, or the baseline testpmd) gets SIGINT, stops polling and writes
# its --stats-json, and only then does the client (the generator) quit.
# DPDK 22.11's memif PMD unmaps the shared region when the peer disconnects
# while the other side may still be inside rte_eth_rx_burst on it: a client
# that leaves first crashed the server (SIGSEGV in librte_net_memif, seen
# with testpmd as the server too), and a client still polling when the server
# leaves crashes the same way (seen with pktgen, whose lcore polls RX after
# its traffic stopped). testpmd is driven on stdin (stop, then the server
# stops, then quit). pktgen, once its Lua script has stopped the traffic and
# written its results, is frozen with SIGSTOP, the server is stopped, and the
# frozen pktgen is killed: no process polls a region that goes away (without
# its pid, a release file lets the Lua script quit pktgen after the server
# stopped). Every wait is bounded; a trap stops whatever is still running and
# removes the work directory (sockets, configs, logs; KEEP=1 keeps it) on any
# exit.
#
# --baseline (or BASELINE=1): a second pass with dpdk-testpmd --forward-mode=io
# in nlbd's place (memif server -> net_null, or -> the second memif link with
# --latency; same lcores), the same generator and settings, and the ratio
# nlbd / testpmd (SPEC §10's yardstick).
#
# --latency (pktgen only): pktgen also sends a timestamped UDP packet every
# LAT_US microseconds (default 100) on port 0; nlbd forwards it to its local
# port, a memif link back to pktgen's port 1, where pktgen times it. The
# output adds the round trip's p50/p99/max (pktgen's latency sampler) and, with
# --baseline, the same through testpmd io and the difference (nlbd's added
# latency). Use a --rate well below saturation (e.g. 1): at 100% every packet
# waits behind full rings and the figure measures the ring depth.
#
# Output: generated Mpps (generator's TX over the traffic window), Mpps nlbd
# received (rx_total from --stats-json over the same window), the difference
# (frames the generator sent that nlbd did not count) and the generator's own
# TX drops (testpmd: memif ring full; pktgen retries a burst until it is sent,
# so it drops nothing and offered = generated), plus nlbd's verdicts. The same
# as key=value lines in --result FILE (default: results.txt in the work
# directory, printed).
#
# Memory: nlbd and testpmd run with --no-huge -m 512 (verified with DPDK 22.11:
# net_memif works without hugepages; its regions are memfd-backed); pktgen as
# above. net_memif refuses to probe with --no-shconf / --in-memory (it needs
# the EAL multi-process channel), so each process gets its own --file-prefix
# instead. If nlbd's memif port cannot come up here the script says why and
# exits 77.
#
# Environment: PKTGEN (Pktgen-DPDK executable), PKTGEN_LUA (its script, default
# scripts/pktgen/nlbd.lua), PKTGEN_MEM (MB of EAL memory for pktgen),
# PKTGEN_HUGE=0 (never hugepages for pktgen), TESTPMD (default dpdk-testpmd),
# NLBD (default BUILD_DIR/src/daemon/nlbd), NLBD_LCORES (default "0,1": main,
# worker), GEN_LCORES (default "0,1", main lcore 1, so the generator sends from
# lcore 0), GEN_MODE (txonly | flowgen), LAT_US (--latency's interval), KEEP=1.
set -euo pipefail

secs=10 rate=100 size=64 flows=256 proto=udp result="" build="" baseline=${BASELINE:-0} latency=0
usage() { sed -n '2,6p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }
while (( $# )); do
    case $1 in
        --seconds) secs=${2:?}; shift 2 ;;
        --rate) rate=${2:?}; shift 2 ;;
        --size) size=${2:?}; shift 2 ;;
        --flows) flows=${2:?}; shift 2 ;;
        --proto) proto=${2:?}; shift 2 ;;
        --result) result=${2:?}; shift 2 ;;
        --baseline) baseline=1; shift ;;
        --latency) latency=1; shift ;;
        -h|--help) usage ;;
        -*) echo "pktgen_bench: unknown option '$1'" >&2; usage ;;
        *) build=$1; shift ;;
    esac
done
for v in secs size flows; do
    [[ ${!v} =~ ^[0-9]+$ && ${!v} -ge 1 ]] || { echo "pktgen_bench: --$v must be a positive integer" >&2; exit 2; }
done
[[ $proto == udp || $proto == tcp ]] || { echo "pktgen_bench: --proto is udp or tcp" >&2; exit 2; }
(( size >= 64 && size <= 1518 )) || { echo "pktgen_bench: --size must be 64..1518" >&2; exit 2; }
if ! [[ $rate =~ ^[0-9]+(\.[0-9]+)?$ ]] || ! awk -v r="$rate" 'BEGIN {exit !(r > 0 && r <= 100)}'; then
    echo "pktgen_bench: --rate is a percentage of the link speed (0 < PCT <= 100, decimals allowed)" >&2; exit 2
fi
lat_us=${LAT_US:-100}
[[ $lat_us =~ ^[0-9]+$ && $lat_us -ge 1 ]] || { echo "pktgen_bench: LAT_US must be a positive integer (microseconds)" >&2; exit 2; }

here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${build:-build}
[[ -d $build ]] || build=$here/$build
nlbd=${NLBD:-$build/src/daemon/nlbd}
[[ -x $nlbd ]] || { echo "pktgen_bench: no nlbd executable at '$nlbd' (build it, or set NLBD)" >&2; exit 1; }
testpmd=${TESTPMD:-$(command -v dpdk-testpmd || true)}
lua=${PKTGEN_LUA:-$here/scripts/pktgen/nlbd.lua}
gen_mode=${GEN_MODE:-txonly}
nlbd_lcores=${NLBD_LCORES:-0,1}
gen_lcores=${GEN_LCORES:-0,1}
gen_main=${gen_lcores##*,}
gen_fwd=${gen_lcores%%,*}

if [[ -n ${PKTGEN:-} && -x ${PKTGEN:-} ]]; then
    generator=pktgen
else
    [[ -n ${PKTGEN:-} ]] && echo "pktgen_bench: PKTGEN='$PKTGEN' is not executable" >&2
    echo "pktgen_bench: Pktgen-DPDK not installed (set PKTGEN=/path/to/pktgen); falling back to dpdk-testpmd --forward-mode=$gen_mode" >&2
    [[ -n $testpmd && -x $testpmd ]] || { echo "pktgen_bench: no dpdk-testpmd either (apt install dpdk)" >&2; exit 1; }
    generator=testpmd
    (( latency == 0 )) || { echo "pktgen_bench: --latency needs Pktgen-DPDK (PKTGEN)" >&2; exit 2; }
fi
if [[ $generator == pktgen ]]; then
    # pktgen draws its screen and exits 255 without a terminal: script(1)
    # gives it a pty.
    command -v script >/dev/null ||
        { echo "pktgen_bench: pktgen needs a terminal; script(1) (util-linux, Debian package bsdutils) is missing: apt install bsdutils" >&2; exit 1; }
    [[ -r $lua ]] || { echo "pktgen_bench: no Lua script at $lua" >&2; exit 1; }
fi

# --- memory ------------------------------------------------------------------
# nlbd and testpmd: 512 MB each without hugepages. pktgen: PKTGEN_MEM MB; its
# mbuf pools need about 1.5 GB per port. Hugepages for pktgen when a hugetlbfs
# is mounted and has that much free; the baseline testpmd runs after nlbd has
# stopped, so the peak is nlbd + generator.
small_mem=512
if [[ $generator == pktgen ]]; then
    gen_mem=${PKTGEN_MEM:-$(( latency ? 3072 : 1536 ))}
    [[ $gen_mem =~ ^[0-9]+$ ]] || { echo "pktgen_bench: PKTGEN_MEM is a size in MB" >&2; exit 2; }
    (( gen_mem >= 1536 )) || echo "pktgen_bench: warning: PKTGEN_MEM=$gen_mem MB is below the ~1536 MB per port pktgen's mbuf pools need (it panics 'Cannot create mbuf pool')" >&2
else
    gen_mem=$small_mem
fi
huge_free_mb=$(awk '/^HugePages_Free:/ {f = $2} /^Hugepagesize:/ {k = $2} END {printf "%d", f * k / 1024}' /proc/meminfo)
if [[ $generator == pktgen && ${PKTGEN_HUGE:-auto} != 0 ]] && grep -qs ' hugetlbfs ' /proc/mounts && (( huge_free_mb >= gen_mem )); then
    gen_huge=1
    gen_mem_args=(-m "$gen_mem" --huge-unlink)
    mem_note="pktgen on hugepages ($gen_mem MB of $huge_free_mb MB free), nlbd/testpmd --no-huge"
else
    gen_huge=0
    gen_mem_args=(--no-huge -m "$gen_mem")
    mem_note="--no-huge (pktgen -m $gen_mem, nlbd/testpmd -m $small_mem)"
fi
avail_mb=$(awk '/^MemAvailable:/ {printf "%d", $2 / 1024}' /proc/meminfo)
need_mb=$(( small_mem + (gen_huge ? 0 : gen_mem) + 256 ))
if (( avail_mb < need_mb )); then
    echo "pktgen_bench: not enough free memory: $need_mb MB needed (nlbd $small_mem MB + generator $gen_mem MB$( ((gen_huge)) && echo ' on hugepages') + 256 MB slack), MemAvailable is $avail_mb MB." >&2
    [[ $generator == pktgen ]] && echo "pktgen_bench: pktgen's mbuf pools need about 1.5 GB per port; free memory, or reserve hugepages (dpdk-hugepages.py -p 2M --setup ${gen_mem}M) so that pktgen uses those." >&2
    exit 1
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/nlbd-pktgen.XXXXXX")
sock=$work/wire.sock
tag=$$
nlbd_prefix=nlbd-pkb-$tag
gen_prefix=gen-pkb-$tag
base_prefix=base-pkb-$tag
nlbd_pid="" gen_pid="" base_pid="" frozen_pid=""
result=${result:-$work/results.txt}

# gone PID: the process has exited (an unreaped zombie counts as gone).
gone() { [[ ! -r /proc/$1/stat ]] || [[ $(awk '{print $3}' "/proc/$1/stat" 2>/dev/null) == Z ]]; }
# stop_only PID: SIGINT, up to 10 s for a clean exit, then SIGKILL (usable
# from a subshell: does not reap).
stop_only() {
    local pid=$1 i
    [[ -n $pid ]] && ! gone "$pid" || return 0
    kill -INT "$pid" 2>/dev/null || true
    for ((i = 0; i < 100; i++)); do gone "$pid" && break; sleep 0.1; done
    gone "$pid" || kill -KILL "$pid" 2>/dev/null || true
}
# stop PID: stop_only, then reap it.
stop() {
    [[ -n $1 ]] || return 0
    stop_only "$1"
    wait "$1" 2>/dev/null || true
}
# shellcheck disable=SC2317  # invoked by the EXIT trap
cleanup() {
    # A pktgen frozen below, if an exit came between its freeze and its kill.
    [[ -n $frozen_pid ]] && kill -KILL "$frozen_pid" 2>/dev/null
    # Client (generator) before server (nlbd): an abnormal exit.
    stop "$gen_pid"
    stop "$nlbd_pid"
    stop "$base_pid"
    rm -rf "/var/run/dpdk/$nlbd_prefix" "/var/run/dpdk/$gen_prefix" "/var/run/dpdk/$base_prefix" \
           "${XDG_RUNTIME_DIR:-/nonexistent}/dpdk/$nlbd_prefix" "${XDG_RUNTIME_DIR:-/nonexistent}/dpdk/$gen_prefix" \
           "${XDG_RUNTIME_DIR:-/nonexistent}/dpdk/$base_prefix"
    if [[ ${KEEP:-0} == 1 ]]; then echo "pktgen_bench: kept $work" >&2; else rm -rf "$work"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

vip=10.0.0.100
cluster_mac=02:bf:0a:00:00:64   # unicast cluster MAC of the VIP 10.0.0.100
if [[ $proto == udp ]]; then dport=53; else dport=80; fi
# The local port: a sink, or with --latency a memif link back to the generator.
if (( latency )); then
    local_sock=$work/local.sock
    local_dev="net_memif1,role=server,socket=$local_sock,socket-abstract=no"
else
    local_dev="net_null0,no-rx=1"
fi

cat >"$work/nic.toml" <<EOT
[nic]
name = "pktgen-memif"
rx_queues = 1
tx_queues = 1
burst = 32
mempool_size = 16383
EOT
cat >"$work/cluster.toml" <<EOT
# pktgen_bench: host 1 alone owns every bucket of VIP $vip.
[cluster]
name = "pktgen.bench"
vips = ["$vip"]
mode = "unicast"
static_members = [1]

[host]
id = 1
dedicated_ip = "10.0.0.11"

[ports.wire]
device = "net_memif0,role=server,socket=$sock,socket-abstract=no"

[ports.local]
device = "$local_dev"

[dataplane]
idle_policy = "poll"

[[port_rule]]
vip = "all"
ports = "0-65535"
protocol = "both"
mode = "multiple"
affinity = "none"
EOT

eal_base=(--no-pci --log-level=lib.eal:error)
eal_common=(--no-huge -m "$small_mem" "${eal_base[@]}")

# --- nlbd: the memif server. --run-for only guards against a hang; it is
# stopped with SIGINT once the generator is gone. ----------------------------
echo "pktgen_bench: starting nlbd (memif server, lcores $nlbd_lcores) ..." >&2
"$nlbd" --config "$work/cluster.toml" --nic "$work/nic.toml" --run-for $(( secs + 120 )) \
    --stats-json "$work/nlbd.json" --control-socket "$work/ctl.sock" -- "${eal_common[@]}" --file-prefix "$nlbd_prefix" \
    -l "$nlbd_lcores" </dev/null >"$work/nlbd.log" 2>&1 &
nlbd_pid=$!
memif_unusable() {
    echo "pktgen_bench: net_memif does not work here: $1" >&2
    grep -iE 'memif|error|fail' "$work/nlbd.log" | tail -n 10 >&2 || true
    exit 77
}
for ((i = 0; i < 200; i++)); do
    [[ -S $sock ]] && break
    kill -0 "$nlbd_pid" 2>/dev/null || { wait "$nlbd_pid" || true; nlbd_pid=""; memif_unusable "nlbd exited before its memif socket appeared"; }
    sleep 0.1
done
[[ -S $sock ]] || memif_unusable "no memif socket $sock after 20 s"

# --- generator: the memif client --------------------------------------------
# plain_log FILE: pktgen's log without terminal escapes and carriage returns.
plain_log() { sed 's/\x1b\[[0-9;?]*[A-Za-z]//g; s/\x1b[()][A-Za-z0-9]//g' "$1" | tr -d '\r' | cut -c1-240; }
# gen_fail LOG MESSAGE: says why the generator failed, with its log, and exits 1.
gen_fail() {
    echo "pktgen_bench: $2" >&2
    echo "pktgen_bench: the end of the generator's log ($1):" >&2
    plain_log "$1" | grep -av '^[[:space:]]*$' | tail -n 25 | sed 's/^/    /' >&2
    exit 1
}
# run_generator SOCKET NAME SERVER_PID [LOCAL_SOCKET]: runs the generator
# against the memif server at SOCKET (logs and results under NAME), sets
# gen_tx, gen_drop, gen_note, t0, t1; it stops SERVER_PID after the traffic and
# before the generator quits. LOCAL_SOCKET (--latency): the memif server the
# timed packets come back on (pktgen's port 1).
run_generator() {
local gen_vdev="net_memif0,role=client,socket=$1,socket-abstract=no"
local gen_log=$work/$2.log
gen_tx="" gen_drop=""
t0=$(date +%s.%N)
if [[ $generator == pktgen ]]; then
    local res=$work/$2.pktgen.txt release=$work/$2.release status="" rc=0 i cmd
    local vdevs=(--vdev "$gen_vdev") map="$gen_fwd.0"
    if [[ -n ${4:-} ]]; then
        vdevs+=(--vdev "net_memif1,role=client,socket=$4,socket-abstract=no")
        map="$gen_fwd.[0-1]"   # one lcore: port 0 TX (and RX), port 1 RX
    fi
    rm -f "$res" "$release"
    echo "pktgen_bench: Pktgen-DPDK ($PKTGEN) for $secs s, $rate% rate, $size-byte frames, $flows flows, $proto$( ((latency)) && echo ", latency every $lat_us us") ..." >&2
    # pktgen needs a terminal: script(1) runs it on a pty (stdin stays
    # /dev/null: nothing is typed). Between them, timeout(1) bounds it (a
    # guard against a hang) and is the parent that gets SIGCHLD: unlike
    # script(1), which answers a stopped child by stopping itself, it ignores
    # the SIGSTOP below. --foreground keeps pktgen in the terminal's
    # foreground process group (it sets the terminal's modes). SIGINT to
    # script(1) ends the chain: SIGTERM to timeout, passed on to pktgen.
    cmd=$(printf '%q ' timeout --foreground -s INT -k 10 $(( secs + 90 )) \
        "$PKTGEN" "${eal_base[@]}" "${gen_mem_args[@]}" --file-prefix "$gen_prefix" \
        -l "$gen_lcores" --main-lcore "$gen_main" "${vdevs[@]}" -- -P -m "$map" -f "$lua")
    NLBD_PG_SECONDS=$secs NLBD_PG_RATE=$rate NLBD_PG_SIZE=$size NLBD_PG_FLOWS=$flows \
    NLBD_PG_PROTO=$proto NLBD_PG_VIP=$vip NLBD_PG_DST_MAC=$cluster_mac NLBD_PG_DPORT=$dport \
    NLBD_PG_RESULT=$res NLBD_PG_RELEASE=$release NLBD_PG_RELEASE_WAIT=30 \
    NLBD_PG_LATENCY=$latency NLBD_PG_LAT_US=$lat_us NLBD_PG_LAT_FILE=$work/$2.latency \
        script -qfec "$cmd" /dev/null </dev/null >"$gen_log" 2>&1 &
    gen_pid=$!
    # Wait for the Lua script's verdict (status= in the results file), for
    # pktgen to die, for a Lua error outside nlbd.lua's xpcall (pktgen prints
    # "lua-shell: ..." or "lua_docall(...) failed" and then sits), or for the
    # deadline: start-up (~5 s) + traffic + 1 s drain + margin.
    local deadline=$(( SECONDS + secs + 60 ))
    while :; do
        if [[ -s $res ]]; then status=$(sed -n 's/^status=//p' "$res"); [[ -n $status ]] && break; fi
        if gone "$gen_pid"; then status=exited; break; fi
        if grep -aqE 'lua-shell:|lua_docall\(' "$gen_log"; then status=lua; break; fi
        (( SECONDS < deadline )) || { status=timeout; break; }
        sleep 0.2
    done
    # Server first, then the client. pktgen's lcore keeps polling its memif
    # port after the traffic stopped, and DPDK 22.11's memif PMD unmaps the
    # region when the peer disconnects, under that poll (SIGSEGV in
    # librte_net_memif, in pktgen this time). So once the Lua script has
    # reported, pktgen is frozen (SIGSTOP: no thread runs), the server stops
    # and closes its port, and the frozen pktgen is killed: nothing polls a
    # region that goes away, on either side. Without a pid the release file
    # lets the Lua script quit pktgen itself after the server has stopped;
    # in the other cases pktgen is stopped (script(1) passes the signal on).
    local os_pid="" frozen=0
    if [[ $status == "done" || $status == "error" ]]; then
        os_pid=$(sed -n 's/^pid=//p' "$res")
        [[ $os_pid =~ ^[0-9]+$ ]] && kill -STOP "$os_pid" 2>/dev/null && frozen=1 frozen_pid=$os_pid
    fi
    stop_only "$3"
    if (( frozen )); then
        kill -KILL "$os_pid" 2>/dev/null || true
        frozen_pid=""
    else
        : >"$release"
    fi
    if [[ $status == "done" || $status == "error" ]]; then
        for ((i = 0; i < 150; i++)); do gone "$gen_pid" && break; sleep 0.1; done
    fi
    stop_only "$gen_pid"
    wait "$gen_pid" || rc=$?
    gen_pid=""
    case $status in
        done) ;;
        error) gen_fail "$gen_log" "pktgen's Lua script $lua failed: $(sed -n 's/^lua_error=//p' "$res")" ;;
        lua) gen_fail "$gen_log" "pktgen's Lua script $lua failed: $(plain_log "$gen_log" | grep -a -m1 -o 'lua-shell:.*' ||
                 plain_log "$gen_log" | grep -a -m1 'lua_docall(')" ;;
        timeout) gen_fail "$gen_log" "pktgen did not finish within $(( secs + 60 )) s (stopped)" ;;
        *)
            if plain_log "$gen_log" | grep -aq 'Cannot create mbuf pool\|Cannot init port'; then
                gen_fail "$gen_log" "pktgen could not allocate its mbuf pools with $gen_mem MB (raise PKTGEN_MEM)"
            fi
            gen_fail "$gen_log" "pktgen exited (status $rc) before its Lua script reported" ;;
    esac
    gen_tx=$(sed -n 's/^tx_packets=//p' "$res")
    gen_drop=$(sed -n 's/^tx_errors=//p' "$res")
    gen_note="pktgen rate $rate% of $(sed -n 's/^link=//p' "$res"), $flows flows"
else
    echo "pktgen_bench: dpdk-testpmd $gen_mode for $secs s, $size-byte frames (as fast as it can) ..." >&2
    frame=$(( size - 4 ))   # testpmd's --txpkts excludes the FCS
    if [[ $gen_mode == flowgen ]]; then
        mode_args=(--forward-mode=flowgen --flowgen-flows="$flows")
    else
        mode_args=(--forward-mode=txonly --txonly-multi-flow "--tx-ip=10.1.0.1,$vip" "--tx-udp=1024,$dport")
    fi
    # Interactive testpmd driven on stdin, in the order memif needs: start,
    # run, "stop" (traffic stops, totals printed), a pause for the rings to
    # drain, the server stopped, then "quit" (the client closes its port).
    {
        sleep 1; echo start; sleep "$secs"; echo stop; sleep 1; stop_only "$3"; echo quit; sleep 2
    } | timeout -s INT -k 10 $(( secs + 40 )) "$testpmd" "${eal_common[@]}" --file-prefix "$gen_prefix" \
        -l "$gen_lcores" --main-lcore "$gen_main" --vdev "$gen_vdev" -- -i \
        "${mode_args[@]}" --eth-peer=0,$cluster_mac --txpkts="$frame" --nb-cores=1 --rxq=1 --txq=1 \
        --burst=32 --total-num-mbufs=16384 >"$gen_log" 2>&1 &
    gen_pid=$!
    wait "$gen_pid" || true
    gen_pid=""
    # Accumulated totals printed by "stop".
    gen_tx=$(awk '/Accumulated forward statistics/ {acc = 1} acc && /TX-packets:/ {print $2; exit}' "$gen_log")
    gen_drop=$(awk '/Accumulated forward statistics/ {acc = 1} acc && /TX-packets:/ {print $4; exit}' "$gen_log")
    gen_note="testpmd $gen_mode, unthrottled"
fi
t1=$(date +%s.%N)
if [[ -z ${gen_tx:-} ]]; then
    echo "pktgen_bench: the generator reported no totals; its log:" >&2
    tail -n 30 "$gen_log" >&2
    exit 1
fi
}
run_generator "$sock" gen "$nlbd_pid" "${local_sock:-}"
[[ -s $work/gen.pktgen.txt ]] && cp "$work/gen.pktgen.txt" "$work/pktgen.txt"

# lat_stats FILE: "p50 p99 max count" in microseconds of pktgen's latency
# sampler output (nanoseconds, one a line after a "Latency" header; nearest
# rank), or nothing when it holds no sample.
lat_stats() {
    [[ -s $1 ]] || return 0
    grep -E '^[0-9]+$' "$1" | sort -n | awk '{v[NR] = $1}
        function rank(p,   i) {i = int(p * NR + 0.999999); if (i < 1) i = 1; return v[i] / 1000}
        END {if (NR > 0) printf "%.2f %.2f %.2f %d\n", rank(0.50), rank(0.99), v[NR] / 1000, NR}'
}
lat_line="" lat_keys=""
if (( latency )); then
    read -r nl_p50 nl_p99 nl_pmax nl_pn < <(lat_stats "$work/gen.latency") || true
    [[ -n ${nl_pn:-} ]] || gen_fail "$work/gen.log" "--latency: pktgen recorded no latency sample (did nlbd forward the timed packets to its local memif port? see its verdicts)"
    lat_line="  round trip via nlbd: p50 $nl_p50 us, p99 $nl_p99 us, max $nl_pmax us ($nl_pn samples; a timed packet every $lat_us us)"
    lat_keys="latency_samples=$nl_pn
latency_p50_us=$nl_p50
latency_p99_us=$nl_p99
latency_max_us=$nl_pmax"
fi

# --- then the server: nlbd writes its counters on SIGINT ---------------------
sleep 0.5
stop "$nlbd_pid"
nlbd_pid=""
[[ -s $work/nlbd.json ]] || { echo "pktgen_bench: nlbd wrote no --stats-json; its log:" >&2; tail -n 30 "$work/nlbd.log" >&2; exit 1; }
json_int() { grep -o "\"$1\":[0-9]*" "$work/nlbd.json" | head -n 1 | cut -d: -f2; }
nl_rx=$(json_int rx_total)
nl_acc=$(json_int accepted)
# Non-zero verdict counters only.
verdicts=$(tr -d '\n' <"$work/nlbd.json" | grep -o '"verdicts":{[^}]*}' | sed 's/"verdicts"://; s/"//g; s/[{}]//g' |
    tr ',' '\n' | awk -F: '$2 > 0 {printf "%s%s", sep, $0; sep = ", "}')

# Rates over the generator's traffic window ($secs s of sending).
mpps() { awk -v n="$1" -v s="$secs" 'BEGIN {printf "%.3f", n / s / 1e6}'; }
gen_mpps=$(mpps "$gen_tx")
offered_mpps=$(mpps $(( gen_tx + ${gen_drop:-0} )))
nl_mpps=$(mpps "$nl_rx")
missing=$(( gen_tx - nl_rx ))
(( missing < 0 )) && missing=0
base_line=""
if [[ $baseline == 1 ]]; then
    [[ -n $testpmd && -x $testpmd ]] || { echo "pktgen_bench: --baseline needs dpdk-testpmd" >&2; exit 1; }
    nlbd_gen_tx=$gen_tx nlbd_gen_drop=$gen_drop
    echo "pktgen_bench: baseline: dpdk-testpmd io as the memif server (lcores $nlbd_lcores) ..." >&2
    base_sock=$work/base.sock
    if (( latency )); then
        base_local_sock=$work/base-local.sock
        base_local=(--vdev "net_memif1,role=server,socket=$base_local_sock,socket-abstract=no")
    else
        base_local_sock=""
        base_local=(--vdev "net_null0,no-rx=1")
    fi
    # Non-interactive with --stats-period: runs until SIGINT, then prints totals.
    "$testpmd" "${eal_common[@]}" --file-prefix "$base_prefix" -l "$nlbd_lcores" \
        --vdev "net_memif0,role=server,socket=$base_sock,socket-abstract=no" "${base_local[@]}" -- \
        --forward-mode=io --nb-cores=1 --rxq=1 --txq=1 --burst=32 --total-num-mbufs=16384 \
        --stats-period=1 </dev/null >"$work/base.log" 2>&1 &
    base_pid=$!
    for ((i = 0; i < 200; i++)); do [[ -S $base_sock ]] && break; sleep 0.1; done
    [[ -S $base_sock ]] || { echo "pktgen_bench: baseline testpmd made no memif socket; its log:" >&2; tail -n 20 "$work/base.log" >&2; exit 1; }
    run_generator "$base_sock" base-gen "$base_pid" "$base_local_sock"
    sleep 0.5
    stop "$base_pid"
    base_pid=""
    # Frames testpmd forwarded to the sink: the accumulated TX-packets (its RX
    # counters of the memif server port read 0 with DPDK 22.11 here).
    base_rx=$(awk '/Accumulated forward statistics/ {acc = 1} acc && /TX-packets:/ {print $2; exit}' "$work/base.log")
    [[ -n $base_rx ]] || { echo "pktgen_bench: baseline testpmd printed no totals; its log:" >&2; tail -n 20 "$work/base.log" >&2; exit 1; }
    base_mpps=$(mpps "$base_rx")
    ratio=$(awk -v a="$nl_mpps" -v b="$base_mpps" 'BEGIN {printf "%.2f", (b > 0) ? a / b : 0}')
    base_line="  testpmd io (same)  : $base_mpps Mpps forwarded ($base_rx frames; its generator offered $(mpps $(( gen_tx + ${gen_drop:-0} ))) Mpps)
  ratio nlbd/testpmd : $ratio (SPEC §10 target >= 0.5)"
    if (( latency )); then
        read -r tp_p50 tp_p99 tp_pmax tp_pn < <(lat_stats "$work/base-gen.latency") || true
        [[ -n ${tp_pn:-} ]] || gen_fail "$work/base-gen.log" "--latency: pktgen recorded no latency sample through testpmd"
        add50=$(awk -v a="$nl_p50" -v b="$tp_p50" 'BEGIN {printf "%.2f", a - b}')
        add99=$(awk -v a="$nl_p99" -v b="$tp_p99" 'BEGIN {printf "%.2f", a - b}')
        lat_line="$lat_line
  round trip via testpmd io: p50 $tp_p50 us, p99 $tp_p99 us, max $tp_pmax us ($tp_pn samples)
  nlbd's added latency: p50 $add50 us, p99 $add99 us"
        lat_keys="$lat_keys
testpmd_latency_samples=$tp_pn
testpmd_latency_p50_us=$tp_p50
testpmd_latency_p99_us=$tp_p99
testpmd_latency_max_us=$tp_pmax
nlbd_added_latency_p50_us=$add50
nlbd_added_latency_p99_us=$add99"
    fi
    gen_tx=$nlbd_gen_tx gen_drop=$nlbd_gen_drop
fi

cat >"$result" <<EOT
generator=$generator
seconds=$secs
frame_bytes=$size
generated_packets=$gen_tx
generator_tx_drops=${gen_drop:-0}
generated_mpps=$gen_mpps
offered_mpps=$offered_mpps
nlbd_rx_packets=$nl_rx
nlbd_accepted=${nl_acc:-0}
nlbd_mpps=$nl_mpps
sent_not_received=$missing
EOT
[[ -s $work/pktgen.txt ]] && sed 's/^/pktgen_/' "$work/pktgen.txt" >>"$result"
[[ $baseline == 1 ]] && printf 'testpmd_io_rx_packets=%s\ntestpmd_io_mpps=%s\nratio_nlbd_testpmd=%s\n' "$base_rx" "$base_mpps" "$ratio" >>"$result"
[[ -n $lat_keys ]] && echo "$lat_keys" >>"$result"

cat <<EOT

nlbd over net_memif ($(date -u +%Y-%m-%dT%H:%M:%SZ)), $(nproc) CPUs, load average $(cut -d' ' -f1-3 /proc/loadavg), $mem_note
  generator : $gen_note, lcore $gen_fwd; $size-byte frames toward $vip:$dport ($proto)
  nlbd      : worker on lcores $nlbd_lcores (main, worker); wire memif server, local $( ((latency)) && echo "memif server (back to the generator)" || echo net_null)
  window    : $secs s of traffic ($(awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.1f", b - a}') s with start-up and shutdown)

  offered            : $offered_mpps Mpps (frames the generator tried to send)
  generated          : $gen_mpps Mpps ($gen_tx frames into the memif ring; ${gen_drop:-0} dropped by the generator: ring full)
  nlbd processed     : $nl_mpps Mpps ($nl_rx frames received, ${nl_acc:-0} accepted)
  sent, not received : $missing
  nlbd verdicts      : $verdicts
EOT
[[ -n $base_line ]] && echo "$base_line"
[[ -n $lat_line ]] && echo "$lat_line"
if [[ $result == "$work/results.txt" && ${KEEP:-0} != 1 ]]; then
    echo "  results (also written with --result FILE):"; sed 's/^/    /' "$result"
else
    echo "  results file       : $result"
fi
exit 0
