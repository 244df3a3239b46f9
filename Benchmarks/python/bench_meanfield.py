"""NumPy peers of the mean-field benchmarks (Benchmarks/Sources/BenchMeanField).

Same updates as the Swift code, written the way one writes them in NumPy (vectorised over
particles, one Python-level iteration per SGD step):

  online SGD, relu, d = 20, M = 1000, second layer trained, single-neuron teacher, no noise:
      u = W x;  f = mean(a * relu(u));  r = y - f
      a <- a + eta * r * relu(u);  W <- W + eta * r * (a_old * 1[u > 0]) x^T
  population gradient flow, relu, d = 20, M = 2000, closed-form arc-cosine kernel:
      one explicit Euler step of theta_j <- theta_j - eta * grad Psi(theta_j; empirical)

Run:  python3 Benchmarks/python/bench_meanfield.py [--steps N] [--pop-steps N]
Prints one line per benchmark: name, size, rate or time per step.
"""
import argparse
import time

import numpy as np


def online_sgd(d=20, M=1000, steps=100_000, eta=0.01, seed=0):
    rng = np.random.default_rng(seed)
    w_star = np.zeros(d)
    w_star[0] = 1.0
    a = rng.normal(1.0, 0.1, size=M)
    W = rng.normal(0.0, 1.0 / np.sqrt(d), size=(M, d))
    xs_block = 1000
    t0 = time.perf_counter()
    k = 0
    while k < steps:
        n = min(xs_block, steps - k)
        X = rng.standard_normal((n, d))  # samples drawn in blocks, as cheap as NumPy allows
        ys = np.maximum(X @ w_star, 0.0)
        for i in range(n):
            x = X[i]
            u = W @ x
            s = np.maximum(u, 0.0)
            f = np.dot(a, s) / M
            r = ys[i] - f
            ds = (u > 0.0) * a
            a += (eta * r) * s
            W += np.outer((eta * r) * ds, x)
        k += n
    elapsed = time.perf_counter() - t0
    risk_proxy = float(np.mean(a))
    return steps / elapsed, elapsed, risk_proxy


def relu_kernel_grad(a, W, w_star, c_star, weights):
    """grad Psi for every particle, theta = (a, w), closed-form relu kernel (Gaussian inputs)."""
    norms = np.linalg.norm(W, axis=1)
    G = W @ W.T
    cos = np.clip(G / np.outer(norms, norms), -1.0, 1.0)
    phi = np.arccos(cos)
    sin = np.sqrt(1.0 - cos * cos)
    K = (np.outer(norms, norms) * sin + (np.pi - phi) * G) / (2 * np.pi)
    alpha = (norms[None, :] * sin) / (2 * np.pi * norms[:, None])
    beta = (np.pi - phi) / (2 * np.pi)
    c = weights * a
    # teacher part: V(theta) = -a sum_k c*_k K(w, w*_k)
    ns = np.linalg.norm(w_star, axis=1)
    Gt = W @ w_star.T
    cos_t = np.clip(Gt / np.outer(norms, ns), -1.0, 1.0)
    phi_t = np.arccos(cos_t)
    sin_t = np.sqrt(1.0 - cos_t * cos_t)
    Kt = (np.outer(norms, ns) * sin_t + (np.pi - phi_t) * Gt) / (2 * np.pi)
    alpha_t = (ns[None, :] * sin_t) / (2 * np.pi * norms[:, None])
    beta_t = (np.pi - phi_t) / (2 * np.pi)
    T = Kt @ c_star
    grad_a = -T + K @ c
    grad_w = a[:, None] * (
        -((alpha_t @ c_star)[:, None] * W + (beta_t * c_star[None, :]) @ w_star)
        + (alpha @ c)[:, None] * W + (beta * c[None, :]) @ W
    )
    return grad_a, grad_w


def population_flow(d=20, M=2000, steps=5, eta=0.01, seed=0):
    rng = np.random.default_rng(seed)
    w_star = np.zeros((1, d))
    w_star[0, 0] = 1.0
    c_star = np.array([1.0])
    a = rng.normal(1.0, 0.1, size=M)
    W = rng.normal(0.0, 1.0 / np.sqrt(d), size=(M, d))
    weights = np.full(M, 1.0 / M)
    relu_kernel_grad(a, W, w_star, c_star, weights)  # warm-up
    t0 = time.perf_counter()
    for _ in range(steps):
        ga, gw = relu_kernel_grad(a, W, w_star, c_star, weights)
        a -= eta * ga
        W -= eta * gw
    elapsed = time.perf_counter() - t0
    return elapsed / steps


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--steps", type=int, default=100_000)
    p.add_argument("--pop-steps", type=int, default=5)
    args = p.parse_args()
    rate, elapsed, _ = online_sgd(steps=args.steps)
    print(f"numpy online-sgd relu d=20 M=1000 steps={args.steps}: {rate:.0f} steps/s ({elapsed:.2f} s)")
    per_step = population_flow(steps=args.pop_steps)
    print(f"numpy population-flow relu d=20 M=2000: {per_step * 1e3:.1f} ms/step")


if __name__ == "__main__":
    main()
