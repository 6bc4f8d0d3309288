#!/usr/bin/env bash
# End-to-end single-core benchmark (SPEC §10): nlbd's whole filter-hash-decide
# path against dpdk-testpmd (io forwarding) on the same input, same vdevs, same
# lcores, same machine, in one run.
#
#   scripts/bench_e2e.sh [BUILD_DIR] [SECONDS]        (defaults: build, 10)
#
# Both programs get, one after the other:
#   wire  port: net_pcap0,rx_pcap=<flow mix>,infinite_rx=1  (replays the capture
#               forever; no tx_pcap, so the PMD drops what is sent back out)
#   local port: net_null0,no-rx=1                           (a TX sink, no RX)
#   EAL: --no-huge -m 512 --no-pci --no-shconf -l $LCORES  (main lcore first,
#        then ONE forwarding/worker lcore, pinned by EAL)
# The capture is the benchmark flow mix of bench/flow_mix.hpp (written by
# nlbd-bench-pcapgen), the same frames bench_pipeline measures.
#
# Mpps: testpmd's periodic "Rx-pps" of port 0 (--stats-period 1), averaged
# over the full 1-s samples (start-up samples left out); nlbd's rx_total from
# its --stats-json divided by --run-for (its timer starts when the worker is
# launched). Output: a table with both rates and their ratio (target >= 0.5).
# Timings vary with whatever else runs on the machine: run it on a quiet one.
#
# Environment: LCORES (default "0,1"), ROUNDS (testpmd + nlbd pairs, default
# 1; the ratio reported is the median of the rounds' ratios), FLOWS (frames in
# the capture, default 10240), TESTPMD (default dpdk-testpmd on PATH), NLBD
# (default BUILD_DIR/src/dp/nlbd), KEEP=1 keeps the work directory (logs,
# generated configs, nlbd's JSON).
set -euo pipefail

build=${1:-build}
secs=${2:-10}
here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# BUILD_DIR relative to the caller's directory, else to the repository root.
[[ -d $build ]] || build=$here/$build
[[ -d $build ]] || { echo "bench_e2e: no build directory '${1:-build}'" >&2; exit 1; }
build=$(cd "$build" && pwd)
cd "$here"
[[ $secs =~ ^[0-9]+$ && $secs -ge 2 ]] || { echo "bench_e2e: SECONDS must be an integer >= 2" >&2; exit 1; }

lcores=${LCORES:-0,1}
rounds=${ROUNDS:-1}
flows=${FLOWS:-10240}
testpmd=${TESTPMD:-$(command -v dpdk-testpmd || true)}
nlbd=${NLBD:-$build/src/dp/nlbd}
gen=$build/bench/nlbd-bench-pcapgen
for f in "$testpmd" "$nlbd" "$gen"; do
    [[ -n $f && -x $f ]] || { echo "bench_e2e: missing executable '${f:-dpdk-testpmd}' (build it first)" >&2; exit 1; }
done

work=$(mktemp -d "${TMPDIR:-/tmp}/nlbd-bench-e2e.XXXXXX")
cleanup() {
    if [[ ${KEEP:-0} == 1 ]]; then echo "bench_e2e: kept $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

"$gen" --out "$work/in.pcap" --flows "$flows" >"$work/pcapgen.log"
mix=$(cat "$work/pcapgen.log")
# Every frame of the capture sits in the RX mempool (infinite_rx), plus rings.
mbufs=$(( (flows + 8192 + 4095) / 4096 * 4096 ))

wire="net_pcap0,rx_pcap=$work/in.pcap,infinite_rx=1"
local_dev="net_null0,no-rx=1"
eal=(--no-huge -m 512 --no-pci --no-shconf --log-level=lib.eal:error -l "$lcores")

# --- nlbd config, host 1 of a static 3-host cluster, the seed-like rule set -----
cat >"$work/nic.toml" <<EOF
[nic]
name = "bench-vdev"
rx_queues = 1
tx_queues = 1
burst = 32
mempool_size = $(( mbufs - 1 ))
EOF
cat >"$work/cluster.toml" <<EOF
# bench_e2e: the cluster of bench/flow_mix.hpp (rules(0)), host 1 of 3.
[cluster]
name = "bench.example"
vips = ["10.0.0.100", "10.0.0.101", "10.0.0.102", "10.0.0.103", "2001:db8::100"]
mode = "unicast"
static_members = [1, 2, 3]

[host]
id = 1
dedicated_ip = "10.0.0.11"

[ports.wire]
device = "$wire"

[ports.local]
device = "$local_dev"

[dataplane]
idle_policy = "poll"

[[port_rule]]
vip = "all"
ports = "443"
protocol = "tcp"
mode = "multiple"
affinity = "none"

[[port_rule]]
vip = "all"
ports = "80"
protocol = "tcp"
mode = "multiple"
affinity = "single"

[[port_rule]]
vip = "all"
ports = "25"
protocol = "tcp"
mode = "disabled"

[[port_rule]]
vip = "all"
ports = "53"
protocol = "udp"
mode = "multiple"
affinity = "none"

[[port_rule]]
vip = "all"
ports = "1024-65535"
protocol = "both"
mode = "multiple"
affinity = "single"
EOF

# --- (a) dpdk-testpmd, io forwarding: port 0 (pcap) -> port 1 (null) --------
# run_testpmd ROUND: sets tp_mpps, tp_total, tp_n, tp_range.
run_testpmd() {
    local log=$work/testpmd.$1.log samples=$work/testpmd.$1.samples
    echo "bench_e2e: round $1: dpdk-testpmd io, $secs s on lcores $lcores ..." >&2
    # SIGINT after the run (testpmd then prints its totals and stops its
    # ports); SIGKILL 10 s later if it hangs.
    timeout -s INT -k 10 $(( secs + 2 )) "$testpmd" "${eal[@]}" --vdev "$wire" --vdev "$local_dev" -- \
        --forward-mode=io --nb-cores=1 --rxq=1 --txq=1 --burst=32 \
        --total-num-mbufs="$mbufs" --stats-period=1 </dev/null >"$log" 2>&1 || true
    # Rx-pps of port 0 per 1-s sample, in order. Samples before forwarding
    # started are 0 and the first non-zero one covers a partial second: both
    # are left out; the rest are averaged.
    awk '/NIC statistics for port/ {port = $6} /Rx-pps:/ && port == "0" {print $2}' "$log" |
        awk 'started {print} $1 > 0 {started = 1}' >"$samples"
    tp_n=$(wc -l <"$samples")
    if (( tp_n < 1 )); then
        echo "bench_e2e: dpdk-testpmd gave no usable rate samples; its log:" >&2
        tail -n 30 "$log" >&2
        exit 1
    fi
    tp_mpps=$(awk '{s += $1; n++} END {printf "%.3f", s / n / 1e6}' "$samples")
    tp_range=$(awk 'NR == 1 || $1 < lo {lo = $1} NR == 1 || $1 > hi {hi = $1}
                    END {printf "%.2f-%.2f", lo / 1e6, hi / 1e6}' "$samples")
    tp_total=$(awk '/Accumulated forward statistics/ {acc = 1} acc && /RX-packets:/ {print $2; exit}' "$log")
}

# run_nlbd ROUND: sets nl_mpps, nl_total, nl_accepted.
run_nlbd() {
    local json=$work/nlbd.$1.json log=$work/nlbd.$1.log
    echo "bench_e2e: round $1: nlbd, $secs s on lcores $lcores ..." >&2
    # nlbd stops by itself after --run-for; the timeout only guards a hang.
    if ! timeout -s INT -k 10 $(( secs + 60 )) "$nlbd" --config "$work/cluster.toml" \
        --nic "$work/nic.toml" --run-for "$secs" --stats-json "$json" -- "${eal[@]}" \
        </dev/null >"$log" 2>&1; then
        echo "bench_e2e: nlbd failed; its log:" >&2
        tail -n 30 "$log" >&2
        exit 1
    fi
    json_int() {  # json_int KEY: first integer value of "KEY" in the JSON
        grep -o "\"$1\":[0-9]*" "$json" | head -n 1 | cut -d: -f2
    }
    nl_total=$(json_int rx_total)
    nl_accepted=$(json_int accepted)
    nl_mpps=$(awk -v n="$nl_total" -v s="$secs" 'BEGIN {printf "%.3f", n / s / 1e6}')
}

# --- rounds: testpmd then nlbd, back to back, ROUNDS times -------------------
row() { printf '| %5s | %-26s | %8s | %15s | %-40s |\n' "$@"; }
rows=""
ratios=()
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
for ((r = 1; r <= rounds; r++)); do
    run_testpmd "$r"
    run_nlbd "$r"
    ratio=$(awk -v a="$nl_mpps" -v b="$tp_mpps" 'BEGIN {printf "%.2f", (b > 0) ? a / b : 0}')
    ratios+=("$ratio")
    rows+=$(row "$r" "dpdk-testpmd (io)" "$tp_mpps" "${tp_total:-?}" "mean of $tp_n 1-s samples ($tp_range)")$'\n'
    rows+=$(row "$r" "nlbd (filter-hash-decide)" "$nl_mpps" "$nl_total" "rx_total / $secs s; ratio $ratio")$'\n'
done
ratio=$(printf '%s\n' "${ratios[@]}" | sort -n | awk '{v[NR] = $1} END {print v[int((NR + 1) / 2)]}')
verdict=$(awk -v r="$ratio" 'BEGIN {print ((r >= 0.5) ? "met" : "NOT met")}')

cpu=$(lscpu | sed -n 's/^Model name:[[:space:]]*//p' | head -n 1)
cat <<EOF

nlbd end-to-end benchmark ($(date -u +%Y-%m-%dT%H:%M:%SZ))
  machine : $cpu, $(nproc) CPUs; lcores $lcores (main, forwarding)
  input   : $mix
  ports   : wire $wire
            local $local_dev
  run     : $secs s each, sequential, one forwarding core, --no-huge; $rounds round(s)
  load    : $load_before before, $(cut -d' ' -f1-3 /proc/loadavg) after (1/5/15-min load averages)

$(row round program Mpps "frames received" note)
| ----: | -------------------------- | -------: | --------------: | ---------------------------------------- |
${rows%$'\n'}

ratio nlbd / testpmd (median of rounds) = $ratio  (target >= 0.50: $verdict)
EOF
