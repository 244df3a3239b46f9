#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A stored kernel `K_ij = exp((alpha_i + beta_j - C_ij) / eps)` whose offsets `alpha`, `beta`
/// follow the iterate: what the stabilised soft-min (``absorbedSoftMin(_:logWeights:transposed:into:fresh:sameCloud:)``)
/// needs of it. Two stores: the balanced core's (costs recomputed from the coordinates, for
/// ``StabilizedKernelGeometry``) and the stored costs of ``DenseCostGeometry``.
protocol AbsorbingKernelStore {
    /// `n`, the rows of `K`.
    var rowCount: Int { get }
    /// `m`, the columns of `K`.
    var columnCount: Int { get }
    /// The epsilon of `K`.
    var epsilon: Double { get }
    /// `alpha`, `n` values.
    var rowOffsets: UnsafeMutablePointer<Double> { get }
    /// `beta`, `m` values.
    var columnOffsets: UnsafeMutablePointer<Double> { get }
    /// Scratch of `max(n, m)` values for the scalings.
    var scalingBuffer: UnsafeMutablePointer<Double> { get }
    /// Scratch of `max(n, m)` values for the products.
    var sumBuffer: UnsafeMutablePointer<Double> { get }
    /// Scratch of `max(n, m)` values for the exact repairs.
    var logTermBuffer: UnsafeMutablePointer<Double> { get }
    /// `C_ij`.
    func cost(_ i: Int, _ j: Int) -> Double
    /// Recomputes all of `K` from the offsets.
    mutating func buildKernel()
    /// Recomputes the listed rows and columns of `K`.
    mutating func rebuildKernel(rows: [Int], columns: [Int])
    /// `out = K x`.
    func multiplyKernel(_ x: UnsafePointer<Double>, into out: UnsafeMutablePointer<Double>)
    /// `out = K^T x`.
    func multiplyKernelTransposed(_ x: UnsafePointer<Double>, into out: UnsafeMutablePointer<Double>)
    /// Counts outputs that needed the exact log-sum-exp.
    mutating func noteRepairs(_ count: Int)
}

extension AbsorbingKernelStore {
    /// Whether rebuilding these many rows and columns costs more than a quarter of a full
    /// kernel build: rebuild all of `K` instead.
    func prefersFullRebuild(rows: Int, columns: Int) -> Bool {
        rows * columnCount + columns * rowCount > rowCount * columnCount / 4
    }

    /// The soft-min `out_l = -eps log sum_k exp(lw_k + (p_k - C_lk) / eps)` (rows; columns with
    /// `transposed`) by one product with the stored kernel, exact for any offsets:
    /// `out_l = offset_l - eps log sum_k K_lk exp(lw_k + (p_k - offset_k) / eps)`.
    ///
    /// Why absorption (Schmitzer 2019): an offset more than `tau eps` (`e^tau` =
    /// ``sinkhornAbsorptionBound``) from its potential (inner side, `p`) or from the previous
    /// output (outer side, the estimate in `out`) takes the new value and its row or column of `K`
    /// is rebuilt, so the scalings stay within `[e^-tau, e^tau]` of the weights and no kernel entry
    /// that matters underflows. An output whose sum still leaves ``sinkhornSafeSumRange`` is
    /// computed by an exact log-sum-exp, so nothing reaches NaN or infinity for any `eps > 0`.
    ///
    /// - Parameters:
    ///   - fresh: `K` is not built at ``epsilon`` yet: centre it on `p` and the finite values of
    ///     `out` (or `p` itself for a cloud against itself, 0 otherwise) and build it.
    ///   - sameCloud: source and target are one cloud (the symmetric optimum has `alpha = beta`).
    mutating func absorbedSoftMin(_ p: UnsafePointer<Double>, logWeights lw: UnsafePointer<Double>, transposed: Bool,
                                  into o: UnsafeMutablePointer<Double>, fresh: Bool, sameCloud: Bool) {
        let outer = transposed ? columnCount : rowCount, inner = transposed ? rowCount : columnCount
        let outerOffset = transposed ? columnOffsets : rowOffsets, innerOffset = transposed ? rowOffsets : columnOffsets
        let epsilon = self.epsilon, invEps = 1 / epsilon
        let reach = epsilon * log(sinkhornAbsorptionBound)
        if fresh {
            for k in 0 ..< inner { innerOffset[k] = p[k] }
            for l in 0 ..< outer { outerOffset[l] = o[l].isFinite ? o[l] : (sameCloud ? p[l] : 0) }
            buildKernel()
        } else {
            var drifted = [Int](), moved = [Int]()
            for k in 0 ..< inner where lw[k] > -Double.infinity && !(abs(p[k] - innerOffset[k]) <= reach) {
                innerOffset[k] = p[k]
                drifted.append(k)
            }
            for l in 0 ..< outer where o[l].isFinite && !(abs(o[l] - outerOffset[l]) <= reach) {
                outerOffset[l] = o[l]
                moved.append(l)
            }
            let rows = transposed ? drifted : moved, columns = transposed ? moved : drifted
            if prefersFullRebuild(rows: rows.count, columns: columns.count) {
                buildKernel()
            } else if !rows.isEmpty || !columns.isEmpty {
                rebuildKernel(rows: rows, columns: columns)
            }
        }
        // Scalings x_k = exp(lw_k + (p_k - offset_k) / eps), within e^(+-tau) of the weights;
        // 0 for zero weights (exp(-infinity)).
        let x = scalingBuffer, sums = sumBuffer
        for k in 0 ..< inner { x[k] = entropicExp(lw[k] + (p[k] - innerOffset[k]) * invEps) }
        if transposed {
            multiplyKernelTransposed(x, into: sums)
        } else {
            multiplyKernel(x, into: sums)
        }
        var repairs = [Int]()
        for l in 0 ..< outer {
            if sinkhornSafeSumRange.contains(sums[l]) {
                o[l] = outerOffset[l] - epsilon * log(sums[l])
            } else {
                repairs.append(l)
            }
        }
        guard !repairs.isEmpty else { return }
        // The exact log-sum-exp for the outputs the kernel cannot resolve; their offsets are
        // absorbed at the next call (the output is then far from them).
        noteRepairs(repairs.count)
        let logTerms = logTermBuffer
        for k in 0 ..< inner { logTerms[k] = lw[k] > -Double.infinity ? lw[k] + p[k] * invEps : -Double.infinity }
        nonisolated(unsafe) let output = o, store = self
        repairs.withUnsafeBufferPointer { list in
            Parallel.forEachChunk(count: list.count, minimumChunk: Swift.max(1, 2_048 / Swift.max(1, inner))) { range in
                for t in range {
                    let l = list[t]
                    output[l] = -epsilon * BalancedSinkhornCore.stabilizedLogSumExp(count: inner, logWeights: logTerms) {
                        (transposed ? store.cost($0, l) : store.cost(l, $0)) * invEps
                    }
                }
            }
        }
    }
}

extension BalancedSinkhornCore: AbsorbingKernelStore {
    var rowCount: Int { n }
    var columnCount: Int { m }
    var epsilon: Double { eps }
    var rowOffsets: UnsafeMutablePointer<Double> { alpha }
    var columnOffsets: UnsafeMutablePointer<Double> { beta }
    var scalingBuffer: UnsafeMutablePointer<Double> { w }
    var sumBuffer: UnsafeMutablePointer<Double> { scratch + Swift.max(n, m) }
    var logTermBuffer: UnsafeMutablePointer<Double> { scratch }
    func cost(_ i: Int, _ j: Int) -> Double { geo.cost(i, j) }
    mutating func noteRepairs(_ count: Int) { stats.logDomainUpdates += count }
}
