import Foundation
import Testing
@testable import Wasserstein

/// The stored kernel of the dense point-cloud geometry, stabilised by absorption, against the
/// exact log-domain soft-min of ``DenseCostGeometry`` on the same costs: every path (fresh
/// kernel, absorbed rows and columns, exact repair of sums out of range, zero weights) must give
/// the exact soft-min to rounding.
@Suite("Stabilised dense kernel geometry")
struct StabilizedKernelGeometryTests {
    @Test("soft-mins equal the exact log-domain ones through fresh builds, absorption and repair",
          arguments: [0.5, 1e-3])
    func softMinMatchesLogDomain(eps: Double) throws {
        let x = try EntropicTestClouds.gaussian(15, seed: 91, randomWeights: true)
        let y = try EntropicTestClouds.gaussian(20, seed: 92, shift: 0.8)
        var a = x.weights, b = y.weights
        a[3] = 0
        b[7] = 0
        let n = x.count, m = y.count
        let exact = try DenseCostGeometry(source: x, target: y, storesKernel: false)
        let logA = a.map { $0 > 0 ? log($0) : -Double.infinity }, logB = b.map { $0 > 0 ? log($0) : -Double.infinity }
        var rng = Xoshiro256StarStar(seed: 93)
        // Potentials of a few cost units: at eps = 1e-3 the first kernel (offsets 0 for the rows)
        // underflows for most rows, which must be repaired exactly.
        var f = (0 ..< n).map { _ in 2 * rng.nextUniform() - 1 }
        var g = (0 ..< m).map { _ in 2 * rng.nextUniform() - 1 }
        let workspace = SinkhornWorkspace()
        var stats = SinkhornStatistics()
        try x.coordinates.withUnsafeBufferPointer { xp in
            try y.coordinates.withUnsafeBufferPointer { yp in
                try a.withUnsafeBufferPointer { ap in
                    try b.withUnsafeBufferPointer { bp in
                        let range = try SquaredEuclideanCost.upperBound(source: x, target: y)
                        let geometry = StabilizedKernelGeometry(
                            geo: EntropicGeometry(x: xp.baseAddress!, y: yp.baseAddress!, n: n, m: m, d: 2),
                            a: ap.baseAddress!, b: bp.baseAddress!, massA: x.mass, massB: y.mass,
                            buffers: workspace, costRange: range)
                        var rows = [Double](repeating: .nan, count: n), columns = [Double](repeating: .nan, count: m)
                        // Four rounds; between rounds the potentials move by up to 200 eps, so
                        // offsets drift out of reach and are absorbed.
                        for round in 0 ..< 4 {
                            for (transposed, potential, weights) in [(false, g, logB), (true, f, logA)] {
                                var expected = [Double](repeating: .nan, count: transposed ? m : n)
                                potential.withUnsafeBufferPointer { pb in weights.withUnsafeBufferPointer { wb in
                                    expected.withUnsafeMutableBufferPointer { eb in
                                        exact.softMin(pb, logWeights: wb, epsilon: eps, transposed: transposed, into: eb)
                                    } } }
                                var out = transposed ? columns : rows
                                potential.withUnsafeBufferPointer { pb in weights.withUnsafeBufferPointer { wb in
                                    out.withUnsafeMutableBufferPointer { ob in
                                        geometry.softMin(pb, logWeights: wb, epsilon: eps, transposed: transposed, into: ob)
                                    } } }
                                expectExactSoftMin(out, expected, round: round, transposed: transposed)
                                if transposed { columns = out } else { rows = out }
                            }
                            f = f.map { $0 + eps * 200 * (rng.nextUniform() - 0.5) }
                            g = g.map { $0 + eps * 200 * (rng.nextUniform() - 0.5) }
                        }
                        stats = geometry.state.stats
                    }
                }
            }
        }
        // The rounds went through the paths under test.
        #expect(stats.partialRebuilds + stats.kernelBuilds > 1)
        if eps < 0.01 { #expect(stats.logDomainUpdates > 0) }
    }
}

/// A soft-min over a stored kernel equals the exact log-domain one: finite, and to 1e-12 of the
/// largest output (or of 1).
func expectExactSoftMin(_ out: [Double], _ expected: [Double], round: Int, transposed: Bool) {
    let scale = Swift.max(1, expected.map(abs).max()!)
    let worst = zip(out, expected).map { abs($0 - $1) }.max()!
    #expect(out.allSatisfy { $0.isFinite }, "round \(round), transposed \(transposed)")
    #expect(worst <= 1e-12 * scale, "round \(round), transposed \(transposed): \(worst)")
}

/// The stored kernel of ``DenseCostGeometry`` against its own log-domain soft-min
/// (`storesKernel: false`) on a user cost matrix (`|x - y|`, not the squared cost the balanced
/// core recomputes): the same paths as above (fresh build, absorption, exact repair, zero
/// weights) and a change of epsilon must give the exact soft-min to rounding.
@Suite("Dense cost geometry's stored kernel")
struct DenseKernelCacheTests {
    @Test("stored-kernel soft-mins equal the log-domain ones", arguments: [0.5, 1e-3])
    func softMinMatchesLogDomain(eps: Double) throws {
        let x = try EntropicTestClouds.gaussian(15, seed: 94, randomWeights: true)
        let y = try EntropicTestClouds.gaussian(20, seed: 95, shift: 0.8)
        let n = x.count, m = y.count
        var costs = [Double](repeating: 0, count: n * m)
        for i in 0 ..< n {
            for j in 0 ..< m {
                let d0 = x.coordinates[2 * i] - y.coordinates[2 * j], d1 = x.coordinates[2 * i + 1] - y.coordinates[2 * j + 1]
                costs[i * m + j] = (d0 * d0 + d1 * d1).squareRoot()
            }
        }
        let stored = try DenseCostGeometry(costs: costs, sourceCount: n, targetCount: m)
        let exact = try DenseCostGeometry(costs: costs, sourceCount: n, targetCount: m, storesKernel: false)
        var a = x.weights, b = y.weights
        a[4] = 0
        b[9] = 0
        let logA = a.map { $0 > 0 ? log($0) : -Double.infinity }, logB = b.map { $0 > 0 ? log($0) : -Double.infinity }
        var rng = Xoshiro256StarStar(seed: 96)
        var f = (0 ..< n).map { _ in 2 * rng.nextUniform() - 1 }
        var g = (0 ..< m).map { _ in 2 * rng.nextUniform() - 1 }
        var rows = [Double](repeating: .nan, count: n), columns = [Double](repeating: .nan, count: m)
        // Four rounds at eps, then one at 2 eps (a fresh kernel); potentials move by up to 200 eps
        // between rounds, so offsets drift out of reach and are absorbed.
        for (round, epsilon) in [eps, eps, eps, eps, 2 * eps].enumerated() {
            for (transposed, potential, weights) in [(false, g, logB), (true, f, logA)] {
                var expected = [Double](repeating: .nan, count: transposed ? m : n)
                var expectedSpan = expected.mutableSpan
                exact.softMin(potential.span, logWeights: weights.span, epsilon: epsilon, transposed: transposed,
                              into: &expectedSpan)
                var out = transposed ? columns : rows
                var outSpan = out.mutableSpan
                stored.softMin(potential.span, logWeights: weights.span, epsilon: epsilon, transposed: transposed,
                               into: &outSpan)
                expectExactSoftMin(out, expected, round: round, transposed: transposed)
                if transposed { columns = out } else { rows = out }
            }
            f = f.map { $0 + eps * 200 * (rng.nextUniform() - 0.5) }
            g = g.map { $0 + eps * 200 * (rng.nextUniform() - 0.5) }
        }
        // The rounds went through the paths under test: two fresh builds (eps, 2 eps), absorption,
        // and at the small eps exact repairs.
        let cache = try #require(stored.kernelCache)
        #expect(cache.builds >= 2)
        #expect(cache.rebuilds + cache.builds > 2)
        #expect(cache.epsilon == 2 * eps)
        if eps < 0.01 { #expect(cache.repairs > 0) }
    }

    @Test("unbalanced OT on the stored kernel equals the log-domain solve", arguments: [0.1, 0.005])
    func unbalancedMatchesLogDomain(eps: Double) throws {
        let x = try EntropicTestClouds.gaussian(40, seed: 97, randomWeights: true)
        var y = try EntropicTestClouds.gaussian(50, seed: 98, shift: 0.5)
        y = try PointCloud(coordinates: y.coordinates, dimension: 2, weights: y.weights.map { 1.4 * $0 })
        let parameters = try EntropicParameters(epsilon: eps, tolerance: 1e-11, maxIterations: 20_000)
        let stored = try EntropicEngine.unbalanced(DenseCostGeometry(source: x, target: y), a: x.weights, b: y.weights,
                                                   sourcePenalty: 1, targetPenalty: 2, parameters: parameters)
        let exact = try EntropicEngine.unbalanced(DenseCostGeometry(source: x, target: y, storesKernel: false), a: x.weights,
                                                  b: y.weights, sourcePenalty: 1, targetPenalty: 2, parameters: parameters)
        #expect(stored.converged && exact.converged)
        #expect(abs(stored.regularizedCost - exact.regularizedCost) <= 1e-10 * abs(exact.regularizedCost))
        #expect(abs(stored.transportCost - exact.transportCost) <= 1e-9 * abs(exact.transportCost))
        let top = exact.f.map(abs).max()!
        #expect(zip(stored.f, exact.f).allSatisfy { abs($0 - $1) <= 1e-9 * Swift.max(1, top) })
    }
}
