import Foundation
import Testing
@testable import Wasserstein

@Suite("Sliced and max-sliced W2")
struct SlicedTests {
    /// A cloud and its translate by `v`: every projection is a 1-D measure and its translate by
    /// `<theta, v>`, whose W2^2 is exactly `<theta, v>^2`.
    static func translatedPair(_ n: Int, dimension d: Int, v: [Double], seed: UInt64, weighted: Bool = false) throws -> TransportProblem {
        let mu = try ExactTestSupport.gaussianCloud(n, dimension: d, seed: seed, randomWeights: weighted).normalized()
        return try TransportProblem(source: mu, target: mu.translated(by: v))
    }

    @Test("each direction of a cloud against its translate gives <theta, v>^2; the mean approaches |v|^2 / D within its standard error")
    func translateClosedForm() throws {
        let v = [1.0, -2.0, 0.5]
        let problem = try Self.translatedPair(200, dimension: 3, v: v, seed: 11, weighted: true)
        let result = try SlicedWasserstein(directions: .random(count: 400, seed: 3), keepsPerDirection: true).solve(problem)
        let values = try #require(result.perDirection)
        #expect(values.count == 400 && result.directionCount == 400)
        for k in 0 ..< 400 {
            let theta = Array(result.directions[3 * k ..< 3 * k + 3])
            #expect(abs(theta.map { $0 * $0 }.reduce(0, +) - 1) < 1e-14)
            let t = zip(theta, v).map(*).reduce(0, +)
            #expect(abs(values[k] - t * t) <= 1e-10 * (1 + t * t))
        }
        // E (theta . v)^2 = |v|^2 / D for theta uniform on the sphere.
        let exact = v.map { $0 * $0 }.reduce(0, +) / 3
        let se = try #require(result.standardError)
        #expect(se > 0 && abs(result.w2Squared - exact) <= 4 * se, "estimate \(result.w2Squared) vs \(exact), se \(se)")
    }

    @Test("two Gaussians N(m1, s^2 I), N(m2, s^2 I) sampled as one shape: with the coordinate axes as directions SW2^2 = |m1 - m2|^2 / D to round-off")
    func gaussianClosedFormOnAxes() throws {
        let m1 = [0.5, 1.0, -1.0], m2 = [2.0, -1.0, 0.0]
        var g = Xoshiro256StarStar(seed: 5)
        var c = [Double](repeating: 0, count: 300 * 3)
        g.fillGaussian(&c, standardDeviation: 0.7)
        let mu = try PointCloud(coordinates: c, dimension: 3).translated(by: m1)
        let nu = try PointCloud(coordinates: c, dimension: 3).translated(by: m2)
        // The six signed axes: the mean of (theta . v)^2 over them is exactly |v|^2 / 3.
        let axes: [Double] = [1, 0, 0, 0, 1, 0, 0, 0, 1, -1, 0, 0, 0, -3, 0, 0, 0, 2]
        let result = try SlicedWasserstein(directions: .given(coordinates: axes)).solve(TransportProblem(source: mu, target: nu))
        let exact = zip(m1, m2).map { ($0 - $1) * ($0 - $1) }.reduce(0, +) / 3
        #expect(abs(result.w2Squared - exact) <= 1e-10 * exact)
        // In 2-D, K equally spaced directions on the half circle average cos^2 to exactly 1/2.
        let v = [3.0, -1.0]
        let p2 = try Self.translatedPair(50, dimension: 2, v: v, seed: 8)
        let k = 7
        let dirs = (0 ..< k).flatMap { j -> [Double] in let a = Double(j) * Double.pi / Double(k); return [cos(a), sin(a)] }
        let r2 = try SlicedWasserstein(directions: .given(coordinates: dirs)).solve(p2)
        #expect(abs(r2.w2Squared - 10.0 / 2) <= 1e-10)
    }

    @Test("two 2-D Gaussians of different covariances: SW2^2 is the average over the directions of the 1-D closed form (theta.(m1 - m2))^2 + (sqrt(theta' S1 theta) - sqrt(theta' S2 theta))^2, within the sampling error")
    func gaussianClosedFormIntegrated() throws {
        let n = 40_000
        // S1 = A1 A1', S2 = A2 A2' (A2 a rotation by 30 degrees of diag(1.5, 0.6)).
        let m1 = [0.0, 0.0], m2 = [1.0, 0.5]
        let a1 = [[1.0, 0.0], [0.0, 0.5]]
        let c = cos(Double.pi / 6), s = sin(Double.pi / 6)
        let a2 = [[1.5 * c, -0.6 * s], [1.5 * s, 0.6 * c]]
        func cloud(_ m: [Double], _ a: [[Double]], seed: UInt64) throws -> PointCloud {
            var g = Xoshiro256StarStar(seed: seed)
            var z = [Double](repeating: 0, count: 2 * n)
            g.fillGaussian(&z, standardDeviation: 1)
            // Whitened (sample mean 0, sample covariance I exactly), so that every projection has
            // the population's first two moments and only its shape carries sampling error.
            var mean = [0.0, 0.0], cov = [0.0, 0.0, 0.0]
            for i in 0 ..< n { mean[0] += z[2 * i] / Double(n); mean[1] += z[2 * i + 1] / Double(n) }
            for i in 0 ..< n {
                z[2 * i] -= mean[0]
                z[2 * i + 1] -= mean[1]
                cov[0] += z[2 * i] * z[2 * i] / Double(n)
                cov[1] += z[2 * i] * z[2 * i + 1] / Double(n)
                cov[2] += z[2 * i + 1] * z[2 * i + 1] / Double(n)
            }
            // z <- L^-1 z with cov = L L' (Cholesky).
            let l00 = cov[0].squareRoot(), l10 = cov[1] / l00, l11 = (cov[2] - l10 * l10).squareRoot()
            for i in 0 ..< n {
                let w0 = z[2 * i] / l00
                z[2 * i + 1] = (z[2 * i + 1] - l10 * w0) / l11
                z[2 * i] = w0
            }
            var x = z
            for i in 0 ..< n {
                for r in 0 ..< 2 { x[2 * i + r] = m[r] + a[r][0] * z[2 * i] + a[r][1] * z[2 * i + 1] }
            }
            return try PointCloud(coordinates: x, dimension: 2)
        }
        let problem = try TransportProblem(source: cloud(m1, a1, seed: 21), target: cloud(m2, a2, seed: 22))
        // 64 equally spaced directions on the half circle: the same directions for both sides of the check.
        let k = 64
        let angles = (0 ..< k).map { Double($0) * Double.pi / Double(k) }
        let result = try SlicedWasserstein(directions: .given(coordinates: angles.flatMap { [cos($0), sin($0)] })).solve(problem)
        var exact = 0.0
        for t in angles {
            let theta = [cos(t), sin(t)]
            func sd(_ a: [[Double]]) -> Double {
                // theta' A A' theta = |A' theta|^2.
                let u = (0 ..< 2).map { col in theta[0] * a[0][col] + theta[1] * a[1][col] }
                return (u[0] * u[0] + u[1] * u[1]).squareRoot()
            }
            let shift = theta[0] * (m1[0] - m2[0]) + theta[1] * (m1[1] - m2[1])
            exact += shift * shift + (sd(a1) - sd(a2)) * (sd(a1) - sd(a2))
        }
        exact /= Double(k)
        // Measured: 0.80717 against 0.80704 (1.5e-4); the means alone give 0.625.
        #expect(abs(result.w2Squared / exact - 1) <= 1e-3, "sliced \(result.w2Squared), integrated closed form \(exact)")
    }

    @Test("in one dimension sliced W2 is W2, weighted clouds included")
    func oneDimensionIsW2() throws {
        let mu = try PointCloud(values: [0, 1, 3, 7], weights: [0.1, 0.4, 0.3, 0.2])
        let nu = try PointCloud(values: [2, -1, 5], weights: [0.5, 0.25, 0.25])
        let problem = try TransportProblem(source: mu, target: nu)
        let exact = try wasserstein2(problem).cost
        for directions in [SlicedDirections.random(count: 5, seed: 1), .given(coordinates: [-2.5]), .given(coordinates: [1e-300])] {
            let r = try SlicedWasserstein(directions: directions).solve(problem)
            #expect(abs(r.w2Squared - exact) <= 1e-12 * exact)
        }
        let max = try MaxSlicedWasserstein(directions: .random(count: 3, seed: 2)).solve(problem)
        #expect(abs(max.w2Squared - exact) <= 1e-12 * exact)
    }

    @Test("symmetric, zero between a measure and itself, weighted projections equal the 1-D solver's")
    func invariants() throws {
        let mu = try ExactTestSupport.gaussianCloud(120, dimension: 4, seed: 21, randomWeights: true).normalized()
        let nu = try ExactTestSupport.gaussianCloud(80, dimension: 4, seed: 22, shift: 1, randomWeights: true).normalized()
        let solver = SlicedWasserstein(directions: .random(count: 30, seed: 9), keepsPerDirection: true)
        let ab = try solver.solve(TransportProblem(source: mu, target: nu))
        let ba = try solver.solve(TransportProblem(source: nu, target: mu))
        #expect(abs(ab.w2Squared - ba.w2Squared) <= 1e-12 * ab.w2Squared)
        #expect(try solver.solve(TransportProblem(source: mu, target: mu)).w2Squared == 0)
        // Direction 4 by hand, through the public 1-D API.
        let theta = Array(ab.directions[16 ..< 20])
        func projected(_ c: PointCloud) throws -> PointCloud {
            var values = [Double](repeating: 0, count: c.count)
            for i in 0 ..< c.count {
                var s = 0.0
                for l in 0 ..< 4 { s += theta[l] * c.coordinates[4 * i + l] }
                values[i] = s
            }
            return try PointCloud(values: values, weights: c.weights)
        }
        let direct = try SortedSolver().solve(TransportProblem(source: projected(mu), target: projected(nu))).cost
        #expect(abs(ab.perDirection![4] - direct) <= 1e-12 * direct)
        // Sliced never exceeds W2.
        let exact = try wasserstein2(TransportProblem(source: mu, target: nu)).cost
        #expect(ab.w2Squared <= exact)
        // The same seed, the same directions.
        #expect(try solver.solve(TransportProblem(source: mu, target: nu)).directions == ab.directions)
    }

    @Test("the result does not depend on the number of threads, bit for bit")
    func threadIndependence() throws {
        let mu = try ExactTestSupport.gaussianCloud(1500, dimension: 3, seed: 31, randomWeights: true)
        let nu = try ExactTestSupport.gaussianCloud(1200, dimension: 3, seed: 32, shift: 0.5).reweighted(
            [Double](repeating: mu.mass / 1200, count: 1200))
        let problem = try TransportProblem(source: mu, target: nu)
        let reference = try SlicedWasserstein(directions: .random(count: 13, seed: 4), keepsPerDirection: true,
                                              maximumThreads: 1).solve(problem)
        for threads in [2, 3, 8, nil] as [Int?] {
            let r = try SlicedWasserstein(directions: .random(count: 13, seed: 4), keepsPerDirection: true,
                                          maximumThreads: threads).solve(problem)
            #expect(r.w2Squared == reference.w2Squared && r.perDirection! == reference.perDirection!)
            #expect(r.standardError == reference.standardError)
        }
        // Uniform weights take the allocation-free path: the same values as the sorted solver's,
        // bit for bit, whatever the thread count.
        let a = try ExactTestSupport.gaussianCloud(1500, dimension: 3, seed: 33)
        let b = try ExactTestSupport.gaussianCloud(1100, dimension: 3, seed: 34, shift: 1)
        let uniform = try TransportProblem(source: a, target: b)
        let one = try SlicedWasserstein(directions: .random(count: 9, seed: 6), keepsPerDirection: true, maximumThreads: 1).solve(uniform)
        let two = try SlicedWasserstein(directions: .random(count: 9, seed: 6), keepsPerDirection: true, maximumThreads: 2).solve(uniform)
        #expect(one.perDirection! == two.perDirection!)
        for j in 0 ..< 9 {
            #expect(one.perDirection![j] == (try SlicedWasserstein.projectedW2Squared(a, b, direction: one.directions, at: j)))
        }
    }

    @Test("bad directions and options are typed errors")
    func errors() throws {
        let problem = try Self.translatedPair(5, dimension: 2, v: [1, 0], seed: 1)
        func message(_ directions: SlicedDirections) -> String? {
            do { _ = try SlicedWasserstein(directions: directions).solve(problem); return nil } catch { return "\(error)" }
        }
        #expect(message(.given(coordinates: [1, 0, 0, 0]))?.contains("direction 1") == true)
        #expect(message(.given(coordinates: [1, .nan]))?.contains("direction 0 component 1") == true)
        #expect(message(.given(coordinates: [1, .infinity]))?.contains("finite") == true)
        #expect(message(.given(coordinates: [1, 0, 1]))?.contains("malformed shape") == true)
        #expect(message(.given(coordinates: []))?.contains("malformed shape") == true)
        #expect(message(.random(count: 0, seed: 1))?.contains("number of directions") == true)
        #expect(throws: WassersteinError.self) { try SlicedWasserstein(maximumThreads: 0).solve(problem) }
        #expect(throws: WassersteinError.self) { try MaxSlicedWasserstein(restarts: 0).solve(problem) }
        // A huge but finite direction is normalised, not overflowed.
        let r = try SlicedWasserstein(directions: .given(coordinates: [1e300, 1e300])).solve(problem)
        #expect(abs(r.w2Squared - 0.5) < 1e-12)
        #expect(r.standardError == nil)
        // Projections that overflow are an error, not an infinite value.
        let far = try PointCloud(points: [[1.5e308, 1.5e308]]), near = try PointCloud(points: [[0, 0]])
        #expect(throws: WassersteinError.self) {
            try SlicedWasserstein(directions: .given(coordinates: [1, 1])).solve(TransportProblem(source: far, target: near))
        }
    }

    @Test("max-sliced: at least every sampled direction, at most W2; a translate's maximum is |v|^2 along v")
    func maxSliced() throws {
        for seed: UInt64 in [1, 2] {
            let mu = try ExactTestSupport.gaussianCloud(40, dimension: 3, seed: 40 + seed, randomWeights: true).normalized()
            var nuCoordinates = try ExactTestSupport.gaussianCloud(30, dimension: 3, seed: 50 + seed).coordinates
            for i in 0 ..< 30 { nuCoordinates[3 * i] *= 3 }  // stretched along the first axis
            let nu = try PointCloud(coordinates: nuCoordinates, dimension: 3)
            let problem = try TransportProblem(source: mu, target: nu)
            let r = try MaxSlicedWasserstein(directions: .random(count: 50, seed: seed)).solve(problem)
            for v in r.sampled.perDirection! { #expect(r.w2Squared >= v) }
            let exact = try wasserstein2(problem).cost
            #expect(r.w2Squared <= exact * (1 + 1e-12))
            #expect(r.w2Squared > r.sampled.perDirection!.max()! || r.iterations == 0)
            #expect(abs(r.direction.map { $0 * $0 }.reduce(0, +) - 1) < 1e-12)
            #expect(r.converged)
        }
        let v = [1.0, 2.0, -2.0]
        let problem = try Self.translatedPair(60, dimension: 3, v: v, seed: 7)
        let r = try MaxSlicedWasserstein(directions: .random(count: 10, seed: 3)).solve(problem)
        #expect(abs(r.w2Squared - 9) <= 1e-7 * 9, "\(r.w2Squared)")
        let alignment = abs(zip(r.direction, v).map(*).reduce(0, +)) / 3
        #expect(alignment > 1 - 1e-6)
    }
}
