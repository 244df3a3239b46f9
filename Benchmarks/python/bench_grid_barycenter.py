"""Entropic barycenters on a 2-D grid: `wasserstein barycenter --grid` beside POT's convolutional
barycenters, same data, same epsilon, same session.

Three Gaussians N(m_k, s^2 I), s = 0.06, on the 128 x 128 grid of [0, 1]^2 (POT's linspace(0, 1, n)
grid, so that POT's reg is our --epsilon). The exact W2 barycenter is N(sum w_k m_k, s^2 I); each
method's s is fitted from the barycenter's covariance (sqrt(trace / 2)).

Usage: python3 bench_grid_barycenter.py path/to/release/wasserstein [eps ...]
       python3 bench_grid_barycenter.py path/to/release/wasserstein tight

`tight`: the debiased barycenter to tolerances 1e-7 and 1e-9 on the 32 x 32 grid (s = 0.08, the
test's problem) beside POT's `ot.bregman.barycenter_debiased` (dense M, 1024 x 1024) at stopThr 1e-7
and 1e-9 (kernel method; its log method at 1e-7 only, about 100 s a run). The two stop on different errors, so every result is measured against one
reference, ours at tolerance 1e-11: the L1 distance of the barycenters, and the fitted s.
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


CAP = 5000  # POT's iteration cap in `tight`


def tight(binary):
    n, s = 32, 0.08
    t = np.linspace(0, 1, n)
    gx, gy = np.meshgrid(t, t, indexing="ij")
    inputs = []
    for mx, my in MEANS:
        a = np.exp(-((gx - mx) ** 2 + (gy - my) ** 2) / (2 * s * s))
        inputs.append(a / a.sum())
    folder = tempfile.mkdtemp()
    paths = []
    for k, a in enumerate(inputs):
        paths.append(os.path.join(folder, f"t{k}.npy"))
        np.save(paths[-1], a)
    points = np.stack([gx.ravel(), gy.ravel()], axis=1)
    cost = ot.dist(points, points)
    stacked = np.stack([a.ravel() for a in inputs], axis=1)

    def fitted(b):
        b = b / b.sum()
        mx, my = (b * gx).sum(), (b * gy).sum()
        return np.sqrt(((b * (gx - mx) ** 2).sum() + (b * (gy - my) ** 2).sum()) / 2)

    print(f"load: {os.getloadavg()}")
    print("| eps | method | stop | iterations | seconds (CPU) | L1 to reference | fitted s / 0.08 - 1 |")
    print("|---|---|---|---|---|---|---|")
    for eps in (2e-3, 1e-3):
        def ours(tol):
            out = os.path.join(folder, f"out-{eps}-{tol}")
            start = os.times()
            subprocess.run([binary, "barycenter", *paths, "--grid", "--epsilon", str(eps), "--debiased", "--tolerance", str(tol),
                            "--max-iterations", "100000", "--out", out], check=True, capture_output=True)
            end = os.times()
            summary = json.load(open(os.path.join(out, "summary.json")))
            return np.load(os.path.join(out, "barycenter.npy")), summary, end.children_user - start.children_user
        reference, summary, _ = ours(1e-11)
        assert summary["converged"], summary
        for tol in (1e-7, 1e-9):
            b, summary, cpu = ours(tol)
            print(f"| {eps:g} | wasserstein --debiased | tolerance {tol:g} | {summary['iterations']} | {summary['seconds']:.3f} ({cpu:.2f}) "
                  f"| {np.abs(b - reference).sum():.1e} | {fitted(b) / s - 1:+.5f} |", flush=True)
        for method in ("sinkhorn", "sinkhorn_log"):
            for thr in (1e-7, 1e-9):
                if method == "sinkhorn_log" and thr < 1e-7:
                    continue  # about 100 s per 1e-7 run on this grid; 1e-9 would take hours
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    start, cpu = time.perf_counter(), time.process_time()
                    b, log = ot.bregman.barycenter_debiased(stacked, cost, eps, method=method, stopThr=thr, numItermax=CAP, log=True)
                    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
                b = np.asarray(b).reshape(n, n)
                print(f"| {eps:g} | POT barycenter_debiased {method} | stopThr {thr:g} | {log['niter'] + 1}{' (cap)' if log['niter'] + 1 >= CAP else ''} | {seconds:.3f} ({cpu:.2f}) "
                      f"| {np.abs(b / b.sum() - reference).sum():.1e} | {fitted(b) / s - 1:+.5f} |", flush=True)
    print(f"load: {os.getloadavg()}")


def main():
    binary = sys.argv[1]
    if sys.argv[2:] == ["tight"]:
        return tight(binary)
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
