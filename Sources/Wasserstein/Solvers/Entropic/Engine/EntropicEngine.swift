/// Which geometry an entropic solve of point clouds uses.
public enum SinkhornGeometryKind: String, Sendable, CaseIterable {
    /// The stored `n x m` kernel: ``SinkhornSolver`` (absorption, row repair, cluster shifts,
    /// Newton; the fastest for what fits in memory), or ``DenseCostGeometry`` in the engine.
    case dense
    /// ``OnlinePointCloudGeometry``: costs recomputed tile by tile, `O(n + m)` memory.
    case online
    /// ``MultiscalePointCloudGeometry`` (`D <= 3`): only the pairs that can carry mass, found in
    /// k-d trees from the potentials, checked a posteriori with the online geometry as fallback.
    case multiscale

    /// The geometry for `n` source and `m` target points in dimension `D` under a memory budget.
    ///
    /// Why this rule: the dense solver is several times faster per iteration (a stored kernel is
    /// a matrix-vector product, no exponentials), so it is the choice whenever its kernel fits
    /// comfortably: `8 n m` bytes (and `8 n^2`, `8 m^2` for the divergence's self terms, which
    /// reuse one workspace, so the largest counts) at most half of `byteBudget`, leaving the
    /// rest for the process and the machine, and at most ``SinkhornSolver/maximumKernelCells``
    /// cells. Otherwise, in dimension `D <= 3`, the multiscale geometry (the pairs it evaluates
    /// per soft-min grow like `n` times the points in a ball of radius about `sqrt(k eps)`, not
    /// like `n m`; its memory is `O(n + m)`), and the online geometry above that (a ball in
    /// high dimension holds almost nothing, so its boxes prune little).
    ///
    /// - Parameters:
    ///   - sourceCount: `n`.
    ///   - targetCount: `m`.
    ///   - dimension: `D`.
    ///   - byteBudget: the memory the solve may use (`--memory-limit`, or physical memory).
    ///   - divergence: whether the two self terms `n x n` and `m x m` are solved as well.
    ///   - bytesPerCell: the dense geometry's bytes per pair: 8 for ``SinkhornSolver``'s kernel,
    ///     16 for ``DenseCostGeometry`` (stored costs and kernel).
    public static func automatic(sourceCount: Int, targetCount: Int, dimension: Int, byteBudget: Double,
                                 divergence: Bool = false, bytesPerCell: Double = 8) -> SinkhornGeometryKind {
        let n = Double(sourceCount), m = Double(targetCount)
        let cells = divergence ? Swift.max(n * m, n * n, m * m) : n * m
        let bytes = bytesPerCell * cells
        let cellLimit = Double(SinkhornSolver.defaultMaximumKernelCells)
        if bytes <= 0.5 * byteBudget && cells <= cellLimit { return .dense }
        return dimension <= 3 ? .multiscale : .online
    }
}

extension SinkhornSolver {
    /// The default of ``maximumKernelCells`` (`2^30`, an 8 GiB kernel).
    public static let defaultMaximumKernelCells = 1 << 30
}

/// The debiased divergence computed by the engine, with the three solves behind it.
public struct EntropicDivergenceOutput: Sendable {
    /// `S_eps = OT_eps(a, b) - (OT_eps(a, a) + OT_eps(b, b)) / 2`.
    public var divergence: Double
    /// `OT_eps(a, b)`.
    public var cross: EntropicOutput
    /// `OT_eps(a, a)`.
    public var sourceSelf: EntropicOutput
    /// `OT_eps(b, b)`.
    public var targetSelf: EntropicOutput
    /// True when all three solves met the tolerance.
    public var converged: Bool { cross.converged && sourceSelf.converged && targetSelf.converged }
    /// The largest marginal error of the three solves.
    public var marginalError: Double { Swift.max(cross.marginalError, sourceSelf.marginalError, targetSelf.marginalError) }
}

/// Entry points of the entropic engine for point clouds.
public enum EntropicEngine {
    /// `OT_eps(a, b)` between the two clouds of `problem` on a geometry built by `geometry`.
    ///
    /// When both clouds are the same (coordinates and weights), the optimal potentials are
    /// equal and the symmetric update solves the problem: the balanced iteration would crawl
    /// there, since every point is coupled mostly to itself and isolated points form modes
    /// with rates within 1e-9 of 1 (measured: 20 Gaussian points in 3-D at eps = 0.1 stall at a
    /// marginal error of 1e-6 after 10^4 balanced iterations; the symmetric update needs 17).
    ///
    /// - Parameters:
    ///   - problem: the two clouds.
    ///   - parameters: epsilon, its schedule, the tolerance and the iteration budget.
    ///   - geometry: builds the geometry of the two clouds (``online(_:)``, ``dense(_:)``, ...).
    ///   - progress: receives the driver's reports (``EntropicSinkhorn/progress``).
    /// - Throws: the geometry's, the problem's and the driver's errors.
    public static func solve<G: SinkhornGeometry>(_ problem: TransportProblem, parameters: EntropicParameters,
                                                  geometry: (PointCloud, PointCloud) throws -> G,
                                                  progress: EntropicProgressObserver? = nil) throws -> EntropicOutput {
        if problem.source == problem.target {
            return try solveSelf(problem.source, parameters: parameters, geometry: geometry, progress: progress)
        }
        var driver = try EntropicSinkhorn(geometry: geometry(problem.source, problem.target),
                                          problem: .balanced(problem), parameters: parameters)
        driver.progress = progress
        return try driver.solve()
    }

    /// `OT_eps(a, a)`, the self term.
    public static func solveSelf<G: SinkhornGeometry>(_ cloud: PointCloud, parameters: EntropicParameters,
                                                      geometry: (PointCloud, PointCloud) throws -> G,
                                                      progress: EntropicProgressObserver? = nil) throws -> EntropicOutput {
        var driver = try EntropicSinkhorn(geometry: geometry(cloud, cloud), problem: .symmetric(a: cloud.weights),
                                          parameters: parameters)
        driver.progress = progress
        return try driver.solve()
    }

    /// The Sinkhorn divergence `S_eps(a, b)`: one balanced and two symmetric solves (each
    /// reported to `progress` from its first iteration).
    public static func divergence<G: SinkhornGeometry>(_ problem: TransportProblem, parameters: EntropicParameters,
                                                       geometry: (PointCloud, PointCloud) throws -> G,
                                                       progress: EntropicProgressObserver? = nil) throws -> EntropicDivergenceOutput {
        let cross = try solve(problem, parameters: parameters, geometry: geometry, progress: progress)
        let sourceSelf = try solveSelf(problem.source, parameters: parameters, geometry: geometry, progress: progress)
        let targetSelf = try solveSelf(problem.target, parameters: parameters, geometry: geometry, progress: progress)
        return EntropicDivergenceOutput(
            divergence: cross.regularizedCost - (sourceSelf.regularizedCost + targetSelf.regularizedCost) / 2,
            cross: cross, sourceSelf: sourceSelf, targetSelf: targetSelf)
    }

    /// The online geometry for the cost `cost` (a closure for ``solve(_:parameters:geometry:progress:)``).
    public static func online(_ cost: PointCloudCost = .squaredEuclidean) -> (PointCloud, PointCloud) throws -> OnlinePointCloudGeometry {
        { try OnlinePointCloudGeometry(source: $0, target: $1, cost: cost) }
    }

    /// The stored-cost geometry for the cost `cost`.
    public static func dense(_ cost: PointCloudCost = .squaredEuclidean) -> (PointCloud, PointCloud) throws -> DenseCostGeometry {
        { try DenseCostGeometry(source: $0, target: $1, cost: cost) }
    }
}

extension EntropicOutput {
    /// The output as a ``TransportResult`` of method ``TransportMethod/sinkhorn(epsilon:options:)`` (no plan).
    public var transportResult: TransportResult {
        TransportResult(method: .sinkhorn(epsilon: epsilon), status: converged ? .converged : .iterationLimit, cost: transportCost,
                        plan: nil, potentials: potentials, iterations: iterations,
                        entropic: EntropicDiagnostics(epsilon: epsilon, regularizedCost: regularizedCost,
                                                      marginalError: marginalError))
    }
}

/// The entropic estimate of `W2^2` between two clouds (cost `|x - y|^2`) on a chosen or
/// automatically picked geometry: what `wasserstein distance --method sinkhorn` runs.
public struct EntropicDistance: Sendable {
    /// The cross term as a ``TransportResult`` (method ``TransportMethod/sinkhorn(epsilon:options:)``).
    public var result: TransportResult
    /// `S_eps`, when the divergence was asked for.
    public var divergence: Double?
    /// The geometry that ran.
    public var geometry: SinkhornGeometryKind
    /// For ``SinkhornGeometryKind/multiscale``: the checks of the solves (the cross term, then the
    /// self terms of the divergence); a failed one was solved again on the online geometry.
    public var truncationChecks: [TruncationCheck] = []

    /// Solves with the dense solver (``SinkhornSolver``, ``SinkhornDivergence``) or the engine's
    /// online or multiscale geometry.
    ///
    /// - Parameters:
    ///   - problem: the two clouds.
    ///   - epsilon: the regularisation, absolute, in cost units.
    ///   - tolerance: the bound on the L1 marginal error relative to the source mass (the same
    ///     meaning on both geometries).
    ///   - maxIterations: the iteration cap.
    ///   - divergence: also solve the two self terms and return `S_eps`.
    ///   - planOutput: the plan to return (``PlanOutput``; default none).
    ///   - geometry: the geometry, or `nil` for ``SinkhornGeometryKind/automatic(sourceCount:targetCount:dimension:byteBudget:divergence:bytesPerCell:)``.
    ///   - byteBudget: the memory budget of the automatic choice.
    ///   - progress: receives a report per iteration (every geometry; the dense solver's loop
    ///     sends the same reports as the engine's driver).
    /// - Throws: the solvers' errors.
    public init(_ problem: TransportProblem, epsilon: Double, tolerance: Double = 1e-9, maxIterations: Int = 10_000,
                divergence: Bool = false, planOutput: PlanOutput = .none, geometry: SinkhornGeometryKind? = nil,
                byteBudget: Double, progress: EntropicProgressObserver? = nil) throws {
        let kind = geometry ?? .automatic(sourceCount: problem.source.count, targetCount: problem.target.count,
                                          dimension: problem.dimension, byteBudget: byteBudget, divergence: divergence)
        self.geometry = kind
        switch kind {
        case .dense:
            var solver = try SinkhornSolver(epsilon: epsilon, tolerance: tolerance, maxIterations: maxIterations,
                                            planOutput: planOutput)
            solver.progress = progress
            if divergence {
                let d = try SinkhornDivergence(solver: solver).evaluate(problem)
                result = d.cross
                self.divergence = d.divergence
            } else {
                result = try solver.solve(problem)
                self.divergence = nil
            }
        case .online:
            // Newton-CG steps where the scaling iterations slow down: without them the online
            // cross term stalls on isolated pairs (high D, small eps; Benchmarks 2.3), where the
            // dense solver has its own Newton steps.
            var parameters = try EntropicParameters(epsilon: epsilon, tolerance: tolerance, maxIterations: maxIterations)
            parameters.usesNewtonSteps = true
            if divergence {
                let d = try EntropicEngine.divergence(problem, parameters: parameters, geometry: EntropicEngine.online(),
                                                      progress: progress)
                result = d.cross.transportResult
                self.divergence = d.divergence
            } else {
                result = try EntropicEngine.solve(problem, parameters: parameters, geometry: EntropicEngine.online(),
                                                  progress: progress).transportResult
                self.divergence = nil
            }
            if planOutput.includesPlan, let potentials = result.potentials {
                // Row by row from the potentials: the plan is the only n x m object, and only on request.
                var minimumMass: Double? = nil
                if case .sparse(let threshold) = planOutput { minimumMass = threshold }
                result.plan = EntropicPlan.plan(problem, potentials: potentials, epsilon: epsilon, minimumMass: minimumMass)
            }
        case .multiscale:
            let parameters = try EntropicParameters(epsilon: epsilon, tolerance: tolerance, maxIterations: maxIterations)
            if divergence {
                let d = try EntropicEngine.divergenceMultiscale(problem, parameters: parameters, progress: progress)
                result = d.divergence.cross.transportResult
                self.divergence = d.divergence.divergence
                truncationChecks = d.checks
            } else {
                let solved = try EntropicEngine.solveMultiscale(problem, parameters: parameters, progress: progress)
                result = solved.output.transportResult
                self.divergence = nil
                truncationChecks = [solved.check]
            }
            if planOutput.includesPlan, let potentials = result.potentials {
                var minimumMass: Double? = nil
                if case .sparse(let threshold) = planOutput { minimumMass = threshold }
                result.plan = EntropicPlan.plan(problem, potentials: potentials, epsilon: epsilon, minimumMass: minimumMass)
            }
        }
    }
}
