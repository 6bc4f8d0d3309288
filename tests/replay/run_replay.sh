#!/usr/bin/env bash
# Replay test: runs the real nlbd three times (hosts 1, 2, 3 of one static
# cluster) over the same generated capture on net_pcap ports, then proves with
# nlbd-replay-check what the cluster did with every frame, and finally shows
# that the checker catches broken outputs and that the generator refuses a
# config that lacks a rule its traffic needs (negative checks). The capture,
# its manifest and the hosts' configs all come from the scenario's
# cluster.toml.in, through nlbd-pcapgen --config.
#
#   tests/replay/run_replay.sh BUILDDIR [SCENARIO]      (SCENARIO: basic, vlan_multicast)
#
# Environment: NLBD (nlbd binary, default BUILDDIR/src/daemon/nlbd), RUN_FOR
# (seconds per host, default 3), KEEP=1 (keep the work directory), PARALLEL=0
# (run the hosts one after the other), NEGATIVE=0 (skip the negative checks).
# Multi-core (docs/multicore.md): WORKERS=N runs every host with N workers
# through a generated NIC profile; DISPATCH=distributor (one wire queue, an RX
# lcore spreads flows over the workers) or DISPATCH=rss (the capture is split
# by flow into N files, one net_pcap RX queue each, as a NIC's RSS would, and
# each worker runs to completion on its queue); LCORES is the EAL --lcores
# map (default: main, distributor and workers mapped round-robin onto the
# machine's CPUs). Every worker must then have decided frames.
set -euo pipefail

build=${1:?usage: run_replay.sh BUILDDIR [SCENARIO]}
scenario=${2:-basic}
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
build=$(cd "$build" && pwd)
nlbd=${NLBD:-$build/src/daemon/nlbd}
gen=$build/src/tools/nlbd-pcapgen
check=$build/src/tools/nlbd-replay-check
run_for=${RUN_FOR:-3}
template=$here/$scenario/cluster.toml.in
hosts=(1 2 3)

workers=${WORKERS:-1}
dispatch=${DISPATCH:-auto}
split=$build/src/tools/nlbd-pcap-split
for f in "$nlbd" "$gen" "$check" "$split"; do
    [[ -x $f ]] || { echo "run_replay: $f not built" >&2; exit 1; }
done
[[ -f $template ]] || { echo "run_replay: no scenario '$scenario' ($template)" >&2; exit 1; }

work=$(mktemp -d "${TMPDIR:-/tmp}/nlbd-replay-$scenario.XXXXXX")
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    if [[ ${KEEP:-0} == 1 ]]; then echo "run_replay: kept $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT

# Wire input (@IN@): the capture, or (rss) one file per RX queue, split by
# flow once the capture exists.
in_dev=$work/in.pcap
if (( workers > 1 )) && [[ $dispatch == rss ]]; then
    in_dev=$work/in.q0.pcap
    for ((q = 1; q < workers; q++)); do in_dev+=",rx_pcap=$work/in.q$q.pcap"; done
fi

# The capture, its manifest and each host's config ($work/host$h.toml: the
# placeholders filled in), all from the scenario's cluster.toml.in, so what
# the manifest expects is what the hosts run. pcapgen.args (optional): more
# generator arguments.
gen_args=()
if [[ -f $here/$scenario/pcapgen.args ]]; then read -r -a gen_args < "$here/$scenario/pcapgen.args"; fi
"$gen" --config "$template" --out "$work" --wire-in "$in_dev" "${gen_args[@]}"

nic_args=()
eal_extra=()
if (( workers > 1 )); then
    rxq=1
    if [[ $dispatch == rss ]]; then
        "$split" --in "$work/in.pcap" --out-prefix "$work/in.q" --ways "$workers"
        rxq=$workers
    fi
    printf '[nic]\nname = "replay-%s-%s"\nworkers = %s\ndispatch = "%s"\nrx_queues = %s\nmempool_size = 16383\n' \
        "$workers" "$dispatch" "$workers" "$dispatch" "$rxq" > "$work/nic.toml"
    nic_args=(--nic "$work/nic.toml")
    # Lcores: main + (distributor) + workers, mapped onto the CPUs we have.
    if [[ -z ${LCORES:-} ]]; then
        ncpu=$(nproc)
        LCORES=""
        for ((l = 0; l < workers + 2; l++)); do LCORES+="${LCORES:+,}$l@$((l % ncpu))"; done
    fi
    eal_extra=(--lcores "$LCORES")
fi

# Small EAL footprint, one process per host; each gets its own memory (no
# shared config) so that they can run at the same time. Runs in a subshell
# that becomes the (time-limited) nlbd process, so cleanup can end it by pid.
run_host() {
    local h=$1
    exec timeout -k 5 $((run_for + 30)) "$nlbd" --config "$work/host$h.toml" "${nic_args[@]}" --run-for "$run_for" --stats-json "$work/stats.$h.json" \
        -- --no-huge -m 256 --no-shconf --no-pci --log-level=lib.eal:error "${eal_extra[@]}" \
        > "$work/nlbd.$h.log" 2>&1
}

start=$(date +%s)
failed=0
if [[ ${PARALLEL:-1} == 1 ]]; then
    for h in "${hosts[@]}"; do run_host "$h" & pids+=($!); done
    for i in "${!pids[@]}"; do
        if ! wait "${pids[$i]}"; then failed=1; echo "run_replay: nlbd host ${hosts[$i]} failed" >&2; fi
    done
    pids=()
else
    for h in "${hosts[@]}"; do (run_host "$h") || { failed=1; echo "run_replay: nlbd host $h failed" >&2; }; done
fi
echo "run_replay: 3 nlbd runs took $(( $(date +%s) - start )) s"
if [[ $failed != 0 ]]; then
    for h in "${hosts[@]}"; do echo "--- nlbd host $h log:"; tail -n 30 "$work/nlbd.$h.log"; done
    exit 1
fi

host_args() {  # host_args ID[=FILES_OF_ID] ... : checker --host arguments
    local spec id src
    for spec in "$@"; do
        id=${spec%%=*}; src=${spec##*=}
        printf -- '--host\n%s:%s:%s:%s\n' "$id" "$work/local_out.$src.pcap" "$work/wire_out.$src.pcap" \
            "$work/stats.$src.json"
    done
}

echo "=== replay check: scenario $scenario"
mapfile -t args < <(host_args 1 2 3)
if ! "$check" --in "$work/in.pcap" --manifest "$work/manifest.tsv" "${args[@]}"; then
    for h in "${hosts[@]}"; do echo "--- nlbd host $h log:"; tail -n 30 "$work/nlbd.$h.log"; done
    exit 1
fi

# The per-rule counters (tallied per burst) agree with the verdict counters
# (tallied apart): for every rule matched = accepted + not_owner + dropped;
# the rules' drops are exactly the disabled-rule and stopped frames; their
# accepted / not_owner frames are among those verdicts (ICMP echo, decided
# without a rule, is the rest).
for h in "${hosts[@]}"; do
    jq -e '([.rules[], .no_rule] | all(.matched == .accepted + .not_owner + .dropped))
           and ([.rules[], .no_rule] | map(.dropped) | add) == (.verdicts.disabled_rule + .verdicts.stopped)
           and ([.rules[], .no_rule] | map(.not_owner) | add) <=
               (.verdicts.not_owner + .verdicts.default_host_other + .verdicts.conn_elsewhere)
           and ([.rules[], .no_rule] | map(.accepted) | add) <=
               (.verdicts.accepted + .verdicts.accepted_conn + .verdicts.default_host_accepted)
           and ([.rules[], .no_rule] | map(.matched) | add) > 0' \
        "$work/stats.$h.json" >/dev/null || {
        echo "run_replay: host $h: per-rule counters do not add up to the verdicts:" >&2
        jq -c '{verdicts, rules: [.rules[] | {index, matched, accepted, not_owner, dropped}], no_rule}' "$work/stats.$h.json" >&2
        exit 1
    }
done

if (( workers > 1 )); then
    # The multi-core run really was one: N workers, each deciding frames,
    # in the mode asked for.
    for h in "${hosts[@]}"; do
        line=$(jq -r '"\(.workers.dispatch) \(.workers.count) \([.workers.per_worker[].rx_total] | join(","))"' "$work/stats.$h.json")
        echo "host $h: dispatch, workers, frames decided per worker: $line"
        read -r mode count per <<< "$line"
        want=$dispatch; [[ $want == auto ]] && want=$mode
        if [[ $mode != "$want" || $count != "$workers" || ,$per, == *,0,* ]]; then
            echo "run_replay: host $h did not run $workers $dispatch workers that all decided frames" >&2
            tail -n 30 "$work/nlbd.$h.log" >&2
            exit 1
        fi
    done
fi

if [[ ${NEGATIVE:-1} == 0 ]]; then
    echo "run_replay: scenario $scenario PASSED"
    exit 0
fi

# Negative checks: the checker must fail on broken outputs, or it proves nothing.
negative() {
    local what=$1; shift
    mapfile -t args < <(host_args "$@")
    if "$check" --in "$work/in.pcap" --manifest "$work/manifest.tsv" --max-print 0 --expect-fail "${args[@]}" \
        > "$work/negative.log" 2>&1; then
        echo "negative check ok: $what -> $(grep '^RESULT' "$work/negative.log")"
    else
        echo "negative check FAILED: the checker did not catch: $what" >&2
        cat "$work/negative.log" >&2
        exit 1
    fi
}
echo "=== negative checks (each must be caught)"
negative "host 3 lost (its outputs missing)" 1 2
negative "host 2 and host 3 outputs swapped" 1 2=3 3=2
negative "host 1 outputs also reported as host 2's" 1 2=1 3
# Host 2 delivers every input frame (a filter that accepts everything).
cp "$work/in.pcap" "$work/local_out.all.pcap"
cp "$work/wire_out.2.pcap" "$work/wire_out.all.pcap"
cp "$work/stats.2.json" "$work/stats.all.json"
negative "host 2 accepts everything" 1 2=all 3
# Faults injected into the real outputs by the checker itself (--tamper).
for kind in modify-frame duplicate-frame reorder-flow split-group drop-reply extra-reply; do
    mapfile -t args < <(host_args 1 2 3)
    if "$check" --in "$work/in.pcap" --manifest "$work/manifest.tsv" --max-print 0 --expect-fail \
        --tamper "$kind" "${args[@]}" > "$work/negative.log" 2>&1; then
        echo "negative check ok: tamper $kind -> $(grep '^RESULT' "$work/negative.log")"
    else
        echo "negative check FAILED: the checker did not catch: tamper $kind" >&2
        cat "$work/negative.log" >&2
        exit 1
    fi
done
# The generator refuses a config that lacks a rule one of its traffic
# classes needs (here: the disabled rule), rather than write a manifest.
mkdir "$work/no_rule"
awk -v RS= -v ORS='\n\n' '!/mode = "disabled"/' "$template" > "$work/no_rule/cluster.toml.in"
if "$gen" --config "$work/no_rule/cluster.toml.in" --out "$work/no_rule" > "$work/negative.log" 2>&1; then
    echo "negative check FAILED: nlbd-pcapgen accepted a config without a disabled rule" >&2
    exit 1
elif grep -q "no_rule/cluster.toml.in: no \[\[port_rule\]\] for nlbd-pcapgen's 'smtp' traffic" "$work/negative.log"; then
    echo "negative check ok: config without the disabled rule -> $(cat "$work/negative.log")"
else
    echo "negative check FAILED: nlbd-pcapgen failed without naming the file and the missing rule:" >&2
    cat "$work/negative.log" >&2
    exit 1
fi
echo "run_replay: scenario $scenario PASSED"
