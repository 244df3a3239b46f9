"""Reference values for the unbalanced and entropic partial tests (Tests/WassersteinTests/
UnbalancedPartialTests.swift): POT 0.9.7 where it is right, and where it is not (POT issues 711
and 723) the plain solver run to high iteration counts or an independent NumPy log-domain solve.

Conventions (Docs/Theory.md): cost |x - y|^2, entropy eps KL(P | a (x) b) (POT's reg_type="kl"),
KL(p | q) = sum p log(p / q) - sum p + sum q. The test data are deterministic formulas, so Swift
rebuilds them without a data file:
    x_i = (3 sin(1.3 i), 3 cos(0.7 i)),  y_j = (3 sin(0.9 j + 0.5) + 1, 3 cos(1.1 j) + 1).
Run: python3 Benchmarks/python/unbalanced_partial_reference.py
"""
import warnings
import numpy as np
import ot
from scipy.special import logsumexp


def clouds(n, m):
    i = np.arange(n); j = np.arange(m)
    x = np.stack([3 * np.sin(1.3 * i), 3 * np.cos(0.7 * i)], 1)
    y = np.stack([3 * np.sin(0.9 * j + 0.5) + 1, 3 * np.cos(1.1 * j) + 1], 1)
    return x, y


def kl(p, q):
    p = np.asarray(p); q = np.asarray(q)
    pos = p > 0
    return float(np.sum(p[pos] * np.log(p[pos] / q[pos])) - p.sum() + q.sum())


def unbalanced_value(P, a, b, M, eps, rho):
    return float(np.sum(P * M) + eps * kl(P.ravel(), np.outer(a, b).ravel())
                 + rho * kl(P.sum(1), a) + rho * kl(P.sum(0), b))


def partial_dummy_logdomain(a, b, M, m, eps, iters=200000, tol=1e-13):
    """Balanced entropic OT on the dummy-extended problem, dummy-dummy cell excluded (cost inf)."""
    n, k = M.shape
    A = np.append(a, b.sum() - m); B = np.append(b, a.sum() - m)
    C = np.zeros((n + 1, k + 1)); C[:n, :k] = M; C[n, k] = np.inf
    la, lb = np.log(A), np.log(B)
    f = np.zeros(n + 1); g = np.zeros(k + 1)
    for it in range(iters):
        f = -eps * logsumexp((g[None, :] - C) / eps + lb[None, :], axis=1)
        g = -eps * logsumexp((f[:, None] - C) / eps + la[:, None], axis=0)
        logP = la[:, None] + lb[None, :] + (f[:, None] + g[None, :] - C) / eps
        err = np.abs(np.exp(logsumexp(logP, axis=1)) - A).sum()
        if err < tol:
            break
    P = np.exp(logP)[:n, :k]
    return float(np.sum(P * M)), float(P.sum()), it + 1, err


np.set_printoptions(precision=17)
print("# POT documented unbalanced example (reg = reg_m = 1, reg_type kl)")
a = np.array([.5, .5]); M = np.array([[0., 1.], [1., 0.]])
print(ot.sinkhorn_unbalanced(a, a, M, 1.0, 1.0, reg_type="kl"))

print("# POT issue 711: a=[.3,.7], b=[.7,.3], reg=0.01, reg_m=100 (reg_type kl)")
a = np.array([.3, .7]); b = np.array([.7, .3])
with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    plain = ot.sinkhorn_unbalanced(a, b, M, 0.01, 100, reg_type="kl", numItermax=10**6, stopThr=1e-15)
    stab = ot.unbalanced.sinkhorn_stabilized_unbalanced(a, b, M, 0.01, 100, reg_type="kl", tau=1000)
print("plain, 10^6 iterations:\n", plain, "\nvalue", unbalanced_value(plain, a, b, M, 0.01, 100))
print("stabilized (absorbs):\n", stab, "\nvalue", unbalanced_value(stab, a, b, M, 0.01, 100))

def unbalanced_logdomain_plain(a, b, M, eps, rho, iters, tol=1e-13):
    """Plain alternating log-domain updates f <- rho/(rho+eps) T(g) (no translation step)."""
    k = rho / (rho + eps); la, lb = np.log(a), np.log(b)
    f = np.zeros(len(a)); g = np.zeros(len(b))
    for it in range(iters):
        f = -k * eps * logsumexp((g[None, :] - M) / eps + lb[None, :], axis=1)
        g = -k * eps * logsumexp((f[:, None] - M) / eps + la[:, None], axis=0)
        P = np.exp(la[:, None] + lb[None, :] + (f[:, None] + g[None, :] - M) / eps)
        err = np.abs(P.sum(1) - a * np.exp(-f / rho)).sum()
        if err < tol:
            break
    return P, it + 1, err


x, y = clouds(12, 9); C = ot.dist(x, y); C = C / C.max()   # costs in [0, 1], as in the M
i = np.arange(12); j = np.arange(9)
print("# issue 711 on the formula clouds, n = 12, m = 9, C = |x-y|^2 / max, reg 0.01, reg_m 100")
print("# (A) equal masses: a ~ 1 + sin(i) / 2, b ~ 1 + cos(2 j) / 2, each normalised to 1")
a = 1 + 0.5 * np.sin(i); a /= a.sum(); b = 1 + 0.5 * np.cos(2 * j); b /= b.sum()
with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    plain, log = ot.sinkhorn_unbalanced(a, b, C, 0.01, 100, reg_type="kl", numItermax=10**6, stopThr=1e-14, log=True)
    stab = ot.unbalanced.sinkhorn_stabilized_unbalanced(a, b, C, 0.01, 100, reg_type="kl", tau=1000)
print("plain (%d iterations, last change %.1e): mass %.15g  <P,C> %.15g  value %.15g"
      % (len(log["err"]), log["err"][-1], plain.sum(), (plain * C).sum(), unbalanced_value(plain, a, b, C, 0.01, 100)))
print("stabilized: mass %.15g  <P,C> %.15g  value %.15g  max |plan diff| %.3g"
      % (stab.sum(), (stab * C).sum(), unbalanced_value(stab, a, b, C, 0.01, 100), np.abs(stab - plain).max()))
print("# (B) unequal masses: a_i = 1/12 (mass 1), b_j = 1/6 (mass 1.5)")
a = np.full(12, 1 / 12); b = np.full(9, 1 / 6)
with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    plain, log = ot.sinkhorn_unbalanced(a, b, C, 0.01, 100, reg_type="kl", numItermax=10**6, stopThr=1e-14, log=True)
    stab = ot.unbalanced.sinkhorn_stabilized_unbalanced(a, b, C, 0.01, 100, reg_type="kl", tau=1000)
print("POT plain stops on overflow after %d iterations: value %.15g; stabilized value %.15g"
      % (len(log["err"]), unbalanced_value(plain, a, b, C, 0.01, 100), unbalanced_value(stab, a, b, C, 0.01, 100)))
P, its, err = unbalanced_logdomain_plain(a, b, C, 0.01, 100, 10**6)
print("NumPy plain log-domain (%d iterations, error %.1e): mass %.15g  <P,C> %.15g  value %.15g"
      % (its, err, P.sum(), (P * C).sum(), unbalanced_value(P, a, b, C, 0.01, 100)))

print("# POT documented partial example")
a = np.array([.1, .2]); b = np.array([.1, .1]); M = np.array([[0., 1.], [2., 3.]])
print(ot.partial.partial_wasserstein(a, b, M), ot.partial.partial_wasserstein2(a, b, M),
      ot.partial.partial_wasserstein2(a, b, M, m=0.1))

print("# POT issue 723 on the formula clouds: n = m = 40, a = unif / 0.35, b = unif, m = 0.01")
x, y = clouds(40, 40); C = ot.dist(x, y)
a = ot.unif(40) / 0.35; b = ot.unif(40)
for reg in [10.0, 1.0, 0.1]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        P = ot.partial.entropic_partial_wasserstein(a, b, C, reg, m=0.01)
    cost, mass, it, err = partial_dummy_logdomain(a, b, C, 0.01, reg)
    print("reg %g: POT mass %s cost %s | dummy log-domain cost %.15g mass %.15g (%d its, err %.1e)"
          % (reg, P.sum(), (P * C).sum(), cost, mass, it, err))
print("exact partial cost (m = 0.01):", ot.partial.partial_wasserstein2(a, b, C, m=0.01))
