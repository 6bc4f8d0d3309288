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
#   EAL: -m <sized per cell> --no-pci -l $LCORES (main lcore first, then ONE
#        forwarding/worker lcore, pinned by EAL), on hugepages
#        (--in-memory) or without (--no-huge --no-shconf): see PAGES
# The capture is the benchmark flow mix of bench/flow_mix.hpp (written by
# nlbd-bench-pcapgen), the same frames bench_pipeline measures.
#
# Mpps: testpmd's periodic "Rx-pps" of port 0 (--stats-period 1), averaged
# over the full 1-s samples (start-up samples left out); nlbd's rx_total from
# its --stats-json divided by --run-for (its timer starts when the worker is
# launched). Output: a table with both rates and their ratio (SPEC §10 /
# issue 15 targets: >= 0.70 on the flow mix, >= 0.50 with 1M live
# connections; TARGET overrides).
# Timings vary with whatever else runs on the machine: run it on a quiet one.
#
# Environment: LCORES (default "0,1"), ROUNDS (testpmd + nlbd pairs, default
# 1; the ratio reported is the median of the rounds' ratios), FLOWS (frames of
# the flow mix in the capture, default 10240), TESTPMD (default dpdk-testpmd on
# PATH), NLBD (default BUILD_DIR/src/daemon/nlbd), BURST (RX/TX burst of both
# programs, default 32), NLBD_B (a second nlbd binary, e.g. the previous
# commit's: each round then runs it too, alternating which nlbd goes first,
# and the report adds its ratio and A/B, the median of the rounds' nlbd /
# NLBD_B rate ratios), KEEP=1 keeps the work directory (logs, generated
# captures and configs, nlbd's JSON).
#
# Matrix (docs/performance.md, "End-to-end matrix"): each of these takes a
# space-separated list; every combination is one cell, run ROUNDS times:
#   RULES  port rule set of bench/flow_mix.hpp: "seed" (default: the five
#          hand-written rules), 1 (NLB's default rule), 64, 1024 (per-VIP
#          port ranges); nlbd-bench-pcapgen writes the [[port_rule]] tables.
#   CONNS  live TCP connections this node holds: 0 (default: the mix alone,
#          whose TCP flows leave ~2.5k in the table), or N: N established
#          client connections this node owns are added to the capture (one
#          64-byte ACK each per pass; nlbd adopts them on the first pass, so
#          its table holds N + ~2.5k; see nlbd-bench-pcapgen --conns).
# The mempool, EAL memory (-m) and connection table are sized per cell: the
# capture sits in mbufs (net_pcap infinite_rx), 4 KiB per frame without
# hugepages (one mbuf per page), and nlbd has two pools (wire, local) of that
# size: a 1M-connection cell needs ~8.5 GB of memory for nlbd, ~4.5 GB for
# testpmd (one after the other).
#   PAGES  "huge" (2 MiB hugepages: the mbuf pools and nlbd's connection
#          tables, which nlbd puts on the EAL's hugepage heap), "small"
#          (--no-huge: 4 KiB pages; the tables on transparent huge pages
#          where the kernel grants them), or both ("huge small"). Default
#          "auto": huge when the machine has or (as root) can reserve enough
#          2 MiB pages, else small with a note. As root the script reserves
#          what the cells need with dpdk-hugepages.py (and mounts
#          /dev/hugepages), and gives back at exit what it reserved.
# Example: CONNS="1 10000 1000000" RULES="1 64 1024" ROUNDS=3 scripts/bench_e2e.sh build 10
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
rules_list=${RULES:-seed}
conns_list=${CONNS:-0}
testpmd=${TESTPMD:-$(command -v dpdk-testpmd || true)}
nlbd=${NLBD:-$build/src/daemon/nlbd}
nlbd_b=${NLBD_B:-}
gen=$build/bench/nlbd-bench-pcapgen
for f in "$testpmd" "$nlbd" "$gen"; do
    [[ -n $f && -x $f ]] || { echo "bench_e2e: missing executable '${f:-dpdk-testpmd}' (build it first)" >&2; exit 1; }
done
for v in $rules_list; do
    [[ $v == seed || $v =~ ^[0-9]+$ ]] || { echo "bench_e2e: RULES: '$v' is not seed or a number" >&2; exit 1; }
done
for v in $conns_list; do
    [[ $v =~ ^[0-9]+$ ]] || { echo "bench_e2e: CONNS: '$v' is not a number" >&2; exit 1; }
done

# --- hugepages ----------------------------------------------------------------
# Memory the largest cell needs on hugepages: every frame of its capture in
# mbufs (~2.5 KB each, packed on 2 MiB pages), nlbd's two pools, its
# connection table (66 bytes per slot, 1.25 slots per connection) and 512 MB
# for rings, EAL and the rest.
max_conns=0
for v in $conns_list; do (( v > max_conns )) && max_conns=$v; done
huge_need_mb=$(( (flows + max_conns + 16384) * 2560 * 2 / 1048576 + (max_conns + 262144) * 83 / 1048576 + 512 ))
hp_free_mb() { awk '/^HugePages_Free/ {f = $2} /^Hugepagesize/ {z = $2} END {print int(f * z / 1024)}' /proc/meminfo; }
hp_reserved="" hp_mounted="" pages_note=""
hp_setup() {  # hp_setup: 0 when $huge_need_mb MB of 2 MiB pages are free and mounted
    local have
    have=$(hp_free_mb)
    mountpoint -q /dev/hugepages 2>/dev/null || grep -q ' hugetlbfs ' /proc/mounts || {
        [[ $(id -u) == 0 ]] || return 1
        mkdir -p /dev/hugepages && mount -t hugetlbfs -o pagesize=2M nodev /dev/hugepages || return 1
        hp_mounted=1
    }
    (( have >= huge_need_mb )) && return 0
    [[ $(id -u) == 0 ]] && command -v dpdk-hugepages.py >/dev/null || return 1
    local total mb
    total=$(awk '/^HugePages_Total/ {print $2}' /proc/meminfo)
    # dpdk-hugepages.py refuses a size that is not a whole number of pages.
    mb=$(( (total * 2 + huge_need_mb - have + 3) / 2 * 2 ))
    dpdk-hugepages.py -p 2M --reserve "${mb}M" >&2 || true
    hp_reserved=$total
    (( $(hp_free_mb) >= huge_need_mb ))
}
hp_restore() {
    if [[ -n $hp_reserved ]]; then echo "$hp_reserved" >/sys/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages 2>/dev/null || true; fi
    if [[ -n $hp_mounted ]]; then umount /dev/hugepages 2>/dev/null || true; fi
}
pages_list=${PAGES:-auto}
if [[ $pages_list == auto ]]; then
    if hp_setup; then pages_list=huge
    else
        pages_list=small
        pages_note="no hugepages ($huge_need_mb MB of 2 MiB pages needed; $(hp_free_mb) MB free$([[ $(id -u) == 0 ]] || echo ', not root')): --no-huge"
    fi
elif [[ " $pages_list " == *" huge "* ]]; then
    hp_setup || { echo "bench_e2e: PAGES=huge needs $huge_need_mb MB of free 2 MiB hugepages ($(hp_free_mb) MB free; as root the script reserves them)" >&2; hp_restore; exit 1; }
fi
for v in $pages_list; do
    [[ $v == huge || $v == small ]] || { echo "bench_e2e: PAGES: '$v' is not huge, small or auto" >&2; hp_restore; exit 1; }
done

work=$(mktemp -d "${TMPDIR:-/tmp}/nlbd-bench-e2e.XXXXXX")
cleanup() {
    hp_restore
    if [[ ${KEEP:-0} == 1 ]]; then echo "bench_e2e: kept $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

local_dev="net_null0,no-rx=1"

# setup_cell RULES CONNS PAGES: writes the capture and the configs of one
# cell into $work/cell (sets mix, frames, wire, eal, rules_label).
setup_cell() {
    local nrules=$1 nconns=$2 pages=$3 dir=$work/cell
    rm -rf "$dir" && mkdir -p "$dir"
    rules_label=$nrules
    [[ $nrules == seed ]] && { nrules=0; rules_label="seed(5)"; }
    "$gen" --out "$dir/in.pcap" --flows "$flows" --rules "$nrules" --rules-toml "$dir/rules.toml" \
        --conns "$nconns" >"$dir/pcapgen.log"
    mix=$(cat "$dir/pcapgen.log")
    frames=$(sed -n 's/.*: \([0-9]*\) frames,.*/\1/p' "$dir/pcapgen.log")
    # Every frame of the capture sits in the RX mempool (infinite_rx), plus
    # rings and bursts in flight.
    mbufs=$(( (frames + 8192 + 4095) / 4096 * 4096 ))
    # EAL memory without hugepages: nlbd's two pools (wire and local;
    # testpmd has one) at 4 KiB per mbuf (with 4 KiB pages a mempool object
    # never crosses a page, so each ~2.4 KB mbuf takes a page of its own),
    # plus 512 MB for rings, tables and EAL.
    local mem=$(( mbufs * 4096 * 2 / 1048576 + 512 ))
    (( mem < 512 )) && mem=512
    # Room for every connection of the cell (the table never evicts an
    # established connection; default size 262144).
    local table=$(( nconns + nconns / 4 + 16384 ))
    (( table < 262144 )) && table=262144
    conn_table=$table
    wire="net_pcap0,rx_pcap=$dir/in.pcap,infinite_rx=1"
    if [[ $pages == huge ]]; then
        # Packed mbufs, plus the connection table on the EAL heap.
        mem=$(( mbufs * 2560 * 2 / 1048576 + (table + table / 4) * 83 / 1048576 + 512 ))
        eal=(-m "$mem" --in-memory --no-pci --log-level=lib.eal:error -l "$lcores")
    else
        eal=(--no-huge -m "$mem" --no-pci --no-shconf --log-level=lib.eal:error -l "$lcores")
    fi

    cat >"$dir/nic.toml" <<EOF
[nic]
name = "bench-vdev"
rx_queues = 1
tx_queues = 1
burst = ${BURST:-32}
mempool_size = $(( mbufs - 1 ))
EOF
    # host 1 of a static 3-host cluster, the rule set of bench/flow_mix.hpp
    cat >"$dir/cluster.toml" <<EOF
# bench_e2e: the cluster of bench/flow_mix.hpp, rules($nrules), host 1 of 3.
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
conn_table_size = $conn_table
EOF
    cat "$dir/rules.toml" >>"$dir/cluster.toml"
}

# watch_cpu PID FILE: until PID (the program, or its `timeout` wrapper)
# exits, writes the CPU seconds (user + system) its (or its child's)
# forwarding/worker lcore threads
# (EAL names them rte-worker-N) have used so far into FILE, every 0.2 s. On
# a shared machine the forwarding thread gets less than the wall time;
# packets per CPU second of that thread is then a fairer rate than packets
# per wall second (both are reported).
watch_cpu() {
    local pid=$1 out=$2 child="" hz
    hz=$(getconf CLK_TCK)
    echo 0 >"$out"
    while kill -0 "$pid" 2>/dev/null; do
        [[ -n $child ]] || child=$(pgrep -P "$pid" | head -n 1 || true)
        local ticks=0 t
        for t in /proc/"$pid"/task/* ${child:+/proc/$child/task/*}; do
            [[ $(cat "$t/comm" 2>/dev/null) == rte-worker-* ]] || continue
            ticks=$(( ticks + $(awk '{print $14 + $15}' "$t/stat" 2>/dev/null || echo 0) ))
        done
        (( ticks > 0 )) && awk -v t="$ticks" -v hz="$hz" 'BEGIN {printf "%.2f\n", t / hz}' >"$out"
        sleep 0.2
    done
}

# --- (a) dpdk-testpmd, io forwarding: port 0 (pcap) -> port 1 (null) --------
# run_testpmd TAG: sets tp_mpps, tp_total, tp_n, tp_range, tp_cpu, tp_cpu_mpps.
run_testpmd() {
    local log=$work/testpmd.$1.log samples=$work/testpmd.$1.samples
    echo "bench_e2e: $1: dpdk-testpmd io, $secs s on lcores $lcores ..." >&2
    # A large capture takes a while to load (seconds per million frames), so
    # the clock starts at testpmd's first non-zero Rx-pps sample; then SIGINT
    # after $secs s (testpmd prints its totals and stops its ports), SIGKILL
    # if it has not exited 60 s later.
    "$testpmd" "${eal[@]}" --vdev "$wire" --vdev "$local_dev" -- \
        --forward-mode=io --nb-cores=1 --rxq=1 --txq=1 --burst="${BURST:-32}" \
        --total-num-mbufs="$mbufs" --stats-period=1 </dev/null >"$log" 2>&1 &
    local pid=$! i
    watch_cpu "$pid" "$work/testpmd.$1.cpu" &
    local wpid=$!
    for ((i = 0; i < 3000; i++)); do
        grep -q 'Rx-pps: *[1-9]' "$log" 2>/dev/null && break
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    sleep "$secs"
    kill -INT "$pid" 2>/dev/null || true
    for ((i = 0; i < 600; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    wait "$wpid" || true
    tp_cpu=$(cat "$work/testpmd.$1.cpu")
    # Rx-pps of port 0 per 1-s sample, in order. Samples before forwarding
    # started are 0 and the first non-zero one covers a partial second: both
    # are left out; the rest are averaged (at most $secs of them).
    awk '/NIC statistics for port/ {port = $6} /Rx-pps:/ && port == "0" {print $2}' "$log" |
        awk -v max="$secs" 'started && n < max {print; n++} $1 > 0 {started = 1}' >"$samples"
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
    tp_cpu_mpps=$(awk -v n="${tp_total:-0}" -v c="$tp_cpu" 'BEGIN {printf "%.3f", (c > 0) ? n / c / 1e6 : 0}')
}

# run_nlbd TAG [BINARY]: sets nl_mpps, nl_total, nl_accepted, nl_conns, nl_cpu,
# nl_cpu_mpps.
run_nlbd() {
    local json=$work/nlbd.$1.json log=$work/nlbd.$1.log bin=${2:-$nlbd}
    echo "bench_e2e: $1: $bin, $secs s on lcores $lcores ..." >&2
    # nlbd stops by itself after --run-for; the timeout only guards a hang.
    timeout -s INT -k 10 $(( secs + 60 + frames / 20000 )) "$bin" --config "$work/cell/cluster.toml" \
        --nic "$work/cell/nic.toml" --run-for "$secs" --stats-json "$json" -- "${eal[@]}" \
        </dev/null >"$log" 2>&1 &
    local pid=$! rc=0
    watch_cpu "$pid" "$work/nlbd.$1.cpu" &
    local wpid=$!
    wait "$pid" || rc=$?
    wait "$wpid" || true
    nl_cpu=$(cat "$work/nlbd.$1.cpu")
    if (( rc != 0 )); then
        echo "bench_e2e: nlbd failed; its log:" >&2
        tail -n 30 "$log" >&2
        exit 1
    fi
    json_int() {  # json_int KEY: first integer value of "KEY" in the JSON
        # (no `| head`: with 1024 rules grep's output would outlive head, and
        # its SIGPIPE fails the pipeline under pipefail)
        grep -o "\"$1\":[0-9]*" "$json" | awk -F: 'NR == 1 {v = $2} END {print v}'
    }
    nl_total=$(json_int rx_total)
    nl_accepted=$(json_int accepted)
    nl_conns=$(json_int entries)
    nl_mpps=$(awk -v n="$nl_total" -v s="$secs" 'BEGIN {printf "%.3f", n / s / 1e6}')
    nl_cpu_mpps=$(awk -v n="$nl_total" -v c="$nl_cpu" 'BEGIN {printf "%.3f", (c > 0) ? n / c / 1e6 : 0}')
}

median() { sort -n | awk '{v[NR] = $1} END {print v[int((NR + 1) / 2)]}'; }

# --- cells x rounds: testpmd then nlbd, back to back -------------------------
row() { printf '| %-8s | %7s | %5s | %-26s | %8s | %9s | %15s | %-40s |\n' "$@"; }
rows=""
summary=""
all_ratios=() all_cpu_ratios=() b_ratios=() abs=()
ncells=0
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
for pages in $pages_list; do
for nrules in $rules_list; do
    for nconns in $conns_list; do
        setup_cell "$nrules" "$nconns" "$pages"
        [[ $pages == small ]] || rules_label+="+huge"
        ncells=$((ncells + 1))
        ratios=() cpu_ratios=() tps=() nls=()
        for ((r = 1; r <= rounds; r++)); do
            tag="rules $rules_label conns $nconns round $r"
            run_testpmd "${tag// /_}"
            if [[ -n $nlbd_b ]]; then
                # A/B: the other binary in the same round, first on even
                # rounds, so that neither always runs right after testpmd.
                (( r % 2 == 0 )) && run_nlbd "${tag// /_}_B" "$nlbd_b" && b_mpps=$nl_mpps b_cpu_mpps=$nl_cpu_mpps b_total=$nl_total
                run_nlbd "${tag// /_}"
                a_mpps=$nl_mpps a_total=$nl_total a_cpu_mpps=$nl_cpu_mpps a_conns=$nl_conns
                (( r % 2 == 1 )) && run_nlbd "${tag// /_}_B" "$nlbd_b" && b_mpps=$nl_mpps b_cpu_mpps=$nl_cpu_mpps b_total=$nl_total
                nl_mpps=$a_mpps nl_total=$a_total nl_cpu_mpps=$a_cpu_mpps nl_conns=$a_conns
                b_ratio=$(awk -v a="$b_mpps" -v b="$tp_mpps" 'BEGIN {printf "%.2f", (b > 0) ? a / b : 0}')
                ab=$(awk -v a="$nl_mpps" -v b="$b_mpps" 'BEGIN {printf "%.3f", (b > 0) ? a / b : 0}')
                b_ratios+=("$b_ratio") abs+=("$ab")
                b_row=$(row "$rules_label" "$nconns" "$r" "nlbd B (NLBD_B)" "$b_mpps" "$b_cpu_mpps" "$b_total" "ratio $b_ratio; A/B $ab")$'\n'
            else
                run_nlbd "${tag// /_}"
            fi
            ratio=$(awk -v a="$nl_mpps" -v b="$tp_mpps" 'BEGIN {printf "%.2f", (b > 0) ? a / b : 0}')
            cpu_ratio=$(awk -v a="$nl_cpu_mpps" -v b="$tp_cpu_mpps" 'BEGIN {printf "%.2f", (b > 0) ? a / b : 0}')
            ratios+=("$ratio") cpu_ratios+=("$cpu_ratio") tps+=("$tp_mpps") nls+=("$nl_mpps")
            rows+=$(row "$rules_label" "$nconns" "$r" "dpdk-testpmd (io)" "$tp_mpps" "$tp_cpu_mpps" "${tp_total:-?}" "$tp_n 1-s samples ($tp_range); ${tp_cpu} CPU s")$'\n'
            rows+=$(row "$rules_label" "$nconns" "$r" "nlbd (filter-hash-decide)" "$nl_mpps" "$nl_cpu_mpps" "$nl_total" "ratio $ratio / $cpu_ratio; table ${nl_conns:-?}")$'\n'
            rows+=${b_row:-}
        done
        cell_ratio=$(printf '%s\n' "${ratios[@]}" | median)
        cell_cpu_ratio=$(printf '%s\n' "${cpu_ratios[@]}" | median)
        all_ratios+=("$cell_ratio") all_cpu_ratios+=("$cell_cpu_ratio")
        summary+=$(printf '| %-8s | %7s | %10s | %9s | %9s | %14s | %5s | %9s |' "$rules_label" "$nconns" \
            "${nl_conns:-?}" "$(printf '%s\n' "${tps[@]}" | median)" \
            "$(printf '%s\n' "${nls[@]}" | median)" "$frames" "$cell_ratio" "$cell_cpu_ratio")$'\n'
    done
done
done
ratio=$(printf '%s\n' "${all_ratios[@]}" | median)
cpu_ratio=$(printf '%s\n' "${all_cpu_ratios[@]}" | median)
target=${TARGET:-$( ((max_conns >= 1000000)) && echo 0.50 || echo 0.70)}
verdict() { awk -v r="$1" -v t="$target" 'BEGIN {print ((r >= t) ? "met" : "NOT met")}'; }

cpu=$(lscpu | sed -n 's/^Model name:[[:space:]]*//p' | head -n 1)
cat <<EOF

nlbd end-to-end benchmark ($(date -u +%Y-%m-%dT%H:%M:%SZ))
  machine : $cpu, $(nproc) CPUs; lcores $lcores (main, forwarding)
  input   : $( ((ncells == 1)) && echo "$mix" || echo "flow mix of $flows frames (+ CONNS owned connections), per cell")
  ports   : wire net_pcap0,rx_pcap=<capture>,infinite_rx=1
            local $local_dev
  run     : $secs s each, sequential, one forwarding core; pages: $pages_list${pages_note:+ ($pages_note)}; $rounds round(s) per cell
  load    : $load_before before, $(cut -d' ' -f1-3 /proc/loadavg) after (1/5/15-min load averages)
  Mpps    : frames received per wall second; "per CPU s": per CPU second of the
            forwarding / worker lcore thread (equal to Mpps on an idle machine;
            the fairer rate when other jobs take CPU from it)

$(row rules conns round program Mpps "per CPU s" "frames received" note)
| -------- | ------: | ----: | -------------------------- | -------: | --------: | --------------: | ---------------------------------------- |
${rows%$'\n'}
EOF
if (( ncells > 1 )); then
    cat <<EOF

Matrix (medians of $rounds round(s); "table" = nlbd's live connections at the end;
ratio = nlbd / testpmd in Mpps, "CPU ratio" = the same per CPU second):

| rules    |   conns |      table | testpmd   | nlbd      | capture frames | ratio | CPU ratio |
| -------- | ------: | ---------: | --------: | --------: | -------------: | ----: | --------: |
${summary%$'\n'}
EOF
fi
cat <<EOF

ratio nlbd / testpmd (median of $( ((ncells == 1)) && echo "rounds" || echo "the cells' medians")) = $ratio  (target >= $target: $(verdict "$ratio"))
same, per CPU second of the forwarding thread = $cpu_ratio  (target >= $target: $(verdict "$cpu_ratio"))
EOF
if [[ -n $nlbd_b ]]; then
    cat <<EOF
NLBD_B ($nlbd_b): ratio B / testpmd (median of all rounds) = $(printf '%s\n' "${b_ratios[@]}" | median); A / B (median) = $(printf '%s\n' "${abs[@]}" | median)
EOF
fi
