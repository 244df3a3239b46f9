#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Wasserstein

/// The Gibbs kernel `K_ij = exp(-|x_i - x_j|^2 / gamma)` of the squared Euclidean cost on a
/// ``RegularGrid``, applied as a separable convolution: `K = K_0 (x) K_1` with
/// `K_a[k, l] = exp(-h_a^2 (k - l)^2 / gamma)`, so `K v` costs `O(N (w_0 + w_1))` instead of `O(N^2)`.
///
/// Each 1-D kernel is truncated where it falls below `1e-40` (half-width
/// `w_a = ceil(sqrt(92 gamma) / h_a)`); the dropped entries change `K v` by less than `1e-40` of
/// `max v`, far below the tolerances of the schemes using it.
struct SeparableGaussianKernel: Sendable {
    let grid: RegularGrid
    let gamma: Double
    /// Per axis, `exp(-(h_a d)^2 / gamma)` for `d = 0 ... w_a`.
    let taps: [[Double]]

    /// - Parameter truncation: taps below this value are dropped (`1e-40` for JKO steps, whose
    ///   displacements are short; `1e-300` for distances between far-apart densities).
    init(grid: RegularGrid, gamma: Double, truncation: Double = 1e-40) {
        self.grid = grid
        self.gamma = gamma
        let h = grid.spacing
        let reach = (-log(truncation) * gamma).squareRoot()
        taps = (0 ..< grid.dimension).map { a in
            let width = min(grid.pointsPerAxis[a] - 1, Int(reach / h[a]) + 1)
            return (0 ... width).map { d in exp(-(h[a] * Double(d)) * (h[a] * Double(d)) / gamma) }
        }
    }

    /// `out = K v` (out and v must not alias); `scratch` has the grid's size (2-D only).
    func apply(_ v: UnsafeBufferPointer<Double>, into out: UnsafeMutableBufferPointer<Double>, scratch: UnsafeMutableBufferPointer<Double>) {
        if grid.dimension == 1 {
            Self.convolveContiguous(v.baseAddress!, out.baseAddress!, rows: 1, length: grid.pointsPerAxis[0], taps: taps[0])
            return
        }
        let n0 = grid.pointsPerAxis[0], n1 = grid.pointsPerAxis[1]
        // Along axis 1 (contiguous rows) into scratch, then along axis 0 (combining rows) into out.
        Self.convolveContiguous(v.baseAddress!, scratch.baseAddress!, rows: n0, length: n1, taps: taps[1])
        Self.convolveRows(UnsafePointer(scratch.baseAddress!), out.baseAddress!, rows: n0, length: n1, taps: taps[0])
    }

    /// 1-D convolution of each of `rows` contiguous rows of `length` values, as `w` shifted
    /// multiply-adds per row (`o[k] += t_d (s[k - d] + s[k + d])`), loops the compiler vectorises.
    static func convolveContiguous(_ src: UnsafePointer<Double>, _ dst: UnsafeMutablePointer<Double>, rows: Int, length n: Int, taps: [Double]) {
        let w = taps.count - 1
        taps.withUnsafeBufferPointer { tp in
            let t = tp.baseAddress!
            @inline(__always) func row(_ s: UnsafePointer<Double>, _ o: UnsafeMutablePointer<Double>, _ lo: Int, _ hi: Int) {
                // Outputs lo ..< hi of one row.
                let c0 = t[0]
                for k in lo ..< hi { o[k] = c0 * s[k] }
                var d = 1
                while d <= w {
                    let c = t[d]
                    // left neighbours s[k - d] for k >= d, right neighbours s[k + d] for k + d < n
                    let leftStart = max(lo, d)
                    if leftStart < hi {
                        let sp = s - d
                        for k in leftStart ..< hi { o[k] += c * sp[k] }
                    }
                    let rightEnd = min(hi, n - d)
                    if lo < rightEnd {
                        let sp = s + d
                        for k in lo ..< rightEnd { o[k] += c * sp[k] }
                    }
                    d += 1
                }
            }
            if rows == 1 {
                // One long row (1-D grids): split the outputs.
                Parallel.forEachChunk(count: n, minimumChunk: max(1024, 400_000 / max(1, 2 * w + 1))) { range in
                    row(src, dst, range.lowerBound, range.upperBound)
                }
            } else {
                let chunk = max(1, 65_536 / max(1, n * (2 * w + 1)))
                Parallel.forEachChunk(count: rows, minimumChunk: chunk) { range in
                    for r in range { row(src + r * n, dst + r * n, 0, n) }
                }
            }
        }
    }

    /// Convolution along axis 0: `dst[k, :] = sum_l taps[|k - l|] src[l, :]`, vectorised over rows.
    static func convolveRows(_ src: UnsafePointer<Double>, _ dst: UnsafeMutablePointer<Double>, rows n0: Int, length n1: Int, taps: [Double]) {
        let w = taps.count - 1
        taps.withUnsafeBufferPointer { tp in
            let t = tp.baseAddress!
            let chunk = max(1, 65_536 / max(1, n1 * (2 * w + 1)))
            Parallel.forEachChunk(count: n0, minimumChunk: chunk) { range in
                for k in range {
                    let o = dst + k * n1
                    let s0 = src + k * n1
                    let c0 = t[0]
                    for j in 0 ..< n1 { o[j] = c0 * s0[j] }
                    let lo = max(0, k - w), hi = min(n0 - 1, k + w)
                    for l in lo ... hi where l != k {
                        let c = t[abs(k - l)]
                        let s = src + l * n1
                        for j in 0 ..< n1 { o[j] += c * s[j] }
                    }
                }
            }
        }
    }
}

/// The same kernel applied in the log domain: `out = log(K exp(v))`, by separable log-sum-exp
/// passes. An exponential per tap, so several times slower than ``SeparableGaussianKernel``, but
/// exact for any dynamic range of `v` (used when the kernel-mode scalings would under- or overflow).
struct LogDomainGaussianKernel: Sendable {
    let grid: RegularGrid
    let gamma: Double
    /// Per axis, `-(h_a d)^2 / gamma` for `d = 0 ... w_a` (window where the kernel exceeds 1e-300).
    let logTaps: [[Double]]

    init(grid: RegularGrid, gamma: Double) {
        self.grid = grid
        self.gamma = gamma
        let h = grid.spacing
        let reach = (690 * gamma).squareRoot()
        logTaps = (0 ..< grid.dimension).map { a in
            let width = min(grid.pointsPerAxis[a] - 1, Int(reach / h[a]) + 1)
            return (0 ... width).map { d in -(h[a] * Double(d)) * (h[a] * Double(d)) / gamma }
        }
    }

    func apply(_ v: UnsafeBufferPointer<Double>, into out: UnsafeMutableBufferPointer<Double>, scratch: UnsafeMutableBufferPointer<Double>) {
        if grid.dimension == 1 {
            Self.contiguous(v.baseAddress!, out.baseAddress!, rows: 1, length: grid.pointsPerAxis[0], taps: logTaps[0])
            return
        }
        let n0 = grid.pointsPerAxis[0], n1 = grid.pointsPerAxis[1]
        Self.contiguous(v.baseAddress!, scratch.baseAddress!, rows: n0, length: n1, taps: logTaps[1])
        Self.acrossRows(UnsafePointer(scratch.baseAddress!), out.baseAddress!, rows: n0, length: n1, taps: logTaps[0])
    }

    static func contiguous(_ src: UnsafePointer<Double>, _ dst: UnsafeMutablePointer<Double>, rows: Int, length n: Int, taps: [Double]) {
        let w = taps.count - 1
        taps.withUnsafeBufferPointer { tp in
            let t = tp.baseAddress!
            Parallel.forEachChunk(count: rows * n, minimumChunk: max(64, 65_536 / max(1, 2 * w + 1))) { range in
                for index in range {
                    let r = index / n, k = index % n
                    let s = src + r * n
                    let lo = max(0, k - w), hi = min(n - 1, k + w)
                    var m = -Double.infinity
                    for l in lo ... hi { m = max(m, t[abs(k - l)] + s[l]) }
                    if m == -.infinity { dst[index] = -.infinity; continue }
                    var acc = 0.0
                    for l in lo ... hi { acc += exp(t[abs(k - l)] + s[l] - m) }
                    dst[index] = m + log(acc)
                }
            }
        }
    }

    static func acrossRows(_ src: UnsafePointer<Double>, _ dst: UnsafeMutablePointer<Double>, rows n0: Int, length n1: Int, taps: [Double]) {
        let w = taps.count - 1
        taps.withUnsafeBufferPointer { tp in
            let t = tp.baseAddress!
            Parallel.forEachChunk(count: n0, minimumChunk: max(1, 65_536 / max(1, n1 * (2 * w + 1)))) { range in
                var maxima = [Double](repeating: 0, count: n1)
                var sums = [Double](repeating: 0, count: n1)
                for k in range {
                    let lo = max(0, k - w), hi = min(n0 - 1, k + w)
                    for j in 0 ..< n1 { maxima[j] = -.infinity; sums[j] = 0 }
                    for l in lo ... hi {
                        let c = t[abs(k - l)], s = src + l * n1
                        for j in 0 ..< n1 { maxima[j] = max(maxima[j], c + s[j]) }
                    }
                    for l in lo ... hi {
                        let c = t[abs(k - l)], s = src + l * n1
                        for j in 0 ..< n1 where maxima[j] > -.infinity { sums[j] += exp(c + s[j] - maxima[j]) }
                    }
                    let o = dst + k * n1
                    for j in 0 ..< n1 { o[j] = maxima[j] == -.infinity ? -.infinity : maxima[j] + log(sums[j]) }
                }
            }
        }
    }
}
