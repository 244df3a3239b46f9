import Testing
@testable import Wasserstein

/// Finite but extreme input (issue 10): coordinates whose squared distances overflow, epsilon
/// tiny against the cost range, subnormal and huge weights. Each gives a typed error or the
/// answer of the same problem at a normal scale, never a hang, a trap or a silent wrong value.
@Suite("Extreme but finite input")
struct ExtremeInputTests {
    /// Subnormal values, parsed at run time (a literal would draw an underflow warning).
    static let subnormal = Double("1e-320")!, subnormalTriple = Double("3e-320")!

    static func isRangeError(_ error: Error) -> Bool {
        guard case WassersteinError.invalidParameter(let name, let value, _) = error else { return false }
        return name == "squared coordinate range" && value == .infinity
            && !(error as! WassersteinError).description.contains("\n")
    }

    static func isParameterError(_ error: Error, named name: String) -> Bool {
        guard case WassersteinError.invalidParameter(let n, _, _) = error else { return false }
        return n == name
    }

    @Test("Sinkhorn refuses squared distances that overflow (a point at 1e155 or 1e308), at every entry point",
          arguments: [1e155, 1e308, -1e308])
    func overflowingCoordinates(_ far: Double) throws {
        let x = try PointCloud(points: [[0, 0], [1, 0], [far, 0]])
        let y = try PointCloud(points: [[0, 1], [1, 1], [2, 1.5]])
        let problem = try TransportProblem(source: x, target: y)
        let solver = try SinkhornSolver(epsilon: 0.1)
        // Before the check, the epsilon schedule started at an infinite bound and never ended.
        #expect(performing: { try solver.solve(problem) }, throws: Self.isRangeError)
        #expect(performing: { try solver.solveSelf(x) }, throws: Self.isRangeError)
        #expect(performing: { try SinkhornDivergence(epsilon: 0.1).evaluate(problem, gradient: true) }, throws: Self.isRangeError)
        let potentials = DualPotentials(f: [0, 0, 0], g: [0, 0, 0])
        #expect(performing: {
            try TransportResult(method: .sinkhorn(epsilon: 0.1), status: .converged, cost: 0, potentials: potentials,
                                entropic: EntropicDiagnostics(epsilon: 0.1, regularizedCost: 0, marginalError: 0)).sourceGradient(problem: problem)
        }, throws: Self.isRangeError)
        #expect(performing: { try solver.densePlan(problem, potentials: potentials) }, throws: Self.isRangeError)
        // The exact solvers refuse the same problems with the same error.
        #expect(performing: { try NetworkSimplexSolver().solve(problem) }, throws: Self.isRangeError)
    }

    @Test("Sinkhorn refuses an epsilon too small for the cost range: range / eps above 1e15")
    func epsilonTooSmallForRange() throws {
        // Squared diameter 1e300: eps = 1 (ratio 1e300) used to end in NaN or in a plan of
        // overflowing entries; eps = 1e286 (ratio 1e14) is still accepted.
        let x = try PointCloud(points: [[0, 0], [1, 0], [1e150, 0]])
        let y = try PointCloud(points: [[0, 1], [1, 1], [2, 1.5]])
        let problem = try TransportProblem(source: x, target: y)
        for eps in [1e-300, 1.0, 1e100, 1e280] {
            let solver = try SinkhornSolver(epsilon: eps)
            #expect(performing: { try solver.solve(problem) }, throws: { Self.isParameterError($0, named: "epsilon") })
        }
        let result = try SinkhornSolver(epsilon: 1e286).solve(problem)
        #expect(result.cost.isFinite && result.entropic!.regularizedCost.isFinite)
        let upper = try SquaredEuclideanCost.matrix(source: x, target: y).maximum
        #expect(result.cost >= 0 && result.cost <= upper)
    }

    @Test("Costs near the top of the Double range give the unit-scale answer times the scale")
    func scaleCovariance() throws {
        // Coordinates times 2^500: costs times 2^1000 (~1e301), epsilon likewise. Powers of two
        // scale exactly, so the plan, and the costs divided by the scale, must agree closely.
        let x = try EntropicTestClouds.gaussian(12, seed: 3, randomWeights: true)
        let y = try EntropicTestClouds.gaussian(9, seed: 4, shift: 0.5, randomWeights: true)
        let s = 0x1p500, s2 = 0x1p1000
        let bigX = try PointCloud(coordinates: x.coordinates.map { $0 * s }, dimension: 2, weights: x.weights)
        let bigY = try PointCloud(coordinates: y.coordinates.map { $0 * s }, dimension: 2, weights: y.weights)
        let unit = try TransportProblem(source: x, target: y)
        let big = try TransportProblem(source: bigX, target: bigY)
        for eps in [0.5, 0.05] {
            let a = try SinkhornSolver(epsilon: eps, planOutput: .full).solve(unit)
            let b = try SinkhornSolver(epsilon: eps * s2, planOutput: .full).solve(big)
            #expect(b.converged && a.converged)
            #expect(abs(b.cost / s2 - a.cost) <= 1e-12 * a.cost)
            #expect(abs(b.entropic!.regularizedCost / s2 - a.entropic!.regularizedCost) <= 1e-12 * abs(a.entropic!.regularizedCost))
            for (p, q) in zip(a.plan!.entries, b.plan!.entries) { #expect(abs(p.mass - q.mass) <= 1e-12) }
            for (f, g) in zip(a.potentials!.f, b.potentials!.f) { #expect(abs(g / s2 - f) <= 1e-9) }
            let da = try SinkhornDivergence(epsilon: eps).evaluate(unit, gradient: true)
            let db = try SinkhornDivergence(epsilon: eps * s2).evaluate(big, gradient: true)
            #expect(abs(db.divergence / s2 - da.divergence) <= 1e-10 * abs(da.divergence) + 1e-14)
            // The gradient of a cost is in units of cost / length: times 2^500.
            for (g, h) in zip(da.sourceGradient!, db.sourceGradient!) { #expect(abs(h / s - g) <= 1e-8) }
        }
    }

    @Test("A schedule factor close to 1 stops at the iteration cap instead of building millions of stages")
    func scheduleBounded() throws {
        let x = try EntropicTestClouds.gaussian(6, seed: 5)
        let y = try EntropicTestClouds.gaussian(5, seed: 6, shift: 1)
        let problem = try TransportProblem(source: x, target: y)
        // From the squared diameter (~10) down to 1e-3 by factors 0.999999: ~9 million stages.
        let solver = try SinkhornSolver(epsilon: 1e-3, maxIterations: 40,
                                        epsilonScaling: .geometric(factor: 0.999_999, iterationsPerStage: 1))
        let workspace = SinkhornWorkspace()
        let result = try solver.solve(problem, warmStart: nil, workspace: workspace)
        #expect(result.iterations <= 40)
        #expect(workspace.lastStatistics.stages <= 42)
        #expect(result.cost.isFinite)
    }

    @Test("Sinkhorn refuses total masses outside 1e-100 ... 1e100 and is mass-covariant inside",
          arguments: [1e-60, 1e-3, 1e60])
    func sinkhornMasses(_ mass: Double) throws {
        let x = try EntropicTestClouds.gaussian(8, seed: 7, randomWeights: true)
        let y = try EntropicTestClouds.gaussian(7, seed: 8, shift: 0.3, randomWeights: true)
        let reference = try SinkhornSolver(epsilon: 0.1).solve(try TransportProblem(source: x, target: y))
        let scaled = try TransportProblem(source: x.reweighted(x.weights.map { $0 * mass }),
                                          target: y.reweighted(y.weights.map { $0 * mass }))
        let result = try SinkhornSolver(epsilon: 0.1).solve(scaled)
        // The transport cost is linear in the mass (the plan scales with it).
        #expect(abs(result.cost / mass - reference.cost) <= 1e-6 * reference.cost)
        for tiny in [Self.subnormalTriple, 1e-101, 1e101] {
            let bad = try TransportProblem(source: x.reweighted(x.weights.map { $0 * tiny }),
                                           target: y.reweighted(y.weights.map { $0 * tiny }))
            #expect(performing: { try SinkhornSolver(epsilon: 0.1).solve(bad) },
                    throws: { Self.isParameterError($0, named: "total mass") })
        }
    }

    /// Points and weights whose W2^2 is known: uniform-like weights 1, 2, 3 on both sides.
    static let source = [[0.0, 0], [1, 0], [2, 0]]
    static let target = [[0.0, 1], [1, 1], [2, 1.5]]
    static let oneDimensionalSource = [0.0, 1, 2]
    static let oneDimensionalTarget = [1.0, 1, 1.5]

    @Test("Subnormal, tiny and huge weights with normalisation give the answer of normal weights, for every method",
          arguments: [0x1p-1074 * 2023, Self.subnormal, 1e-300, 1e-12, 1e100, 1e300])
    func normalisedWeights(_ unit: Double) throws {
        let wx = [1.0, 2, 3].map { $0 * unit }, wy = [3.0, 1, 2].map { $0 * unit }
        let normal = try TransportProblem(source: PointCloud(points: Self.source, weights: [1, 2, 3]),
                                          target: PointCloud(points: Self.target, weights: [3, 1, 2]),
                                          massPolicy: .normalize)
        let extreme = try TransportProblem(source: PointCloud(points: Self.source, weights: wx),
                                           target: PointCloud(points: Self.target, weights: wy),
                                           massPolicy: .normalize)
        #expect(abs(extreme.source.mass - 1) <= 1e-15 && abs(extreme.target.mass - 1) <= 1e-15)
        for method in [TransportMethod.exact, .lp] {
            let expected = try wasserstein2(normal, method: method).cost
            #expect(abs(try wasserstein2(extreme, method: method).cost - expected) <= 1e-9 * expected, "\(method)")
        }
        let sinkhorn = try SinkhornSolver(epsilon: 0.05)
        let expected = try sinkhorn.solve(normal).cost
        #expect(abs(try sinkhorn.solve(extreme).cost - expected) <= 1e-9 * expected)

        let normal1 = try TransportProblem(source: PointCloud(values: Self.oneDimensionalSource, weights: [1, 2, 3]),
                                           target: PointCloud(values: Self.oneDimensionalTarget, weights: [3, 1, 2]),
                                           massPolicy: .normalize)
        let extreme1 = try TransportProblem(source: PointCloud(values: Self.oneDimensionalSource, weights: wx),
                                            target: PointCloud(values: Self.oneDimensionalTarget, weights: wy),
                                            massPolicy: .normalize)
        let sorted = try SortedSolver().solve(normal1).cost
        #expect(abs(try SortedSolver().solve(extreme1).cost - sorted) <= 1e-12 * sorted)
        #expect(abs(try NetworkSimplexSolver().solve(extreme1).cost - sorted) <= 1e-9 * sorted)
    }

    @Test("The issue's case: three weights of 1e-320 with normalisation give W2^2 = 1.75 (exact, lp, sorted, sinkhorn)")
    func issueCase() throws {
        let w = [Double](repeating: Self.subnormal, count: 3)
        let x = try PointCloud(values: [0, 1, 2], weights: w), y = try PointCloud(values: [0.5, 2, 4], weights: w)
        let problem = try TransportProblem(source: x, target: y, massPolicy: .normalize)
        // Monotone coupling of equal weights: (0.25 + 1 + 4) / 3 = 1.75.
        let expected = 1.75
        for method in [TransportMethod.exact, .lp, .sorted] {
            #expect(abs(try wasserstein2(problem, method: method).cost - expected) <= 1e-12, "\(method)")
        }
        // Sinkhorn's transport cost exceeds W2^2 by O(eps) at small eps.
        let entropic = try SinkhornSolver(epsilon: 1e-3).solve(problem).cost
        #expect(entropic >= expected - 1e-9 && entropic <= expected + 1e-2)
    }

    @Test("Without normalisation, tiny equal masses give mass times the unit answer (exact, lp, sorted)",
          arguments: [Self.subnormal, 1e-200, 1e-12])
    func tinyMasses(_ unit: Double) throws {
        let wx = [1.0, 2, 3].map { $0 * unit }, wy = [3.0, 1, 2].map { $0 * unit }
        let reference = try TransportProblem(source: PointCloud(points: Self.source, weights: [1, 2, 3]),
                                             target: PointCloud(points: Self.target, weights: [3, 1, 2]))
        let problem = try TransportProblem(source: PointCloud(points: Self.source, weights: wx),
                                           target: PointCloud(points: Self.target, weights: wy))
        // A subnormal result carries only the digits the subnormal range has.
        let tolerance = unit < 1e-300 ? 1e-3 : 1e-9
        for method in [TransportMethod.exact, .lp] {
            let expected = try wasserstein2(reference, method: method).cost * unit
            // GLPK's absolute tolerances made this 70% too large at unit = 1e-12.
            #expect(abs(try wasserstein2(problem, method: method).cost - expected) <= tolerance * expected, "\(method)")
        }
        let reference1 = try TransportProblem(source: PointCloud(values: Self.oneDimensionalSource, weights: [1, 2, 3]),
                                              target: PointCloud(values: Self.oneDimensionalTarget, weights: [3, 1, 2]))
        let problem1 = try TransportProblem(source: PointCloud(values: Self.oneDimensionalSource, weights: wx),
                                            target: PointCloud(values: Self.oneDimensionalTarget, weights: wy))
        let expected = try SortedSolver().solve(reference1).cost * unit
        #expect(abs(try SortedSolver().solve(problem1).cost - expected) <= tolerance * expected)
    }

    @Test("Mean and covariance do not depend on the scale of the weights")
    func momentsOfTinyWeights() throws {
        let points = [[0.0, 1], [2, -1], [3, 5]]
        let normal = try PointCloud(points: points, weights: [1, 2, 3])
        let tiny = try PointCloud(points: points, weights: [1, 2, 3].map { $0 * Self.subnormal })
        for (a, b) in zip(normal.mean, tiny.mean) { #expect(abs(a - b) <= 1e-12 * max(1, abs(a))) }
        for (a, b) in zip(normal.covariance, tiny.covariance) { #expect(abs(a - b) <= 1e-12 * max(1, abs(a))) }
        // Weights whose sum overflows are refused with a message, not reported as zero mass.
        #expect(performing: { try PointCloud(values: [0, 1], weights: [1e308, 1e308]) },
                throws: { Self.isParameterError($0, named: "total mass of point cloud") })
    }
}
