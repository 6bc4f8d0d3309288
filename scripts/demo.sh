#!/usr/bin/env bash
# The main job: installs what is missing, builds, and runs the seed's scenario
# as a lab (scripts/lab.sh demo): two Client Access nodes cas01/cas02 running
# nlbd behind mail.ehlo.dk, nginx over verified TLS, SMTP excluded, failover
# by disabling cas01's adapter, rejoin, over IPv4 and IPv6 (with network
# affinity, neighbour discovery and PMTUD over IPv6). Prints a report, exits non-zero if an
# expectation fails, always tears the lab down. Needs root (or sudo).
#   scripts/demo.sh [lab] [--mode unicast|multicast|igmp] [--build DIR]
#
# The earlier main job, a replay of a generated capture through a 3-host
# static cluster on DPDK net_pcap ports (no root needed):
#   scripts/demo.sh replay [BUILD_DIR] [SCENARIO]   (SCENARIO: basic, vlan_multicast)
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"

if [[ ${1:-} == replay ]]; then
    shift
    build=${1:-build}
    scenario=${2:-basic}
    scripts/setup.sh "$build" >/dev/null
    echo "nlbd demo: 3 hosts, static membership, scenario '$scenario' (config: tests/replay/$scenario/cluster.toml.in)"
    NEGATIVE=0 exec tests/replay/run_replay.sh "$build" "$scenario"
fi

[[ ${1:-} == lab ]] && shift
build=build
args=("$@")
for ((k = 0; k < ${#args[@]}; ++k)); do
    case ${args[k]} in
        --build) build=${args[k + 1]:-build} ;;
        --build=*) build=${args[k]#--build=} ;;
    esac
done
echo "nlbd demo: installing what is missing and building ($build)..."
scripts/setup.sh "$build" >/dev/null
sudo=""
[[ $(id -u) -eq 0 ]] || sudo="sudo"
exec $sudo "$here/scripts/lab.sh" demo --build "$build" "$@"
