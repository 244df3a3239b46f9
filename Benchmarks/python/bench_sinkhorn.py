#!/usr/bin/env python3
"""Entropic OT benchmark: POT 0.9.7 next to the Swift `bench-sinkhorn` on the same data.

Data: 2-D Gaussian clouds, x ~ N(0, I), y ~ N((1, 0.5), I), uniform weights, generated here
with NumPy's PCG64 (seed 2024 + n) and written as .npy files that the Swift binary reads, so
both sides solve exactly the same problems. Cost |x - y|^2 (no 1/2), eps absolute.

POT is timed on `ot.sinkhorn2(a, b, M, eps, stopThr=tol)` (kernel mode, the default) with M
precomputed (the time of `ot.dist` is reported separately); its stopping rule is the L2 norm
of the column-marginal error checked every 10 iterations. The Swift solver stops on the L1
error of both marginals of the returned plan, a stricter test. After timing, the L1 error of
POT's plan is measured (untimed) so that silent failures at small eps show.

Usage (from the repository root):
    swift build -c release --package-path Benchmarks --product bench-sinkhorn
    python3 Benchmarks/python/bench_sinkhorn.py                 # targets + sweeps, both sides
    python3 Benchmarks/python/bench_sinkhorn.py --quick         # only the two target cases
    python3 Benchmarks/python/bench_sinkhorn.py --no-pot        # Swift only (e.g. n = 8000)
Memory of the Swift solver at n = 8000:
    /usr/bin/time -v Benchmarks/.build/release/bench-sinkhorn --data /tmp/sinkhorn-bench --n 8000 --eps 0.1
Each case is timed as the best of --repeat runs (default 3; 1 for n >= 4000).
"""
import argparse
import json
import os
import subprocess
import sys
import time
import warnings

import numpy as np
import ot

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DEFAULT_BIN = os.path.join(ROOT, "Benchmarks", ".build", "release", "bench-sinkhorn")
# POT's kernel mode can stall above the tolerance (its own round-off floor) or break down at
# small eps; the cap keeps such cases to about a minute. Non-convergence shows in "warnings".
POT_MAX_ITER = 20_000


def clouds(n):
    rng = np.random.default_rng(2024 + n)
    x = rng.normal(size=(n, 2))
    y = rng.normal(size=(n, 2)) + np.array([1.0, 0.5])
    return np.ascontiguousarray(x), np.ascontiguousarray(y)


def write_data(directory, sizes):
    os.makedirs(directory, exist_ok=True)
    for n in sizes:
        x, y = clouds(n)
        np.save(os.path.join(directory, f"x_{n}.npy"), x)
        np.save(os.path.join(directory, f"y_{n}.npy"), y)


def l1_marginal_error(P, a, b):
    return float(np.abs(P.sum(1) - a).sum() + np.abs(P.sum(0) - b).sum())


def pot_kernel(n, eps, tol, repeat):
    x, y = clouds(n)
    a = np.full(n, 1.0 / n)
    b = np.full(n, 1.0 / n)
    t0 = time.perf_counter()
    M = ot.dist(x, y)
    t_dist = time.perf_counter() - t0
    best = float("inf")
    value = None
    niter = None
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for _ in range(repeat):
            t0 = time.perf_counter()
            value, log = ot.sinkhorn2(a, b, M, eps, stopThr=tol, numItermax=POT_MAX_ITER, log=True)
            best = min(best, time.perf_counter() - t0)
            niter = int(log["niter"])
        P = ot.sinkhorn(a, b, M, eps, stopThr=tol, numItermax=POT_MAX_ITER)
        messages = sorted({str(w.message).split(".")[0] for w in caught})
    return {
        "side": "pot-kernel", "n": n, "eps": eps, "tol": tol, "time": best, "dist_time": t_dist,
        "transport_cost": float(value), "iterations": niter,
        "marginal_error_l1": l1_marginal_error(P, a, b) if np.all(np.isfinite(P)) else float("nan"),
        "warnings": messages,
    }


def pot_log(n, eps, tol):
    x, y = clouds(n)
    a = np.full(n, 1.0 / n)
    b = np.full(n, 1.0 / n)
    M = ot.dist(x, y)
    t0 = time.perf_counter()
    P, log = ot.sinkhorn(a, b, M, eps, method="sinkhorn_log", stopThr=tol, numItermax=POT_MAX_ITER, log=True)
    dt = time.perf_counter() - t0
    return {"side": "pot-log", "n": n, "eps": eps, "tol": tol, "time": dt,
            "transport_cost": float((P * M).sum()), "iterations": int(log["niter"]),
            "marginal_error_l1": l1_marginal_error(P, a, b)}


def exact(n):
    x, y = clouds(n)
    a = np.full(n, 1.0 / n)
    b = np.full(n, 1.0 / n)
    M = ot.dist(x, y)
    t0 = time.perf_counter()
    w = ot.emd2(a, b, M, numItermax=100_000_000)
    return {"side": "pot-exact", "n": n, "time": time.perf_counter() - t0, "w2_squared": float(w)}


def swift(binary, data, n, eps, tol, repeat):
    out = subprocess.run([binary, "--data", data, "--n", str(n), "--eps", str(eps), "--tol", str(tol),
                          "--repeat", str(repeat)], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", default="/tmp/sinkhorn-bench")
    parser.add_argument("--swift-bin", default=DEFAULT_BIN)
    parser.add_argument("--tol", type=float, default=1e-9)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--no-pot", action="store_true")
    parser.add_argument("--no-swift", action="store_true")
    parser.add_argument("--log-domain", action="store_true", help="also run POT's log-domain solver (slow)")
    parser.add_argument("--json", default=None, help="write all records to this file")
    args = parser.parse_args()

    targets = [(2000, 0.1), (2000, 0.01)]
    size_sweep = [(n, 0.1) for n in (500, 1000, 2000, 4000, 8000)]
    eps_sweep = [(2000, e) for e in (0.1, 0.03, 0.01, 0.003, 0.001)]
    cases = targets if args.quick else list(dict.fromkeys(targets + size_sweep + eps_sweep))
    write_data(args.data, sorted({n for n, _ in cases}))
    records = []

    def emit(record):
        records.append(record)
        print(json.dumps(record), flush=True)

    if not args.no_pot:
        emit(exact(2000))
    for n, eps in cases:
        repeat = 1 if n >= 4000 else args.repeat
        if not args.no_swift and os.path.exists(args.swift_bin):
            emit(swift(args.swift_bin, args.data, n, eps, args.tol, repeat))
        if not args.no_pot and n <= 4000:
            emit(pot_kernel(n, eps, args.tol, repeat))
        if args.log_domain and n <= 1000:
            emit(pot_log(n, eps, args.tol))

    if args.json:
        with open(args.json, "w") as fh:
            json.dump(records, fh, indent=1)

    print("\n| n | eps | Swift time (s) | Swift iters | Swift L1 error | POT kernel time (s) | POT iters | POT L1 error | ratio | Swift cost | POT cost |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for n, eps in cases:
        s = next((r for r in records if r["side"] == "swift" and r["n"] == n and r["eps"] == eps), None)
        p = next((r for r in records if r["side"] == "pot-kernel" and r["n"] == n and r["eps"] == eps), None)
        def f(r, k, fmt):
            return fmt.format(r[k]) if r is not None and r.get(k) is not None else "-"
        ratio = f"{p['time'] / s['time']:.1f}x" if s and p else "-"
        print(f"| {n} | {eps} | {f(s, 'time', '{:.3f}')} | {f(s, 'iterations', '{}')} | {f(s, 'marginal_error_l1', '{:.1e}')} | "
              f"{f(p, 'time', '{:.3f}')} | {f(p, 'iterations', '{}')} | {f(p, 'marginal_error_l1', '{:.1e}')} | {ratio} | "
              f"{f(s, 'transport_cost', '{:.6f}')} | {f(p, 'transport_cost', '{:.6f}')} |")


if __name__ == "__main__":
    sys.exit(main())
