import Foundation
import Testing
import Wasserstein

@Suite("Sinkhorn divergence and entropic gradients")
struct SinkhornDivergenceTests {
    @Test("S_eps(a, a) = 0, S_eps is symmetric and positive for different measures", arguments: [1.0, 0.1, 0.01, 0.001])
    func divergenceProperties(eps: Double) throws {
        let x = try EntropicTestClouds.gaussian(30, seed: 101, randomWeights: true)
        let y = try EntropicTestClouds.gaussian(22, seed: 102, shift: 0.4)
        let divergence = try SinkhornDivergence(epsilon: eps, tolerance: 1e-12, maxIterations: 100_000)
        let xy = try divergence.evaluate(TransportProblem(source: x, target: y))
        let yx = try divergence.evaluate(TransportProblem(source: y, target: x))
        let xx = try divergence.evaluate(TransportProblem(source: x, target: x))
        #expect(xy.converged && yx.converged && xx.converged)
        // Values are accurate to ~ marginal error * max|potential| ~ 1e-11 here.
        #expect(abs(xx.divergence) <= 1e-10, "S(a, a) = \(xx.divergence)")
        #expect(abs(xy.divergence - yx.divergence) <= 1e-10 * max(1, xy.divergence))
        #expect(xy.divergence > 1e-3)
        // Same support, other weights: still strictly positive.
        let reweighted = try x.reweighted(Array(x.weights.reversed()))
        let sameSupport = try divergence.evaluate(TransportProblem(source: x, target: reweighted))
        #expect(sameSupport.divergence > 1e-8, "eps \(eps): \(sameSupport.divergence)")
        #expect(sameSupport.marginalError <= 1e-12)
    }

    @Test("S_eps tends to W2^2 as eps -> 0, within the entropic bounds")
    func smallEpsilonLimit() throws {
        // OT_eps(a, b) lies in [W2^2, W2^2 + eps L_ab] and OT_eps(a, a) in [0, eps log(1/min a)]
        // (see the solver's small-eps test), so S_eps lies in
        // [W2^2 - eps (log(1/min a) + log(1/min b)) / 2, W2^2 + eps L_ab].
        for c in POTCase.all {
            let problem = try c.problem()
            let la = -log(c.a.min()!), lb = -log(c.b.min()!)
            for eps in [0.01, 0.001] {
                let result = try SinkhornDivergence(epsilon: eps, tolerance: 1e-12, maxIterations: 200_000).evaluate(problem)
                #expect(result.converged, "case \(c.index) eps \(eps)")
                let gap = result.divergence - c.w2SquaredExact
                #expect(gap <= eps * min(la, lb) + 1e-10, "case \(c.index) eps \(eps): gap \(gap)")
                #expect(gap >= -eps * (la + lb) / 2 - 1e-10, "case \(c.index) eps \(eps): gap \(gap)")
            }
        }
    }

    @Test("S_eps tends to |mean(a) - mean(b)|^2 as eps -> infinity")
    func largeEpsilonLimit() throws {
        // For the cost |x - y|^2 the eps -> infinity limit of S_eps is the energy distance
        // -(1/2) <a - b, C (a - b)> = |m_a - m_b|^2; the first correction is O(Var(C) / eps).
        let x = try EntropicTestClouds.gaussian(20, seed: 111)
        let y = try EntropicTestClouds.gaussian(15, seed: 112, shift: 0.8, randomWeights: true)
        let mx = x.mean, my = y.mean
        let meanGap = zip(mx, my).reduce(0.0) { $0 + ($1.0 - $1.1) * ($1.0 - $1.1) }
        var previous = Double.infinity
        for eps in [1e2, 1e3, 1e4, 1e5] {
            let s = try SinkhornDivergence(epsilon: eps, tolerance: 1e-13).evaluate(TransportProblem(source: x, target: y)).divergence
            let error = abs(s - meanGap)
            #expect(error <= 100 / eps, "eps \(eps): S \(s) vs \(meanGap)")
            #expect(error < previous)
            previous = error
        }
    }

    /// Central differences of `value(x)` in every coordinate of the source cloud.
    private func finiteDifferences(_ x: PointCloud, step h: Double, _ value: (PointCloud) throws -> Double) throws -> [Double] {
        var grad = [Double](repeating: 0, count: x.coordinates.count)
        for k in 0 ..< x.coordinates.count {
            var plus = x.coordinates, minus = x.coordinates
            plus[k] += h
            minus[k] -= h
            let fp = try value(PointCloud(coordinates: plus, dimension: x.dimension, weights: x.weights))
            let fm = try value(PointCloud(coordinates: minus, dimension: x.dimension, weights: x.weights))
            grad[k] = (fp - fm) / (2 * h)
        }
        return grad
    }

    @Test("The envelope gradient of OT_eps agrees with finite differences", arguments: [0.5, 0.05])
    func transportGradient(eps: Double) throws {
        let x = try EntropicTestClouds.gaussian(9, seed: 121, randomWeights: true)
        let y = try EntropicTestClouds.gaussian(7, seed: 122, shift: 0.5)
        let solver = try SinkhornSolver(epsilon: eps, tolerance: 1e-13, maxIterations: 100_000)
        let problem = try TransportProblem(source: x, target: y)
        let result = try solver.solve(problem)
        let analytic = try result.sourceGradient(problem: problem)
        // h = 1e-5: truncation h^2 |F'''| / 6 ~ 1e-10 / eps^2, solver noise ~1e-13 / h = 1e-8.
        let numeric = try finiteDifferences(x, step: 1e-5) { moved in
            try solver.solve(TransportProblem(source: moved, target: y)).entropic!.regularizedCost
        }
        for (g, fd) in zip(analytic, numeric) {
            #expect(abs(g - fd) <= 1e-6 + 1e-5 * abs(fd), "eps \(eps): analytic \(g) vs finite difference \(fd)")
        }
        // The same vector is 2 a_i (x_i - T(x_i)) with T the barycentric map of the plan.
        let plan = try solver.densePlan(problem, potentials: result.potentials!)
        for i in 0 ..< x.count {
            var rowMass = 0.0, bary = [0.0, 0.0]
            for j in 0 ..< y.count {
                rowMass += plan[i * y.count + j]
                for k in 0 ..< 2 { bary[k] += plan[i * y.count + j] * y.coordinates[2 * j + k] }
            }
            for k in 0 ..< 2 {
                let expected = 2 * rowMass * (x.coordinates[2 * i + k] - bary[k] / rowMass)
                #expect(abs(analytic[2 * i + k] - expected) <= 1e-12)
            }
        }
    }

    @Test("The gradient of S_eps agrees with finite differences", arguments: [0.5, 0.05])
    func divergenceGradient(eps: Double) throws {
        let x = try EntropicTestClouds.gaussian(8, seed: 131)
        let y = try EntropicTestClouds.gaussian(6, seed: 132, shift: 0.6, randomWeights: true)
        let divergence = try SinkhornDivergence(epsilon: eps, tolerance: 1e-13, maxIterations: 100_000)
        let result = try divergence.evaluate(TransportProblem(source: x, target: y), gradient: true)
        let analytic = try #require(result.sourceGradient)
        let numeric = try finiteDifferences(x, step: 1e-5) { moved in
            try divergence.evaluate(TransportProblem(source: moved, target: y)).divergence
        }
        for (g, fd) in zip(analytic, numeric) {
            #expect(abs(g - fd) <= 1e-6 + 1e-5 * abs(fd), "eps \(eps): analytic \(g) vs finite difference \(fd)")
        }
        // At a = b the divergence is minimal: its gradient vanishes.
        let atMinimum = try divergence.evaluate(TransportProblem(source: x, target: x), gradient: true)
        #expect(atMinimum.sourceGradient!.allSatisfy { abs($0) <= 1e-10 })
    }

    @Test("Warm-started divergence evaluations reproduce cold ones with fewer iterations")
    func warmStartedDivergence() throws {
        let y = try EntropicTestClouds.gaussian(25, seed: 141, shift: 0.3)
        let x0 = try EntropicTestClouds.gaussian(25, seed: 142)
        let divergence = try SinkhornDivergence(epsilon: 0.05, tolerance: 1e-11)
        let ws = SinkhornWorkspace()
        let first = try divergence.evaluate(TransportProblem(source: x0, target: y), gradient: false, warmStart: nil, workspace: ws)
        let x1 = try x0.translated(by: [0.005, 0.002])
        let problem = try TransportProblem(source: x1, target: y)
        let cold = try divergence.evaluate(problem)
        let warm = try divergence.evaluate(problem, gradient: false, warmStart: first.warmStart, workspace: ws)
        #expect(abs(warm.divergence - cold.divergence) <= 1e-9)
        #expect(warm.cross.iterations + warm.sourceSelf.iterations < cold.cross.iterations + cold.sourceSelf.iterations)
    }

    @Test("Invalid divergence parameters throw")
    func invalidParameters() {
        #expect(throws: WassersteinError.self) { try SinkhornDivergence(epsilon: 0) }
        #expect(throws: WassersteinError.self) { try SinkhornDivergence(epsilon: 0.1, tolerance: -1) }
        #expect(throws: WassersteinError.self) { try SinkhornDivergence(epsilon: 0.1, maxIterations: -3) }
    }
}
