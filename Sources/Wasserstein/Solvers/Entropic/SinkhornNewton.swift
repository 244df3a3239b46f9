#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

extension BalancedSinkhornCore {
    // MARK: Newton-CG

    /// One damped Newton step on the dual objective
    /// `D(f, g) = <f, a> + <g, b> - eps sum_ij a_i b_j exp((f_i + g_j - C_ij) / eps)`.
    ///
    /// Why: when the spectrum of the scaling iteration has eigenvalues very close to 1 (groups
    /// of points coupled only through tiny plan entries: outliers at small eps, or the 8-point
    /// fixture whose rate is 1 - 6e-12 at eps = 0.01), no relaxation factor helps, while
    /// Newton's method solves for all modes at once (Brauer, Clason, Lorenz, Wirth 2017).
    ///
    /// In log-scaling units x = df / eps, y = dg / eps the system is
    /// `[[diag(rho), P], [P^T, diag(kappa)]] (x, y) = (a - rho, b - kappa)`, rho and kappa the
    /// row and column masses of P. Eliminating x leaves the Schur system
    /// `(diag(kappa) - P^T diag(1/rho) P) y = b - P^T (a / rho)`, symmetric positive
    /// semi-definite with null vector 1 (the gauge), solved by conjugate gradients with the
    /// Jacobi preconditioner diag(kappa): each CG iteration is one product with K and one with
    /// K^T, the cost of a Sinkhorn iteration, and the dense matrix P is never formed. The step is
    /// accepted only if it lowers the L1 marginal error (after at most three quarterings).
    ///
    /// Returns whether it was accepted, the work done (in products-with-K pairs, counted as
    /// iterations), and the new column error. On rejection u, v are restored.
    mutating func newtonStep(error: Double, budget: Int) -> (accepted: Bool, work: Int, columnError: Double) {
        let base = newton
        let rowScale = base, x = base + n, tn = base + 2 * n, savedU = base + 3 * n
        let kappa = base + 4 * n, y = kappa + m, res = y + m, z = res + m, dir = z + m
        let sdir = dir + m, tm = sdir + m, savedV = tm + m, precondition = savedV + m
        var products = 0
        // kappa_j = b_j v_j s_j (column masses), q_j = b_j v_j (kept in w).
        for j in 0 ..< m { kappa[j] = b[j] * v[j] * s[j] }
        // h = b - q o K^T(a / r)
        for i in 0 ..< n { tn[i] = a[i] / r[i] }
        multiplyKernelTransposed(tn, into: res)
        products += 1
        var active = 0
        var mean = 0.0
        for j in 0 ..< m {
            if kappa[j] > 0 {
                res[j] = b[j] - b[j] * v[j] * res[j]
                mean += res[j]
                active += 1
            } else {
                res[j] = 0
            }
        }
        guard active > 0 else { return (false, 0, 0) }
        mean /= Double(active)
        for j in 0 ..< m where kappa[j] > 0 { res[j] -= mean }
        // Row factor of the Schur operator: a_i u_i / r_i.
        for i in 0 ..< n { rowScale[i] = a[i] * u[i] / r[i] }
        // Preconditioner: the exact diagonal of S, kappa_j - (b_j v_j)^2 sum_i K_ij^2 a_i u_i / r_i.
        // Unlike diag(kappa) it is tiny exactly for the columns of isolated pairs (an outlier
        // x_i whose mass goes to a single y_j that receives from nobody else), which are the
        // eigenvectors of the slowest modes; with it CG sees only the bulk of the spectrum.
        multiplySquaredKernelTransposed(rowScale, into: sdir)
        products += 1
        for j in 0 ..< m {
            let q = b[j] * v[j]
            let diagonal = kappa[j] - q * q * sdir[j]
            precondition[j] = kappa[j] > 0 ? 1 / Swift.max(diagonal, 1e-9 * kappa[j]) : 0
        }
        let norm0 = norm2(res, m)
        // Forcing term sqrt(error): inexact Newton with superlinear convergence (Eisenstat and
        // Walker); tighter forcing was measured to buy nothing (the outer steps are limited by
        // the nonlinearity, not by the inner accuracy).
        let forcing = Swift.min(0.25, (error / massA).squareRoot())
        // Work = ceil(products / 2) <= inner + 4 (one product for the right-hand side, two per CG
        // iteration, one for x, two per trial step), kept within the caller's budget.
        let maxInner = Swift.max(1, Swift.min(budget - 4, 300))
        let inner = schurConjugateGradient(count: m, kappa: kappa, preconditioner: precondition, active: active,
                                           residual: res, solution: y, z: z, direction: dir, image: sdir,
                                           norm0: norm0, forcing: forcing, maxInner: maxInner) { dir, sdir in
            // sdir = kappa o dir - q o K^T(rowScale o K(q o dir))
            for j in 0 ..< m { tm[j] = b[j] * v[j] * dir[j] }
            multiplyKernel(tm, into: tn)
            for i in 0 ..< n { tn[i] *= rowScale[i] }
            multiplyKernelTransposed(tn, into: sdir)
            for j in 0 ..< m { sdir[j] = kappa[j] * dir[j] - b[j] * v[j] * sdir[j] }
        }
        products += 2 * inner
        // x = 1 / (u r) - 1 - K(q o y) / r
        for j in 0 ..< m { tm[j] = b[j] * v[j] * y[j] }
        multiplyKernel(tm, into: tn)
        products += 1
        var largest = 0.0
        for i in 0 ..< n {
            x[i] = 1 / (u[i] * r[i]) - 1 - tn[i] / r[i]
            largest = Swift.max(largest, abs(x[i]))
        }
        for j in 0 ..< m { largest = Swift.max(largest, abs(y[j])) }
        guard largest.isFinite else { return (false, (products + 1) / 2, 0) }
        savedU.update(from: u, count: n)
        savedV.update(from: v, count: m)
        // Steps above e^20 in a scaling are cut back: far from the optimum the quadratic model
        // is poor, and the dual objective is exponential in the step.
        var t = Swift.min(1, 20 / Swift.max(largest, 1e-300))
        for _ in 0 ..< 3 {
            for i in 0 ..< n { u[i] = savedU[i] * exp(t * x[i]) }
            for j in 0 ..< m { v[j] = savedV[j] * exp(t * y[j]) }
            computeRowSums()
            computeColumnSums()
            products += 2
            var safe = true
            for i in 0 ..< n where !sinkhornSafeSumRange.contains(r[i]) { safe = false; break }
            for j in 0 ..< m where !sinkhornSafeSumRange.contains(s[j]) { safe = false; break }
            if safe {
                let columnErr = columnError()
                let newError = rowError() + columnErr
                if newError < error {
                    stats.newtonSteps += 1
                    stats.conjugateGradientIterations += inner
                    return (true, (products + 1) / 2, columnErr)
                }
            }
            t /= 4
        }
        u.update(from: savedU, count: n)
        v.update(from: savedV, count: m)
        stats.rejectedNewtonSteps += 1
        return (false, (products + 1) / 2, 0)
    }

    @inline(__always)
    func dot(_ p: UnsafePointer<Double>, _ q: UnsafePointer<Double>, _ count: Int) -> Double {
        entropicDot(p, q, count)
    }

    @inline(__always)
    func norm2(_ p: UnsafePointer<Double>, _ count: Int) -> Double {
        entropicDot(p, p, count).squareRoot()
    }
}

/// Preconditioned conjugate gradients for the Schur system of a Newton step on the balanced
/// dual, `S y = h` with `S = diag(kappa) - P^T diag(1/rho) P` (both Newton steps: the dense
/// loop's ``BalancedSinkhornCore/newtonStep(error:budget:)`` and the driver's
/// ``EntropicNewtonStage``). Only columns with mass (`kappa_j > 0`, `active` of them) take part;
/// the residual is kept orthogonal to the gauge `1` (S's null vector) by subtracting its mean
/// over them. `residual` holds `h` on entry (already projected), `solution` receives `y` from 0,
/// `z`, `direction`, `image` are scratch of `count` values; `apply(d, out)` writes `S d`. Stops
/// when the residual's norm is at most `forcing * norm0`, on non-positive curvature, or after
/// `maxInner` iterations. Returns the iterations started (each applies `S` once).
@inline(__always)
func schurConjugateGradient(count m: Int, kappa: UnsafePointer<Double>, preconditioner: UnsafePointer<Double>, active: Int,
                            residual res: UnsafeMutablePointer<Double>, solution y: UnsafeMutablePointer<Double>,
                            z: UnsafeMutablePointer<Double>, direction dir: UnsafeMutablePointer<Double>,
                            image sdir: UnsafeMutablePointer<Double>, norm0: Double, forcing: Double, maxInner: Int,
                            apply: (UnsafePointer<Double>, UnsafeMutablePointer<Double>) -> Void) -> Int {
    for j in 0 ..< m {
        y[j] = 0
        z[j] = res[j] * preconditioner[j]
        dir[j] = z[j]
    }
    var rz = entropicDot(res, z, m)
    var inner = 0
    while inner < maxInner && norm0 > 0 {
        inner += 1
        apply(dir, sdir)
        let curvature = entropicDot(dir, sdir, m)
        guard curvature > 0 else { break }
        let step = rz / curvature
        var resMean = 0.0
        for j in 0 ..< m {
            y[j] += step * dir[j]
            res[j] -= step * sdir[j]
            if kappa[j] > 0 { resMean += res[j] }
        }
        resMean /= Double(active)
        for j in 0 ..< m where kappa[j] > 0 { res[j] -= resMean }
        if entropicDot(res, res, m).squareRoot() <= forcing * norm0 { break }
        for j in 0 ..< m { z[j] = res[j] * preconditioner[j] }
        let rzNew = entropicDot(res, z, m)
        let beta = rzNew / rz
        rz = rzNew
        for j in 0 ..< m { dir[j] = z[j] + beta * dir[j] }
    }
    return inner
}
