#!/usr/bin/env python3
"""NumPy/POT/SciPy peers of the JKO benchmarks in Benchmarks/Sources/BenchJKO.

No OT library ships a JKO step, so these are straightforward implementations of the same two
schemes with the usual tools, to time against:

  particle  D = 21 (a, w in R^20), M = 500, tau = 0.05, 40 steps of the particle JKO for the
            mean-field ReLU risk with Gaussian inputs (closed-form kernel, teacher relu(<e1, x>)),
            exact W2 by ot.emd (plan -> gradient 2 sum_j P_ij (x_i - y_j)), inner problem by
            scipy L-BFGS-B with gtol on the per-particle velocity residual 1e-6 (as in Swift);
            time split into OT solves and energy gradients.
  grid      128 x 128 grid on [-4, 4]^2, Ornstein-Uhlenbeck F (lambda = 1, beta = 1), tau = 0.05,
            the entropic JKO of Peyre (2015) with the same blur gamma = tau / beta and
            compensation, separable kernel as two dense matrix products; seconds per step.

    python3 Benchmarks/python/bench_jko.py [--only particle|grid|grid3d] [--steps 40]
"""
import argparse
import time

import numpy as np


def relu_kernel(w, wp):
    """k(w, w') = (|w||w'| sin phi + (pi - phi) <w, w'>) / (2 pi) and its gradient in w (Docs/Theory.md 3.3)."""
    nw = np.linalg.norm(w, axis=1)[:, None]
    nwp = np.linalg.norm(wp, axis=1)[None, :]
    dot = w @ wp.T
    cos = np.clip(dot / (nw * nwp), -1.0, 1.0)
    phi = np.arccos(cos)
    sin = np.sqrt(np.maximum(0.0, 1.0 - cos * cos))
    k = (nw * nwp * sin + (np.pi - phi) * dot) / (2 * np.pi)
    return k, phi, sin, nw, nwp


def relu_energy(theta, teacher):
    """R(rho) - R#/2 = int V + (1/2) int int U for rho the empirical measure; gradient of R_M * M per particle."""
    m = theta.shape[0]
    a, w = theta[:, 0], theta[:, 1:]
    k, phi, sin, nw, nwp = relu_kernel(w, w)
    # U_ij = a_i a_j k_ij ; Psi_i = -a_i k(w_i, w*) + (1/M) sum_j U_ij
    kt, phit, sint, nwt, nwpt = relu_kernel(w, teacher[None, :])
    kt = kt[:, 0]
    value = -np.mean(a * kt) + 0.5 * np.mean(np.outer(a, a) * k)
    grad = np.zeros_like(theta)
    grad[:, 0] = -kt + (k @ a) / m
    # d k(w_i, w_j) / d w_i = ((pi - phi) w_j + |w_j| sin phi w_i / |w_i|) / (2 pi)
    coef = np.outer(a, a) / m
    term1 = ((np.pi - phi) * coef) @ w
    term2 = ((nwp * sin) * coef).sum(axis=1)[:, None] * w / nw
    gt = ((np.pi - phit[:, 0])[:, None] * teacher[None, :] + (nwpt[0, 0] * sint[:, 0])[:, None] * w / nw) / (2 * np.pi)
    grad[:, 1:] = (term1 + term2) / (2 * np.pi) - a[:, None] * gt
    return value, grad  # grad is grad Psi(theta_i), i.e. M * dR/dtheta_i


def particle_bench(steps, tau=0.05, m=500, d=20, seed=1):
    import ot
    from scipy.optimize import minimize

    rng = np.random.default_rng(seed)
    theta = np.concatenate([rng.normal(0.0, 1.0, (m, 1)), rng.normal(0.0, 1.0 / np.sqrt(d), (m, d))], axis=1)
    teacher = np.zeros(d)
    teacher[0] = 1.0
    weights = np.full(m, 1.0 / m)
    ot_time = energy_time = 0.0
    solves = inner = failures = 0
    t_start = time.perf_counter()
    for _ in range(steps):
        old = theta.copy()

        def objective(flat):
            nonlocal ot_time, energy_time, solves
            x = flat.reshape(m, d + 1)
            t0 = time.perf_counter()
            value, grad_psi = relu_energy(x, teacher)
            t1 = time.perf_counter()
            cost = ot.dist(x, old)  # squared Euclidean
            plan = ot.emd(weights, weights, cost)
            w2 = float(np.sum(plan * cost))
            g_ot = 2 * (weights[:, None] * x - plan @ old)
            t2 = time.perf_counter()
            energy_time += t1 - t0
            ot_time += t2 - t1
            solves += 1
            grad = weights[:, None] * grad_psi + g_ot / (2 * tau)
            return value + w2 / (2 * tau), grad.ravel()

        # scipy's gtol is on the max |gradient component|; the velocity residual is gradient * M.
        res = minimize(objective, theta.ravel(), jac=True, method="L-BFGS-B",
                       options={"gtol": 1e-6 / m, "ftol": 1e-16, "maxiter": 200, "maxcor": 10})
        inner += res.nit
        if not res.success:
            failures += 1
        theta = res.x.reshape(m, d + 1)
    total = time.perf_counter() - t_start
    value, _ = relu_energy(theta, teacher)
    print(f"particle JKO (POT emd + SciPy L-BFGS-B), D = {d + 1}, M = {m}, tau = {tau}, {steps} steps: "
          f"total {total:.2f} s, {total / steps:.3f} s per step, OT {ot_time:.2f} s, energy {energy_time:.2f} s, "
          f"{solves} OT solves, {inner} L-BFGS iterations, {failures} steps not converged, final R - R#/2 = {value:.6f}")


def grid_setup(n, dims, tau, lam, beta):
    """Grid, blur, compensated prox exponent, log A and the start N((1, 0, ...), 0.5^2 I) of the OU benchmarks."""
    x = np.linspace(-4, 4, n)
    h = x[1] - x[0]
    gamma = max(h * h, tau / beta)
    beta_eff = 1.0 / (1.0 / beta - gamma / (4 * tau))
    sigma = 2 * tau / gamma
    theta = 1.0 / (1.0 + sigma / beta_eff)
    k1 = np.exp(-(x[:, None] - x[None, :]) ** 2 / gamma)
    X = np.meshgrid(*([x] * dims), indexing="ij")
    V = 0.5 * lam * sum(Xa ** 2 for Xa in X)
    logA = -theta * sigma * (V - V.min())
    q = np.exp(-((X[0] - 1) ** 2 + sum(Xa ** 2 for Xa in X[1:])) / (2 * 0.25))
    return k1, X, logA, theta, q / q.sum()


def entropic_jko_steps(K, q, logA, theta, steps):
    """The grid JKO iteration of GridJKO (over-relaxation 1.8, L1 residual 1e-10); returns the
    final density, the total iteration count and the wall time of each step."""
    u = np.ones_like(q)
    iterations = 0
    times = []
    for _ in range(steps):
        t0 = time.perf_counter()
        logU = np.log(u)
        for _ in range(20000):
            iterations += 1
            v = q / K(u)
            z = K(v)
            log_new = logA + (theta - 1) * np.log(z)
            u_new = np.exp(log_new)
            residual = np.sum(z * np.abs(u - u_new))
            logU = logU + 1.8 * (log_new - logU)
            u = np.exp(logU)
            if residual <= 1e-10:
                break
        v = q / K(u)
        q = u * K(v)
        times.append(time.perf_counter() - t0)
    return q, iterations, times


def grid_bench(steps, tau=0.05, n=128, lam=1.0, beta=1.0):
    k1, X, logA, theta, q = grid_setup(n, 2, tau, lam, beta)

    def K(v):
        return k1 @ v @ k1.T

    q, iterations, times = entropic_jko_steps(K, q, logA, theta, steps)
    var = np.sum(q * (X[0] - np.sum(q * X[0])) ** 2)
    later = sorted(times[1:])
    print(f"grid JKO (NumPy, dense separable kernel, same iteration), {n} x {n}, tau = {tau}, {steps} steps: "
          f"{sum(times) / steps:.4f} s per step, {iterations / steps:.1f} iterations per step, final variance {var:.6f}; "
          f"steps 2-{steps}: min {1000 * later[0]:.2f} ms, median {1000 * later[len(later) // 2]:.2f} ms")


def grid3d_bench(steps, tau=0.05, n=48, lam=1.0, beta=1.0):
    """The same iteration in 3-D: the kernel applied as three dense n x n products along the axes."""
    k1, _, logA, theta, q = grid_setup(n, 3, tau, lam, beta)

    def K(v):
        v = (k1 @ v.reshape(n, n * n)).reshape(n, n, n)
        v = np.matmul(k1, v)
        return v @ k1.T

    _, iterations, times = entropic_jko_steps(K, q, logA, theta, steps)
    per_step = sum(times[1:]) / (steps - 1)
    print(f"grid JKO 3-D (NumPy, dense separable kernel, same iteration, no step distance), {n}^3, tau = {tau}, {steps} steps: "
          f"{per_step:.4f} s per step (steps 2-{steps}), {iterations / steps:.1f} iterations per step")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--only", choices=["particle", "grid", "grid3d"])
    parser.add_argument("--steps", type=int, default=40)
    args = parser.parse_args()
    if args.only in (None, "grid"):
        grid_bench(20)
    if args.only in (None, "grid3d"):
        grid3d_bench(10, n=48)
        grid3d_bench(10, n=64)
    if args.only in (None, "particle"):
        particle_bench(args.steps)


if __name__ == "__main__":
    main()
