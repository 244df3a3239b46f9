/// Which algorithm produced a ``TransportResult``.
public enum TransportMethod: String, Sendable, Codable, CaseIterable {
    /// Our exact network simplex (the default exact solver).
    case exact
    /// The transportation linear program solved by GLPK.
    case lp
    /// The one-dimensional quantile merge.
    case sorted
    /// Entropic optimal transport (stabilised kernel-mode Sinkhorn, ``SinkhornSolver``).
    case sinkhorn
    /// The Bures closed form between Gaussians.
    case gaussian
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
    public init(epsilon: Double, regularizedCost: Double, marginalError: Double) {
        self.epsilon = epsilon
        self.regularizedCost = regularizedCost
        self.marginalError = marginalError
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
