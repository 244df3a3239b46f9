/// Which algorithm computes an exact W2.
public enum DistanceMethod: String, Sendable, CaseIterable {
    /// `sorted` for one-dimensional problems, `exact` otherwise.
    case auto
    /// An exact solver for any dimension: the network simplex (``NetworkSimplexSolver``), or in
    /// one dimension the sorted solver, which is exact there and takes `O((n + m) log(n + m))`
    /// where the simplex can take minutes on unbalanced sizes (`n = 3e4` against `m = 3`). The
    /// result's ``TransportResult/method`` says which one ran.
    case exact
    /// The transportation LP through GLPK (``LinearProgramSolver``): exact, slow, small problems.
    case lp
    /// The one-dimensional quantile merge (``SortedSolver``); throws for `D > 1`.
    case sorted

    /// The method `auto` resolves to for a problem of this dimension.
    public func resolved(dimension: Int) -> DistanceMethod {
        self == .auto ? (dimension == 1 ? .sorted : .exact) : self
    }
}

/// The squared 2-Wasserstein distance `W2^2` between the two measures of a problem, with the
/// optimal plan and (for every method here) dual potentials.
///
/// ```swift
/// let result = try wasserstein2(try TransportProblem(source: mu, target: nu))
/// print(result.w2, result.w2Squared, result.method)
/// ```
///
/// - Parameters:
///   - problem: the two measures.
///   - method: `auto` (sorted for `D = 1`, exact otherwise), `exact` (the network simplex, or
///     the sorted solver for `D = 1`), `lp` or `sorted`.
///   - includePlan: `false` lets the sorted solver skip the plan and potentials (the bulk of
///     its time and memory at millions of points); the other solvers always return them.
/// - Throws: ``WassersteinError/unsupported(_:)`` for `sorted` with `D > 1`,
///   ``WassersteinError/tooLarge(_:)`` for `lp` beyond its size limit, and the solvers' errors.
public func wasserstein2(_ problem: TransportProblem, method: DistanceMethod = .auto,
                         includePlan: Bool = true) throws -> TransportResult {
    switch method.resolved(dimension: problem.dimension) {
    case .sorted: return try SortedSolver(computesPlan: includePlan).solve(problem)
    case .lp: return try LinearProgramSolver().solve(problem)
    case .exact, .auto:
        // In 1-D the monotone coupling is optimal: the same exact answer without pivoting.
        if problem.dimension == 1 { return try SortedSolver(computesPlan: includePlan).solve(problem) }
        return try NetworkSimplexSolver().solve(problem)
    }
}

extension TransportResult {
    /// The gradient of `W2^2` with respect to the source support points, from the optimal plan:
    ///
    ///     d W2^2 / d x_i = 2 sum_j P_ij (x_i - y_j) = 2 a_i (x_i - T(x_i)),
    ///
    /// `T` the barycentric projection (Docs/Theory.md 1.5). This is the gradient of the transport cost
    /// with the plan held fixed; it is the gradient of `W2^2` wherever the optimal plan is
    /// unique (by the envelope theorem), and a subgradient-like choice where it is not. A
    /// particle JKO step uses it.
    ///
    /// - Parameter problem: the problem this result solves (its clouds supply `x` and `y`).
    /// - Returns: row-major `n x D` values.
    /// - Throws: ``WassersteinError/unsupported(_:)`` when the result has no plan (Gaussian
    ///   closed form), ``WassersteinError/dimensionMismatch(expected:actual:)`` when the plan's
    ///   sizes do not match the problem.
    public func sourceGradient(problem: TransportProblem) throws -> [Double] {
        guard let plan else {
            throw WassersteinError.unsupported("the \(method.rawValue) result has no transport plan to differentiate")
        }
        let x = problem.source, y = problem.target
        guard plan.sourceCount == x.count else {
            throw WassersteinError.dimensionMismatch(expected: x.count, actual: plan.sourceCount)
        }
        guard plan.targetCount == y.count else {
            throw WassersteinError.dimensionMismatch(expected: y.count, actual: plan.targetCount)
        }
        for e in plan.entries where !(0 ..< x.count ~= e.source && 0 ..< y.count ~= e.target && e.mass.isFinite) {
            throw WassersteinError.malformedShape("plan entry (\(e.source), \(e.target), \(e.mass)) is outside the problem")
        }
        let d = problem.dimension
        var gradient = [Double](repeating: 0, count: x.count * d)
        x.coordinates.withUnsafeBufferPointer { xp in
            y.coordinates.withUnsafeBufferPointer { yp in
                gradient.withUnsafeMutableBufferPointer { gp in
                    for e in plan.entries {
                        let i = e.source, j = e.target
                        let w = 2 * e.mass
                        for k in 0 ..< d { gp[i * d + k] += w * (xp[i * d + k] - yp[j * d + k]) }
                    }
                }
            }
        }
        return gradient
    }
}
