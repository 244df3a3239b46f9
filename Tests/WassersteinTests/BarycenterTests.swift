import Foundation
import Testing
@testable import Wasserstein

@Suite("Free-support W2 barycenter")
struct BarycenterTests {
    @Test("1-D: the barycenter's quantile function is the weighted average of the inputs' quantile functions")
    func quantileAverage() throws {
        var g = Xoshiro256StarStar(seed: 12)
        let n = 8
        let first = (0 ..< n).map { _ in g.nextGaussian() }
        let second = (0 ..< 2 * n).map { _ in 3 + 2 * g.nextUniform() }
        let third = (0 ..< n).map { _ in -5 + g.nextGaussian() }
        let clouds = try [first, second, third].map { try PointCloud(values: $0) }
        let lambda = [0.5, 0.3, 0.2]
        let r = try FreeSupportBarycenter(supportSize: n).solve(clouds, weights: [5, 3, 2])
        #expect(r.converged && r.iterations <= 3)
        #expect(r.weights.enumerated().allSatisfy { abs($0.element - lambda[$0.offset]) < 1e-15 })
        // Cell i of [0, 1] (width 1 / n): the first and third inputs' i-th order statistic, the
        // mean of the second's (2i)-th and (2i+1)-th.
        let s1 = first.sorted(), s2 = second.sorted(), s3 = third.sorted()
        var expected = [Double](repeating: 0, count: n)
        for i in 0 ..< n {
            let middle: Double = (s2[2 * i] + s2[2 * i + 1]) / 2
            expected[i] = 0.5 * s1[i] + 0.3 * middle + 0.2 * s3[i]
        }
        let got = r.support.coordinates.sorted()
        for i in 0 ..< n { #expect(abs(got[i] - expected[i]) <= 1e-12 * (1 + abs(expected[i]))) }
        // Its cost is the weighted sum of its W2^2 to the inputs.
        var cost = 0.0
        for (cloud, l) in zip(clouds, lambda) {
            cost += l * (try wasserstein2(TransportProblem(source: r.support, target: cloud.normalized())).cost)
        }
        #expect(abs(r.cost - cost) <= 1e-12 * cost)
    }

    @Test("a cloud and its translate by v, lambda = (1/2, 1/2): the cloud translated by v / 2")
    func translateHalfway() throws {
        let mu = try ExactTestSupport.gaussianCloud(30, dimension: 2, seed: 5)
        let v = [4.0, -2.0]
        let nu = try mu.translated(by: v)
        let r = try FreeSupportBarycenter(seed: 3).solve([mu, nu])
        #expect(r.converged)
        let expected = try mu.translated(by: [2, -1])
        #expect(r.support.count == 30)
        // W2 between the result and the expected cloud: zero up to round-off.
        let gap = try wasserstein2(TransportProblem(source: r.support, target: expected)).cost
        #expect(gap <= 1e-20, "W2^2 to the halfway translate: \(gap)")
        // Cost: each input at W2^2 = |v / 2|^2.
        #expect(abs(r.cost - 5) <= 1e-10)
    }

    @Test("never worse than the inputs it averages, warm restarts and an initial support, errors typed")
    func behaviour() throws {
        let a = try ExactTestSupport.gaussianCloud(20, dimension: 3, seed: 1)
        let b = try ExactTestSupport.gaussianCloud(15, dimension: 3, seed: 2, shift: 3, randomWeights: true)
        let c = try ExactTestSupport.gaussianCloud(10, dimension: 3, seed: 3, shift: -1)
        let r = try FreeSupportBarycenter(supportSize: 12, seed: 9).solve([a, b, c], weights: [1, 2, 1])
        #expect(r.converged && r.support.count == 12 && r.support.dimension == 3)
        // Starting from the result, nothing moves.
        let again = try FreeSupportBarycenter(supportSize: 12).solve([a, b, c], weights: [1, 2, 1], initialSupport: r.support.coordinates)
        #expect(again.iterations == 0 && abs(again.cost - r.cost) <= 1e-12 * r.cost)
        // A zero iteration cap returns the start with its cost, marked not converged when it would move.
        let capped = try FreeSupportBarycenter(supportSize: 12, maximumIterations: 0, seed: 9).solve([a, b, c], weights: [1, 2, 1])
        #expect(!capped.converged && capped.cost >= r.cost)
        #expect(throws: WassersteinError.self) { try FreeSupportBarycenter().solve([]) }
        #expect(throws: WassersteinError.self) { try FreeSupportBarycenter().solve([a, try PointCloud(values: [1])]) }
        #expect(throws: WassersteinError.self) { try FreeSupportBarycenter().solve([a, b], weights: [1]) }
        #expect(throws: WassersteinError.self) { try FreeSupportBarycenter().solve([a, b], weights: [1, .nan]) }
        #expect(throws: WassersteinError.self) { try FreeSupportBarycenter().solve([a, b], weights: [0, 0]) }
        #expect(throws: WassersteinError.self) { try FreeSupportBarycenter(supportSize: 0).solve([a, b]) }
        #expect(throws: WassersteinError.self) { try FreeSupportBarycenter(tolerance: -1).solve([a, b]) }
        #expect(throws: WassersteinError.self) { try FreeSupportBarycenter(supportSize: 2).solve([a], initialSupport: [1, 2, 3]) }
    }
}
