#!/usr/bin/env python3
"""POT's side of the exact-W2 benchmark (peer of `swift run -c release --package-path Benchmarks bench-exact`).

It writes the benchmark data as .npy files (NumPy's default_rng with fixed seeds), unless they
already exist, and times POT on them:

  * ot.emd2(a, b, ot.dist(x, y)) on 2-D Gaussian clouds, n = m = 1000 and 2000, uniform weights,
    cost matrix included (x ~ N(0, I), y ~ N((1, 0), I));
  * ot.wasserstein_1d(x, y, p=2) on 10^7 points per side (x ~ N(0, 1), y ~ N(0.5, 1.5^2)).

The Swift benchmark reads the same files, so both sides solve identical problems. Run:

    python3 Benchmarks/python/bench_exact.py --data-dir /tmp/wasserstein-bench
    swift run -c release --package-path Benchmarks bench-exact --data-dir /tmp/wasserstein-bench

Each figure is the best of --repeat runs (after one untimed warm-up for the small problems),
in seconds of wall-clock time. Output: a table, and with --json one JSON object per line.
"""
import argparse
import json
import os
import sys
import time

import numpy as np
import ot


def ensure_data(directory, sizes, n1d):
    os.makedirs(directory, exist_ok=True)
    for n in sizes:
        xf = os.path.join(directory, f"exact-x-{n}.npy")
        yf = os.path.join(directory, f"exact-y-{n}.npy")
        if not (os.path.exists(xf) and os.path.exists(yf)):
            rng = np.random.default_rng(1000 + n)
            x = rng.standard_normal((n, 2))
            y = rng.standard_normal((n, 2)) + np.array([1.0, 0.0])
            np.save(xf, x)
            np.save(yf, y)
    xf = os.path.join(directory, f"sorted-x-{n1d}.npy")
    yf = os.path.join(directory, f"sorted-y-{n1d}.npy")
    if n1d > 0 and not (os.path.exists(xf) and os.path.exists(yf)):
        rng = np.random.default_rng(7)
        np.save(xf, rng.standard_normal(n1d))
        np.save(yf, 0.5 + 1.5 * rng.standard_normal(n1d))


def best_of(repeat, fn):
    best = float("inf")
    value = None
    for _ in range(repeat):
        t0 = time.perf_counter()
        value = fn()
        best = min(best, time.perf_counter() - t0)
    return best, value


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", default="/tmp/wasserstein-bench")
    parser.add_argument("--sizes", type=int, nargs="*", default=[1000, 2000])
    parser.add_argument("--n1d", type=int, default=10_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    ensure_data(args.data_dir, args.sizes, args.n1d)
    rows = []
    for n in args.sizes:
        x = np.load(os.path.join(args.data_dir, f"exact-x-{n}.npy"))
        y = np.load(os.path.join(args.data_dir, f"exact-y-{n}.npy"))
        a = np.full(n, 1.0 / n)
        b = np.full(len(y), 1.0 / len(y))
        # numItermax raised from POT's default 1e5 so that no size stops early.
        run = lambda: ot.emd2(a, b, ot.dist(x, y), numItermax=10**8)
        run()
        seconds, cost = best_of(args.repeat, run)
        rows.append(("pot emd2 + dist", n, seconds, float(cost)))
    if args.n1d > 0:
        x = np.load(os.path.join(args.data_dir, f"sorted-x-{args.n1d}.npy"))
        y = np.load(os.path.join(args.data_dir, f"sorted-y-{args.n1d}.npy"))
        seconds, cost = best_of(max(1, min(args.repeat, 2)), lambda: ot.wasserstein_1d(x, y, p=2))
        rows.append(("pot wasserstein_1d", args.n1d, seconds, float(cost)))
    print(f"# POT {ot.__version__}, NumPy {np.__version__}, Python {sys.version.split()[0]}")
    print(f"{'method':<22} {'n':>10} {'seconds':>10} {'W2^2':>20}")
    for method, n, seconds, cost in rows:
        print(f"{method:<22} {n:>10} {seconds:>10.4f} {cost:>20.15g}")
    if args.json:
        for method, n, seconds, cost in rows:
            print(json.dumps({"method": method, "n": n, "seconds": seconds, "w2_squared": cost}))


if __name__ == "__main__":
    main()
