#!/usr/bin/env bash
# Builds and runs a libFuzzer target.
#   tests/fuzz/run_fuzz.sh [seconds] [target]   (default 30 s, target parse)
# Targets: parse (parse_frame), heartbeat (heartbeat codec; links -lcrypto),
# json (the control protocol's JSON), pipeline (core::process_burst on hosts
# 1-3 of one cluster; seeded with bursts of the parse seeds).
# For parse: compiles tests/fuzz/fuzz_parse.cpp + src/core/{parse,types,decide,
# snapshot,rule_table,bucket_map,hash}.cpp with
# clang++ -fsanitize=fuzzer,address,undefined into a temp dir, seeds a working
# corpus from tests/fuzz/corpus/ (the committed seeds are never modified), runs
# for the given time and exits non-zero on a crash, leak or invariant failure
# (the crashing input is kept and printed). Without clang++ / libFuzzer it
# prints SKIP and exits 77, meson's skip: setup.sh installs clang and
# libclang-rt-14-dev, so on a set-up machine it never skips, and scripts/test.sh
# run as root fails on any skip instead of counting this as a pass.
set -euo pipefail

seconds="${1:-30}"
target="${2:-parse}"
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"

cxx=""
for c in "${FUZZ_CXX:-}" clang++-14 clang++; do
    if [[ -n "$c" ]] && command -v "$c" >/dev/null 2>&1; then cxx="$c"; break; fi
done
if [[ -z "$cxx" ]]; then
    echo "SKIP: clang++ not found (need clang with libFuzzer); fuzzing not run"
    exit 77
fi

work="$(mktemp -d "${TMPDIR:-/tmp}/nlbd-fuzz.XXXXXX")"
keep=0
cleanup() { if [[ $keep -eq 0 ]]; then rm -rf "$work"; fi; }
trap cleanup EXIT

# Is libFuzzer usable at all? (clang without compiler-rt: SKIP, not FAIL)
printf 'extern "C" int LLVMFuzzerTestOneInput(const unsigned char*, unsigned long){return 0;}\n' \
    > "$work/probe.cpp"
if ! "$cxx" -fsanitize=fuzzer "$work/probe.cpp" -o "$work/probe" >/dev/null 2>&1; then
    echo "SKIP: $cxx cannot link -fsanitize=fuzzer (libFuzzer runtime missing)"
    exit 77
fi

flags=(-std=c++20 -g -O1 -fno-omit-frame-pointer
       -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined
       -I"$root/include")
case "$target" in
    parse) srcs=("$here/fuzz_parse.cpp" "$root/src/core/parse.cpp" "$root/src/core/types.cpp"
                 "$root/src/core/decide.cpp" "$root/src/core/snapshot.cpp" "$root/src/core/rule_table.cpp"
                 "$root/src/core/bucket_map.cpp" "$root/src/core/hash.cpp")
           libs=(); seeds="$here/corpus" ;;
    heartbeat) srcs=("$here/fuzz_heartbeat.cpp" "$root/src/cluster/heartbeat.cpp"
                     "$root/src/core/types.cpp")
               libs=(-lcrypto); seeds="$here/corpus_heartbeat" ;;
    json) srcs=("$here/fuzz_json.cpp" "$root/src/ctl/json.cpp")
          libs=(); seeds="$here/corpus_json" ;;
    pipeline) srcs=("$here/fuzz_pipeline.cpp" "$root/src/core/parse.cpp" "$root/src/core/types.cpp"
                    "$root/src/core/decide.cpp" "$root/src/core/snapshot.cpp" "$root/src/core/rule_table.cpp"
                    "$root/src/core/bucket_map.cpp" "$root/src/core/hash.cpp" "$root/src/core/conn_table.cpp"
                    "$root/src/core/frag_table.cpp" "$root/src/core/persist.cpp")
              libs=(); seeds="" ;;  # bursts made from the parse seeds below
    *) echo "unknown fuzz target '$target' (parse | heartbeat | json | pipeline)" >&2; exit 2 ;;
esac
echo "fuzz: building fuzz_$target with $cxx"
"$cxx" "${flags[@]}" "${srcs[@]}" "${libs[@]}" -o "$work/fuzz_$target"

mkdir -p "$work/corpus" "$work/artifacts"
if [[ -n $seeds ]] && compgen -G "$seeds/*" >/dev/null; then cp "$seeds"/* "$work/corpus/"; fi
if [[ $target == pipeline ]]; then
    # Bursts (2-byte big-endian length + frame, fuzz_pipeline.cpp) of the
    # parse seeds: each alone, all in one burst, and the fragment seeds in
    # both orders.
    record() { local n; n=$(stat -c %s "$1"); printf "\\x$(printf %02x $((n >> 8)))\\x$(printf %02x $((n & 255)))"; cat "$1"; }
    for f in "$here"/corpus/*; do record "$f" >"$work/corpus/one_$(basename "$f")"; done
    for f in "$here"/corpus/*; do record "$f"; done >"$work/corpus/all"
    for f in ipv4_frag_first ipv4_frag_later; do record "$here/corpus/$f"; done >"$work/corpus/frag4_in_order"
    for f in ipv4_frag_later ipv4_frag_first; do record "$here/corpus/$f"; done >"$work/corpus/frag4_later_first"
fi

echo "fuzz: running for ${seconds}s ($(ls "$work/corpus" | wc -l) seeds)"
set +e
UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
"$work/fuzz_$target" -max_total_time="$seconds" -max_len=4096 -timeout=10 \
    -print_final_stats=1 -artifact_prefix="$work/artifacts/" \
    ${FUZZ_DICT:+-dict="$FUZZ_DICT"} "$work/corpus" 2>&1 | tail -n 40
rc=${PIPESTATUS[0]}
set -e

if [[ $rc -ne 0 ]]; then
    keep=1
    echo "FAIL: fuzzer exited with $rc; crashing inputs kept in $work/artifacts:"
    for f in "$work"/artifacts/*; do
        [[ -e "$f" ]] || continue
        echo "  $f"
        od -An -tx1 -v "$f" | head -n 20
    done
    echo "reproduce: $work/fuzz_$target <crash-file>"
    exit 1
fi
echo "PASS: no crash in ${seconds}s"
