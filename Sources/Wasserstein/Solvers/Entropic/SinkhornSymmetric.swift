#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

// MARK: - The symmetric problem OT_eps(a, a)

extension BalancedSinkhornCore {
    /// Solves `OT_eps(a, a)` (source and target the same cloud; the caller sets y = x, b = a).
    ///
    /// The optimum is symmetric, `P_ij = a_i a_j exp((f_i + f_j - C_ij) / eps)` with one
    /// potential f, the fixed point of `T(f)_i = -eps log sum_j a_j exp((f_j - C_ij) / eps)`.
    /// The averaged iteration `f <- (f + T(f)) / 2` (Feydy et al. 2019) converges at a rate
    /// of at most 1/2 for every eps: the linearisation of T is `-diag(a)^-1 P`, whose
    /// eigenvalues lie in [-1, 0] because the Gaussian kernel is positive semi-definite, so the
    /// averaged map has eigenvalues in [0, 1/2]. In scaling form this is `u <- sqrt(u / (K a u))`,
    /// one product with K per iteration. The stabilisation (absorption into alpha, exact
    /// log-sum-exp for rows whose sum leaves the safe range) is the same as in the balanced case.
    mutating func runSymmetric(tolerance: Double, maxIterations: Int, warmStart: Bool) -> SinkhornOutcome {
        if !warmStart { for i in 0 ..< n { alpha[i] = 0 } }
        for i in 0 ..< n { u[i] = 1 }
        rebuildSymmetric()
        stats.stages = 1
        var iterations = 0
        // As in the balanced case, convergence is judged on the plan of the returned potential.
        var internalTolerance = tolerance
        var rounds = 0
        var previousError = Double.infinity
        var outcome: SinkhornOutcome
        while true {
            iterations += iterateSymmetric(tolerance: internalTolerance, limit: maxIterations - iterations)
            var f = [Double](repeating: 0, count: n)
            for i in 0 ..< n { f[i] = alpha[i] + eps * log(u[i]) }
            let audit = f.withUnsafeBufferPointer { evaluatePlan(f: $0.baseAddress!, g: $0.baseAddress!) }
            outcome = SinkhornOutcome(f: f, g: f, transportCost: audit.transport, regularizedCost: audit.regularized,
                                      marginalError: audit.marginalError, iterations: iterations, converged: false)
            rounds += 1
            if audit.marginalError <= tolerance || iterations >= maxIterations || rounds >= 4
                || audit.marginalError > 0.5 * previousError { break }
            previousError = audit.marginalError
            internalTolerance *= Swift.min(0.1, tolerance / audit.marginalError)
        }
        // As in the balanced case: an early stop returns the potentials of one exact
        // log-domain iteration from the last f (then g != f, and the rows are exact).
        if !(outcome.marginalError <= tolerance) {
            outcome = closedOutcome(from: outcome.f, iterations: iterations)
        }
        outcome.converged = outcome.marginalError <= tolerance
        stats.iterations = iterations
        return outcome
    }

    /// The averaged iteration until the internal L1 error (2 sum_i a_i |u_i (K a u)_i - 1|) is
    /// at most `tolerance` or `limit` iterations ran; returns the iterations run.
    mutating func iterateSymmetric(tolerance: Double, limit: Int) -> Int {
        var iterations = 0
        var stagnation = StagnationWatch(floor: precisionFloor())
        while true {
            for i in 0 ..< n { w[i] = a[i] * u[i] }
            multiplyKernel(w, into: r)
            if repairSymmetricRows() { continue }
            var rowErr = 0.0
            for i in 0 ..< n { rowErr += a[i] * abs(u[i] * r[i] - 1) }
            if 2 * rowErr <= tolerance || iterations >= limit || stagnation.stalled(after: 2 * rowErr) { return iterations }
            iterations += 1
            var outside = false
            for i in 0 ..< n {
                u[i] = (u[i] / r[i]).squareRoot()
                if !(u[i] >= 1 / sinkhornAbsorptionBound && u[i] <= sinkhornAbsorptionBound) { outside = true }
            }
            if outside {
                for i in 0 ..< n {
                    alpha[i] += eps * log(u[i])
                    u[i] = 1
                }
                rebuildSymmetric()
            }
        }
    }

    /// beta = alpha, then a full kernel build (the kernel is symmetric).
    mutating func rebuildSymmetric() {
        beta.update(from: alpha, count: n)
        buildKernel()
    }

    /// Rows whose sum K a u left the safe range: the averaged update of f_i is computed by an
    /// exact log-sum-exp, every scaling is absorbed, and the kernel rebuilt. Returns whether
    /// anything was repaired (the caller then recomputes the products).
    mutating func repairSymmetricRows() -> Bool {
        var bad = [Int]()
        for i in 0 ..< n where !sinkhornSafeSumRange.contains(r[i]) { bad.append(i) }
        guard !bad.isEmpty else { return false }
        stats.logDomainUpdates += bad.count
        let invEps = 1 / eps
        // f = alpha + eps log u, and the column part log(a_j) + f_j / eps of the exponent.
        for j in 0 ..< n {
            scratch[j] = alpha[j] + eps * log(u[j])
            w[j] = a[j] > 0 ? log(a[j]) + scratch[j] * invEps : -Double.infinity
        }
        var updated = [Double](repeating: 0, count: bad.count)
        for (t, i) in bad.enumerated() {
            var top = -Double.infinity
            for j in 0 ..< n where w[j] > -Double.infinity { top = Swift.max(top, w[j] - geo.cost(i, j) * invEps) }
            var sum = 0.0
            for j in 0 ..< n where w[j] > -Double.infinity { sum += exp(w[j] - geo.cost(i, j) * invEps - top) }
            let target = -eps * (top + log(sum))
            updated[t] = (scratch[i] + target) / 2
        }
        for i in 0 ..< n { alpha[i] = scratch[i]; u[i] = 1 }
        for (t, i) in bad.enumerated() { alpha[i] = updated[t] }
        rebuildSymmetric()
        return true
    }
}
