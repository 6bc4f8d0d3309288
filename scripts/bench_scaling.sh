#!/usr/bin/env bash
# Multi-core benchmark (issue 5, docs/multicore.md): nlbd with 1..N workers in
# both dispatch modes beside dpdk-testpmd io with as many forwarding cores, on
# the same input (the bench/flow_mix.hpp capture), in one run.
#
#   scripts/bench_scaling.sh [BUILD_DIR] [SECONDS] [MAX_WORKERS]   (defaults: build, 5, nproc-1 >= 2)
#
# Input: net_pcap infinite_rx=1. rss rows split the capture by flow
# (nlbd-pcap-split, the distributor's flow hash) into one file per worker and
# give each its own RX queue, as a NIC's RSS would; distributor rows use the
# one file on one queue. Output port: net_null (a TX sink). testpmd reference:
# --forward-mode=io with --nb-cores=N over the same N queues.
# Lcores: main lcore 0 plus one per forwarding thread, mapped round-robin onto
# the CPUs (EAL --lcores l@cpu). When there are fewer CPUs than busy threads
# the row says so: its number measures time-sharing, not scaling.
# Mpps: nlbd rx_total / SECONDS (--run-for); testpmd: mean Rx-pps of port 0
# over the full 1-s samples. Environment: TESTPMD, NLBD, FLOWS (10240), KEEP=1.
set -euo pipefail

build=${1:-build}
secs=${2:-5}
here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
[[ -d $build ]] || build=$here/$build
build=$(cd "$build" && pwd)
ncpu=$(nproc)
max_w=${3:-$(( ncpu - 1 > 2 ? ncpu - 1 : 2 ))}
flows=${FLOWS:-10240}
testpmd=${TESTPMD:-$(command -v dpdk-testpmd || true)}
nlbd=${NLBD:-$build/src/daemon/nlbd}
gen=$build/bench/nlbd-bench-pcapgen
split=$build/src/tools/nlbd-pcap-split
for f in "$testpmd" "$nlbd" "$gen" "$split"; do
    [[ -n $f && -x $f ]] || { echo "bench_scaling: missing executable '${f:-dpdk-testpmd}'" >&2; exit 1; }
done
work=$(mktemp -d "${TMPDIR:-/tmp}/nlbd-bench-scaling.XXXXXX")
cleanup() { if [[ ${KEEP:-0} == 1 ]]; then echo "bench_scaling: kept $work"; else rm -rf "$work"; fi; }
trap cleanup EXIT
trap 'exit 130' INT TERM

# The flow mix and its seed rule set (the same as scripts/bench_e2e.sh's).
"$gen" --out "$work/in.pcap" --flows "$flows" --rules 0 --rules-toml "$work/rules.toml" >"$work/pcapgen.log"
mbufs=$(( (flows + 8192 * (max_w + 1) + 4095) / 4096 * 4096 ))

# lcore_map N: main + N busy lcores, round-robin on the CPUs (main on CPU 0).
lcore_map() {
    local n=$1 l m=""
    for ((l = 0; l <= n; l++)); do m+="${m:+,}$l@$(( l % ncpu ))"; done
    echo "$m"
}
wire_dev() {  # wire_dev QUEUES
    local q=$1 d="net_pcap0" i
    if (( q == 1 )); then d+=",rx_pcap=$work/in.pcap"
    else for ((i = 0; i < q; i++)); do d+=",rx_pcap=$work/in.q$q.$i.pcap"; done; fi
    echo "$d,infinite_rx=1"
}
for ((w = 2; w <= max_w; w++)); do "$split" --in "$work/in.pcap" --out-prefix "$work/in.q$w." --ways "$w" >/dev/null; done

eal_base=(--no-huge -m 1024 --no-pci --no-shconf --no-telemetry --log-level=lib.eal:error)

run_testpmd() {  # run_testpmd CORES -> tp_mpps
    local n=$1 log=$work/testpmd.$1.log
    timeout -s INT -k 10 $(( secs + 3 )) "$testpmd" "${eal_base[@]}" --lcores "$(lcore_map "$n")" \
        --vdev "$(wire_dev "$n")" --vdev net_null0,no-rx=1 -- --forward-mode=io --nb-cores="$n" \
        --rxq="$n" --txq="$n" --burst=32 --total-num-mbufs="$mbufs" --stats-period=1 </dev/null >"$log" 2>&1 || true
    tp_mpps=$(awk '/NIC statistics for port/ {port = $6} /Rx-pps:/ && port == "0" {print $2}' "$log" |
        awk 'started {s += $1; n++} $1 > 0 {started = 1} END {printf "%.3f", n ? s / n / 1e6 : 0}')
}

run_nlbd() {  # run_nlbd MODE WORKERS -> nl_mpps, nl_per
    local mode=$1 n=$2 q=1 busy=$2 json=$work/nlbd.$1.$2.json
    [[ $mode == rss ]] && q=$n
    [[ $mode == distributor ]] && busy=$(( n + 1 ))
    sed "s|@WIRE@|$(wire_dev "$q")|" "$work/cluster.toml.in" >"$work/cluster.$mode.$n.toml"
    printf '[nic]\nname = "bench-%s-%s"\nworkers = %s\ndispatch = "%s"\nrx_queues = %s\nmempool_size = %s\n' \
        "$mode" "$n" "$n" "$mode" "$q" "$(( mbufs - 1 ))" >"$work/nic.$mode.$n.toml"
    timeout -s INT -k 10 $(( secs + 60 )) "$nlbd" --config "$work/cluster.$mode.$n.toml" \
        --nic "$work/nic.$mode.$n.toml" --run-for "$secs" --stats-json "$json" --no-control-socket -- \
        "${eal_base[@]}" --lcores "$(lcore_map "$busy")" </dev/null >"$work/nlbd.$mode.$n.log" 2>&1 ||
        { echo "bench_scaling: nlbd $mode $n failed:" >&2; tail -n 20 "$work/nlbd.$mode.$n.log" >&2; exit 1; }
    nl_mpps=$(jq -r --arg s "$secs" '.rx_total / ($s | tonumber) / 1e6 * 1000 | round / 1000' "$json")
    nl_per=$(jq -r '[.workers.per_worker[].rx_total] | map(tostring) | join("/")' "$json")
}

cat >"$work/cluster.toml.in" <<'EOT'
[cluster]
name = "bench.example"
vips = ["10.0.0.100", "10.0.0.101", "10.0.0.102", "10.0.0.103", "2001:db8::100"]
mode = "unicast"
static_members = [1, 2, 3]
[host]
id = 1
dedicated_ip = "10.0.0.11"
[ports.wire]
device = "@WIRE@"
[ports.local]
device = "net_null1,no-rx=1"
[telemetry]
dpdk_telemetry = false
[dataplane]
idle_policy = "poll"
EOT
cat "$work/rules.toml" >>"$work/cluster.toml.in"

row() { printf '| %-34s | %5s | %9s | %-22s | %s\n' "$@"; }
echo
echo "nlbd multi-core benchmark ($(date -u +%Y-%m-%dT%H:%M:%SZ)), $(lscpu | sed -n 's/^Model name:[[:space:]]*//p' | head -n 1), $ncpu CPUs, $secs s per row"
row "what" "busy" "Mpps" "frames per worker" "note"
for ((w = 1; w <= max_w; w++)); do
    note=""; (( w > ncpu )) && note="more busy threads than CPUs: time-shared"
    run_testpmd "$w"
    row "dpdk-testpmd io, $w core(s), $w queue(s)" "$w" "$tp_mpps" "-" "$note"
    run_nlbd rss "$w"
    row "nlbd rss, $w worker(s)" "$w" "$nl_mpps" "$nl_per" "$note"
    note=""; (( w + 1 > ncpu )) && note="more busy threads than CPUs: time-shared"
    run_nlbd distributor "$w"
    row "nlbd distributor + $w worker(s)" "$(( w + 1 ))" "$nl_mpps" "$nl_per" "$note"
done
