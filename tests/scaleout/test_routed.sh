#!/usr/bin/env bash
# Scale-out behind a router (SPEC §11, docs/scale-out.md): two nlbd clusters
# announce one anycast VIP over BGP through BIRD 2; the router spreads flows
# over both with ECMP. Asserts:
#  - both clusters announce and get new flows;
#  - a host whose rule's health check is down withdraws its own announcement
#    (the route stays through the other host); both down withdraw the cluster
#    (new flows all on the other); both up announce it again;
#  - a host whose wire link goes down withdraws at once (the route stays
#    through the other host) and announces again when it is back;
#  - a host joining a cluster that announces does not flap the route;
#  - drainstop of a cluster's last started host withdraws first (the route is
#    gone while the host is still started, the drain follows after
#    withdraw_delay_ms, the event log has them in that order); new flows then
#    all go to the other cluster, whose long-lived connections are untouched;
#  - `nlbctl start` announces again;
#  - a reload moving include_file is refused (named), withdraw_delay_ms
#    changes live;
#  - a clean stop of nlbd withdraws.
# Prints the measured times. Usage: test_routed.sh BUILDDIR (root; bird2,
# socat, jq, ethtool, iproute2; a missing tool fails, never skips).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=routed_lib.sh
source "$here/routed_lib.sh"
rl_require
lab_init "${1:?usage: $0 BUILDDIR}"
t_start=$(lab_now_ms)
rl_up || lab_fail "routed lab did not come up"
echo "lab up in $(( $(lab_now_ms) - t_start )) ms"
rl_scenario || true
echo "times: health down -> withdrawn ${RL_T_HEALTH_DOWN:-?} ms, health up -> announced ${RL_T_HEALTH_UP:-?} ms, withdraw ${RL_T_WITHDRAW:-?} ms, drain start ${RL_T_DRAIN:-?} ms, re-announce ${RL_T_ANNOUNCE:-?} ms, withdraw on nlbd stop ${RL_T_STOP:-?} ms"
lab_finish "routed scale-out: ECMP spread, withdraw first, survivors kept, re-announced"
