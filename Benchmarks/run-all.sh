#!/usr/bin/env bash
# Runs every benchmark of Docs/Benchmarks.md, Swift and its Python peer (POT / NumPy / SciPy)
# in the same session, and keeps the raw output.
#
#     Benchmarks/run-all.sh [RESULTS_DIR]          # default: /tmp/wasserstein-benchmarks
#     SKIP_NATIVE=1 Benchmarks/run-all.sh          # without the -target-cpu native variant
#     SKIP_PYTHON=1 Benchmarks/run-all.sh          # Swift only
#
# Two release builds: the default x86-64 target (SSE2, what a plain `swift build -c release`
# gives) in Benchmarks/.build, and `-Xswiftc -target-cpu -Xswiftc native` in
# Benchmarks/.build-native. Python peers need `pip install pot scipy numpy`.
# Run it on an otherwise idle machine: every figure is wall-clock time.
set -euo pipefail
cd "$(dirname "$0")/.."
results=${1:-/tmp/wasserstein-benchmarks}
data=$results/data
mkdir -p "$results" "$data"

machine() {
    echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
    echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//') x $(nproc)"
    echo "flags: $(grep -m1 '^flags' /proc/cpuinfo | grep -o -w 'avx2\|avx512f\|fma' | sort -u | tr '\n' ' ')"
    echo "memory: $(free -g | awk '/Mem:/ {print $2}') GB"
    swift --version 2>&1 | head -1
    python3 -c 'import numpy, ot, scipy; print("numpy", numpy.__version__, "POT", ot.__version__, "scipy", scipy.__version__)' 2>/dev/null \
        || echo "python peers: not installed"
}
machine | tee "$results/machine.txt"

variants=("default:Benchmarks/.build:")
if [ -z "${SKIP_NATIVE:-}" ]; then
    variants+=("native:Benchmarks/.build-native:-Xswiftc -target-cpu -Xswiftc native")
fi

for v in "${variants[@]}"; do
    IFS=: read -r name path flags <<< "$v"
    echo "== build ($name)"
    # shellcheck disable=SC2086
    swift build -c release --package-path Benchmarks --build-path "$path" $flags 2>&1 | tail -1
done

run() {  # run NAME COMMAND...: tee the output into RESULTS/NAME.txt
    local name=$1; shift
    echo "== $name"
    "$@" 2>&1 | tee "$results/$name.txt"
}

if [ -z "${SKIP_PYTHON:-}" ]; then
    # The exact peer writes the shared .npy data the Swift exact benchmark reads.
    run exact-pot python3 Benchmarks/python/bench_exact.py --data-dir "$data/exact"
    # The 1-D peer writes the .npy and CSV data bench-1d reads (NumPy: load or loadtxt, sort, mean).
    run 1d-numpy python3 Benchmarks/python/bench_1d.py --data-dir "$data/exact"
fi
for v in "${variants[@]}"; do
    IFS=: read -r name path _ <<< "$v"
    bin=$path/release
    if [ -d "$data/exact" ]; then
        run "exact-swift-$name" "$bin/bench-exact" --data-dir "$data/exact"
    else
        run "exact-swift-$name" "$bin/bench-exact"
    fi
    if [ -f "$data/exact/sorted-x-10000000.csv" ]; then
        run "1d-swift-$name" "$bin/bench-1d" --data-dir "$data/exact"
    fi
    run "meanfield-swift-$name" "$bin/bench-meanfield"
    run "jko-swift-$name" "$bin/bench-jko"
done
if [ -z "${SKIP_PYTHON:-}" ]; then
    # The Sinkhorn script runs both sides itself (it calls the default-target bench-sinkhorn).
    run sinkhorn-both python3 Benchmarks/python/bench_sinkhorn.py --data "$data/sinkhorn"
    run meanfield-numpy python3 Benchmarks/python/bench_meanfield.py
    run jko-python python3 Benchmarks/python/bench_jko.py
else
    run sinkhorn-swift-default python3 Benchmarks/python/bench_sinkhorn.py --data "$data/sinkhorn" --no-pot
fi
if [ -z "${SKIP_NATIVE:-}" ] && [ -d "$data/sinkhorn" ]; then
    for n in 2000; do
        for eps in 0.1 0.01; do
            run "sinkhorn-swift-native-n$n-eps$eps" Benchmarks/.build-native/release/bench-sinkhorn --data "$data/sinkhorn" --n $n --eps $eps
        done
    done
fi
# The mean-field compare of Docs/CrossCheck.md (M = 500, d = 20, horizon 2), end to end.
swift build -c release --product wasserstein 2>&1 | tail -1
run compare-relu-d20 /usr/bin/time -f "wall %e s, max RSS %M KB" .build/release/wasserstein compare \
    Docs/crosscheck/relu-d20.json --out "$results/compare-relu-d20"
echo "results in $results"
