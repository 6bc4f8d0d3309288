#!/usr/bin/env bash
# Remote control over mutual TLS, end to end: the real nlbd (one static host,
# net_null ports: no NIC, no hugepages) with [control] remote_listen on
# 127.0.0.1:<free port>, and the real `nlbctl --remote`. Certificates are
# made here with the openssl CLI: a CA, the server's certificate, an admin
# client, a read-only client, a client of another CA, an expired client and
# a client whose CN is not allowed. Checks what the clients get (exit codes,
# output) and what nlbd logs for every refusal.
#
#   tests/remote/run_remote.sh BUILDDIR
#
# Environment: NLBD, NLBCTL (binaries; default BUILDDIR/src/daemon/nlbd and
# BUILDDIR/src/ctl/nlbctl), KEEP=1 (keep the work directory).
set -euo pipefail

build=${1:?usage: run_remote.sh BUILDDIR}
build=$(cd "$build" && pwd)
nlbd=${NLBD:-$build/src/daemon/nlbd}
nlbctl=${NLBCTL:-$build/src/ctl/nlbctl}
for f in "$nlbd" "$nlbctl"; do
    [[ -x $f ]] || { echo "run_remote: $f not built" >&2; exit 1; }
done
command -v openssl > /dev/null || { echo "run_remote: the openssl CLI is missing" >&2; exit 1; }

work=$(mktemp -d "${TMPDIR:-/tmp}/nlbd-remote.XXXXXX")
nlbd_pid=
cleanup() {
    if [[ -n $nlbd_pid ]]; then kill "$nlbd_pid" 2>/dev/null || true; wait "$nlbd_pid" 2>/dev/null || true; fi
    if [[ ${KEEP:-0} == 1 ]]; then echo "run_remote: kept $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT
cd "$work"

failures=0
pass() { echo "ok   - $*"; }
fail() { echo "FAIL - $*"; failures=$((failures + 1)); }

# ---- certificates (openssl CLI) ---------------------------------------------
q() { "$@" > /dev/null 2>&1 || { echo "run_remote: failed: $*" >&2; "$@"; exit 1; }; }
mkca() {   # mkca NAME CN
    q openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$1.key" -out "$1.pem" \
        -days 30 -subj "/O=nlbd remote test/CN=$2" \
        -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign"
}
mkcert() {   # mkcert NAME CN CA EKU [SAN]
    local ext="$1.ext"
    {
        echo "basicConstraints=critical,CA:FALSE"
        echo "keyUsage=critical,digitalSignature"
        echo "extendedKeyUsage=$4"
        [[ -n ${5:-} ]] && echo "subjectAltName=$5"
    } > "$ext"
    q openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$1.key" -out "$1.csr" \
        -subj "/O=nlbd remote test/CN=$2"
    q openssl x509 -req -in "$1.csr" -CA "$3.pem" -CAkey "$3.key" -CAcreateserial -days 30 \
        -extfile "$ext" -out "$1.pem"
}
mkca ca "nlbd remote test CA"
mkca otherca "some other CA"
mkcert server nlbd.test ca serverAuth "DNS:nlbd.test,IP:127.0.0.1"
mkcert admin ops1 ca clientAuth
mkcert reader mon1 ca clientAuth
mkcert stranger ops1 otherca clientAuth
mkcert intruder intruder ca clientAuth
# Expired: `openssl ca` takes explicit dates (x509 -req cannot, in 3.0).
mkdir -p cadb && : > cadb/index.txt && echo 01 > cadb/serial
cat > ca.cnf <<EOF
[ca]
default_ca = test
[test]
database = cadb/index.txt
serial = cadb/serial
new_certs_dir = cadb
default_md = sha256
policy = any
copy_extensions = none
[any]
commonName = supplied
organizationName = optional
[client]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = clientAuth
EOF
q openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout expired.key -out expired.csr \
    -subj "/O=nlbd remote test/CN=ops1"
q openssl ca -batch -config ca.cnf -cert ca.pem -keyfile ca.key -in expired.csr -out expired.pem \
    -startdate 20200101000000Z -enddate 20200201000000Z -extensions client
openssl x509 -in expired.pem -noout -checkend 0 > /dev/null && { echo "run_remote: expired.pem is not expired" >&2; exit 1; }

# ---- nlbd --------------------------------------------------------------------
port=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cat > cluster.toml <<EOF
[cluster]
name = "nlbd.test"
vips = ["192.0.2.10"]
static_members = [1]

[host]
id = 1

[ports.wire]
device = "net_null0,no-rx=1"

[ports.local]
device = "net_null1,no-rx=1"

[control]
remote_listen = "127.0.0.1:$port"
remote_cert = "server.pem"
remote_key = "server.key"
remote_ca = "ca.pem"
remote_allow = { "CN=ops1" = "admin", "CN=mon1" = "read" }
EOF
"$nlbd" --config cluster.toml --check-config > check.log 2>&1 || { cat check.log; fail "nlbd --check-config accepts [control]"; exit 1; }
grep -q "remote control: mutual TLS on 127.0.0.1:$port" check.log && pass "--check-config shows the remote listener" \
    || fail "--check-config summary: $(cat check.log)"
sed 's/remote_key = "server.key"/remote_key = "admin.key"/' cluster.toml > badkey.toml
if "$nlbd" --config badkey.toml --check-config > badkey.log 2>&1; then fail "--check-config accepted a key of another certificate"
elif grep -q "does not match the certificate" badkey.log; then pass "--check-config names a key that does not match"
else fail "--check-config with a wrong key: $(cat badkey.log)"; fi

timeout -k 5 90 "$nlbd" --config cluster.toml --run-for 60 --ctl-socket "$work/ctl.sock" \
    -- --no-huge -m 256 --no-shconf --no-pci --log-level=lib.eal:error > nlbd.log 2>&1 &
nlbd_pid=$!
for _ in $(seq 1 200); do
    grep -q "remote control (mutual TLS) on" nlbd.log && [[ -S $work/ctl.sock ]] && break
    kill -0 "$nlbd_pid" 2>/dev/null || break
    sleep 0.1
done
if ! grep -q "remote control (mutual TLS) on" nlbd.log; then
    cat nlbd.log
    echo "run_remote: nlbd did not start its remote control listener" >&2
    exit 1
fi
pass "nlbd listens for remote control on 127.0.0.1:$port"

# ctl WHO [nlbctl args...]: runs nlbctl --remote as WHO, sets rc and out.
ctl() {
    local who=$1 ca=ca
    shift
    [[ $who == stranger ]] && ca=ca   # the server is ours; only the client is foreign
    set +e
    out=$("$nlbctl" --remote "127.0.0.1:$port" --cert "$who.pem" --key "$who.key" --ca "$ca.pem" \
        --timeout 5000 "$@" 2>&1)
    rc=$?
    set -e
}
expect() {   # expect RC PATTERN DESCRIPTION
    if [[ $rc == "$1" ]] && grep -qE -- "$2" <<< "$out"; then pass "$3"
    else fail "$3 (exit $rc, wanted $1 and /$2/): $out"; fi
}
logged() {   # logged PATTERN DESCRIPTION (waits up to 5 s for the line)
    for _ in $(seq 1 50); do
        grep -qE -- "$1" nlbd.log && { pass "logged: $2"; return; }
        sleep 0.1
    done
    fail "not logged: $2 (/$1/)"
}

# Accepted.
ctl admin query;                              expect 0 "[Ss]tate|converged|host" "admin runs query"
ctl admin --server-name nlbd.test params;     expect 0 "nlbd.test" "admin with --server-name checks the server name"
ctl admin stop;                               expect 0 "stopped" "admin runs stop"
ctl reader --json query;                      expect 0 "stopped" "read-only client sees the new state"
ctl admin start;                              expect 0 "started|converg" "admin runs start"
ctl reader stats;                             expect 0 "." "read-only client runs stats"
logged "accepted 127\.0\.0\.1:[0-9]+: CN=ops1 \(admin\), TLSv1\.3" "admin accepted over TLS 1.3"

# Refused.
ctl reader drainstop;                         expect 1 "not authorised" "read-only client refused drainstop"
logged "refused 127\.0\.0\.1:[0-9]+: CN=mon1 \(read\) not authorised for command drainstop" "command refusal"
ctl intruder query;                           expect 1 "not authorised" "unlisted CN refused"
logged "refused 127\.0\.0\.1:[0-9]+: client certificate CN=intruder is not in remote_allow" "unlisted CN"
ctl stranger query;                           expect 3 "refused our certificate|closed" "client of another CA refused"
logged "refused 127\.0\.0\.1:[0-9]+: unknown CA .*some other CA" "unknown CA"
ctl expired query;                            expect 3 "expired" "expired client refused"
logged "refused 127\.0\.0\.1:[0-9]+: expired client certificate" "expired certificate"
ctl admin --server-name wrong.example query;  expect 3 "server-name" "server certificate for another name refused by nlbctl"

# No client certificate (openssl s_client without -cert).
set +e
answer=$(printf '{"command":"stop"}\n' | timeout 10 openssl s_client -connect "127.0.0.1:$port" -CAfile ca.pem \
    -quiet 2>/dev/null)
set -e
if grep -q '"ok":true' <<< "$answer"; then fail "a client without a certificate got an answer: $answer"
else pass "client without a certificate gets no answer"; fi
logged "refused 127\.0\.0\.1:[0-9]+: no client certificate" "no client certificate"

# Plain-text client: JSON straight over TCP.
set +e
answer=$(timeout 10 bash -c 'exec 3<>/dev/tcp/127.0.0.1/'"$port"'; printf "{\"command\":\"stop\"}\n" >&3; head -n1 <&3')
set -e
if grep -q '"ok":false' <<< "$answer" && grep -q 'TLS' <<< "$answer"; then pass "plain-text client told to use TLS"
else fail "plain-text client answer: $answer"; fi
logged "refused 127\.0\.0\.1:[0-9]+: plain-text client" "plain-text client"

# Nothing refused reached the daemon: it is still started (no stop ran).
ctl admin --json query;                       expect 0 "started" "refused clients changed nothing"

# The local UNIX socket stays root-only and still works.
mode=$(stat -c %a "$work/ctl.sock")
[[ $mode == 600 ]] && pass "local control socket is mode 600" || fail "local control socket mode $mode"
set +e
out=$("$nlbctl" --socket "$work/ctl.sock" params 2>&1); rc=$?
set -e
expect 0 "nlbd.test" "local nlbctl still works"

# ---- reload: the listener, its allow list and the idle policy are live ------
local_ctl() { set +e; out=$("$nlbctl" --socket "$work/ctl.sock" "$@" 2>&1); rc=$?; set -e; }
# idle_sleeps of worker 0, from `nlbctl --json stats`.
idle_sleeps() {
    local_ctl --json stats
    /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["workers"]["per_worker"][0]["idle_sleeps"])' <<< "$out"
}
port2=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
sed -i -e "s/^remote_listen = .*/remote_listen = \"127.0.0.1:$port2\"/" \
    -e 's/^remote_allow = .*/remote_allow = { "CN=ops1" = "admin" }/' cluster.toml
printf '\n[dataplane]\nidle_policy = "adaptive"\n' >> cluster.toml
local_ctl reload
expect 0 "control.remote_listen: 127.0.0.1:$port -> 127.0.0.1:$port2" "reload moves the remote listener (live)"
grep -q "dataplane.idle_policy: poll -> adaptive" <<< "$out" && pass "reload prints the idle policy change" \
    || fail "reload output lacks the idle policy change: $out"
port_old=$port
port=$port2
ctl admin query;                              expect 0 "[Ss]tate|converged|host" "admin reaches the new listener"
ctl reader query;                             expect 1 "not authorised" "CN removed from remote_allow by reload is refused"
set +e
answer=$(timeout 5 bash -c 'exec 3<>/dev/tcp/127.0.0.1/'"$port_old" 2>&1); old_rc=$?
set -e
[[ $old_rc != 0 ]] && pass "the old listener is closed" || fail "the old port $port_old still accepts connections"
local_ctl --json params
grep -q '"idle_policy": *"adaptive"' <<< "$out" && pass "params: idle_policy adaptive after reload" \
    || fail "params after reload: $out"
# The worker, idle on net_null, now sleeps between empty polls.
s1=$(idle_sleeps); sleep 1; s2=$(idle_sleeps)
(( s2 > s1 )) && pass "adaptive idle policy in force: worker idle sleeps $s1 -> $s2" \
    || fail "worker does not sleep after switching to adaptive ($s1 -> $s2)"
# Back to poll, and mon1 allowed again, by a reload sent through the remote
# listener itself: the listener it replaces is serving that very command.
sed -i -e 's/^idle_policy = "adaptive"/idle_policy = "poll"/' \
    -e 's/^remote_allow = .*/remote_allow = { "CN=ops1" = "admin", "CN=mon1" = "read" }/' cluster.toml
t0=$(date +%s%N)
ctl admin reload
expect 0 "dataplane.idle_policy: adaptive -> poll" "reload over remote control, back to poll"
ctl reader query
t1=$(date +%s%N)
expect 0 "[Ss]tate|converged|host" "the listener replaced by a reload through it serves the CN added back"
(( (t1 - t0) / 1000000 < 3000 )) && pass "reload through the listener it replaces: $(( (t1 - t0) / 1000000 )) ms" \
    || fail "reload through the listener it replaces took $(( (t1 - t0) / 1000000 )) ms"
sleep 0.2
s1=$(idle_sleeps); sleep 1; s2=$(idle_sleeps)
(( s2 == s1 )) && pass "poll idle policy in force: no idle sleeps ($s1 -> $s2)" \
    || fail "worker still sleeps with idle_policy = poll ($s1 -> $s2)"

kill -TERM "$nlbd_pid" 2>/dev/null || true
wait "$nlbd_pid" 2>/dev/null || true
nlbd_pid=
if [[ $failures != 0 ]]; then
    echo "--- nlbd log:"
    grep -E "remote|ctl" nlbd.log | tail -n 40
    echo "run_remote: $failures check(s) failed"
    exit 1
fi
echo "run_remote: all checks passed"
