/// The exact solver of the toolkit: a primal network simplex on the transportation graph.
///
/// It computes `W2^2 = min_P <P, C>` over couplings of the weights `a` (n points) and `b`
/// (m points) under the squared Euclidean cost, together with an optimal plan that is a vertex
/// of the transport polytope (at most `n + m - 1` non-zero entries) and optimal dual potentials
/// `f, g` with `f_i + g_j <= C_ij` and `sum_i a_i f_i + sum_j b_j g_j = <P, C>`.
///
/// The method is the one of LEMON and of POT's `emd`: a spanning-tree basis kept strongly
/// feasible (so ties, duplicate points and zero weights cannot make it cycle), block-search
/// pricing over the `n m` arcs (the hot loop, vectorised), and per-node tree storage. It starts
/// from a greedy plan (each source ships to its nearest targets with room left) rather than an
/// all-artificial basis: that saves about `n` pivots (a few percent) and, more usefully, makes
/// every intermediate basis a genuine coupling, so a result cut short by the pivot cap is still
/// a feasible plan.
///
/// ```swift
/// let problem = try TransportProblem(source: mu, target: nu)
/// let result = try NetworkSimplexSolver().solve(problem)
/// print(result.w2, result.iterations)
/// ```
///
/// Complexity: each pivot costs a block scan (about `sqrt(nm)` reduced costs) plus a walk over
/// the moved subtree; the number of pivots grows roughly linearly in `n + m` on geometric
/// problems. Memory: `O(n + m)`, plus the `n x m` cost matrix when ``CostEvaluation/matrix`` is
/// used. For repeated solves of problems that differ only by the positions of the points
/// (a JKO step), use ``NetworkSimplexWorkspace``, which restarts from the previous basis.
public struct NetworkSimplexSolver: TransportSolver, Sendable {
    /// Where costs come from during the solve.
    public enum CostEvaluation: String, Sendable, CaseIterable {
        /// The matrix while it fits in a typical last-level cache (``NetworkSimplexSolver/cachedMatrixCellLimit``
        /// cells) or when `D != 2`; beyond that, in the plane, coordinates (recomputing `|x - y|^2`
        /// in vector registers beats streaming a matrix from memory); and coordinates whenever the
        /// matrix would exceed ``NetworkSimplexSolver/matrixCellLimit`` cells.
        case automatic
        /// Build the dense `n x m` matrix once (`8 n m` bytes, on all cores) and read it.
        case matrix
        /// Recompute `|x_i - y_j|^2` from the coordinates whenever a cost is needed; no `O(nm)` memory.
        case coordinates
    }

    /// How the first basis is built.
    public enum InitialBasis: String, Sendable, CaseIterable {
        /// Sources, in order, ship to their nearest targets with room left (default).
        case greedy
        /// All mass routed through artificial arcs, as in LEMON and POT.
        case artificial
    }

    /// In the plane, the largest `n * m` for which ``CostEvaluation/automatic`` still reads a
    /// matrix (`2^21` cells, 16 MiB, about a last-level cache).
    public static let cachedMatrixCellLimit = 1 << 21

    /// The largest `n * m` for which ``CostEvaluation/automatic`` builds a cost matrix
    /// (`2^28` cells, 2 GiB); larger problems recompute costs from coordinates.
    public static let matrixCellLimit = 1 << 28

    /// Pivot cap; `nil` means `defaultPivotLimit(n:m:)`. Reaching it returns status
    /// ``SolverStatus/iterationLimit`` with the current plan: a coupling (feasible, not optimal)
    /// with the greedy start; with the artificial start, possibly still missing mass.
    public var maximumPivots: Int?
    /// Where costs come from.
    public var costEvaluation: CostEvaluation
    /// The first basis.
    public var initialBasis: InitialBasis
    /// Arcs per pricing block; `nil` means `max(10, sqrt(n m))`.
    public var blockSize: Int?
    /// Arcs enter the basis when their reduced cost is below `-relativeTolerance * max C`.
    /// The returned cost is then within `relativeTolerance * max C * mass` of the optimum. (If
    /// round-off on the potentials is found to exceed it, the solver raises it to that level
    /// rather than pivot on noise.)
    public var relativeTolerance: Double

    /// Creates a solver.
    ///
    /// - Parameters:
    ///   - maximumPivots: pivot cap, `nil` for the default `defaultPivotLimit(n:m:)`.
    ///   - costEvaluation: matrix or on-the-fly costs.
    ///   - initialBasis: greedy (default) or all-artificial start.
    ///   - blockSize: arcs per pricing block, `nil` for `sqrt(n m)`.
    ///   - relativeTolerance: optimality tolerance relative to the largest cost.
    public init(maximumPivots: Int? = nil, costEvaluation: CostEvaluation = .automatic,
                initialBasis: InitialBasis = .greedy, blockSize: Int? = nil,
                relativeTolerance: Double = 1e-12) {
        self.maximumPivots = maximumPivots
        self.costEvaluation = costEvaluation
        self.initialBasis = initialBasis
        self.blockSize = blockSize
        self.relativeTolerance = relativeTolerance
    }

    /// The default pivot cap: generous, far above what geometric problems need
    /// (they take a few times `n + m`), so that reaching it signals trouble.
    public static func defaultPivotLimit(n: Int, m: Int) -> Int {
        let (product, overflow) = n.multipliedReportingOverflow(by: m)
        return overflow ? Int.max : max(1_000_000, 100 * (n + m), min(product, Int.max / 2))
    }

    /// Solves the problem (cold start).
    ///
    /// - Throws: ``WassersteinError/invalidParameter(name:value:requirement:)`` for a bad option
    ///   or costs that overflow, ``WassersteinError/solverFailure(_:)`` if the pivoting breaks down.
    public func solve(_ problem: TransportProblem) throws -> TransportResult {
        try NetworkSimplexWorkspace(solver: self).solve(problem)
    }

    /// Solves the transport problem for a given cost matrix and weights (cold start).
    ///
    /// - Parameters:
    ///   - costs: the `n x m` costs (any finite values).
    ///   - sourceWeights: `n` finite non-negative weights with positive sum.
    ///   - targetWeights: `m` such weights, with the same sum to a relative `1e-9`.
    /// - Throws: ``WassersteinError`` on a count mismatch, a bad weight, zero mass, unequal masses.
    public func solve(costs: CostMatrix, sourceWeights: [Double], targetWeights: [Double]) throws -> TransportResult {
        try NetworkSimplexWorkspace(solver: self).solve(costs: costs, sourceWeights: sourceWeights, targetWeights: targetWeights)
    }
}

/// A reusable network simplex that keeps its last optimal basis and warm-starts from it.
///
/// When the next problem has the same `n`, `m` and weights (only the positions moved, as in
/// successive inner iterations of a JKO step), the old spanning tree is still a primal feasible,
/// strongly feasible basis: only the potentials are recomputed for the new costs, and typically
/// few pivots restore optimality. Otherwise the solve starts cold. The result is the same
/// either way (up to ties between optimal plans).
///
/// Not thread-safe: use one workspace per thread.
///
/// ```swift
/// let workspace = NetworkSimplexWorkspace()
/// for step in 0 ..< steps {
///     let result = try workspace.solve(problem(step))   // warm after the first call
///     ...
/// }
/// ```
public final class NetworkSimplexWorkspace {
    /// The options used for every solve.
    public var solver: NetworkSimplexSolver
    /// Whether the last solve started from the previous basis.
    public private(set) var lastSolveWasWarmStarted = false

    private var tree: NetworkSimplexTree?
    private var sourceWeights: [Double] = []
    private var targetWeights: [Double] = []

    /// Creates a workspace with the given options.
    public init(solver: NetworkSimplexSolver = NetworkSimplexSolver()) {
        self.solver = solver
    }

    /// Forgets the stored basis; the next solve starts cold.
    public func reset() {
        tree = nil
        sourceWeights = []
        targetWeights = []
    }

    /// Solves the problem, warm-starting when `n`, `m` and the weights equal the last solve's.
    ///
    /// - Throws: as ``NetworkSimplexSolver/solve(_:)``.
    public func solve(_ problem: TransportProblem) throws -> TransportResult {
        try validateOptions()
        let x = problem.source, y = problem.target
        let n = x.count, m = y.count, d = problem.dimension
        let scale = try SquaredEuclideanCost.upperBound(source: x, target: y)
        var evaluation = solver.costEvaluation
        let (cells, overflow) = n.multipliedReportingOverflow(by: m)
        if evaluation == .automatic {
            let limit = d == 2 ? NetworkSimplexSolver.cachedMatrixCellLimit : NetworkSimplexSolver.matrixCellLimit
            evaluation = !overflow && cells <= limit ? .matrix : .coordinates
        }
        // A matrix that cannot even be indexed is never attempted.
        if evaluation == .matrix && (overflow || cells > Int.max / 16) { evaluation = .coordinates }
        switch evaluation {
        case .matrix:
            let c = try SquaredEuclideanCost.matrix(source: x, target: y)
            return try c.values.withUnsafeBufferPointer { cp in
                try run(MatrixArcCosts(values: cp.baseAddress!, rows: n, columns: m), x.weights, y.weights, scale)
            }
        default:
            if d == 2 {
                var x0 = [Double](repeating: 0, count: n), x1 = x0
                var y0 = [Double](repeating: 0, count: m), y1 = y0
                for i in 0 ..< n { x0[i] = x.coordinates[2 * i]; x1[i] = x.coordinates[2 * i + 1] }
                for j in 0 ..< m { y0[j] = y.coordinates[2 * j]; y1[j] = y.coordinates[2 * j + 1] }
                return try x0.withUnsafeBufferPointer { a0 in try x1.withUnsafeBufferPointer { a1 in
                    try y0.withUnsafeBufferPointer { b0 in try y1.withUnsafeBufferPointer { b1 in
                        try run(PlanarArcCosts(x0: a0.baseAddress!, x1: a1.baseAddress!, y0: b0.baseAddress!,
                                           y1: b1.baseAddress!, rows: n, columns: m), x.weights, y.weights, scale)
                    } }
                } }
            }
            return try x.coordinates.withUnsafeBufferPointer { xp in
                try y.coordinates.withUnsafeBufferPointer { yp in
                    try run(PointArcCosts(x: xp.baseAddress!, y: yp.baseAddress!, dimension: d, rows: n, columns: m),
                        x.weights, y.weights, scale)
                }
            }
        }
    }

    /// Solves the transport problem for a given cost matrix and weights, warm-starting when the
    /// sizes and weights equal the last solve's.
    ///
    /// - Throws: ``WassersteinError`` on a count mismatch, a bad weight, zero mass or unequal
    ///   masses (relative `1e-9`).
    public func solve(costs: CostMatrix, sourceWeights a: [Double], targetWeights b: [Double]) throws -> TransportResult {
        try validateOptions()
        try Self.validateWeights(a, count: costs.rows, name: "source weights")
        try Self.validateWeights(b, count: costs.columns, name: "target weights")
        let ma = a.reduce(0, +), mb = b.reduce(0, +)
        guard abs(ma - mb) <= TransportProblem.massTolerance * max(ma, mb) else {
            throw WassersteinError.massMismatch(source: ma, target: mb)
        }
        var scale = 0.0
        for v in costs.values { scale = max(scale, abs(v)) }
        return try costs.values.withUnsafeBufferPointer { cp in
            try run(MatrixArcCosts(values: cp.baseAddress!, rows: costs.rows, columns: costs.columns), a, b, scale)
        }
    }

    // MARK: - Internals

    private func validateOptions() throws {
        if let p = solver.maximumPivots, p < 0 {
            throw WassersteinError.invalidParameter(name: "maximumPivots", value: Double(p), requirement: "must be >= 0")
        }
        if let s = solver.blockSize, s < 1 {
            throw WassersteinError.invalidParameter(name: "blockSize", value: Double(s), requirement: "must be >= 1")
        }
        let t = solver.relativeTolerance
        guard t.isFinite, t >= 0, t < 1e-3 else {
            throw WassersteinError.invalidParameter(name: "relativeTolerance", value: t, requirement: "must be in [0, 1e-3)")
        }
    }

    static func validateWeights(_ w: [Double], count: Int, name: String) throws {
        guard w.count == count else {
            throw WassersteinError.weightCountMismatch(cloud: name, points: count, weights: w.count)
        }
        for (i, v) in w.enumerated() where !(v.isFinite && v >= 0) {
            throw WassersteinError.invalidWeight(cloud: name, index: i, value: v)
        }
        let total = w.reduce(0, +)
        guard total > 0, total.isFinite else { throw WassersteinError.zeroMass(name) }
    }

    private func run<Costs: ArcCosts>(_ costs: Costs, _ a: [Double], _ b: [Double], _ scale: Double) throws -> TransportResult {
        let n = costs.rows, m = costs.columns
        let warm = tree != nil && tree!.n == n && tree!.m == m && a == sourceWeights && b == targetWeights
        let t: NetworkSimplexTree
        if warm {
            t = tree!
        } else {
            t = NetworkSimplexTree(sourceCount: n, targetCount: m)
            a.withUnsafeBufferPointer { ap in
                b.withUnsafeBufferPointer { bp in
                    switch solver.initialBasis {
                    case .greedy:
                        t.initializeGreedy(costs: costs, sourceWeights: ap.baseAddress!, targetWeights: bp.baseAddress!)
                    case .artificial:
                        t.initializeArtificial(sourceWeights: ap.baseAddress!, targetWeights: bp.baseAddress!)
                    }
                }
            }
        }
        // A direct arc costs at most `scale`; downward artificial arcs must cost more, and no
        // more than needed, since their cost enters the potentials (and their round-off).
        t.downwardArcCost = scale > 0 ? 2 * scale : 1
        let block = solver.blockSize ?? max(10, Int(clampingCount: Double(n * m).squareRoot().rounded(), limit: n * m))
        let limit = solver.maximumPivots ?? NetworkSimplexSolver.defaultPivotLimit(n: n, m: m)
        let outcome = t.optimize(costs, blockSize: min(block, n * m), tolerance: solver.relativeTolerance * scale,
                                 maximumPivots: limit)
        lastSolveWasWarmStarted = warm
        if outcome.failed {
            reset()
            throw WassersteinError.solverFailure("network simplex lost its basis after \(outcome.pivots) pivots (numerical breakdown)")
        }
        tree = t
        sourceWeights = a
        targetWeights = b
        let p = t.plan(costs)
        return TransportResult(method: .exact, status: outcome.optimal ? .optimal : .iterationLimit, cost: p.cost,
                               plan: TransportPlan(sourceCount: n, targetCount: m, entries: p.entries),
                               potentials: t.potentials(), iterations: outcome.pivots)
    }
}
