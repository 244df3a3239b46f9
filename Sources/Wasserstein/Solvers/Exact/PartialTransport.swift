/// The result of an exact partial transport solve.
public struct PartialTransportResult: Sendable {
    /// The least cost `<P, C>` of moving the requested mass.
    public let cost: Double
    /// The plan between the real points (the dummy points removed): `P 1 <= a`, `P^T 1 <= b`,
    /// `sum P = transportedMass`.
    public let plan: TransportPlan
    /// The mass the plan moves (the requested mass, up to round-off).
    public let transportedMass: Double
    /// Whether the network simplex proved optimality (``SolverStatus/optimal``) or stopped at its cap.
    public let status: SolverStatus
    /// Network simplex pivots.
    public let iterations: Int

    /// True unless the solver stopped at its pivot cap.
    public var converged: Bool { status != .iterationLimit }
}

/// Exact partial optimal transport: move a given mass `m <= min(|a|, |b|)` from `a` to `b` at
/// least cost,
///
///     min <P, C>   over   P >= 0,   P 1 <= a,   P^T 1 <= b,   sum P = m,
///
/// by the dummy-point reduction to a balanced problem on the network simplex. Why this works:
/// add a source point `s*` of mass `|b| - m` and a target point `t*` of mass `|a| - m`, with
/// cost 0 between a dummy and a real point and a cost `A > 0` from `s*` to `t*` (both sides now
/// weigh `|a| + |b| - m`). In a coupling of the extended problem let `T` be the mass moved
/// between real points. The real sources send `|a| - T` to `t*`, so `s*` sends `T - m >= 0`
/// to `t*`, and the extended cost is `<P_real, C> + A (T - m)`. With costs `>= 0`, a coupling
/// with `T > m` is beaten by its real part scaled by `m / T` (feasible, mass `m`, real cost no
/// larger, dummy cost zero), so every optimum moves exactly `m` between real points and its real
/// part solves the partial problem; conversely any partial plan extends to a coupling of the
/// same cost. Costs below zero are shifted up by `-min C` first: every plan of mass `m` then
/// costs `m min C` more, which is added back. `A` is taken as `max C + 1` after the shift, so
/// it also dominates the optimality tolerance of the simplex.
public struct PartialTransport: Sendable {
    /// The exact solver the reduction runs on.
    public var solver: NetworkSimplexSolver

    /// Relative slack on `m <= min(|a|, |b|)`: a mass above the minimum by less than this
    /// (round-off in a sum of weights) is taken as the minimum.
    public static let massTolerance = 1e-9

    /// The largest `(n + 1) (m + 1)` accepted: the reduction builds that dense cost matrix
    /// (8 bytes a cell, beside the `n x m` one of the point-cloud entry point), so `2^27` cells
    /// is 1 GiB; larger problems throw ``WassersteinError/tooLarge(_:)`` rather than exhaust memory.
    public static let maximumCells = 1 << 27

    /// Creates a partial solver on the given network simplex options.
    public init(solver: NetworkSimplexSolver = NetworkSimplexSolver()) {
        self.solver = solver
    }

    /// Partial transport between two point clouds under the squared Euclidean cost. The clouds
    /// need not carry the same mass.
    ///
    /// - Throws: ``WassersteinError/dimensionMismatch(expected:actual:)``, the errors of
    ///   ``solve(costs:sourceWeights:targetWeights:mass:)``.
    public func solve(source: PointCloud, target: PointCloud, mass: Double) throws -> PartialTransportResult {
        guard source.dimension == target.dimension else {
            throw WassersteinError.dimensionMismatch(expected: source.dimension, actual: target.dimension)
        }
        try Self.checkSize(source.count, target.count)
        _ = try SquaredEuclideanCost.upperBound(source: source, target: target)
        let costs = try SquaredEuclideanCost.matrix(source: source, target: target)
        return try solve(costs: costs, sourceWeights: source.weights, targetWeights: target.weights, mass: mass)
    }

    /// Partial transport for a given cost matrix (any finite costs) and weights.
    ///
    /// - Parameters:
    ///   - costs: the `n x m` costs.
    ///   - a: the source weights, `n` finite non-negative weights with positive sum `|a|`.
    ///   - b: the target weights, `m` such weights, sum `|b|` (need not equal `|a|`).
    ///   - mass: the mass to move, `0 <= mass <= min(|a|, |b|)`.
    /// - Throws: ``WassersteinError/invalidParameter(name:value:requirement:)`` for a mass out of
    ///   range, ``WassersteinError`` for bad weights, ``WassersteinError/solverFailure(_:)``
    ///   from the simplex.
    public func solve(costs: CostMatrix, sourceWeights a: [Double], targetWeights b: [Double], mass: Double) throws -> PartialTransportResult {
        let n = costs.rows, m = costs.columns
        try Self.checkSize(n, m)
        try NetworkSimplexWorkspace.validateWeights(a, count: n, name: "source weights")
        try NetworkSimplexWorkspace.validateWeights(b, count: m, name: "target weights")
        let ma = SortedSolver.compensatedSum(a), mb = SortedSolver.compensatedSum(b)
        let limit = min(ma, mb)
        guard mass.isFinite, mass >= 0, mass <= limit * (1 + Self.massTolerance) else {
            throw WassersteinError.invalidParameter(
                name: "partial mass", value: mass,
                requirement: "must be in [0, min(total masses)] = [0, \(limit)]")
        }
        let target = min(mass, limit)
        if target == 0 {
            return PartialTransportResult(cost: 0, plan: TransportPlan(sourceCount: n, targetCount: m, entries: []),
                                          transportedMass: 0, status: .optimal, iterations: 0)
        }
        var lowest = Double.infinity, highest = -Double.infinity
        for v in costs.values { lowest = min(lowest, v); highest = max(highest, v) }
        let shift = min(lowest, 0)
        let penalty = (highest - shift) + 1
        guard penalty.isFinite else {
            throw WassersteinError.invalidParameter(name: "cost range", value: highest - shift,
                                                    requirement: "the spread of the costs must be finite")
        }
        // The extended (n + 1) x (m + 1) problem: last row the dummy source, last column the dummy target.
        let columns = m + 1
        var extended = [Double](repeating: 0, count: (n + 1) * columns)
        for i in 0 ..< n {
            for j in 0 ..< m { extended[i * columns + j] = costs.values[i * m + j] - shift }
        }
        extended[n * columns + m] = penalty
        let extendedCosts = try CostMatrix(rows: n + 1, columns: columns, values: extended)
        // Dummy masses: the unmatched parts. Clamped at zero (mass = |b| gives exactly 0).
        let ea = a + [max(0, mb - target)]
        let eb = b + [max(0, ma - target)]
        let result = try solver.solve(costs: extendedCosts, sourceWeights: ea, targetWeights: eb)
        var entries = [TransportPlan.Entry]()
        var moved = SortedSolver.CompensatedSum(), cost = SortedSolver.CompensatedSum()
        for e in result.plan?.entries ?? [] where e.source < n && e.target < m && e.mass > 0 {
            entries.append(e)
            moved.add(e.mass)
            cost.add(e.mass * costs.values[e.source * m + e.target])
        }
        return PartialTransportResult(cost: cost.value, plan: TransportPlan(sourceCount: n, targetCount: m, entries: entries),
                                      transportedMass: moved.value, status: result.status, iterations: result.iterations)
    }

    static func checkSize(_ n: Int, _ m: Int) throws {
        let (cells, overflow) = (n + 1).multipliedReportingOverflow(by: m + 1)
        guard !overflow, cells <= maximumCells else {
            throw WassersteinError.tooLarge(
                "exact partial transport builds a dense (n + 1) x (m + 1) cost matrix; n = \(n), m = \(m) exceeds \(maximumCells) cells")
        }
    }
}
