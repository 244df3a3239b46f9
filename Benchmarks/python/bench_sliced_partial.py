"""Sliced W2 and exact partial transport: the `wasserstein` command against POT, same data.

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
