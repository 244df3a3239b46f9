import Foundation
import Testing
@testable import Wasserstein

/// The Bures-Wasserstein closed form against special cases, exact W2 of large samples, and the
/// Gelbrich bound; the Jacobi eigen-decomposition against its defining identities.
@Suite("Gaussian W2 (Bures)")
struct GaussianTests {
    /// `n` draws of `N(mean, L L^T)` with `L` lower triangular `D x D`, row-major.
    static func sample(_ n: Int, mean: [Double], cholesky l: [Double], seed: UInt64) throws -> PointCloud {
        let d = mean.count
        var g = Xoshiro256StarStar(seed: seed)
        var c = [Double](repeating: 0, count: n * d)
        var z = [Double](repeating: 0, count: d)
        for i in 0 ..< n {
            for k in 0 ..< d { z[k] = g.nextGaussian() }
            for k in 0 ..< d {
                var s = mean[k]
                for e in 0 ... k { s += l[k * d + e] * z[e] }
                c[i * d + k] = s
            }
        }
        return try PointCloud(coordinates: c, dimension: d)
    }

    // Closed forms with no matrix square root: round-off only, 1e-12.
    @Test("Special cases: 1-D, commuting covariances, a Dirac mass")
    func specialCases() throws {
        let a = try GaussianMeasure(mean: [1], covariance: [4])
        let b = try GaussianMeasure(mean: [-0.5], covariance: [0.25])
        #expect(ExactTestSupport.close(try a.squaredDistance(to: b), 1.5 * 1.5 + 1.5 * 1.5, relative: 1e-12))
        let s1 = [2.0, 0.5, 3.0], s2 = [0.1, 0.5, 7.0]
        func diagonal(_ s: [Double]) -> [Double] {
            var m = [Double](repeating: 0, count: 9)
            for k in 0 ..< 3 { m[k * 3 + k] = s[k] }
            return m
        }
        let c = try GaussianMeasure(mean: [0, 0, 0], covariance: diagonal(s1))
        let d = try GaussianMeasure(mean: [1, 2, 2], covariance: diagonal(s2))
        var expected = 9.0
        for k in 0 ..< 3 { expected += (s1[k].squareRoot() - s2[k].squareRoot()) * (s1[k].squareRoot() - s2[k].squareRoot()) }
        #expect(ExactTestSupport.close(try c.squaredDistance(to: d), expected, relative: 1e-12))
        // A point mass against a Gaussian: |m1 - m2|^2 + tr S2.
        let dirac = try GaussianMeasure(mean: [1, 2, 2], covariance: [Double](repeating: 0, count: 9))
        #expect(ExactTestSupport.close(try dirac.squaredDistance(to: c), 9 + 5.5, relative: 1e-12))
        #expect(try c.squaredDistance(to: c) <= 1e-12)
    }

    // Rotating both Gaussians by the same orthogonal matrix leaves W2 unchanged.
    @Test("Rotation invariance of the Bures distance")
    func rotationInvariance() throws {
        let g = try POTFixture.load().gaussian
        let s1 = g.S1.flatMap { $0 }, s2 = g.S2.flatMap { $0 }
        let angle = 0.7
        let r = [cos(angle), -sin(angle), sin(angle), cos(angle)]
        func rotate(_ s: [Double]) -> [Double] {
            var t = [Double](repeating: 0, count: 4), u = t
            for k in 0 ..< 2 { for l in 0 ..< 2 { for e in 0 ..< 2 { t[k * 2 + l] += r[k * 2 + e] * s[e * 2 + l] } } }
            for k in 0 ..< 2 { for l in 0 ..< 2 { for e in 0 ..< 2 { u[k * 2 + l] += t[k * 2 + e] * r[l * 2 + e] } } }
            return u
        }
        func rotateVector(_ v: [Double]) -> [Double] { [r[0] * v[0] + r[1] * v[1], r[2] * v[0] + r[3] * v[1]] }
        let before = try GaussianMeasure(mean: g.m1, covariance: s1).squaredDistance(to: try GaussianMeasure(mean: g.m2, covariance: s2))
        let after = try GaussianMeasure(mean: rotateVector(g.m1), covariance: rotate(s1))
            .squaredDistance(to: try GaussianMeasure(mean: rotateVector(g.m2), covariance: rotate(s2)))
        #expect(ExactTestSupport.close(before, after, relative: 1e-12))
    }

    // Two loose comparisons, tolerances from POT runs of the same experiment over 30 seeds:
    // (1) the exact W2^2 between two 300-samples exceeds the Bures value of their sample moments
    //     (Gelbrich) by 1.0% to 1.8% (discreteness); the bound here is [0, 4%];
    // (2) against the Bures value of the true parameters the sampling noise of the moments
    //     dominates: -8% to +21% over 20 seeds; the bound here is 25%.
    @Test("Bures equals the exact W2 between large Gaussian samples (loose tolerance)")
    func buresVersusSamples() throws {
        let g = try POTFixture.load().gaussian
        let l1 = Self.cholesky2(g.S1), l2 = Self.cholesky2(g.S2)
        let x = try Self.sample(300, mean: g.m1, cholesky: l1, seed: 31)
        let y = try Self.sample(300, mean: g.m2, cholesky: l2, seed: 32)
        let problem = try TransportProblem(source: x, target: y)
        let exact = try NetworkSimplexSolver().solve(problem)
        let moments = try GaussianMomentSolver().solve(problem)
        let excess = (exact.cost - moments.cost) / moments.cost
        #expect(excess >= 0 && excess <= 0.04, "exact \(exact.cost) vs Bures of sample moments \(moments.cost)")
        #expect(ExactTestSupport.close(exact.cost, g.w2_squared, relative: 0.25), "exact \(exact.cost) vs Bures \(g.w2_squared)")
        // In 1-D the sorted solver allows large samples: n = 200 000, error ~ n^(-1/2), 1%.
        let u = try Self.sample(200_000, mean: [1], cholesky: [2], seed: 33)
        let v = try Self.sample(200_000, mean: [-1], cholesky: [0.5], seed: 34)
        let sorted = try SortedSolver(planOutput: .none).solve(try TransportProblem(source: u, target: v))
        #expect(ExactTestSupport.close(sorted.cost, 4 + 2.25, relative: 0.01), "sorted \(sorted.cost) vs 6.25")
    }

    // Gelbrich: the Bures distance of the moment-matched Gaussians never exceeds the true W2.
    @Test("Moment-matched Gaussians give a lower bound on the exact W2 (Gelbrich)")
    func gelbrichBound() throws {
        for seed in UInt64(40) ..< 46 {
            // Non-Gaussian clouds: grid points and skewed weights.
            let x = try ExactTestSupport.gridCloud(25, dimension: 2, side: 5, seed: seed,
                                                   weights: (0 ..< 25).map { 1 + Double($0 % 4) })
            let y = try ExactTestSupport.gaussianCloud(30, dimension: 2, seed: seed + 100, randomWeights: true)
            let problem = try TransportProblem(source: x, target: y, massPolicy: .normalize)
            let exact = try NetworkSimplexSolver().solve(problem)
            let bures = try GaussianMomentSolver().solve(problem)
            #expect(bures.method == .gaussian)
            #expect(bures.cost <= exact.cost + 1e-12, "Bures \(bures.cost) > exact \(exact.cost)")
        }
        // In 1-D the moment version is (mean gap)^2 + (std gap)^2, computed here directly.
        let x = try ExactTestSupport.gaussianCloud(40, dimension: 1, seed: 50, randomWeights: true)
        let y = try ExactTestSupport.gaussianCloud(60, dimension: 1, seed: 51, shift: 2)
        func moments(_ c: PointCloud) -> (Double, Double) {
            var m = 0.0, s = 0.0
            for i in 0 ..< c.count { m += c.weights[i] * c.coordinates[i] }
            m /= c.mass
            for i in 0 ..< c.count { s += c.weights[i] * (c.coordinates[i] - m) * (c.coordinates[i] - m) }
            return (m, (s / c.mass).squareRoot())
        }
        let (mx, sx) = moments(x), (my, sy) = moments(y)
        let r = try GaussianMomentSolver().solve(try TransportProblem(source: x, target: y, massPolicy: .normalize))
        #expect(ExactTestSupport.close(r.cost, (mx - my) * (mx - my) + (sx - sy) * (sx - sy), relative: 1e-12))
    }

    // V^T V = I and V diag(lambda) V^T = A, to 1e-12 of the matrix scale.
    @Test("Jacobi eigen-decomposition reconstructs the matrix")
    func jacobi() {
        var g = Xoshiro256StarStar(seed: 60)
        for d in [1, 2, 5, 9] {
            var a = [Double](repeating: 0, count: d * d)
            for k in 0 ..< d { for l in k ..< d { let v = g.nextGaussian(); a[k * d + l] = v; a[l * d + k] = v } }
            let e = SymmetricEigen(a, dimension: d)
            let rebuilt = e.applying { $0 }
            let identity = SymmetricEigen(a, dimension: d).applying { _ in 1 }
            for k in 0 ..< d * d {
                #expect(abs(rebuilt[k] - a[k]) <= 1e-12 * Double(d))
                #expect(abs(identity[k] - (k % (d + 1) == 0 ? 1 : 0)) <= 1e-12 * Double(d))
            }
        }
    }

    static func cholesky2(_ s: [[Double]]) -> [Double] {
        let l00 = s[0][0].squareRoot()
        let l10 = s[1][0] / l00
        return [l00, 0, l10, (s[1][1] - l10 * l10).squareRoot()]
    }
}
