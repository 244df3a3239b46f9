/// The debiased Sinkhorn divergence
/// `S_eps(a, b) = OT_eps(a, b) - (OT_eps(a, a) + OT_eps(b, b)) / 2`,
/// built from regularized values `OT_eps = min_P <P, C> + eps KL(P | a (x) b)`.
///
/// `OT_eps(a, a)` is not zero (the entropic plan of a measure with itself is blurred), so
/// `OT_eps(a, b)` is a biased estimate of `W2^2`. Subtracting the two self terms removes the
/// bias: `S_eps >= 0`, `S_eps = 0` exactly when `a = b` (Feydy et al. 2019, for the Gaussian
/// kernel `exp(-|x - y|^2 / eps)`, which is positive definite), `S_eps` is symmetric, and it
/// interpolates between `W2^2` (eps -> 0) and a kernel norm (eps -> infinity).
///
/// Three problems are solved: the cross term by ``SinkhornSolver``, the two self terms by the
/// symmetric iteration of ``SinkhornSolver/solveSelf(_:warmStart:workspace:)``. The value is
/// reported as computed (round-off can leave it a few ulps below zero for equal measures).
///
/// ```swift
/// let divergence = try SinkhornDivergence(epsilon: 0.01)
/// let result = try divergence.evaluate(problem, gradient: true)
/// print(result.divergence, result.sourceGradient!)
/// ```
public struct SinkhornDivergence: Sendable {
    /// The solver used for all three terms (its epsilon, tolerance and iteration cap).
    public var solver: SinkhornSolver

    /// Creates a divergence with a default-configured solver.
    ///
    /// - Throws: ``WassersteinError/invalidParameter(name:value:requirement:)`` as
    ///   ``SinkhornSolver/init(epsilon:tolerance:maxIterations:epsilonScaling:overRelaxation:planOutput:)``.
    public init(epsilon: Double, tolerance: Double = 1e-9, maxIterations: Int = 10_000) throws {
        solver = try SinkhornSolver(epsilon: epsilon, tolerance: tolerance, maxIterations: maxIterations)
    }

    /// Creates a divergence that uses the given solver for all three terms.
    public init(solver: SinkhornSolver) {
        self.solver = solver
    }

    /// The potentials of the three terms, to warm-start the next evaluation.
    public struct WarmStart: Sendable {
        /// Cross-term potentials `(f, g)`.
        public var cross: DualPotentials
        /// Self-term potential of the source.
        public var source: [Double]
        /// Self-term potential of the target.
        public var target: [Double]
        public init(cross: DualPotentials, source: [Double], target: [Double]) {
            self.cross = cross
            self.source = source
            self.target = target
        }
    }

    /// Evaluates `S_eps` with fresh buffers and no warm start.
    ///
    /// - Parameters:
    ///   - problem: the two measures (equal mass).
    ///   - gradient: whether to compute the gradient with respect to the source points.
    /// - Throws: ``WassersteinError/invalidParameter(name:value:requirement:)`` for invalid
    ///   solver parameters. Non-convergence is reported in the result.
    public func evaluate(_ problem: TransportProblem, gradient: Bool = false) throws -> SinkhornDivergenceResult {
        try evaluate(problem, gradient: gradient, warmStart: nil, workspace: SinkhornWorkspace())
    }

    /// Evaluates `S_eps`, optionally warm-started, reusing a workspace.
    ///
    /// The gradient with respect to the source points is, by the envelope theorem,
    /// `grad_{x_i} S_eps = 2 sum_j P^ab_ij (x_i - y_j) - 2 sum_j P^aa_ij (x_i - x_j)`: the
    /// source appears on both sides of `OT_eps(a, a)`, which doubles its gradient before the
    /// factor 1/2 of the divergence; `OT_eps(b, b)` does not depend on x.
    ///
    /// - Complexity: three entropic solves; `O(n m + n^2 + m^2)` memory at most (one workspace
    ///   reused in turn).
    /// - Throws: as ``evaluate(_:gradient:)``, plus ``WassersteinError/dimensionMismatch(expected:actual:)``
    ///   for warm-start vectors of the wrong length.
    public func evaluate(_ problem: TransportProblem, gradient: Bool, warmStart: WarmStart?,
                         workspace: SinkhornWorkspace) throws -> SinkhornDivergenceResult {
        let cross = try solver.solve(problem, warmStart: warmStart?.cross, workspace: workspace)
        let sourceSelf = try solver.solveSelf(problem.source, warmStart: warmStart?.source, workspace: workspace)
        let targetSelf = try solver.solveSelf(problem.target, warmStart: warmStart?.target, workspace: workspace)
        guard let crossValue = cross.entropic?.regularizedCost,
              let sourceValue = sourceSelf.entropic?.regularizedCost,
              let targetValue = targetSelf.entropic?.regularizedCost else {
            throw WassersteinError.solverFailure("Sinkhorn returned no entropic diagnostics")
        }
        let value = crossValue - (sourceValue + targetValue) / 2
        var grad: [Double]?
        if gradient {
            // The source appears on both sides of OT_eps(a, a): twice the one-sided gradient,
            // times the divergence's 1/2.
            let selfProblem = try TransportProblem(source: problem.source, target: problem.source)
            let crossGradient = try cross.sourceGradient(problem: problem)
            let selfGradient = try sourceSelf.sourceGradient(problem: selfProblem)
            grad = zip(crossGradient, selfGradient).map { $0 - $1 }
        }
        return SinkhornDivergenceResult(divergence: value, cross: cross, sourceSelf: sourceSelf,
                                        targetSelf: targetSelf, sourceGradient: grad)
    }
}

/// The value of a ``SinkhornDivergence`` and the three solves behind it.
public struct SinkhornDivergenceResult: Sendable {
    /// `S_eps(a, b) = OT_eps(a, b) - (OT_eps(a, a) + OT_eps(b, b)) / 2`, in cost units.
    public var divergence: Double
    /// The cross term `OT_eps(a, b)` (its ``TransportResult/cost`` is the transport part).
    public var cross: TransportResult
    /// The self term `OT_eps(a, a)`.
    public var sourceSelf: TransportResult
    /// The self term `OT_eps(b, b)`.
    public var targetSelf: TransportResult
    /// `grad_{x_i} S_eps`, `n * D` values row-major, when requested.
    public var sourceGradient: [Double]?

    public init(divergence: Double, cross: TransportResult, sourceSelf: TransportResult,
                targetSelf: TransportResult, sourceGradient: [Double]?) {
        self.divergence = divergence
        self.cross = cross
        self.sourceSelf = sourceSelf
        self.targetSelf = targetSelf
        self.sourceGradient = sourceGradient
    }

    /// True when all three solves met the tolerance.
    public var converged: Bool { cross.converged && sourceSelf.converged && targetSelf.converged }

    /// The largest L1 marginal error of the three solves.
    public var marginalError: Double {
        [cross, sourceSelf, targetSelf].map { $0.entropic?.marginalError ?? 0 }.max() ?? 0
    }

    /// The potentials of the three solves, as a warm start for a nearby evaluation.
    public var warmStart: SinkhornDivergence.WarmStart? {
        guard let c = cross.potentials, let s = sourceSelf.potentials, let t = targetSelf.potentials else { return nil }
        return SinkhornDivergence.WarmStart(cross: c, source: s.f, target: t.f)
    }
}
