"""Unbalanced (KL) and entropic partial transport: `wasserstein distance --method sinkhorn` with
`--unbalanced RHO` or `--partial MASS` against POT on the same random problems.

    python3 Benchmarks/python/bench_unbalanced_partial.py .build/release/wasserstein [DATA_DIR] [N ...]

Data: n points uniform in [0, 1]^2 a side (seed 0), cost |x - y|^2; source weights uniform of mass
1, target weights random (0.5 + U(0, 1)) of mass 1.3. eps = 0.1 and 0.01.

1. Unbalanced, rho = 1 both sides: ours (dense geometry, tolerance 1e-9 on the relaxed marginals)
   against `ot.unbalanced.sinkhorn_unbalanced(reg_type="kl")` with methods "sinkhorn" and
   "sinkhorn_translation_invariant" (stopThr 1e-9, numItermax 10^5; `ot.dist` in its time). Both
   values are the primal objective <P, C> + eps KL(P | a b) + rho KL(P1 | a) + rho KL(P^T 1 | b),
   POT's evaluated from its plan here, ours printed by the command.
2. Entropic partial, m = 0.6: ours (dummy points, dense geometry) against
   `ot.partial.entropic_partial_wasserstein` (its defaults: 1000 iterations, no early stop). The
   two regularise differently (ours KL on the dummy-extended plan, POT's the entropy of the real
   plan), so the values are compared with the exact partial cost (`ot.partial.partial_wasserstein2`).
Our time is the command's `seconds` (reading the files excluded; building the costs included).
Prints one line per run; 3 runs each, POT 2 (1 at n = 2000 for the partial solver).
With BENCH_UNBALANCED_ONLY=1 in the environment the partial runs are skipped.
"""
import json
import os
import subprocess
import sys
import time
import warnings

import numpy as np
import ot

tool = sys.argv[1]
data = sys.argv[2] if len(sys.argv) > 2 else "/tmp/wasserstein-bench-unbalanced"
sizes = [int(s) for s in sys.argv[3:]] or [500, 2000]
os.makedirs(data, exist_ok=True)


def kl(p, q):
    pos = p > 0
    return float(np.sum(p[pos] * np.log(p[pos] / q[pos])) - p.sum() + q.sum())


def value(P, a, b, M, eps, rho):
    return float(np.sum(P * M) + eps * kl(P.ravel(), np.outer(a, b).ravel()) + rho * kl(P.sum(1), a) + rho * kl(P.sum(0), b))


def ours(args):
    out = subprocess.run([tool] + args, check=True, capture_output=True, text=True).stdout
    return json.loads(out)


for n in sizes:
    rng = np.random.default_rng(0)
    x = rng.uniform(size=(n, 2)); y = rng.uniform(size=(n, 2))
    a = np.full(n, 1.0 / n); b = 0.5 + rng.uniform(size=n); b *= 1.3 / b.sum()
    np.save(f"{data}/x{n}.npy", x); np.save(f"{data}/y{n}.npy", y)
    np.savetxt(f"{data}/b{n}.csv", b, fmt="%.17g")
    files = ["distance", f"{data}/x{n}.npy", f"{data}/y{n}.npy", "--y-weights", f"{data}/b{n}.csv"]
    for eps in [0.1, 0.01]:
        common = files + ["--method", "sinkhorn", "--epsilon", str(eps), "--geometry", "dense", "--json"]
        for rep in range(3):
            o = ours(common + ["--unbalanced", "1"])
            print(f"n={n} eps={eps} unbalanced ours: value {o['regularized_cost']:.12g} dual {o['dual_cost']:.12g} "
                  f"mass {o['transported_mass']:.10g} its {o['iterations']} converged {o['converged']} {o['seconds']:.3f} s", flush=True)
        for method in ["sinkhorn", "sinkhorn_translation_invariant"]:
            for rep in range(2):
                with warnings.catch_warnings(record=True) as w:
                    warnings.simplefilter("always")
                    t = time.perf_counter()
                    M = ot.dist(x, y)
                    P, log = ot.unbalanced.sinkhorn_unbalanced(a, b, M, eps, 1.0, method=method, reg_type="kl",
                                                               numItermax=100_000, stopThr=1e-9, log=True)
                    s = time.perf_counter() - t
                its = len(log.get("err", [])) * 10 if method == "sinkhorn" else len(log.get("err", []))
                note = "; ".join(sorted({str(m.message)[:60] for m in w}))
                print(f"n={n} eps={eps} unbalanced POT {method}: value {value(P, a, b, M, eps, 1.0):.12g} "
                      f"mass {P.sum():.10g} ~its {its} {s:.3f} s {note}", flush=True)
        if os.environ.get("BENCH_UNBALANCED_ONLY"):
            continue
        for rep in range(3):
            o = ours(common + ["--partial", "0.6"])
            print(f"n={n} eps={eps} partial ours: cost {o['cost']:.12g} mass {o['transported_mass']:.12g} "
                  f"its {o['iterations']} converged {o['converged']} {o['seconds']:.3f} s", flush=True)
        # POT's iteration multiplies by dense diagonal matrices (n^2 m flops each): at n = 2000 its
        # default 1000 iterations would take over an hour here, so 10 are timed and scaled.
        iterations = 10 if n >= 2000 else 1000
        for rep in range(1 if n >= 2000 else 2):
            with warnings.catch_warnings(record=True) as w:
                warnings.simplefilter("always")
                t = time.perf_counter()
                M = ot.dist(x, y)
                P = ot.partial.entropic_partial_wasserstein(a, b, M, eps, m=0.6, numItermax=iterations)
                s = time.perf_counter() - t
            note = "; ".join(sorted({str(m.message)[:60] for m in w}))
            print(f"n={n} eps={eps} partial POT ({iterations} iterations): cost {np.sum(P * M):.12g} mass {P.sum():.12g} "
                  f"{s:.3f} s (x{1000 // iterations}: {s * 1000 / iterations:.1f} s for its default 1000) {note}", flush=True)
    if os.environ.get("BENCH_UNBALANCED_ONLY"):
        continue
    M = ot.dist(x, y)
    print(f"n={n} exact partial cost (m = 0.6): {ot.partial.partial_wasserstein2(a, b, M, m=0.6):.12g}", flush=True)
