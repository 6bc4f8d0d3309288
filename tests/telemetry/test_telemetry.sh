#!/usr/bin/env bash
# Telemetry end to end (SPEC §9, docs/telemetry.md): runs the real nlbd on
# net_pcap (the replay scenario "basic", host 1 of a static cluster) with
# [telemetry] enabled, then while it runs
#   - scrapes http://127.0.0.1:PORT/metrics with curl, validates the text
#     format and checks 404 / 405 answers,
#   - queries /nlbd/stats, /nlbd/rules and /nlbd/cluster with dpdk-telemetry.py
#     on the daemon's DPDK telemetry socket (/var/run/dpdk/<prefix>/),
# and at exit compares both with the --stats-json document: the capture is
# replayed at once, so the counters are stable long before the run ends.
#
#   tests/telemetry/test_telemetry.sh BUILDDIR
#
# Environment: NLBD (nlbd binary), KEEP=1 keeps the work directory.
# Exit 77 (skip) without root, curl or dpdk-telemetry.py.
set -euo pipefail

build=$(cd "${1:?usage: test_telemetry.sh BUILDDIR}" && pwd)
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
nlbd=${NLBD:-$build/src/daemon/nlbd}
gen=$build/src/tools/nlbd-pcapgen
py=python3
[[ -x /usr/bin/python3 ]] && py=/usr/bin/python3
telemetry_py=$(command -v dpdk-telemetry.py || true)

[[ $(id -u) == 0 ]] || { echo "test_telemetry: needs root (DPDK runtime dir)"; exit 77; }
command -v curl >/dev/null || { echo "test_telemetry: no curl"; exit 77; }
[[ -n $telemetry_py ]] || { echo "test_telemetry: no dpdk-telemetry.py"; exit 77; }
for f in "$nlbd" "$gen"; do [[ -x $f ]] || { echo "test_telemetry: $f not built" >&2; exit 1; }; done

work=$(mktemp -d "${TMPDIR:-/tmp}/nlbd-telemetry.XXXXXX")
prefix=nlbd-telemetry-test-$$
pid=
cleanup() {
    if [[ -n $pid ]]; then kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi
    rm -rf "/var/run/dpdk/$prefix"
    if [[ ${KEEP:-0} == 1 ]]; then echo "test_telemetry: kept $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT
fail() { echo "test_telemetry: FAIL: $*" >&2; echo "--- nlbd log:" >&2; tail -n 40 "$work/nlbd.log" >&2 || true; exit 1; }

# A free TCP port on 127.0.0.1 for /metrics.
port=$("$py" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')

# The capture and host 1's config ($work/host1.toml) of the replay scenario.
"$gen" --config "$root/tests/replay/basic/cluster.toml.in" --out "$work" > /dev/null
cat >> "$work/host1.toml" <<TOML

[telemetry]
prometheus_listen = "127.0.0.1:$port"
dpdk_telemetry = true
TOML

run_for=8
timeout -k 5 $((run_for + 30)) "$nlbd" --config "$work/host1.toml" --run-for "$run_for" \
    --stats-json "$work/stats.json" --no-control-socket \
    -- --no-huge -m 256 --no-shconf --no-pci --file-prefix="$prefix" --log-level=lib.eal:error \
    > "$work/nlbd.log" 2>&1 &
pid=$!

scrape() { curl -sS --max-time 3 "http://127.0.0.1:$port/metrics"; }
rx_of() { awk '$1 == "nlbd_rx_frames_total" { print $2 }' "$1"; }

# Wait until the capture is consumed: two scrapes 1 s apart agree on rx.
prev=
stable=0
for _ in $(seq 1 40); do
    kill -0 "$pid" 2>/dev/null || fail "nlbd exited early"
    if scrape > "$work/metrics.txt" 2>/dev/null; then
        rx=$(rx_of "$work/metrics.txt")
        if [[ -n $rx && $rx != 0 && $rx == "$prev" ]]; then stable=1; break; fi
        prev=$rx
    fi
    sleep 1
done
[[ $stable == 1 ]] || fail "no stable /metrics scrape (last rx '$prev')"
echo "test_telemetry: /metrics stable at rx_frames_total=$prev"

# HTTP answers other than /metrics.
code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/")
[[ $code == 404 ]] || fail "GET / answered $code, want 404"
# /healthz: this host is started and (static membership) converged.
code=$(curl -s -o "$work/healthz.txt" -w '%{http_code}' "http://127.0.0.1:$port/healthz")
[[ $code == 200 && $(cat "$work/healthz.txt") == "ok: host started, cluster converged"* ]] \
    || fail "GET /healthz answered $code: $(cat "$work/healthz.txt")"
code=$(curl -s -o /dev/null -w '%{http_code}' -X POST "http://127.0.0.1:$port/metrics")
[[ $code == 405 ]] || fail "POST /metrics answered $code, want 405"
ctype=$(curl -s -o /dev/null -w '%{content_type}' "http://127.0.0.1:$port/metrics")
[[ $ctype == *"version=0.0.4"* ]] || fail "content type '$ctype'"

# DPDK telemetry: the daemon's socket under its file prefix.
sock=/var/run/dpdk/$prefix/dpdk_telemetry.v2
[[ -S $sock ]] || fail "no telemetry socket $sock"
for cmd in /nlbd/stats /nlbd/rules /nlbd/cluster /; do
    name=$(echo "$cmd" | tr '/' '_')
    echo "$cmd" | timeout 10 "$py" "$telemetry_py" -f "$prefix" > "$work/tel$name.json" ||
        fail "dpdk-telemetry.py $cmd failed"
done

wait "$pid" || fail "nlbd exited with an error"
pid=
[[ -s $work/stats.json ]] || fail "no --stats-json"

"$py" - "$work" <<'PY' || fail "telemetry values differ from --stats-json"
import json, re, sys
work = sys.argv[1]
stats = json.load(open(f"{work}/stats.json"))
problems = []

# --- /metrics: parse (strictly) and index the samples -----------------------
name_re = re.compile(r'^[a-zA-Z_:][a-zA-Z0-9_:]*$')
sample_re = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)$')
label_re = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\[\\"n])*)"(,|$)')
samples, help_seen, type_seen = [], set(), {}
for line in open(f"{work}/metrics.txt"):
    line = line.rstrip("\n")
    if line.startswith("# HELP ") or line.startswith("# TYPE "):
        parts = line.split(" ", 3)
        seen = help_seen if parts[1] == "HELP" else type_seen
        if parts[2] in seen: problems.append(f"repeated {parts[1]} for {parts[2]}")
        if parts[1] == "HELP": help_seen.add(parts[2])
        else: type_seen[parts[2]] = parts[3]
        continue
    m = sample_re.match(line)
    if not m: problems.append(f"bad line: {line!r}"); continue
    labels = {}
    if m.group(3):
        rest = m.group(3)
        while rest:
            lm = label_re.match(rest)
            if not lm: problems.append(f"bad labels: {line!r}"); break
            labels[lm.group(1)] = lm.group(2).replace('\\n', '\n').replace('\\"', '"').replace('\\\\', '\\')
            rest = rest[lm.end():]
    if m.group(1) not in type_seen: problems.append(f"sample without TYPE: {line!r}")
    samples.append((m.group(1), labels, float(m.group(4))))

# The official client's parser too, where it is installed (python3-prometheus-client).
try:
    from prometheus_client.parser import text_string_to_metric_families
except ImportError:
    text_string_to_metric_families = None
if text_string_to_metric_families is not None:
    try:
        fams = list(text_string_to_metric_families(open(f"{work}/metrics.txt").read()))
        print(f"test_telemetry: prometheus_client parsed {len(fams)} families")
    except Exception as e:
        problems.append(f"prometheus_client cannot parse /metrics: {e}")

def metric(name, **want):
    for n, labels, v in samples:
        if n == name and all(labels.get(k) == str(x) for k, x in want.items()):
            return int(v)
    problems.append(f"missing {name}{want}")
    return None

def same(what, got, want):
    if got != want: problems.append(f"{what}: telemetry {got} != stats-json {want}")

same("rx_frames_total", metric("nlbd_rx_frames_total"), stats["rx_total"])
for verdict, n in stats["verdicts"].items():
    same(f"packets_total{{verdict={verdict}}}", metric("nlbd_packets_total", verdict=verdict), n)
for reason, n in stats["parse_errors"].items():
    same(f"parse_errors_total{{reason={reason}}}", metric("nlbd_parse_errors_total", reason=reason), n)
for r in stats["rules"]:
    for result in ("accepted", "not_owner", "dropped"):
        same(f"rule {r['index']} {result}",
             metric("nlbd_rule_packets_total", rule=r["index"], result=result), r[result])
    same(f"rule {r['index']} matched", metric("nlbd_rule_matched_total", rule=r["index"]), r["matched"])
    same(f"rule {r['index']} buckets", metric("nlbd_buckets_owned", rule=r["index"]), r["buckets_owned"])
for port in ("wire", "local"):
    for d in ("rx", "tx"):
        same(f"port {port} {d}", metric("nlbd_port_packets_total", port=port, dir=d),
             stats["ports"][port][f"{d}_packets"])
same("cluster epoch", metric("nlbd_cluster_epoch"), stats["membership"]["epoch"])
same("cluster members", metric("nlbd_cluster_members"), len(stats["membership"]["members"]))
same("connections", metric("nlbd_connections"), stats["connections"]["entries"])
same("fragments timed out", metric("nlbd_fragments_timed_out_total"), stats["fragments"]["timed_out"])
if stats["rx_total"] == 0: problems.append("the capture produced no traffic")

# --- DPDK telemetry answers --------------------------------------------------
def tel(cmd):
    text = open(f"{work}/tel{cmd.replace('/', '_')}.json").read().strip().splitlines()
    if not text: problems.append(f"{cmd}: no answer"); return {}
    return json.loads(text[-1]).get(cmd, {})

if "/nlbd/stats" not in tel("/")  or "/nlbd/cluster" not in tel("/"):
    problems.append("/nlbd commands not listed by /")
ts = tel("/nlbd/stats")
same("/nlbd/stats rx_total", ts.get("rx_total"), stats["rx_total"])
same("/nlbd/stats verdicts", ts.get("verdicts"), stats["verdicts"])
same("/nlbd/stats parse_errors", ts.get("parse_errors"), stats["parse_errors"])
same("/nlbd/stats wire rx", ts.get("ports", {}).get("wire_rx_packets"), stats["ports"]["wire"]["rx_packets"])
tr = tel("/nlbd/rules")
for r in stats["rules"]:
    got = tr.get(str(r["index"]), {})
    for k in ("matched", "accepted", "not_owner", "dropped", "buckets_owned"):
        same(f"/nlbd/rules {r['index']} {k}", got.get(k), r[k])
    if got.get("state") not in ("active", "disabled", "draining", "drained", "stopped") and not got.get("state"):
        problems.append(f"/nlbd/rules {r['index']}: no state")
tc = tel("/nlbd/cluster")
same("/nlbd/cluster state", tc.get("state"), stats["cluster_state"]["state"])
same("/nlbd/cluster epoch", tc.get("epoch"), stats["cluster_state"]["epoch"])
same("/nlbd/cluster members", tc.get("members"), stats["cluster_state"]["members"])

for p in problems: print("  " + p)
print(f"test_telemetry: {len(samples)} samples, {len(type_seen)} families checked; "
      f"{len(problems)} problem(s)")
sys.exit(1 if problems else 0)
PY
echo "test_telemetry: PASS"
