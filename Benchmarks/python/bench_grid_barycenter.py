"""Entropic barycenters on a 2-D grid: `wasserstein barycenter --grid` beside POT's convolutional
barycenters, same data, same epsilon, same session.

Three Gaussians N(m_k, s^2 I), s = 0.06, on the 128 x 128 grid of [0, 1]^2 (POT's linspace(0, 1, n)
grid, so that POT's reg is our --epsilon). The exact W2 barycenter is N(sum w_k m_k, s^2 I); each
method's s is fitted from the barycenter's covariance (sqrt(trace / 2)).

Usage: python3 bench_grid_barycenter.py path/to/release/wasserstein [eps ...]
"""
import json
import os
import subprocess
import sys
import tempfile
import time
import warnings

import numpy as np
import ot

N, S = 128, 0.06
MEANS = [(0.3, 0.3), (0.7, 0.35), (0.45, 0.7)]
t = np.linspace(0, 1, N)
X, Y = np.meshgrid(t, t, indexing="ij")


def fitted_sd(b):
    b = b / b.sum()
    mx, my = (b * X).sum(), (b * Y).sum()
    var = (b * (X - mx) ** 2).sum() + (b * (Y - my) ** 2).sum()
    return np.sqrt(var / 2), (mx, my)


def main():
    binary = sys.argv[1]
    epsilons = [float(e) for e in sys.argv[2:]] or [1e-3]
    inputs = []
    for mx, my in MEANS:
        a = np.exp(-((X - mx) ** 2 + (Y - my) ** 2) / (2 * S * S))
        inputs.append(a / a.sum())
    A = np.stack(inputs)
    folder = tempfile.mkdtemp()
    paths = []
    for k, a in enumerate(inputs):
        paths.append(os.path.join(folder, f"g{k}.npy"))
        np.save(paths[-1], a)
    print(f"load: {os.getloadavg()}")
    print("| weights | eps | method | iterations | seconds | s / s_true - 1 | mean error |")
    print("|---|---|---|---|---|---|---|")
    for weights in ([1 / 3, 1 / 3, 1 / 3], [0.6, 0.3, 0.1]):
        w = np.array(weights)
        expected = np.array(MEANS).T @ w
        label = "uniform" if weights[0] == weights[1] else "0.6, 0.3, 0.1"

        def row(eps, name, b, seconds, iterations):
            sd, mean = fitted_sd(b)
            gap = np.hypot(mean[0] - expected[0], mean[1] - expected[1])
            print(f"| {label} | {eps:g} | {name} | {iterations} | {seconds:.3f} | {sd / S - 1:+.4f} | {gap:.1e} |", flush=True)

        for eps in epsilons:
            for debiased in (False, True):
                out = os.path.join(folder, f"out-{eps}-{debiased}-{label[0]}")
                args = [binary, "barycenter", *paths, "--grid", "--epsilon", str(eps), "--weights", ",".join(map(str, weights)),
                        "--out", out] + (["--debiased"] if debiased else [])
                subprocess.run(args, check=True, capture_output=True)
                summary = json.load(open(os.path.join(out, "summary.json")))
                b = np.load(os.path.join(out, "barycenter.npy"))
                row(eps, "wasserstein " + ("debiased" if debiased else "plain"), b, summary["seconds"], summary["iterations"])
            for debiased in (False, True):
                for method in ("sinkhorn", "sinkhorn_log"):
                    for thr in (None, 1e-7):
                        if method == "sinkhorn_log" and thr is not None:
                            continue  # minutes per run at 128^2; the default threshold shows the bias
                        f = ot.bregman.convolutional_barycenter2d_debiased if debiased else ot.bregman.convolutional_barycenter2d
                        kwargs = {} if thr is None else {"stopThr": thr}
                        with warnings.catch_warnings():
                            warnings.simplefilter("ignore")
                            start = time.perf_counter()
                            b, log = f(A, eps, weights=w, method=method, log=True, **kwargs)
                            seconds = time.perf_counter() - start
                        name = f"POT {'debiased' if debiased else 'plain'} {method}" + ("" if thr is None else f" stopThr {thr:g}")
                        row(eps, name, np.asarray(b), seconds, log["niter"] + 1)
    print(f"load: {os.getloadavg()}")


if __name__ == "__main__":
    main()
