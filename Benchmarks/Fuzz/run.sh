#!/usr/bin/env bash
# Coverage-guided fuzzing (libFuzzer, `swiftc -sanitize=fuzzer,address`) of the readers of the
# files the command takes: CSV tables, NumPy .npy arrays, experiment and reduced specs (JSON).
#
#     Benchmarks/Fuzz/run.sh [SECONDS] [TARGET...]   # targets: csv npy spec (default: all three,
#                                                    # one after the other, 60 s each)
#     Benchmarks/Fuzz/run.sh build                   # build only
#
# The library modules are compiled straight from Sources/ with swiftc (optimised, whole module,
# fuzzer coverage and AddressSanitizer), so no SwiftPM build of the main package is touched.
# Each target starts from its seed corpus in Benchmarks/Fuzz/corpus/<target> and keeps what it
# finds in $FUZZ_WORK/corpus/<target> (default /tmp/wasserstein-fuzz); a crash, a failed
# invariant, a leak, a run over 10 s or over 2 GB saves the input as
# $FUZZ_WORK/artifacts/<target>/crash-*, and the script exits 1.
# Thrown errors are the readers' answer to bad input, never a finding.
#
# Environment: FUZZ_BUILD (default Benchmarks/Fuzz/.build), FUZZ_WORK (default
# /tmp/wasserstein-fuzz), FUZZ_FLAGS (more libFuzzer flags, e.g. "-fork=1 -ignore_crashes=1"
# to carry on after a finding), FUZZ_NO_BUILD=1 (use the executables already built).
set -euo pipefail
cd "$(dirname "$0")/../.."
build=${FUZZ_BUILD:-Benchmarks/Fuzz/.build}
work=${FUZZ_WORK:-/tmp/wasserstein-fuzz}
fuzz=Benchmarks/Fuzz
mkdir -p "$build"

# -swift-version 6 as the package's tools version; -enable-testing lets the CSV target check
# the internal DecimalParser against strtod; -package-name as SwiftPM gives it, so that the
# modules see each other's `package` declarations.
flags=(-O -wmo -swift-version 6 -parse-as-library -sanitize=fuzzer,address -g -package-name wasserstein
       -I "$build" -I Sources/CGLPK)

# C targets with sources (Sources/C*/ holding .c files and include/module.modulemap): compiled
# with the toolchain's clang, instrumented the same way, and linked into every fuzz executable.
c_objects=()
c_targets() {
    local dir file object
    for dir in Sources/C*/; do
        [ -d "$dir/include" ] || continue
        flags+=(-I "$dir/include")
        for file in "$dir"*.c; do
            [ -e "$file" ] || continue
            object="$build/$(basename "$dir")-$(basename "$file" .c).o"
            clang -O2 -g -fsanitize=fuzzer-no-link,address -I "$dir/include" -c "$file" -o "$object"
            c_objects+=("$object")
        done
    done
}

module() {  # module NAME: Sources/NAME as an object and a .swiftmodule in $build
    # shellcheck disable=SC2046
    swiftc "${flags[@]}" -enable-testing -module-name "$1" -emit-module -emit-module-path "$build/$1.swiftmodule" \
        -c -o "$build/$1.o" $(find "Sources/$1" -name '*.swift' | sort)
}

target() {  # target NAME SOURCE MODULES...: the fuzz executable $build/fuzz-NAME
    local name=$1 source=$2
    shift 2
    local objects=()
    for m in "$@"; do objects+=("$build/$m.o"); done
    swiftc "${flags[@]}" -module-name "Fuzz${name^^}" "$fuzz/Sources/Support.swift" "$fuzz/Sources/$source" \
        "${objects[@]}" ${c_objects[@]+"${c_objects[@]}"} -lglpk -use-ld=lld -o "$build/fuzz-$name"
}

if [ -z "${FUZZ_NO_BUILD:-}" ]; then
    start=$(date +%s)
    echo "== build ($build)"
    c_targets
    module Wasserstein
    target csv FuzzCSV.swift Wasserstein
    target npy FuzzNPY.swift Wasserstein
    module GradientFlows
    module MeanField
    module Experiments
    target spec FuzzSpec.swift Wasserstein GradientFlows MeanField Experiments
    echo "build: $(( $(date +%s) - start )) s"
fi
# A failed invariant is a fatalError: libFuzzer's own report is enough, without Swift's
# backtracer (which trips AddressSanitizer when it reads the crashed process).
export SWIFT_BACKTRACE=enable=no

if [ "${1:-}" = build ]; then exit 0; fi
seconds=${1:-60}
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(csv npy spec)

status=0
for t in "${targets[@]}"; do
    echo "== fuzz-$t for $seconds s"
    mkdir -p "$work/corpus/$t" "$work/artifacts/$t"
    rc=0
    # shellcheck disable=SC2086
    "$build/fuzz-$t" "$work/corpus/$t" "$fuzz/corpus/$t" -dict="$fuzz/dictionaries/$t.dict" \
        -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -max_len=8192 -print_final_stats=1 \
        -artifact_prefix="$work/artifacts/$t/" ${FUZZ_FLAGS:-} > "$work/fuzz-$t.log" 2>&1 || rc=$?
    # The last status line (executions, coverage, corpus), and any report.
    grep -E '^#[0-9]+' "$work/fuzz-$t.log" | tail -n 1 || true
    grep -E '^(==[0-9]+== ?ERROR|.*fuzz invariant failed|SUMMARY)' "$work/fuzz-$t.log" || true
    if [ "$rc" != 0 ] || [ -n "$(ls -A "$work/artifacts/$t")" ]; then
        echo "fuzz-$t: FINDINGS (exit $rc) in $work/artifacts/$t, log $work/fuzz-$t.log"
        status=1
    fi
done
exit $status
