import Foundation

/// `W2^2` between the two measures of a problem by any method of the toolkit, in one call.
///
/// ```swift
/// let problem = try TransportProblem(source: mu, target: nu)
/// let exact = try wasserstein2(problem)                                    // auto
/// let entropic = try wasserstein2(problem, method: .sinkhorn(epsilon: 0.01))
/// let withPlan = try wasserstein2(problem, planOutput: .full)
/// print(exact.w2, entropic.w2Squared, entropic.converged, withPlan.plan!.entries.count)
/// ```
///
/// - Parameters:
///   - problem: the two measures.
///   - method: the algorithm (``TransportMethod``); `auto` runs the sorted solver for `D = 1`
///     and the network simplex otherwise.
///   - planOutput: the plan to return (default none: the value, the potentials where the method
///     has them, `converged` and the iteration count).
///   - progress: for Sinkhorn (every geometry), receives a report after every iteration
///     (``EntropicProgress``); the other methods ignore it.
/// - Returns: the one result type: ``TransportResult/cost`` (`W2^2`, or the entropic transport
///   cost), the plan on request, ``TransportResult/potentials`` for the exact, LP, sorted (with a
///   plan) and Sinkhorn methods, ``TransportResult/converged``, ``TransportResult/iterations``,
///   and for Sinkhorn ``TransportResult/entropic``.
/// - Throws: ``WassersteinError/unsupported(_:)`` for `sorted` with `D > 1`,
///   ``WassersteinError/tooLarge(_:)`` for `lp` beyond its size limit,
///   ``WassersteinError/invalidParameter(name:value:requirement:)`` for Sinkhorn settings or a
///   plan threshold outside their domain, and the solvers' errors.
public func wasserstein2(_ problem: TransportProblem, method: TransportMethod = .auto,
                         planOutput: PlanOutput = .none, progress: EntropicProgressObserver? = nil) throws -> TransportResult {
    if case .sparse(let minimumMass) = planOutput, !(minimumMass >= 0 && minimumMass.isFinite) {
        throw WassersteinError.invalidParameter(name: "plan threshold", value: minimumMass, requirement: "must be finite and >= 0")
    }
    switch method.resolved(dimension: problem.dimension) {
    case .sorted:
        return try SortedSolver(planOutput: planOutput).solve(problem)
    case .lp:
        return try LinearProgramSolver().solve(problem).keepingPlan(planOutput)
    case .exact, .auto:
        // In 1-D the monotone coupling is optimal: the same exact answer without pivoting.
        if problem.dimension == 1 { return try SortedSolver(planOutput: planOutput).solve(problem) }
        return try NetworkSimplexSolver().solve(problem).keepingPlan(planOutput)
    case .gaussian:
        return try GaussianMomentSolver().solve(problem)
    case .sinkhorn(let epsilon, let options):
        let solved = try EntropicDistance(problem, epsilon: epsilon, tolerance: options.tolerance,
                                          maxIterations: options.maxIterations, divergence: options.divergence,
                                          planOutput: planOutput, geometry: options.geometry,
                                          byteBudget: options.byteBudget,
                                          progress: progress)
        var result = solved.result
        result.method = method
        result.entropic?.divergence = solved.divergence
        result.entropic?.geometry = solved.geometry
        result.entropic?.truncationChecks = solved.truncationChecks
        return result
    }
}

/// `W2^2` between two point clouds (equal masses), as ``wasserstein2(_:method:planOutput:progress:)``.
///
/// ```swift
/// let x = try PointCloud(coordinates: [0, 0, 1, 0], dimension: 2)
/// let y = try PointCloud(coordinates: [0, 1, 1, 1], dimension: 2)
/// print(try wasserstein2(x, y, method: .sinkhorn(epsilon: 0.01)).w2Squared)
/// ```
///
/// - Throws: ``WassersteinError/massMismatch(source:target:)`` for unequal masses (build a
///   ``TransportProblem`` with `massPolicy: .normalize` to rescale), and as
///   ``wasserstein2(_:method:planOutput:progress:)``.
public func wasserstein2(_ source: PointCloud, _ target: PointCloud, method: TransportMethod = .auto,
                         planOutput: PlanOutput = .none) throws -> TransportResult {
    try wasserstein2(TransportProblem(source: source, target: target), method: method, planOutput: planOutput)
}

/// `W2^2` between two uniformly weighted point sets given as row-major coordinates
/// (`count x dimension`), as ``wasserstein2(_:method:planOutput:progress:)``.
///
/// ```swift
/// print(try wasserstein2([0, 1, 2], [1, 2, 3]).cost)      // 1: a shift by one
/// ```
///
/// - Throws: ``WassersteinError/malformedShape(_:)`` when a length is not a multiple of
///   `dimension`, and as ``wasserstein2(_:method:planOutput:progress:)``.
public func wasserstein2(_ source: [Double], _ target: [Double], dimension: Int = 1, method: TransportMethod = .auto,
                         planOutput: PlanOutput = .none) throws -> TransportResult {
    try wasserstein2(PointCloud(coordinates: source, dimension: dimension), PointCloud(coordinates: target, dimension: dimension),
                     method: method, planOutput: planOutput)
}

extension TransportResult {
    /// The result with its plan cut to what `planOutput` asks for (exact solvers form the whole
    /// plan anyway; it is at most `n + m - 1` entries).
    func keepingPlan(_ planOutput: PlanOutput) -> TransportResult {
        var result = self
        switch planOutput {
        case .full: break
        case .none: result.plan = nil
        case .sparse(let minimumMass):
            result.plan?.entries.removeAll { !($0.mass >= minimumMass && $0.mass > 0) }
        }
        return result
    }

    /// The gradient of the transport cost with respect to the source support points: the one
    /// source gradient of the library, for every method that has a plan or entropic potentials,
    ///
    ///     d/dx_i = 2 sum_j P_ij (x_i - y_j) = 2 a_i (x_i - T(x_i)),
    ///
    /// `T` the barycentric projection (Docs/Theory.md 1.5), `P` the result's plan, or for a
    /// Sinkhorn result the plan of its potentials, `P_ij = a_i b_j exp((f_i + g_j - C_ij) / eps)`,
    /// rebuilt row by row (no `n x m` storage, both cores) whether or not a plan was returned.
    ///
    /// For an exact result this is the gradient of `W2^2` wherever the optimal plan is unique
    /// (envelope theorem), a subgradient-like choice where it is not. For a Sinkhorn result it is
    /// the gradient of the regularized value `OT_eps` (envelope theorem), exact at the optimum
    /// and off by `O(marginal error x diameter)` at the returned iterate. The gradient of the
    /// debiased divergence combines two of these (``SinkhornDivergence``).
    ///
    /// - Parameter problem: the problem this result solves (its clouds supply `x` and `y`).
    /// - Returns: row-major `n x D` values, like the coordinates.
    /// - Complexity: `O(nnz(P) D)` from a plan, `O(n m D)` from potentials.
    /// - Throws: ``WassersteinError/unsupported(_:)`` when the result has neither plan nor
    ///   entropic potentials (Gaussian closed form, a solve with `planOutput: .none`),
    ///   ``WassersteinError/dimensionMismatch(expected:actual:)`` when the plan or the potentials
    ///   do not fit the problem.
    public func sourceGradient(problem: TransportProblem) throws -> [Double] {
        let x = problem.source, y = problem.target
        let d = problem.dimension
        var gradient = [Double](repeating: 0, count: x.count * d)
        if let entropic, let potentials, case .sinkhorn = method {
            try EntropicPlan.check(potentials, problem)
            _ = try EntropicScale(source: x, target: y, epsilon: entropic.epsilon)
            EntropicPlan.accumulateSourceGradient(problem, potentials: potentials, epsilon: entropic.epsilon,
                                                  scale: 1, into: &gradient)
            return gradient
        }
        guard let plan else {
            throw WassersteinError.unsupported(
                "the \(method.name) result has no transport plan to differentiate (solve with planOutput: .full)")
        }
        guard plan.sourceCount == x.count else {
            throw WassersteinError.dimensionMismatch(expected: x.count, actual: plan.sourceCount)
        }
        guard plan.targetCount == y.count else {
            throw WassersteinError.dimensionMismatch(expected: y.count, actual: plan.targetCount)
        }
        for e in plan.entries where !(0 ..< x.count ~= e.source && 0 ..< y.count ~= e.target && e.mass.isFinite) {
            throw WassersteinError.malformedShape("plan entry (\(e.source), \(e.target), \(e.mass)) is outside the problem")
        }
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
