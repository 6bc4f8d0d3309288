#!/usr/bin/env bash
# Cluster test (every host state and rule command in a real run, as NLB's
# nlb.exe verbs; docs/nlbctl.md), three real nodes, rules 8080 and 9000:
#  - suspend node 3: it refuses start (only resume and the read commands),
#    leaves the view, and serves no client; resume + start: it rejoins and
#    serves again;                       [a broken suspend or resume fails here]
#  - stop node 2 with an echo connection it holds: the connection ends (stop
#    drops connections), nodes 1 and 3 converge without it; start: back;
#  - disable 9000 on node 1: its echo connection on 9000 ends, while node 1
#    keeps serving 8080 and another node's 9000 connection continues;
#    enable: node 1 takes 9000 connections again;
#  - drain 9000 on node 1: its established 9000 connection continues, new
#    9000 connections all go to nodes 2 and 3; enable;
#  - drainstop --timeout 3 on node 1 holding a connection: it is draining,
#    then stopped within 3 s + slack although the connection remains (event
#    "drainstop timeout");
#  - ip2mac names the cluster MAC of each mode (unicast in force); queryport
#    names the 9000 rule with node 1's buckets and accepted frames, and no
#    rule for 7777;
#  - static membership: disable 8080 on node 1 drops node 1's share of 8080
#    (its clients get no answer), the others' clients are served, enable
#    restores it;
#  - a single-host rule with the same handling priority on hosts 1 and 2:
#    every host's query reports the duplicate and not converged (as NLB),
#    and host 1 (the lower id) handles the rule meanwhile (filter).
#   tests/cluster/test_host_commands.sh BUILDDIR
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=lib.sh
source "$here/lib.sh"
lab_require
lab_init "${1:?usage: $0 BUILDDIR}"
[[ -x $LAB_NLBCTL ]] || lab_fail "nlbctl not built ($LAB_NLBCTL)"

rules() {
    printf '\n[[port_rule]]\nvip = "%s"\nports = "8080"\nprotocol = "tcp"\nmode = "multiple"\naffinity = "single"\n' "$LAB_VIP"
    printf '\n[[port_rule]]\nvip = "%s"\nports = "9000"\nprotocol = "tcp"\nmode = "multiple"\naffinity = "single"\n' "$LAB_VIP"
}
write() { local f; f=$(lab_write_config "$1" "${2:-}"); rules >> "$f"; }
host_state() { lab_query "$1" | jq -r '.host_state // .state // empty'; }
# owner_of I A PORT: the node that accepts client 10.77.0.A on PORT, asked on node I.
owner_of() { lab_ctl "$1" --json filter "10.77.0.$2" "$LAB_VIP:$3" tcp | jq -r '.accepted_by'; }
# client_of NODE PORT: the first client address NODE owns for PORT.
client_of() {
    local a
    for ((a = LAB_CLIENT_FIRST; a < LAB_CLIENT_FIRST + LAB_CLIENTS; ++a)); do
        if [[ $(owner_of 1 "$a" "$2") == "$1" ]]; then echo "$a"; return 0; fi
    done
    return 1
}
# served_by NODE: of every client's 8080 request now, how many NODE served.
served_by() {
    local node=$1 a r n=0
    for ((a = LAB_CLIENT_FIRST; a < LAB_CLIENT_FIRST + LAB_CLIENTS; ++a)); do
        r=$(lab_request "$a")
        [[ $r == "node$node" ]] && n=$((n + 1))
    done
    echo "$n"
}
echo_alive() {  # echo_alive NAME: the client still runs and got an echo in the last second
    [[ ! -f $LAB_WORK/echo.$1.rc ]]
}

lab_topology 3 || lab_fail "topology"
for i in 1 2 3; do write "$i"; done
for i in 1 2 3; do lab_start_node "$i" || lab_fail "start node $i"; done
lab_wait_converged "1 2 3" 15000 || lab_fail "cold start: no convergence"

# --- suspend / resume -----------------------------------------------------
lab_ctl 3 suspend > /dev/null || lab_soft_fail "suspend failed"
[[ $(host_state 3) == suspended ]] || lab_soft_fail "node 3 is $(host_state 3) after suspend"
if out=$(lab_ctl 3 start 2>&1); then lab_soft_fail "a suspended host accepted start: $out"; fi
[[ $out == *suspended* ]] || lab_soft_fail "the refusal does not say suspended: $out"
lab_ctl 3 query > /dev/null || lab_soft_fail "a suspended host refused query"
lab_wait_converged "1 2" 10000 || lab_soft_fail "nodes 1 and 2 did not converge without the suspended node 3"
n=$(served_by 3)
[[ $n == 0 ]] && echo "suspended node 3 served no client" || lab_soft_fail "suspended node 3 served $n clients"
lab_ctl 3 resume > /dev/null || lab_soft_fail "resume failed"
[[ $(host_state 3) == stopped ]] || lab_soft_fail "node 3 is $(host_state 3) after resume (NLB: stopped until start)"
lab_ctl 3 start > /dev/null || lab_soft_fail "start after resume failed"
lab_wait_converged "1 2 3" 10000 || lab_soft_fail "node 3 did not rejoin"
n=$(served_by 3)
(( n > 0 )) && echo "node 3 serves $n clients again" || lab_soft_fail "node 3 serves no client after resume + start"

# --- stop / start: connections are dropped ----------------------------------
a2=$(client_of 2 9000) || lab_fail "no 9000 client owned by node 2"
lab_echo_client stop2 "$a2" 100   # 10 s
sleep 1.5
echo_alive stop2 || lab_soft_fail "the echo connection to node 2 ended early"
lab_ctl 2 stop > /dev/null || lab_soft_fail "stop failed"
lab_wait_converged "1 3" 10000 || lab_soft_fail "nodes 1 and 3 did not converge without node 2"
if lab_echo_result stop2 100; then lab_soft_fail "node 2's connection survived stop: $LAB_ECHO_SUMMARY"
else echo "stop dropped node 2's connection ($LAB_ECHO_SUMMARY)"; fi
lab_ctl 2 start > /dev/null || lab_soft_fail "start failed"
lab_wait_converged "1 2 3" 10000 || lab_soft_fail "node 2 did not rejoin"

# --- disable / enable one rule on one host ----------------------------------
a1=$(client_of 1 9000) || lab_fail "no 9000 client owned by node 1"
b=$(client_of 2 9000) || b=$(client_of 3 9000) || lab_fail "no 9000 client of another node"
lab_echo_client dis1 "$a1" 60
lab_echo_client other "$b" 60
sleep 1.5
lab_ctl 1 disable "$LAB_VIP:9000" > /dev/null || lab_soft_fail "disable failed"
if lab_echo_result dis1 60; then lab_soft_fail "node 1's 9000 connection survived disable: $LAB_ECHO_SUMMARY"
else echo "disable 9000 on node 1 dropped its connection ($LAB_ECHO_SUMMARY)"; fi
lab_echo_result other 60 && echo "the other node's 9000 connection continued ($LAB_ECHO_SUMMARY)" \
    || lab_soft_fail "disable on node 1 broke another node's connection: $LAB_ECHO_SUMMARY"
lab_wait_converged "1 2 3" 10000 || true
(( $(served_by 1) > 0 )) || lab_soft_fail "node 1 stopped serving 8080 after disabling 9000"
for ((a = LAB_CLIENT_FIRST; a < LAB_CLIENT_FIRST + LAB_CLIENTS; ++a)); do
    [[ $(owner_of 2 "$a" 9000) != 1 ]] || { lab_soft_fail "node 1 still owns 9000 for 10.77.0.$a while disabled"; break; }
done
lab_ctl 1 enable "$LAB_VIP:9000" > /dev/null || lab_soft_fail "enable failed"
lab_wait_converged "1 2 3" 10000 || lab_soft_fail "no convergence after enable"
client_of 1 9000 > /dev/null && echo "node 1 owns 9000 clients again" || lab_soft_fail "node 1 owns no 9000 client after enable"

# --- drain one rule: established connections continue -----------------------
a1=$(client_of 1 9000) || lab_fail "no 9000 client owned by node 1"
lab_echo_client drain1 "$a1" 40
sleep 1
lab_ctl 1 drain "$LAB_VIP:9000" > /dev/null || lab_soft_fail "drain failed"
lab_echo_result drain1 40 && echo "drain kept node 1's 9000 connection ($LAB_ECHO_SUMMARY)" \
    || lab_soft_fail "drain broke node 1's connection: $LAB_ECHO_SUMMARY"
for ((a = LAB_CLIENT_FIRST; a < LAB_CLIENT_FIRST + LAB_CLIENTS; ++a)); do
    [[ $(owner_of 2 "$a" 9000) != 1 ]] || { lab_soft_fail "node 1 takes new 9000 connections while draining"; break; }
done
lab_ctl 1 enable "$LAB_VIP:9000" > /dev/null || lab_soft_fail "enable after drain failed"
lab_wait_converged "1 2 3" 10000 || lab_soft_fail "no convergence after the drain"

# --- nlb.exe verbs: ip2mac, queryport --------------------------------------
m=$(lab_ctl 2 --json ip2mac "$LAB_VIP")
want=$(lab_cluster_mac | tr ':' '-')
[[ $(jq -r .unicast <<< "$m") == "$want" && $(jq -r .in_force <<< "$m") == "$want" ]] \
    && echo "ip2mac: unicast $want (in force), multicast $(jq -r .multicast <<< "$m"), igmp $(jq -r .igmp <<< "$m")" \
    || lab_soft_fail "ip2mac: $m (want unicast $want)"
[[ $(jq -r .multicast <<< "$m") == 03-bf-* && $(jq -r .igmp <<< "$m") == 01-00-5e-7f-* ]] \
    || lab_soft_fail "ip2mac multicast/igmp formats: $m"
q=$(lab_ctl 1 --json queryport "$LAB_VIP:9000")
[[ $(jq -r '.rules[0].rule' <<< "$q") == "$LAB_VIP:9000/tcp" ]] || lab_soft_fail "queryport names no 9000 rule: $q"
owned=$(jq -r '.rules[0].buckets_owned // 0' <<< "$q")
acc=$(jq -r '.rules[0].accepted // 0' <<< "$q")
(( owned > 0 && acc > 0 )) && echo "queryport 9000 on node 1: $owned buckets owned, $acc frames accepted" \
    || lab_soft_fail "queryport: owned $owned, accepted $acc: $q"
[[ $(lab_ctl 1 --json queryport 7777 | jq -r '.rules | length') == 0 ]] || lab_soft_fail "queryport 7777 matched a rule"

# --- drainstop --timeout ----------------------------------------------------
a1=$(client_of 1 9000) || lab_fail "no 9000 client owned by node 1"
lab_echo_client hold1 "$a1" 150   # 15 s: longer than the timeout
sleep 1
t0=$(lab_now_ms)
lab_ctl 1 drainstop --timeout 3 > /dev/null || lab_soft_fail "drainstop --timeout 3 failed"
[[ $(host_state 1) == draining ]] || lab_soft_fail "node 1 is $(host_state 1) right after drainstop (a connection is held)"
for ((k = 0; k < 80; ++k)); do [[ $(host_state 1) == stopped ]] && break; sleep 0.1; done
t1=$(lab_now_ms)
[[ $(host_state 1) == stopped ]] && echo "drainstop --timeout 3: stopped after $((t1 - t0)) ms" \
    || lab_soft_fail "node 1 did not stop after the drainstop timeout: $(host_state 1)"
(( t1 - t0 >= 2800 )) || lab_soft_fail "node 1 stopped before its timeout ($((t1 - t0)) ms) with a connection held"
lab_ctl 1 --json display | jq -e '.events[] | select(.text | test("drainstop timeout"))' > /dev/null \
    || lab_soft_fail "no drainstop timeout event"
lab_ctl 1 start > /dev/null || lab_soft_fail "start after drainstop failed"

# --- static membership: per-rule commands on this host ------------------------
for i in 1 2 3; do lab_stop_node "$i"; done
for i in 1 2 3; do write "$i" "1, 2, 3"; done
for i in 1 2 3; do lab_start_node "$i" || lab_fail "static start node $i"; done
sleep 1
lab_owners || lab_soft_fail "static: clients without an answer:$LAB_UNSERVED"
mine=(); for a in "${!LAB_OWNER[@]}"; do [[ ${LAB_OWNER[$a]} == node1 ]] && mine+=("$a"); done
(( ${#mine[@]} > 0 )) || lab_fail "static: node 1 serves no client"
out=$(lab_ctl 1 disable "$LAB_VIP:8080" 2>&1) || lab_soft_fail "static: disable refused: $out"
[[ $(lab_request "${mine[0]}") == "" ]] && echo "static: node 1's 8080 client gets no answer while disabled" \
    || lab_soft_fail "static: node 1's client was answered while 8080 is disabled on node 1"
for a in "${!LAB_OWNER[@]}"; do
    [[ ${LAB_OWNER[$a]} == node1 ]] && continue
    [[ $(lab_request "$a") == "${LAB_OWNER[$a]}" ]] || { lab_soft_fail "static: another node's client lost its answer"; break; }
done
lab_ctl 1 enable "$LAB_VIP:8080" > /dev/null || lab_soft_fail "static: enable refused"
[[ $(lab_request "${mine[0]}") == node1 ]] && echo "static: enable restores node 1's share" \
    || lab_soft_fail "static: node 1's client not answered after enable"

# --- duplicate handling priority: a mismatch on every host --------------------
for i in 1 2 3; do lab_stop_node "$i"; done
for i in 1 2 3; do
    write "$i"
    prio=$(( i == 3 ? 2 : 1 ))   # hosts 1 and 2 both claim priority 1
    printf '\n[[port_rule]]\nvip = "%s"\nports = "7000"\nprotocol = "tcp"\nmode = "single"\nhandling_priority = %s\n' \
        "$LAB_VIP" "$prio" >> "$LAB_WORK/node$i.toml"
done
for i in 1 2 3; do lab_start_node "$i" || lab_fail "start node $i (priorities)"; done
# As NLB: query reports the duplicate and the cluster as not converged; the
# maps still agree and the lower id handles the rule meanwhile.
for i in 1 2 3; do
    t=0
    for ((k = 0; k < 100; ++k)); do
        t=$(lab_query "$i" | jq -r '[.mismatches[]? | select(.kind == "duplicate_priority")] | length')
        (( t >= 1 )) && break
        sleep 0.2
    done
    (( t >= 1 )) || lab_soft_fail "node $i does not report the duplicate handling priority: $(lab_query "$i" | jq -c .mismatches)"
    [[ $(lab_query "$i" | jq -r .converged) == false ]] || lab_soft_fail "node $i reports converged despite the duplicate"
done
lab_converged_on "1 2 3" > /dev/null 2>&1 || true
echo "duplicate priority: every host reports it: $(lab_query 1 | jq -r '.mismatches[] | select(.kind == "duplicate_priority") | .text')"
[[ $(lab_ctl 3 --json filter "10.77.0.$LAB_CLIENT_FIRST" "$LAB_VIP:7000" | jq -r .accepted_by) == 1 ]] \
    && echo "duplicate priority: host 1 (the lower id) handles 7000 meanwhile" \
    || lab_soft_fail "duplicate priority: host 1 does not handle 7000"

lab_finish "host and rule commands in a real run: suspend/resume, stop/start, disable/enable, drain, drainstop --timeout, static per-rule"
