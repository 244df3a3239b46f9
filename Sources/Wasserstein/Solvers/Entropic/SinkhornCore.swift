#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

// The balanced Sinkhorn engine.
//
// Convention (Docs/Theory.md 2.1): P_ij = a_i b_j exp((f_i + g_j - C_ij) / eps), the minimiser of
// <P, C> + eps KL(P | a (x) b) once its marginals are a and b.
//
// Why this design (measured on 2-D Gaussian clouds, x ~ N(0, I), y ~ N((1, 0.5), I), uniform
// weights; the figures are in the report of issue 3 and Benchmarks/python/bench_sinkhorn.py):
//
// * Kernel mode, stabilised by absorption (Schmitzer 2019). The potentials are kept as
//   f = alpha + eps log u, g = beta + eps log v, with the kernel
//   K_ij = exp((alpha_i + beta_j - C_ij) / eps) stored densely. A Sinkhorn half-step is then a
//   plain matrix-vector product over K (memory-bound, no exponentials), as cheap per iteration
//   as POT's kernel mode, where a log-domain step costs n m exponentials (5-10x more even with
//   the vectorised `entropicExp`). Whenever a scaling u_i or v_j leaves [e^-tau, e^tau] it is
//   absorbed into alpha or beta and that row or column of K is recomputed, so K never holds
//   numbers that have lost their meaning: kernel entries that underflow to 0 stand for plan
//   entries below 1e-248 of their row. That is what keeps POT's kernel mode from going wrong
//   at small eps.
// * Exact log-sum-exp fallback per row/column. If a row sum of K still under- or overflows
//   (a cold start at tiny eps, far-apart clouds), that single potential is updated by an exact
//   log-sum-exp and its row is rebuilt around the new value. Nothing can reach NaN or
//   infinity this way, for any eps > 0.
// * Epsilon scaling for cold starts below 1% of the mean cost: stages eps_k = D 10^-k from
//   the squared diameter D down to eps, ten plain iterations each, so that the final stage
//   starts near its solution (halving eps per stage needs about as many iterations but twice
//   the kernel builds; above 1% of the mean cost a cold start at eps is as fast).
// * Over-relaxation (Thibault et al. 2017, Lehmann et al. 2021): u <- u^(1-w) (1/(K b v))^w.
//   The factor w follows the observed convergence rate rho through Young's SOR relation for
//   two-cyclic iterations, theta = (rho + w - 1)^2 / (rho w^2), w* = 2 / (1 + sqrt(1 - theta)),
//   which turns the rate theta of plain Sinkhorn into about w* - 1 (n = 2000, eps = 0.1:
//   ~90 iterations to 1e-9 where plain Sinkhorn needs ~580). Each relaxed coordinate update
//   is kept only if it increases the dual objective in that coordinate.
// * Weakly coupled clusters. At small eps, outliers pair up with their images and are joined
//   to the rest by plan entries of relative size 1e-9 and below; the Sinkhorn iteration then
//   has eigenvalues 1 - 1e-9 (n = 500 to 2000 at eps = 0.01: the five slowest modes are each
//   localised on one such pair) that no relaxation factor can help. An exact line search of
//   the dual along each isolated group's own mode (``shiftClusters(_:)``) removes them: without
//   it the n = 2000, eps = 0.01 case does not reach 1e-9 in 20 000 iterations, with it ~400.
// * Newton-CG (``newtonStep(error:budget:)``) when the scaling iterations predict more than
//   40 further iterations. At moderate eps Newton converges quadratically in a few steps of
//   10-20 CG iterations each; where the plan's exponential nonlinearity limits it to about one
//   unit of eps per step, its measured progress per unit of work falls below that of the
//   scaling iterations and the loop hands back to them.
// * The L1 marginal error of the current iterate comes for free: the row sums r = K (b v)
//   needed by the u-update are the row marginals of the current plan, and the column sums
//   s = K^T (a u) those of the columns. The error reported, and the convergence decision,
//   are those of the plan of the returned potentials, recomputed from them at the end.
// * Early stops (iteration cap, stall) close with one exact log-domain iteration at the target
//   eps (``closedOutcome(from:iterations:)``): a cap that runs out during the epsilon stages
//   would otherwise return potentials of a much larger eps, whose plan at the target eps has
//   mass ~1e73 and beyond. Converged runs skip it and are unchanged.
// * Both cores: row blocks for K (b v); for K^T (a u) eight fixed row blocks each accumulate a
//   partial column sum, added in a fixed order, so results do not depend on the core count.

/// Scalings outside [e^-tau, e^tau] are absorbed into the log potentials. With tau = 69 a kernel
/// entry flushed to zero (< 1e-308) stands for a plan entry below 1e-308 * e^(2 tau) ~ 1e-248
/// relative to its row, while absorptions stay rare.
@usableFromInline let sinkhornAbsorptionBound = 1e30

/// Row or column sums outside this range trigger the exact log-sum-exp update for that index.
@usableFromInline let sinkhornSafeSumRange = 1e-200 ... 1e200

/// Number of row blocks for the transposed product; fixed, so that results do not depend on
/// the number of cores.
@usableFromInline let sinkhornColumnBlocks = 8

/// The result of the core iteration, before it is packaged as a ``TransportResult``.
internal struct SinkhornOutcome {
    var f: [Double]
    var g: [Double]
    var transportCost: Double
    var regularizedCost: Double
    var marginalError: Double
    var iterations: Int
    var converged: Bool
}

/// Parameters of one balanced solve.
internal struct SinkhornRun {
    var epsilon: Double
    var tolerance: Double
    var maxIterations: Int
    /// Geometric epsilon stages: factor in (0, 1) and iterations per intermediate stage; nil for none.
    var scaling: (factor: Double, iterationsPerStage: Int)?
    var relaxation: RelaxationRule
    /// Whether slow phases switch to Newton-CG steps.
    var newton: Bool = true
    /// Receives a report per iteration.
    var progress: EntropicProgressObserver? = nil
}

/// The state of a balanced solve: raw views of the workspace buffers and of the problem.

internal struct BalancedSinkhornCore {
    let geo: EntropicGeometry
    let a: UnsafePointer<Double>
    let b: UnsafePointer<Double>
    let massA: Double
    let massB: Double
    let K: UnsafeMutablePointer<Double>
    let alpha: UnsafeMutablePointer<Double>
    let beta: UnsafeMutablePointer<Double>
    let u: UnsafeMutablePointer<Double>
    let v: UnsafeMutablePointer<Double>
    let r: UnsafeMutablePointer<Double>
    let s: UnsafeMutablePointer<Double>
    let w: UnsafeMutablePointer<Double>
    let scratch: UnsafeMutablePointer<Double>
    let partial: UnsafeMutablePointer<Double>
    /// 4 n + 9 m values of Newton-CG vectors.
    let newton: UnsafeMutablePointer<Double>
    var eps: Double
    var stats = SinkhornStatistics()
    /// Where reports go, and what they say of the solve around the running ``iterate``: the
    /// iterations before it, the stage and the number of stages.
    var progress: EntropicProgressObserver? = nil
    var progressStage = (offset: 0, stage: 0, count: 1, perStage: 1, maxIterations: 0)

    var n: Int { geo.n }
    var m: Int { geo.m }

    /// Rows per parallel chunk: about 16k kernel entries, below which threads do not pay.
    var rowChunk: Int { StoredKernel.rowChunk(columns: m) }
    var parallelWorthIt: Bool { StoredKernel.parallelWorthIt(rows: n, columns: m) }

    // MARK: Driver

    /// The full solve: stages, final stage, costs.
    mutating func run(_ run: SinkhornRun, warmStart: Bool, relaxationHint: Double) -> (SinkhornOutcome, Double) {
        for i in 0 ..< n { u[i] = 1 }
        for j in 0 ..< m { v[j] = 1 }
        if !warmStart {
            for i in 0 ..< n { alpha[i] = 0 }
            for j in 0 ..< m { beta[j] = 0 }
        }
        var schedule = [Double]()
        // Stages only pay below about 1% of the mean cost (measured, n = 1000 and 2000: at
        // eps = C_mean / 50 a cold start at eps needs ~95 iterations and one kernel build, the
        // stages ~110 and five builds; at C_mean / 500 the stages save half the iterations).
        if let scaling = run.scaling, !warmStart, run.epsilon < 0.01 * meanCost() {
            // Each intermediate stage runs at least one iteration of the budget, so more stages
            // than that cannot run (a factor close to 1 would otherwise ask for billions).
            let stageLimit = run.maxIterations / scaling.iterationsPerStage + 1
            var e = costUpperBound()
            while e > run.epsilon && schedule.count < stageLimit {
                schedule.append(e)
                e *= scaling.factor
            }
        }
        schedule.append(run.epsilon)

        var total = 0
        var finalRelaxation = RelaxationController(rule: run.relaxation, hint: warmStart ? relaxationHint : 1)
        progress = run.progress
        progressStage = (0, 0, schedule.count, run.scaling?.iterationsPerStage ?? 1, run.maxIterations)
        for (index, stageEps) in schedule.enumerated() {
            // Once the budget is spent, the remaining intermediate stages would run no iteration:
            // go straight to the final one.
            if index < schedule.count - 1 && total >= run.maxIterations { continue }
            if index > 0 { absorbAll() }
            eps = stageEps
            buildKernel()
            stats.stages += 1
            progressStage.offset = total
            progressStage.stage = index
            if index == schedule.count - 1 { break }
            var plain = RelaxationController(rule: .plain, hint: 1)
            let (its, _, _) = iterate(tolerance: run.tolerance,
                                      limit: Swift.min(run.maxIterations - total, run.scaling!.iterationsPerStage),
                                      relaxation: &plain)
            total += its
        }
        // The final stage. Convergence is judged on the plan of the potentials actually
        // returned, P_ij = a_i b_j exp((f_i + g_j - C_ij) / eps), evaluated afresh: it differs
        // from the internal (alpha, u, K) representation by rounding, which matters when the
        // potentials are large against eps (costs ~1e6 at eps = 1e-4 leave ~1e-6 relative
        // precision in each plan entry). If the internal tolerance was met but the returned
        // plan misses the tolerance, iterate further with a tighter internal tolerance; when
        // double precision cannot get there the iteration cap ends it and says so.
        var internalTolerance = run.tolerance
        var rounds = 0
        var previousError = Double.infinity
        var outcome: SinkhornOutcome
        while true {
            progressStage.offset = total
            let (its, _, _) = iterate(tolerance: internalTolerance, limit: run.maxIterations - total,
                                      relaxation: &finalRelaxation, newton: run.newton)
            total += its
            outcome = finish(iterations: total)
            rounds += 1
            // Stop tightening once a round no longer halves the error of the returned plan:
            // that is the precision floor.
            if outcome.marginalError <= run.tolerance || total >= run.maxIterations || rounds >= 4
                || outcome.marginalError > 0.5 * previousError { break }
            previousError = outcome.marginalError
            internalTolerance *= Swift.min(0.1, run.tolerance / outcome.marginalError)
        }
        // Stopped short of the tolerance: return potentials that belong to the target eps.
        if !(outcome.marginalError <= run.tolerance) {
            outcome = closedOutcome(from: outcome.f, iterations: total)
        }
        outcome.converged = outcome.marginalError <= run.tolerance
        stats.iterations = total
        stats.finalRelaxation = finalRelaxation.omega
        return (outcome, finalRelaxation.omega)
    }

    /// Iterates at the current eps until the marginal error is at most `tolerance` or
    /// `limit` iterations have run. The plan state (u, v) on return has row sums a u r and
    /// column sums b v s. Returns (iterations, converged, error of the returned state).
    ///
    /// With `newton` set, the loop switches to Newton-CG steps (``newtonStep(error:budget:)``) when
    /// the observed rate of the scaling iterations predicts many more iterations.
    mutating func iterate(tolerance: Double, limit: Int, relaxation: inout RelaxationController,
                          newton: Bool = false) -> (Int, Bool, Double) {
        var columnErr = Double.infinity  // unknown until the first v-update
        var iterations = 0
        var history = [Double]()
        var newtonMode = false
        var cooldown = 12
        // Progress per unit of work (natural log of the error reduction per iteration) of
        // the scaling iterations just before Newton took over: Newton keeps the lead only
        // while it does better.
        var scalingEfficiency = 0.0
        var poorNewtonSteps = 0
        var stagnation = StagnationWatch(floor: precisionFloor())
        var clusters = [(rows: [Int], columns: [Int])]()
        var nextClusterSearch = 1
        while true {
            computeRowSums()
            let repaired = repairRows()
            let err = repaired > 0 ? Double.infinity : rowError() + columnErr
            if iterations > 0, let progress {
                let s = progressStage
                progress(EntropicProgress(iteration: s.offset + iterations, marginalError: err, targetError: tolerance,
                                          epsilon: eps, stage: s.stage, stageCount: s.count, iterationsPerStage: s.perStage,
                                          maxIterations: s.maxIterations))
            }
            if err <= tolerance { return (iterations, true, err) }
            if iterations >= limit || stagnation.stalled(after: err) {
                return (iterations, false, err.isFinite ? err : exactError())
            }
            if iterations >= nextClusterSearch && columnErr.isFinite {
                clusters = findWeakClusters()
                nextClusterSearch = iterations + 50
            }
            if newton && err.isFinite && limit - iterations >= 12 {
                if cooldown > 0 { cooldown -= 1 }
                var tryNewton = newtonMode
                if !tryNewton && cooldown == 0, let rate = recentRate(history), err < 1e-2 * massA {
                    // Worth a try when the scaling iterations predict more than 40 more.
                    tryNewton = !(rate < 1) || log(tolerance / err) / log(rate) > 40
                    scalingEfficiency = rate < 1 ? -log(rate) : 0
                    poorNewtonSteps = 0
                }
                if tryNewton {
                    let step = newtonStep(error: err, budget: limit - iterations)
                    iterations += step.work
                    var work = step.work
                    if step.accepted {
                        // A plain scaling sweep after each Newton step: it solves every single
                        // coordinate exactly, which the linearised step does poorly for
                        // potentials that must move by many eps (Newton on an exponential
                        // moves them by about eps per step).
                        if iterations < limit {
                            iterations += 1
                            work += 1
                            columnErr = sweep(omega: 1, clusters: clusters)
                        } else {
                            columnErr = step.columnError
                            absorbLargeScalings()
                        }
                        computeRowSums()
                        let after = rowError() + columnErr
                        let efficiency = log(err / after) / Double(Swift.max(1, work))
                        // Two steps in a row at less than half the scaling iterations' rate
                        // hand the lead back (one slow step is often a large nonlinear move).
                        poorNewtonSteps = efficiency > 0.5 * scalingEfficiency ? 0 : poorNewtonSteps + 1
                        newtonMode = poorNewtonSteps < 2
                        if newtonMode { continue }
                        cooldown = Swift.max(50, 2 * work)
                        history.removeAll()
                        relaxation.restart()
                        continue
                    }
                    newtonMode = false
                    cooldown = Swift.max(50, 2 * work)
                    history.removeAll()
                    relaxation.restart()
                    computeColumnSums()  // s of the restored state, for the diagnostics
                }
            }
            relaxation.observe(err)
            if relaxation.steadyIterations == 0 { history.removeAll() }
            if err.isFinite {
                history.append(err)
                if history.count > 12 { history.removeFirst() }
            }
            iterations += 1
            columnErr = sweep(omega: relaxation.omega, clusters: clusters)
        }
    }

    /// One (relaxed) Sinkhorn iteration from a state whose r is up to date: u-update, column
    /// sums, v-update, cluster shifts, absorption. Returns the column error of the new state
    /// (infinity when a column needed the log-domain repair).
    mutating func sweep(omega: Double, clusters: [(rows: [Int], columns: [Int])]) -> Double {
        relaxedUpdate(u, sums: r, count: n, omega: omega)
        computeColumnSums()
        let repairedColumns = repairColumns()
        relaxedUpdate(v, sums: s, count: m, omega: omega)
        if !clusters.isEmpty { shiftClusters(clusters) }
        let columnErr = repairedColumns > 0 ? Double.infinity : columnError()
        absorbLargeScalings()
        return columnErr
    }

    /// One relaxed scaling update `x <- x^(1-omega) / sum^omega`, coordinate-wise, keeping
    /// a relaxed value only where it raises the dual objective; `sums` are the current
    /// r (for u) or s (for v).
    @inline(__always)
    func relaxedUpdate(_ x: UnsafeMutablePointer<Double>, sums: UnsafeMutablePointer<Double>, count: Int, omega: Double) {
        if omega == 1 {
            for k in 0 ..< count { x[k] = 1 / sums[k] }
            return
        }
        for k in 0 ..< count {
            // z = (potential - plain update) / eps; the dual objective in this coordinate is
            // proportional to h(z) = z - e^z, maximal at z = 0.
            let q = x[k] * sums[k]
            let z0 = log(q)
            let z1 = (1 - omega) * z0
            let e1 = exp(z1)
            x[k] = (z1 - e1 >= z0 - q) ? e1 / sums[k] : 1 / sums[k]
        }
    }

    /// The L1 row error of the current plan, from r: sum_i a_i |u_i r_i - 1|.
    func rowError() -> Double {
        var e = 0.0
        for i in 0 ..< n { e += a[i] * abs(u[i] * r[i] - 1) }
        return e
    }

    func columnError() -> Double {
        var e = 0.0
        for j in 0 ..< m { e += b[j] * abs(v[j] * s[j] - 1) }
        return e
    }

    /// The L1 marginal error of the current state, recomputing both products.
    func exactError() -> Double {
        computeRowSums()
        computeColumnSums()
        return rowError() + columnError()
    }

    /// The geometric mean contraction factor of the recorded errors, once 12 are recorded.
    func recentRate(_ history: [Double]) -> Double? {
        guard history.count >= 12, let first = history.first, let last = history.last, first > 0 else { return nil }
        return pow(last / first, 1 / Double(history.count - 1))
    }

    /// An estimate of the smallest L1 marginal error double precision can resolve: plan
    /// entries carry a relative rounding error of about ulp(1) * (|f| + |g| + C) / eps.
    func precisionFloor() -> Double {
        var largest = costUpperBound()
        var fMax = 0.0, gMax = 0.0
        for i in 0 ..< n { fMax = Swift.max(fMax, abs(alpha[i] + eps * log(u[i]))) }
        for j in 0 ..< m { gMax = Swift.max(gMax, abs(beta[j] + eps * log(v[j]))) }
        largest += fMax + gMax
        return Double.ulpOfOne * largest / eps * (massA + massB)
    }

    /// The mean cost sum_ij a_i b_j C_ij / (|a| |b|) = |m_a - m_b|^2 + tr Cov_a + tr Cov_b, in
    /// O((n + m) D).
    func meanCost() -> Double {
        var total = 0.0
        for k in 0 ..< geo.d {
            var ma = 0.0, qa = 0.0, mb = 0.0, qb = 0.0
            for i in 0 ..< n { let t = geo.x[i * geo.d + k]; ma += a[i] * t; qa += a[i] * t * t }
            for j in 0 ..< m { let t = geo.y[j * geo.d + k]; mb += b[j] * t; qb += b[j] * t * t }
            ma /= massA; qa /= massA; mb /= massB; qb /= massB
            total += qa + qb - 2 * ma * mb
        }
        return Swift.max(total, 0)
    }

    /// An upper bound on max C_ij from the bounding box of both clouds: the starting epsilon
    /// of the scaling schedule, where the kernel has no entry below e^-1.
    func costUpperBound() -> Double {
        var total = 0.0
        for k in 0 ..< geo.d {
            var lo = Double.infinity, hi = -Double.infinity
            for i in 0 ..< n { lo = Swift.min(lo, geo.x[i * geo.d + k]); hi = Swift.max(hi, geo.x[i * geo.d + k]) }
            for j in 0 ..< m { lo = Swift.min(lo, geo.y[j * geo.d + k]); hi = Swift.max(hi, geo.y[j * geo.d + k]) }
            total += (hi - lo) * (hi - lo)
        }
        return Swift.max(total, eps)
    }
}
