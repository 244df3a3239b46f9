#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A regular grid in 1, 2 or 3 dimensions with the cost `|x - y|^2` as a ``SinkhornGeometry``:
/// source and target are the same `N = n_0 ... n_{D-1}` grid points, row-major (axis 0 slowest),
/// `x_i = lower + h (i_0, ..., i_{D-1})`.
///
/// Why a geometry of its own: the cost is a sum over axes, `C_ij = sum_a h_a^2 (i_a - j_a)^2`, so
/// the Gibbs kernel is a tensor product `K = K_0 (x) ... (x) K_{D-1}` and every operation of the
/// driver separates into 1-D passes along one axis at a time: `O(N (n_0 + ... + n_{D-1}))` work
/// (at most `O(N^1.5)` in 2-D) instead of the `O(N^2)` of a dense or online geometry, and `O(N)`
/// memory.
///
/// - Log domain (``SinkhornGeometry/softMin(_:logWeights:epsilon:transposed:into:)``): one 1-D log-sum-exp per
///   axis in turn. Each output sums over a window of its axis wide enough that every term left
///   out is below `e^-46` of the largest term kept (the window grows with the spread of the
///   potential along the row, up to the whole axis), so the result equals the dense soft-min to
///   rounding, for any dynamic range of the potentials.
/// - Kernel mode (``SinkhornGeometry/applyKernel(_:epsilon:transposed:into:)``): `K v` as a separable convolution
///   of 1-D Gaussian taps, each truncated where it falls below ``kernelTruncation``. The driver
///   uses it while the scalings stay in the range of doubles (see ``EntropicSinkhorn``), which
///   is the fast path: additions and multiplications only.
///
/// The transport cost `<P, C>` splits the same way, `sum_a u^T (K_0 (x) ... (K_a o C_a) ... ) v`,
/// in kernel mode when the shifted scalings allow it and in the log domain otherwise; a plan
/// row costs `O(N)`.
public struct SeparableGridGeometry: SinkhornGeometry, RawBufferSinkhornGeometry {
    /// `"grid"`.
    public var name: String { "grid" }
    /// Points per axis, `n_a >= 1`, axis 0 slowest.
    public let pointsPerAxis: [Int]
    /// The spacing `h_a > 0` of each axis.
    public let spacing: [Double]
    /// Kernel-mode taps `exp(-(h_a d)^2 / eps)` below this value are left out of `K v`. `1e-300`
    /// (the default) keeps every representable entry; a larger value (`1e-40` for JKO steps,
    /// whose displacements are a few `sqrt(eps)`) shortens the convolution windows by a factor of
    /// about 2.7 at an absolute error below `kernelTruncation * max v` per entry.
    public let kernelTruncation: Double
    /// `N`, the number of grid points.
    public let sourceCount: Int
    /// `N` (source and target are the same grid).
    public var targetCount: Int { sourceCount }
    /// `sum_a ((n_a - 1) h_a)^2`, the squared diameter of the grid.
    public let costRange: Double

    /// Terms this far below an output's largest term (in units of eps) are left out of a
    /// log-domain sum: all of them together (at most `N` terms) move it by less than `1e-14`
    /// relative.
    static let negligibleExponent = 46.0

    /// - Parameters:
    ///   - pointsPerAxis: `n_a >= 1` for 1 to 3 axes, row-major (axis 0 slowest).
    ///   - spacing: `h_a > 0` per axis.
    ///   - kernelTruncation: in `[1e-300, 1e-3]`.
    /// - Throws: ``WassersteinError/malformedShape(_:)`` for a number of axes outside `1 ... 3`,
    ///   an empty axis or a point count that overflows;
    ///   ``WassersteinError/invalidParameter(name:value:requirement:)`` for a spacing that is not
    ///   finite and positive, a truncation out of range, or a diameter that overflows.
    public init(pointsPerAxis: [Int], spacing: [Double], kernelTruncation: Double = 1e-300) throws {
        guard (1 ... 3).contains(pointsPerAxis.count) else {
            throw WassersteinError.malformedShape("a grid geometry has 1, 2 or 3 axes, got \(pointsPerAxis.count)")
        }
        guard spacing.count == pointsPerAxis.count else {
            throw WassersteinError.malformedShape("\(pointsPerAxis.count) axes need \(pointsPerAxis.count) spacings, got \(spacing.count)")
        }
        var count = 1
        for n in pointsPerAxis {
            guard n >= 1 else { throw WassersteinError.malformedShape("every axis needs at least one point, got \(n)") }
            let (product, overflow) = count.multipliedReportingOverflow(by: n)
            guard !overflow else { throw WassersteinError.malformedShape("the grid \(pointsPerAxis) has too many points") }
            count = product
        }
        var range = 0.0
        for (a, h) in spacing.enumerated() {
            guard h > 0, h.isFinite else {
                throw WassersteinError.invalidParameter(name: "spacing[\(a)]", value: h, requirement: "must be finite and > 0")
            }
            let side = Double(pointsPerAxis[a] - 1) * h
            range += side * side
        }
        guard range.isFinite else {
            throw WassersteinError.invalidParameter(name: "grid diameter", value: range, requirement: "the squared diameter must be finite")
        }
        guard kernelTruncation >= 1e-300, kernelTruncation <= 1e-3 else {
            throw WassersteinError.invalidParameter(name: "kernel truncation", value: kernelTruncation, requirement: "must lie in [1e-300, 1e-3]")
        }
        self.pointsPerAxis = pointsPerAxis
        self.spacing = spacing
        self.kernelTruncation = kernelTruncation
        self.sourceCount = count
        self.costRange = range
    }

    // MARK: Kernel mode

    /// Kernel mode is offered at every epsilon: the driver checks the range of the scalings.
    public func offersKernelMode(epsilon: Double) -> Bool { epsilon > 0 && epsilon.isFinite }

    /// `out = K v`, `K_ij = exp(-C_ij / eps)` with the taps below ``kernelTruncation`` left out
    /// (`K` is symmetric: `transposed` does not matter). `v` must be finite and non-negative.
    package func applyKernel(_ v: UnsafeBufferPointer<Double>, epsilon: Double, transposed: Bool,
                             into out: UnsafeMutableBufferPointer<Double>) {
        guard v.count == sourceCount, out.count == sourceCount else {
            for i in 0 ..< out.count { out[i] = .nan }
            return
        }
        convolve(v, taps: kernelTaps(epsilon: epsilon), into: out)
    }

    /// Per axis `exp(-(h_a d)^2 / eps)` for `d = 0 ... w_a`, `w_a` the last `d` of reach
    /// `sqrt(-log(truncation) eps)`, plus one, at most `n_a - 1`.
    func kernelTaps(epsilon: Double) -> [[Double]] {
        let reach = (-log(kernelTruncation) * epsilon).squareRoot()
        return (0 ..< pointsPerAxis.count).map { a in
            let h = spacing[a]
            let width = Int(clampingCount: reach / h + 1, limit: pointsPerAxis[a] - 1)
            return (0 ... width).map { d in exp(-(h * Double(d)) * (h * Double(d)) / epsilon) }
        }
    }

    private func convolve(_ v: UnsafeBufferPointer<Double>, taps: [[Double]], into out: UnsafeMutableBufferPointer<Double>) {
        let convolution = SeparableConvolution(pointsPerAxis: pointsPerAxis, taps: taps)
        // Every entry of the scratch is written before it is read: no need to zero it.
        let scratch = UnsafeMutableBufferPointer<Double>.allocate(capacity: pointsPerAxis.count >= 2 ? sourceCount : 0)
        defer { scratch.deallocate() }
        convolution.apply(v, into: out, scratch: scratch)
    }

    // MARK: Log domain

    /// The 1-D log taps of one axis, `tap(d) = log w(d) - (h d)^2 / eps` for `d = 0 ... n - 1`,
    /// and their suffix maxima (`suffixMax[d] = max_{d' >= d} tap(d')`, `suffixMax[n] = -inf`),
    /// from which the window that makes a sum exact is read.
    struct LogTaps {
        var taps: [Double]
        var suffixMax: [Double]
        /// The window of `negligibleExponent` alone, tried first.
        var baseWidth: Int

        /// `weighted`: `w(d) = (h d)^2` (the cost-weighted kernel of the transport cost), else `w = 1`.
        init(count n: Int, spacing h: Double, epsilon: Double, weighted: Bool) {
            taps = (0 ..< n).map { d in
                let c = (h * Double(d)) * (h * Double(d))
                return weighted ? (d == 0 ? -.infinity : log(c) - c / epsilon) : -c / epsilon
            }
            suffixMax = [Double](repeating: -.infinity, count: n + 1)
            for d in stride(from: n - 1, through: 0, by: -1) { suffixMax[d] = Swift.max(taps[d], suffixMax[d + 1]) }
            baseWidth = 0
            baseWidth = width(drop: SeparableGridGeometry.negligibleExponent)
        }

        /// The smallest `w` such that every tap beyond `w` is below `-drop`.
        func width(drop: Double) -> Int {
            let n = taps.count
            if !(suffixMax[1 < n ? 1 : n] >= -drop) { return 0 }
            var lo = 0, hi = n - 1   // suffixMax[lo + 1] >= -drop, suffixMax[hi + 1] < -drop
            while hi - lo > 1 {
                let mid = (lo + hi) / 2
                if suffixMax[mid + 1] >= -drop { lo = mid } else { hi = mid }
            }
            return hi
        }
    }

    /// `dst[k * rows + r] = log sum_l exp(tap(|k - l|) + src[r * n + l])` for every row `r` of
    /// `n` contiguous values (stored transposed, so that the next axis is contiguous).
    ///
    /// The window of output `k` is first the base width; if the row's largest value `S` could
    /// bring a term beyond it within `negligibleExponent` of the window's maximum `m` (a tap
    /// beyond above `m - S - 46`), it widens to the width that rules that out. Exponentials are
    /// taken only for the terms within `negligibleExponent` of the maximum.
    static func logPass(_ src: UnsafePointer<Double>, _ dst: UnsafeMutablePointer<Double>, rows: Int, length n: Int,
                        taps logTaps: LogTaps) {
        logTaps.taps.withUnsafeBufferPointer { tb in
            let t = tb.baseAddress!
            let base = logTaps.baseWidth
            Parallel.forEachChunk(count: rows, minimumChunk: Swift.max(1, 8_192 / Swift.max(1, n * (2 * base + 1)))) { range in
                for r in range {
                    let s = src + r &* n
                    var top = -Double.infinity
                    for l in 0 ..< n where s[l] > top { top = s[l] }
                    guard top > -.infinity else {
                        for k in 0 ..< n { dst[k &* rows &+ r] = -.infinity }
                        continue
                    }
                    for k in 0 ..< n {
                        @inline(__always) func windowMax(_ w: Int) -> Double {
                            let lo = k > w ? k &- w : 0, hi = k &+ w < n ? k &+ w : n &- 1
                            var m = -Double.infinity
                            var l = lo
                            while l <= hi {
                                let e = t[k > l ? k &- l : l &- k] + s[l]
                                if e > m { m = e }
                                l &+= 1
                            }
                            return m
                        }
                        var w = base
                        var m = windowMax(w)
                        let drop = m > -.infinity ? top - m + negligibleExponent : .infinity
                        let needed = drop == .infinity ? n - 1 : logTaps.width(drop: drop)
                        if needed > w {
                            w = needed
                            m = windowMax(w)
                        }
                        guard m > -.infinity else {
                            dst[k &* rows &+ r] = -.infinity
                            continue
                        }
                        let cutoff = m - negligibleExponent
                        let lo = k > w ? k &- w : 0, hi = k &+ w < n ? k &+ w : n &- 1
                        var sum = 0.0
                        var l = lo
                        while l <= hi {
                            let e = t[k > l ? k &- l : l &- k] + s[l]
                            if e > cutoff { sum += entropicExp(e - m) }
                            l &+= 1
                        }
                        dst[k &* rows &+ r] = m + log(sum)
                    }
                }
            }
        }
    }

    /// `out_i = log sum_j exp(s_j - sum_a c_a(i_a, j_a))`, one ``logPass`` per axis; `axisTaps[a]`
    /// gives axis `a`'s taps. The passes run along the contiguous last axis and store
    /// transposed, so the axes rotate back to row-major order: 2-D `s -> scratch -> out`, 3-D
    /// `s -> out -> scratch -> out`. `s` must not alias `out`.
    func logApply(_ s: UnsafePointer<Double>, axisTaps: [LogTaps], into out: UnsafeMutablePointer<Double>) {
        let n = pointsPerAxis
        switch n.count {
        case 1:
            Self.logPass(s, out, rows: 1, length: n[0], taps: axisTaps[0])
        case 2:
            let scratch = UnsafeMutablePointer<Double>.allocate(capacity: sourceCount)
            defer { scratch.deallocate() }
            Self.logPass(s, scratch, rows: n[0], length: n[1], taps: axisTaps[1])
            Self.logPass(scratch, out, rows: n[1], length: n[0], taps: axisTaps[0])
        default:
            let scratch = UnsafeMutablePointer<Double>.allocate(capacity: sourceCount)
            defer { scratch.deallocate() }
            Self.logPass(s, out, rows: n[0] * n[1], length: n[2], taps: axisTaps[2])
            Self.logPass(out, scratch, rows: n[2] * n[0], length: n[1], taps: axisTaps[1])
            Self.logPass(scratch, out, rows: n[1] * n[2], length: n[0], taps: axisTaps[0])
        }
    }

    func plainLogTaps(epsilon: Double) -> [LogTaps] {
        (0 ..< pointsPerAxis.count).map { LogTaps(count: pointsPerAxis[$0], spacing: spacing[$0], epsilon: epsilon, weighted: false) }
    }

    /// `out_i = -eps log sum_j exp((potential_j - C_ij) / eps + logWeights_j)`; `K` is symmetric,
    /// so rows and columns are the same operation. The estimate in `out` is not used: the
    /// windows make every sum exact to rounding in one pass.
    package func softMin(_ potential: UnsafeBufferPointer<Double>, logWeights: UnsafeBufferPointer<Double>,
                         epsilon: Double, transposed: Bool, into out: UnsafeMutableBufferPointer<Double>) {
        let count = sourceCount
        guard potential.count == count, logWeights.count == count, out.count == count else {
            for i in 0 ..< out.count { out[i] = .nan }
            return
        }
        var s = [Double](repeating: 0, count: count)
        for j in 0 ..< count {
            let lw = logWeights[j]
            s[j] = lw == -.infinity ? -.infinity : potential[j] / epsilon + lw
        }
        s.withUnsafeBufferPointer { sb in logApply(sb.baseAddress!, axisTaps: plainLogTaps(epsilon: epsilon), into: out.baseAddress!) }
        for i in 0 ..< count { out[i] = -epsilon * out[i] }
    }

    // MARK: Transport cost and plan

    package func transportCost(f: UnsafeBufferPointer<Double>, g: UnsafeBufferPointer<Double>,
                               logA: UnsafeBufferPointer<Double>, logB: UnsafeBufferPointer<Double>,
                               epsilon: Double) -> Double {
        let count = sourceCount
        guard f.count == count, g.count == count, logA.count == count, logB.count == count else { return .nan }
        // F_i = f_i / eps + log a_i, G_j = g_j / eps + log b_j: P_ij = exp(F_i + G_j - C_ij / eps).
        var bigF = [Double](repeating: -.infinity, count: count), bigG = bigF
        var topF = -Double.infinity, topG = -Double.infinity
        for i in 0 ..< count {
            if logA[i] > -.infinity { bigF[i] = f[i] / epsilon + logA[i]; topF = Swift.max(topF, bigF[i]) }
            if logB[i] > -.infinity { bigG[i] = g[i] / epsilon + logB[i]; topG = Swift.max(topG, bigG[i]) }
        }
        guard topF.isFinite, topG.isFinite else { return .nan }
        if let cost = kernelTransportCost(bigF, bigG, topF: topF, topG: topG, epsilon: epsilon) { return cost }
        // Log domain: sum_a sum_i exp(F_i + log sum_j exp(G_j - C_ij / eps + log C^a_ij)).
        var total = 0.0
        var out = [Double](repeating: 0, count: count)
        for a in 0 ..< pointsPerAxis.count {
            var taps = plainLogTaps(epsilon: epsilon)
            taps[a] = LogTaps(count: pointsPerAxis[a], spacing: spacing[a], epsilon: epsilon, weighted: true)
            bigG.withUnsafeBufferPointer { gb in out.withUnsafeMutableBufferPointer { ob in
                logApply(gb.baseAddress!, axisTaps: taps, into: ob.baseAddress!) } }
            for i in 0 ..< count where bigF[i] > -.infinity && out[i] > -.infinity { total += exp(bigF[i] + out[i]) }
        }
        return total
    }

    /// The transport cost from scalings `u = exp(F - topF + 300)`, `v = exp(G - topG + 300)` (at
    /// most `e^300`), or `nil` when the shifted plan mass `u^T K v` leaves `[1e-250, 1e300]`: the
    /// scalings that underflowed (below `e^-708`, at most `N e^-408` of the sum together) could
    /// then matter, and the log domain must answer.
    private func kernelTransportCost(_ bigF: [Double], _ bigG: [Double], topF: Double, topG: Double, epsilon: Double) -> Double? {
        let count = sourceCount
        let u = bigF.map { entropicExp($0 - topF + 300) }, v = bigG.map { entropicExp($0 - topG + 300) }
        let taps = kernelTaps(epsilon: epsilon)
        var kv = [Double](repeating: 0, count: count)
        func weightedSum(_ axisTaps: [[Double]]) -> Double {
            v.withUnsafeBufferPointer { vb in kv.withUnsafeMutableBufferPointer { ob in convolve(vb, taps: axisTaps, into: ob) } }
            var sum = 0.0
            for i in 0 ..< count { sum += u[i] * kv[i] }
            return sum
        }
        let mass = weightedSum(taps)
        guard mass >= 1e-250, mass <= 1e300 else { return nil }
        var cost = 0.0
        for a in 0 ..< pointsPerAxis.count {
            var weighted = taps
            let h = spacing[a]
            for d in 0 ..< weighted[a].count { weighted[a][d] *= (h * Double(d)) * (h * Double(d)) }
            cost += weightedSum(weighted)
        }
        let total = cost * exp(topF + topG - 600)
        return total.isFinite ? total : nil
    }

    /// The row-major multi-index of point `i`.
    func multiIndex(_ i: Int) -> [Int] {
        var rest = i
        var index = [Int](repeating: 0, count: pointsPerAxis.count)
        for a in stride(from: pointsPerAxis.count - 1, through: 0, by: -1) {
            index[a] = rest % pointsPerAxis[a]
            rest /= pointsPerAxis[a]
        }
        return index
    }

    package func planRow(_ i: Int, f: UnsafeBufferPointer<Double>, g: UnsafeBufferPointer<Double>,
                         logA: UnsafeBufferPointer<Double>, logB: UnsafeBufferPointer<Double>,
                         epsilon: Double, into out: UnsafeMutableBufferPointer<Double>) {
        let count = sourceCount
        guard 0 ..< count ~= i, f.count == count, g.count == count, logA.count == count, logB.count == count,
              out.count == count else {
            for j in 0 ..< out.count { out[j] = .nan }
            return
        }
        let source = multiIndex(i)
        for j in 0 ..< count {
            let target = multiIndex(j)
            var c = 0.0
            for a in 0 ..< source.count {
                let d = spacing[a] * Double(source[a] - target[a])
                c += d * d
            }
            out[j] = exp(logA[i] + logB[j] + (f[i] + g[j] - c) / epsilon)
        }
    }
}
