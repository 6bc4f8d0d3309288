#!/usr/bin/env bash
# Spurious deaths vs heartbeat loss, and detection time of a real death
# (issue 14, docs/cluster.md "Failure detection", docs/performance.md).
#
#   scripts/bench_loss.sh [BUILD_DIR] [SECONDS] [RATES] [REDUNDANCIES]
#     (defaults: build 60 "0 10 20 30 40" "1 3"; as root)
#
# For every redundancy R and loss rate L: two real nlbd hosts in the test lab
# (tests/cluster/lib.sh) at 100 ms x 5 with heartbeat_redundancy = R; the
# switch drops L % of the heartbeat frames at random (nftables numgen,
# independently per frame and receiver) for SECONDS; counted: the times a
# host left the other's view (spurious deaths: both hosts are alive) and the
# epoch changes. Then host 2 is killed (SIGKILL) with the loss still on and
# the time until host 1's event log says host 2 left its view is taken from
# the event's timestamp (bound: (5 + 2) x 100 = 700 ms). One line per run, and a Markdown
# table at the end. R = 1 is NLB's behaviour (one heartbeat per interval, no
# indirect confirmation possible with two hosts).
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-build}
secs=${2:-60}
rates=${3:-"0 10 20 30 40"}
reds=${4:-"1 3"}
# shellcheck source=../tests/cluster/lib.sh
source "$here/tests/cluster/lib.sh"
lab_require
command -v nft >/dev/null || { echo "bench_loss: nft is not installed (scripts/setup.sh)" >&2; exit 1; }

rows=()
run_one() {
    local red=$1 pct=$2
    (
        lab_init "$build" >/dev/null
        lab_topology 2 || lab_fail "topology"
        for i in 1 2; do lab_write_config "$i" "" "heartbeat_redundancy = $red" >/dev/null; done
        for i in 1 2; do lab_start_node "$i" >/dev/null || lab_fail "start node $i"; done
        lab_wait_converged "1 2" 15000 >/dev/null || lab_fail "cold start: no convergence"
        lab_hb_loss "$pct" || lab_fail "cannot install the loss rule"
        local e0 e1 l0 l1
        e0=$(( $(lab_query 1 | jq .epoch_changes) + $(lab_query 2 | jq .epoch_changes) ))
        l0=$(for i in 1 2; do lab_events "$i" | jq -c 'select(.kind == "host_left")'; done | wc -l)
        sleep "$secs"
        e1=$(( $(lab_query 1 | jq .epoch_changes) + $(lab_query 2 | jq .epoch_changes) ))
        l1=$(for i in 1 2; do lab_events "$i" | jq -c 'select(.kind == "host_left")'; done | wc -l)
        local dropped=0 seen=1
        if (( pct > 0 )); then
            seen=$(lab_hb_counter seen)
            dropped=$(lab_hb_counter dropped)
        fi
        # A real death, the loss still on.
        lab_wait_converged "1 2" 15000 >/dev/null || true
        local p t0 det=-1
        p=$(pgrep -P "${LAB_NLBD_PID[2]}" -x nlbd || echo "${LAB_NLBD_PID[2]}")
        t0=$(lab_now_ms)
        kill -KILL "$p"
        # The first host_left event on host 1 stamped after the kill.
        local k ms
        for ((k = 0; k < 50; ++k)); do
            ms=$(lab_events 1 | jq -r 'select(.kind == "host_left") | .time | capture("(?<s>.*)\\.(?<ms>[0-9]+)Z$")
                   | ((.s + "Z" | fromdate) * 1000 + (.ms | tonumber))' | awk -v t="$t0" '$1 >= t' | head -1)
            [[ -n $ms ]] && { det=$((ms - t0)); break; }
            sleep 0.1
        done
        # Why the spurious deaths happened (their event texts), for the log.
        for i in 1 2; do lab_events "$i" | jq -r --arg i "$i" 'select(.kind == "host_left") | "host \($i): \(.time) \(.text)"'; done \
            > "$LAB_WORK/../bench_loss.$red.$pct.left"
        uptime >> "$LAB_WORK/../bench_loss.$red.$pct.left"
        printf '%s %s %s %s %s %s\n' "$red" "$pct" "$((l1 - l0))" "$((e1 - e0))" "$det" \
            "$(( dropped * 1000 / (seen > 0 ? seen : 1) ))" > "$LAB_WORK/../bench_loss.$red.$pct"
    )
}

out_dir=$(mktemp -d /tmp/nlbd-bench-loss.XXXXXX)
trap 'rm -rf "$out_dir"' EXIT
export TMPDIR=$out_dir
for red in $reds; do
    for pct in $rates; do
        run_one "$red" "$pct" >/dev/null 2>&1 || echo "bench_loss: run R=$red L=$pct failed" >&2
        f=$out_dir/bench_loss.$red.$pct
        [[ -f $f ]] || continue
        read -r r l deaths epochs det meas < "$f"
        printf 'redundancy %s, loss %2s %% (measured %d.%d %%), %s s: spurious deaths %s, epoch changes %s; detection of a kill %s ms\n' \
            "$r" "$l" $((meas / 10)) $((meas % 10)) "$secs" "$deaths" "$epochs" "$det"
        rows+=("| $r | $l | $((meas / 10)).$((meas % 10)) | $secs | $deaths | $epochs | $det |")
        sed 's/^/    /' "$f.left" 2>/dev/null || true
    done
done
echo
echo "| heartbeats per interval | loss % | measured % | seconds | spurious deaths | epoch changes | kill detected (ms) |"
echo "|---|---|---|---|---|---|---|"
printf '%s\n' "${rows[@]}"
