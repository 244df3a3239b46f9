"""The multiscale geometry (issue 19) against the online one and GeomLoss, same data, same session.

Data: n = m points uniform in [0, 1]^D (D = 3, or 2), uniform weights, written once as .npy.
Ours: `wasserstein distance x.npy y.npy --method sinkhorn --epsilon EPS --divergence --geometry G --json`
under `/usr/bin/time -v` (wall, CPU, peak RSS). GeomLoss (if importable): SamplesLoss("sinkhorn",
p=2, blur, scaling, debias=True, backend) on the same points. GeomLoss's cost is |x - y|^2 / 2 and
its epsilon is blur^2, so OT_{blur^2}(|x-y|^2/2) = OT_{2 blur^2}(|x-y|^2) / 2: our eps = 2 blur^2,
blur = sqrt(eps / 2), and its divergence is half of ours.

Usage: python3 bench_multiscale.py --binary PATH --n 10000 --geometry multiscale [--dimension 3]
       python3 bench_multiscale.py --geomloss --n 10000 [--backend multiscale] [--scaling 0.9]
"""
import argparse
import json
import math
import os
import re
import subprocess
import time

import numpy as np


def data(n, d, directory):
    x_path = os.path.join(directory, f"x_{n}_{d}d.npy")
    y_path = os.path.join(directory, f"y_{n}_{d}d.npy")
    if not (os.path.exists(x_path) and os.path.exists(y_path)):
        rng = np.random.default_rng(19 + n + d)
        np.save(x_path, rng.random((n, d)))
        np.save(y_path, rng.random((n, d)))
    return x_path, y_path


def ours(binary, x_path, y_path, eps, geometry):
    command = ["/usr/bin/time", "-v", binary, "distance", x_path, y_path, "--method", "sinkhorn",
               "--epsilon", str(eps), "--divergence", "--geometry", geometry, "--json"]
    run = subprocess.run(command, capture_output=True, text=True)
    if run.returncode != 0:
        raise SystemExit(run.stderr)
    out = json.loads(run.stdout)
    timing = run.stderr
    def field(name):
        return re.search(name + r": (\S+)", timing).group(1)
    wall = field(r"Elapsed \(wall clock\) time \(h:mm:ss or m:ss\)")
    parts = [float(p) for p in wall.split(":")]
    seconds = sum(p * 60 ** i for i, p in enumerate(reversed(parts)))
    cpu = float(field("User time \(seconds\)")) + float(field("System time \(seconds\)"))
    rss_mb = int(field(r"Maximum resident set size \(kbytes\)")) / 1024
    return dict(geometry=out["geometry"], wall=seconds, cpu=cpu, rss_mb=rss_mb, divergence=out["divergence"],
                transport_cost=out["transport_cost"], iterations=out["iterations"], converged=out["converged"],
                marginal_error=out["marginal_error"], check=out.get("truncation_check"),
                bound=out.get("truncation_bound"))


def geomloss(x_path, y_path, eps, backend, scaling):
    import torch
    from geomloss import SamplesLoss
    x = torch.from_numpy(np.load(x_path))
    y = torch.from_numpy(np.load(y_path))
    blur = math.sqrt(eps / 2)
    loss = SamplesLoss("sinkhorn", p=2, blur=blur, scaling=scaling, debias=True, backend=backend)
    # KeOps compiles its reductions on first use (minutes): a small call first, not timed.
    loss(x[:2000].contiguous(), y[:2000].contiguous())
    start = time.perf_counter()
    value = float(loss(x, y))
    return dict(backend=backend, scaling=scaling, blur=blur, seconds=time.perf_counter() - start,
                divergence_ours_units=2 * value)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=10_000)
    parser.add_argument("--dimension", type=int, default=3)
    parser.add_argument("--epsilon", type=float, default=0.0025)
    parser.add_argument("--binary", default=".build/release/wasserstein")
    parser.add_argument("--geometry", default="multiscale")
    parser.add_argument("--geomloss", action="store_true")
    parser.add_argument("--backend", default="multiscale")
    parser.add_argument("--scaling", type=float, default=0.9)
    parser.add_argument("--directory", default="/tmp")
    a = parser.parse_args()
    x_path, y_path = data(a.n, a.dimension, a.directory)
    print("uptime:", subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip())
    if a.geomloss:
        result = geomloss(x_path, y_path, a.epsilon, a.backend, a.scaling)
    else:
        result = ours(a.binary, x_path, y_path, a.epsilon, a.geometry)
    result.update(n=a.n, dimension=a.dimension, epsilon=a.epsilon)
    print(json.dumps(result))
    print("uptime:", subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip())


if __name__ == "__main__":
    main()
