#!/usr/bin/env bash
# Traffic-generator benchmark of nlbd over net_memif (SPEC §10, issue 5).
#
#   scripts/pktgen_bench.sh [--seconds N] [--rate PCT] [--size BYTES] [--flows N]
#                           [--proto udp|tcp] [--result FILE] [--baseline] [BUILD_DIR]
#
# Topology (one machine, two DPDK processes, one memif link):
#   generator --(net_memif client)==socket==(net_memif server)--> nlbd wire port
#   nlbd local port: net_null0,no-rx=1 (a TX sink)
# nlbd is host 1 of a one-member static cluster (it owns every bucket), VIP
# 10.0.0.100 in unicast mode, one rule for every port (multiple, affinity none),
# so every frame toward the VIP is accepted and sent to the local port.
#
# Generator:
#   - Pktgen-DPDK when $PKTGEN names its executable: scripts/pktgen/nlbd.lua
#     sets range traffic (source IPs 10.1.0.1-16, source ports 1024..+FLOWS-1,
#     toward VIP:53/udp or VIP:80/tcp), sends for --seconds at --rate percent,
#     stops, writes its tx/rx totals and rates to the result file and quits.
#   - otherwise (it says so) dpdk-testpmd --forward-mode=txonly
#     --txonly-multi-flow: UDP toward VIP:53 from varying source addresses,
#     as fast as it can (--rate and --flows apply to pktgen only);
#     GEN_MODE=flowgen uses --forward-mode=flowgen instead (testpmd's own
#     addresses, not the VIP: nlbd counts them as non-VIP traffic).
# Shutdown order memif needs: the generator stops its traffic, then the server
# side (nlbd, or the baseline testpmd) gets SIGINT, stops polling and writes
# its --stats-json, and only then does the client (testpmd generator) quit.
# DPDK 22.11's memif PMD unmaps the shared region when the peer disconnects
# while the other side may still be inside rte_eth_rx_burst on it: a client
# that leaves first crashed the server (SIGSEGV in librte_net_memif, seen
# with testpmd as the server too). Pktgen's Lua script quits by itself after
# stopping its traffic; the server is stopped right after. A trap stops whatever is still running and removes the work
# directory (sockets, configs, logs; KEEP=1 keeps it) on any exit.
#
# --baseline (or BASELINE=1): a second pass with dpdk-testpmd --forward-mode=io
# in nlbd's place (memif server -> net_null, same lcores), the same generator
# and settings, and the ratio nlbd / testpmd (SPEC §10's yardstick).
#
# Output: generated Mpps (generator's TX over the traffic window), Mpps nlbd
# received (rx_total from --stats-json over the same window), the difference
# (frames the generator sent that nlbd did not count) and the generator's own
# TX drops (memif ring full), plus nlbd's verdicts. The same as key=value lines
# in --result FILE (default: results.txt in the work directory, printed).
#
# Memory: every process runs with --no-huge -m 512 (verified with DPDK 22.11:
# net_memif works without hugepages; its regions are memfd-backed). net_memif
# refuses to probe with --no-shconf / --in-memory (it needs the EAL
# multi-process channel), so each process gets its own --file-prefix instead.
# If nlbd's memif port cannot come up here the script says why and exits 77.
#
# Environment: PKTGEN (Pktgen-DPDK executable), TESTPMD (default dpdk-testpmd),
# NLBD (default BUILD_DIR/src/daemon/nlbd), NLBD_LCORES (default "0,1": main, worker),
# GEN_LCORES (default "0,1", main lcore 1, so the generator sends from lcore 0),
# GEN_MODE (txonly | flowgen), KEEP=1.
set -euo pipefail

secs=10 rate=100 size=64 flows=256 proto=udp result="" build="" baseline=${BASELINE:-0}
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
        -h|--help) usage ;;
        -*) echo "pktgen_bench: unknown option '$1'" >&2; usage ;;
        *) build=$1; shift ;;
    esac
done
for v in secs rate size flows; do
    [[ ${!v} =~ ^[0-9]+$ && ${!v} -ge 1 ]] || { echo "pktgen_bench: --$v must be a positive integer" >&2; exit 2; }
done
[[ $proto == udp || $proto == tcp ]] || { echo "pktgen_bench: --proto is udp or tcp" >&2; exit 2; }
(( size >= 64 && size <= 1518 )) || { echo "pktgen_bench: --size must be 64..1518" >&2; exit 2; }
(( rate <= 100 )) || { echo "pktgen_bench: --rate is a percentage (1..100)" >&2; exit 2; }

here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${build:-build}
[[ -d $build ]] || build=$here/$build
nlbd=${NLBD:-$build/src/daemon/nlbd}
[[ -x $nlbd ]] || { echo "pktgen_bench: no nlbd executable at '$nlbd' (build it, or set NLBD)" >&2; exit 1; }
testpmd=${TESTPMD:-$(command -v dpdk-testpmd || true)}
lua=$here/scripts/pktgen/nlbd.lua
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
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/nlbd-pktgen.XXXXXX")
sock=$work/wire.sock
tag=$$
nlbd_prefix=nlbd-pkb-$tag
gen_prefix=gen-pkb-$tag
base_prefix=base-pkb-$tag
nlbd_pid="" gen_pid="" base_pid=""
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
cleanup() {
    # Client (generator) before server (nlbd), as memif wants.
    stop "$gen_pid"
    stop "$nlbd_pid"
    stop "$base_pid"
    rm -rf "/var/run/dpdk/$nlbd_prefix" "/var/run/dpdk/$gen_prefix" "/var/run/dpdk/$base_prefix" \
           "${XDG_RUNTIME_DIR:-/nonexistent}/dpdk/$nlbd_prefix" "${XDG_RUNTIME_DIR:-/nonexistent}/dpdk/$gen_prefix"
    if [[ ${KEEP:-0} == 1 ]]; then echo "pktgen_bench: kept $work" >&2; else rm -rf "$work"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

vip=10.0.0.100
cluster_mac=02:bf:0a:00:00:64   # unicast cluster MAC of the VIP 10.0.0.100
if [[ $proto == udp ]]; then dport=53; else dport=80; fi

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
device = "net_null0,no-rx=1"

[dataplane]
idle_policy = "poll"

[[port_rule]]
vip = "all"
ports = "0-65535"
protocol = "both"
mode = "multiple"
affinity = "none"
EOT

eal_common=(--no-huge -m 512 --no-pci --log-level=lib.eal:error)

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
# run_generator SOCKET NAME SERVER_PID: runs the generator against the memif
# server at SOCKET (logs and results under NAME), sets gen_tx, gen_drop,
# gen_note, t0, t1; the testpmd generator stops SERVER_PID before it quits.
run_generator() {
local gen_vdev="net_memif0,role=client,socket=$1,socket-abstract=no"
local gen_log=$work/$2.log
gen_tx="" gen_drop=""
t0=$(date +%s.%N)
if [[ $generator == pktgen ]]; then
    echo "pktgen_bench: Pktgen-DPDK ($PKTGEN) for $secs s, $rate% rate, $size-byte frames, $flows flows, $proto ..." >&2
    # The Lua script quits pktgen when done; the timeout only guards a hang.
    NLBD_PG_SECONDS=$secs NLBD_PG_RATE=$rate NLBD_PG_SIZE=$size NLBD_PG_FLOWS=$flows \
    NLBD_PG_PROTO=$proto NLBD_PG_VIP=$vip NLBD_PG_DST_MAC=$cluster_mac NLBD_PG_DPORT=$dport \
    NLBD_PG_RESULT=$work/$2.pktgen.txt \
        timeout -s INT -k 10 $(( secs + 60 )) "$PKTGEN" "${eal_common[@]}" --file-prefix "$gen_prefix" \
        -l "$gen_lcores" --main-lcore "$gen_main" --vdev "$gen_vdev" -- \
        -P -m "$gen_fwd.0" -f "$lua" </dev/null >"$gen_log" 2>&1 &
    gen_pid=$!
    wait "$gen_pid" || echo "pktgen_bench: pktgen exited with status $? (log: $gen_log)" >&2
    gen_pid=""
    [[ -s $work/$2.pktgen.txt ]] || { echo "pktgen_bench: pktgen wrote no results; its log:" >&2; tail -n 30 "$gen_log" >&2; exit 1; }
    gen_tx=$(sed -n 's/^tx_packets=//p' "$work/$2.pktgen.txt")
    gen_drop=$(sed -n 's/^tx_errors=//p' "$work/$2.pktgen.txt")
    gen_note="pktgen rate $rate%, $flows flows"
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
run_generator "$sock" gen "$nlbd_pid"
[[ -s $work/gen.pktgen.txt ]] && cp "$work/gen.pktgen.txt" "$work/pktgen.txt"

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
    # Non-interactive with --stats-period: runs until SIGINT, then prints totals.
    "$testpmd" "${eal_common[@]}" --file-prefix "$base_prefix" -l "$nlbd_lcores" \
        --vdev "net_memif0,role=server,socket=$base_sock,socket-abstract=no" --vdev net_null0,no-rx=1 -- \
        --forward-mode=io --nb-cores=1 --rxq=1 --txq=1 --burst=32 --total-num-mbufs=16384 \
        --stats-period=1 </dev/null >"$work/base.log" 2>&1 &
    base_pid=$!
    for ((i = 0; i < 200; i++)); do [[ -S $base_sock ]] && break; sleep 0.1; done
    [[ -S $base_sock ]] || { echo "pktgen_bench: baseline testpmd made no memif socket; its log:" >&2; tail -n 20 "$work/base.log" >&2; exit 1; }
    run_generator "$base_sock" base-gen "$base_pid"
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

cat <<EOT

nlbd over net_memif ($(date -u +%Y-%m-%dT%H:%M:%SZ)), $(nproc) CPUs, --no-huge
  generator : $gen_note, lcore $gen_fwd; $size-byte frames toward $vip:$dport ($proto)
  nlbd      : worker on lcores $nlbd_lcores (main, worker); wire memif server, local net_null
  window    : $secs s of traffic ($(awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.1f", b - a}') s with start-up and shutdown)

  offered            : $offered_mpps Mpps (frames the generator tried to send)
  generated          : $gen_mpps Mpps ($gen_tx frames into the memif ring; ${gen_drop:-0} dropped by the generator: ring full)
  nlbd processed     : $nl_mpps Mpps ($nl_rx frames received, ${nl_acc:-0} accepted)
  sent, not received : $missing
  nlbd verdicts      : $verdicts
EOT
[[ -n $base_line ]] && echo "$base_line"
if [[ $result == "$work/results.txt" && ${KEEP:-0} != 1 ]]; then
    echo "  results (also written with --result FILE):"; sed 's/^/    /' "$result"
else
    echo "  results file       : $result"
fi
exit 0
