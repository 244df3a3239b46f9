import Wasserstein

/// Limited-memory BFGS with a strong-Wolfe line search (Nocedal and Wright, Algorithms 7.4, 3.5
/// and 3.6), for the inner problems of the particle JKO scheme.
///
/// The JKO objective with exact transport is semiconcave (a smooth part minus a polyhedral
/// convex function of the positions): its gradient jumps where the optimal matching changes, but
/// only downwards, so a minimiser is a point of differentiability and the gradient test below is
/// meaningful. The line search accepts a point that satisfies the Armijo condition when the
/// curvature condition cannot be met across such a kink.
public struct LBFGSOptions: Sendable, Equatable {
    /// Number of correction pairs kept (`m`).
    public var memory: Int = 10
    /// Stop when the gradient measure (see ``LBFGS/minimize(initial:options:preconditioner:gradientMeasure:objective:)``)
    /// is at most this.
    public var gradientTolerance: Double = 1e-7
    /// Stop after this many iterations (each one line search).
    public var maxIterations: Int = 500
    /// Maximum objective evaluations per line search.
    public var maxLineSearchEvaluations: Int = 25
    /// Sufficient-decrease constant `c1` of the Wolfe conditions.
    public var armijo: Double = 1e-4
    /// Curvature constant `c2` (0.9 is the usual quasi-Newton choice).
    public var curvature: Double = 0.9
    /// Also stop when a whole iteration changes the objective by at most this relative amount
    /// (guards against stalling at round-off level); `0` disables it.
    public var relativeValueTolerance: Double = 0

    public init(memory: Int = 10, gradientTolerance: Double = 1e-7, maxIterations: Int = 500,
                maxLineSearchEvaluations: Int = 25, relativeValueTolerance: Double = 0) {
        self.memory = memory
        self.gradientTolerance = gradientTolerance
        self.maxIterations = maxIterations
        self.maxLineSearchEvaluations = maxLineSearchEvaluations
        self.relativeValueTolerance = relativeValueTolerance
    }

    /// - Throws: `GradientFlowsError.invalidParameter(name:value:requirement:)` for values out of range.
    public func validate() throws {
        guard memory >= 1 else { throw GradientFlowsError.invalidParameter(name: "memory", value: Double(memory), requirement: "L-BFGS memory must be >= 1") }
        guard gradientTolerance >= 0, gradientTolerance.isFinite else {
            throw GradientFlowsError.invalidParameter(name: "gradient tolerance", value: gradientTolerance, requirement: "must be >= 0 and finite")
        }
        guard maxIterations >= 0 else { throw GradientFlowsError.invalidParameter(name: "max iterations", value: Double(maxIterations), requirement: "must be >= 0") }
        guard maxLineSearchEvaluations >= 1 else {
            throw GradientFlowsError.invalidParameter(name: "max line search evaluations", value: Double(maxLineSearchEvaluations), requirement: "must be >= 1")
        }
        guard armijo > 0, armijo < curvature, curvature < 1 else {
            throw GradientFlowsError.invalidParameter(name: "Wolfe constants", value: armijo, requirement: "need 0 < c1 < c2 < 1")
        }
    }
}

/// How an L-BFGS run ended.
public enum LBFGSStatus: String, Sendable, Codable {
    /// The gradient measure met the tolerance.
    case converged
    /// The objective stopped changing (relative value tolerance) before the gradient test passed.
    case stalled
    /// The iteration cap was reached.
    case iterationLimit
    /// No step along the search direction (nor along the steepest descent) decreased the objective:
    /// usually the gradient is inconsistent with the value at round-off level.
    case lineSearchFailed
}

/// The outcome of ``LBFGS/minimize(initial:options:preconditioner:gradientMeasure:objective:)``.
public struct LBFGSResult: Sendable {
    /// The final point (the best point found).
    public var x: [Double]
    /// The objective at ``x``.
    public var value: Double
    /// The gradient at ``x``.
    public var gradient: [Double]
    /// The gradient measure at ``x``.
    public var gradientMeasure: Double
    /// Iterations (accepted steps).
    public var iterations: Int
    /// Objective-and-gradient evaluations, the initial one included.
    public var evaluations: Int
    /// How the run ended.
    public var status: LBFGSStatus
    /// True when the gradient test passed.
    public var converged: Bool { status == .converged }
}

/// The L-BFGS minimiser.
public enum LBFGS {
    /// The objective: returns `f(x)` and writes `grad f(x)` into `gradient` (as many values as `x`).
    public typealias Objective = (_ x: Span<Double>, _ gradient: inout MutableSpan<Double>) throws -> Double

    /// Minimises `objective` from `initial`.
    ///
    /// - Parameters:
    ///   - initial: the starting point (`n` values).
    ///   - options: memory, tolerances and caps.
    ///   - preconditioner: an optional positive diagonal `D` (`n` values) used as the initial inverse
    ///     Hessian `H0 = gamma_k D`, with `gamma_k = s^T y / (y^T D y)` after the first step and
    ///     `gamma_0 = 1`. The particle JKO passes `D = tau / w_i` per coordinate, which makes the
    ///     first step an explicit Euler step.
    ///   - gradientMeasure: the number compared with the tolerance; default the Euclidean norm.
    ///   - objective: value and gradient.
    /// - Returns: the best point found and how the run ended (non-convergence is reported, not thrown).
    /// - Throws: whatever `objective` throws; `GradientFlowsError.invalidParameter(name:value:requirement:)`
    ///   for invalid options or a non-finite objective at the start.
    /// - Complexity: `O(m n)` per iteration beyond the evaluations.
    public static func minimize(initial: [Double], options: LBFGSOptions = LBFGSOptions(),
                                preconditioner: [Double]? = nil,
                                gradientMeasure: ((Span<Double>) -> Double)? = nil,
                                objective: Objective) throws -> LBFGSResult {
        try options.validate()
        let n = initial.count
        if let preconditioner {
            guard preconditioner.count == n else { throw GradientFlowsError.dimensionMismatch(what: "preconditioner length", expected: n, actual: preconditioner.count) }
            for p in preconditioner where !(p > 0 && p.isFinite) {
                throw GradientFlowsError.invalidParameter(name: "preconditioner", value: p, requirement: "diagonal entries must be > 0 and finite")
            }
        }
        func measure(_ g: [Double]) -> Double {
            if let gradientMeasure { return gradientMeasure(g.span) }
            var s = 0.0
            for v in g { s += v * v }
            return s.squareRoot()
        }
        func evaluate(_ x: [Double], _ g: inout [Double]) throws -> Double {
            var gradient = g.mutableSpan
            return try objective(x.span, &gradient)
        }

        var x = initial
        var g = [Double](repeating: 0, count: n)
        var f = try evaluate(x, &g)
        var evaluations = 1
        guard f.isFinite else {
            throw GradientFlowsError.invalidParameter(name: "objective", value: f, requirement: "the objective must be finite at the starting point")
        }
        var gm = measure(g)
        if gm <= options.gradientTolerance || n == 0 {
            return LBFGSResult(x: x, value: f, gradient: g, gradientMeasure: gm, iterations: 0, evaluations: evaluations, status: .converged)
        }

        let m = options.memory
        var sHistory = [[Double]](), yHistory = [[Double]](), rhoHistory = [Double]()
        var gamma = 1.0
        var direction = [Double](repeating: 0, count: n)
        var alphas = [Double](repeating: 0, count: m)
        var iterations = 0
        var status = LBFGSStatus.iterationLimit
        var usedSteepest = false

        while iterations < options.maxIterations {
            // Two-loop recursion: direction = -H g.
            for i in 0 ..< n { direction[i] = -g[i] }
            let k = sHistory.count
            var idx = k - 1
            while idx >= 0 {
                var a = 0.0
                for i in 0 ..< n { a += sHistory[idx][i] * direction[i] }
                a *= rhoHistory[idx]
                alphas[idx] = a
                for i in 0 ..< n { direction[i] -= a * yHistory[idx][i] }
                idx -= 1
            }
            if let preconditioner {
                for i in 0 ..< n { direction[i] *= gamma * preconditioner[i] }
            } else {
                for i in 0 ..< n { direction[i] *= gamma }
            }
            for j in 0 ..< k {
                var b = 0.0
                for i in 0 ..< n { b += yHistory[j][i] * direction[i] }
                b *= rhoHistory[j]
                for i in 0 ..< n { direction[i] += sHistory[j][i] * (alphas[j] - b) }
            }
            var slope = 0.0
            for i in 0 ..< n { slope += g[i] * direction[i] }
            if !(slope < 0) {
                // Not a descent direction (curvature information went stale): restart.
                sHistory.removeAll(); yHistory.removeAll(); rhoHistory.removeAll()
                for i in 0 ..< n { direction[i] = -g[i] * (preconditioner?[i] ?? 1) * gamma }
                slope = 0
                for i in 0 ..< n { slope += g[i] * direction[i] }
                if !(slope < 0) { status = .lineSearchFailed; break }
            }

            // Strong-Wolfe line search along `direction` from step 1.
            let search = try lineSearch(x: x, f: f, g: g, direction: direction, slope: slope,
                                        options: options, evaluate: evaluate)
            evaluations += search.evaluations
            guard let accepted = search.point else {
                if sHistory.isEmpty && usedSteepest {
                    status = .lineSearchFailed
                    break
                }
                // Retry once from a steepest-descent direction with a fresh memory.
                sHistory.removeAll(); yHistory.removeAll(); rhoHistory.removeAll()
                gamma = 1
                usedSteepest = true
                continue
            }
            usedSteepest = false
            iterations += 1
            var s = [Double](repeating: 0, count: n), y = [Double](repeating: 0, count: n)
            var sy = 0.0, yy = 0.0, yDy = 0.0
            for i in 0 ..< n {
                s[i] = accepted.x[i] - x[i]
                y[i] = accepted.g[i] - g[i]
                sy += s[i] * y[i]
                yy += y[i] * y[i]
                yDy += y[i] * y[i] * (preconditioner?[i] ?? 1)
            }
            let previousValue = f
            x = accepted.x
            g = accepted.g
            f = accepted.f
            gm = measure(g)
            // Keep the pair only with positive curvature (always true under strong Wolfe, not at kinks).
            if sy > 1e-14 * yy.squareRoot() * (s.reduce(0) { $0 + $1 * $1 }).squareRoot(), yDy > 0 {
                if sHistory.count == m {
                    sHistory.removeFirst(); yHistory.removeFirst(); rhoHistory.removeFirst()
                }
                sHistory.append(s); yHistory.append(y); rhoHistory.append(1 / sy)
                gamma = sy / yDy
            }
            if gm <= options.gradientTolerance { status = .converged; break }
            if options.relativeValueTolerance > 0,
               abs(previousValue - f) <= options.relativeValueTolerance * max(abs(f), abs(previousValue), 1e-300) {
                status = .stalled
                break
            }
        }
        return LBFGSResult(x: x, value: f, gradient: g, gradientMeasure: gm, iterations: iterations,
                           evaluations: evaluations, status: status)
    }

    private struct Trial { var x: [Double]; var f: Double; var g: [Double] }

    /// Nocedal-Wright Algorithm 3.5 (bracketing) + 3.6 (zoom with safeguarded cubic interpolation).
    private static func lineSearch(x: [Double], f: Double, g: [Double], direction: [Double], slope: Double,
                                   options: LBFGSOptions,
                                   evaluate: ([Double], inout [Double]) throws -> Double) throws -> (point: Trial?, evaluations: Int) {
        let n = x.count
        let c1 = options.armijo, c2 = options.curvature
        var evaluations = 0
        var bestArmijo: (alpha: Double, trial: Trial)?

        func trial(_ alpha: Double) throws -> (Trial, Double) {
            var xt = [Double](repeating: 0, count: n)
            for i in 0 ..< n { xt[i] = x[i] + alpha * direction[i] }
            var gt = [Double](repeating: 0, count: n)
            let ft = try evaluate(xt, &gt)
            evaluations += 1
            var d = 0.0
            for i in 0 ..< n { d += gt[i] * direction[i] }
            return (Trial(x: xt, f: ft, g: gt), d)
        }
        func armijoHolds(_ alpha: Double, _ ft: Double) -> Bool {
            // A small round-off allowance: at convergence f changes at the level of eps * |f|.
            ft.isFinite && ft <= f + c1 * alpha * slope + 4 * Double.ulpOfOne * abs(f)
        }
        func remember(_ alpha: Double, _ t: Trial) {
            if armijoHolds(alpha, t.f), bestArmijo == nil || t.f < bestArmijo!.trial.f { bestArmijo = (alpha, t) }
        }

        var alphaPrev = 0.0, fPrev = f, dPrev = slope
        var alpha = 1.0
        var lo = 0.0, hi = 0.0, fLo = f, fHi = f, dLo = slope, dHi = slope
        var bracketed = false
        var first = true
        while evaluations < options.maxLineSearchEvaluations {
            let (t, d) = try trial(alpha)
            if !t.f.isFinite {
                // Stepped out of the domain (overflow): shrink.
                hi = alpha; fHi = .infinity; dHi = 0; lo = alphaPrev; fLo = fPrev; dLo = dPrev
                bracketed = true
                break
            }
            remember(alpha, t)
            if !armijoHolds(alpha, t.f) || (!first && t.f >= fPrev) {
                lo = alphaPrev; fLo = fPrev; dLo = dPrev; hi = alpha; fHi = t.f; dHi = d
                bracketed = true
                break
            }
            if abs(d) <= -c2 * slope { return (t, evaluations) }
            if d >= 0 {
                lo = alpha; fLo = t.f; dLo = d; hi = alphaPrev; fHi = fPrev; dHi = dPrev
                bracketed = true
                break
            }
            alphaPrev = alpha; fPrev = t.f; dPrev = d
            alpha *= 4
            first = false
        }
        if !bracketed { return (bestArmijo?.trial, evaluations) }

        // Zoom.
        while evaluations < options.maxLineSearchEvaluations {
            var a = cubicMinimizer(lo, fLo, dLo, hi, fHi, dHi)
            let left = min(lo, hi), width = abs(hi - lo)
            if !a.isFinite || a < left + 0.1 * width || a > left + 0.9 * width { a = 0.5 * (lo + hi) }
            if width <= 1e-16 * max(abs(lo), abs(hi), 1e-300) { break }
            let (t, d) = try trial(a)
            remember(a, t)
            if !armijoHolds(a, t.f) || t.f >= fLo {
                hi = a; fHi = t.f.isFinite ? t.f : .infinity; dHi = d
            } else {
                if abs(d) <= -c2 * slope { return (t, evaluations) }
                if d * (hi - lo) >= 0 { hi = lo; fHi = fLo; dHi = dLo }
                lo = a; fLo = t.f; dLo = d
            }
        }
        return (bestArmijo?.trial, evaluations)
    }

    /// The minimiser of the cubic interpolating values and slopes at `a` and `b` (NaN if none).
    private static func cubicMinimizer(_ a: Double, _ fa: Double, _ da: Double, _ b: Double, _ fb: Double, _ db: Double) -> Double {
        guard fb.isFinite else { return .nan }
        let d1 = da + db - 3 * (fa - fb) / (a - b)
        let disc = d1 * d1 - da * db
        guard disc >= 0 else { return .nan }
        let d2 = (b > a ? 1.0 : -1.0) * disc.squareRoot()
        return b - (b - a) * (db + d2 - d1) / (db - da + 2 * d2)
    }
}
