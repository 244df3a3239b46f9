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

/// How the relaxation factor is chosen.
internal enum RelaxationRule {
    case plain
    case fixed(Double)
    case adaptive
}

/// The adaptive over-relaxation controller (see the notes at the top of this file).
///
/// It watches the marginal error over windows of iterations. The rate rho seen at factor w
/// gives, by Young's relation, the rate theta of plain Sinkhorn, and from it the optimal
/// factor w* = 2 / (1 + sqrt(1 - theta)). Early windows underestimate theta (fast modes are
/// still decaying), so the factor only moves up on that evidence; it moves down (halving
/// w - 1) only when two windows in a row fail to contract, which also absorbs the transient
/// growth that follows every increase of w.
internal struct RelaxationController {
    private(set) var omega: Double
    let adaptive: Bool
    /// The largest factor used; 2 is the limit of convergence.
    let maximum = 1.95
    /// Iterations per rate estimate, and iterations skipped after a change of the factor.
    let window = 10
    let settleAfterChange = 6
    private var settle = 4
    private var windowStart: Double?
    private var windowCount = 0
    private var failures = 0
    private var theta = 0.0
    /// Iterations since the factor last changed (for callers that need a steady regime).
    private(set) var steadyIterations = 0

    /// The controller of an engine loop for the parameters' relaxation, from a plain start.
    init(_ relaxation: EntropicParameters.Relaxation) {
        switch relaxation {
        case .none: self.init(rule: .plain, hint: 1)
        case .fixed(let w): self.init(rule: .fixed(w), hint: 1)
        case .adaptive: self.init(rule: .adaptive, hint: 1)
        }
    }

    init(rule: RelaxationRule, hint: Double) {
        switch rule {
        case .plain:
            omega = 1
            adaptive = false
        case .fixed(let w):
            omega = w
            adaptive = false
        case .adaptive:
            omega = Swift.min(Swift.max(1, hint), maximum)
            adaptive = true
        }
    }

    /// Feeds the marginal error of the latest iterate.
    mutating func observe(_ error: Double) {
        steadyIterations += 1
        guard adaptive, error.isFinite, error > 0 else { return }
        if settle > 0 {
            settle -= 1
            return
        }
        guard let start = windowStart else {
            windowStart = error
            windowCount = 0
            return
        }
        windowCount += 1
        guard windowCount >= window else { return }
        let rho = pow(error / start, 1 / Double(windowCount))
        windowStart = error
        windowCount = 0
        if !(rho < 0.999) {
            failures += 1
            if failures >= 2 {
                change(to: omega - 1 < 0.05 ? 1 : 1 + (omega - 1) / 2)
                failures = 0
            }
            return
        }
        failures = 0
        let w = omega
        let implied = Swift.min(0.999_999, (rho + w - 1) * (rho + w - 1) / (rho * w * w))
        guard implied > theta else { return }
        theta = implied
        let target = Swift.min(maximum, Swift.max(1, 2 / (1 + (1 - theta).squareRoot())))
        if target > omega + 0.01 { change(to: target) }
    }

    /// Back to plain Sinkhorn with a fresh estimate, after another method changed the iterate:
    /// a large factor applied to a new starting point first amplifies its error (the
    /// transient of a non-normal iteration) before the asymptotic rate takes over.
    mutating func restart() {
        guard adaptive else { return }
        theta = 0
        failures = 0
        change(to: 1)
    }

    private mutating func change(to newOmega: Double) {
        omega = newOmega
        settle = settleAfterChange
        windowStart = nil
        steadyIterations = 0
    }
}

/// Stops an iteration that sits at the precision floor: no halving of the best error for 500
/// iterations while that error is below the (pessimistic) floor estimate. Far above the floor
/// nothing is ever declared stalled, so slow but genuine convergence runs to the cap.
internal struct StagnationWatch {
    let floor: Double
    private var best = Double.infinity
    private var sinceImprovement = 0

    init(floor: Double) { self.floor = floor }

    mutating func stalled(after error: Double) -> Bool {
        guard error.isFinite else { return false }
        if error < 0.5 * best {
            best = error
            sinceImprovement = 0
            return false
        }
        sinceImprovement += 1
        return sinceImprovement >= 500 && best <= floor
    }
}

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

    var n: Int { geo.n }
    var m: Int { geo.m }

    /// Rows per parallel chunk: about 16k kernel entries, below which threads do not pay.
    var rowChunk: Int { Swift.max(1, 16_384 / Swift.max(1, m)) }
    var parallelWorthIt: Bool { n * m >= 65_536 }

    // MARK: Kernel construction

    /// Recomputes all of K from alpha, beta and eps.
    mutating func buildKernel() {
        stats.kernelBuilds += 1
        let geo = self.geo, K = self.K, alpha = self.alpha, beta = self.beta, m = self.m
        let invEps = 1 / eps
        Parallel.forEachChunk(count: n, minimumChunk: Swift.max(1, 4_096 / Swift.max(1, m))) { range in
            for i in range {
                geo.kernelRow(i, alpha: alpha[i], beta: beta, invEps: invEps, out: K + i * m, columns: 0 ..< m)
            }
        }
    }

    func rebuildRow(_ i: Int) {
        geo.kernelRow(i, alpha: alpha[i], beta: beta, invEps: 1 / eps, out: K + i * m, columns: 0 ..< m)
    }

    func rebuildColumn(_ j: Int) {
        let invEps = 1 / eps, bj = beta[j]
        for i in 0 ..< n {
            K[i * m + j] = entropicExp((alpha[i] + bj - geo.cost(i, j)) * invEps)
        }
    }

    // MARK: Products

    /// out = K x (x indexed by columns, out by rows), rows split over cores.
    func multiplyKernel(_ x: UnsafePointer<Double>, into out: UnsafeMutablePointer<Double>) {
        let K = self.K, m = self.m
        Parallel.forEachChunk(count: n, minimumChunk: rowChunk) { range in
            for i in range { out[i] = entropicDot(K + i * m, x, m) }
        }
    }

    /// out = K^T x (x indexed by rows, out by columns): eight fixed row blocks each
    /// accumulate a partial column sum; the partials are added in block order.
    func multiplyKernelTransposed(_ x: UnsafePointer<Double>, into out: UnsafeMutablePointer<Double>) {
        let K = self.K, partial = self.partial, m = self.m, n = self.n
        let blocks = Swift.min(sinkhornColumnBlocks, n)
        let rowsPerBlock = (n + blocks - 1) / blocks
        let body: (Range<Int>) -> Void = { range in
            for block in range {
                let acc = partial + block * m
                for j in 0 ..< m { acc[j] = 0 }
                let hi = Swift.min(n, (block + 1) * rowsPerBlock)
                var i = block * rowsPerBlock
                while i + 2 <= hi {
                    let c0 = x[i], c1 = x[i + 1]
                    let k0 = K + i * m, k1 = k0 + m
                    for j in 0 ..< m { acc[j] += c0 * k0[j] + c1 * k1[j] }
                    i += 2
                }
                if i < hi {
                    let c0 = x[i], k0 = K + i * m
                    for j in 0 ..< m { acc[j] += c0 * k0[j] }
                }
            }
        }
        if parallelWorthIt {
            Parallel.forEachChunk(count: blocks, minimumChunk: 1, body)
        } else {
            body(0 ..< blocks)
        }
        for j in 0 ..< m {
            var t = 0.0
            for block in 0 ..< blocks { t += partial[block * m + j] }
            out[j] = t
        }
    }

    /// out_j = sum_i K_ij^2 x_i (for the diagonal of the Newton Schur complement).
    func multiplySquaredKernelTransposed(_ x: UnsafePointer<Double>, into out: UnsafeMutablePointer<Double>) {
        let K = self.K, partial = self.partial, m = self.m, n = self.n
        let blocks = Swift.min(sinkhornColumnBlocks, n)
        let rowsPerBlock = (n + blocks - 1) / blocks
        let body: (Range<Int>) -> Void = { range in
            for block in range {
                let acc = partial + block * m
                for j in 0 ..< m { acc[j] = 0 }
                for i in Swift.min(n, block * rowsPerBlock) ..< Swift.min(n, (block + 1) * rowsPerBlock) {
                    let c = x[i], k = K + i * m
                    for j in 0 ..< m { acc[j] += c * k[j] * k[j] }
                }
            }
        }
        if parallelWorthIt {
            Parallel.forEachChunk(count: blocks, minimumChunk: 1, body)
        } else {
            body(0 ..< blocks)
        }
        for j in 0 ..< m {
            var t = 0.0
            for block in 0 ..< blocks { t += partial[block * m + j] }
            out[j] = t
        }
    }

    /// r = K (b v): the row sums of the current plan divided by a_i u_i.
    func computeRowSums() {
        for j in 0 ..< m { w[j] = b[j] * v[j] }
        multiplyKernel(w, into: r)
    }

    /// s = K^T (a u): the column sums of the current plan divided by b_j v_j.
    func computeColumnSums() {
        for i in 0 ..< n { w[i] = a[i] * u[i] }
        multiplyKernelTransposed(w, into: s)
    }

    // MARK: Exact fallbacks

    /// Rows whose sum left the safe range get f_i from an exact log-sum-exp (the plain update),
    /// alpha_i = f_i, u_i = 1, and a rebuilt row. Returns the number of rows fixed.
    mutating func repairRows() -> Int {
        var bad = [Int]()
        for i in 0 ..< n where !sinkhornSafeSumRange.contains(r[i]) { bad.append(i) }
        guard !bad.isEmpty else { return 0 }
        stats.logDomainUpdates += bad.count
        // log(b_j v_j) + beta_j / eps, the column part of the exponent.
        let invEps = 1 / eps
        for j in 0 ..< m { scratch[j] = w[j] > 0 ? log(w[j]) + beta[j] * invEps : -Double.infinity }
        let geo = self.geo, scratch = self.scratch, alpha = self.alpha, u = self.u, r = self.r, w = self.w
        let K = self.K, beta = self.beta, m = self.m, eps = self.eps
        bad.withUnsafeBufferPointer { list in
            Parallel.forEachChunk(count: list.count, minimumChunk: Swift.max(1, 2_048 / Swift.max(1, m))) { range in
                for t in range {
                    let i = list[t]
                    alpha[i] = -eps * Self.stabilizedLogSumExp(count: m, logWeights: scratch) { geo.cost(i, $0) * invEps }
                    u[i] = 1
                    geo.kernelRow(i, alpha: alpha[i], beta: beta, invEps: invEps, out: K + i * m, columns: 0 ..< m)
                    r[i] = entropicDot(K + i * m, w, m)
                }
            }
        }
        return bad.count
    }

    /// `log sum_k exp(logWeights[k] - scaledCost(k))` over the `k` with finite `logWeights[k]`,
    /// shifted by its largest term so that nothing overflows: the exact log-domain update of
    /// one potential, shared by the row and column repairs.
    @inline(__always)
    static func stabilizedLogSumExp(count: Int, logWeights: UnsafeMutablePointer<Double>, scaledCost: (Int) -> Double) -> Double {
        var top = -Double.infinity
        for k in 0 ..< count where logWeights[k] > -Double.infinity {
            top = Swift.max(top, logWeights[k] - scaledCost(k))
        }
        var sum = 0.0
        for k in 0 ..< count where logWeights[k] > -Double.infinity {
            sum += exp(logWeights[k] - scaledCost(k) - top)
        }
        return top + log(sum)
    }

    /// The column counterpart of ``repairRows()``, using s and w = a u.
    mutating func repairColumns() -> Int {
        var bad = [Int]()
        for j in 0 ..< m where !sinkhornSafeSumRange.contains(s[j]) { bad.append(j) }
        guard !bad.isEmpty else { return 0 }
        stats.logDomainUpdates += bad.count
        let invEps = 1 / eps
        for i in 0 ..< n { scratch[i] = w[i] > 0 ? log(w[i]) + alpha[i] * invEps : -Double.infinity }
        for j in bad {
            beta[j] = -eps * Self.stabilizedLogSumExp(count: n, logWeights: scratch) { geo.cost($0, j) * invEps }
            v[j] = 1
            rebuildColumn(j)
            var t = 0.0
            for i in 0 ..< n { t += K[i * m + j] * w[i] }
            s[j] = t
        }
        return bad.count
    }

    // MARK: Updates

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

    /// Absorbs scalings outside the bound into alpha/beta and rebuilds what changed. The
    /// products r and s are rescaled so that they keep describing the same plan.
    mutating func absorbLargeScalings() {
        var rows = [Int](), columns = [Int]()
        let lo = 1 / sinkhornAbsorptionBound, hi = sinkhornAbsorptionBound
        for i in 0 ..< n where !(u[i] >= lo && u[i] <= hi) { rows.append(i) }
        for j in 0 ..< m where !(v[j] >= lo && v[j] <= hi) { columns.append(j) }
        if rows.isEmpty && columns.isEmpty { return }
        if rows.count * m + columns.count * n > n * m / 4 {
            absorbAll()
            buildKernel()
            return
        }
        for i in rows {
            alpha[i] += eps * log(u[i])
            r[i] *= u[i]
            u[i] = 1
        }
        for j in columns {
            beta[j] += eps * log(v[j])
            s[j] *= v[j]
            v[j] = 1
        }
        stats.partialRebuilds += rows.count + columns.count
        let me = self
        rows.withUnsafeBufferPointer { list in
            Parallel.forEachChunk(count: list.count, minimumChunk: Swift.max(1, 4_096 / Swift.max(1, m))) { range in
                for t in range { me.rebuildRow(list[t]) }
            }
        }
        for j in columns { rebuildColumn(j) }
    }

    /// Moves all scalings into the potentials (alpha += eps log u, ...), leaving u = v = 1.
    /// The caller rebuilds the kernel.
    func absorbAll() {
        for i in 0 ..< n {
            alpha[i] += eps * log(u[i])
            r[i] *= u[i]
            u[i] = 1
        }
        for j in 0 ..< m {
            beta[j] += eps * log(v[j])
            s[j] *= v[j]
            v[j] = 1
        }
    }

    // MARK: Driver

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

    /// The geometric mean contraction factor of the recorded errors, once 12 are recorded.
    func recentRate(_ history: [Double]) -> Double? {
        guard history.count >= 12, let first = history.first, let last = history.last, first > 0 else { return nil }
        return pow(last / first, 1 / Double(history.count - 1))
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

    // MARK: Weakly coupled clusters

    /// The groups of points that the plan couples to the rest only weakly: connected
    /// components (other than the largest) of the graph whose edges are the plan entries
    /// holding at least 1% of their row's or their column's mass, at the current u, v (r and s
    /// up to date). Each has rows I and columns J.
    ///
    /// Why: at small eps an outlier x_i and its image y_j, or a few such points, form a group
    /// joined to the rest by plan entries of relative size delta ~ exp(-gap / eps). Its
    /// imbalance is the eigenvector of an eigenvalue 1 - O(delta) of the Sinkhorn iteration
    /// (measured on 2-D Gaussian clouds at eps = 0.01, n = 500 to 2000: the five slowest modes,
    /// 1 - 1e-9, are each localised on one pair), and even Newton's method needs one step per
    /// factor e of that imbalance, because the plan is exponential in the potentials. The
    /// exact line search of ``shiftClusters(_:)`` removes these modes.
    func findWeakClusters() -> [(rows: [Int], columns: [Int])] {
        let K = self.K, a = self.a, b = self.b, u = self.u, v = self.v, r = self.r, s = self.s, m = self.m
        var edges = [[Int]](repeating: [], count: n)
        edges.withUnsafeMutableBufferPointer { out in
            let base = out.baseAddress!
            Parallel.forEachChunk(count: n, minimumChunk: rowChunk) { range in
                for i in range {
                    let row = K + i * m
                    let rowLimit = 0.01 * r[i], scale = a[i] * u[i]
                    var list = [Int]()
                    for j in 0 ..< m {
                        let k = row[j]
                        if k * b[j] * v[j] >= rowLimit || k * scale >= 0.01 * s[j] { list.append(j) }
                    }
                    (base + i).pointee = list
                }
            }
        }
        // Union-find over rows 0..<n and columns n..<n+m.
        var parent = Array(0 ..< (n + m))
        func root(_ x: Int) -> Int {
            var x = x
            while parent[x] != x {
                parent[x] = parent[parent[x]]
                x = parent[x]
            }
            return x
        }
        for i in 0 ..< n {
            for j in edges[i] {
                let p = root(i), q = root(n + j)
                if p != q { parent[p] = q }
            }
        }
        var groups = [Int: (rows: [Int], columns: [Int])]()
        for i in 0 ..< n where a[i] > 0 { groups[root(i), default: ([], [])].rows.append(i) }
        for j in 0 ..< m where b[j] > 0 { groups[root(n + j), default: ([], [])].columns.append(j) }
        // Ties broken by the root index: Dictionary order varies between processes, and the
        // result must not.
        let largest = groups.max {
            let sizeA = $0.value.rows.count + $0.value.columns.count, sizeB = $1.value.rows.count + $1.value.columns.count
            return sizeA != sizeB ? sizeA < sizeB : $0.key > $1.key
        }?.key
        return groups.filter { $0.key != largest && !$0.value.rows.isEmpty && !$0.value.columns.isEmpty }
            .sorted { $0.key < $1.key }.map { $0.value }
    }

    /// For each cluster (I, J), the exact maximisation of the dual objective along the direction
    /// that raises f on I and lowers g on J by the same amount eps * tau: the plan inside I x J
    /// is unchanged, the mass leaving I (R) is multiplied by X = e^tau and the mass entering J
    /// (S) divided by it, so the optimum solves R X - S / X = sum_I a - sum_J b, a quadratic in
    /// X. It never decreases the dual objective. s is kept up to date; r is not (the caller
    /// recomputes it).
    func shiftClusters(_ clusters: [(rows: [Int], columns: [Int])]) {
        for cluster in clusters {
            // Leaks summed directly over the entries outside the block: as differences of
            // nearly equal masses they would be pure rounding noise for an isolated group.
            var rowMass = 0.0, columnMass = 0.0, leaving = 0.0, entering = 0.0, target = 0.0
            let inRows = Set(cluster.rows), inColumns = Set(cluster.columns)
            for i in cluster.rows {
                let row = K + i * m, scale = a[i] * u[i]
                var total = 0.0, outside = 0.0
                for t in 0 ..< m {
                    let p = row[t] * b[t] * v[t]
                    total += p
                    if !inColumns.contains(t) { outside += p }
                }
                rowMass += scale * total
                leaving += scale * outside
                target += a[i]
            }
            for j in cluster.columns {
                let scale = b[j] * v[j]
                var total = 0.0, outside = 0.0
                for i in 0 ..< n {
                    let p = K[i * m + j] * a[i] * u[i]
                    total += p
                    if !inRows.contains(i) { outside += p }
                }
                columnMass += scale * total
                entering += scale * outside
                target -= b[j]
            }
            let mass = rowMass + columnMass
            // Mass differences at rounding level are no signal.
            if abs(target) < 1e-14 * mass { target = 0 }
            // Only genuinely isolated groups have the slow mode this step is for; shifting a
            // group with a sizeable leak is still an ascent step but fights the scaling
            // iterations (measured: it destabilises over-relaxed Sinkhorn on near-diagonal plans).
            guard leaving + entering <= 1e-3 * mass, leaving > 0 || entering > 0 else { continue }
            // A leak that underflowed to 0 (an outlier whose other plan entries are below
            // 1e-308) is floored at 1e-30 of the group's mass: the shift then pushes the other
            // leak below anything double precision resolves, as the true optimum does.
            let floor = 1e-30 * mass
            let out = Swift.max(leaving, floor), into = Swift.max(entering, floor)
            let root = (target * target + 4 * out * into).squareRoot()
            let factor = target >= 0 ? (target + root) / (2 * out) : 2 * into / (root - target)
            guard factor.isFinite, factor > 0 else { continue }
            let change = Swift.min(Swift.max(factor, 1e-20), 1e20)
            for i in cluster.rows {
                let row = K + i * m
                let delta = a[i] * u[i] * (change - 1)
                for t in 0 ..< m { s[t] += row[t] * delta }
                u[i] *= change
            }
            for j in cluster.columns { v[j] /= change }
        }
    }

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
        for j in 0 ..< m {
            y[j] = 0
            z[j] = res[j] * precondition[j]
            dir[j] = z[j]
        }
        var rz = dot(res, z, m)
        // Work = ceil(products / 2) <= inner + 4 (one product for the right-hand side, two per CG
        // iteration, one for x, two per trial step), kept within the caller's budget.
        let maxInner = Swift.max(1, Swift.min(budget - 4, 300))
        var inner = 0
        while inner < maxInner && norm0 > 0 {
            inner += 1
            // sdir = kappa o dir - q o K^T(rowScale o K(q o dir))
            for j in 0 ..< m { tm[j] = b[j] * v[j] * dir[j] }
            multiplyKernel(tm, into: tn)
            for i in 0 ..< n { tn[i] *= rowScale[i] }
            multiplyKernelTransposed(tn, into: sdir)
            products += 2
            for j in 0 ..< m { sdir[j] = kappa[j] * dir[j] - b[j] * v[j] * sdir[j] }
            let curvature = dot(dir, sdir, m)
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
            if norm2(res, m) <= forcing * norm0 { break }
            for j in 0 ..< m { z[j] = res[j] * precondition[j] }
            let rzNew = dot(res, z, m)
            let beta = rzNew / rz
            rz = rzNew
            for j in 0 ..< m { dir[j] = z[j] + beta * dir[j] }
        }
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

    /// The L1 marginal error of the current state, recomputing both products.
    func exactError() -> Double {
        computeRowSums()
        computeColumnSums()
        return rowError() + columnError()
    }

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
        for (index, stageEps) in schedule.enumerated() {
            // Once the budget is spent, the remaining intermediate stages would run no iteration:
            // go straight to the final one.
            if index < schedule.count - 1 && total >= run.maxIterations { continue }
            if index > 0 { absorbAll() }
            eps = stageEps
            buildKernel()
            stats.stages += 1
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
