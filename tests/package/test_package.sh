#!/usr/bin/env bash
# The Debian packages, built and checked as an operator would receive them
# (docs/install.md, debian/):
#   1. copies the source tree (git ls-files) to a temporary directory and runs
#      `dpkg-buildpackage -b -us -uc` there (DEB_BUILD_OPTIONS="nocheck
#      parallel=2"), as an unprivileged build would;
#   2. lists each package (dpkg-deb -c) and checks what it must contain, its
#      conffiles, its dependencies and its version (= meson's);
#   3. runs lintian on the result: no error or warning that debian/*.lintian-
#      overrides does not explain;
#   4. extracts the packages to a temporary root and, from there:
#      - `systemd-analyze verify` on nlbd.service and an nlbd@.service instance
#        (ExecStart pointed at the extracted nlbd, man pages from the root);
#      - every man page renders with `man --warnings -l` and no warning, and
#        documents every option, command and configuration key the extracted
#        binaries accept (asked from the binaries themselves);
#      - the extracted nlbd accepts the shipped example with each shipped NIC
#        profile (--check-config);
#      - the bash completion loads and completes verbs, options, cert
#        subcommands and the rule targets of a (stand-in) running daemon;
#      - the Prometheus alert rules are valid YAML of the right shape and use
#        only metrics nlbd exports.
# Prints every failed check and exits 1 if there is one; 77 (skip) only when
# a tool scripts/setup.sh installs is missing.
#   tests/package/test_package.sh [SOURCE_ROOT]
# NLBD_PACKAGE_OUT=DIR keeps the packages, the .changes and the build log
# there (the temporary directory is always removed). NLBD_PACKAGE_DEBS=DIR
# checks the packages of an earlier run kept in DIR instead of building (for
# work on the checks themselves; CI always builds).
set -euo pipefail

src=$(cd "${1:-$(dirname "$0")/../..}" && pwd)
# meson test sets MALLOC_PERTURB_ for its tests; the package is built and
# checked as an operator would, with the tools' normal allocator.
unset MALLOC_PERTURB_
here=$(cd "$(dirname "$0")" && pwd)
start_s=$SECONDS

for tool in dpkg-buildpackage dpkg-deb dh lintian systemd-analyze man python3 git; do
  if ! command -v "$tool" >/dev/null; then
    echo "test_package: SKIP: $tool is not installed (scripts/setup.sh installs it)" >&2
    exit 77
  fi
done
if ! python3 -c 'import yaml' 2>/dev/null; then
  echo "test_package: SKIP: python3 yaml is not installed (python3-yaml)" >&2
  exit 77
fi

tmp=$(mktemp -d /tmp/nlbd-package.XXXXXX)
fake_pid=""
cleanup() {
  if [ -n "$fake_pid" ]; then kill "$fake_pid" 2>/dev/null || true; fi
  if [ -n "${NLBD_PACKAGE_OUT:-}" ]; then
    mkdir -p "$NLBD_PACKAGE_OUT"
    cp "$tmp"/*.deb "$tmp"/*.ddeb "$tmp"/*.changes "$tmp"/*.buildinfo "$tmp"/build.log \
      "$NLBD_PACKAGE_OUT"/ 2>/dev/null || true
  fi
  rm -rf "$tmp"
}
trap cleanup EXIT

failures=0
mark=0  # failures before the current group of checks
fail() {
  echo "FAIL: $*" >&2
  failures=$((failures + 1))
}
# Ends a group of checks: "ok" when none of them failed since the last group.
ok() {
  if [ "$failures" -eq "$mark" ]; then echo "ok: $*"; else echo "not ok: $*"; fi
  mark=$failures
}

# --- 1. build ----------------------------------------------------------------
if [ -n "${NLBD_PACKAGE_DEBS:-}" ]; then
  echo "test_package: NLBD_PACKAGE_DEBS: checking the packages in $NLBD_PACKAGE_DEBS, not building"
  cp "$NLBD_PACKAGE_DEBS"/*.deb "$NLBD_PACKAGE_DEBS"/*.changes "$NLBD_PACKAGE_DEBS"/*.buildinfo "$tmp"/
else
tree=$tmp/nlbd
mkdir -p "$tree"
if git -C "$src" rev-parse --git-dir >/dev/null 2>&1; then
  # Tracked files and new ones not yet committed (never build outputs); a
  # tracked file deleted in the working tree is left out.
  git -C "$src" ls-files -z --cached --others --exclude-standard |
    while IFS= read -r -d '' f; do
      if [ -e "$src/$f" ] || [ -L "$src/$f" ]; then printf '%s\0' "$f"; fi
    done >"$tmp/files"
  tar -C "$src" --null -T "$tmp/files" -cf - | tar -C "$tree" -xf -
else
  (cd "$src" && tar --exclude='./build*' --exclude='./.build*' -cf - .) | tar -C "$tree" -xf -
fi
for must in debian/rules debian/control meson.build src/daemon/main.cpp; do
  [ -f "$tree/$must" ] || { echo "test_package: $must was not copied from $src" >&2; exit 1; }
done

echo "test_package: dpkg-buildpackage -b -us -uc in $tree"
build_log=$tmp/build.log
if ! (cd "$tree" && DEB_BUILD_OPTIONS="nocheck parallel=2" dpkg-buildpackage -b -us -uc) >"$build_log" 2>&1; then
  tail -n 60 "$build_log" >&2
  echo "FAIL: dpkg-buildpackage failed (log above)" >&2
  exit 1
fi
echo "test_package: built in $((SECONDS - start_s)) s"
ok "dpkg-buildpackage -b -us -uc"
fi

version=$(sed -n "s/^ *version *: *'\([^']*\)'.*/\1/p" "$src/meson.build" | head -n1)
arch=$(dpkg --print-architecture)
changes=$tmp/nlbd_${version}_${arch}.changes
[ -f "$changes" ] || fail "no $changes (meson version $version; built: $(cd "$tmp" && echo *.changes))"

# --- 2. contents ---------------------------------------------------------------
declare -A expect
expect[nlbd]="./usr/sbin/nlbd ./lib/systemd/system/nlbd.service ./lib/systemd/system/nlbd@.service
  ./etc/nlbd/cluster.toml.example ./usr/share/nlbd/prometheus/nlbd-alerts.yml
  ./usr/share/man/man8/nlbd.8.gz ./usr/share/man/man5/nlbd.toml.5.gz
  ./usr/share/doc/nlbd/copyright ./usr/share/doc/nlbd/README.md ./usr/share/doc/nlbd/install.md"
for f in "$src"/configs/nic/*.toml; do
  expect[nlbd]+=" ./etc/nlbd/nic/$(basename "$f")"
done
expect[nlbctl]="./usr/bin/nlbctl ./usr/share/bash-completion/completions/nlbctl
  ./usr/share/man/man8/nlbctl.8.gz ./usr/share/doc/nlbctl/copyright ./usr/share/doc/nlbctl/nlbctl.md"
expect[nlbd-tools]="./usr/bin/nlbd-pcapgen ./usr/bin/nlbd-replay-check ./usr/bin/nlbd-pcap-split
  ./usr/share/man/man1/nlbd-pcapgen.1.gz ./usr/share/man/man1/nlbd-replay-check.1.gz
  ./usr/share/man/man1/nlbd-pcap-split.1.gz"

root=$tmp/root
mkdir -p "$root"
for pkg in nlbd nlbctl nlbd-tools; do
  deb=$tmp/${pkg}_${version}_${arch}.deb
  if [ ! -f "$deb" ]; then
    fail "package $pkg was not built ($deb)"
    continue
  fi
  echo "== dpkg-deb -c $(basename "$deb")"
  dpkg-deb -c "$deb" | tee "$tmp/$pkg.list" | awk '{print "   ", $1, $6, $7, $8}'
  awk '{print $6}' "$tmp/$pkg.list" >"$tmp/$pkg.paths"
  for path in ${expect[$pkg]}; do
    grep -qxF "$path" "$tmp/$pkg.paths" || fail "$pkg does not contain $path"
  done
  [ "$(dpkg-deb -f "$deb" Version)" = "$version" ] ||
    fail "$pkg version $(dpkg-deb -f "$deb" Version) is not meson's $version (debian/changelog)"
  dpkg-deb -x "$deb" "$root"
done
ok "package contents"

nlbd_deb=$tmp/nlbd_${version}_${arch}.deb
depends=$(dpkg-deb -f "$nlbd_deb" Depends)
for dep in "nlbctl (= $version)" librte-meta-mempool librte-eal libhwloc libssl3 libtomlplusplus; do
  [[ $depends == *"$dep"* ]] || fail "nlbd Depends lacks $dep: $depends"
done
[[ $(dpkg-deb -f "$nlbd_deb" Recommends) == *dpdk* ]] || fail "nlbd does not recommend dpdk"
[[ $(dpkg-deb -f "$tmp/nlbctl_${version}_${arch}.deb" Depends) != *librte* ]] ||
  fail "nlbctl depends on DPDK; it must install on a management machine without it"
dpkg-deb --ctrl-tarfile "$nlbd_deb" | tar -xOf - ./conffiles >"$tmp/conffiles"
for f in /etc/nlbd/cluster.toml.example /etc/nlbd/nic/intel-ice.toml; do
  grep -qxF "$f" "$tmp/conffiles" || fail "$f is not a conffile of nlbd"
done
if dpkg-deb --ctrl-tarfile "$nlbd_deb" | tar -xOf - ./postinst >"$tmp/postinst" 2>/dev/null; then
  grep -q 'deb-systemd-helper.* enable .*nlbd.service' "$tmp/postinst" ||
    fail "nlbd's postinst does not enable nlbd.service"
  if grep -q 'restart' "$tmp/postinst"; then
    fail "nlbd's postinst restarts nlbd on upgrade (dh_installsystemd --no-stop-on-upgrade)"
  fi
else
  fail "nlbd has no postinst (dh_installsystemd)"
fi
ok "dependencies, conffiles, maintainer scripts"

# --- 3. lintian ------------------------------------------------------------------
echo "== lintian $(basename "$changes")"
if lintian --fail-on error,warning --display-info "$changes" >"$tmp/lintian.log" 2>&1; then
  sed 's/^/    /' "$tmp/lintian.log"
else
  sed 's/^/    /' "$tmp/lintian.log" >&2
  fail "lintian found errors or warnings (above); fix them or explain them in debian/*.lintian-overrides"
fi
ok "lintian: no error or warning left unexplained"

# --- 4a. systemd units -------------------------------------------------------------
nlbd_bin=$root/usr/sbin/nlbd
units=$tmp/units
mkdir -p "$units"
for unit in nlbd.service nlbd@.service; do
  f=$root/lib/systemd/system/$unit
  [ -f "$f" ] || { fail "no $unit in the package"; continue; }
  exec_bin=$(sed -n 's/^ExecStart=\([^ ]*\).*/\1/p' "$f")
  [ "$exec_bin" = /usr/sbin/nlbd ] || fail "$unit runs '$exec_bin', not /usr/sbin/nlbd"
  sed "s#^ExecStart=/usr/sbin/nlbd #ExecStart=$nlbd_bin #" "$f" >"$units/$unit"
done
# systemd-analyze verify checks the syntax, every directive, that ExecStart is
# executable, that the units it names exist and that Documentation=man: pages
# exist (MANPATH: the package's).
if (cd "$units" && MANPATH=$root/usr/share/man systemd-analyze verify ./nlbd.service ./nlbd@test.service) \
  >"$tmp/verify.log" 2>&1 && ! grep -q . "$tmp/verify.log"; then
  :
else
  sed 's/^/    /' "$tmp/verify.log" >&2
  fail "systemd-analyze verify (above)"
fi
grep -q '^Type=notify$' "$units/nlbd.service" || fail "nlbd.service is not Type=notify"
grep -q '^ConditionPathExists=/etc/nlbd/cluster.toml$' "$units/nlbd.service" ||
  fail "nlbd.service does not wait for /etc/nlbd/cluster.toml"
grep -q -- '--config /etc/nlbd/%i.toml' "$units/nlbd@.service" ||
  fail "nlbd@.service does not run /etc/nlbd/%i.toml"
ok "systemd units: systemd-analyze verify nlbd.service nlbd@test.service"

# --- 4b. man pages -------------------------------------------------------------------
pages=("$root"/usr/share/man/man*/*.gz)
[ "${#pages[@]}" -eq 6 ] || fail "expected 6 man pages, found ${#pages[@]}: ${pages[*]}"
for page in "${pages[@]}"; do
  name=$(basename "$page" .gz)
  if MANWIDTH=80 man --warnings -l "$page" >"$tmp/$name.txt" 2>"$tmp/$name.err" &&
    ! grep -q . "$tmp/$name.err" && [ "$(wc -l <"$tmp/$name.txt")" -gt 20 ]; then
    :
  else
    sed 's/^/    /' "$tmp/$name.err" >&2
    fail "man page $name does not render cleanly"
  fi
  # Unhyphenated, unjustified text for the searches below.
  MANWIDTH=200 man --nh --nj -l "$page" >"$tmp/$name.plain" 2>/dev/null
done
ok "man pages render with man --warnings -l"

# Every option of `nlbd --help` is in nlbd(8).
mapfile -t opts < <("$nlbd_bin" --help | grep -o -- '--[a-z][a-z-]*' | sort -u)
((${#opts[@]} >= 8)) || fail "nlbd --help lists only ${#opts[@]} options"
for o in "${opts[@]}"; do
  grep -qF -- "$o" "$tmp/nlbd.8.plain" || fail "nlbd(8) does not describe $o (nlbd --help has it)"
done
# Every command and option of `nlbctl --help` and `nlbctl cert --help` is in nlbctl(8).
nlbctl_bin=$root/usr/bin/nlbctl
mapfile -t verbs < <("$nlbctl_bin" --help | sed -n '/^commands/,/^exit status/s/^  \([a-z][a-z0-9-]*\).*/\1/p')
((${#verbs[@]} >= 10)) || fail "nlbctl --help lists only ${#verbs[@]} commands"
for v in "${verbs[@]}"; do
  grep -qE "^ +(nlbctl +)?$v( |\$)" "$tmp/nlbctl.8.plain" || fail "nlbctl(8) does not describe the command $v"
done
mapfile -t opts < <({ "$nlbctl_bin" --help; "$nlbctl_bin" cert --help; } | grep -o -- '--[a-z][a-z-]*' | sort -u)
for o in "${opts[@]}"; do
  grep -qF -- "$o" "$tmp/nlbctl.8.plain" || fail "nlbctl(8) does not describe $o (nlbctl --help has it)"
done
# Every key the extracted nlbd accepts is in nlbd.toml(5): each table's keys
# are asked from nlbd itself, with an unknown key in that table ("unknown
# key; allowed: a, b, c").
cfg=$tmp/cfg
mkdir -p "$cfg"
base_cluster() {
  # $1: table that gets the unknown key ("" = top level)
  local t=$1
  [ -z "$t" ] && echo 'zz_unknown = 1'
  printf '[cluster]\nname = "t"\nvips = ["192.0.2.10"]\nnic_profile = "nic.toml"\n'
  [ "$t" = cluster ] && echo 'zz_unknown = 1'
  printf '[host]\nid = 1\n'
  [ "$t" = host ] && echo 'zz_unknown = 1'
  printf '[dataplane]\n'
  [ "$t" = dataplane ] && echo 'zz_unknown = 1'
  printf '[ports]\n'
  [ "$t" = ports ] && echo 'zz_unknown = 1'
  printf '[ports.wire]\ndevice = "net_null0"\n'
  [ "$t" = ports.wire ] && echo 'zz_unknown = 1'
  printf '[ports.local]\ndevice = "net_null1"\n'
  printf '[[port_rule]]\nports = "443"\n'
  [ "$t" = port_rule ] && echo 'zz_unknown = 1'
  printf '[telemetry]\n'
  [ "$t" = telemetry ] && echo 'zz_unknown = 1'
  printf '[control]\n'
  [ "$t" = control ] && echo 'zz_unknown = 1'
  [ "$t" = announce ] && printf '[announce]\nzz_unknown = 1\n'
  return 0
}
allowed_keys() {
  # $1: what the error must name; prints the allowed keys, one a line
  local out
  out=$("$nlbd_bin" --config "$cfg/c.toml" --check-config 2>&1) && { echo "accepted"; return; }
  [[ $out == *"zz_unknown: unknown key; allowed: "* ]] || { echo "unexpected: $out"; return; }
  echo "${out##*allowed: }" | tr ',' '\n' | tr -d ' '
}
printf '[nic]\n[eal]\n' >"$cfg/nic.toml"
declare -a keys=()
for table in "" cluster host dataplane ports ports.wire port_rule telemetry control announce; do
  base_cluster "$table" >"$cfg/c.toml"
  mapfile -t got < <(allowed_keys)
  if ((${#got[@]} < 1)) || [[ ${got[0]} == accepted || ${got[0]} == unexpected* ]]; then
    fail "an unknown key in [${table:-top level}] did not give the allowed keys: ${got[*]}"
    continue
  fi
  keys+=("${got[@]}")
done
base_cluster none >"$cfg/c.toml"
for table in "" nic eal; do
  { [ -z "$table" ] && echo 'zz_unknown = 1'
    echo '[nic]'; [ "$table" = nic ] && echo 'zz_unknown = 1'
    echo '[eal]'; [ "$table" = eal ] && echo 'zz_unknown = 1'
    true; } >"$cfg/nic.toml"
  mapfile -t got < <(allowed_keys)
  if ((${#got[@]} < 1)) || [[ ${got[0]} == accepted || ${got[0]} == unexpected* ]]; then
    fail "an unknown key in the NIC profile's [${table:-top level}] did not give the allowed keys: ${got[*]}"
    continue
  fi
  keys+=("${got[@]}")
done
((${#keys[@]} > 60)) || fail "nlbd named only ${#keys[@]} configuration keys"
for k in $(printf '%s\n' "${keys[@]}" | sort -u); do
  # A key is documented as a tag ("   name = string", "   rx_queues, tx_queues = integer")
  # or, for the tables, as a heading ("[cluster]", "[[port_rule]]", "[ports.wire]").
  grep -qE "^ +([a-z_]+, )*$k(, [a-z_]+)* = |\\[+([a-z]+\\.)?${k}[].]" "$tmp/nlbd.toml.5.plain" ||
    fail "nlbd.toml(5) does not describe the key '$k' (nlbd accepts it)"
done
ok "man pages describe every option, command and key (${#keys[@]} keys)"

# --- 4c. the shipped configuration -------------------------------------------------
example=$root/etc/nlbd/cluster.toml.example
if "$nlbd_bin" --config "$example" --check-config >"$tmp/check.log" 2>&1 &&
  tail -n1 "$tmp/check.log" | grep -qx 'configuration OK'; then
  :
else
  sed 's/^/    /' "$tmp/check.log" >&2
  fail "nlbd --check-config rejects the shipped example"
fi
for nic in "$root"/etc/nlbd/nic/*.toml; do
  "$nlbd_bin" --config "$example" --nic "$nic" --check-config >"$tmp/check.log" 2>&1 ||
    fail "nlbd --check-config rejects the shipped NIC profile $(basename "$nic"): $(tail -n1 "$tmp/check.log")"
done
state_file=$(sed -n 's/^state_file *= *"\(.*\)"/\1/p' "$example")
[[ $state_file == /var/lib/nlbd/* ]] ||
  fail "the example's state_file '$state_file' is not under /var/lib/nlbd (the units' StateDirectory)"
ok "nlbd --check-config on /etc/nlbd/cluster.toml.example with every shipped NIC profile"

# --- 4d. bash completion -------------------------------------------------------------
completion=$root/usr/share/bash-completion/completions/nlbctl
sock=$tmp/fake.sock
complete_test() {
  # $1: the line; prints the completions, one a line
  PATH=$root/usr/bin:$PATH bash --norc --noprofile -c '
    source "$1" || exit 9
    COMP_LINE=$2; COMP_POINT=${#2}
    read -r -a COMP_WORDS <<<"$2"; COMP_CWORD=$((${#COMP_WORDS[@]} - 1))
    [[ $2 == *" " ]] && COMP_CWORD=${#COMP_WORDS[@]}
    _nlbctl
    printf "%s\n" "${COMPREPLY[@]}"' _ "$completion" "$1"
}
expect_completion() {
  # $1: line; $2: expected completions (sorted, space-separated)
  local got
  got=$(complete_test "$1" 2>&1 | sort | tr '\n' ' ')
  got=${got% }
  [ "$got" = "$2" ] || fail "completion of '$1': got '$got', expected '$2'"
}
load_err=$(bash --norc --noprofile -c 'source "$1" && complete -p nlbctl' _ "$completion" 2>&1 >/dev/null) ||
  fail "the completion does not load: $load_err"
[ -z "$load_err" ] || fail "the completion prints while loading: $load_err"
[ "$(bash --norc --noprofile -c 'source "$1"; complete -p nlbctl' _ "$completion")" = "complete -F _nlbctl nlbctl" ] ||
  fail "the completion does not register _nlbctl for nlbctl"
expect_completion "nlbctl " "$(printf '%s\n' "${verbs[@]}" | sort | tr '\n' ' ' | sed 's/ $//')"
expect_completion "nlbctl dr" "drain drainstop"
expect_completion "nlbctl --so" "--socket"
expect_completion "nlbctl cert is" "issue"
expect_completion "nlbctl cert issue --key-t" "--key-type"
expect_completion "nlbctl cert request --key-type " "ec rsa"
expect_completion "nlbctl --socket $tmp/nothing-here enable " "all"
python3 "$here/fake_nlbd.py" "$sock" dynamic >"$tmp/fake.out" 2>&1 &
fake_pid=$!
for _ in $(seq 50); do grep -q ready "$tmp/fake.out" 2>/dev/null && break; sleep 0.1; done
expect_completion "nlbctl --socket $sock enable " \
  "10.0.0.10:443 10.0.0.10:all 443 80 8080 [2001:db8::1]:80 [2001:db8::1]:all all"
expect_completion "nlbctl --socket=$sock --json drain 10.0.0.10:" "443 all"
expect_completion "nlbctl --socket $sock disable 80" "80 8080"
expect_completion "nlbctl --socket $sock query " ""
kill "$fake_pid"
wait "$fake_pid" 2>/dev/null || true
python3 "$here/fake_nlbd.py" "$sock" static >"$tmp/fake.out" 2>&1 &
fake_pid=$!
for _ in $(seq 50); do grep -q ready "$tmp/fake.out" 2>/dev/null && break; sleep 0.1; done
expect_completion "nlbctl --socket $sock disable " \
  "10.0.0.10:443 10.0.0.10:all 443 80 8080 [2001:db8::1]:80 [2001:db8::1]:all all"
kill "$fake_pid"
wait "$fake_pid" 2>/dev/null || true
fake_pid=""
ok "bash completion"

# --- 4e. Prometheus alert rules --------------------------------------------------------
if python3 - "$root/usr/share/nlbd/prometheus/nlbd-alerts.yml" "$src/docs/telemetry.md" \
  "$src/src/daemon/prometheus.cpp" <<'PY'; then
import re, sys, yaml

rules_file, telemetry_md, prometheus_cpp = sys.argv[1:]
problems = []
with open(rules_file) as f:
    doc = yaml.safe_load(f)

# Families nlbd documents (docs/telemetry.md's table; {a,b} expanded) ...
documented = set()
for line in open(telemetry_md):
    if not line.startswith("| `nlbd_"):
        continue
    for name in re.findall(r"`(nlbd_[a-z0-9_{},<>]+)`", line.split("|")[1]):
        m = re.match(r"(.*)\{([a-z0-9_,]+)\}(.*)", name)
        documented.update([m.group(1) + x + m.group(3) for x in m.group(2).split(",")] if m else [name])
# ... and the names src/daemon/prometheus.cpp writes: literals, or a literal
# prefix completed at run time (nlbd_heartbeats_ + counter + _total).
source = open(prometheus_cpp).read()
literals = set(re.findall(r'"(nlbd_[a-z0-9_]*)"', source))

def exported(name):
    if name in literals:
        return True
    return name in documented and any(p.endswith("_") and name.startswith(p) for p in literals)

if not isinstance(doc, dict) or not isinstance(doc.get("groups"), list) or not doc["groups"]:
    sys.exit(f"{rules_file}: no groups")
names = set()
count = 0
for g in doc["groups"]:
    if not g.get("name") or not isinstance(g.get("rules"), list) or not g["rules"]:
        problems.append(f"group {g.get('name')!r} has no name or no rules")
        continue
    for r in g["rules"]:
        count += 1
        a = r.get("alert")
        where = f"alert {a!r} in group {g['name']!r}"
        if not a or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", a):
            problems.append(f"{where}: bad or missing alert name")
        if a in names:
            problems.append(f"{where}: duplicate alert name")
        names.add(a)
        expr = r.get("expr")
        if not isinstance(expr, str) or not expr.strip():
            problems.append(f"{where}: no expr")
            continue
        if "for" in r and not re.fullmatch(r"\d+[smhd]", str(r["for"])):
            problems.append(f"{where}: bad for: {r['for']!r}")
        if r.get("labels", {}).get("severity") not in ("critical", "warning", "info"):
            problems.append(f"{where}: severity is not critical, warning or info")
        ann = r.get("annotations", {})
        if not ann.get("summary") or not ann.get("description"):
            problems.append(f"{where}: needs annotations summary and description")
        depth = 0
        for ch in expr:
            depth += {"(": 1, ")": -1}.get(ch, 0)
            if depth < 0:
                break
        if depth != 0:
            problems.append(f"{where}: unbalanced parentheses in expr")
        for metric in set(re.findall(r"\b(nlbd_[a-z0-9_]+)", expr)):
            if not exported(metric):
                problems.append(f"{where}: nlbd does not export {metric}")
        other = set(re.findall(r"\b([a-z_]+)\s*(?:\{|\s*[=<>!]=?\s*\d)", expr)) - {"nlbd"}
        for m in other:
            if not m.startswith("nlbd_") and m not in ("up",):
                problems.append(f"{where}: metric {m} is neither nlbd's nor Prometheus' up")
if count < 8:
    problems.append(f"only {count} alerts")
for p in problems:
    print(f"{rules_file}: {p}", file=sys.stderr)
sys.exit(1 if problems else 0)
PY
  :
else
  fail "Prometheus alert rules (above)"
fi
ok "Prometheus alert rules"

echo "test_package: $((SECONDS - start_s)) s, $failures failure(s)"
[ "$failures" -eq 0 ]
