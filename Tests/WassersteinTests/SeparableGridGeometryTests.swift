import Foundation
import Testing
@testable import Wasserstein

/// The separable grid geometry (issue 19): each operation against the dense geometry on the same
/// points (every entry, 1e-12), the driver on the grid against the driver on stored costs for
/// every marginal update, kernel mode against the log domain, and entropic OT between Gaussians
/// against its closed form.
@Suite("Entropic engine: separable grid geometry")
struct SeparableGridGeometryTests {
    static func relative(_ x: Double, _ y: Double) -> Double { abs(x - y) / Swift.max(abs(x), abs(y), 1e-300) }

    /// The grid's points, row-major (axis 0 slowest), from `lower = -1` per axis.
    static func points(_ n: [Int], _ h: [Double]) -> [Double] {
        let d = n.count, count = n.reduce(1, *)
        var x = [Double](repeating: 0, count: count * d)
        for i in 0 ..< count {
            var rest = i
            for a in stride(from: d - 1, through: 0, by: -1) {
                x[i * d + a] = -1 + h[a] * Double(rest % n[a])
                rest /= n[a]
            }
        }
        return x
    }

    static func dense(_ n: [Int], _ h: [Double]) throws -> DenseCostGeometry {
        let cloud = try PointCloud(coordinates: points(n, h), dimension: n.count)
        return try DenseCostGeometry(source: cloud, target: cloud)
    }

    /// A smooth trend spanning `spread` (in units of eps) plus noise, as Sinkhorn potentials.
    static func potential(_ n: [Int], _ h: [Double], epsilon: Double, spread: Double, seed: UInt64) -> [Double] {
        var rng = Xoshiro256StarStar(seed: seed)
        let x = points(n, h), d = n.count
        return (0 ..< n.reduce(1, *)).map { i in
            var s = 0.0
            for a in 0 ..< d { s += x[i * d + a] * (a == 0 ? 1 : -0.7) + 0.3 * x[i * d + a] * x[i * d + a] }
            return epsilon * (spread * s + 2 * rng.nextGaussian())
        }
    }

    static func softMin(_ geometry: some SinkhornGeometry, _ g: [Double], _ logW: [Double], _ eps: Double) -> [Double] {
        var out = [Double](repeating: .nan, count: geometry.sourceCount)
        g.withUnsafeBufferPointer { gb in logW.withUnsafeBufferPointer { wb in out.withUnsafeMutableBufferPointer { ob in
            geometry.softMin(gb, logWeights: wb, epsilon: eps, transposed: false, into: ob) } } }
        return out
    }

    static let shapes: [([Int], [Double])] = [([29], [0.07]), ([13, 17], [0.15, 0.1]), ([9, 10, 8], [0.2, 0.25, 0.3])]

    /// The log-domain soft-min is exact to rounding (its windows widen with the spread of the
    /// potential), so it equals the dense geometry's one-pass sum per entry to 1e-12 of
    /// `max(1, |out|)`, for potentials spanning a few eps (interior windows) to 3000 eps (where
    /// kernel mode over- and underflows, and fixed windows would drop dominant terms), with some
    /// zero weights.
    @Test("grid soft-min equals the dense soft-min on the same points (1-D, 2-D, 3-D)",
          arguments: [0, 1, 2], [0.01, 0.3, 5.0])
    func softMinMatchesDense(shape: Int, epsilon: Double) throws {
        let (n, h) = Self.shapes[shape]
        let grid = try SeparableGridGeometry(pointsPerAxis: n, spacing: h)
        let dense = try Self.dense(n, h)
        #expect(abs(grid.costRange - dense.costRange) <= 1e-12 * dense.costRange)
        for spread in [3.0, 3000.0] {
            let g = Self.potential(n, h, epsilon: epsilon, spread: spread, seed: UInt64(shape * 10) + UInt64(spread))
            var logW = (0 ..< grid.sourceCount).map { -0.01 * Double($0 % 7) }
            for j in stride(from: 3, to: logW.count, by: 11) { logW[j] = -.infinity }
            let ours = Self.softMin(grid, g, logW, epsilon)
            let reference = Self.softMin(dense, g, logW, epsilon)
            for i in 0 ..< ours.count {
                #expect(abs(ours[i] - reference[i]) <= 1e-12 * Swift.max(1, abs(reference[i])) * Swift.max(1, epsilon),
                        "entry \(i): \(ours[i]) vs \(reference[i])")
            }
        }
    }

    /// Kernel mode against the dense sum `sum_j exp(-C_ij / eps) v_j`, per entry to 1e-12 of
    /// max |K v| (rounding, and taps below the truncation 1e-40); eps from a few cells to wider
    /// than the grid (clamped windows), odd axis lengths so that every blocking remainder runs.
    @Test("kernel mode equals the dense kernel sum", arguments: [0, 1, 2], [0.02, 0.3, 50.0])
    func kernelMatchesDense(shape: Int, epsilon: Double) throws {
        let (n, h) = Self.shapes[shape]
        let grid = try SeparableGridGeometry(pointsPerAxis: n, spacing: h, kernelTruncation: 1e-40)
        #expect(grid.offersKernelMode(epsilon: epsilon))
        let dense = try Self.dense(n, h)
        var rng = Xoshiro256StarStar(seed: UInt64(shape) &+ 99)
        let v = (0 ..< grid.sourceCount).map { _ in rng.nextUniform() }
        var out = [Double](repeating: .nan, count: grid.sourceCount)
        v.withUnsafeBufferPointer { vb in out.withUnsafeMutableBufferPointer { grid.applyKernel(vb, epsilon: epsilon, transposed: false, into: $0) } }
        let m = grid.sourceCount
        let reference = (0 ..< m).map { i in (0 ..< m).reduce(0.0) { $0 + exp(-dense.costs[i * m + $1] / epsilon) * v[$1] } }
        let scale = reference.max()!
        let worst = zip(out, reference).map { abs($0 - $1) }.max()!
        #expect(worst <= 1e-12 * scale, "max |K v - dense| = \(worst) of \(scale)")
        // The dense and online geometries offer no kernel mode.
        #expect(!dense.offersKernelMode(epsilon: epsilon))
    }

    /// `<P, C>` and a plan row of the same potentials on both geometries (kernel mode; the
    /// log-domain route runs in the fallback test below), relative 1e-11 (sums of up to N^2
    /// positive terms in another order).
    @Test("grid transport cost and plan rows equal the dense ones", arguments: [0, 1, 2])
    func transportCostMatchesDense(shape: Int) throws {
        let (n, h) = Self.shapes[shape]
        let grid = try SeparableGridGeometry(pointsPerAxis: n, spacing: h)
        let dense = try Self.dense(n, h)
        let eps = 0.05
        let count = grid.sourceCount
        let logA = (0 ..< count).map { -log(Double(count)) - 0.02 * Double($0 % 5) }
        let logB = (0 ..< count).map { $0 % 9 == 4 ? -.infinity : -log(Double(count)) }
        for spread in [0.5, 1.0] {
            let f = Self.potential(n, h, epsilon: eps, spread: spread, seed: 5)
            let g = Self.potential(n, h, epsilon: eps, spread: -spread, seed: 6)
            func cost(_ geometry: some SinkhornGeometry) -> Double {
                f.withUnsafeBufferPointer { fb in g.withUnsafeBufferPointer { gb in logA.withUnsafeBufferPointer { ab in
                    logB.withUnsafeBufferPointer { bb in geometry.transportCost(f: fb, g: gb, logA: ab, logB: bb, epsilon: eps) } } } }
            }
            func row(_ geometry: some SinkhornGeometry, _ i: Int) -> [Double] {
                var out = [Double](repeating: .nan, count: count)
                f.withUnsafeBufferPointer { fb in g.withUnsafeBufferPointer { gb in logA.withUnsafeBufferPointer { ab in
                    logB.withUnsafeBufferPointer { bb in out.withUnsafeMutableBufferPointer { ob in
                        geometry.planRow(i, f: fb, g: gb, logA: ab, logB: bb, epsilon: eps, into: ob) } } } } }
                return out
            }
            let ours = cost(grid), reference = cost(dense)
            #expect(ours.isFinite && reference > 0)
            #expect(Self.relative(ours, reference) <= 1e-11, "spread \(spread): \(ours) vs \(reference)")
            for i in [0, count / 2, count - 1] {
                let a = row(grid, i), b = row(dense, i)
                let scale = b.max()!
                #expect(zip(a, b).allSatisfy { abs($0 - $1) <= 1e-12 * scale })
            }
        }
    }

    /// The driver on the grid (kernel mode, and forced into the log domain) against the driver on
    /// the stored costs of the same points, for each marginal update: regularised and transport
    /// costs to 1e-9 relative at tolerance 1e-12 (two converged solves of the same problem).
    @Test("the driver on the grid equals the driver on stored costs: balanced, symmetric, proximal",
          arguments: [0, 1, 2])
    func driverMatchesDense(shape: Int) throws {
        let (n, h) = [([23], [0.09]), ([9, 11], [0.2, 0.15]), ([5, 6, 4], [0.3, 0.25, 0.4])][shape]
        let grid = try SeparableGridGeometry(pointsPerAxis: n, spacing: h)
        let dense = try Self.dense(n, h)
        let count = grid.sourceCount
        let x = Self.points(n, h), d = n.count
        func bump(_ centre: Double, _ width: Double) -> [Double] {
            let w = (0 ..< count).map { i in exp(-(0 ..< d).reduce(0.0) { $0 + pow(x[i * d + $1] - centre, 2) } / (2 * width * width)) }
            let total = w.reduce(0, +)
            return w.map { $0 / total }
        }
        let a = bump(-0.3, 0.5), b = bump(0.2, 0.3)
        let phi = (0 ..< count).map { i in -0.4 * (0 ..< d).reduce(0.0) { $0 + x[i * d + $1] * x[i * d + $1] } }
        let problems: [EntropicProblem] = [
            try .balanced(a: a, b: b), try .symmetric(a: b),
            try .proximal(a: [Double](repeating: 1 / Double(count), count: count), b: b, theta: 0.6, potential: phi),
        ]
        let parameters = try EntropicParameters(epsilon: 0.05, tolerance: 1e-12, overRelaxation: .fixed(1.5))
        for problem in problems {
            var reference = try EntropicSinkhorn(geometry: dense, problem: problem, parameters: parameters)
            let r = try reference.solve()
            for kernelMode in [true, false] {
                var driver = try EntropicSinkhorn(geometry: grid, problem: problem, parameters: parameters)
                driver.usesKernelMode = kernelMode
                let o = try driver.solve()
                #expect(o.converged && r.converged && o.geometry == "grid")
                #expect(driver.usesKernelMode == kernelMode, "kernel mode stays in range on these problems")
                #expect(Self.relative(o.regularizedCost, r.regularizedCost) <= 1e-9, "\(problem.update): \(o.regularizedCost) vs \(r.regularizedCost)")
                #expect(Self.relative(o.transportCost, r.transportCost) <= 1e-9)
                if case .proximal = problem.update {
                    let rho = driver.rowMarginal(), expected = reference.rowMarginal()
                    #expect(abs(rho.reduce(0, +) - 1) <= 1e-12, "the proximal step keeps the mass of b")
                    #expect(zip(rho, expected).map { abs($0 - $1) }.reduce(0, +) <= 1e-9)
                }
            }
        }
    }

    /// Kernel mode that leaves the range of doubles (two narrow bumps far apart for eps) falls
    /// back to the log domain by itself and still gives the dense answer.
    @Test("kernel mode falls back to the log domain when the scalings leave the range")
    func kernelModeFallback() throws {
        let n = [200], h = [0.02]
        let grid = try SeparableGridGeometry(pointsPerAxis: n, spacing: h)
        let dense = try Self.dense(n, h)
        let x = Self.points(n, h)
        func bump(_ centre: Double) -> [Double] {
            let w = x.map { exp(-($0 - centre) * ($0 - centre) / (2 * 0.05 * 0.05)) }
            let total = w.reduce(0, +)
            return w.map { $0 / total }
        }
        let problem = try EntropicProblem.balanced(a: bump(-0.8), b: bump(2.5))
        let parameters = try EntropicParameters(epsilon: 1e-3, tolerance: 1e-11)
        var driver = try EntropicSinkhorn(geometry: grid, problem: problem, parameters: parameters)
        let o = try driver.solve()
        #expect(!driver.usesKernelMode)
        var reference = try EntropicSinkhorn(geometry: dense, problem: problem, parameters: parameters)
        let r = try reference.solve()
        #expect(o.converged && r.converged)
        #expect(Self.relative(o.regularizedCost, r.regularizedCost) <= 1e-9, "\(o.regularizedCost) vs \(r.regularizedCost)")
        #expect(Self.relative(o.transportCost, r.transportCost) <= 1e-9, "\(o.transportCost) vs \(r.transportCost)")
    }

    /// The proximal update in kernel mode keeps scalings across iterations; where they leave the
    /// range of doubles (a narrow target far from most of the free rows, small eps) it falls back
    /// to the log domain mid-solve and still gives the dense (log-domain) answer; skipping the
    /// transport-cost audit changes nothing else.
    @Test("proximal kernel mode falls back to the log domain; the transport-cost audit can be skipped")
    func proximalFallbackAndAudit() throws {
        let n = [200], h = [0.02]
        let grid = try SeparableGridGeometry(pointsPerAxis: n, spacing: h)
        let dense = try Self.dense(n, h)
        let x = Self.points(n, h)
        let w = x.map { exp(-($0 - 2.5) * ($0 - 2.5) / (2 * 0.05 * 0.05)) }
        let total = w.reduce(0, +)
        let b = w.map { $0 / total }
        let a = [Double](repeating: 1 / Double(x.count), count: x.count)
        let phi = x.map { -0.3 * $0 * $0 }
        let problem = try EntropicProblem.proximal(a: a, b: b, theta: 0.5, potential: phi)
        var parameters = try EntropicParameters(epsilon: 1e-3, tolerance: 1e-11, maxIterations: 20_000,
                                                scaling: .none, overRelaxation: .fixed(1.5))
        var driver = try EntropicSinkhorn(geometry: grid, problem: problem, parameters: parameters)
        let o = try driver.solve()
        #expect(!driver.usesKernelMode, "the scalings leave the range here")
        var reference = try EntropicSinkhorn(geometry: dense, problem: problem, parameters: parameters)
        let r = try reference.solve()
        #expect(o.converged && r.converged)
        #expect(Self.relative(o.regularizedCost, r.regularizedCost) <= 1e-9, "\(o.regularizedCost) vs \(r.regularizedCost)")
        #expect(zip(driver.rowMarginal(), reference.rowMarginal()).map { abs($0 - $1) }.reduce(0, +) <= 1e-9)
        parameters.computesTransportCost = false
        var skipping = try EntropicSinkhorn(geometry: grid, problem: problem, parameters: parameters)
        let s = try skipping.solve()
        #expect(s.transportCost.isNaN && o.transportCost.isFinite)
        #expect(s.regularizedCost == o.regularizedCost && s.f == o.f && s.iterations == o.iterations)
    }

    /// Entropic OT between Gaussians in closed form (Janati et al. 2020; Mallasto et al. 2021,
    /// cost |x - y|^2 and eps KL): for N(m1, A) and N(m2, B) in 1-D the plan's covariance c solves
    /// 2c^2 + eps c - 2AB = 0. Product measures on a 2-D grid transport axis by axis, so their
    /// OT_eps is the sum of the 1-D values. Grid steps 0.1 and 0.125: the lattice error is
    /// exp(-2 pi^2 sd^2 / h^2) for the plan's conditional spread (sd about 0.16), negligible,
    /// and the tails beyond 7 deviations too; relative 1e-8 at tolerance 1e-12.
    @Test("entropic OT between Gaussians on 1-D and 2-D grids equals its closed form", arguments: [1, 2])
    func gaussianClosedForm(dimension: Int) throws {
        let eps = 0.1
        let n = dimension == 1 ? 151 : 81, h = dimension == 1 ? 0.1 : 0.125
        func closed(_ m1: Double, _ a: Double, _ m2: Double, _ b: Double) -> Double {
            let c = (-eps + (eps * eps + 16 * a * b).squareRoot()) / 4
            return (m1 - m2) * (m1 - m2) + a + b - 2 * c - eps / 2 * log(1 - c * c / (a * b))
        }
        // Axis means and deviations, at least 7 deviations inside the grid ([0, 15] in 1-D,
        // [0, 10]^2 in 2-D, where the second axis differs from the first).
        let means: [(Double, Double)] = dimension == 1 ? [(7, 8)] : [(4.6, 5.4), (5.2, 4.8)]
        let deviations: [(Double, Double)] = dimension == 1 ? [(1, 0.5)] : [(0.6, 0.4), (0.5, 0.45)]
        func gaussian(_ which: Int) -> [Double] {
            let w = (0 ..< Int(pow(Double(n), Double(dimension)))).map { i -> Double in
                var e = 0.0, rest = i
                for a in stride(from: dimension - 1, through: 0, by: -1) {
                    let xa = h * Double(rest % n)
                    rest /= n
                    let m = which == 0 ? means[a].0 : means[a].1, s = which == 0 ? deviations[a].0 : deviations[a].1
                    e += (xa - m) * (xa - m) / (2 * s * s)
                }
                return exp(-e)
            }
            let total = w.reduce(0, +)
            return w.map { $0 / total }
        }
        let geometry = try SeparableGridGeometry(pointsPerAxis: [Int](repeating: n, count: dimension), spacing: [Double](repeating: h, count: dimension))
        var driver = try EntropicSinkhorn(geometry: geometry, problem: .balanced(a: gaussian(0), b: gaussian(1)),
                                          parameters: EntropicParameters(epsilon: eps, tolerance: 1e-12))
        let o = try driver.solve()
        #expect(o.converged)
        var expected = 0.0
        for a in 0 ..< dimension {
            expected += closed(means[a].0, deviations[a].0 * deviations[a].0, means[a].1, deviations[a].1 * deviations[a].1)
        }
        // The mutual-information term of each axis adds up: the sum is the 2-D value.
        #expect(Self.relative(o.regularizedCost, expected) <= 1e-8, "\(o.regularizedCost) vs \(expected)")
    }

    /// The debiased divergence on a 1-D grid through the driver (one balanced and two symmetric
    /// solves) against the exact W2^2 of the same two discrete measures by sorting:
    /// S_eps = W2^2 + O(eps^2) (Feydy et al. 2019), here eps = 0.01 = 4 h^2, the displacement
    /// (1) much larger than the spacing (0.05). Measured relative difference 4.3e-4; bound 1e-3.
    @Test("the grid divergence in 1-D approaches the exact W2^2 by sorting")
    func divergenceMatchesSortedW2() throws {
        let n = 221, h = 0.05
        let x = (0 ..< n).map { -5 + h * Double($0) }
        func gaussian(_ m: Double, _ sd: Double) -> [Double] {
            let w = x.map { exp(-($0 - m) * ($0 - m) / (2 * sd * sd)) }
            let total = w.reduce(0, +)
            return w.map { $0 / total }
        }
        let a = gaussian(0, 0.8), b = gaussian(1, 0.6)
        let geometry = try SeparableGridGeometry(pointsPerAxis: [n], spacing: [h])
        let parameters = try EntropicParameters(epsilon: 0.01, tolerance: 1e-11)
        var cross = try EntropicSinkhorn(geometry: geometry, problem: .balanced(a: a, b: b), parameters: parameters)
        var selfA = try EntropicSinkhorn(geometry: geometry, problem: .symmetric(a: a), parameters: parameters)
        var selfB = try EntropicSinkhorn(geometry: geometry, problem: .symmetric(a: b), parameters: parameters)
        let c = try cross.solve(), sa = try selfA.solve(), sb = try selfB.solve()
        #expect(c.converged && sa.converged && sb.converged)
        let divergence = c.regularizedCost - (sa.regularizedCost + sb.regularizedCost) / 2
        let problem = try TransportProblem(source: PointCloud(values: x, weights: a), target: PointCloud(values: x, weights: b))
        let exact = try SortedSolver().solve(problem).cost
        #expect(Self.relative(divergence, exact) <= 1e-3, "S_eps \(divergence) vs W2^2 \(exact)")
    }

    @Test("bad grids and parameters are typed errors")
    func invalidInput() throws {
        #expect(throws: WassersteinError.self) { try SeparableGridGeometry(pointsPerAxis: [], spacing: []) }
        #expect(throws: WassersteinError.self) { try SeparableGridGeometry(pointsPerAxis: [3, 3, 3, 3], spacing: [1, 1, 1, 1]) }
        #expect(throws: WassersteinError.self) { try SeparableGridGeometry(pointsPerAxis: [3, 0], spacing: [1, 1]) }
        #expect(throws: WassersteinError.self) { try SeparableGridGeometry(pointsPerAxis: [3], spacing: [.nan]) }
        #expect(throws: WassersteinError.self) { try SeparableGridGeometry(pointsPerAxis: [3], spacing: [1, 1]) }
        #expect(throws: WassersteinError.self) { try SeparableGridGeometry(pointsPerAxis: [3], spacing: [1e300]) }
        #expect(throws: WassersteinError.self) { try SeparableGridGeometry(pointsPerAxis: [3], spacing: [1], kernelTruncation: 0.5) }
        let a = [0.5, 0.5, 0]
        #expect(throws: WassersteinError.self) { try EntropicProblem.proximal(a: a, b: a, theta: 0, potential: [0, 0, 0]) }
        #expect(throws: WassersteinError.self) { try EntropicProblem.proximal(a: a, b: a, theta: 0.5, potential: [0, .nan, 0]) }
        #expect(throws: WassersteinError.self) { try EntropicProblem.proximal(a: a, b: a, theta: 0.5, potential: [0, 0]) }
    }
}
