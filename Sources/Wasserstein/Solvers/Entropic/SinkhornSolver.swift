#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Entropic optimal transport by stabilised, over-relaxed Sinkhorn iterations.
///
/// Solves `OT_eps(a, b) = min_P <P, C> + eps * KL(P | a (x) b)` over couplings `P` of the weights
/// `a` and `b`, with the squared Euclidean cost `C_ij = |x_i - y_j|^2` (no factor 1/2) and an
/// absolute `eps` in the units of `C`. The optimal plan is
/// `P_ij = a_i b_j exp((f_i + g_j - C_ij) / eps)` for dual potentials `(f, g)`.
///
/// The result is a ``TransportResult`` with
/// - ``TransportResult/cost``: the transport part `<P, C>` (what POT's `sinkhorn2` returns, an
///   entropic estimate of `W2^2` that exceeds it by `O(eps log(1/eps))`);
/// - ``TransportResult/entropic``: `eps`, the regularized value `OT_eps` and the L1 marginal
///   error `|P 1 - a|_1 + |P^T 1 - b|_1` of the returned plan;
/// - ``TransportResult/potentials``: `(f, g)` in cost units, with the additive constant fixed
///   so that `<f, a> = <g, b>`; they are valid warm starts for a nearby problem;
/// - ``TransportResult/status``: ``SolverStatus/converged`` when the marginal error of the
///   returned plan is at most ``tolerance`` times the source mass `|a|`; ``SolverStatus/iterationLimit`` otherwise: when
///   ``maxIterations`` ran out first, or earlier when the error stalled at the precision floor
///   of double arithmetic (about `ulp(1) * (|f| + |g| + max C) / eps`) above the tolerance. The
///   potentials are then those of the last iterate followed by one exact log-domain Sinkhorn
///   iteration at `eps` (`g_j = -eps log sum_i a_i exp((f_i - C_ij) / eps)`, then `f` likewise
///   from `g`), so that they belong to the target `eps` even when the cap ran out during the
///   epsilon-scaling stages: the plan's rows are exact (to rounding), its mass is `|a|`, its
///   transport cost lies in `[0, |a| max C]`, and costs, error and status are those of this plan;
/// - ``TransportResult/plan`` when ``planOutput`` asks for it.
///
/// It never returns NaN or infinity for a valid problem and any `eps > 0`: the iteration runs in
/// kernel mode on a stabilised kernel and falls back to exact log-sum-exp updates wherever the
/// kernel would under- or overflow (see `SinkhornCore.swift` for the design and its measurements).
///
/// Before iterating it checks what double precision can represent: squared distances must not
/// overflow (a point at `1e155` is refused, not iterated on forever), `eps` must be at least
/// `1e-15` times the squared diameter, and each total mass must lie in `1e-100 ... 1e100`
/// (normalise otherwise). Clouds whose squared diameter exceeds `2^64` are solved after an
/// exact power-of-two rescaling, so costs up to the top of the Double range come back right.
///
/// Complexity: `O(n m)` time per iteration and `n m` doubles of memory (the stabilised kernel).
/// The number of iterations grows as eps decreases: on unit-scale 2-D clouds at tolerance
/// 1e-9, about 100 at eps = 0.1, 200 at 0.03, 400-600 at 0.01 and 1000-3000 at 0.003.
///
/// ```swift
/// let solver = try SinkhornSolver(epsilon: 0.01)
/// let result = try solver.solve(problem)
/// print(result.cost, result.entropic!.regularizedCost, result.converged)
/// ```
public struct SinkhornSolver: TransportSolver, Sendable {
    /// The regularisation strength `eps > 0`, absolute, in the units of the cost.
    public var epsilon: Double
    /// The iteration stops when the L1 marginal error of the plan is at most this (`> 0`) times
    /// the source mass `|a|`: relative, so that a measure of mass `1e-60` is not declared
    /// converged by its zero plan (for the usual mass one it is the absolute error).
    public var tolerance: Double
    /// The cap on Sinkhorn iterations (each updates both potentials once), summed over the
    /// epsilon-scaling stages; `>= 1`. The closing log-domain iteration of a run that stops
    /// short of the tolerance (see the type's documentation) is not counted.
    public var maxIterations: Int
    /// How cold starts approach `epsilon`.
    public var epsilonScaling: EpsilonScaling
    /// How the scaling updates are over-relaxed.
    public var overRelaxation: OverRelaxation
    /// Whether and how the plan is returned (default ``PlanOutput/none``; ``PlanOutput/full``
    /// gives all `n * m` entries).
    public var planOutput: PlanOutput
    /// Whether a slow final phase switches to Newton-CG steps on the dual (default true).
    ///
    /// When the observed rate of the scaling iterations predicts many more iterations (weakly
    /// coupled groups of points at small eps make Sinkhorn's rate approach 1 arbitrarily
    /// closely), the solver takes damped Newton steps whose linear systems are solved by
    /// preconditioned conjugate gradients, one product with the kernel and one with its
    /// transpose per CG iteration. A CG iteration costs what a Sinkhorn iteration costs and is
    /// counted as one in ``TransportResult/iterations`` and ``maxIterations``.
    public var newtonSteps: Bool = true
    /// The largest `n * m` the solver accepts (default `2^30`: the stabilised kernel then takes
    /// 8 GiB). Larger problems throw ``WassersteinError/tooLarge(_:)`` before any allocation,
    /// instead of failing inside the allocator; raise it on a machine with the memory.
    public var maximumKernelCells: Int = SinkhornSolver.defaultMaximumKernelCells
    /// Receives a report per iteration (the marginal error of the current iterate, the epsilon
    /// stage), as the engine's driver sends them (``EntropicSinkhorn/progress``): for a progress
    /// display with the time left. `nil` by default.
    public var progress: EntropicProgressObserver? = nil

    /// The schedule of a cold start.
    public enum EpsilonScaling: Sendable, Equatable {
        /// Start directly at `epsilon` from zero potentials.
        case none
        /// Stages `eps_k = D * factor^k` from the squared diameter `D` of both clouds down to
        /// `epsilon`, running `iterationsPerStage` plain iterations at each intermediate stage.
        /// Used when `epsilon` is below 1% of the mean cost `sum a_i b_j C_ij` (above that a
        /// cold start at `epsilon` is as fast); warm starts skip the stages.
        case geometric(factor: Double, iterationsPerStage: Int)

        /// The default: divide epsilon by 10 per stage, ten iterations per stage.
        public static let automatic = EpsilonScaling.geometric(factor: 0.1, iterationsPerStage: 10)
    }

    /// Over-relaxation of the scaling updates: `u <- u^(1 - w) (a / K v)^w`.
    public enum OverRelaxation: Sendable, Equatable {
        /// Plain Sinkhorn (`w = 1`).
        case none
        /// A fixed factor `w` in `[1, 2)`.
        case fixed(Double)
        /// `w` follows the measured convergence rate (the default).
        case adaptive
    }

    /// Creates a solver.
    ///
    /// - Parameters:
    ///   - epsilon: the absolute regularisation `eps > 0` (finite).
    ///   - tolerance: the L1 marginal error, relative to the source mass, at which to stop,
    ///     `> 0` and finite. The error is
    ///     that of the returned potentials' plan, which double precision resolves only to about
    ///     `ulp(1) * (|f| + |g| + max C) / eps` (1e-14 for unit clouds at eps = 0.05).
    ///   - maxIterations: the iteration cap, `>= 1`.
    ///   - epsilonScaling: the cold-start schedule.
    ///   - overRelaxation: the relaxation rule.
    ///   - planOutput: whether to return the plan.
    /// - Throws: ``WassersteinError/invalidParameter(name:value:requirement:)`` for a
    ///   parameter outside its domain.
    public init(epsilon: Double, tolerance: Double = 1e-9, maxIterations: Int = 10_000,
                epsilonScaling: EpsilonScaling = .automatic, overRelaxation: OverRelaxation = .adaptive,
                planOutput: PlanOutput = .none) throws {
        self.epsilon = epsilon
        self.tolerance = tolerance
        self.maxIterations = maxIterations
        self.epsilonScaling = epsilonScaling
        self.overRelaxation = overRelaxation
        self.planOutput = planOutput
        try validate()
    }

    /// Checks every parameter (the properties are mutable, so ``solve(_:)`` checks again).
    ///
    /// - Throws: ``WassersteinError/invalidParameter(name:value:requirement:)``.
    public func validate() throws {
        var factor: Double? = nil, perStage: Int? = nil, omega: Double? = nil
        if case .geometric(let f, let k) = epsilonScaling { factor = f; perStage = k }
        if case .fixed(let w) = overRelaxation { omega = w }
        try EntropicSettingsCheck.validate(epsilon: epsilon, tolerance: tolerance, maxIterations: maxIterations,
                                           scalingFactor: factor, iterationsPerStage: perStage, overRelaxation: omega)
        if case .sparse(let threshold) = planOutput {
            guard threshold >= 0, threshold.isFinite else {
                throw WassersteinError.invalidParameter(name: "plan threshold", value: threshold, requirement: "must be finite and >= 0")
            }
        }
    }

    /// Solves the entropic problem from a cold start with a fresh workspace.
    ///
    /// - Throws: ``WassersteinError/invalidParameter(name:value:requirement:)`` for invalid
    ///   solver parameters. Non-convergence is reported in the result, not thrown.
    public func solve(_ problem: TransportProblem) throws -> TransportResult {
        try solve(problem, warmStart: nil, workspace: SinkhornWorkspace())
    }

    /// Solves the entropic problem, optionally warm-started, reusing a workspace.
    ///
    /// A warm start `(f, g)` (typically the potentials of the previous, nearby problem) starts
    /// the iteration at the target epsilon directly, skipping the epsilon-scaling stages. Any
    /// finite potentials are accepted; poor ones cost iterations, never correctness.
    ///
    /// - Parameters:
    ///   - problem: the two clouds.
    ///   - warmStart: initial potentials with `n` and `m` finite values, or `nil`.
    ///   - workspace: buffers reused across calls (see ``SinkhornWorkspace``).
    /// - Throws: ``WassersteinError/invalidParameter(name:value:requirement:)`` for invalid
    ///   parameters or non-finite warm-start values, for squared distances that overflow, for
    ///   `epsilon` below `1e-15` of the squared diameter, or for a total mass outside
    ///   `1e-100 ... 1e100`; ``WassersteinError/dimensionMismatch(expected:actual:)`` for
    ///   warm-start vectors of the wrong length.
    public func solve(_ problem: TransportProblem, warmStart: DualPotentials?, workspace: SinkhornWorkspace) throws -> TransportResult {
        try validate()
        let source = problem.source, target = problem.target
        let n = source.count, m = target.count
        try checkKernelSize(n, m)
        if let warm = warmStart {
            guard warm.f.count == n else { throw WassersteinError.dimensionMismatch(expected: n, actual: warm.f.count) }
            guard warm.g.count == m else { throw WassersteinError.dimensionMismatch(expected: m, actual: warm.g.count) }
            for value in warm.f where !value.isFinite {
                throw WassersteinError.invalidParameter(name: "warm-start potential f", value: value, requirement: "must be finite")
            }
            for value in warm.g where !value.isFinite {
                throw WassersteinError.invalidParameter(name: "warm-start potential g", value: value, requirement: "must be finite")
            }
        }
        let scale = try EntropicScale(source: source, target: target, epsilon: epsilon)
        let run = SinkhornRun(epsilon: epsilon / scale.costUnit, tolerance: tolerance * source.mass, maxIterations: maxIterations,
                              scaling: scalingParameters, relaxation: relaxationRule, newton: newtonSteps,
                              progress: scale.reportingUnits(progress))
        let outcome = workspace.solveBalanced(source: scale.scaled(source), target: scale.scaled(target), run: run,
                                              warmStart: warmStart.map(scale.scaledDown))
        return try package(scale.scaledUp(outcome), problem: problem, workspace: workspace)
    }

    /// Refuses problems whose `n x m` kernel exceeds ``maximumKernelCells``.
    func checkKernelSize(_ n: Int, _ m: Int) throws {
        let (cells, overflow) = n.multipliedReportingOverflow(by: m)
        guard !overflow, cells <= maximumKernelCells else {
            let gib = Double(n) * Double(m) * 8 / Double(1 << 30)
            throw WassersteinError.tooLarge(
                "Sinkhorn stores the n x m kernel: n * m = \(n) * \(m) needs \((gib * 10).rounded() / 10) GiB, above the limit of \(maximumKernelCells) cells (SinkhornSolver.maximumKernelCells); use the exact method (O(n + m) memory) or fewer points")
        }
    }

    var scalingParameters: (factor: Double, iterationsPerStage: Int)? {
        switch epsilonScaling {
        case .none: return nil
        case .geometric(let factor, let perStage): return (factor, perStage)
        }
    }

    var relaxationRule: RelaxationRule {
        switch overRelaxation {
        case .none: return .plain
        case .fixed(let w): return .fixed(w)
        case .adaptive: return .adaptive
        }
    }

    func package(_ outcome: SinkhornOutcome, problem: TransportProblem, workspace: SinkhornWorkspace) throws -> TransportResult {
        let values = [outcome.transportCost, outcome.regularizedCost, outcome.marginalError]
        guard values.allSatisfy({ $0.isFinite }), outcome.f.allSatisfy({ $0.isFinite }), outcome.g.allSatisfy({ $0.isFinite }) else {
            // The stabilisation is designed to make this unreachable; fail loudly rather than return NaN.
            throw WassersteinError.solverFailure("Sinkhorn produced a non-finite value at epsilon \(epsilon)")
        }
        let potentials = DualPotentials(f: outcome.f, g: outcome.g)
        var plan: TransportPlan?
        switch planOutput {
        case .none: plan = nil
        case .full: plan = EntropicPlan.plan(problem, potentials: potentials, epsilon: epsilon, minimumMass: nil)
        case .sparse(let threshold): plan = EntropicPlan.plan(problem, potentials: potentials, epsilon: epsilon, minimumMass: threshold)
        }
        return TransportResult(method: .sinkhorn(epsilon: epsilon, options: SinkhornOptions(tolerance: tolerance, maxIterations: maxIterations)), status: outcome.converged ? .converged : .iterationLimit,
                               cost: outcome.transportCost, plan: plan, potentials: potentials,
                               iterations: outcome.iterations,
                               entropic: EntropicDiagnostics(epsilon: epsilon, regularizedCost: outcome.regularizedCost,
                                                             marginalError: outcome.marginalError))
    }
}

extension SinkhornWorkspace {
    /// Sizes the buffers for an `n x m` problem and runs the balanced core.
    func solveBalanced(source: PointCloud, target: PointCloud, run: SinkhornRun, warmStart: DualPotentials?) -> SinkhornOutcome {
        let n = source.count, m = target.count
        let big = Swift.max(n, m)
        kernel.reserve(n * m)
        alpha.reserve(n); beta.reserve(m); u.reserve(n); v.reserve(m)
        r.reserve(n); s.reserve(m); w.reserve(big); scratch.reserve(2 * big)
        partial.reserve(sinkhornColumnBlocks * m)
        newton.reserve(4 * n + 9 * m)
        if let warm = warmStart {
            warm.f.withUnsafeBufferPointer { alpha.pointer.update(from: $0.baseAddress!, count: n) }
            warm.g.withUnsafeBufferPointer { beta.pointer.update(from: $0.baseAddress!, count: m) }
        }
        return source.coordinates.withUnsafeBufferPointer { xp in
            target.coordinates.withUnsafeBufferPointer { yp in
                source.weights.withUnsafeBufferPointer { ap in
                    target.weights.withUnsafeBufferPointer { bp in
                        var core = BalancedSinkhornCore(
                            geo: EntropicGeometry(x: xp.baseAddress!, y: yp.baseAddress!, n: n, m: m, d: source.dimension),
                            a: ap.baseAddress!, b: bp.baseAddress!, massA: source.mass, massB: target.mass,
                            K: kernel.pointer, alpha: alpha.pointer, beta: beta.pointer, u: u.pointer, v: v.pointer,
                            r: r.pointer, s: s.pointer, w: w.pointer, scratch: scratch.pointer, partial: partial.pointer,
                            newton: newton.pointer, eps: run.epsilon)
                        let (outcome, omega) = core.run(run, warmStart: warmStart != nil, relaxationHint: relaxationHint)
                        if case .adaptive = run.relaxation { relaxationHint = omega }
                        lastStatistics = core.stats
                        return outcome
                    }
                }
            }
        }
    }
}

extension SinkhornWorkspace {
    /// Solves the symmetric problem on `cloud` with the engine's driver (the averaged update of
    /// ``MarginalUpdate/symmetric``) over the stored, absorption-stabilised kernel of
    /// ``StabilizedKernelGeometry`` in this workspace's buffers.
    ///
    /// A run that stops short of the tolerance closes with one exact log-domain iteration from
    /// its last `f` (``BalancedSinkhornCore/closedOutcome(from:iterations:)``, as the balanced
    /// solve does), so that one marginal of the returned plan is exact.
    ///
    /// - Throws: as ``EntropicSinkhorn/init(geometry:problem:parameters:)`` and
    ///   ``EntropicSinkhorn/solve()`` (not expected for a checked, scaled cloud).
    func solveSymmetric(cloud: PointCloud, epsilon: Double, tolerance: Double, maxIterations: Int,
                        warmStart: [Double]?, progress: EntropicProgressObserver? = nil) throws -> SinkhornOutcome {
        let n = cloud.count
        let range = try SquaredEuclideanCost.upperBound(source: cloud, target: cloud)
        let problem = try EntropicProblem.symmetric(a: cloud.weights)
        let parameters = try EntropicParameters(epsilon: epsilon, tolerance: tolerance, maxIterations: maxIterations,
                                                scaling: .none, overRelaxation: .none)
        return try cloud.coordinates.withUnsafeBufferPointer { xp in
            try cloud.weights.withUnsafeBufferPointer { ap in
                let geometry = StabilizedKernelGeometry(
                    geo: EntropicGeometry(x: xp.baseAddress!, y: xp.baseAddress!, n: n, m: n, d: cloud.dimension),
                    a: ap.baseAddress!, b: ap.baseAddress!, massA: cloud.mass, massB: cloud.mass,
                    buffers: self, costRange: range)
                var driver = try EntropicSinkhorn(geometry: geometry, problem: problem, parameters: parameters)
                driver.progress = progress
                if let warm = warmStart { try driver.warmStart(f: warm, g: warm) }
                let output = try driver.solve()
                var outcome = SinkhornOutcome(f: output.f, g: output.g, transportCost: output.transportCost,
                                              regularizedCost: output.regularizedCost, marginalError: output.marginalError,
                                              iterations: output.iterations, converged: output.converged)
                if !output.converged {
                    outcome = geometry.core(epsilon).closedOutcome(from: output.f, iterations: output.iterations)
                    outcome.converged = outcome.marginalError <= tolerance * cloud.mass
                }
                var stats = geometry.state.stats
                stats.stages = 1
                stats.iterations = output.iterations
                lastStatistics = stats
                return outcome
            }
        }
    }
}

extension SinkhornSolver {
    /// Solves the symmetric problem `OT_eps(a, a)` of a cloud with itself.
    ///
    /// This is the self term of the Sinkhorn divergence. It uses the averaged symmetric
    /// iteration `f <- (f + T(f)) / 2`, which converges at a rate of at most 1/2 per iteration
    /// for every eps (see ``MarginalUpdate/symmetric``), run by the engine's driver over the stored
    /// `n x n` kernel of the dense geometry: one product with it per iteration. The plan is `P_ij = a_i a_j exp((f_i + f_j - C_ij) / eps)`; the
    /// result's potentials are `(f, f)`. Epsilon scaling and over-relaxation do not apply.
    /// A run that stops short of the tolerance closes, as ``solve(_:)`` does, with one exact
    /// log-domain iteration from the last `f`: its potentials are then `(f', g)` with `f' != g`,
    /// and the rows of their plan are exact.
    ///
    /// - Parameters:
    ///   - cloud: the measure `a`.
    ///   - warmStart: an initial potential f (`n` finite values), or `nil`.
    ///   - workspace: reusable buffers.
    /// - Throws: ``WassersteinError/invalidParameter(name:value:requirement:)`` for invalid
    ///   parameters or warm-start values and for the problem checks of
    ///   ``solve(_:warmStart:workspace:)``, ``WassersteinError/dimensionMismatch(expected:actual:)``
    ///   for a warm start of the wrong length.
    public func solveSelf(_ cloud: PointCloud, warmStart: [Double]? = nil,
                          workspace: SinkhornWorkspace = SinkhornWorkspace()) throws -> TransportResult {
        try validate()
        try checkKernelSize(cloud.count, cloud.count)
        if let warm = warmStart {
            guard warm.count == cloud.count else { throw WassersteinError.dimensionMismatch(expected: cloud.count, actual: warm.count) }
            for value in warm where !value.isFinite {
                throw WassersteinError.invalidParameter(name: "warm-start potential", value: value, requirement: "must be finite")
            }
        }
        let scale = try EntropicScale(source: cloud, target: cloud, epsilon: epsilon)
        let outcome = try workspace.solveSymmetric(cloud: scale.scaled(cloud), epsilon: epsilon / scale.costUnit,
                                                   tolerance: tolerance, maxIterations: maxIterations,
                                                   warmStart: warmStart.map(scale.scaledDown),
                                                   progress: scale.reportingUnits(progress))
        let problem = try TransportProblem(source: cloud, target: cloud)
        return try package(scale.scaledUp(outcome), problem: problem, workspace: workspace)
    }
}
