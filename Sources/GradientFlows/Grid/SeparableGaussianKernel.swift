#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Wasserstein

/// The Gibbs kernel `K_ij = exp(-|x_i - x_j|^2 / gamma)` of the squared Euclidean cost on a
/// ``RegularGrid``, applied as a separable convolution: `K = K_0 (x) ... (x) K_{D-1}` with
/// `K_a[k, l] = exp(-h_a^2 (k - l)^2 / gamma)`, so `K v` costs `O(N (w_0 + ... + w_{D-1}))`
/// instead of `O(N^2)`.
///
/// Each 1-D kernel is truncated where it falls below `1e-40` (half-width
/// `w_a = ceil(sqrt(92 gamma) / h_a)`); the dropped entries change `K v` by less than `1e-40` of
/// `max v`, far below the tolerances of the schemes using it.
///
/// Both passes are register-blocked (a block of outputs stays in registers for the whole window
/// instead of being re-loaded and re-stored per tap) and, in 2-D and 3-D, use the symmetric form
/// `t_d (s[k - d] + s[k + d])`: half the multiplies. On the default x86-64 target (SSE2, no FMA)
/// the passes are then bound by the FP add rate. Every output's sum order depends only on its
/// position, whatever the number of cores, so results are deterministic.
struct SeparableGaussianKernel: Sendable {
    let grid: RegularGrid
    let gamma: Double
    /// Per axis, `exp(-(h_a d)^2 / gamma)` for `d = 0 ... w_a`.
    let taps: [[Double]]
    /// Per axis, the taps laid out for the contiguous 1-D pass: `padded[p + w + d] = taps[|d|]`
    /// for `|d| <= w`, and `p = blockPadding` zeros at each end (see ``convolveContiguous``).
    let paddedTaps: [[Double]]

    /// Outputs per register block of the contiguous 1-D pass (and zeros padding its tap table).
    static let blockPadding = 7

    /// - Parameter truncation: taps below this value are dropped (`1e-40` for JKO steps, whose
    ///   displacements are short; `1e-300` for distances between far-apart densities).
    init(grid: RegularGrid, gamma: Double, truncation: Double = 1e-40) {
        self.grid = grid
        self.gamma = gamma
        let h = grid.spacing
        let reach = (-log(truncation) * gamma).squareRoot()
        let taps = (0 ..< grid.dimension).map { a in
            let width = Int(clampingCount: reach / h[a] + 1, limit: grid.pointsPerAxis[a] - 1)
            return (0 ... width).map { d in exp(-(h[a] * Double(d)) * (h[a] * Double(d)) / gamma) }
        }
        self.taps = taps
        let p = Self.blockPadding
        paddedTaps = taps.map { t in
            let w = t.count - 1
            var padded = [Double](repeating: 0, count: 2 * w + 1 + 2 * p)
            for d in -w ... w { padded[p + w + d] = t[abs(d)] }
            return padded
        }
    }

    /// `out = K v` (out and v must not alias; v finite); `scratch` has the grid's size (2-D and 3-D).
    ///
    /// 2-D: `K v = K_0 V K_1` for `V` the `n0 x n1` row-major values, as two passes that each
    /// convolve across rows (vectorised over a row's contiguous entries, no shuffles) and store
    /// their result transposed: `scratch = (K_0 V)^T`, then `out = (K_1 scratch)^T`.
    ///
    /// 3-D: the same pass three times. Viewing the `n0 x n1 x n2` values as an `n0 x (n1 n2)`
    /// matrix, a pass along axis 0 stored transposed leaves them in the order `(n1, n2, n0)`: the
    /// next axis is again the slowest. Three passes (`v -> out -> scratch -> out`) rotate the axes
    /// back to `(n0, n1, n2)`, so no separate transpose and no strided convolution is needed.
    func apply(_ v: UnsafeBufferPointer<Double>, into out: UnsafeMutableBufferPointer<Double>, scratch: UnsafeMutableBufferPointer<Double>) {
        let n = grid.pointsPerAxis
        switch grid.dimension {
        case 1:
            paddedTaps[0].withUnsafeBufferPointer { pt in
                Self.convolveContiguous(v.baseAddress!, out.baseAddress!, length: n[0], paddedTaps: pt)
            }
        case 2:
            Self.convolveRowsTransposed(v.baseAddress!, scratch.baseAddress!, rows: n[0], length: n[1], taps: taps[0])
            Self.convolveRowsTransposed(UnsafePointer(scratch.baseAddress!), out.baseAddress!, rows: n[1], length: n[0], taps: taps[1])
        default:
            Self.convolveRowsTransposed(v.baseAddress!, out.baseAddress!, rows: n[0], length: n[1] * n[2], taps: taps[0])
            Self.convolveRowsTransposed(UnsafePointer(out.baseAddress!), scratch.baseAddress!, rows: n[1], length: n[2] * n[0], taps: taps[1])
            Self.convolveRowsTransposed(UnsafePointer(scratch.baseAddress!), out.baseAddress!, rows: n[2], length: n[0] * n[1], taps: taps[2])
        }
    }

    /// 1-D convolution of one contiguous row of `n` values (1-D grids):
    /// `dst[k] = sum_l taps[|k - l|] src[l]`, in blocks of 8 outputs held in four `SIMD2`
    /// accumulators over the union of their windows; the padded tap table gives the block's
    /// pairs of taps as single unaligned loads, with zeros where a source falls outside an
    /// output's window (adding `0 * s` leaves a finite sum unchanged, so each output is still its
    /// own window's sum in ascending order).
    static func convolveContiguous(_ src: UnsafePointer<Double>, _ dst: UnsafeMutablePointer<Double>, length n: Int, paddedTaps pt: UnsafeBufferPointer<Double>) {
        let p = blockPadding
        let w = (pt.count - 1 - 2 * p) / 2
        let base = pt.baseAddress! + p + w     // base[d] = taps[|d|] for |d| <= w
        let blocks = n / 8
        Parallel.forEachChunk(count: blocks + 1, minimumChunk: max(1, 32_768 / (8 * (2 * w + 8)))) { range in
            for b in range {
                if b == blocks {
                    // The last n % 8 outputs, one at a time.
                    for k in 8 * blocks ..< n {
                        let lo = max(0, k - w), hi = min(n - 1, k + w)
                        var acc = 0.0
                        for l in lo ... hi { acc += base[k - l] * src[l] }
                        dst[k] = acc
                    }
                    continue
                }
                let k0 = 8 * b
                let lo = max(0, k0 - w), hi = min(n - 1, k0 + 7 + w)
                var a0 = SIMD2<Double>(), a1 = SIMD2<Double>(), a2 = SIMD2<Double>(), a3 = SIMD2<Double>()
                for l in lo ... hi {
                    let s = SIMD2<Double>(repeating: src[l])
                    let t = UnsafeRawPointer(base + (k0 - l))
                    a0 += t.loadUnaligned(as: SIMD2<Double>.self) * s
                    a1 += t.loadUnaligned(fromByteOffset: 16, as: SIMD2<Double>.self) * s
                    a2 += t.loadUnaligned(fromByteOffset: 32, as: SIMD2<Double>.self) * s
                    a3 += t.loadUnaligned(fromByteOffset: 48, as: SIMD2<Double>.self) * s
                }
                let o = UnsafeMutableRawPointer(dst + k0)
                o.storeBytes(of: a0, as: SIMD2<Double>.self)
                o.storeBytes(of: a1, toByteOffset: 16, as: SIMD2<Double>.self)
                o.storeBytes(of: a2, toByteOffset: 32, as: SIMD2<Double>.self)
                o.storeBytes(of: a3, toByteOffset: 48, as: SIMD2<Double>.self)
            }
        }
    }

    /// Convolution across the rows of `src` (`n0 x n1`, row-major), stored transposed:
    /// `dst[j * n0 + k] = t_0 src[k, j] + sum_{d >= 1} t_d (src[k - d, j] + src[k + d, j])`
    /// (terms off the grid left out), `d` ascending, so every entry's sum order depends only on
    /// its position, never on how rows are split over cores.
    ///
    /// Written so the FP adders, not loads and stores, bound it: 16 columns of one output row stay
    /// in eight `SIMD2` accumulators over the whole window, and the symmetric form needs one
    /// multiply per pair of taps. Each chunk first packs a 16-column strip of the rows its windows
    /// reach into a contiguous buffer: read in place, rows `8 n1` bytes apart fall into a few L1
    /// sets (for `n1 = 128`, only 12 of 64) and the strip thrashes L1. The transposed store
    /// (one scalar store per 70-odd multiply-adds) replaces a separate transpose pass.
    static func convolveRowsTransposed(_ src: UnsafePointer<Double>, _ dst: UnsafeMutablePointer<Double>, rows n0: Int, length n1: Int, taps: [Double]) {
        let w = taps.count - 1
        taps.withUnsafeBufferPointer { tp in
            let t = tp.baseAddress!
            typealias V2 = SIMD2<Double>
            @inline(__always) func ld(_ p: UnsafePointer<Double>, _ i: Int) -> V2 { UnsafeRawPointer(p + 2 &* i).loadUnaligned(as: V2.self) }
            @inline(__always) func st(_ a: V2, _ j: Int, _ k: Int) {
                dst[j &* n0 &+ k] = a[0]; dst[(j &+ 1) &* n0 &+ k] = a[1]
            }
            @inline(__always) func block16(_ k: Int, _ j0: Int, _ packed: UnsafePointer<Double>) {
                let n1 = 16
                let both = min(w, k, n0 &- 1 &- k)          // d with both k - d and k + d on the grid
                let below = min(w, k), above = min(w, n0 &- 1 &- k)
                let centre = packed + k &* 16
                let c0 = V2(repeating: t[0])
                var a0 = c0 * ld(centre, 0), a1 = c0 * ld(centre, 1), a2 = c0 * ld(centre, 2), a3 = c0 * ld(centre, 3)
                var a4 = c0 * ld(centre, 4), a5 = c0 * ld(centre, 5), a6 = c0 * ld(centre, 6), a7 = c0 * ld(centre, 7)
                var up = centre, down = centre
                var d = 1
                while d <= both {
                    up -= n1; down += n1
                    let c = V2(repeating: t[d])
                    a0 += c * (ld(up, 0) + ld(down, 0)); a1 += c * (ld(up, 1) + ld(down, 1))
                    a2 += c * (ld(up, 2) + ld(down, 2)); a3 += c * (ld(up, 3) + ld(down, 3))
                    a4 += c * (ld(up, 4) + ld(down, 4)); a5 += c * (ld(up, 5) + ld(down, 5))
                    a6 += c * (ld(up, 6) + ld(down, 6)); a7 += c * (ld(up, 7) + ld(down, 7))
                    d &+= 1
                }
                // one-sided taps near the edges (at most one of the two loops runs)
                var e = d
                while e <= below {
                    up -= n1
                    let c = V2(repeating: t[e])
                    a0 += c * ld(up, 0); a1 += c * ld(up, 1); a2 += c * ld(up, 2); a3 += c * ld(up, 3)
                    a4 += c * ld(up, 4); a5 += c * ld(up, 5); a6 += c * ld(up, 6); a7 += c * ld(up, 7)
                    e &+= 1
                }
                e = d
                while e <= above {
                    down += n1
                    let c = V2(repeating: t[e])
                    a0 += c * ld(down, 0); a1 += c * ld(down, 1); a2 += c * ld(down, 2); a3 += c * ld(down, 3)
                    a4 += c * ld(down, 4); a5 += c * ld(down, 5); a6 += c * ld(down, 6); a7 += c * ld(down, 7)
                    e &+= 1
                }
                st(a0, j0, k); st(a1, j0 &+ 2, k); st(a2, j0 &+ 4, k); st(a3, j0 &+ 6, k)
                st(a4, j0 &+ 8, k); st(a5, j0 &+ 10, k); st(a6, j0 &+ 12, k); st(a7, j0 &+ 14, k)
            }
            @inline(__always) func block2(_ k: Int, _ j0: Int) {
                let both = min(w, k, n0 &- 1 &- k)
                let below = min(w, k), above = min(w, n0 &- 1 &- k)
                let centre = src + (k &* n1 &+ j0)
                var a0 = V2(repeating: t[0]) * ld(centre, 0)
                var up = centre, down = centre
                var d = 1
                while d <= both {
                    up -= n1; down += n1
                    a0 += V2(repeating: t[d]) * (ld(up, 0) + ld(down, 0))
                    d &+= 1
                }
                var e = d
                while e <= below { up -= n1; a0 += V2(repeating: t[e]) * ld(up, 0); e &+= 1 }
                e = d
                while e <= above { down += n1; a0 += V2(repeating: t[e]) * ld(down, 0); e &+= 1 }
                st(a0, j0, k)
            }
            let chunk = max(1, 32_768 / max(1, n1 * (w + 1)))
            Parallel.forEachChunk(count: n0, minimumChunk: chunk) { range in
                var j0 = 0
                let first = max(0, range.lowerBound - w), last = min(n0 - 1, range.upperBound - 1 + w)
                let pack = UnsafeMutablePointer<Double>.allocate(capacity: 16 * n0)
                defer { pack.deallocate() }
                while j0 &+ 16 <= n1 {
                    for r in first ... last {
                        let s = src + (r &* n1 &+ j0), p = pack + r &* 16
                        for i in 0 ..< 16 { p[i] = s[i] }
                    }
                    for k in range { block16(k, j0, pack) }
                    j0 &+= 16
                }
                while j0 &+ 2 <= n1 {
                    for k in range { block2(k, j0) }
                    j0 &+= 2
                }
                if j0 < n1 {
                    // last odd column, same sum order as the blocks
                    for k in range {
                        let both = min(w, k, n0 &- 1 &- k)
                        let below = min(w, k), above = min(w, n0 &- 1 &- k)
                        let centre = src + (k &* n1 &+ j0)
                        var a = t[0] * centre[0]
                        var up = centre, down = centre
                        var d = 1
                        while d <= both { up -= n1; down += n1; a += t[d] * (up[0] + down[0]); d &+= 1 }
                        var e = d
                        while e <= below { up -= n1; a += t[e] * up[0]; e &+= 1 }
                        e = d
                        while e <= above { down += n1; a += t[e] * down[0]; e &+= 1 }
                        dst[j0 &* n0 &+ k] = a
                    }
                }
            }
        }
    }
}

/// The same kernel applied in the log domain: `out = log(K exp(v))`, by separable log-sum-exp
/// passes, exact for any dynamic range of `v` (used when the kernel-mode scalings would under- or
/// overflow).
///
/// Each output is `m + log sum_l exp(e_l - m)` over its window, `e_l = tap + v_l`, `m` the
/// largest `e_l`. The maxima cost additions only; the exponentials (the expensive part) are
/// taken only for the terms within 46 of `m`: a skipped term is below `e^-46 = 1e-20` of the
/// largest, so all of them together (at most 1023 per window) move the sum by less than `1e-17`
/// relative, below double rounding. Sinkhorn potentials make the exponents nearly concave in `l`,
/// so few terms pass: about a quarter of the window at `gamma / h^2 = 2.5`, which with the
/// vectorisable exponential of ``entropicExp(_:)`` makes a pass about ten times faster than one
/// `exp` call per tap.
struct LogDomainGaussianKernel: Sendable {
    let grid: RegularGrid
    let gamma: Double
    /// Per axis, `-(h_a d)^2 / gamma` for `d = -w_a ... w_a` (window where the kernel exceeds
    /// 1e-300), laid out symmetrically: `symmetricLogTaps[a][w_a + d]`.
    let symmetricLogTaps: [[Double]]

    /// Terms this far below an output's largest term are left out (see the type's notes).
    static let negligibleExponent = 46.0

    init(grid: RegularGrid, gamma: Double) {
        self.grid = grid
        self.gamma = gamma
        let h = grid.spacing
        let reach = (690 * gamma).squareRoot()
        symmetricLogTaps = (0 ..< grid.dimension).map { a in
            let width = Int(clampingCount: reach / h[a] + 1, limit: grid.pointsPerAxis[a] - 1)
            return (-width ... width).map { d in -(h[a] * Double(d)) * (h[a] * Double(d)) / gamma }
        }
    }

    /// `out = log(K exp(v))`; `scratch` has the grid's size (2-D and 3-D).
    ///
    /// Each pass runs along the contiguous last axis and stores its result transposed (the axes
    /// rotate), so every pass reads contiguous rows: 2-D `[i0][i1] -> [i1][i0] -> [i0][i1]`, 3-D
    /// `[i0][i1][i2] -> [i2][i0][i1] -> [i1][i2][i0] -> [i0][i1][i2]` (`v -> out -> scratch -> out`).
    func apply(_ v: UnsafeBufferPointer<Double>, into out: UnsafeMutableBufferPointer<Double>, scratch: UnsafeMutableBufferPointer<Double>) {
        let n = grid.pointsPerAxis
        switch grid.dimension {
        case 1:
            Self.rowsTransposed(v.baseAddress!, out.baseAddress!, rows: 1, length: n[0], taps: symmetricLogTaps[0])
        case 2:
            Self.rowsTransposed(v.baseAddress!, scratch.baseAddress!, rows: n[0], length: n[1], taps: symmetricLogTaps[1])
            Self.rowsTransposed(UnsafePointer(scratch.baseAddress!), out.baseAddress!, rows: n[1], length: n[0], taps: symmetricLogTaps[0])
        default:
            Self.rowsTransposed(v.baseAddress!, out.baseAddress!, rows: n[0] * n[1], length: n[2], taps: symmetricLogTaps[2])
            Self.rowsTransposed(UnsafePointer(out.baseAddress!), scratch.baseAddress!, rows: n[2] * n[0], length: n[1], taps: symmetricLogTaps[1])
            Self.rowsTransposed(UnsafePointer(scratch.baseAddress!), out.baseAddress!, rows: n[1] * n[2], length: n[0], taps: symmetricLogTaps[0])
        }
    }

    /// `dst[k * rows + r] = log sum_l exp(taps[w + l - k] + src[r * n + l])` over `|l - k| <= w`,
    /// for every row `r` of `n` contiguous values (the result transposed).
    static func rowsTransposed(_ src: UnsafePointer<Double>, _ dst: UnsafeMutablePointer<Double>, rows: Int, length n: Int, taps: [Double]) {
        let w = (taps.count - 1) / 2
        taps.withUnsafeBufferPointer { tp in
            let centre = tp.baseAddress! + w      // centre[d] = -(h d)^2 / gamma for |d| <= w
            Parallel.forEachChunk(count: rows, minimumChunk: max(1, 16_384 / max(1, n * (2 * w + 1)))) { range in
                // Plain while loops and comparisons: the same machine code as ranges and
                // `max` in a release build, and several times faster in a debug one, where the
                // test suite runs this kernel on 64 x 64 grids.
                var r = range.lowerBound
                while r < range.upperBound {
                    let s = src + r &* n
                    var k = 0
                    while k < n {
                        let lo = k > w ? k &- w : 0, hi = k &+ w < n ? k &+ w : n &- 1
                        let t = centre - k
                        var m = -Double.infinity
                        var l = lo
                        while l <= hi {
                            let e = t[l] + s[l]
                            if e > m { m = e }
                            l &+= 1
                        }
                        if m == -.infinity {
                            dst[k &* rows &+ r] = -.infinity
                        } else {
                            let cutoff = m - negligibleExponent
                            var sum = 0.0
                            l = lo
                            while l <= hi {
                                let e = t[l] + s[l]
                                if e > cutoff { sum += entropicExp(e - m) }
                                l &+= 1
                            }
                            dst[k &* rows &+ r] = m + log(sum)
                        }
                        k &+= 1
                    }
                    r &+= 1
                }
            }
        }
    }
}
