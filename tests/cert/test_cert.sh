#!/usr/bin/env bash
# nlbctl cert end to end: the real nlbctl makes the seed's certificates, the
# openssl tool reads them back; PKCS#12 round trips both ways; `check` runs
# against `openssl s_server` on 127.0.0.1 with a good and a bad certificate.
# Usage: NLBCTL=path/to/nlbctl test_cert.sh   (exit 77: skipped)
set -u

NLBCTL=${NLBCTL:-nlbctl}
command -v openssl >/dev/null || { echo "SKIP: no openssl command"; exit 77; }
NLBCTL=$(command -v "$NLBCTL") || { echo "SKIP: nlbctl not found"; exit 77; }
case $NLBCTL in /*) ;; *) NLBCTL=$PWD/$NLBCTL ;; esac

T=$(mktemp -d /tmp/nlbd-cert-sh.XXXXXX)
PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
    for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null; done
    rm -rf "$T"
}
trap cleanup EXIT INT TERM

FAILS=0
ok() { echo "ok   - $*"; }
bad() { echo "FAIL - $*"; FAILS=$((FAILS + 1)); }
expect() {   # expect "description" command...
    local what=$1; shift
    if "$@" >"$T/out" 2>"$T/err"; then ok "$what"; else bad "$what (rc $?)"; sed 's/^/     /' "$T/out" "$T/err"; fi
}
expect_rc() {   # expect_rc RC "description" command...
    local want=$1 what=$2; shift 2
    "$@" >"$T/out" 2>"$T/err"
    local rc=$?
    if [ "$rc" = "$want" ]; then ok "$what"; else bad "$what (rc $rc, wanted $want)"; sed 's/^/     /' "$T/out" "$T/err"; fi
}
contains() {   # contains FILE TEXT description
    if grep -qF -- "$2" "$1"; then ok "$3"; else bad "$3: '$2' not in:"; sed 's/^/     /' "$1"; fi
}
same() {   # same "description" "$(cmd1)" "$(cmd2)": equal and not empty
    if [ -n "$2" ] && [ "$2" = "$3" ]; then ok "$1"; else bad "$1"; fi
}
lacks() {
    if grep -qF -- "$2" "$1"; then bad "$3: '$2' found in:"; sed 's/^/     /' "$1"; else ok "$3"; fi
}

NAMES=(--cluster mail.ehlo.dk --node cas01.ehlo.dk,cas02.ehlo.dk --netbios CAS01,CAS02)
SANS=(mail.ehlo.dk autodiscover.ehlo.dk cas01.ehlo.dk cas02.ehlo.dk CAS01 CAS02)
cd "$T" || exit 1

# ---- request: key + SAN CSR ---------------------------------------------------
expect "request makes a key and a CSR" "$NLBCTL" cert request "${NAMES[@]}" --key req.key --csr req.csr
expect "openssl verifies the CSR's signature" openssl req -in req.csr -noout -verify
openssl req -in req.csr -noout -text >req.txt 2>&1
for n in "${SANS[@]}"; do contains req.txt "DNS:$n" "CSR asks for $n"; done
contains req.txt "CN = mail.ehlo.dk" "CSR subject is the cluster name"
[ "$(stat -c %a req.key)" = 600 ] && ok "key file is mode 0600" || bad "key file mode $(stat -c %a req.key)"
expect_rc 1 "request refuses to overwrite the key" "$NLBCTL" cert request "${NAMES[@]}" --key req.key --csr req.csr
contains err "already exists" "the refusal says why"
expect "request --key-type rsa --no-autodiscover" "$NLBCTL" cert request "${NAMES[@]}" --no-autodiscover \
    --key-type rsa --key rsa.key --csr rsa.csr
openssl req -in rsa.csr -noout -text >rsa.txt 2>&1
contains rsa.txt "3072 bit" "RSA key is 3072 bits"
lacks rsa.txt "autodiscover" "--no-autodiscover leaves autodiscover out"

# ---- issue: a new lab CA and a leaf -------------------------------------------
expect "issue with a new lab CA" "$NLBCTL" cert issue "${NAMES[@]}" --cert good.crt --key good.key \
    --new-ca ca.crt --new-ca-key ca.key --days 30
openssl x509 -in good.crt -noout -ext subjectAltName >san.txt 2>&1
for n in "${SANS[@]}"; do contains san.txt "DNS:$n" "certificate covers $n"; done
openssl x509 -in good.crt -noout -ext basicConstraints,keyUsage,extendedKeyUsage >ext.txt 2>&1
contains ext.txt "CA:FALSE" "leaf is CA:FALSE"
contains ext.txt "Digital Signature" "leaf has digitalSignature"
contains ext.txt "TLS Web Server Authentication" "leaf has serverAuth"
openssl x509 -in ca.crt -noout -ext basicConstraints,keyUsage >caext.txt 2>&1
contains caext.txt "CA:TRUE" "CA is CA:TRUE"
contains caext.txt "Certificate Sign" "CA has keyCertSign"
expect "openssl verify: leaf chains to the lab CA" openssl verify -CAfile ca.crt -purpose sslserver good.crt
expect "openssl checks the host name" openssl verify -CAfile ca.crt -verify_hostname mail.ehlo.dk good.crt
# not before = now - 5 min (within a minute)
nb=$(date -d "$(openssl x509 -in good.crt -noout -startdate | cut -d= -f2)" +%s)
now=$(date +%s)
d=$((now - nb))
[ "$d" -ge 290 ] && [ "$d" -le 400 ] && ok "valid from 5 minutes ago ($d s)" || bad "not before is $d s ago"
s1=$(openssl x509 -in good.crt -noout -serial)

# A CSR signed by the existing CA.
expect "issue from a CSR with an existing CA" "$NLBCTL" cert issue "${NAMES[@]}" --csr req.csr --cert fromcsr.crt \
    --ca ca.crt --ca-key ca.key
expect "the CSR's certificate verifies" openssl verify -CAfile ca.crt fromcsr.crt
same "the certificate holds the CSR's key" "$(openssl x509 -in fromcsr.crt -noout -pubkey)" "$(openssl pkey -in req.key -pubout)"
[ "$(openssl x509 -in fromcsr.crt -noout -serial)" != "$s1" ] && ok "serials differ" || bad "same serial twice"

# The seed's mistake: a certificate for the node name only, and one from another CA.
expect "issue a node-only certificate" "$NLBCTL" cert issue --cluster cas01.ehlo.dk --no-autodiscover \
    --netbios CAS01 --cert node.crt --key node.key --ca ca.crt --ca-key ca.key
expect "issue from another CA" "$NLBCTL" cert issue "${NAMES[@]}" --cert other.crt --key other.key \
    --new-ca otherca.crt --new-ca-key otherca.key
expect_rc 1 "issue refuses when the certificate exists" "$NLBCTL" cert issue "${NAMES[@]}" --cert good.crt \
    --key fresh.key --new-ca fresh-ca.crt --new-ca-key fresh-ca.key
[ ! -e fresh.key ] && [ ! -e fresh-ca.crt ] && ok "and writes nothing" || bad "a refused issue wrote files"
expect_rc 2 "issue without a CA is a usage error" "$NLBCTL" cert issue "${NAMES[@]}" --cert x.crt --key x.key

# ---- PKCS#12 ------------------------------------------------------------------
printf 'Secret pass 1\n' >pw
printf 'not it\n' >wrongpw
expect "export to PKCS#12" "$NLBCTL" cert export --cert good.crt --key good.key --ca ca.crt --out good.p12 \
    --password-file pw
[ "$(stat -c %a good.p12)" = 600 ] && ok "PKCS#12 file is mode 0600" || bad "p12 mode $(stat -c %a good.p12)"
expect "openssl reads our PKCS#12" openssl pkcs12 -in good.p12 -passin file:pw -noout
expect "import on the second node" "$NLBCTL" cert import --in good.p12 --password-file pw --cert node2.crt \
    --key node2.key --ca node2-ca.crt
same "imported certificate is the same" "$(openssl x509 -in node2.crt -noout -fingerprint -sha256)" \
    "$(openssl x509 -in good.crt -noout -fingerprint -sha256)"
same "imported key is the same" "$(openssl pkey -in node2.key -pubout)" "$(openssl pkey -in good.key -pubout)"
same "imported CA is the same" "$(openssl x509 -in node2-ca.crt)" "$(openssl x509 -in ca.crt)"
expect_rc 1 "import with a wrong password fails" "$NLBCTL" cert import --in good.p12 --password-file wrongpw \
    --cert w.crt --key w.key
contains err "wrong password" "and says so"
[ ! -e w.key ] && ok "nothing written on a wrong password" || bad "a key was written"
NLBCTL_P12_PASSWORD='Secret pass 1' expect "import with the password from the environment" \
    "$NLBCTL" cert import --in good.p12 --cert env.crt --key env.key
expect "export with --password (allowed)" "$NLBCTL" cert export --cert good.crt --key good.key --out argv.p12 \
    --password 'x y'
contains err "warning" "--password warns"
# The other direction: a PKCS#12 made by the openssl tool (as from another system).
openssl pkcs12 -export -in good.crt -inkey good.key -certfile ca.crt -passout file:pw -out fromopenssl.p12 2>/dev/null
expect "import a PKCS#12 made by openssl" "$NLBCTL" cert import --in fromopenssl.p12 --password-file pw \
    --cert o.crt --key o.key
same "same certificate from openssl's file" "$(cat o.crt 2>/dev/null)" "$(cat node2.crt)"

# ---- check, offline -----------------------------------------------------------
expect "check --cert good" "$NLBCTL" cert check --cert good.crt --name mail.ehlo.dk --ca ca.crt \
    --also autodiscover.ehlo.dk,cas01.ehlo.dk
contains out "OK: the certificate in good.crt covers mail.ehlo.dk" "says OK in words"
expect_rc 1 "check --cert node-only certificate" "$NLBCTL" cert check --cert node.crt --name mail.ehlo.dk --ca ca.crt
contains out "does not cover mail.ehlo.dk (it covers: cas01.ehlo.dk, CAS01)" "names what it covers"

# ---- check against openssl s_server --------------------------------------------
port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
pick_port() {
    local p
    for _ in $(seq 1 50); do
        p=$((20000 + RANDOM % 20000))
        port_free "$p" && { echo "$p"; return; }
    done
    echo 0
}
start_server() {   # start_server PORT s_server-args...
    local port=$1; shift
    openssl s_server -accept "127.0.0.1:$port" -quiet -www "$@" >"$T/s_server.$port.log" 2>&1 </dev/null &
    PIDS+=($!)
    for _ in $(seq 1 50); do
        port_free "$port" || return 0
        sleep 0.1
    done
    echo "s_server on $port did not start:"; cat "$T/s_server.$port.log"
    return 1
}

P1=$(pick_port); start_server "$P1" -cert good.crt -key good.key || bad "s_server (good) started"
P2=$(pick_port); start_server "$P2" -cert node.crt -key node.key || bad "s_server (node-only) started"
P3=$(pick_port); start_server "$P3" -cert other.crt -key other.key || bad "s_server (other CA) started"
# SNI: the default certificate is the node-only one; mail.ehlo.dk gets the good one.
P4=$(pick_port); start_server "$P4" -cert node.crt -key node.key -servername mail.ehlo.dk -cert2 good.crt \
    -key2 good.key || bad "s_server (SNI) started"

expect "check good server" timeout 20 "$NLBCTL" cert check --connect "127.0.0.1:$P1" --name mail.ehlo.dk --ca ca.crt \
    --also autodiscover.ehlo.dk
contains out "OK: the certificate presented by 127.0.0.1:$P1 covers mail.ehlo.dk, autodiscover.ehlo.dk and chains to" \
    "OK sentence"
contains out "valid until" "OK says until when"
expect_rc 1 "check node-only server" timeout 20 "$NLBCTL" cert check --connect "127.0.0.1:$P2" --name mail.ehlo.dk \
    --ca ca.crt
contains out "PROBLEM: the certificate presented by 127.0.0.1:$P2 does not cover mail.ehlo.dk (it covers: cas01.ehlo.dk, CAS01) - browsers will show a security alert" \
    "PROBLEM sentence for the missing name"
expect_rc 1 "check server with a certificate of another CA" timeout 20 "$NLBCTL" cert check \
    --connect "127.0.0.1:$P3" --name mail.ehlo.dk --ca ca.crt
contains out "does not chain to the expected CA (CN = nlbd lab CA for mail.ehlo.dk" "says it does not chain to the CA"
expect_rc 1 "check --json of the bad server" timeout 20 "$NLBCTL" --json cert check --connect "127.0.0.1:$P2" \
    --name mail.ehlo.dk --ca ca.crt
if /usr/bin/python3 -c 'import json,sys; j=json.load(open(sys.argv[1])); assert j["ok"] is False; assert j["problems"][0]["problem"]=="name_not_covered"; assert "cas01.ehlo.dk" in j["covers"]' "$T/out" 2>/dev/null; then
    ok "--json says name_not_covered"
else
    bad "--json output"; sed 's/^/     /' "$T/out"
fi
expect "check with SNI mail.ehlo.dk gets the good certificate" timeout 20 "$NLBCTL" cert check \
    --connect "127.0.0.1:$P4" --name mail.ehlo.dk --ca ca.crt
expect_rc 1 "check with SNI cas01.ehlo.dk gets the node certificate" timeout 20 "$NLBCTL" cert check \
    --connect "127.0.0.1:$P4" --name mail.ehlo.dk --sni cas01.ehlo.dk --ca ca.crt
contains out "SNI sent: cas01.ehlo.dk" "reports the SNI it sent"
expect_rc 1 "check several services at once (the VIP and every node)" timeout 30 "$NLBCTL" cert check \
    --connect "127.0.0.1:$P1,127.0.0.1:$P2" --name mail.ehlo.dk --ca ca.crt
contains out "SUMMARY: 1 of 2 services have a certificate problem: 127.0.0.1:$P2" "summary names the bad one"
expect "check several good services" timeout 30 "$NLBCTL" cert check --connect "127.0.0.1:$P1,127.0.0.1:$P4" \
    --name mail.ehlo.dk --ca ca.crt
contains out "SUMMARY: all 2 services present a good certificate" "summary says all good"
if command -v socat >/dev/null; then   # a plain-text service (SMTP banner) where TLS is expected
    P5=$(pick_port)
    timeout 20 socat "TCP-LISTEN:$P5,bind=127.0.0.1,reuseaddr,fork" SYSTEM:'echo 220 smtp ready; sleep 1' \
        >/dev/null 2>&1 &
    PIDS+=($!)
    for _ in $(seq 1 30); do port_free "$P5" || break; sleep 0.1; done
    expect_rc 1 "check a plain-text service" timeout 20 "$NLBCTL" cert check --connect "127.0.0.1:$P5" \
        --name mail.ehlo.dk --ca ca.crt --timeout 2000
    contains out "TLS handshake with 127.0.0.1:$P5 failed" "says the TLS handshake failed"
fi
DEAD=$(pick_port)
expect_rc 1 "check a port nobody listens on" timeout 20 "$NLBCTL" cert check --connect "127.0.0.1:$DEAD" \
    --name mail.ehlo.dk --ca ca.crt --timeout 2000
contains out "cannot connect" "says it cannot connect"

echo
if [ "$FAILS" -ne 0 ]; then echo "$FAILS check(s) failed"; exit 1; fi
echo "all checks passed"
