/// A stored cost matrix as a ``SinkhornGeometry``: for user-given costs, the costs
/// `|x - y|^p`, the unbalanced and partial problems on dense clouds, and as the reference the
/// other geometries are tested against through the same driver.
///
/// Its soft-mins run over a stored kernel stabilised by absorption (built at the first soft-min): one matrix-vector product each instead of `n m` exponentials, exact to
/// rounding for any `eps > 0` (outputs the kernel cannot resolve take an exact log-sum-exp).
/// `storesKernel: false` keeps every soft-min in the log domain.
///
/// Why ``SinkhornSolver`` is still the dense balanced path: it adds row repair, cluster shifts and
/// Newton steps to the same kernel, and needs no stored costs (`n = 2000` at `eps = 0.1` in
/// about 0.15 s).
public struct DenseCostGeometry: SinkhornGeometry, RawBufferSinkhornGeometry {
    /// `"dense"`.
    public var name: String { "dense" }
    /// `n`, the rows.
    public let sourceCount: Int
    /// `m`, the columns.
    public let targetCount: Int
    /// `max C - min C` of the stored costs (or the bounding-box bound for point clouds).
    public let costRange: Double
    /// The costs, row-major: `C_ij` at `i * m + j`.
    public let costs: [Double]
    /// The same costs column-major (`C_ij` at `j * n + i`), so that the log-domain column
    /// soft-min reads contiguous memory too; empty when the kernel is stored. Why the second copy:
    /// gathering a column with stride `m` touches one cache line per entry, and measured at
    /// `n = m = 2000` that made the log-domain engine slower than the online geometry, which
    /// recomputes every cost. With the kernel stored, the column soft-min is a product with it.
    let transposedCosts: [Double]
    /// The stabilised kernel of the soft-mins, `nil` for the log domain.
    let kernelCache: DenseKernelCache?

    /// A user cost matrix.
    ///
    /// - Parameters:
    ///   - costs: `n * m` finite values, row-major (`C_ij` at `i * m + j`).
    ///   - sourceCount: `n >= 1`.
    ///   - targetCount: `m >= 1`.
    ///   - storesKernel: whether soft-mins use a stored, stabilised kernel (several times faster)
    ///     rather than the log domain over a column-major copy of the costs (the same `8 n m` bytes).
    /// - Throws: ``WassersteinError/malformedShape(_:)`` when the sizes disagree,
    ///   ``WassersteinError/invalidParameter(name:value:requirement:)`` for a NaN or infinite cost
    ///   (the soft-min would turn it into NaN potentials or a silently dropped entry).
    public init(costs: [Double], sourceCount: Int, targetCount: Int, storesKernel: Bool = true) throws {
        guard sourceCount >= 1, targetCount >= 1 else {
            throw WassersteinError.malformedShape("a cost matrix needs at least one row and one column, got \(sourceCount) x \(targetCount)")
        }
        let (cells, overflow) = sourceCount.multipliedReportingOverflow(by: targetCount)
        guard !overflow, cells == costs.count else {
            throw WassersteinError.malformedShape("a \(sourceCount) x \(targetCount) cost matrix needs \(sourceCount) * \(targetCount) values, got \(costs.count)")
        }
        var lo = Double.infinity, hi = -Double.infinity
        for (index, c) in costs.enumerated() {
            guard c.isFinite else {
                throw WassersteinError.invalidParameter(name: "cost[\(index / targetCount), \(index % targetCount)]", value: c,
                                                        requirement: "costs must be finite")
            }
            lo = Swift.min(lo, c)
            hi = Swift.max(hi, c)
        }
        let range = hi - lo
        guard range.isFinite else {
            throw WassersteinError.invalidParameter(name: "cost range", value: range, requirement: "max C - min C must be finite")
        }
        self.sourceCount = sourceCount
        self.targetCount = targetCount
        self.costs = costs
        self.transposedCosts = storesKernel ? [] : Self.transpose(costs, rows: sourceCount, columns: targetCount)
        self.costRange = range
        self.kernelCache = storesKernel ? DenseKernelCache() : nil
    }

    /// The costs `|x_i - y_j|^p` of two point clouds, computed once and stored (`8 n m` bytes,
    /// and `8 n m` more for the kernel at the first soft-min, or for a column-major copy of the
    /// costs without it).
    ///
    /// - Parameters:
    ///   - source: the source cloud (`n` points).
    ///   - target: the target cloud (`m` points, the same dimension).
    ///   - cost: the ground cost (default `|x - y|^2`).
    ///   - storesKernel: as in ``init(costs:sourceCount:targetCount:storesKernel:)``.
    /// - Throws: as ``OnlinePointCloudGeometry/init(source:target:cost:)``.
    public init(source: PointCloud, target: PointCloud, cost: PointCloudCost = .squaredEuclidean,
                storesKernel: Bool = true) throws {
        let online = try OnlinePointCloudGeometry(source: source, target: target, cost: cost)
        self.sourceCount = online.sourceCount
        self.targetCount = online.targetCount
        self.costs = online.costMatrix()
        self.transposedCosts = storesKernel ? [] : Self.transpose(costs, rows: online.sourceCount, columns: online.targetCount)
        self.costRange = online.costRange
        self.kernelCache = storesKernel ? DenseKernelCache() : nil
    }

    /// Column-major copy of a row-major `rows x columns` matrix, in 32 x 32 blocks (cache-friendly).
    static func transpose(_ c: [Double], rows: Int, columns: Int) -> [Double] {
        var t = [Double](repeating: 0, count: c.count)
        let block = 32
        t.withUnsafeMutableBufferPointer { tb in
            c.withUnsafeBufferPointer { cb in
                var i0 = 0
                while i0 < rows {
                    let i1 = Swift.min(rows, i0 + block)
                    var j0 = 0
                    while j0 < columns {
                        let j1 = Swift.min(columns, j0 + block)
                        for i in i0 ..< i1 { for j in j0 ..< j1 { tb[j * rows + i] = cb[i * columns + j] } }
                        j0 = j1
                    }
                    i0 = i1
                }
            }
        }
        return t
    }

    /// Calls `body` with the tile filler of rows (`transposed == false`) or columns: rows read the
    /// row-major matrix in place, columns the column-major copy, or, where the kernel is stored
    /// and the copy is not (the log domain then serves only contended or final evaluations),
    /// gather their entries into the tile buffer.
    func withFiller<R>(transposed: Bool,
                       _ body: (@escaping (Int, Int, Int, UnsafeMutablePointer<Double>) -> UnsafePointer<Double>) -> R) -> R {
        let n = sourceCount, m = targetCount
        if transposed && transposedCosts.isEmpty {
            return costs.withUnsafeBufferPointer { cb in
                nonisolated(unsafe) let base = cb.baseAddress!
                return body { outer, start, count, buffer in
                    for k in 0 ..< count { buffer[k] = base[(start + k) * m + outer] }
                    return UnsafePointer(buffer)
                }
            }
        }
        return (transposed ? transposedCosts : costs).withUnsafeBufferPointer { cb in
            let stride = transposed ? n : m
            nonisolated(unsafe) let base = cb.baseAddress!
            return body { outer, start, _, _ in base + outer * stride + start }
        }
    }

    package func softMin(_ potential: UnsafeBufferPointer<Double>, logWeights: UnsafeBufferPointer<Double>,
                         epsilon: Double, transposed: Bool, into out: UnsafeMutableBufferPointer<Double>) {
        if let cache = kernelCache,
           kernelSoftMin(cache, potential, logWeights: logWeights, epsilon: epsilon, transposed: transposed, into: out) {
            return
        }
        withFiller(transposed: transposed) { fill in
            EngineRows.softMin(outer: transposed ? targetCount : sourceCount, inner: transposed ? sourceCount : targetCount,
                               potential: potential, logWeights: logWeights, epsilon: epsilon, into: out, fill: fill)
        }
    }

    package func transportCost(f: UnsafeBufferPointer<Double>, g: UnsafeBufferPointer<Double>,
                               logA: UnsafeBufferPointer<Double>, logB: UnsafeBufferPointer<Double>,
                               epsilon: Double) -> Double {
        withFiller(transposed: false) { fill in
            EngineRows.transportCost(outer: sourceCount, inner: targetCount, f: f, g: g, logA: logA, logB: logB,
                                     epsilon: epsilon, fill: fill)
        }
    }

    public func applyPlan(_ x: Span<Double>, f: Span<Double>, g: Span<Double>, logA: Span<Double>, logB: Span<Double>,
                          epsilon: Double, transposed: Bool, squared: Bool, into out: inout MutableSpan<Double>) {
        withFiller(transposed: transposed) { fill in
            EngineRows.applyPlan(outer: transposed ? targetCount : sourceCount, inner: transposed ? sourceCount : targetCount,
                                 x: x, own: transposed ? g : f, ownLogWeights: transposed ? logB : logA,
                                 other: transposed ? f : g, otherLogWeights: transposed ? logA : logB,
                                 epsilon: epsilon, squared: squared, into: &out, fill: fill)
        }
    }

    package func planRow(_ i: Int, f: UnsafeBufferPointer<Double>, g: UnsafeBufferPointer<Double>,
                         logA: UnsafeBufferPointer<Double>, logB: UnsafeBufferPointer<Double>,
                         epsilon: Double, into out: UnsafeMutableBufferPointer<Double>) {
        withFiller(transposed: false) { fill in
            EngineRows.planRow(i, inner: targetCount, f: f, g: g, logA: logA, logB: logB, epsilon: epsilon,
                               into: out, fill: fill)
        }
    }

    /// The soft-min over the stored kernel; `false` (and `out` untouched) when the sizes are wrong,
    /// `epsilon` is not a positive finite number, or another solve holds the kernel.
    private func kernelSoftMin(_ cache: DenseKernelCache, _ potential: UnsafeBufferPointer<Double>,
                               logWeights: UnsafeBufferPointer<Double>, epsilon: Double, transposed: Bool,
                               into out: UnsafeMutableBufferPointer<Double>) -> Bool {
        let n = sourceCount, m = targetCount
        guard epsilon > 0, epsilon.isFinite, potential.count == (transposed ? n : m), logWeights.count == potential.count,
              out.count == (transposed ? m : n), let p = potential.baseAddress, let lw = logWeights.baseAddress,
              let o = out.baseAddress else { return false }
        return cache.withLockIfAvailable {
            let fresh = cache.epsilon != epsilon
            cache.epsilon = epsilon
            costs.withUnsafeBufferPointer { cb in
                var store = cache.store(costs: cb.baseAddress!, rows: n, columns: m, epsilon: epsilon)
                store.absorbedSoftMin(p, logWeights: lw, transposed: transposed, into: o, fresh: fresh, sameCloud: false)
                cache.builds += store.builds
                cache.rebuilds += store.rebuilds
                cache.repairs += store.repairs
            }
            return true
        } ?? false
    }
}
