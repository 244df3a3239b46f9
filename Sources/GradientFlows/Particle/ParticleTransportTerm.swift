import Wasserstein

/// One evaluation of the transport term `W(X, Y)` of a particle JKO step.
public struct TransportTermEvaluation: Sendable, Equatable {
    /// The quantity that enters the JKO objective (divided there by `2 tau`): `W2^2` for exact
    /// transport, `OT_eps` or the debiased divergence `S_eps` for Sinkhorn. Its gradient is the one
    /// written by ``ParticleTransportTerm/evaluate(source:gradient:)``.
    public var value: Double
    /// The best available estimate of `W2^2(X, Y)`: the exact cost, `S_eps`, or the entropic
    /// transport cost `<P_eps, C>` when nothing better is at hand.
    public var squaredDistance: Double
    /// Solver iterations (pivots or Sinkhorn iterations) summed over the solves of this evaluation.
    public var solverIterations: Int
    /// Transport problems solved for this evaluation (2 for the debiased divergence).
    public var solves: Int
    /// Whether every solve converged.
    public var converged: Bool

    public init(value: Double, squaredDistance: Double, solverIterations: Int, solves: Int, converged: Bool) {
        self.value = value
        self.squaredDistance = squaredDistance
        self.solverIterations = solverIterations
        self.solves = solves
        self.converged = converged
    }
}

/// The transport part of a particle JKO objective: `W(X, Y)` and its gradient in the positions `X`,
/// for a fixed previous measure `Y`.
///
/// Implementations keep solver state between calls: successive inner iterations, and successive
/// steps at small `tau`, solve nearly the same problem, so a warm start (previous matching,
/// previous potentials) saves most of the work.
public protocol ParticleTransportTerm {
    /// Starts a JKO step whose previous measure is `target`.
    mutating func setTarget(_ target: PointCloud) throws
    /// Evaluates the term at `source` (same mass as the target) and writes its gradient with
    /// respect to the source positions into `gradient` (row-major `count x D`).
    mutating func evaluate(source: PointCloud, gradient: inout MutableSpan<Double>) throws -> TransportTermEvaluation
}

/// The transport term of any `TransportSolver` whose results have a plan or entropic potentials:
/// `W = <P, C>` (or the regularised value `OT_eps` when the result carries entropic diagnostics),
/// with the envelope gradient `2 sum_j P_ij (x_i - y_j)` of
/// `TransportResult.sourceGradient(problem:)` (Docs/Theory.md 1.5). No warm start: each
/// evaluation is a fresh solve.
public struct PlanTransportTerm: ParticleTransportTerm {
    /// The solver.
    public let solver: any TransportSolver
    private var target: PointCloud?

    public init(solver: any TransportSolver) {
        self.solver = solver
    }

    public mutating func setTarget(_ target: PointCloud) throws {
        self.target = target
    }

    public mutating func evaluate(source: PointCloud, gradient: inout MutableSpan<Double>) throws -> TransportTermEvaluation {
        guard let target else { throw GradientFlowsError.unsupported("the transport term has no target: call setTarget first") }
        let problem = try TransportProblem(source: source, target: target)
        let result = try solver.solve(problem)
        try write(result.sourceGradient(problem: problem), into: &gradient)
        let value = result.entropic?.regularizedCost ?? result.cost
        return TransportTermEvaluation(value: value, squaredDistance: result.cost, solverIterations: result.iterations,
                                       solves: 1, converged: result.converged)
    }
}

/// Copies a gradient computed by `TransportResult.sourceGradient(problem:)` into the buffer of
/// ``ParticleTransportTerm/evaluate(source:gradient:)``.
func write(_ values: [Double], into gradient: inout MutableSpan<Double>) throws {
    guard values.count == gradient.count else {
        throw GradientFlowsError.dimensionMismatch(what: "gradient buffer length", expected: values.count, actual: gradient.count)
    }
    for i in 0 ..< values.count { gradient[i] = values[i] }
}

/// Exact `W2^2` with warm starts: the network simplex (`NetworkSimplexWorkspace`) for `D >= 2`,
/// which restarts every solve from the previous optimal basis (same sizes and weights: only
/// positions move between inner iterations and between steps, so few pivots restore optimality),
/// and the sorted quantile merge (`SortedSolver`) for `D = 1`, exact and `O(M log M)`.
public final class ExactTransportTerm: ParticleTransportTerm {
    private let workspace: NetworkSimplexWorkspace
    private var target: PointCloud?

    /// - Parameter solver: network simplex options (pivot cap, tolerance).
    public init(solver: NetworkSimplexSolver = NetworkSimplexSolver()) {
        workspace = NetworkSimplexWorkspace(solver: solver)
    }

    /// Whether the last network-simplex solve started from the previous basis.
    public var lastSolveWasWarmStarted: Bool { workspace.lastSolveWasWarmStarted }

    public func setTarget(_ target: PointCloud) throws {
        self.target = target
    }

    public func evaluate(source: PointCloud, gradient: inout MutableSpan<Double>) throws -> TransportTermEvaluation {
        guard let target else { throw GradientFlowsError.unsupported("the transport term has no target: call setTarget first") }
        let problem = try TransportProblem(source: source, target: target)
        let result = source.dimension == 1 ? try SortedSolver().solve(problem) : try workspace.solve(problem)
        try write(result.sourceGradient(problem: problem), into: &gradient)
        return TransportTermEvaluation(value: result.cost, squaredDistance: result.cost, solverIterations: result.iterations,
                                       solves: 1, converged: result.converged)
    }
}
