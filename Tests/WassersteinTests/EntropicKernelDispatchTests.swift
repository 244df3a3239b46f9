import CEntropicKernels
#if canImport(Glibc)
import Glibc
#endif
import Testing
import Wasserstein

/// The C exponential sums (portable and AVX2, chosen at run time) against Swift's `entropicExp`
/// summed in the same four partial sums: the same bits, whichever loop the processor runs.
@Suite("Entropic kernel dispatch")
struct EntropicKernelDispatchTests {
    /// The reference: Swift's exponential, terms summed into s_{j mod 4}, (s0 + s1) + (s2 + s3).
    static func reference(_ c: [Double], _ t: [Double], shift: Double, invEps: Double) -> (Double, Double) {
        var s = [0.0, 0, 0, 0], w = [0.0, 0, 0, 0]
        let full = c.count / 4 * 4
        for j in 0 ..< c.count {
            let e = entropicExp((t[j] - c[j] + shift) * invEps)
            let lane = j < full ? j % 4 : 0
            s[lane] += e
            w[lane] += e * c[j]
        }
        return ((s[0] + s[1]) + (s[2] + s[3]), (w[0] + w[1]) + (w[2] + w[3]))
    }

    @Test("Dispatched, portable and Swift sums agree bit for bit, extremes included", arguments: [0, 1, 3, 4, 7, 256, 1001])
    func sameBits(_ n: Int) {
        var rng = Xoshiro256StarStar(seed: UInt64(n) + 11)
        var c = [Double](), t = [Double]()
        for j in 0 ..< n {
            c.append(rng.nextUniform() * 4)
            // Mostly ordinary terms, and some that underflow, saturate, or are zero weights.
            switch j % 17 {
            case 5: t.append(-.infinity)
            case 9: t.append(-800)
            case 13: t.append(750)
            default: t.append(rng.nextUniform() * 3 - 1.5)
            }
        }
        for (shift, invEps) in [(0.0, 1.0), (0.7, 10.0), (-2.0, 400.0)] {
            let expected = Self.reference(c, t, shift: shift, invEps: invEps)
            var w1 = 0.0, w2 = 0.0
            let s1 = ck_exp_tile_sum(c, t, n, shift, invEps, 1, &w1)
            let s2 = ck_exp_tile_sum_portable(c, t, n, shift, invEps, 1, &w2)
            #expect(s1.bitPattern == expected.0.bitPattern && s2.bitPattern == expected.0.bitPattern, "n = \(n): \(s1) \(s2) \(expected.0)")
            #expect(w1.bitPattern == expected.1.bitPattern && w2.bitPattern == expected.1.bitPattern, "n = \(n): \(w1) \(w2) \(expected.1)")
            var unused = 0.0
            #expect(ck_exp_tile_sum(c, t, n, shift, invEps, 0, &unused).bitPattern == expected.0.bitPattern)
        }
    }

    @Test("NaN propagates through both loops, as through entropicExp")
    func nanPropagates() {
        let c = [Double](repeating: 1, count: 8)
        var t = [Double](repeating: 0, count: 8)
        t[6] = .nan
        var w = 0.0
        #expect(ck_exp_tile_sum(c, t, 8, 0, 1, 0, &w).isNaN)
        #expect(ck_exp_tile_sum_portable(c, t, 8, 0, 1, 0, &w).isNaN)
        #expect(entropicExp(.nan).isNaN)
    }

    /// The convolution pass across rows (dispatched and portable) against the sum written out
    /// directly in the documented order: `t_0 s[k] + sum_d t_d (s[k - d] + s[k + d])`, then the
    /// one-sided taps; row counts below, at and beyond the window, strips of 16 and leftovers.
    @Test("Dispatched and portable convolution passes agree bit for bit with the sum written out",
          arguments: [(1, 5, 0), (7, 16, 3), (40, 37, 6), (33, 48, 40)])
    func convolutionSameBits(_ shape: (Int, Int, Int)) {
        let (n0, n1, w) = shape
        var rng = Xoshiro256StarStar(seed: UInt64(n0 * 100 + n1))
        let src = (0 ..< n0 * n1).map { _ in rng.nextUniform() * 2 }
        let taps = (0 ... w).map { d in exp(-0.3 * Double(d * d)) }
        var expected = [Double](repeating: 0, count: n0 * n1)
        for k in 0 ..< n0 {
            for j in 0 ..< n1 {
                let below = min(w, k), above = min(w, n0 - 1 - k), both = min(below, above)
                var a = taps[0] * src[k * n1 + j]
                if both >= 1 { for d in 1 ... both { a += taps[d] * (src[(k - d) * n1 + j] + src[(k + d) * n1 + j]) } }
                if below > both { for d in both + 1 ... below { a += taps[d] * src[(k - d) * n1 + j] } }
                if above > both { for d in both + 1 ... above { a += taps[d] * src[(k + d) * n1 + j] } }
                expected[j * n0 + k] = a
            }
        }
        var pack = [Double](repeating: 0, count: 16 * n0)
        var dispatched = [Double](repeating: .nan, count: n0 * n1), portable = dispatched
        // In two ranges of output rows, as the parallel loop splits them.
        let middle = n0 / 2
        for (lo, hi) in [(0, middle), (middle, n0)] {
            ck_convolve_rows_transposed(src, &dispatched, n0, n1, taps, w, lo, hi, &pack)
            ck_convolve_rows_transposed_portable(src, &portable, n0, n1, taps, w, lo, hi, &pack)
        }
        #expect(zip(dispatched, expected).allSatisfy { $0.bitPattern == $1.bitPattern })
        #expect(zip(portable, expected).allSatisfy { $0.bitPattern == $1.bitPattern })
    }

    /// The proximal update (dispatched and portable) agree bit for bit, and with the update
    /// written out with glibc's `log` and `exp` to a few ulps (its `log` is a series of our own);
    /// `z` spans 1e-300 to 1e300, zero (a free row without kernel mass) and a zero weight
    /// (`log a = -infinity`); lengths not a multiple of 4.
    @Test("Dispatched and portable proximal updates agree bit for bit and with the update written out",
          arguments: [1, 6, 37])
    func proximalUpdate(_ n: Int) {
        var rng = Xoshiro256StarStar(seed: UInt64(n) + 5)
        let z = (0 ..< n).map { i in i % 11 == 3 ? 0 : exp((rng.nextUniform() * 2 - 1) * 690) }
        let q = (0 ..< n).map { _ in rng.nextUniform() * 4 - 2 }
        let la = (0 ..< n).map { i in i % 7 == 5 ? -Double.infinity : log(rng.nextUniform() + 0.1) }
        let p0 = (0 ..< n).map { _ in rng.nextUniform() * 6 - 3 }
        let u0 = (0 ..< n).map { _ in rng.nextUniform() }
        let (cv, cu, w, omt) = (3.5, -1.25, 1.8, 0.4)
        var p1 = p0, u1 = u0, p2 = p0, u2 = u0
        var high1 = 0.0, high2 = 0.0
        let r1 = ck_proximal_update(&p1, &u1, z, q, la, n, cv, cu, w, omt, &high1)
        let r2 = ck_proximal_update_portable(&p2, &u2, z, q, la, n, cv, cu, w, omt, &high2)
        #expect(r1.bitPattern == r2.bitPattern && high1.bitPattern == high2.bitPattern)
        #expect(p1.map(\.bitPattern) == p2.map(\.bitPattern) && u1.map(\.bitPattern) == u2.map(\.bitPattern))
        var residual = 0.0, high = -Double.infinity
        func close(_ x: Double, _ y: Double) -> Bool { x == y || abs(x - y) <= 1e-13 * max(abs(x), abs(y)) }
        for i in 0 ..< n {
            let target = q[i] - omt * (log(max(z[i], 1e-280)) - cv)
            residual += z[i] * abs(u0[i] - exp(target + la[i] - cu))
            let next = p0[i] + w * (target - p0[i])
            high = max(high, next + la[i])
            #expect(close(p1[i], next), "p[\(i)]: \(p1[i]) vs \(next)")
            #expect(close(u1[i], exp(next + la[i] - cu)), "u[\(i)]: \(u1[i]) vs \(exp(next + la[i] - cu))")
        }
        #expect(close(r1, residual) && close(high1, high), "\(r1) vs \(residual), \(high1) vs \(high)")
    }
}
