import Testing
@testable import Wasserstein

/// The plan-based gradient of W2^2 in the source points against central finite differences.
@Suite("Gradient of W2^2 in the source points")
struct TransportGradientTests {
    /// Central differences of `W2^2` in every source coordinate.
    static func finiteDifferences(_ x: PointCloud, _ y: PointCloud, method: TransportMethod, step h: Double) throws -> [Double] {
        var result = [Double](repeating: 0, count: x.coordinates.count)
        for k in 0 ..< x.coordinates.count {
            var plus = x.coordinates, minus = x.coordinates
            plus[k] += h
            minus[k] -= h
            let fp = try wasserstein2(try TransportProblem(source: try PointCloud(coordinates: plus, dimension: x.dimension, weights: x.weights),
                                                           target: y), method: method).cost
            let fm = try wasserstein2(try TransportProblem(source: try PointCloud(coordinates: minus, dimension: x.dimension, weights: x.weights),
                                                           target: y), method: method).cost
            result[k] = (fp - fm) / (2 * h)
        }
        return result
    }

    // Generic positions and weights make the optimal plan unique and locally constant, so
    // W2^2 is differentiable there and central differences with h = 1e-6 are exact up to
    // round-off of order eps * |C| / h ~ 1e-9: tolerance 1e-6 of the gradient scale.
    @Test("Plan gradient equals finite differences (unique plan)", arguments: [TransportMethod.exact, .lp, .sorted])
    func matchesFiniteDifferences(method: TransportMethod) throws {
        let d = method == .sorted ? 1 : 2
        let x = try ExactTestSupport.gaussianCloud(7, dimension: d, seed: 80, randomWeights: true).normalized()
        let y = try ExactTestSupport.gaussianCloud(9, dimension: d, seed: 81, shift: 0.5, randomWeights: true).normalized()
        let problem = try TransportProblem(source: x, target: y)
        let result = try wasserstein2(problem, method: method, planOutput: .full)
        let gradient = try result.sourceGradient(problem: problem)
        let numeric = try Self.finiteDifferences(x, y, method: method, step: 1e-6)
        let scale = gradient.map(abs).max()!
        for k in 0 ..< gradient.count {
            #expect(abs(gradient[k] - numeric[k]) <= 1e-6 * scale, "coordinate \(k): \(gradient[k]) vs \(numeric[k])")
        }
    }

    // Summing the gradient over the source points gives 2 (sum_i a_i x_i - sum_j b_j y_j),
    // the derivative of W2^2 under a common translation of all source points.
    @Test("Gradient sums to twice the difference of the first moments")
    func sumRule() throws {
        let x = try ExactTestSupport.gaussianCloud(25, dimension: 3, seed: 82, randomWeights: true).normalized()
        let y = try ExactTestSupport.gridCloud(18, dimension: 3, side: 3, seed: 83).normalized()
        let problem = try TransportProblem(source: x, target: y)
        let gradient = try wasserstein2(problem, planOutput: .full).sourceGradient(problem: problem)
        let mx = x.mean, my = y.mean
        for k in 0 ..< 3 {
            var s = 0.0
            for i in 0 ..< x.count { s += gradient[i * 3 + k] }
            #expect(abs(s - 2 * (mx[k] - my[k])) <= 1e-12)
        }
    }

    @Test("A result without a plan cannot be differentiated")
    func noPlan() throws {
        let x = try ExactTestSupport.gaussianCloud(5, dimension: 2, seed: 84)
        let problem = try TransportProblem(source: x, target: x)
        let r = try GaussianMomentSolver().solve(problem)
        #expect(throws: WassersteinError.self) { try r.sourceGradient(problem: problem) }
        let other = try TransportProblem(source: try ExactTestSupport.gaussianCloud(6, dimension: 2, seed: 85), target: x)
        let exact = try wasserstein2(problem, planOutput: .full)
        // Without a plan, an exact result has nothing to differentiate.
        #expect(throws: WassersteinError.self) { try wasserstein2(problem).sourceGradient(problem: problem) }
        #expect(throws: WassersteinError.self) { try exact.sourceGradient(problem: other) }
    }
}
