import Foundation
import Testing
import Wasserstein

@Suite("Sinkhorn against the exact network simplex")
struct SinkhornExactLimitTests {
    @Test("The entropic costs bracket the exact W2^2 and close in on it as eps -> 0",
          arguments: [(40, 30, UInt64(1)), (25, 25, UInt64(2)), (50, 20, UInt64(3))])
    func approachesExact(n: Int, m: Int, seed: UInt64) throws {
        let x = try EntropicTestClouds.gaussian(n, seed: 1000 + seed, randomWeights: true)
        let y = try EntropicTestClouds.gaussian(m, seed: 2000 + seed, shift: 0.6, randomWeights: true)
        let problem = try TransportProblem(source: x, target: y)
        let exact = try NetworkSimplexSolver().solve(problem)
        #expect(exact.status == .optimal)
        let w = exact.cost
        // W2^2 <= <P_eps, C> <= OT_eps <= W2^2 + eps L with L = min(log 1/min a, log 1/min b)
        // (an exact plan P* has P*_ij <= min(a_i, b_j), so KL(P* | a (x) b) <= L), up to the
        // effect of the marginal error (<= 1e-11 * max C here).
        let bound = min(-log(x.weights.min()!), -log(y.weights.min()!))
        let maxCost = try SquaredEuclideanCost.matrix(source: x, target: y).maximum
        var previousGap = Double.infinity
        for eps in [0.3, 0.1, 0.03, 0.01, 0.003, 0.001] {
            let result = try SinkhornSolver(epsilon: eps, tolerance: 1e-11, maxIterations: 200_000).solve(problem)
            #expect(result.converged, "eps \(eps): error \(result.entropic!.marginalError)")
            let slack = 1e-11 * maxCost
            let transport = result.cost, regularized = result.entropic!.regularizedCost
            #expect(transport >= w - slack, "eps \(eps)")
            #expect(regularized <= w + eps * bound + slack, "eps \(eps)")
            #expect(transport <= regularized + slack)
            let gap = transport - w
            #expect(gap <= previousGap + slack, "eps \(eps): gap \(gap) after \(previousGap)")
            previousGap = gap
        }
        // Measured: at eps = 0.001 the gap is a few 1e-4 of W2^2 on these clouds.
        #expect(previousGap <= 5e-3 * w)
    }

    @Test("At small eps the entropic gradient approaches the exact W2^2 gradient")
    func gradientLimit() throws {
        let x = try EntropicTestClouds.gaussian(20, seed: 3001)
        let y = try EntropicTestClouds.gaussian(20, seed: 3002, shift: 0.5)
        let problem = try TransportProblem(source: x, target: y)
        let exactGradient = try NetworkSimplexSolver().solve(problem).sourceGradient(problem: problem)
        var previous = Double.infinity
        for eps in [0.1, 0.01, 0.001] {
            let solver = try SinkhornSolver(epsilon: eps, tolerance: 1e-11, maxIterations: 200_000)
            let result = try solver.solve(problem)
            let gradient = try result.sourceGradient(problem: problem)
            let difference = zip(gradient, exactGradient).reduce(0.0) { $0 + abs($1.0 - $1.1) }
            #expect(difference < previous, "eps \(eps): \(difference)")
            previous = difference
        }
        // With uniform weights and points in general position the exact plan is a unique
        // permutation, so the entropic plan converges to it: the L1 gap is small at eps = 1e-3.
        let scale = exactGradient.reduce(0.0) { $0 + abs($1) }
        #expect(previous <= 0.05 * scale)
    }
}
