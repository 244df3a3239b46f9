import CEntropicKernels
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// How the potentials are updated from the soft-mins: the marginal constraints of a problem.
///
/// Why an enum: the driver's loop (schedule, stopping, audit) is shared; only the update and
/// the error of the marginals differ. A KL-relaxed (unbalanced) update fits here as a further
/// case, `f <- rho / (rho + eps) * T(g)` with its own error measure, without touching the
/// geometries.
public enum MarginalUpdate: Sendable, Equatable {
    /// `OT_eps(a, b)`: `f <- T(g)`, `g <- T^T(f)`, both marginals matched exactly at the fixed point.
    case balanced
    /// `OT_eps(a, a)`, the self term of the Sinkhorn divergence: one potential, updated by the
    /// averaged map `f <- (f + T(f)) / 2` (Feydy et al. 2019), which contracts by at least 1/2
    /// per iteration for every eps (the Gaussian kernel is positive semi-definite). Needs a
    /// square geometry whose source and target are the same cloud.
    case symmetric
    /// The proximal step of an entropic JKO scheme (Peyre 2015): the column marginal is `b`
    /// (`g <- T^T(f)`), and the row marginal is left free and penalised by the energy
    /// `G(p) = sum_i p_i U_i + lambda sum_i p_i log p_i`: the problem
    /// `min_P <C, P> + eps KL(P | a (x) b) + G(P 1)` over `P^T 1 = b`, whose optimality gives
    /// the update `f <- (1 - theta) T(g) + theta phi` with `theta = eps / (eps + lambda)` and
    /// `phi = -U - lambda log a` (up to a constant, which the mass constraint absorbs). The
    /// row marginal of the result is ``EntropicSinkhorn/rowMarginal()``. The error is the
    /// residual `sum_i |P 1 - a exp((f_new - T(g)) / eps)|` of the last update, the iteration
    /// `g <- T^T(f)`, `f <- f + w (f_new - f)` (over-relaxed by ``EntropicParameters/overRelaxation``).
    case proximal(theta: Double, potential: [Double])
    /// Unbalanced `OT_eps^rho(a, b)`: the marginal constraints replaced by the penalties
    /// `rho_a KL(P 1 | a) + rho_b KL(P^T 1 | b)` (Séjourné et al. 2019). Updates
    /// `f <- rho_a / (rho_a + eps) * T(g)`, `g <- rho_b / (rho_b + eps) * T^T(f)`, then the
    /// translation `(f + lambda, g - lambda)` that maximises the dual (Séjourné, Vialard and
    /// Peyré 2022): without it the mode `(f + c, g - c)` contracts only by `rho / (rho + eps)`
    /// per iteration (measured, POT issue 711's 2 x 2 case at eps = 0.01, rho = 100: 90,830
    /// iterations to 1e-12 without, 76 with). A penalty of `+infinity` enforces that side.
    /// Build it with ``EntropicProblem/unbalanced(a:b:sourcePenalty:targetPenalty:)``.
    case unbalanced(sourcePenalty: Double, targetPenalty: Double)
    /// `OT_eps^rho(a, a)`, the self term of the unbalanced divergence: the averaged update
    /// `f <- (f + rho / (rho + eps) T(f)) / 2` (a contraction by 1/2 or better, as for
    /// ``symmetric``). Build it with ``EntropicProblem/unbalancedSymmetric(a:penalty:)``.
    case unbalancedSymmetric(penalty: Double)
}

/// The marginals and the update of an entropic problem.
public struct EntropicProblem: Sendable {
    /// Source weights `a` (`n` values).
    public let a: [Double]
    /// Target weights `b` (`m` values; equal to `a` for ``MarginalUpdate/symmetric``).
    public let b: [Double]
    /// The marginal update.
    public let update: MarginalUpdate

    /// `OT_eps(a, b)` with both marginals enforced.
    ///
    /// - Throws: ``WassersteinError/invalidWeight(cloud:index:value:)``,
    ///   ``WassersteinError/zeroMass(_:)``, ``WassersteinError/massMismatch(source:target:)``
    ///   (relative `1e-9`), and ``WassersteinError/invalidParameter(name:value:requirement:)`` for a
    ///   mass outside `1e-100 ... 1e100` (the tolerance is relative to the mass, but the exponent
    ///   ranges are not).
    public static func balanced(a: [Double], b: [Double]) throws -> EntropicProblem {
        let ma = try checkedMass(a, name: "source weights")
        let mb = try checkedMass(b, name: "target weights")
        guard abs(ma - mb) <= 1e-9 * Swift.max(ma, mb) else { throw WassersteinError.massMismatch(source: ma, target: mb) }
        return EntropicProblem(a: a, b: b, update: .balanced)
    }

    /// `OT_eps(a, a)` of a measure with itself.
    ///
    /// - Throws: as ``balanced(a:b:)``.
    public static func symmetric(a: [Double]) throws -> EntropicProblem {
        _ = try checkedMass(a, name: "weights")
        return EntropicProblem(a: a, b: a, update: .symmetric)
    }

    /// The proximal step of ``MarginalUpdate/proximal(theta:potential:)``: column marginal `b`,
    /// reference weights `a` of the free row marginal (of the mass of `b`, so that tolerances
    /// relative to ``sourceMass`` mean the same as for the other updates).
    ///
    /// - Throws: as ``balanced(a:b:)``; ``WassersteinError/invalidParameter(name:value:requirement:)``
    ///   for `theta` outside `(0, 1]` or a potential that is not finite;
    ///   ``WassersteinError/dimensionMismatch(expected:actual:)`` when `potential` is not as long as `a`.
    public static func proximal(a: [Double], b: [Double], theta: Double, potential: [Double]) throws -> EntropicProblem {
        let problem = try balanced(a: a, b: b)
        guard theta > 0, theta <= 1 else {
            throw WassersteinError.invalidParameter(name: "theta", value: theta, requirement: "must lie in (0, 1]")
        }
        guard potential.count == a.count else { throw WassersteinError.dimensionMismatch(expected: a.count, actual: potential.count) }
        for v in potential where !v.isFinite {
            throw WassersteinError.invalidParameter(name: "proximal potential", value: v, requirement: "must be finite")
        }
        return EntropicProblem(a: problem.a, b: problem.b, update: .proximal(theta: theta, potential: potential))
    }

    /// The problem of two point clouds (their weights), balanced.
    public static func balanced(_ problem: TransportProblem) throws -> EntropicProblem {
        try balanced(a: problem.source.weights, b: problem.target.weights)
    }

    init(a: [Double], b: [Double], update: MarginalUpdate) {
        self.a = a
        self.b = b
        self.update = update
    }

    /// `|a|`, the source mass.
    public var sourceMass: Double { a.reduce(0, +) }

    static func checkedMass(_ w: [Double], name: String) throws -> Double {
        guard !w.isEmpty else { throw WassersteinError.emptyCloud(name) }
        var mass = 0.0
        for (i, v) in w.enumerated() {
            guard v >= 0, v.isFinite else { throw WassersteinError.invalidWeight(cloud: name, index: i, value: v) }
            mass += v
        }
        guard mass > 0 else { throw WassersteinError.zeroMass(name) }
        guard EntropicScale.massRange.contains(mass) else {
            throw WassersteinError.invalidParameter(name: "total mass", value: mass,
                                                    requirement: "the entropic engine needs masses between 1e-100 and 1e100; normalise the weights")
        }
        return mass
    }
}

/// The parameters of the engine: one name for the regulariser, one meaning of tolerance.
public struct EntropicParameters: Sendable, Equatable {
    /// The regularisation `eps > 0`, absolute, in cost units.
    public var epsilon: Double
    /// Stop when the L1 marginal error of the returned potentials' plan,
    /// `|P 1 - a|_1 + |P^T 1 - b|_1`, is at most this times the source mass `|a|` (the meaning
    /// ``SinkhornSolver/tolerance`` has). Default `1e-9`.
    public var tolerance: Double
    /// The cap on iterations (one update of each potential; for ``MarginalUpdate/symmetric``
    /// one averaged update), summed over the epsilon stages. `>= 1`. Default `10_000`.
    public var maxIterations: Int
    /// How a cold start approaches ``epsilon``.
    public var scaling: EpsilonSchedule
    /// The over-relaxation of balanced updates at the target epsilon, `f <- (1 - w) f + w T(g)`.
    public var overRelaxation: Relaxation
    /// Whether the audit computes ``EntropicOutput/transportCost`` `<P, C>` (one more pass over
    /// the cost, about two soft-mins' work on a grid). Default `true`; a caller that reads only
    /// the potentials, the plan or ``EntropicOutput/regularizedCost`` (a JKO step) sets it to
    /// `false` and gets `transportCost == .nan`.
    public var computesTransportCost: Bool = true
    /// Whether the balanced loop at the target epsilon may switch to Newton-CG steps where the
    /// scaling iterations slow down (the stage `EntropicNewtonStage` describes; products with
    /// the plan through ``SinkhornGeometry/applyPlan(_:f:g:logA:logB:epsilon:transposed:squared:into:)``).
    /// Default `false`. It is what lets isolated pairs converge (`D = 21`, `eps = 0.05`: the plain
    /// loop stalls near `2e-7` at a 3,000-iteration cap); each CG iteration costs one iteration's
    /// work and is counted in ``EntropicOutput/iterations``. Other updates ignore it.
    public var usesNewtonSteps: Bool = false

    /// The over-relaxation rule (Thibault et al. 2017; the log-domain form of
    /// `u <- u^(1 - w) (a / K v)^w`).
    public enum Relaxation: Sendable, Equatable {
        /// Plain Sinkhorn, `w = 1`.
        case none
        /// A fixed `w` in `[1, 2)`.
        case fixed(Double)
        /// `w` from the observed rate of the marginal error through Young's relation for
        /// two-cyclic iterations (the controller of ``SinkhornSolver``): plain Sinkhorn's rate
        /// `1 - O(eps)` at small eps becomes about `w* - 1`. The default.
        case adaptive
    }

    /// The cold-start schedule.
    public enum EpsilonSchedule: Sendable, Equatable {
        /// Start at ``EntropicParameters/epsilon`` from zero potentials.
        case none
        /// Stages `eps_k = R factor^k` from the geometry's cost range `R` down to the target,
        /// `iterationsPerStage` iterations each (the potentials carry over in cost units), then
        /// the target until convergence. Skipped when the target is above the range, after a
        /// warm start, for ``MarginalUpdate/symmetric`` problems (which converge at a rate
        /// of at least 1/2 per iteration whatever eps), and for unbalanced ones (KL penalties
        /// damp each half-step; stages only added iterations there, as measured).
        case geometric(factor: Double, iterationsPerStage: Int)
    }

    /// - Throws: ``WassersteinError/invalidParameter(name:value:requirement:)`` for a value
    ///   outside its domain.
    public init(epsilon: Double, tolerance: Double = 1e-9, maxIterations: Int = 10_000,
                scaling: EpsilonSchedule = .geometric(factor: 0.5, iterationsPerStage: 1),
                overRelaxation: Relaxation = .adaptive) throws {
        self.epsilon = epsilon
        self.tolerance = tolerance
        self.maxIterations = maxIterations
        self.scaling = scaling
        self.overRelaxation = overRelaxation
        try validate()
    }

    /// Checks every field (they are mutable, so the driver checks again).
    public func validate() throws {
        var factor: Double? = nil, perStage: Int? = nil, omega: Double? = nil
        if case .geometric(let f, let k) = scaling { factor = f; perStage = k }
        if case .fixed(let w) = overRelaxation { omega = w }
        try EntropicSettingsCheck.validate(epsilon: epsilon, tolerance: tolerance, maxIterations: maxIterations,
                                           scalingFactor: factor, iterationsPerStage: perStage, overRelaxation: omega)
    }
}

/// The checks both Sinkhorn front ends (``SinkhornSolver`` and ``EntropicParameters``) make of
/// their shared settings: one place, one wording of each error.
enum EntropicSettingsCheck {
    /// - Throws: ``WassersteinError/invalidParameter(name:value:requirement:)`` for a value
    ///   outside its domain (`nil` settings are not in use).
    static func validate(epsilon: Double, tolerance: Double, maxIterations: Int, scalingFactor: Double?,
                         iterationsPerStage: Int?, overRelaxation: Double?) throws {
        guard epsilon > 0, epsilon.isFinite else {
            throw WassersteinError.invalidParameter(name: "epsilon", value: epsilon, requirement: "must be finite and > 0")
        }
        guard tolerance > 0, tolerance.isFinite else {
            throw WassersteinError.invalidParameter(name: "tolerance", value: tolerance, requirement: "must be finite and > 0")
        }
        guard maxIterations >= 1 else {
            throw WassersteinError.invalidParameter(name: "max iterations", value: Double(maxIterations), requirement: "must be >= 1")
        }
        if let factor = scalingFactor, !(factor > 0 && factor < 1) {
            throw WassersteinError.invalidParameter(name: "epsilon scaling factor", value: factor, requirement: "must lie in (0, 1)")
        }
        if let perStage = iterationsPerStage, perStage < 1 {
            throw WassersteinError.invalidParameter(name: "iterations per stage", value: Double(perStage), requirement: "must be >= 1")
        }
        if let w = overRelaxation, !(w >= 1 && w < 2) {
            throw WassersteinError.invalidParameter(name: "over-relaxation", value: w, requirement: "must lie in [1, 2)")
        }
    }
}

/// The result of an engine solve.
public struct EntropicOutput: Sendable {
    /// The geometry's name (`"dense"`, `"online"`).
    public var geometry: String
    /// The regularisation the potentials belong to.
    public var epsilon: Double
    /// The transport part `<P, C>` of the plan of the returned potentials (NaN when
    /// ``EntropicParameters/computesTransportCost`` is `false`).
    public var transportCost: Double
    /// `OT_eps = <P, C> + eps KL(P | a (x) b) = <f, P 1> + <g, P^T 1> - eps (sum P - |a| |b|)`;
    /// for unbalanced problems the primal value with the marginal penalties,
    /// `+ rho_a KL(P 1 | a) + rho_b KL(P^T 1 | b)`.
    public var regularizedCost: Double
    /// Source potential `f` (`n` values), gauge `<f, a> = <g, b>` for balanced problems.
    public var f: [Double]
    /// Target potential `g` (`m` values; equal to `f` for symmetric problems).
    public var g: [Double]
    /// Iterations run, summed over the epsilon stages.
    public var iterations: Int
    /// Whether ``marginalError`` is at most the tolerance times the source mass.
    public var converged: Bool
    /// `|P 1 - a|_1 + |P^T 1 - b|_1` of the plan of `(f, g)`; for unbalanced problems the
    /// error of the relaxed marginals, `|P 1 - a exp(-f / rho_a)|_1 + |P^T 1 - b exp(-g / rho_b)|_1`.
    public var marginalError: Double
    /// `sum P`, the mass of the plan of `(f, g)` (`|a|` up to the tolerance when balanced).
    public var transportedMass: Double = .nan
    /// The dual objective at `(f, g)` for unbalanced problems (equal to ``regularizedCost`` at
    /// the optimum); `nil` otherwise.
    public var dualCost: Double? = nil
    /// Newton-CG steps accepted (``EntropicParameters/usesNewtonSteps``); their work is part of
    /// ``iterations``.
    public var newtonSteps: Int = 0

    /// The potentials as ``DualPotentials``.
    public var potentials: DualPotentials { DualPotentials(f: f, g: g) }
}

/// Where an entropic solve stands, reported by the driver after every iteration (see
/// ``EntropicSinkhorn/progress``).
public struct EntropicProgress: Sendable, Equatable {
    /// Iterations run so far, summed over the epsilon stages.
    public var iteration: Int
    /// The marginal error of the current iterate (in mass units, as ``EntropicOutput/marginalError``;
    /// for ``MarginalUpdate/proximal(theta:potential:)`` the residual of the last update).
    public var marginalError: Double
    /// The error at which the solve stops: the tolerance times the source mass.
    public var targetError: Double
    /// The epsilon of the current stage.
    public var epsilon: Double
    /// The current stage, `0 ..< stageCount`; the last is the target epsilon, run to the tolerance.
    public var stage: Int
    /// The epsilon-scaling stages before the target plus the target stage (1 without scaling).
    public var stageCount: Int
    /// The iterations of each stage before the target.
    public var iterationsPerStage: Int
    /// The iteration cap of the whole solve.
    public var maxIterations: Int

    /// A report (the driver makes them; tests and other drivers may too).
    public init(iteration: Int, marginalError: Double, targetError: Double, epsilon: Double, stage: Int,
                stageCount: Int, iterationsPerStage: Int, maxIterations: Int) {
        self.iteration = iteration
        self.marginalError = marginalError
        self.targetError = targetError
        self.epsilon = epsilon
        self.stage = stage
        self.stageCount = stageCount
        self.iterationsPerStage = iterationsPerStage
        self.maxIterations = maxIterations
    }
}

/// Receives ``EntropicProgress`` reports (from the solving thread; keep it cheap).
public typealias EntropicProgressObserver = @Sendable (EntropicProgress) -> Void

/// The entropic driver: one loop for every geometry and marginal update.
///
/// Built once for a geometry and a problem, it holds its workspace (potentials and the
/// soft-mins of the current iterate, `O(n + m)`), and ``solve()`` runs in place, as
/// OptimalTransport.jl's `solve!` does: a second ``solve()`` after ``warmStart(f:g:)``
/// reuses the buffers.
///
/// The loop, balanced case (`T` the row soft-min with weights `b`, `T^T` the column one with `a`):
/// `fT = T(g)`; repeat { `f <- (1 - w) f + w fT`; `gT = T^T(f)`; error of the plan of `(f, g)`;
/// stop if small; `g <- (1 - w) g + w gT`; `fT = T(g)` }. The row and column masses of the plan
/// of `(f, g)` are `a_i exp((f_i - fT_i) / eps)` and `b_j exp((g_j - gT_j) / eps)`, so the L1
/// error of exactly the potentials returned costs `O(n + m)` per iteration, two soft-mins per
/// iteration in all. The final audit adds one pass for `<P, C>`.
///
/// Non-convergence is not an error: the cap ends the loop and the output says
/// `converged == false`, with the error of the plan returned.
public struct EntropicSinkhorn<Geometry: SinkhornGeometry> {
    /// The cost, reached only through its soft-min, transport-cost and plan-row operations.
    public let geometry: Geometry
    /// The weights and the marginal update.
    public let problem: EntropicProblem
    /// Epsilon, tolerance, cap, schedule, relaxation (checked again by every ``solve()``).
    public var parameters: EntropicParameters
    /// The current source potential (the warm start of the next ``solve()``).
    public private(set) var f: [Double]
    /// The current target potential.
    public private(set) var g: [Double]
    private var fT: [Double]
    private var gT: [Double]
    private let logA: [Double]
    private let logB: [Double]
    private var warm = false
    /// Whether soft-mins may run in kernel mode when the geometry offers it (see
    /// ``SinkhornGeometry/offersKernelMode(epsilon:)``). The driver sets it to `false` the first
    /// time `K v` leaves the range of doubles, and stays in the log domain from then on; set it
    /// to `false` to run in the log domain from the start.
    public var usesKernelMode: Bool {
        get { kernelModeSwitch.on }
        set { kernelModeSwitch = KernelModeSwitch(on: newValue) }
    }
    // A reference, so that the soft-min (non-mutating: its output is a member passed inout)
    // can switch kernel mode off; replaced, not shared, when set from outside.
    private var kernelModeSwitch = KernelModeSwitch(on: true)
    /// Called after every iteration with where the solve stands (`nil`, the default: nothing is
    /// reported). The library never prints; a command line shows these as a progress line.
    public var progress: EntropicProgressObserver?
    // The stage of the running solve, for the reports.
    private var progressStage = (offset: 0, stage: 0, count: 1, perStage: 1, target: 0.0)
    // Newton-CG steps accepted by the running solve.
    private var newtonSteps = 0

    /// - Throws: ``WassersteinError/dimensionMismatch(expected:actual:)`` when the weights do not
    ///   match the geometry's counts, ``WassersteinError/unsupported(_:)`` for a symmetric problem
    ///   on a non-square geometry, ``WassersteinError/invalidParameter(name:value:requirement:)``
    ///   for invalid parameters or an epsilon below `1e-15` of the cost range (double
    ///   precision cannot resolve the plan there).
    public init(geometry: Geometry, problem: EntropicProblem, parameters: EntropicParameters) throws {
        guard problem.a.count == geometry.sourceCount else {
            throw WassersteinError.dimensionMismatch(expected: geometry.sourceCount, actual: problem.a.count)
        }
        guard problem.b.count == geometry.targetCount else {
            throw WassersteinError.dimensionMismatch(expected: geometry.targetCount, actual: problem.b.count)
        }
        if problem.update.isSymmetric, geometry.sourceCount != geometry.targetCount {
            throw WassersteinError.unsupported("the symmetric update needs a square geometry (one cloud against itself)")
        }
        try parameters.validate()
        try Self.checkResolvable(epsilon: parameters.epsilon, range: geometry.costRange)
        self.geometry = geometry
        self.problem = problem
        self.parameters = parameters
        f = [Double](repeating: 0, count: geometry.sourceCount)
        g = [Double](repeating: 0, count: geometry.targetCount)
        fT = [Double](repeating: .nan, count: geometry.sourceCount)
        gT = [Double](repeating: .nan, count: geometry.targetCount)
        logA = problem.a.map { $0 > 0 ? log($0) : -Double.infinity }
        logB = problem.b.map { $0 > 0 ? log($0) : -Double.infinity }
    }

    static func checkResolvable(epsilon: Double, range: Double) throws {
        guard range.isFinite, range / epsilon <= EntropicScale.maximumRangeOverEpsilon else {
            throw WassersteinError.invalidParameter(
                name: "epsilon", value: epsilon,
                requirement: "too small for the cost range \(range): range / epsilon must be at most 1e15, since double precision resolves costs to about 1e-16 of the range; raise epsilon or rescale the costs")
        }
    }

    /// Starts the next ``solve()`` from these potentials at the target epsilon (no stages).
    ///
    /// - Throws: ``WassersteinError/dimensionMismatch(expected:actual:)`` or
    ///   ``WassersteinError/invalidParameter(name:value:requirement:)`` for non-finite values.
    public mutating func warmStart(f: [Double], g: [Double]) throws {
        guard f.count == geometry.sourceCount else { throw WassersteinError.dimensionMismatch(expected: geometry.sourceCount, actual: f.count) }
        guard g.count == geometry.targetCount else { throw WassersteinError.dimensionMismatch(expected: geometry.targetCount, actual: g.count) }
        for v in f + g where !v.isFinite {
            throw WassersteinError.invalidParameter(name: "warm-start potential", value: v, requirement: "must be finite")
        }
        self.f = f
        self.g = problem.update.isSymmetric ? f : g
        warm = true
    }

    /// Runs the iteration: the epsilon stages of a cold start, then the target epsilon until the
    /// tolerance or the cap, then the audit of the returned potentials.
    ///
    /// - Throws: ``WassersteinError/invalidParameter(name:value:requirement:)`` when the
    ///   parameters were changed to invalid values; ``WassersteinError/solverFailure(_:)`` if a
    ///   value came out non-finite (the log-domain updates are designed to make that unreachable).
    public mutating func solve() throws -> EntropicOutput {
        try parameters.validate()
        try Self.checkResolvable(epsilon: parameters.epsilon, range: geometry.costRange)
        let target = parameters.epsilon
        let limit = parameters.maxIterations
        var stages = [Double]()
        // Stages for balanced problems only: the averaged symmetric update contracts by at least
        // 1/2 per iteration at every eps, so stages only add iterations there (measured, 3-D
        // uniform clouds, n = 2000, eps = 0.0025: 34 iterations per self term with stages, 23 without).
        // Nor for unbalanced ones: the KL damping rho / (rho + eps) makes each half-step contract,
        // and measured (2-D uniform clouds, n = 500 and 2000, rho = 1 to 1000, eps = 0.1 to 0.001)
        // stages added 5-10% iterations every time, and on a stored kernel a rebuild per stage.
        if !warm, !problem.update.isSymmetric, problem.update.penalties == nil,
           case .geometric(let factor, let perStage) = parameters.scaling {
            var e = geometry.costRange
            // Each stage runs at least one iteration and the final stage needs one: no more
            // stages than the budget allows (a factor near 1 would otherwise ask for millions).
            let stageLimit = Swift.max(0, (limit - 1) / perStage)
            while e > target && stages.count < stageLimit {
                stages.append(e)
                e *= factor
            }
        }
        var iterations = 0
        newtonSteps = 0
        let perStage: Int
        if case .geometric(_, let k) = parameters.scaling { perStage = k } else { perStage = 1 }
        let tolerance = parameters.tolerance * problem.sourceMass
        progressStage = (0, 0, stages.count + 1, perStage, tolerance)
        for (index, stageEps) in stages.enumerated() {
            let budget = Swift.min(perStage, limit - 1 - iterations)
            guard budget > 0 else { break }
            progressStage.offset = iterations
            progressStage.stage = index
            iterations += iterate(epsilon: stageEps, limit: budget, tolerance: 0, relaxation: .none).iterations
        }
        progressStage.offset = iterations
        progressStage.stage = stages.count
        let final = iterate(epsilon: target, limit: Swift.max(1, limit - iterations), tolerance: tolerance,
                            relaxation: parameters.overRelaxation)
        iterations += final.iterations
        warm = true
        var output = try audit(epsilon: target, iterations: iterations, error: final.error, tolerance: tolerance)
        output.newtonSteps = newtonSteps
        return output
    }

    /// Iterations at one epsilon, until the error is at most `tolerance` or `limit` iterations ran
    /// (at least one). On return `fT = T(g)` and `gT = T^T(f)` hold for the current `(f, g)`.
    private mutating func iterate(epsilon: Double, limit: Int, tolerance: Double, relaxation: EntropicParameters.Relaxation)
        -> (iterations: Int, error: Double) {
        switch problem.update {
        case .balanced: return iterateBalanced(epsilon: epsilon, limit: limit, tolerance: tolerance, relaxation: relaxation)
        case .symmetric: return iterateSymmetric(epsilon: epsilon, limit: limit, tolerance: tolerance)
        case .proximal(let theta, let phi):
            return iterateProximal(theta: theta, phi: phi, epsilon: epsilon, limit: limit, tolerance: tolerance, relaxation: relaxation)
        case .unbalanced(let ra, let rb):
            return iterateUnbalanced(epsilon: epsilon, limit: limit, tolerance: tolerance, relaxation: relaxation,
                                     sourcePenalty: ra, targetPenalty: rb)
        case .unbalancedSymmetric(let rho):
            return iterateSymmetric(epsilon: epsilon, limit: limit, tolerance: tolerance, penalty: rho)
        }
    }

    private mutating func iterateBalanced(epsilon: Double, limit: Int, tolerance: Double,
                                          relaxation: EntropicParameters.Relaxation) -> (iterations: Int, error: Double) {
        let n = f.count, m = g.count
        softMin(&fT, of: g, weights: logB, epsilon: epsilon, transposed: false)
        var iterations = 0
        var error = Double.infinity
        var controller = RelaxationController(relaxation)
        // Newton-CG only at the target epsilon (the stages run to no tolerance).
        var newton = parameters.usesNewtonSteps && tolerance > 0 ? EntropicNewtonStage() : nil
        while true {
            // The first update at a new epsilon is a plain one: relaxation only pays once the
            // iterate is in the basin of the fixed point.
            var w = iterations == 0 ? 1 : controller.omega
            if w == 1 {
                f = fT
            } else {
                for i in 0 ..< n { f[i] = (1 - w) * f[i] + w * fT[i] }
            }
            iterations += 1
            softMin(&gT, of: f, weights: logA, epsilon: epsilon, transposed: true)
            error = marginalError(f, fT, problem.a, epsilon) + marginalError(g, gT, problem.b, epsilon)
            report(iterations, error, epsilon)
            if error <= tolerance || iterations >= limit { break }
            controller.observe(error)
            if newton != nil {
                let decision = newton!.decide(error: error, tolerance: tolerance, mass: problem.sourceMass,
                                              remaining: limit - iterations, steady: controller.steadyIterations != 0)
                if decision.restartRelaxation {
                    controller.restart()
                    w = 1
                }
                if decision.step {
                    let step = newtonStep(epsilon: epsilon, error: error, budget: limit - iterations)
                    iterations += step.work
                    newton!.record(accepted: step.accepted, errorBefore: error, work: step.work, inner: step.inner)
                    // A plain sweep follows: it solves every single coordinate exactly, which the
                    // linearised step does poorly for potentials that must move by many eps.
                    controller.restart()
                    w = 1
                    if step.accepted {
                        newtonSteps += 1
                        error = step.error
                        report(iterations, error, epsilon)
                    }
                    if error <= tolerance || iterations >= limit { break }
                }
            }
            if w == 1 {
                g = gT
            } else {
                for j in 0 ..< m { g[j] = (1 - w) * g[j] + w * gT[j] }
            }
            softMin(&fT, of: g, weights: logB, epsilon: epsilon, transposed: false)
        }
        return (iterations, error)
    }

    /// One Newton-CG step from the current `(f, g)` (with `fT = T(g)`, `gT = T^T(f)`, error
    /// `error`): the direction of ``EntropicNewtonStage/direction(geometry:f:g:logA:logB:a:b:rho:kappa:epsilon:error:mass:maxInner:)``,
    /// cut back to moves of at most `20 eps` in any potential (far from the optimum the
    /// quadratic model is poor and the plan exponential in the step), accepted at the first of
    /// three quartered lengths that lowers the marginal error. On acceptance `(f, g, fT, gT)`
    /// are the new consistent state; on rejection they are unchanged. `work` counts two plan
    /// products or soft-mins as one iteration, within `budget`.
    private mutating func newtonStep(epsilon: Double, error: Double, budget: Int)
        -> (accepted: Bool, work: Int, inner: Int, error: Double) {
        let n = f.count, m = g.count
        let a = problem.a, b = problem.b
        let rho = (0 ..< n).map { a[$0] > 0 ? a[$0] * exp((f[$0] - fT[$0]) / epsilon) : 0 }
        let kappa = (0 ..< m).map { b[$0] > 0 ? b[$0] * exp((g[$0] - gT[$0]) / epsilon) : 0 }
        // Work = ceil(products / 2) <= inner + 4 (right-hand side and preconditioner, two per CG
        // iteration, one for the row step, two per trial), kept within the budget.
        let maxInner = Swift.max(1, Swift.min(budget - 4, 300))
        guard let d = EntropicNewtonStage.direction(geometry: geometry, f: f, g: g, logA: logA, logB: logB, a: a, b: b,
                                                    rho: rho, kappa: kappa, epsilon: epsilon, error: error,
                                                    mass: problem.sourceMass, maxInner: maxInner) else {
            return (false, 1, 0, error)
        }
        var products = d.products
        var largest = 0.0
        for v in d.df { largest = Swift.max(largest, abs(v)) }
        for v in d.dg { largest = Swift.max(largest, abs(v)) }
        let saved = (f: f, g: g, fT: fT, gT: gT)
        var t = Swift.min(1, 20 * epsilon / Swift.max(largest, 1e-300))
        for _ in 0 ..< 3 where products < 2 * budget {
            for i in 0 ..< n { f[i] = saved.f[i] + t * d.df[i] }
            for j in 0 ..< m { g[j] = saved.g[j] + t * d.dg[j] }
            softMin(&fT, of: g, weights: logB, epsilon: epsilon, transposed: false)
            softMin(&gT, of: f, weights: logA, epsilon: epsilon, transposed: true)
            products += 2
            let trial = marginalError(f, fT, a, epsilon) + marginalError(g, gT, b, epsilon)
            if trial < error { return (true, (products + 1) / 2, d.inner, trial) }
            fT = saved.fT
            gT = saved.gT
            t /= 4
        }
        (f, g, fT, gT) = saved
        return (false, (products + 1) / 2, d.inner, error)
    }

    private mutating func iterateSymmetric(epsilon: Double, limit: Int, tolerance: Double,
                                           penalty: Double = .infinity) -> (iterations: Int, error: Double) {
        let n = f.count
        let k = Self.damping(penalty, epsilon)
        var iterations = 0
        if penalty == .infinity, kernelModeSwitch.on, geometry.offersKernelMode(epsilon: epsilon) {
            let scaled = iterateSymmetricScalings(epsilon: epsilon, limit: limit, tolerance: tolerance)
            if scaled.completed {
                g = f
                gT = fT
                return (scaled.iterations, scaled.error)
            }
            // Out of range: the log-domain loop below continues from the last iterate in range.
            kernelModeSwitch.on = false
            iterations = scaled.iterations
        }
        softMin(&fT, of: f, weights: logA, epsilon: epsilon, transposed: false)
        var error = 2 * marginalError(f, fT, problem.a, epsilon, penalty: penalty)
        // A tolerance below what double precision resolves ends in a stall, not at the cap.
        var stagnation = StagnationWatch(floor: precisionFloor(epsilon: epsilon))
        while !(error <= tolerance) && iterations < limit && !stagnation.stalled(after: error) {
            for i in 0 ..< n { f[i] = 0.5 * (f[i] + k * fT[i]) }
            iterations += 1
            softMin(&fT, of: f, weights: logA, epsilon: epsilon, transposed: false)
            error = 2 * marginalError(f, fT, problem.a, epsilon, penalty: penalty)
            report(iterations, error, epsilon)
        }
        g = f
        gT = fT
        return (iterations, error)
    }

    /// An estimate of the smallest L1 marginal error double precision resolves for the current
    /// `(f, g)`: plan entries carry a relative rounding error of about
    /// `ulp(1) (|f| + |g| + C) / eps`, on a plan of mass `|a|` per marginal.
    private func precisionFloor(epsilon: Double) -> Double {
        var fMax = 0.0, gMax = 0.0
        for v in f { fMax = Swift.max(fMax, abs(v)) }
        for v in g { gMax = Swift.max(gMax, abs(v)) }
        return Double.ulpOfOne * (geometry.costRange + fMax + gMax) / epsilon * 2 * problem.sourceMass
    }

    /// The symmetric loop in kernel mode on scalings kept across iterations (the form of the
    /// averaged update Feydy et al. 2019 give): with `E_i = exp(f_i / eps)` and `u = a E`,
    /// `exp(-T(f)_i / eps) = (K u)_i`, so `f <- (f + T(f)) / 2` is `E <- sqrt(E / K u)` and the
    /// error `2 sum_i a_i |exp((f_i - T(f)_i) / eps) - 1|` is `2 sum_i |u_i (K u)_i - a_i|`: per
    /// entry and iteration one division and one square root, against an `exp` and a `log` per
    /// entry for a soft-min in ``kernelSoftMin(_:of:weights:epsilon:transposed:)`` and the
    /// `exp` of the error. No shift is needed: at the fixed point `u_i <= sqrt(a_i)` and
    /// `(K u)_i >= u_i` (the diagonal of `K` is 1), so `(K u)_i >= sqrt(a_i)`.
    ///
    /// Returns `completed == false` when `E` is not finite and positive at the start, or
    /// `(K u)_i` leaves `[1e-280, max]` for an entry with mass: `f` then holds the current
    /// iterate (or the start, if an update left the range of `E`) and the log domain continues
    /// from it. Otherwise `f` and `fT = T(f)` are those of the final
    /// iterate. Entries without mass get the bound `(K u)_i >= 1e-280`, as in kernel mode's
    /// soft-min (their potential enters no plan entry with mass).
    private mutating func iterateSymmetricScalings(epsilon: Double, limit: Int, tolerance: Double)
        -> (iterations: Int, error: Double, completed: Bool) {
        let n = f.count
        let invEps = 1 / epsilon
        let a = problem.a
        var scaling = f.map { exp($0 * invEps) }
        func usable(_ e: [Double]) -> Bool { e.allSatisfy { $0 > 0 && $0.isFinite } }
        guard usable(scaling) else { return (0, .infinity, false) }
        var u = [Double](unsafeUninitializedCapacity: n) { _, count in count = n }
        var ku = [Double](unsafeUninitializedCapacity: n) { _, count in count = n }
        for i in 0 ..< n { u[i] = a[i] * scaling[i] }
        var partial = [Double](repeating: 0, count: Self.blockCount(n))
        var flags = [Bool](repeating: false, count: Self.blockCount(n))
        var iterations = 0
        var error = Double.infinity
        var completed = true
        while true {
            u.withUnsafeBufferPointer { ub in ku.withUnsafeMutableBufferPointer { kb in
                geometry.applyKernel(ub, epsilon: epsilon, transposed: false, into: kb) } }
            // The error of the current iterate, its range check, and (unless it is the last) the update.
            u.withUnsafeBufferPointer { ub in
                ku.withUnsafeBufferPointer { kb in a.withUnsafeBufferPointer { ab in
                    partial.withUnsafeMutableBufferPointer { pb in flags.withUnsafeMutableBufferPointer { fb in
                        nonisolated(unsafe) let up = ub.baseAddress!, kp = kb.baseAddress!,
                            w = ab.baseAddress!, sums = pb.baseAddress!, outOfRange = fb.baseAddress!
                        Self.forEachBlock(count: n) { block, range in
                            var sum = 0.0
                            var inRange = true
                            for i in range {
                                let k = kp[i]
                                let carries = w[i] > 0
                                inRange = inRange && k <= Double.greatestFiniteMagnitude && (k >= 1e-280 || (!carries && k >= 0))
                                sum += abs(up[i] * k - w[i])
                            }
                            sums[block] = 2 * sum
                            outOfRange[block] = !inRange
                        }
                    } }
                } }
            }
            guard !flags.contains(true) else { completed = false; break }
            error = 0
            for v in partial { error += v }
            if error.isNaN { error = .infinity }
            if iterations > 0 { report(iterations, error, epsilon) }
            if error <= tolerance || iterations >= limit { break }
            iterations += 1
            scaling.withUnsafeMutableBufferPointer { eb in u.withUnsafeMutableBufferPointer { ub in
                ku.withUnsafeBufferPointer { kb in a.withUnsafeBufferPointer { ab in
                    nonisolated(unsafe) let e = eb.baseAddress!, up = ub.baseAddress!, kp = kb.baseAddress!, w = ab.baseAddress!
                    Self.forEachBlock(count: n) { _, range in
                        for i in range {
                            let next = (e[i] / Swift.max(kp[i], 1e-280)).squareRoot()
                            e[i] = next
                            up[i] = w[i] * next
                        }
                    }
                } }
            } }
        }
        // The iterate is kept unless an update under- or overflowed (then f stays the start).
        guard usable(scaling) else { return (iterations, .infinity, false) }
        for i in 0 ..< n { f[i] = epsilon * log(scaling[i]) }
        if completed {
            for i in 0 ..< n { fT[i] = -epsilon * log(Swift.max(ku[i], 1e-280)) }
        }
        return (iterations, error, completed)
    }

    private mutating func iterateProximal(theta: Double, phi: [Double], epsilon: Double, limit: Int, tolerance: Double,
                                          relaxation: EntropicParameters.Relaxation) -> (iterations: Int, error: Double) {
        let n = f.count
        let a = problem.a
        // Without the entropy term (theta = 1) the update does not depend on T(g): nothing to extrapolate.
        var controller = RelaxationController(theta == 1 ? .none : relaxation)
        var rising = RisingResidualWatch()
        var iterations = 0
        var residual = Double.infinity
        if kernelModeSwitch.on, geometry.offersKernelMode(epsilon: epsilon) {
            let scaled = iterateProximalScalings(theta: theta, phi: phi, epsilon: epsilon, limit: limit, tolerance: tolerance,
                                                 controller: &controller)
            iterations = scaled.iterations
            residual = scaled.residual
            // Out of range: the log-domain loop below continues from the last consistent f.
            if !scaled.completed { kernelModeSwitch.on = false }
        }
        while iterations < limit && !(residual <= tolerance) {
            iterations += 1
            softMin(&gT, of: f, weights: logA, epsilon: epsilon, transposed: true)
            g = gT
            softMin(&fT, of: g, weights: logB, epsilon: epsilon, transposed: false)
            let w = rising.switchedOff ? 1 : controller.omega
            // Per block: the targets, the residual's partial sum, the (relaxed) update.
            var partial = [Double](repeating: 0, count: Self.blockCount(n))
            f.withUnsafeMutableBufferPointer { fb in
                fT.withUnsafeBufferPointer { tb in
                    partial.withUnsafeMutableBufferPointer { rb in
                        nonisolated(unsafe) let fp = fb.baseAddress!, tp = tb.baseAddress!, sums = rb.baseAddress!
                        let invEps = 1 / epsilon
                        Self.forEachBlock(count: n) { block, range in
                            var sum = 0.0
                            for i in range {
                                let target = (1 - theta) * tp[i] + theta * phi[i]
                                // a_i = 0 contributes 0 * finite.
                                sum += a[i] * abs(entropicExp((fp[i] - tp[i]) * invEps) - entropicExp((target - tp[i]) * invEps))
                                fp[i] += w * (target - fp[i])
                            }
                            sums[block] = sum
                        }
                    }
                }
            }
            residual = 0
            for v in partial { residual += v }
            if residual.isNaN { residual = .infinity }
            report(iterations, residual, epsilon)
            if residual <= tolerance { break }
            controller.observe(residual)
            rising.observe(residual)
        }
        // Make (f, g) consistent: the column marginal exact for the final f, fT = T(g).
        softMin(&gT, of: f, weights: logA, epsilon: epsilon, transposed: true)
        g = gT
        softMin(&fT, of: g, weights: logB, epsilon: epsilon, transposed: false)
        return (iterations, residual)
    }

    /// The proximal loop in kernel mode on scalings kept across iterations: the log-domain loop
    /// does two soft-mins per iteration, each an exponential per entry for its scalings and a
    /// logarithm per output (two of each per entry and iteration); here the scalings persist.
    ///
    /// With `Phi = f / eps` (so that `f = eps Phi` exactly, no conversion) and scalar shifts
    /// `cu`, `cv` (in units of eps): `u_i = a_i exp(Phi_i - cu)`; `k = K^T u`; `v_j = b_j / k_j`
    /// (so `exp(g_j / eps) b_j = v_j exp(-cu)`); `v` rescaled by `s` (largest entry `e^650`,
    /// the headroom of ``kernelSoftMin(_:of:weights:epsilon:transposed:)``), `cv = cu + log s`;
    /// `z = K v`, so `T(g)_i / eps = cv - log z_i`; the target
    /// `Phi_new = theta phi / eps - (1 - theta) (log z_i - cv)`; the residual
    /// `sum_i a_i |exp(Phi_i - T(g)_i / eps) - exp(Phi_new_i - T(g)_i / eps)| = sum_i z_i |u_i - u_new_i| / s`,
    /// and `Phi <- Phi + w (Phi_new - Phi)`: per entry and iteration one division, one
    /// logarithm and two exponentials, the same arithmetic as the log-domain loop up to
    /// rounding. The update runs in the C target (`ck_proximal_update`, AVX2 where the processor
    /// has it, branch-free `log` and `exp`): glibc's scalar `log` and Swift's two-lane `exp`
    /// were 28% of a grid JKO step's instructions (callgrind). `cu` is re-centred (largest `u` at `e^650`) when the
    /// largest exponent drifts by more than 20.
    ///
    /// Returns `completed == false` when `k_j` leaves `[1e-280, max]` for a column with mass, or
    /// a value is not finite: `f` then holds the last iterate whose every value was in range (or,
    /// after a non-finite update, the start of the solve), and the log domain continues from it. Otherwise `f` is the final iterate; `g`, `fT`, `gT`
    /// are left to the caller.
    private mutating func iterateProximalScalings(theta: Double, phi: [Double], epsilon: Double, limit: Int,
                                                  tolerance: Double, controller: inout RelaxationController)
        -> (iterations: Int, residual: Double, completed: Bool) {
        let n = f.count, m = g.count
        let invEps = 1 / epsilon
        let b = problem.b
        let headroom = 650.0
        var potential = f.map { $0 * invEps }
        let scaledPhi = phi.map { theta * $0 * invEps }
        func largestExponent(_ p: [Double]) -> Double {
            var top = -Double.infinity
            for i in 0 ..< n where logA[i] > -.infinity { top = Swift.max(top, p[i] + logA[i]) }
            return top
        }
        var top = largestExponent(potential)
        guard top.isFinite else { return (0, .infinity, false) }
        var cu = top - headroom
        var u = [Double](unsafeUninitializedCapacity: n) { _, count in count = n }
        var k = [Double](unsafeUninitializedCapacity: m) { _, count in count = m }
        var z = [Double](unsafeUninitializedCapacity: n) { _, count in count = n }
        func fillScalings(_ u: inout [Double], _ p: [Double], _ shift: Double) {
            for i in 0 ..< n { u[i] = entropicExp(p[i] + logA[i] - shift) }
        }
        fillScalings(&u, potential, cu)
        var rising = RisingResidualWatch()
        var iterations = 0
        var residual = Double.infinity
        var partial = [Double](repeating: 0, count: Self.blockCount(n))
        var tops = [Double](repeating: -.infinity, count: Self.blockCount(n))
        while iterations < limit {
            u.withUnsafeBufferPointer { ub in k.withUnsafeMutableBufferPointer { kb in
                geometry.applyKernel(ub, epsilon: epsilon, transposed: true, into: kb) } }
            // v = b / K^T u, in place, and its largest entry.
            var largest = 0.0
            var inRange = true
            k.withUnsafeMutableBufferPointer { kb in b.withUnsafeBufferPointer { bb in
                for j in 0 ..< m {
                    let kj = kb[j]
                    if bb[j] > 0 {
                        inRange = inRange && kj >= 1e-280 && kj <= Double.greatestFiniteMagnitude
                        let vj = bb[j] / kj
                        kb[j] = vj
                        largest = vj > largest ? vj : largest
                    } else {
                        kb[j] = 0
                    }
                }
            } }
            guard inRange, largest > 0, largest.isFinite else {
                for i in 0 ..< n { f[i] = epsilon * potential[i] }
                return (iterations, residual, false)
            }
            let logScale = Swift.min(headroom - log(largest), 700)
            let scale = exp(logScale)
            k.withUnsafeMutableBufferPointer { kb in for j in 0 ..< m { kb[j] *= scale } }
            let cv = cu + logScale
            k.withUnsafeBufferPointer { vb in z.withUnsafeMutableBufferPointer { zb in
                geometry.applyKernel(vb, epsilon: epsilon, transposed: false, into: zb) } }
            // The range check before the update, so that a fallback continues from this iterate.
            var finite = true
            z.withUnsafeBufferPointer { zb in
                for i in 0 ..< n { finite = finite && zb[i] >= 0 && zb[i] <= Double.greatestFiniteMagnitude }
            }
            guard finite else {
                for i in 0 ..< n { f[i] = epsilon * potential[i] }
                return (iterations, residual, false)
            }
            iterations += 1
            let w = rising.switchedOff ? 1 : controller.omega
            let oneMinusTheta = 1 - theta
            // The update (`ck_proximal_update`, AVX2 where the processor has it): free rows
            // without kernel mass get the bound `z >= 1e-280` of kernelSoftMin.
            potential.withUnsafeMutableBufferPointer { pb in
                u.withUnsafeMutableBufferPointer { ub in
                    z.withUnsafeBufferPointer { zb in
                        partial.withUnsafeMutableBufferPointer { rb in
                            tops.withUnsafeMutableBufferPointer { tb in
                                scaledPhi.withUnsafeBufferPointer { qb in
                                    logA.withUnsafeBufferPointer { ab in
                                        nonisolated(unsafe) let p = pb.baseAddress!, up = ub.baseAddress!, zp = zb.baseAddress!,
                                            sums = rb.baseAddress!, blockTops = tb.baseAddress!, q = qb.baseAddress!,
                                            la = ab.baseAddress!
                                        Self.forEachBlock(count: n) { block, range in
                                            let s = range.lowerBound
                                            var high = -Double.infinity
                                            sums[block] = ck_proximal_update(p + s, up + s, zp + s, q + s, la + s, range.count,
                                                                             cv, cu, w, oneMinusTheta, &high)
                                            // The largest exponent, for the re-centring of cu.
                                            blockTops[block] = high
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
            residual = 0
            for v in partial { residual += v }
            residual /= scale
            top = -Double.infinity
            for t in tops { top = Swift.max(top, t) }
            // A non-finite update leaves f at the start of this solve (f is written on success only).
            guard top.isFinite, potential.allSatisfy({ $0.isFinite }) else {
                return (iterations, .infinity, false)
            }
            if residual.isNaN { residual = .infinity }
            report(iterations, residual, epsilon)
            if residual <= tolerance { break }
            controller.observe(residual)
            rising.observe(residual)
            if abs(top - cu - headroom) > 20 {
                cu = top - headroom
                fillScalings(&u, potential, cu)
            }
        }
        for i in 0 ..< n { f[i] = epsilon * potential[i] }
        return (iterations, residual, true)
    }

    /// The unbalanced loop: `f <- k_a fT`; `gT = T^T(f)`; error; `g <- k_b gT`; translation;
    /// `fT = T(g)`, with `k = rho / (rho + eps)` (1 for an infinite penalty). The error is that
    /// of the relaxed marginals (``marginalError(_:_:_:_:penalty:)``) of exactly the `(f, g)`
    /// returned: at the check `fT = T(g)` and `gT = T^T(f)` hold. Over-relaxation as in the
    /// balanced loop, `f <- (1 - w) f + w k_a fT` (the same controller on the same error).
    private mutating func iterateUnbalanced(epsilon: Double, limit: Int, tolerance: Double,
                                            relaxation: EntropicParameters.Relaxation,
                                            sourcePenalty ra: Double, targetPenalty rb: Double) -> (iterations: Int, error: Double) {
        let n = f.count, m = g.count
        let ka = Self.damping(ra, epsilon), kb = Self.damping(rb, epsilon)
        softMin(&fT, of: g, weights: logB, epsilon: epsilon, transposed: false)
        var iterations = 0
        var error = Double.infinity
        var controller = RelaxationController(relaxation)
        var w = 1.0
        while true {
            w = iterations == 0 ? 1 : controller.omega
            for i in 0 ..< n { f[i] = (1 - w) * f[i] + w * (ka * fT[i]) }
            iterations += 1
            softMin(&gT, of: f, weights: logA, epsilon: epsilon, transposed: true)
            error = marginalError(f, fT, problem.a, epsilon, penalty: ra)
                + marginalError(g, gT, problem.b, epsilon, penalty: rb)
            report(iterations, error, epsilon)
            if error <= tolerance || iterations >= limit { break }
            controller.observe(error)
            for j in 0 ..< m { g[j] = (1 - w) * g[j] + w * (kb * gT[j]) }
            let shift = Self.translation(f: f, logA: logA, sourcePenalty: ra, g: g, logB: logB, targetPenalty: rb)
            if shift != 0 {
                for i in 0 ..< n { f[i] += shift }
                for j in 0 ..< m { g[j] -= shift }
            }
            softMin(&fT, of: g, weights: logB, epsilon: epsilon, transposed: false)
        }
        return (iterations, error)
    }

    /// Reports the current iterate to ``progress`` (`iterations` counted in the running stage).
    private func report(_ iterations: Int, _ error: Double, _ epsilon: Double) {
        guard let progress else { return }
        let s = progressStage
        progress(EntropicProgress(iteration: s.offset + iterations, marginalError: error, targetError: s.target,
                                  epsilon: epsilon, stage: s.stage, stageCount: s.count,
                                  iterationsPerStage: s.perStage, maxIterations: parameters.maxIterations))
    }

    /// `rho / (rho + eps)`, the factor of the unbalanced update (1 for `rho = infinity`).
    static func damping(_ rho: Double, _ epsilon: Double) -> Double {
        rho == .infinity ? 1 : rho / (rho + epsilon)
    }

    /// The `lambda` maximising the dual over `(f + lambda, g - lambda)` (the plan term does not
    /// change): it equalises the masses the two penalties ask for,
    /// `sum_i a_i exp(-(f_i + lambda) / rho_a) = sum_j b_j exp(-(g_j - lambda) / rho_b)` (with
    /// `|a|` or `|b|` for an infinite penalty), so
    /// `lambda = (log S_a - log S_b) / (1 / rho_a + 1 / rho_b)`, the logs by max-shifted sums.
    /// Zero when both penalties are infinite (balanced: the translation is the gauge) or the
    /// value is not finite.
    static func translation(f: [Double], logA: [Double], sourcePenalty ra: Double,
                            g: [Double], logB: [Double], targetPenalty rb: Double) -> Double {
        let inverse = 1 / ra + 1 / rb
        guard inverse > 0 else { return 0 }
        func logMass(_ p: [Double], _ logW: [Double], _ rho: Double) -> Double {
            var top = -Double.infinity
            for i in 0 ..< p.count where logW[i] > -Double.infinity { top = Swift.max(top, logW[i] - p[i] / rho) }
            guard top.isFinite else { return top }
            var sum = 0.0
            for i in 0 ..< p.count where logW[i] > -Double.infinity { sum += exp(logW[i] - p[i] / rho - top) }
            return top + log(sum)
        }
        let lambda = (logMass(f, logA, ra) - logMass(g, logB, rb)) / inverse
        return lambda.isFinite ? lambda : 0
    }

    /// `out = T(potential)` (or `T^T`), with `out`'s previous values as the stabilising estimate;
    /// in kernel mode while ``usesKernelMode`` holds and the geometry offers it.
    private func softMin(_ out: inout [Double], of potential: [Double], weights: [Double], epsilon: Double, transposed: Bool) {
        if kernelModeSwitch.on, geometry.offersKernelMode(epsilon: epsilon) {
            if kernelSoftMin(&out, of: potential, weights: weights, epsilon: epsilon, transposed: transposed) { return }
            kernelModeSwitch.on = false
        }
        logSoftMin(&out, of: potential, weights: weights, epsilon: epsilon, transposed: transposed)
    }

    /// The soft-min in kernel mode: `t_j = potential_j + eps log w_j`, `s = max t - 650 eps`,
    /// `v_j = exp((t_j - s) / eps)` (at most `e^650 = 1e282`, so that `K v` cannot overflow for
    /// up to `1e17` points, and the most room below; under `e^-708` it is 0),
    /// `out_i = -s - eps log (K v)_i`.
    ///
    /// Returns `false` (and leaves `out` unspecified) when `(K v)_i` is not finite, or below
    /// `1e-280` for an output that carries mass: the terms lost to underflow (at most
    /// `N e^-708` together) could then matter, and the log domain must answer. Outputs without
    /// mass (zero weight on the output side, or the free rows of a proximal step, where such a
    /// row's mass `a_i (K v)_i^theta...` is negligible) get the bound `(K v)_i >= 1e-280` instead:
    /// their value does not enter any plan entry that carries mass.
    private func kernelSoftMin(_ out: inout [Double], of potential: [Double], weights: [Double], epsilon: Double,
                               transposed: Bool) -> Bool {
        let count = potential.count
        var shift = -Double.infinity
        for j in 0 ..< count where weights[j] > -.infinity { shift = Swift.max(shift, potential[j] + epsilon * weights[j]) }
        guard shift.isFinite else { return false }
        shift -= 650 * epsilon
        // Every entry is written below.
        var v = [Double](unsafeUninitializedCapacity: count) { _, initialized in initialized = count }
        let invEps = 1 / epsilon
        potential.withUnsafeBufferPointer { pb in
            weights.withUnsafeBufferPointer { wb in
                v.withUnsafeMutableBufferPointer { vb in
                    nonisolated(unsafe) let p = pb.baseAddress!, w = wb.baseAddress!, vp = vb.baseAddress!
                    Self.forEachBlock(count: count) { _, range in
                        // exp(-inf) = 0 for zero weights: no branch, so the loop vectorises.
                        for j in range { vp[j] = entropicExp((p[j] + epsilon * w[j] - shift) * invEps) }
                    }
                }
            }
        }
        v.withUnsafeBufferPointer { vb in
            out.withUnsafeMutableBufferPointer { ob in
                geometry.applyKernel(vb, epsilon: epsilon, transposed: transposed, into: ob)
            }
        }
        let total = out.count
        var failed = [Bool](repeating: false, count: Self.blockCount(total))
        // The weights of the outputs: rows carry a (free for a proximal step), columns b.
        var free = false
        if case .proximal = problem.update, !transposed { free = true }
        let massive = transposed ? problem.b : problem.a
        out.withUnsafeMutableBufferPointer { ob in
            failed.withUnsafeMutableBufferPointer { fb in
                massive.withUnsafeBufferPointer { mb in
                    nonisolated(unsafe) let o = ob.baseAddress!, flags = fb.baseAddress!, w = mb.baseAddress!
                    Self.forEachBlock(count: total) { block, range in
                        var inRange = true
                        for i in range {
                            let k = o[i]
                            let carries = !free && w[i] > 0
                            inRange = inRange && k <= Double.greatestFiniteMagnitude && (k >= 1e-280 || (!carries && k >= 0))
                            o[i] = -shift - epsilon * log(Swift.max(k, 1e-280))
                        }
                        flags[block] = !inRange
                    }
                }
            }
        }
        return !failed.contains(true)
    }

    /// Entries per block of the element-wise loops: blocks are fixed, so any sum over them is
    /// combined in the same order whatever the number of cores. Large enough that a 128 x 128
    /// grid runs them inline: a parallel dispatch per loop costs more than it saves there
    /// (measured on a loaded 2-core machine, where waking the second thread is slow).
    static var blockSize: Int { 16_384 }

    static func blockCount(_ count: Int) -> Int { (count + blockSize - 1) / blockSize }

    /// Runs `body(block, range)` over the fixed blocks of `0 ..< count`, blocks split over the cores.
    static func forEachBlock(count: Int, _ body: (Int, Range<Int>) -> Void) {
        Parallel.forEachChunk(count: blockCount(count), minimumChunk: 1) { blocks in
            for b in blocks { body(b, b * blockSize ..< Swift.min(count, (b + 1) * blockSize)) }
        }
    }

    /// `out = T(potential)` (or `T^T`), with `out`'s previous values as the stabilising estimate.
    private func logSoftMin(_ out: inout [Double], of potential: [Double], weights: [Double], epsilon: Double, transposed: Bool) {
        potential.withUnsafeBufferPointer { pb in
            weights.withUnsafeBufferPointer { wb in
                out.withUnsafeMutableBufferPointer { ob in
                    geometry.softMin(pb, logWeights: wb, epsilon: epsilon, transposed: transposed, into: ob)
                }
            }
        }
    }

    /// `sum_i w_i |exp((p_i - pT_i) / eps) - 1|`: the L1 error of the marginal whose masses are
    /// `w_i exp((p_i - pT_i) / eps)` (the row masses of the plan when `pT = T(g)`).
    ///
    /// With a finite KL penalty `rho` the optimality condition is `P 1 = w exp(-p / rho)` instead
    /// of `P 1 = w`, and the error is `sum_i w_i |exp((p_i - pT_i) / eps) - exp(-p_i / rho)|`:
    /// in mass units, the same measure at `rho = infinity`, and zero exactly at the fixed point
    /// `p = rho / (rho + eps) pT` of the unbalanced update.
    private func marginalError(_ p: [Double], _ pT: [Double], _ w: [Double], _ epsilon: Double,
                               penalty: Double = .infinity) -> Double {
        var error = 0.0
        if penalty == .infinity {
            for i in 0 ..< p.count where w[i] > 0 { error += w[i] * abs(exp((p[i] - pT[i]) / epsilon) - 1) }
        } else {
            for i in 0 ..< p.count where w[i] > 0 {
                error += w[i] * abs(exp((p[i] - pT[i]) / epsilon) - exp(-p[i] / penalty))
            }
        }
        return error.isNaN ? .infinity : error
    }

    /// Gauge, costs and the final error of the current `(f, g)`.
    private mutating func audit(epsilon: Double, iterations: Int, error: Double, tolerance: Double) throws -> EntropicOutput {
        let a = problem.a, b = problem.b
        if problem.update == .balanced {
            // (f + c, g - c) has the same plan; fix c so that <f, a> = <g, b>. The soft-mins
            // move with the potentials: T(g - c) = T(g) + c, T^T(f + c) = T^T(f) - c.
            var fa = 0.0, gb = 0.0, ma = 0.0, mb = 0.0
            for i in 0 ..< f.count { fa += f[i] * a[i]; ma += a[i] }
            for j in 0 ..< g.count { gb += g[j] * b[j]; mb += b[j] }
            let c = (gb - fa) / (ma + mb)
            if c.isFinite && c != 0 {
                for i in 0 ..< f.count { f[i] += c; fT[i] += c }
                for j in 0 ..< g.count { g[j] -= c; gT[j] -= c }
            }
        }
        var potentialTerm = 0.0, planMass = 0.0
        for i in 0 ..< f.count where a[i] > 0 {
            let mass = a[i] * exp((f[i] - fT[i]) / epsilon)
            potentialTerm += f[i] * mass
            planMass += mass
        }
        for j in 0 ..< g.count where b[j] > 0 {
            potentialTerm += g[j] * b[j] * exp((g[j] - gT[j]) / epsilon)
        }
        let massProduct = problem.sourceMass * b.reduce(0, +)
        var regularized = potentialTerm - epsilon * (planMass - massProduct)
        var dual: Double? = nil
        if let penalties = problem.update.penalties {
            let relaxed = unbalancedValues(epsilon: epsilon, penalties: penalties, planMass: planMass, massProduct: massProduct)
            regularized += relaxed.marginalPenalty
            dual = relaxed.dual
        }
        let transport = !parameters.computesTransportCost ? Double.nan : f.withUnsafeBufferPointer { fb in
            g.withUnsafeBufferPointer { gb in
                logA.withUnsafeBufferPointer { ab in
                    logB.withUnsafeBufferPointer { bb in
                        geometry.transportCost(f: fb, g: gb, logA: ab, logB: bb, epsilon: epsilon)
                    }
                }
            }
        }
        guard transport.isFinite || !parameters.computesTransportCost, regularized.isFinite, !error.isNaN,
              f.allSatisfy({ $0.isFinite }), g.allSatisfy({ $0.isFinite }) else {
            throw WassersteinError.solverFailure("the entropic engine produced a non-finite value at epsilon \(epsilon) (\(geometry.name) geometry)")
        }
        return EntropicOutput(geometry: geometry.name, epsilon: epsilon, transportCost: transport,
                              regularizedCost: regularized, f: f, g: g, iterations: iterations,
                              converged: error <= tolerance, marginalError: error,
                              transportedMass: planMass, dualCost: dual)
    }

    /// The terms only unbalanced problems have, from the current `(f, fT, g, gT)`.
    ///
    /// `marginalPenalty = rho_a KL(P 1 | a) + rho_b KL(P^T 1 | b)` with
    /// `KL(p | q) = sum p log(p / q) - sum p + sum q`, where `log(p_i / a_i) = (f_i - fT_i) / eps`
    /// exactly (no division of tiny masses); an infinite penalty adds nothing (that side is a
    /// constraint, met to the tolerance). `dual = -rho_a <a, exp(-f / rho_a) - 1>
    /// - rho_b <b, exp(-g / rho_b) - 1> - eps (sum P - |a| |b|)`, with `<a, f>` for an infinite
    /// penalty; it equals the primal value at the optimum (Séjourné et al. 2019, Prop. 2), so
    /// the gap is a check of the returned potentials.
    private func unbalancedValues(epsilon: Double, penalties: (source: Double, target: Double), planMass: Double,
                                  massProduct: Double) -> (marginalPenalty: Double, dual: Double) {
        func side(_ p: [Double], _ pT: [Double], _ w: [Double], _ rho: Double) -> (penalty: Double, dual: Double) {
            var kl = 0.0, dual = 0.0
            for i in 0 ..< p.count where w[i] > 0 {
                let logRatio = (p[i] - pT[i]) / epsilon
                let mass = w[i] * exp(logRatio)
                kl += mass * logRatio - mass + w[i]
                dual += rho == .infinity ? w[i] * p[i] : -rho * w[i] * expm1(-p[i] / rho)
            }
            return (rho == .infinity ? 0 : rho * kl, dual)
        }
        let source = side(f, fT, problem.a, penalties.source)
        let target = side(g, gT, problem.b, penalties.target)
        return (source.penalty + target.penalty, source.dual + target.dual - epsilon * (planMass - massProduct))
    }

    /// `P 1`, the row marginal of the plan of the current potentials: `a_i exp((f_i - T(g)_i) / eps)`
    /// (after ``solve()``: the new density of a ``MarginalUpdate/proximal(theta:potential:)`` step).
    public func rowMarginal() -> [Double] {
        let epsilon = parameters.epsilon
        return (0 ..< f.count).map { i in problem.a[i] > 0 ? problem.a[i] * exp((f[i] - fT[i]) / epsilon) : 0 }
    }

    /// Row `i` of the plan of the current potentials (`m` values).
    public func planRow(_ i: Int) -> [Double] {
        var out = [Double](repeating: 0, count: geometry.targetCount)
        guard 0 ..< geometry.sourceCount ~= i else { return out }
        f.withUnsafeBufferPointer { fb in
            g.withUnsafeBufferPointer { gb in
                logA.withUnsafeBufferPointer { ab in
                    logB.withUnsafeBufferPointer { bb in
                        out.withUnsafeMutableBufferPointer { ob in
                            geometry.planRow(i, f: fb, g: gb, logA: ab, logB: bb, epsilon: parameters.epsilon, into: ob)
                        }
                    }
                }
            }
        }
        return out
    }
}

/// A fixed over-relaxation factor that raises the proximal residual five times running is
/// dropped to 1 (Thibault et al. 2017); the proximal loops (scalings and log domain) each keep one.
struct RisingResidualWatch {
    private var previous = Double.infinity
    private var increases = 0
    /// Whether the factor has been dropped to 1.
    private(set) var switchedOff = false

    mutating func observe(_ residual: Double) {
        increases = residual > previous ? increases + 1 : 0
        if increases >= 5 { switchedOff = true }
        previous = residual
    }
}

/// Whether a driver still uses kernel mode (see ``EntropicSinkhorn/usesKernelMode``).
final class KernelModeSwitch {
    var on: Bool
    init(on: Bool) { self.on = on }
}
