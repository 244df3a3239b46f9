#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

extension BalancedSinkhornCore {
    // MARK: The returned potentials and their plan

    /// The potentials of the current state, f = alpha + eps log u, g = beta + eps log v, with
    /// the additive gauge (f + c, g - c) fixed so that <f, a> = <g, b>, and the costs and
    /// marginal error of their plan.
    func finish(iterations: Int) -> SinkhornOutcome {
        var f = [Double](repeating: 0, count: n), g = [Double](repeating: 0, count: m)
        for i in 0 ..< n { f[i] = alpha[i] + eps * log(u[i]) }
        for j in 0 ..< m { g[j] = beta[j] + eps * log(v[j]) }
        return audited(f: f, g: g, iterations: iterations)
    }

    /// The outcome for the potentials `(f, g)`: the additive gauge `(f + c, g - c)` fixed so
    /// that `<f, a> = <g, b>`, then the costs and marginal error of their plan at the current eps.
    func audited(f: [Double], g: [Double], iterations: Int) -> SinkhornOutcome {
        var f = f, g = g
        var fa = 0.0, gb = 0.0
        for i in 0 ..< n { fa += f[i] * a[i] }
        for j in 0 ..< m { gb += g[j] * b[j] }
        let shift = (gb - fa) / (massA + massB)
        if shift.isFinite {
            for i in 0 ..< n { f[i] += shift }
            for j in 0 ..< m { g[j] -= shift }
        }
        let audit = f.withUnsafeBufferPointer { fp in
            g.withUnsafeBufferPointer { gp in evaluatePlan(f: fp.baseAddress!, g: gp.baseAddress!) }
        }
        return SinkhornOutcome(f: f, g: g, transportCost: audit.transport, regularizedCost: audit.regularized,
                               marginalError: audit.marginalError, iterations: iterations, converged: false)
    }

    /// The costs and the L1 marginal error of the plan `P_ij = a_i b_j exp((f_i + g_j - C_ij) / eps)`,
    /// recomputed from the potentials in one pass of `n m` exponentials (no `n x m` storage:
    /// fixed row blocks each accumulate partial column masses, added in block order).
    ///
    /// `OT_eps = <P, C> + eps KL(P | a (x) b)` with the generalised KL
    /// `sum P log(P / Q) - sum P + sum Q`; since `log(P_ij / (a_i b_j)) = (f_i + g_j - C_ij) / eps`
    /// this is `sum_i f_i (P 1)_i + sum_j g_j (P^T 1)_j - eps (sum P - |a| |b|)`.
    func evaluatePlan(f: UnsafePointer<Double>, g: UnsafePointer<Double>)
        -> (transport: Double, regularized: Double, marginalError: Double) {
        let geo = self.geo, a = self.a, b = self.b, partial = self.partial, scratch = self.scratch
        let m = self.m, n = self.n, invEps = 1 / eps
        let blocks = Swift.min(sinkhornColumnBlocks, n)
        let rowsPerBlock = (n + blocks - 1) / blocks
        // scratch[i] = row mass, scratch[n + i] = transport of row i.
        let body: (Range<Int>) -> Void = { range in
            let row = UnsafeMutablePointer<Double>.allocate(capacity: m)
            defer { row.deallocate() }
            for block in range {
                let acc = partial + block * m
                for j in 0 ..< m { acc[j] = 0 }
                for i in Swift.min(n, block * rowsPerBlock) ..< Swift.min(n, (block + 1) * rowsPerBlock) {
                    geo.kernelRow(i, alpha: f[i], beta: g, invEps: invEps, out: row, columns: 0 ..< m)
                    let ai = a[i]
                    var mass = 0.0
                    for j in 0 ..< m {
                        let p = ai * b[j] * row[j]
                        row[j] = p
                        mass += p
                        acc[j] += p
                    }
                    scratch[i] = mass
                    scratch[n + i] = geo.planCostRow(i, plan: row)
                }
            }
        }
        if parallelWorthIt {
            Parallel.forEachChunk(count: blocks, minimumChunk: 1, body)
        } else {
            body(0 ..< blocks)
        }
        var transport = 0.0, planMass = 0.0, potentialTerm = 0.0, error = 0.0
        for i in 0 ..< n {
            transport += scratch[n + i]
            planMass += scratch[i]
            if scratch[i] != 0 { potentialTerm += f[i] * scratch[i] }
            error += abs(scratch[i] - a[i])
        }
        for j in 0 ..< m {
            var column = 0.0
            for block in 0 ..< blocks { column += partial[block * m + j] }
            if column != 0 { potentialTerm += g[j] * column }
            error += abs(column - b[j])
        }
        let regularized = potentialTerm - eps * (planMass - massA * massB)
        return (transport, regularized, error)
    }
}

// MARK: - Closing an early stop

extension BalancedSinkhornCore {
    /// The outcome of a run that stops short of the tolerance (iteration cap, stall at the
    /// precision floor, or the end of the tightening rounds): the potentials `f` of the last
    /// iterate followed by one exact log-domain Sinkhorn iteration at the current (target) eps,
    /// `g_j <- -eps log sum_i a_i exp((f_i - C_ij) / eps)`, then
    /// `f_i <- -eps log sum_j b_j exp((g_j - C_ij) / eps)`, gauge-fixed and audited.
    ///
    /// Why: an iterate cut off early need not belong to the target eps at all. A cold start
    /// whose cap runs out during the epsilon-scaling stages holds the potentials of a stage
    /// eps many times larger, and their plan at the target eps has entries up to e^700 (total
    /// mass ~1e73 to 1e130 measured on unit-scale 2-D clouds at eps = 1e-4): finite, but
    /// meaningless. After the two c-transforms the plan's rows are exact (to rounding) whatever
    /// `f` was, so its mass is `|a|`, its transport cost lies in `[0, |a| max C]`, and the
    /// potentials are a valid warm start at the target eps. Converged runs never come here, so
    /// their results are unchanged.
    ///
    /// Cost: `2 n m` exponentials and cost evaluations, about two Sinkhorn iterations; not
    /// counted in `iterations` (it is part of returning the result, like the final audit).
    func closedOutcome(from f: [Double], iterations: Int) -> SinkhornOutcome {
        // Any finite f will do; a non-finite entry (not expected) is replaced by 0.
        let start = f.map { $0.isFinite ? $0 : 0 }
        var g = [Double](repeating: 0, count: m), closed = [Double](repeating: 0, count: n)
        start.withUnsafeBufferPointer { fp in
            g.withUnsafeMutableBufferPointer { gp in
                cTransform(fp.baseAddress!, toColumns: true, into: gp.baseAddress!)
            }
        }
        g.withUnsafeBufferPointer { gp in
            closed.withUnsafeMutableBufferPointer { fp in
                cTransform(gp.baseAddress!, toColumns: false, into: fp.baseAddress!)
            }
        }
        return audited(f: closed, g: g, iterations: iterations)
    }

    /// The exact c-transform at the current eps, by log-sum-exp.
    ///
    /// With `toColumns`: `out_j = -eps log sum_i a_i exp((potential_i - C_ij) / eps)` for the `m`
    /// columns; otherwise `out_i = -eps log sum_j b_j exp((potential_j - C_ij) / eps)` for the
    /// `n` rows. Terms of zero weight are left out. The exponents are formed in cost units,
    /// `t_l = potential_l - C + eps log w_l`, and the largest is subtracted before dividing by
    /// eps, so nothing under- or overflows for any eps > 0.
    func cTransform(_ potential: UnsafePointer<Double>, toColumns: Bool, into out: UnsafeMutablePointer<Double>) {
        let geo = self.geo, eps = self.eps, invEps = 1 / eps
        let weights = toColumns ? a : b
        let inner = toColumns ? n : m, outer = toColumns ? m : n
        let logWeights = UnsafeMutablePointer<Double>.allocate(capacity: inner)
        defer { logWeights.deallocate() }
        for l in 0 ..< inner { logWeights[l] = weights[l] > 0 ? eps * log(weights[l]) : -Double.infinity }
        Parallel.forEachChunk(count: outer, minimumChunk: Swift.max(1, 4_096 / Swift.max(1, inner))) { range in
            let exponent = UnsafeMutablePointer<Double>.allocate(capacity: inner)
            defer { exponent.deallocate() }
            for k in range {
                var top = -Double.infinity
                for l in 0 ..< inner {
                    let c = toColumns ? geo.cost(l, k) : geo.cost(k, l)
                    let t = (potential[l] - c) + logWeights[l]
                    exponent[l] = t
                    top = Swift.max(top, t)
                }
                // top is finite: the weights have positive mass and the potential is finite;
                // its own term is exactly 1, so sum >= 1.
                var sum = 0.0
                for l in 0 ..< inner { sum += entropicExp((exponent[l] - top) * invEps) }
                out[k] = -(top + eps * log(sum))
            }
        }
    }
}
