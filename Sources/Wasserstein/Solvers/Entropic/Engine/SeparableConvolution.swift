import CEntropicKernels
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A separable convolution with symmetric taps on a regular grid in 1, 2 or 3 dimensions:
/// `(K v)_i = sum_j prod_a t_a(|i_a - j_a|) v_j`, `O(N (w_0 + ... + w_{D-1}))` work instead of
/// the `O(N^2)` of the dense sum. ``SeparableGridGeometry`` applies its Gibbs kernel
/// `K_ij = exp(-|x_i - x_j|^2 / eps)` (kernel mode) and the cost-weighted kernels of its
/// transport cost with it.
///
/// Both passes are register-blocked (a block of outputs stays in registers for the whole window
/// instead of being re-loaded and re-stored per tap) and, in 2-D and 3-D, use the symmetric form
/// `t_d (s[k - d] + s[k + d])`: half the multiplies. The passes are then bound by the FP add
/// rate; the 2-D and 3-D pass runs AVX2 where the processor has it (``convolveRowsTransposed``). Every output's sum order depends only on its
/// position, whatever the number of cores, so results are deterministic.
struct SeparableConvolution: Sendable {
    /// Points per axis, row-major (axis 0 slowest).
    let pointsPerAxis: [Int]
    /// Per axis, the taps `t_a(d)` for `d = 0 ... w_a` (`w_a <= n_a - 1`).
    let taps: [[Double]]
    /// Per axis, the taps laid out for the contiguous 1-D pass: `padded[p + w + d] = taps[|d|]`
    /// for `|d| <= w`, and `p = blockPadding` zeros at each end (see ``convolveContiguous``).
    let paddedTaps: [[Double]]

    /// Outputs per register block of the contiguous 1-D pass (and zeros padding its tap table).
    static let blockPadding = 7

    /// - Parameters:
    ///   - pointsPerAxis: `n_a >= 1` per axis, 1 to 3 axes.
    ///   - taps: per axis `t_a(0 ... w_a)`, `1 <= taps[a].count <= n_a`.
    init(pointsPerAxis: [Int], taps: [[Double]]) {
        self.pointsPerAxis = pointsPerAxis
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
        let n = pointsPerAxis
        switch n.count {
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
    /// The loop is `ck_convolve_rows_transposed` of the C target `CEntropicKernels`: AVX2 where the
    /// processor has it (four doubles per operation against SSE2's two: the pass is bound by the
    /// FP adds and the loads), the portable loop otherwise, the same operations in the same order,
    /// so the same bits on every machine. Written so the FP adders, not loads and stores, bound
    /// it: 16 columns of one output row stay in registers over the whole window, and the
    /// symmetric form needs one multiply per pair of taps. Each chunk first packs a 16-column
    /// strip of the rows its windows reach into a contiguous buffer: read in place, rows `8 n1`
    /// bytes apart fall into a few L1 sets (for `n1 = 128`, only 12 of 64) and the strip thrashes
    /// L1. The transposed store (one scalar store per 70-odd multiply-adds) replaces a separate
    /// transpose pass.
    static func convolveRowsTransposed(_ src: UnsafePointer<Double>, _ dst: UnsafeMutablePointer<Double>, rows n0: Int, length n1: Int, taps: [Double]) {
        let w = taps.count - 1
        taps.withUnsafeBufferPointer { tp in
            nonisolated(unsafe) let t = tp.baseAddress!
            let chunk = max(1, 32_768 / max(1, n1 * (w + 1)))
            Parallel.forEachChunk(count: n0, minimumChunk: chunk) { range in
                let pack = UnsafeMutablePointer<Double>.allocate(capacity: 16 * n0)
                defer { pack.deallocate() }
                ck_convolve_rows_transposed(src, dst, n0, n1, t, w, range.lowerBound, range.upperBound, pack)
            }
        }
    }
}
