"""Sliced W2, exact partial transport and free-support barycenters: the `wasserstein` command
against POT, same data.

    python3 Benchmarks/python/bench_sliced_partial.py .build/release/wasserstein [DATA_DIR]

1. Sliced W2, 10^6 points a side in D = 3, 100 directions: `wasserstein sliced` (seed 1, with
   --per-direction so that POT can be given the very same directions) against
   `ot.sliced_wasserstein_distance(..., projections=...)`. Both report SW2 = sqrt(mean of the
   per-direction W2^2); POT's own random directions are timed too. Our time is the command's
   `seconds` (the solve; reading the .npy files excluded) and the process CPU time; POT's the
   call (projections included) and its CPU time.
2. Exact partial transport, n = m = 500 in 2-D, random weights of masses 1.17 and 1.00, m = 0.3 and
   0.7: `wasserstein distance --partial` against `ot.partial.partial_wasserstein2` (cost matrix
   `ot.dist` included in POT's time, as ours includes building it).

3. Free-support barycenter of 3 clouds of 300 points (2-D, elongated, rotated by 120 degrees), 300
   support points, 3 seeds: `wasserstein barycenter --support 300 --seed s` against
   `ot.lp.free_support_barycenter` from 300 distinct points of the inputs; both results' cost
   `sum_k W2^2(X, mu_k) / 3` evaluated by POT's `emd2`.

Needs `pip install pot numpy`. Prints one line per measurement.
"""
import json
import os
import resource
import subprocess
import sys
import time

import numpy as np
import ot

tool = sys.argv[1]
data = sys.argv[2] if len(sys.argv) > 2 else "/tmp/wasserstein-bench-sliced"
os.makedirs(data, exist_ok=True)
rng = np.random.default_rng(0)


def run(args):
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    out = subprocess.run([tool] + args, check=True, capture_output=True, text=True).stdout
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return json.loads(out), (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


# 1. Sliced W2
x = rng.normal(size=(1_000_000, 3))
y = rng.normal(size=(1_000_000, 3)) * np.array([1.5, 1.0, 0.5]) + np.array([1.0, 0.0, 0.0])
np.save(f"{data}/x.npy", x)
np.save(f"{data}/y.npy", y)
for rep in range(3):
    o, cpu = run(["sliced", f"{data}/x.npy", f"{data}/y.npy", "--directions", "100", "--seed", "1", "--json",
                  "--per-direction", f"{data}/directions.csv"])
    print(f"wasserstein sliced: SW2 = {o['sw2']:.16g}  se(SW2^2) = {o['standard_error']:.3g}  "
          f"solve {o['seconds']:.2f} s  process CPU {cpu:.2f} s")
table = np.loadtxt(f"{data}/directions.csv", delimiter=",", skiprows=1)
theta, ours = table[:, :3].T.copy(), table[:, 3]
for rep in range(2):
    t, c = time.perf_counter(), time.process_time()
    value, log = ot.sliced_wasserstein_distance(x, y, projections=theta, log=True)
    print(f"POT sliced, same directions: SW2 = {value:.16g}  {time.perf_counter() - t:.2f} s  CPU {time.process_time() - c:.2f} s")
per = np.asarray(log["projected_emds"])
print(f"largest relative difference per direction: {np.max(np.abs(per - ours) / ours):.2e}")
t, c = time.perf_counter(), time.process_time()
value = ot.sliced_wasserstein_distance(x, y, n_projections=100, seed=1)
print(f"POT sliced, its own 100 directions: SW2 = {value:.6g}  {time.perf_counter() - t:.2f} s  CPU {time.process_time() - c:.2f} s")

# 2. Exact partial transport
rng = np.random.default_rng(1)
px = rng.normal(size=(500, 2))
py = rng.normal(size=(500, 2)) + np.array([2.0, 0.0])
a = rng.uniform(0.5, 1.5, 500) / 500 * 1.2
b = rng.uniform(0.5, 1.5, 500) / 500
np.save(f"{data}/px.npy", px)
np.save(f"{data}/py.npy", py)
np.savetxt(f"{data}/pa.csv", a, fmt="%.17g")
np.savetxt(f"{data}/pb.csv", b, fmt="%.17g")
a, b = np.loadtxt(f"{data}/pa.csv"), np.loadtxt(f"{data}/pb.csv")
for m in [0.3, 0.7]:
    ours = []
    for rep in range(7):
        o, _ = run(["distance", f"{data}/px.npy", f"{data}/py.npy", "--x-weights", f"{data}/pa.csv",
                    "--y-weights", f"{data}/pb.csv", "--partial", str(m), "--json"])
        ours.append(o["seconds"])
    peer = []
    for rep in range(7):
        t = time.perf_counter()
        cost = ot.partial.partial_wasserstein2(a, b, ot.dist(px, py), m=m)
        peer.append(time.perf_counter() - t)
    print(f"partial m = {m}: ours {o['cost']:.16g} (median {np.median(ours):.4f} s, best {min(ours):.4f} s), "
          f"POT {cost:.16g} (median {np.median(peer):.4f} s, best {min(peer):.4f} s), "
          f"relative difference {abs(o['cost'] - cost) / cost:.1e}")

# 3. Free-support barycenter
rng = np.random.default_rng(2)
K, n, N = 3, 300, 300
clouds = []
for k in range(K):
    angle = 2 * np.pi * k / K
    rotation = np.array([[np.cos(angle), np.sin(angle)], [-np.sin(angle), np.cos(angle)]])
    c = rng.normal(size=(n, 2)) * np.array([1.0, 0.3]) @ rotation + 3 * np.array([np.cos(angle), np.sin(angle)])
    np.savetxt(f"{data}/c{k}.csv", c, delimiter=",", fmt="%.17g")
clouds = [np.loadtxt(f"{data}/c{k}.csv", delimiter=",") for k in range(K)]
w = np.ones(n) / n


def barycenter_cost(X):
    return sum(ot.emd2(np.ones(len(X)) / len(X), w, ot.dist(X, c)) for c in clouds) / K


for seed in range(3):
    subprocess.run([tool, "barycenter"] + [f"{data}/c{k}.csv" for k in range(K)]
                   + ["--support", str(N), "--seed", str(seed), "--out", f"{data}/barycenter{seed}"],
                   check=True, capture_output=True)
    summary = json.load(open(f"{data}/barycenter{seed}/summary.json"))
    X = np.load(f"{data}/barycenter{seed}/barycenter.npy")
    print(f"wasserstein barycenter, seed {seed}: cost {summary['cost']:.10g} (POT emd2: {barycenter_cost(X):.10g}), "
          f"{summary['iterations']} iterations, {summary['seconds']:.3f} s")
for seed in range(3):
    start = np.concatenate(clouds)[np.random.default_rng(seed).choice(K * n, N, replace=False)]
    t = time.perf_counter()
    X = ot.lp.free_support_barycenter(clouds, [w] * K, start, numItermax=100, stopThr=1e-9)
    print(f"POT free_support_barycenter, start {seed}: cost {barycenter_cost(X):.10g}, {time.perf_counter() - t:.3f} s")

