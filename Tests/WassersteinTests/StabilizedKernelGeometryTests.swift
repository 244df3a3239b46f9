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
        let exact = try DenseCostGeometry(source: x, target: y)
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
                                let scale = Swift.max(1, expected.map(abs).max()!)
                                let worst = zip(out, expected).map { abs($0 - $1) }.max()!
                                #expect(out.allSatisfy { $0.isFinite }, "round \(round), transposed \(transposed)")
                                #expect(worst <= 1e-12 * scale, "round \(round), transposed \(transposed): \(worst)")
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
