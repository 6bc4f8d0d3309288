#!/usr/bin/env bash
# The main job: installs what is missing, builds, and replays a generated
# mixed-traffic capture through a 3-host static nlbd cluster (the real binary,
# three times, on DPDK net_pcap ports), then prints how every class of traffic
# was decided on each host and proves the NLB invariants on the result.
#   scripts/demo.sh [BUILD_DIR] [SCENARIO]   (SCENARIO: basic, vlan_multicast)
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-build}
scenario=${2:-basic}
cd "$here"
scripts/setup.sh "$build" >/dev/null
echo "nlbd demo: 3 hosts, static membership, scenario '$scenario' (config: tests/replay/$scenario/cluster.toml.in)"
NEGATIVE=0 tests/replay/run_replay.sh "$build" "$scenario"
