# igmp mode checks of scripts/lab.sh (sourced by it; `lab.sh demo --mode igmp`,
# run in CI as the test lab_demo_igmp, tests/lab/meson.build).
#
# The switch (br0 in the switch namespace, made by the lab) runs IGMP snooping
# with its own querier: mcast_snooping 1, mcast_querier 1, query response
# interval 1 s (the bridge snoops once that delay after the querier is on has
# passed, long before nlbd starts). One tcpdump per node port (${P}sI, -Q in:
# frames the node sent into the bridge) records every IGMP frame, with
# timestamps, from before nlbd starts to after it stops; each capture is
# bounded in time (timeout) and count (-c).
#
# Linux's bridge snoops on the IPv4 destination, not the MAC: a client's frame
# to the VIP (unicast IP 10.77.0.10 at MAC 01-00-5e-7f-0-a) matches no group,
# and with a querier present the bridge sends it only to multicast router
# ports; the reports for 239.255.0.10 never match it. So the node ports are
# made permanent router ports (mcast_router 2), as a switch that snoops by IP
# needs static entries for NLB's igmp mode. LAB_IGMP_ROUTER_PORTS=0 leaves
# them out and the demo then fails: no request reaches either node.
#
# Assertion -> the breakage it catches:
#   snooping on       the switch is not snooping (mcast_snooping / mcast_querier
#                     not 1): every later check would prove nothing
#   filtered          the bridge flooded the cluster's frames after all (e.g. the
#                     querier's start-up delay, 10 s by default, had not passed):
#                     a bridge port that joined nothing (${P}o, captured from
#                     before nlbd starts to the end) got no frame for the VIP
#   start report      no report at start (only the periodic one, 10 s later),
#                     a report for another group or to another MAC/IP: host I's
#                     first IGMPv2 report for 239.255.y.z, to 01-00-5e-7f-y-z,
#                     is on its port within 5 s of nlbd's start (the periodic
#                     one would come 10 s after)
#   periodic          no periodic report, another interval than the documented
#                     10 s (kIgmpReportIntervalS), reports on every poll: every
#                     gap between two reports of a host, with its link up in
#                     between, is 8-11 s (a report queued before the worker
#                     runs goes out late, the next gap is shorter), and each
#                     host has at least one such gap; also a report sent while
#                     the link is down (the PMD sends it stale at link-up,
#                     shortly before or after the link-up report)
#   link-up report    no report at once on link-up: cas01's adapter goes down
#                     for 1 s right after one of its periodic reports; its
#                     next report is within 1.5 s of link-up and less than 8 s
#                     after the previous one (so not the periodic one)
#   mdb               reports a snooping switch ignores (bad checksums, wrong
#                     group): br0's mdb holds 239.255.y.z on both node ports
#   leave             no leave when nlbd stops, a leave for another group or not
#                     to 224.0.0.2: an IGMPv2 leave for 239.255.y.z from the
#                     host's port within 3 s of SIGTERM, no report after it,
#                     and the bridge drops the port's group within 5 s (without
#                     a leave it keeps it for the 260 s membership interval)
#   delivery          the snooping bridge does not deliver the cluster's frames
#                     to every host: the demo's own checks (20 clients answered,
#                     spread over both nodes, failover, rejoin, health) run
#                     with snooping in effect (see "filtered").
# Every wait is bounded in count and time.

LAB_IGMP_INTERVAL_MS=10000   # kIgmpReportIntervalS, docs/cluster.md
LAB_IGMP_EARLY_MS=2000      # a report queued before the worker ran (start) or
LAB_IGMP_LATE_MS=1000       # while the link was down goes out late: next gap shorter
declare -A LAB_IGMP_CAP=() LAB_T_START=()

lab_igmp_group() { local IFS=.; set -- $LAB_VIP; echo "239.255.$3.$4"; }
lab_igmp_mac() { local IFS=.; set -- $LAB_VIP; printf '01:00:5e:7f:%02x:%02x' "$3" "$4"; }

# lab_igmp_switch : snooping + querier on br0, router ports, captures.
lab_igmp_switch() {
    local sw=$LAB_SW_NS i k t0
    # The response interval first: enabling the querier starts a delay of
    # that length (default 10 s) before the bridge filters anything.
    ip -n "$sw" link set br0 type bridge mcast_query_response_interval 100 || return 1
    ip -n "$sw" link set br0 type bridge mcast_snooping 1 mcast_querier 1 || return 1
    t0=$(lab_now_ms)
    # Observer: a bridge port that joins nothing (veth ${P}o, its peer ${P}q
    # up with no address, both in the switch namespace). A snooping bridge
    # sends it no frame for the VIP; a flooding one sends it every one.
    ip -n "$sw" link add "${P}o" type veth peer name "${P}q" || return 1
    ip -n "$sw" link set "${P}o" master br0 up
    ip -n "$sw" link set "${P}q" up
    ip netns exec "$sw" timeout -k 2 "${LAB_IGMP_CAPTURE_S:-300}" \
        tcpdump -l -nn -tt -e -Q out -c 100 -i "${P}o" "ip dst $LAB_VIP" \
        > "$LAB_WORK/igmp.observer.txt" 2> "$LAB_WORK/igmp.observer.err" &
    LAB_PIDS+=($!)
    for i in 1 2; do
        if [[ ${LAB_IGMP_ROUTER_PORTS:-1} == 1 ]]; then
            bridge -n "$sw" link set dev "${P}s$i" mcast_router 2 || return 1
        fi
        ip netns exec "$sw" timeout -k 2 "${LAB_IGMP_CAPTURE_S:-300}" \
            tcpdump -l -nn -tt -e -Q in -c 500 -i "${P}s$i" igmp \
            > "$LAB_WORK/igmp.$i.txt" 2> "$LAB_WORK/igmp.$i.err" &
        LAB_IGMP_CAP[$i]=$!
        LAB_PIDS+=($!)
    done
    for i in 1 2; do   # listening before nlbd starts (bounded: 50 x 0.1 s)
        for ((k = 0; k < 50; ++k)); do
            grep -q 'listening on' "$LAB_WORK/igmp.$i.err" 2>/dev/null && break
            sleep 0.1
        done
        ((k < 50)) || { echo "lab: tcpdump on ${P}s$i: $(cat "$LAB_WORK/igmp.$i.err")" >&2; return 1; }
    done
    for ((k = 0; k < 50; ++k)); do
        grep -q 'listening on' "$LAB_WORK/igmp.observer.err" 2>/dev/null && break
        sleep 0.1
    done
    ((k < 50)) || { echo "lab: tcpdump on ${P}o: $(cat "$LAB_WORK/igmp.observer.err")" >&2; return 1; }
    # The querier's delay (1 s) is over before nlbd starts (bounded: 20 x 0.1 s).
    for ((k = 0; k < 20 && $(lab_now_ms) - t0 < 1500; ++k)); do sleep 0.1; done
}

# lab_igmp_events I : "MS report|leave|other" per IGMP frame from node I.
lab_igmp_events() {
    local g mac; g=$(lab_igmp_group); mac=$(lab_igmp_mac)
    awk -v g="$g" -v mac="$mac" '
        NF > 1 {
            t = sprintf("%.0f", $1 * 1000); k = "other"
            if (index($0, " > " mac ", ") && index($0, " > " g ": igmp v2 report " g) && $NF == g) k = "report"
            else if (index($0, " > 01:00:5e:00:00:02, ") && index($0, " > 224.0.0.2: igmp leave " g) && $NF == g) k = "leave"
            print t, k
        }' "$LAB_WORK/igmp.$1.txt" 2>/dev/null || true
}

# lab_igmp_mdb_ports : the bridge ports that hold the group in br0's mdb.
lab_igmp_mdb_ports() {
    bridge -n "$LAB_SW_NS" -j mdb show dev br0 2>/dev/null |
        jq -r --arg g "$(lab_igmp_group)" '.[].mdb[]? | select(.grp == $g) | .port' 2>/dev/null | sort | tr '\n' ' ' || true
}

# lab_igmp_checks T_DOWN T_UP : cas01's adapter went down at T_DOWN and up at
# T_UP (ms). Stops both nodes (at the end of the demo).
lab_igmp_checks() {
    local t_down=$1 t_up=$2 g i k s ev n
    g=$(lab_igmp_group)
    local info; info=$(ip -n "$LAB_SW_NS" -d -j link show br0 | jq -r '.[0].linkinfo.info_data | "\(.mcast_snooping) \(.mcast_querier)"')
    expect "$([[ $info == "1 1" ]]; echo $?)" "igmp: br0 snoops with a querier (mcast_snooping mcast_querier: $info)"
    local leaked; leaked=$(grep -c . "$LAB_WORK/igmp.observer.txt" 2>/dev/null || true)
    expect "$(( leaked == 0 ? 0 : 1 ))" \
        "igmp: the snooping bridge filtered the cluster's frames all along: none of the demo's frames to $LAB_VIP reached a port that joined nothing ($leaked did)"

    # Enough reports to measure a gap with the link up: cas02 two, cas01 one
    # after its link-up report (bounded: the interval + 4 s after T_UP).
    local until=$((t_up + LAB_IGMP_INTERVAL_MS + 4000))
    for ((k = 0; k < 200; ++k)); do
        (( $(lab_igmp_events 2 | grep -c ' report$') >= 2 &&
           $(lab_igmp_events 1 | awk -v u="$t_up" '$2 == "report" && $1 > u + 1500' | wc -l) >= 1 )) && break
        (( $(lab_now_ms) < until )) || break
        sleep 0.1
    done

    for i in 1 2; do
        ev=$(lab_igmp_events "$i")
        local first; first=$(awk '$2 == "report" {print $1; exit}' <<<"$ev")
        local d=$(( ${first:-0} - ${LAB_T_START[$i]:-0} )) what="no report"
        [[ -z $first ]] || what="$d ms after nlbd started"
        expect "$([[ -n $first ]] && (( d >= 0 && d <= 5000 )); echo $?)" \
            "igmp: ${NODE_NAMES[$i]} reports $g at start ($what, bound 5000 ms)"
        # Gaps between consecutive reports with the link up in between.
        local gaps bad
        gaps=$(awk -v d="$t_down" -v u="$t_up" -v host="$i" '
            $2 == "report" { if (p != "" && !(host == 1 && p < u && $1 > d)) printf "%d ", $1 - p; p = $1 }' <<<"$ev")
        bad=0
        for s in $gaps; do
            if (( s < LAB_IGMP_INTERVAL_MS - LAB_IGMP_EARLY_MS || s > LAB_IGMP_INTERVAL_MS + LAB_IGMP_LATE_MS )); then bad=$((bad + 1)); fi
        done
        n=$(wc -w <<<"$gaps")
        expect "$(( n >= 1 && bad == 0 ? 0 : 1 ))" \
            "igmp: ${NODE_NAMES[$i]} reports again every $((LAB_IGMP_INTERVAL_MS / 1000)) s (gaps ms: ${gaps:-none}; bounds $((LAB_IGMP_INTERVAL_MS - LAB_IGMP_EARLY_MS))-$((LAB_IGMP_INTERVAL_MS + LAB_IGMP_LATE_MS)))"
        local other; other=$(grep -c ' other$' <<<"$ev" || true)
        ((other == 0)) || DEMO_RESULTS+=("WARN  igmp: $other other IGMP frame(s) from ${NODE_NAMES[$i]}'s port (see $LAB_WORK/igmp.$i.txt)")
    done
    local ports; ports=$(lab_igmp_mdb_ports)
    expect "$([[ $ports == "${P}s1 ${P}s2 " ]]; echo $?)" "igmp: br0's mdb holds $g on both node ports (${ports:-none})"

    # Link-up report: a 1 s flap of cas01's adapter right after one of its
    # periodic reports (waited for, bounded: 120 x 0.1 s), so that no periodic
    # report is due until well after link-up (the demo's own down time may
    # span one, which nlbd then sends at link-up as well).
    local last="" t_fd t_fu lu="" since=""
    for ((k = 0; k < 120; ++k)); do
        last=$(lab_igmp_events 1 | awk '$2 == "report" {x = $1} END {print x}')
        [[ -n $last ]] && (( $(lab_now_ms) - last < 2000 )) && break
        sleep 0.1
    done
    t_fd=$(lab_now_ms)
    ip -n "${LAB_NODE_NS[1]}" link set "${P}w" down
    sleep 1
    t_fu=$(lab_now_ms)
    ip -n "${LAB_NODE_NS[1]}" link set "${P}w" up
    for ((k = 0; k < 25; ++k)); do
        lu=$(lab_igmp_events 1 | awk -v u="$t_fu" '$2 == "report" && $1 >= u {print $1; exit}')
        [[ -n $lu ]] && break
        sleep 0.1
    done
    local what="no report within 2.5 s"
    [[ -z $lu ]] || { since=$((lu - ${last:-0})); what="$((lu - t_fu)) ms after link-up, $since ms after its previous report"; }
    expect "$([[ -n $lu && -n $last ]] && ((lu - t_fu <= 1500 && since < LAB_IGMP_INTERVAL_MS - LAB_IGMP_EARLY_MS)); echo $?)" \
        "igmp: cas01 reports again at once when its link comes back ($what; bound 1500 ms, and not the periodic one)"

    # Stop the nodes one by one: each sends a leave; the bridge drops its port.
    local t_stop lv after gone
    for i in 2 1; do
        t_stop=$(lab_now_ms)
        lab_stop_node "$i"
        lv=""
        for ((k = 0; k < 30; ++k)); do
            lv=$(lab_igmp_events "$i" | awk -v t="$t_stop" '$2 == "leave" && $1 >= t {print $1; exit}')
            [[ -n $lv ]] && break
            sleep 0.1
        done
        gone=""
        for ((k = 0; k < 50; ++k)); do
            [[ " $(lab_igmp_mdb_ports)" != *" ${P}s$i "* ]] && { gone=$(( $(lab_now_ms) - t_stop )); break; }
            sleep 0.1
        done
        sleep 0.3   # a report sent right after the leave would be captured by now
        after=$(lab_igmp_events "$i" | awk -v t="${lv:-0}" '$2 == "report" && $1 > t' | wc -l)
        local lvs="none" gs="not within 5 s"
        [[ -z $lv ]] || lvs="$((lv - t_stop)) ms after SIGTERM"
        [[ -z $gone ]] || gs="$gone ms after SIGTERM"
        expect "$([[ -n $lv ]] && ((after == 0)); echo $?)" \
            "igmp: ${NODE_NAMES[$i]} sends an IGMPv2 leave for $g to 224.0.0.2 when nlbd stops ($lvs, $after report(s) after it)"
        expect "$([[ -n $gone ]]; echo $?)" "igmp: the bridge drops $g from ${NODE_NAMES[$i]}'s port ($gs)"
    done
    IGMP_SUMMARY="igmp: reports per node port: cas01 $(lab_igmp_events 1 | grep -c ' report$'), cas02 $(lab_igmp_events 2 | grep -c ' report$') (tcpdump on ${P}s1/${P}s2 in $LAB_SW_NS)"
}
