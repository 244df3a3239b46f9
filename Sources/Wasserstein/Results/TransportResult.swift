/// The one vocabulary of transport methods: what ``wasserstein2(_:method:planOutput:progress:)`` is asked
/// to run, what the command line's `--method` names, and what a ``TransportResult`` says ran.
///
/// ```swift
/// let exact = try wasserstein2(x, y)                                   // auto
/// let entropic = try wasserstein2(x, y, method: .sinkhorn(epsilon: 0.01))
/// let bures = try wasserstein2(x, y, method: .gaussian)
/// ```
///
/// In a result the method is resolved: never ``auto``, and ``exact`` only when the network
/// simplex ran (in one dimension ``exact`` runs the sorted solver and the result says
/// ``sorted``). A Sinkhorn result carries the epsilon it ran at; its options are those of the
/// request where the request went through ``wasserstein2(_:method:planOutput:progress:)``, the defaults
/// otherwise: match it with `if case .sinkhorn = result.method`.
public enum TransportMethod: Sendable, Hashable {
    /// ``sorted`` for one-dimensional problems, ``exact`` otherwise.
    case auto
    /// An exact solver for any dimension: the network simplex (``NetworkSimplexSolver``), or in
    /// one dimension the sorted solver, which is exact there and takes `O((n + m) log(n + m))`
    /// where the simplex can take minutes on unbalanced sizes (`n = 3e4` against `m = 3`).
    case exact
    /// The transportation linear program through GLPK (``LinearProgramSolver``): exact, slow,
    /// small problems.
    case lp
    /// The one-dimensional quantile merge (``SortedSolver``); throws for `D > 1`.
    case sorted
    /// The Bures closed form between the moment-matched Gaussians of the two clouds
    /// (``GaussianMomentSolver``): a lower bound on `W2^2`, exact between Gaussians; no plan.
    case gaussian
    /// Entropic optimal transport at the absolute regularisation `epsilon` (units of
    /// `|x - y|^2`): the transport cost `<P, C>` of the entropic plan, an estimate of `W2^2`
    /// above it by `O(eps log(1 / eps))`, with potentials, diagnostics and, on request, the
    /// debiased divergence. See ``SinkhornOptions``.
    case sinkhorn(epsilon: Double, options: SinkhornOptions = SinkhornOptions())

    /// The method `auto` resolves to for a problem of this dimension.
    public func resolved(dimension: Int) -> TransportMethod {
        self == .auto ? (dimension == 1 ? .sorted : .exact) : self
    }

    /// The method's name: `auto`, `exact`, `lp`, `sorted`, `gaussian` or `sinkhorn`.
    public var name: String {
        switch self {
        case .auto: return "auto"
        case .exact: return "exact"
        case .lp: return "lp"
        case .sorted: return "sorted"
        case .gaussian: return "gaussian"
        case .sinkhorn: return "sinkhorn"
        }
    }

    /// The regularisation of ``sinkhorn(epsilon:options:)``, `nil` for the other methods.
    public var epsilon: Double? {
        if case .sinkhorn(let epsilon, _) = self { return epsilon }
        return nil
    }

    /// The options of ``sinkhorn(epsilon:options:)``, `nil` for the other methods.
    public var sinkhornOptions: SinkhornOptions? {
        if case .sinkhorn(_, let options) = self { return options }
        return nil
    }
}

/// The settings of ``TransportMethod/sinkhorn(epsilon:options:)`` beyond epsilon.
public struct SinkhornOptions: Sendable, Hashable {
    /// The bound on the L1 marginal error of the returned plan, relative to the source mass.
    public var tolerance: Double
    /// The iteration cap (a run that reaches it reports ``TransportResult/converged`` false).
    public var maxIterations: Int
    /// Also solve the two self problems and return the debiased divergence
    /// `S_eps = OT_eps(a, b) - (OT_eps(a, a) + OT_eps(b, b)) / 2` in
    /// ``EntropicDiagnostics/divergence``.
    public var divergence: Bool
    /// The geometry: ``SinkhornGeometryKind/dense`` (stored kernel), ``SinkhornGeometryKind/online``
    /// (costs recomputed, `O(n + m)` memory), or `nil` to choose from the sizes and ``memoryLimit``.
    public var geometry: SinkhornGeometryKind?
    /// The memory, in bytes, the automatic geometry choice may use; `nil`: the machine's
    /// physical memory.
    public var memoryLimit: Double?

    public init(tolerance: Double = 1e-9, maxIterations: Int = 10_000, divergence: Bool = false,
                geometry: SinkhornGeometryKind? = nil, memoryLimit: Double? = nil) {
        self.tolerance = tolerance
        self.maxIterations = maxIterations
        self.divergence = divergence
        self.geometry = geometry
        self.memoryLimit = memoryLimit
    }
}

/// Whether, and how much of, the transport plan a solve returns: the one plan switch of the
/// library (``wasserstein2(_:method:planOutput:progress:)``, ``SortedSolver``, ``SinkhornSolver``).
public enum PlanOutput: Sendable, Hashable {
    /// No plan: the value, and potentials where the method has them cheaply (the sorted solver
    /// skips those too, the bulk of its time and memory at millions of points).
    case none
    /// The entries with `P_ij >= minimumMass` (and `P_ij > 0`); the dropped mass is at most
    /// `n * m * minimumMass`.
    case sparse(minimumMass: Double)
    /// Every entry the method forms: the non-zero entries of an exact plan, all `n * m` entries
    /// of an entropic plan (including those that are zero in floating point).
    case full

    /// Whether any plan is returned.
    public var includesPlan: Bool { self != .none }
}

/// How a solver ended.
public enum SolverStatus: String, Sendable, Codable {
    /// An exact method reached a proven optimum.
    case optimal
    /// An iterative method met its tolerance.
    case converged
    /// An iterative method stopped at its iteration cap before meeting its tolerance; the
    /// numbers are the last iterate's and are *not* converged.
    case iterationLimit
}

/// A sparse transport plan: the non-zero entries `P[i, j]`.
public struct TransportPlan: Sendable, Equatable {
    /// One non-zero entry of the plan.
    public struct Entry: Sendable, Equatable {
        /// Source index `i`.
        public var source: Int
        /// Target index `j`.
        public var target: Int
        /// The mass `P[i, j] > 0` moved from `x_i` to `y_j`.
        public var mass: Double
        public init(source: Int, target: Int, mass: Double) {
            self.source = source
            self.target = target
            self.mass = mass
        }
    }

    /// Number of source points `n`.
    public let sourceCount: Int
    /// Number of target points `m`.
    public let targetCount: Int
    /// The non-zero entries, in no particular order.
    public var entries: [Entry]

    public init(sourceCount: Int, targetCount: Int, entries: [Entry]) {
        self.sourceCount = sourceCount
        self.targetCount = targetCount
        self.entries = entries
    }

    /// Row sums `P 1` (mass leaving each source point).
    public var sourceMarginal: [Double] {
        var r = [Double](repeating: 0, count: sourceCount)
        for e in entries { r[e.source] += e.mass }
        return r
    }

    /// Column sums `P^T 1` (mass arriving at each target point).
    public var targetMarginal: [Double] {
        var c = [Double](repeating: 0, count: targetCount)
        for e in entries { c[e.target] += e.mass }
        return c
    }

    /// The plan as a dense row-major `n x m` matrix (for small problems and tests).
    public var dense: [Double] {
        var p = [Double](repeating: 0, count: sourceCount * targetCount)
        for e in entries { p[e.source * targetCount + e.target] += e.mass }
        return p
    }
}

/// Dual potentials `(f, g)` with `f_i + g_j <= C_ij` (exact) or the Sinkhorn scalings in log form.
public struct DualPotentials: Sendable, Equatable {
    /// One value per source point.
    public var f: [Double]
    /// One value per target point.
    public var g: [Double]
    public init(f: [Double], g: [Double]) {
        self.f = f
        self.g = g
    }
}

/// The quantities only entropic solvers have.
public struct EntropicDiagnostics: Sendable, Equatable {
    /// The regularisation strength, absolute, in the units of the cost.
    public var epsilon: Double
    /// `OT_eps = <P, C> + eps * KL(P | a (x) b)`.
    public var regularizedCost: Double
    /// The L1 marginal violation at the last iterate.
    public var marginalError: Double
    /// The debiased divergence `S_eps`, when ``SinkhornOptions/divergence`` asked for it.
    public var divergence: Double?
    /// The geometry that ran, when the solve went through the geometry choice of
    /// ``wasserstein2(_:method:planOutput:progress:)``.
    public var geometry: SinkhornGeometryKind?
    /// For the multiscale geometry: the a-posteriori checks of the truncated solves (the cross
    /// term, then the divergence's self terms); a failed one was solved again on the online
    /// geometry, so the values above are right either way.
    public var truncationChecks: [TruncationCheck]
    public init(epsilon: Double, regularizedCost: Double, marginalError: Double,
                divergence: Double? = nil, geometry: SinkhornGeometryKind? = nil,
                truncationChecks: [TruncationCheck] = []) {
        self.epsilon = epsilon
        self.regularizedCost = regularizedCost
        self.marginalError = marginalError
        self.divergence = divergence
        self.geometry = geometry
        self.truncationChecks = truncationChecks
    }
}

/// The result of every transport solver: the cost, the plan, the potentials, how it was
/// obtained and whether it can be trusted.
public struct TransportResult: Sendable {
    /// The algorithm that produced this result.
    public var method: TransportMethod
    /// Whether the solver reached its optimum or tolerance.
    public var status: SolverStatus
    /// The transport cost `<P, C>`: `W2^2` for exact methods, the entropic transport part for Sinkhorn.
    public var cost: Double
    /// The plan, when the method computes one (not the Gaussian closed form).
    public var plan: TransportPlan?
    /// The dual potentials, when the method has them.
    public var potentials: DualPotentials?
    /// Pivots (network simplex), simplex iterations (GLPK) or Sinkhorn iterations.
    public var iterations: Int
    /// Entropic quantities, for Sinkhorn only.
    public var entropic: EntropicDiagnostics?

    public init(method: TransportMethod, status: SolverStatus, cost: Double, plan: TransportPlan? = nil,
                potentials: DualPotentials? = nil, iterations: Int = 0, entropic: EntropicDiagnostics? = nil) {
        self.method = method
        self.status = status
        self.cost = cost
        self.plan = plan
        self.potentials = potentials
        self.iterations = iterations
        self.entropic = entropic
    }

    /// `W2^2` (or its entropic estimate): the same as ``cost``.
    public var w2Squared: Double { cost }
    /// `W2 = sqrt(max(cost, 0))`; round-off can make an exact zero cost slightly negative.
    public var w2: Double { max(cost, 0).squareRoot() }
    /// True unless an iterative solver ran out of iterations.
    public var converged: Bool { status != .iterationLimit }

    /// The result of an exact (linear) method for the same problem with every weight multiplied
    /// by `mass`: cost and plan scale, potentials do not. Solvers whose arithmetic or
    /// tolerances assume a mass near one solve at mass one and come back through this.
    func scalingMass(by mass: Double) -> TransportResult {
        if mass == 1 { return self }
        var result = self
        result.cost *= mass
        if let plan {
            result.plan = TransportPlan(sourceCount: plan.sourceCount, targetCount: plan.targetCount,
                                        entries: plan.entries.map { .init(source: $0.source, target: $0.target, mass: $0.mass * mass) })
        }
        return result
    }
}

/// A solver for ``TransportProblem``s.
public protocol TransportSolver: Sendable {
    /// Solves the problem, or throws a ``WassersteinError`` if it cannot.
    func solve(_ problem: TransportProblem) throws -> TransportResult
}
