#!/usr/bin/env python3
"""NumPy's side of the 1-D W2 benchmark (peer of `swift run -c release --package-path Benchmarks bench-1d`).

W2^2 between two equal-size uniform samples on the line is the mean squared difference of the
sorted samples, so NumPy's best is two np.sort calls and a mean. Timed, files included:

  * .npy: np.load(x), np.load(y), np.sort both, np.mean((xs - ys) ** 2);
  * CSV (one number per line): np.loadtxt(x), np.loadtxt(y), then the same.

The data: x ~ N(0, 1), y ~ N(0.5, 1.5^2), 10^7 points each (default_rng(7), the same files as
bench_exact.py's 1-D case), written once as .npy and as CSV with Python's shortest round-trip
repr, so both formats hold the same doubles. Run:

    python3 Benchmarks/python/bench_1d.py --data-dir /tmp/wasserstein-bench
    swift run -c release --package-path Benchmarks bench-1d --data-dir /tmp/wasserstein-bench

Each figure is the best of --repeat wall-clock runs, in seconds, with the least process CPU time
of a run beside it (the fairer figure on a busy machine); the parts (reading, sorting, mean) are
timed in separate runs. Output: a table, and with --json one JSON object per line.
"""
import argparse
import json
import os
import sys
import time

import numpy as np


def ensure_data(directory, n):
    os.makedirs(directory, exist_ok=True)
    paths = {side: {ext: os.path.join(directory, f"sorted-{side}-{n}.{ext}") for ext in ("npy", "csv")}
             for side in ("x", "y")}
    if not all(os.path.exists(p) for side in paths.values() for p in side.values()):
        rng = np.random.default_rng(7)
        data = {"x": rng.standard_normal(n), "y": 0.5 + 1.5 * rng.standard_normal(n)}
        for side, values in data.items():
            np.save(paths[side]["npy"], values)
            with open(paths[side]["csv"], "w") as f:
                f.write("\n".join(map(repr, values.tolist())))
                f.write("\n")
    return paths


def best_of(repeat, fn):
    """Best wall-clock time, least process CPU time (all threads) of a run, and the last value."""
    best = least_cpu = float("inf")
    value = None
    for _ in range(repeat):
        t0, c0 = time.perf_counter(), time.process_time()
        value = fn()
        best = min(best, time.perf_counter() - t0)
        least_cpu = min(least_cpu, time.process_time() - c0)
    return (best, least_cpu), value


def w2_squared(xs, ys):
    return float(np.mean((xs - ys) ** 2))


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", default="/tmp/wasserstein-bench")
    parser.add_argument("--n", type=int, default=10_000_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--skip-csv", action="store_true")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    paths = ensure_data(args.data_dir, args.n)
    rows = []

    def load_npy():
        return np.load(paths["x"]["npy"]), np.load(paths["y"]["npy"])

    def load_csv():
        return (np.loadtxt(paths["x"]["csv"], dtype=np.float64, ndmin=1),
                np.loadtxt(paths["y"]["csv"], dtype=np.float64, ndmin=1))

    loaders = [("npy", load_npy)] + ([] if args.skip_csv else [("csv", load_csv)])
    for name, load in loaders:
        seconds, cost = best_of(args.repeat, lambda: w2_squared(*map(np.sort, load())))
        rows.append((f"total ({name}: read, sort, mean)", args.n, seconds, cost))
        seconds, (x, y) = best_of(args.repeat, load)
        rows.append((f"read both ({name})", args.n, seconds, float("nan")))
    seconds, (xs, ys) = best_of(args.repeat, lambda: (np.sort(x), np.sort(y)))
    rows.append(("np.sort both", args.n, seconds, float("nan")))
    seconds, cost = best_of(args.repeat, lambda: w2_squared(xs, ys))
    rows.append(("mean of squares", args.n, seconds, cost))

    print(f"# NumPy {np.__version__}, Python {sys.version.split()[0]}; best of {args.repeat}, wall-clock seconds;"
          " cpu s: least process CPU time of a run")
    print(f"{'step':<34} {'n':>10} {'seconds':>10} {'cpu s':>8} {'W2^2':>20}")
    for step, n, (seconds, cpu), cost in rows:
        print(f"{step:<34} {n:>10} {seconds:>10.4f} {cpu:>8.3f} {cost:>20.15g}")
    if args.json:
        for step, n, (seconds, cpu), cost in rows:
            print(json.dumps({"step": step, "n": n, "seconds": seconds, "cpu_seconds": cpu,
                              "w2_squared": None if cost != cost else cost}))


if __name__ == "__main__":
    main()
