import Testing
@testable import Wasserstein

/// The network simplex workspace restarts from its previous basis when only positions move.
@Suite("Network simplex warm start")
struct WarmStartTests {
    /// The cloud with every coordinate moved by `size` times a standard normal draw.
    static func perturbed(_ c: PointCloud, size: Double, seed: UInt64) throws -> PointCloud {
        var g = Xoshiro256StarStar(seed: seed)
        return try PointCloud(coordinates: c.coordinates.map { $0 + size * g.nextGaussian() }, dimension: c.dimension, weights: c.weights)
    }

    // The warm and cold answers are optimal for the same LP: equal costs to 1e-12 relative
    // (both stop at reduced costs above -1e-12 max C).
    @Test("Warm solves of perturbed problems equal cold solves", arguments: [NetworkSimplexSolver.InitialBasis.greedy, .artificial])
    func warmEqualsCold(basis: NetworkSimplexSolver.InitialBasis) throws {
        let solver = NetworkSimplexSolver(initialBasis: basis)
        let workspace = NetworkSimplexWorkspace(solver: solver)
        var x = try ExactTestSupport.gaussianCloud(60, dimension: 2, seed: 90, randomWeights: true)
        let y = try ExactTestSupport.gaussianCloud(45, dimension: 2, seed: 91, shift: 1, randomWeights: true)
        let first = try workspace.solve(try TransportProblem(source: x, target: y, massPolicy: .normalize))
        #expect(!workspace.lastSolveWasWarmStarted)
        var warmPivots = 0, coldPivots = 0
        for step in 0 ..< 5 {
            x = try Self.perturbed(x, size: 0.01, seed: 92 + UInt64(step))
            let problem = try TransportProblem(source: x, target: y, massPolicy: .normalize)
            let warm = try workspace.solve(problem)
            #expect(workspace.lastSolveWasWarmStarted)
            let cold = try solver.solve(problem)
            #expect(warm.status == .optimal)
            #expect(ExactTestSupport.close(warm.cost, cold.cost, relative: 1e-12), "step \(step): \(warm.cost) vs \(cold.cost)")
            ExactTestSupport.expectCoupling(warm, problem, tolerance: 1e-12)
            ExactTestSupport.expectOptimalDuals(warm, problem, tolerance: 1e-11)
            warmPivots += warm.iterations
            coldPivots += cold.iterations
        }
        // Small moves keep most of the optimal basis: far fewer pivots than from scratch.
        #expect(warmPivots * 3 < coldPivots, "warm \(warmPivots) vs cold \(coldPivots) pivots")
        #expect(first.iterations > 0)
    }

    @Test("Changed weights or sizes start cold and still solve correctly")
    func coldWhenWeightsChange() throws {
        let workspace = NetworkSimplexWorkspace()
        let x = try ExactTestSupport.gaussianCloud(30, dimension: 2, seed: 93)
        let y = try ExactTestSupport.gaussianCloud(30, dimension: 2, seed: 94, shift: 1)
        _ = try workspace.solve(try TransportProblem(source: x, target: y))
        let reweighted = try x.reweighted((0 ..< 30).map { 1 + Double($0 % 2) }).normalized()
        let p2 = try TransportProblem(source: reweighted, target: y)
        let r2 = try workspace.solve(p2)
        #expect(!workspace.lastSolveWasWarmStarted)
        #expect(ExactTestSupport.close(r2.cost, try LinearProgramSolver().solve(p2).cost, relative: 1e-9))
        let p3 = try TransportProblem(source: try ExactTestSupport.gaussianCloud(31, dimension: 2, seed: 95), target: y)
        let r3 = try workspace.solve(p3)
        #expect(!workspace.lastSolveWasWarmStarted)
        #expect(ExactTestSupport.close(r3.cost, try LinearProgramSolver().solve(p3).cost, relative: 1e-9))
        // Same problem again: warm, zero pivots (the basis is already optimal).
        let again = try workspace.solve(p3)
        #expect(workspace.lastSolveWasWarmStarted)
        #expect(again.iterations == 0)
        #expect(again.cost == r3.cost)
        workspace.reset()
        _ = try workspace.solve(p3)
        #expect(!workspace.lastSolveWasWarmStarted)
    }

    @Test("Warm start after a pivot cap finishes the job")
    func resumeAfterCap() throws {
        let problem = try TransportProblem(source: try ExactTestSupport.gaussianCloud(40, dimension: 3, seed: 96),
                                           target: try ExactTestSupport.gaussianCloud(40, dimension: 3, seed: 97, shift: 1))
        let workspace = NetworkSimplexWorkspace(solver: NetworkSimplexSolver(maximumPivots: 3))
        let capped = try workspace.solve(problem)
        #expect(capped.status == .iterationLimit)
        workspace.solver.maximumPivots = nil
        let finished = try workspace.solve(problem)
        #expect(workspace.lastSolveWasWarmStarted)
        #expect(finished.status == .optimal)
        let cold = try NetworkSimplexSolver().solve(problem)
        #expect(ExactTestSupport.close(finished.cost, cold.cost, relative: 1e-12))
        #expect(finished.iterations + capped.iterations >= 3)
    }

    @Test("Warm start through the cost-matrix entry")
    func costMatrixWarmStart() throws {
        let x = try ExactTestSupport.gaussianCloud(25, dimension: 2, seed: 98)
        let y = try ExactTestSupport.gaussianCloud(20, dimension: 2, seed: 99)
        let workspace = NetworkSimplexWorkspace()
        let c1 = try SquaredEuclideanCost.matrix(source: x, target: y)
        _ = try workspace.solve(costs: c1, sourceWeights: x.weights, targetWeights: y.weights)
        let x2 = try Self.perturbed(x, size: 0.05, seed: 100)
        let c2 = try SquaredEuclideanCost.matrix(source: x2, target: y)
        let warm = try workspace.solve(costs: c2, sourceWeights: x.weights, targetWeights: y.weights)
        #expect(workspace.lastSolveWasWarmStarted)
        let reference = try LinearProgramSolver().solve(costs: c2, sourceWeights: x.weights, targetWeights: y.weights)
        #expect(ExactTestSupport.close(warm.cost, reference.cost, relative: 1e-9))
    }
}
