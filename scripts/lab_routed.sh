#!/usr/bin/env bash
# Scale-out behind a router (SPEC §11, docs/scale-out.md): two nlbd clusters
# of two hosts announce one anycast VIP (10.99.0.10) over BGP through BIRD 2;
# a router namespace running BIRD 2 spreads client flows over both clusters
# with ECMP (merge paths, L4 multipath hash).
#
#   scripts/lab_routed.sh up   [--build DIR]   build it and keep it (until `down`, Ctrl-C or LAB_UP_S)
#   scripts/lab_routed.sh demo [--build DIR]   build it, run the scenario, print the times, tear it down
#   scripts/lab_routed.sh down                 stop a lab left by `up`
#
# The topology is described in tests/scaleout/routed_lib.sh. Every name is
# unique per run (prefix nlbd + 4 hex digits); everything lives in namespaces
# this script creates and is removed on exit (EXIT trap), also on failure.
# BIRD runs inside the namespaces with its config, control socket and log in
# the work dir (never the system's /run/bird). Needs root, bird2, socat, jq,
# ethtool (scripts/setup.sh). Environment: KEEP=1 / KEEP_ON_FAIL=1 keep the
# work dir, NLBD / NLBCTL (binaries), RL_WITHDRAW_DELAY_MS (1000), LAB_UP_S
# (how long `up` keeps the lab, 3600).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
usage() { sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | grep '^#' | sed 's/^# \{0,1\}//'; exit 2; }

cmd=${1:-}
[[ -n $cmd ]] || usage
shift
build=$root/build
while (($#)); do
    case $1 in
        --build) build=${2:?--build needs a directory}; shift 2 ;;
        --build=*) build=${1#--build=}; shift ;;
        -h | --help) usage ;;
        *) echo "lab_routed: unknown argument '$1'" >&2; usage ;;
    esac
done
state=${TMPDIR:-/tmp}/nlbd-lab-routed.state

# shellcheck source=../tests/scaleout/routed_lib.sh
source "$root/tests/scaleout/routed_lib.sh"

case $cmd in
demo)
    rl_require
    lab_init "$build"
    rl_up || lab_fail "routed lab did not come up"
    rl_scenario || true
    echo
    echo "Measured (router's kernel route, polled every 10 ms):"
    echo "  health checks of a cluster down -> route gone:      ${RL_T_HEALTH_DOWN:-?} ms (health_fall 2 x 200 ms)"
    echo "  health checks up again -> route back:               ${RL_T_HEALTH_UP:-?} ms (health_rise 2 x 200 ms)"
    echo "  withdrawal (drainstop of the last host -> route gone): ${RL_T_WITHDRAW:-?} ms"
    echo "  drain start after drainstop (withdraw_delay_ms $RL_WITHDRAW_DELAY_MS):   ${RL_T_DRAIN:-?} ms"
    echo "  announcement (nlbctl start -> route back):           ${RL_T_ANNOUNCE:-?} ms"
    echo "  withdrawal on a clean stop of nlbd (SIGTERM):        ${RL_T_STOP:-?} ms"
    echo "  long-lived connections on the surviving cluster: ${RL_KEPT:-0} kept, ${RL_LOST:-0} broken"
    lab_finish "routed scale-out demo"
    ;;
up)
    rl_require
    if [[ -f $state ]] && kill -0 "$(sed -n 1p "$state")" 2>/dev/null; then
        echo "lab_routed: a lab is already up (pid $(sed -n 1p "$state")); run '$0 down' first" >&2
        exit 1
    fi
    lab_init "$build"
    trap 'lab_cleanup; rm -f "$state"' EXIT
    trap 'exit 0' TERM INT
    rl_up || lab_fail "routed lab did not come up"
    { echo $$; printf '%s\n' "${LAB_NS[@]}"; } > "$state"
    cat <<TXT
Routed lab up (work dir $LAB_WORK):
  clients:  ip netns exec $LAB_CL_NS curl http://$RL_ANYCAST:8080/   (answers node1..node4)
  router:   ip -n $RL_RT_NS route show $RL_ANYCAST
            birdc -s $LAB_WORK/bird.rt.ctl show route all
  node I:   $LAB_NLBCTL --socket $LAB_WORK/ctl.I.sock query | drainstop | start
            birdc -s $LAB_WORK/bird.I.ctl show protocols
  nodes 1, 2: cluster A (next hop 10.77.1.10); nodes 3, 4: cluster B (10.77.2.10)
'$0 down' (or Ctrl-C) removes it; it goes by itself after ${LAB_UP_S:-3600} s.
TXT
    for ((k = 0; k < ${LAB_UP_S:-3600}; ++k)); do sleep 1; done
    ;;
down)
    [[ -f $state ]] || { echo "lab_routed: no lab is up ($state is missing)"; exit 0; }
    pid=$(sed -n 1p "$state")
    mapfile -t left < <(sed -n '2,$p' "$state")  # before `up` removes the file
    if kill -0 "$pid" 2>/dev/null; then
        kill -TERM "$pid"
        for ((k = 0; k < 100; ++k)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    fi
    # Its EXIT trap removed them; namespaces left by a killed `up` go here.
    for ns in "${left[@]}"; do
        [[ $ns == nlbd* ]] || continue
        ip netns list | grep -qw "$ns" || continue
        for p in $(ip netns pids "$ns" 2>/dev/null); do kill -KILL "$p" 2>/dev/null || true; done
        ip netns del "$ns" 2>/dev/null || true
    done
    rm -f "$state"
    echo "lab_routed: down"
    ;;
*) usage ;;
esac
