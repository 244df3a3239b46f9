import Testing
@testable import Wasserstein

/// Every bad input reaches the caller as a typed error with a one-line message, never a trap,
/// a GLPK `exit()` or a NaN.
@Suite("Invalid input to the distance layer")
struct ExactInvalidInputTests {
    /// Runs `body`, expecting `expected`, and checks that the message is a single line.
    static func expectError<T>(_ expected: WassersteinError, sourceLocation: SourceLocation = #_sourceLocation,
                               _ body: () throws -> T) {
        do {
            _ = try body()
            Issue.record("expected \(expected), got a value", sourceLocation: sourceLocation)
        } catch let error as WassersteinError {
            #expect(error == expected, sourceLocation: sourceLocation)
            #expect(!error.description.contains("\n") && !error.description.isEmpty, sourceLocation: sourceLocation)
        } catch {
            Issue.record("unexpected error \(error)", sourceLocation: sourceLocation)
        }
    }

    /// Only checks the case of the error.
    static func expectErrorCase<T>(_ matches: (WassersteinError) -> Bool, sourceLocation: SourceLocation = #_sourceLocation,
                                   _ body: () throws -> T) {
        do {
            _ = try body()
            Issue.record("expected an error, got a value", sourceLocation: sourceLocation)
        } catch let error as WassersteinError {
            #expect(matches(error), "got \(error)", sourceLocation: sourceLocation)
            #expect(!error.description.contains("\n"), sourceLocation: sourceLocation)
        } catch {
            Issue.record("unexpected error \(error)", sourceLocation: sourceLocation)
        }
    }

    @Test("Point clouds: NaN and infinite coordinates, bad weights, zero mass, counts, empty")
    func pointClouds() {
        Self.expectError(.nonFiniteCoordinate(cloud: "x", point: 1, axis: 0)) {
            try PointCloud(points: [[0, 0], [.nan, 1]], name: "x")
        }
        Self.expectError(.nonFiniteCoordinate(cloud: "x", point: 0, axis: 1)) {
            try PointCloud(points: [[0, .infinity]], name: "x")
        }
        Self.expectError(.nonFiniteCoordinate(cloud: "x", point: 0, axis: 0)) {
            try PointCloud(values: [-.infinity], name: "x")
        }
        Self.expectError(.invalidWeight(cloud: "w", index: 1, value: -1)) {
            try PointCloud(values: [0, 1], weights: [1, -1], name: "w")
        }
        Self.expectErrorCase({ if case .invalidWeight(_, 0, let v) = $0 { v.isNaN } else { false } }) {
            try PointCloud(values: [0, 1], weights: [.nan, 1])
        }
        Self.expectError(.invalidWeight(cloud: "w", index: 0, value: .infinity)) {
            try PointCloud(values: [0], weights: [.infinity], name: "w")
        }
        Self.expectError(.zeroMass("z")) { try PointCloud(values: [0, 1], weights: [0, 0], name: "z") }
        Self.expectError(.weightCountMismatch(cloud: "c", points: 2, weights: 3)) {
            try PointCloud(values: [0, 1], weights: [1, 1, 1], name: "c")
        }
        Self.expectError(.emptyCloud("e")) { try PointCloud(points: [], name: "e") }
        Self.expectError(.emptyCloud("e")) { try PointCloud(coordinates: [], dimension: 2, name: "e") }
    }

    @Test("Problems: dimension mismatch, mass mismatch unless normalised")
    func problems() throws {
        let x = try PointCloud(points: [[0, 0], [1, 1]])
        let y3 = try PointCloud(points: [[0, 0, 0]])
        Self.expectError(.dimensionMismatch(expected: 2, actual: 3)) { try TransportProblem(source: x, target: y3) }
        let heavy = try PointCloud(points: [[0, 0]], weights: [2])
        Self.expectError(.massMismatch(source: 1, target: 2)) { try TransportProblem(source: x, target: heavy) }
        let normalized = try TransportProblem(source: x, target: heavy, massPolicy: .normalize)
        // After normalisation: the two unit half-masses both go to the origin.
        #expect(ExactTestSupport.close(try wasserstein2(normalized).cost, 1, relative: 1e-12))
    }

    @Test("Sorted with D > 1 is unsupported, through the solver and through wasserstein2")
    func sortedNeedsOneDimension() throws {
        let x = try PointCloud(points: [[0, 0], [1, 1]])
        let p = try TransportProblem(source: x, target: x)
        Self.expectErrorCase({ if case .unsupported = $0 { true } else { false } }) { try SortedSolver().solve(p) }
        Self.expectErrorCase({ if case .unsupported = $0 { true } else { false } }) { try wasserstein2(p, method: .sorted) }
    }

    @Test("Exact solvers: overflowing costs, bad options, bad weights for the matrix entry")
    func solverInputs() throws {
        // Finite coordinates whose squared differences overflow to infinity.
        let huge = try PointCloud(points: [[1e200, 0]]), tiny = try PointCloud(points: [[-1e200, 0]])
        Self.expectErrorCase({ if case .invalidParameter = $0 { true } else { false } }) {
            try NetworkSimplexSolver().solve(try TransportProblem(source: huge, target: tiny))
        }
        Self.expectErrorCase({ if case .invalidParameter = $0 { true } else { false } }) {
            try LinearProgramSolver().solve(try TransportProblem(source: huge, target: tiny))
        }
        let hugeLine = try PointCloud(values: [1e200]), tinyLine = try PointCloud(values: [-1e200, 0])
        for plan in [true, false] {
            Self.expectErrorCase({ if case .invalidParameter = $0 { true } else { false } }) {
                try SortedSolver(planOutput: plan ? .full : .none).solve(try TransportProblem(source: hugeLine, target: tinyLine))
            }
        }
        Self.expectErrorCase({ if case .invalidParameter = $0 { true } else { false } }) {
            try GaussianMeasure(mean: [1e200], covariance: [1]).squaredDistance(to: try GaussianMeasure(mean: [-1e200], covariance: [1]))
        }
        let x = try ExactTestSupport.gaussianCloud(6, dimension: 2, seed: 1)
        let p = try TransportProblem(source: x, target: x)
        for solver in [NetworkSimplexSolver(maximumPivots: -1), NetworkSimplexSolver(blockSize: 0),
                       NetworkSimplexSolver(relativeTolerance: .nan), NetworkSimplexSolver(relativeTolerance: 0.5)] {
            Self.expectErrorCase({ if case .invalidParameter = $0 { true } else { false } }) { try solver.solve(p) }
        }
        let c = try SquaredEuclideanCost.matrix(source: x, target: x)
        let u = x.weights
        for solve in [{ (a: [Double], b: [Double]) in try NetworkSimplexSolver().solve(costs: c, sourceWeights: a, targetWeights: b) },
                      { (a: [Double], b: [Double]) in try LinearProgramSolver().solve(costs: c, sourceWeights: a, targetWeights: b) }] {
            Self.expectError(.weightCountMismatch(cloud: "source weights", points: 6, weights: 5)) { try solve(Array(u.prefix(5)), u) }
            Self.expectError(.invalidWeight(cloud: "target weights", index: 2, value: -0.5)) {
                try solve(u, [0.5, 0.5, -0.5, 0.5, 0, 0])
            }
            Self.expectError(.zeroMass("source weights")) { try solve([Double](repeating: 0, count: 6), u) }
            Self.expectErrorCase({ if case .massMismatch = $0 { true } else { false } }) { try solve(u, u.map { 2 * $0 }) }
        }
        Self.expectErrorCase({ if case .invalidParameter = $0 { true } else { false } }) {
            try CostMatrix(rows: 1, columns: 2, values: [0, .nan])
        }
        Self.expectErrorCase({ if case .malformedShape = $0 { true } else { false } }) {
            try CostMatrix(rows: 2, columns: 2, values: [0, 1, 2])
        }
    }

    @Test("GLPK: size guard, bad options, its own limits become solverFailure")
    func linearProgram() throws {
        let x = try ExactTestSupport.gaussianCloud(30, dimension: 2, seed: 2)
        let y = try ExactTestSupport.gaussianCloud(30, dimension: 2, seed: 3, shift: 1)
        let p = try TransportProblem(source: x, target: y)
        let small = LinearProgramSolver(maximumSize: 899)
        #expect(!small.accepts(sourceCount: 30, targetCount: 30))
        #expect(LinearProgramSolver().accepts(sourceCount: 30, targetCount: 30))
        #expect(!LinearProgramSolver().accepts(sourceCount: 1000, targetCount: 1000))
        Self.expectErrorCase({ if case .tooLarge(let m) = $0 { m.contains("exact") } else { false } }) { try small.solve(p) }
        Self.expectErrorCase({ if case .invalidParameter = $0 { true } else { false } }) {
            try LinearProgramSolver(iterationLimit: 0).solve(p)
        }
        Self.expectErrorCase({ if case .invalidParameter = $0 { true } else { false } }) {
            try LinearProgramSolver(timeLimit: -1).solve(p)
        }
        Self.expectErrorCase({ if case .solverFailure(let m) = $0 { m.contains("GLP_EITLIM") } else { false } }) {
            try LinearProgramSolver(iterationLimit: 2).solve(p)
        }
    }

    @Test("Gaussians: shapes, non-finite values, asymmetric or indefinite covariance, dimensions")
    func gaussians() throws {
        Self.expectErrorCase({ if case .malformedShape = $0 { true } else { false } }) { try GaussianMeasure(mean: [], covariance: []) }
        Self.expectErrorCase({ if case .malformedShape = $0 { true } else { false } }) {
            try GaussianMeasure(mean: [0, 0], covariance: [1, 0, 1])
        }
        Self.expectErrorCase({ if case .invalidParameter = $0 { true } else { false } }) { try GaussianMeasure(mean: [.nan], covariance: [1]) }
        Self.expectErrorCase({ if case .invalidParameter = $0 { true } else { false } }) {
            try GaussianMeasure(mean: [0], covariance: [.infinity])
        }
        Self.expectErrorCase({ if case .invalidParameter = $0 { true } else { false } }) {
            try GaussianMeasure(mean: [0, 0], covariance: [1, 0.5, 0.4, 1])
        }
        Self.expectErrorCase({ if case .invalidParameter = $0 { true } else { false } }) {
            try GaussianMeasure(mean: [0, 0], covariance: [1, 2, 2, 1])
        }
        Self.expectErrorCase({ if case .invalidParameter = $0 { true } else { false } }) { try GaussianMeasure(mean: [0], covariance: [-1]) }
        let a = try GaussianMeasure(mean: [0], covariance: [1])
        let b = try GaussianMeasure(mean: [0, 0], covariance: [1, 0, 0, 1])
        Self.expectError(.dimensionMismatch(expected: 1, actual: 2)) { try a.squaredDistance(to: b) }
        // Positive semi-definite but singular is fine.
        #expect(try GaussianMeasure(mean: [0, 0], covariance: [1, 1, 1, 1]).squaredDistance(to: b) >= 0)
    }
}
