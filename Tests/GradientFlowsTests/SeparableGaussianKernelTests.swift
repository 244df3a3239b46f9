import Testing
import Wasserstein
@testable import GradientFlows

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

@Suite("Separable Gaussian kernel")
struct SeparableGaussianKernelTests {
    /// `K v` by the definition, `sum_j exp(-|x_i - x_j|^2 / gamma) v_j` over all pairs of grid
    /// points (`RegularGrid.points`), with no separation, truncation or blocking.
    static func denseApply(_ grid: RegularGrid, gamma: Double, _ v: [Double]) -> [Double] {
        let x = grid.points, d = grid.dimension, n = grid.count
        return (0 ..< n).map { i in
            var acc = 0.0
            for j in 0 ..< n {
                var r2 = 0.0
                for a in 0 ..< d { let e = x[i * d + a] - x[j * d + a]; r2 += e * e }
                acc += exp(-r2 / gamma) * v[j]
            }
            return acc
        }
    }

    /// The blocked separable convolution against the dense O(N^2) sum, per entry to 1e-12 of
    /// max |K v|: the two differ by rounding (a few ulps per term, sums of <= N terms of the same
    /// sign) and by the truncated taps (< 1e-40 of max |v|). Sizes are odd and non-square so that
    /// every blocking remainder path runs (1-D: n % 8 != 0; 2-D: columns % 16 and % 4 != 0, and
    /// the transposed pass sees 13-long rows); gamma spans a few cells (interior windows), a
    /// kernel wider than the grid (the window clamps at n - 1 taps), and widths in between.
    /// Signed values check that no cancellation-hiding sign assumption slipped in.
    @Test("apply equals the dense Gaussian sum on small 1-D and 2-D grids",
          arguments: [[13], [31], [8], [13, 17], [17, 13], [9, 40], [40, 9], [8, 8]], [0.02, 0.3, 50.0])
    func matchesDenseSum(points: [Int], gamma: Double) throws {
        let d = points.count
        let grid = try RegularGrid(lowerBounds: [Double](repeating: -1, count: d), upperBounds: (0 ..< d).map { 1 + 0.5 * Double($0) }, pointsPerAxis: points)
        var rng = Xoshiro256StarStar(seed: UInt64(grid.count) &* 7919 &+ UInt64(gamma * 1000))
        let v = (0 ..< grid.count).map { _ in Double(rng.next() >> 11) / Double(1 << 53) - 0.3 }
        let kernel = SeparableGaussianKernel(grid: grid, gamma: gamma)
        var out = [Double](repeating: .nan, count: grid.count)
        var scratch = [Double](repeating: .nan, count: grid.count)
        v.withUnsafeBufferPointer { vp in out.withUnsafeMutableBufferPointer { op in scratch.withUnsafeMutableBufferPointer { sp in
            kernel.apply(vp, into: op, scratch: sp) } } }
        let reference = Self.denseApply(grid, gamma: gamma, v)
        let scale = reference.map(abs).max()!
        #expect(scale > 0)
        let worst = zip(out, reference).map { abs($0 - $1) }.max()!
        #expect(worst <= 1e-12 * scale, "max |apply - dense| = \(worst), max |dense| = \(scale)")
        // the wide case really exercises the clamped window (taps cover the whole axis)
        if gamma == 50 { #expect(kernel.taps.indices.allSatisfy { kernel.taps[$0].count == points[$0] }) }
    }

    /// A grid larger than one register block in every direction, with 2 cores splitting rows:
    /// the same result as the dense sum (the chunked paths), and bitwise the same on a second call
    /// (nothing depends on scheduling).
    @Test("apply on a 37 x 70 grid: dense agreement and bitwise repeatability")
    func largerGridDeterministic() throws {
        let grid = try RegularGrid(lowerBounds: [-2, -3], upperBounds: [2, 3], pointsPerAxis: [37, 70])
        var rng = Xoshiro256StarStar(seed: 12345)
        let v = (0 ..< grid.count).map { _ in Double(rng.next() >> 11) / Double(1 << 53) }
        let kernel = SeparableGaussianKernel(grid: grid, gamma: 0.1)
        func run() -> [Double] {
            var out = [Double](repeating: .nan, count: grid.count)
            var scratch = [Double](repeating: .nan, count: grid.count)
            v.withUnsafeBufferPointer { vp in out.withUnsafeMutableBufferPointer { op in scratch.withUnsafeMutableBufferPointer { sp in
                kernel.apply(vp, into: op, scratch: sp) } } }
            return out
        }
        let first = run(), second = run()
        #expect(first == second)
        let reference = Self.denseApply(grid, gamma: 0.1, v)
        let scale = reference.map(abs).max()!
        let worst = zip(first, reference).map { abs($0 - $1) }.max()!
        // tolerance as above
        #expect(worst <= 1e-12 * scale, "max |apply - dense| = \(worst), max |dense| = \(scale)")
    }

    /// The log-domain kernel against the log-sum-exp by definition over the same square window,
    /// on inputs spanning 5000 in the exponent (where the kernel mode over- and underflows).
    /// The skipped terms are below e^-46 of an output's largest term, so the two agree to
    /// rounding: 1e-12 of max(1, |out|) (the outputs reach a few thousand, whose ulp is 5e-13).
    @Test("the log-domain kernel equals log(K exp(v)) by definition, across a wide dynamic range",
          arguments: [[29], [13, 17], [17, 9], [8, 10, 9]], [0.004, 0.05, 2.0])
    func logDomainMatchesDefinition(points: [Int], gamma: Double) throws {
        let d = points.count
        let grid = try RegularGrid(lowerBounds: [Double](repeating: -1, count: d), upperBounds: [Double](repeating: 1, count: d), pointsPerAxis: points)
        let kernel = LogDomainGaussianKernel(grid: grid, gamma: gamma)
        var rng = Xoshiro256StarStar(seed: UInt64(grid.count) &* 31 &+ UInt64(gamma * 1000))
        // Smooth large-scale trends (as Sinkhorn potentials over gamma) plus noise, some -infinity cells.
        let x = grid.points
        var v = (0 ..< grid.count).map { i -> Double in
            var s = 0.0
            for a in 0 ..< d { s += 1500 * x[i * d + a] * (a == 0 ? 1 : -0.7) }
            return s + 40 * rng.nextGaussian()
        }
        for i in stride(from: 3, to: grid.count, by: 11) { v[i] = -.infinity }
        var out = [Double](repeating: 0, count: grid.count), scratch = out
        v.withUnsafeBufferPointer { vp in out.withUnsafeMutableBufferPointer { op in scratch.withUnsafeMutableBufferPointer { sp in
            kernel.apply(vp, into: op, scratch: sp) } } }
        let widths = kernel.symmetricLogTaps.map { ($0.count - 1) / 2 }
        let n = grid.pointsPerAxis, h = grid.spacing
        // Row-major multi-index of a point.
        func index(_ i: Int) -> [Int] {
            var rest = i
            return Array((0 ..< d).reversed().map { a -> Int in defer { rest /= n[a] }; return rest % n[a] }.reversed())
        }
        for i in 0 ..< grid.count {
            let ii = index(i)
            var terms = [Double]()
            for j in 0 ..< grid.count where v[j] > -.infinity {
                let jj = index(j)
                guard (0 ..< d).allSatisfy({ abs(ii[$0] - jj[$0]) <= widths[$0] }) else { continue }
                var c = 0.0
                for a in 0 ..< d { let t = h[a] * Double(ii[a] - jj[a]); c += t * t }
                terms.append(v[j] - c / gamma)
            }
            let m = terms.max() ?? -.infinity
            let expected = m == -.infinity ? m : m + log(terms.reduce(0) { $0 + exp($1 - m) })
            if expected == -.infinity {
                #expect(out[i] == -.infinity)
            } else {
                #expect(abs(out[i] - expected) <= 1e-12 * max(1, abs(expected)), "cell \(i): \(out[i]) against \(expected)")
            }
        }
    }
}
