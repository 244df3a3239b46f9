import Wasserstein

/// The entropic transport term of a particle JKO step, warm-started across inner iterations and
/// steps, on the geometry `wasserstein distance --method sinkhorn` would pick.
///
/// - **Debiased** (the default): `W = S_eps(X, Y) = OT_eps(X, Y) - (OT_eps(X, X) + OT_eps(Y, Y)) / 2`,
///   with its envelope gradient `2 sum_j P^XY_ij (x_i - y_j) - 2 sum_j P^XX_ij (x_i - x_j)`.
///   `S_eps = W2^2 + O(eps^2)` for smooth laws, so the step is the JKO step of `F` up to `O(eps^2 / tau)`.
/// - **Plain**: `W = OT_eps(X, Y)` with gradient `2 sum_j P_ij (x_i - y_j)`. For densities,
///   `OT_eps(rho, nu) = W2^2 - (eps/2)(int rho log rho + int nu log nu) + const + O(eps^2)` under
///   `KL(P | a (x) b)` regularisation, so the plain term adds `-(eps / (4 tau)) int rho log rho` to
///   the step: an *anti*-diffusion of coefficient up to `eps / (4 tau)`, a variance loss of up to
///   `eps / 2` per axis and step (less on clouds sparse at the scale `sqrt(eps)`: a quarter of it
///   for 60 particles in 2-D at `eps = 0.02`). The debiased form removes it.
///
/// **Geometry.** `SinkhornGeometryKind/dense` (`SinkhornSolver`: the stored `M x M` kernel,
/// the fastest per iteration) while its kernel fits half the memory budget, as
/// `SinkhornGeometryKind/automatic(sourceCount:targetCount:dimension:byteBudget:divergence:bytesPerCell:)`
/// decides; above that `SinkhornGeometryKind/online` (the engine's `OnlinePointCloudGeometry`,
/// `O(M D)` memory, both cores). The multiscale geometry, which the automatic rule picks for
/// `D <= 3`, is replaced by the online one here: its solves start cold (no warm start), and a
/// JKO step is a sequence of nearby problems where the warm start is most of the saving.
///
/// **Solves.** Per evaluation: the cross term and the source's self term, each warm-started
/// from the previous evaluation's potentials. The target's self term `OT_eps(Y, Y)` does not
/// depend on the positions being optimised: it is solved once per step (warm-started from the
/// last source self potential, which belongs to the new target), and at `X = Y` (the first
/// evaluation of a step) the cross term is that same self problem. The gradient comes from the
/// potentials (`TransportResult/sourceGradient(problem:)`, the plan rebuilt row by row, never
/// stored). Non-convergence of any solve is reported in the evaluation and reaches the JKO
/// step's report.
public final class SinkhornTransportTerm: ParticleTransportTerm {
    /// The regularisation `eps > 0`, absolute, in units of `|x - y|^2`.
    public let epsilon: Double
    /// The L1 marginal tolerance of each solve, relative to the mass.
    public let tolerance: Double
    /// The iteration cap of each solve.
    public let maxIterations: Int
    /// Whether the debiased divergence is used.
    public let debiased: Bool
    /// The geometry asked for, or `nil` for the automatic choice.
    public let requestedGeometry: SinkhornGeometryKind?
    /// The memory budget of the automatic choice, in bytes.
    public let byteBudget: Double
    /// The geometry of the current step (set by ``setTarget(_:)``).
    public private(set) var geometry: SinkhornGeometryKind?
    /// Sinkhorn iterations summed over every solve so far (for benchmarks and reports).
    public private(set) var totalIterations = 0

    private let solver: SinkhornSolver
    private let parameters: EntropicParameters
    private let workspace = SinkhornWorkspace()
    private var target: PointCloud?
    /// `OT_eps(Y, Y)` of the current target, once solved.
    private var targetSelf: Solve?
    private var warmCross: DualPotentials?
    private var warmSourceSelf: [Double]?

    /// One solve's outcome, whatever the geometry.
    private struct Solve {
        var result: TransportResult
        var regularizedCost: Double
        var potentials: DualPotentials
        var iterations: Int
        var converged: Bool
    }

    /// - Parameters:
    ///   - epsilon: the absolute regularisation `eps > 0`, in the units of `|x - y|^2`.
    ///   - debiased: use `S_eps` (default) or `OT_eps`.
    ///   - tolerance: the L1 marginal tolerance of each solve; the gradient error is about
    ///     `tolerance * diameter`, which must stay well below the JKO inner tolerance times `w_i / tau`.
    ///   - maxIterations: the cap of each solve.
    ///   - geometry: force a geometry (`SinkhornGeometryKind/dense` or
    ///     `SinkhornGeometryKind/online`), or `nil` to choose from `M`, `D` and `byteBudget`.
    ///   - byteBudget: the memory the automatic choice may use (default: physical memory).
    /// - Throws: `WassersteinError.invalidParameter(name:value:requirement:)` for a bad epsilon,
    ///   tolerance or cap; `GradientFlowsError.unsupported(_:)` for the multiscale geometry.
    public init(epsilon: Double, debiased: Bool = true, tolerance: Double = 1e-11, maxIterations: Int = 10_000,
                geometry: SinkhornGeometryKind? = nil, byteBudget: Double = SinkhornOptions().byteBudget) throws {
        solver = try SinkhornSolver(epsilon: epsilon, tolerance: tolerance, maxIterations: maxIterations)
        var parameters = try EntropicParameters(epsilon: epsilon, tolerance: tolerance, maxIterations: maxIterations)
        // The value uses OT_eps (or S_eps); <P, C> only for the plain term's W2 estimate.
        parameters.computesTransportCost = !debiased
        // The online cross solves need the driver's Newton-CG steps where the plan is a set of
        // isolated pairs (D = 21, eps = 0.05: without them the cross solve stalls near 2e-7 at
        // a 3,000-iteration cap; with them it converges in 183 iterations at M = 1000,
        // Benchmarks 2.3). The self terms ignore the setting.
        parameters.usesNewtonSteps = true
        self.parameters = parameters
        if geometry == .multiscale {
            throw GradientFlowsError.unsupported("the particle transport term runs on the dense or the online geometry (multiscale solves cannot be warm-started)")
        }
        self.epsilon = epsilon
        self.tolerance = tolerance
        self.maxIterations = maxIterations
        self.debiased = debiased
        self.requestedGeometry = geometry
        self.byteBudget = byteBudget
    }

    /// The term of `TransportMethod/sinkhorn(epsilon:options:)`: tolerance, cap, geometry and
    /// memory limit from the options; always debiased (a JKO transport term must vanish at
    /// `X = Y`, which `OT_eps` does not), so `SinkhornOptions/divergence` is not consulted.
    public convenience init(epsilon: Double, options: SinkhornOptions) throws {
        try self.init(epsilon: epsilon, debiased: true, tolerance: options.tolerance, maxIterations: options.maxIterations,
                      geometry: options.geometry, byteBudget: options.byteBudget)
    }

    public func setTarget(_ target: PointCloud) throws {
        let kind = requestedGeometry ?? SinkhornGeometryKind.automatic(
            sourceCount: target.count, targetCount: target.count, dimension: target.dimension,
            byteBudget: byteBudget, divergence: debiased)
        geometry = kind == .multiscale ? .online : kind
        // The new target is the previous step's result, where the last evaluations took place:
        // its self potential is the exact solution of the cross problem at X = Y, the inner
        // problem's starting point.
        if let s = warmSourceSelf, s.count == target.count {
            warmCross = DualPotentials(f: s, g: s)
        } else if let w = warmCross, w.f.count == target.count {
            warmCross = DualPotentials(f: w.f, g: w.f)
            warmSourceSelf = w.f
        } else {
            warmCross = nil
            warmSourceSelf = nil
        }
        targetSelf = nil
        self.target = target
    }

    public func evaluate(source: PointCloud, gradient: inout MutableSpan<Double>) throws -> TransportTermEvaluation {
        guard let target else { throw GradientFlowsError.unsupported("the transport term has no target: call setTarget first") }
        let problem = try TransportProblem(source: source, target: target)
        var solves = 0, iterations = 0, converged = true
        func count(_ s: Solve) {
            solves += 1
            iterations += s.iterations
            converged = converged && s.converged
            totalIterations += s.iterations
        }
        let same = source == target
        if !debiased {
            let cross = same ? try solveSelf(source, warm: warmCross?.f) : try solveCross(problem, warm: warmCross)
            count(cross)
            warmCross = cross.potentials
            try write(cross.result.sourceGradient(problem: problem), into: &gradient)
            return TransportTermEvaluation(value: cross.regularizedCost, squaredDistance: cross.result.cost,
                                           solverIterations: iterations, solves: solves, converged: converged)
        }
        let sourceSelf: Solve
        if same, let t = targetSelf {
            sourceSelf = t
        } else {
            sourceSelf = try solveSelf(source, warm: warmSourceSelf)
            count(sourceSelf)
        }
        warmSourceSelf = sourceSelf.potentials.f
        if targetSelf == nil {
            if same {
                targetSelf = sourceSelf
            } else {
                let t = try solveSelf(target, warm: warmSourceSelf.flatMap { $0.count == target.count ? $0 : nil })
                count(t)
                targetSelf = t
            }
        } else if let t = targetSelf, !t.converged {
            converged = false
        }
        let cross: Solve
        if same {
            // OT_eps(X, X): the self solve's value, plan and potentials; the gradient is zero.
            cross = sourceSelf
        } else {
            cross = try solveCross(problem, warm: warmCross)
            count(cross)
        }
        warmCross = cross.potentials
        let value = cross.regularizedCost - (sourceSelf.regularizedCost + targetSelf!.regularizedCost) / 2
        if same {
            for i in 0 ..< gradient.count { gradient[i] = 0 }
        } else {
            let selfProblem = try TransportProblem(source: source, target: source)
            let crossGradient = try cross.result.sourceGradient(problem: problem)
            let selfGradient = try sourceSelf.result.sourceGradient(problem: selfProblem)
            guard crossGradient.count == gradient.count, selfGradient.count == gradient.count else {
                throw GradientFlowsError.dimensionMismatch(what: "gradient buffer length", expected: crossGradient.count, actual: gradient.count)
            }
            // The source appears on both sides of OT_eps(X, X): twice the one-sided gradient,
            // times the divergence's 1/2.
            for i in 0 ..< gradient.count { gradient[i] = crossGradient[i] - selfGradient[i] }
        }
        return TransportTermEvaluation(value: value, squaredDistance: value, solverIterations: iterations,
                                       solves: solves, converged: converged)
    }

    private func solveCross(_ problem: TransportProblem, warm: DualPotentials?) throws -> Solve {
        let warm = warm.flatMap { $0.f.count == problem.source.count && $0.g.count == problem.target.count ? $0 : nil }
        switch geometry ?? .dense {
        case .dense, .multiscale:
            return try Self.package(solver.solve(problem, warmStart: warm, workspace: workspace))
        case .online:
            var driver = try EntropicSinkhorn(geometry: OnlinePointCloudGeometry(source: problem.source, target: problem.target),
                                              problem: .balanced(problem), parameters: parameters)
            if let warm { try driver.warmStart(f: warm.f, g: warm.g) }
            return try Self.package(driver.solve())
        }
    }

    private func solveSelf(_ cloud: PointCloud, warm: [Double]?) throws -> Solve {
        let warm = warm.flatMap { $0.count == cloud.count ? $0 : nil }
        switch geometry ?? .dense {
        case .dense, .multiscale:
            return try Self.package(solver.solveSelf(cloud, warmStart: warm, workspace: workspace))
        case .online:
            var driver = try EntropicSinkhorn(geometry: OnlinePointCloudGeometry(source: cloud, target: cloud),
                                              problem: .symmetric(a: cloud.weights), parameters: parameters)
            if let warm { try driver.warmStart(f: warm, g: warm) }
            return try Self.package(driver.solve())
        }
    }

    private static func package(_ result: TransportResult) throws -> Solve {
        guard let potentials = result.potentials, let regularized = result.entropic?.regularizedCost else {
            throw GradientFlowsError.solverFailure("Sinkhorn returned no potentials")
        }
        return Solve(result: result, regularizedCost: regularized, potentials: potentials, iterations: result.iterations,
                     converged: result.converged)
    }

    private static func package(_ output: EntropicOutput) throws -> Solve {
        try package(output.transportResult)
    }
}
