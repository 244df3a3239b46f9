/// A stored cost matrix as a ``SinkhornGeometry``: for small problems, for user-given costs,
/// and as the reference the other geometries are tested against through the same driver.
///
/// Why not the dense fast path: ``SinkhornSolver`` keeps a stabilised kernel with absorption,
/// row repair, cluster shifts and Newton steps, and is the solver to use for dense point clouds
/// (`n = 2000` at `eps = 0.1` in about 0.15 s). This geometry runs the engine's log-domain
/// iteration on stored costs: `n m` exponentials per soft-min, simple and exact, and it
/// accepts any finite cost matrix.
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
    /// The same costs column-major (`C_ij` at `j * n + i`), so that the column soft-min reads
    /// contiguous memory too. Why the second copy: gathering a column with stride `m` touches one
    /// cache line per entry, and measured at `n = m = 2000` that made the dense engine slower
    /// than the online geometry, which recomputes every cost.
    let transposedCosts: [Double]

    /// A user cost matrix.
    ///
    /// - Parameters:
    ///   - costs: `n * m` finite values, row-major (`C_ij` at `i * m + j`).
    ///   - sourceCount: `n >= 1`.
    ///   - targetCount: `m >= 1`.
    /// - Throws: ``WassersteinError/malformedShape(_:)`` when the sizes disagree,
    ///   ``WassersteinError/invalidParameter(name:value:requirement:)`` for a NaN or infinite cost
    ///   (the soft-min would turn it into NaN potentials or a silently dropped entry).
    public init(costs: [Double], sourceCount: Int, targetCount: Int) throws {
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
        self.transposedCosts = Self.transpose(costs, rows: sourceCount, columns: targetCount)
        self.costRange = range
    }

    /// The costs `|x_i - y_j|^p` of two point clouds, computed once and stored (`16 n m` bytes:
    /// row- and column-major).
    ///
    /// - Throws: as ``OnlinePointCloudGeometry/init(source:target:cost:)``.
    public init(source: PointCloud, target: PointCloud, cost: PointCloudCost = .squaredEuclidean) throws {
        let online = try OnlinePointCloudGeometry(source: source, target: target, cost: cost)
        self.sourceCount = online.sourceCount
        self.targetCount = online.targetCount
        self.costs = online.costMatrix()
        self.transposedCosts = Self.transpose(costs, rows: online.sourceCount, columns: online.targetCount)
        self.costRange = online.costRange
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

    /// Rows read the row-major matrix in place, columns the column-major copy.
    func filler(_ c: UnsafePointer<Double>, transposed: Bool) -> (Int, Int, Int, UnsafeMutablePointer<Double>) -> UnsafePointer<Double> {
        let stride = transposed ? sourceCount : targetCount
        nonisolated(unsafe) let base = c
        return { outer, start, _, _ in base + outer * stride + start }
    }

    package func softMin(_ potential: UnsafeBufferPointer<Double>, logWeights: UnsafeBufferPointer<Double>,
                         epsilon: Double, transposed: Bool, into out: UnsafeMutableBufferPointer<Double>) {
        (transposed ? transposedCosts : costs).withUnsafeBufferPointer { cb in
            EngineRows.softMin(outer: transposed ? targetCount : sourceCount, inner: transposed ? sourceCount : targetCount,
                               potential: potential, logWeights: logWeights, epsilon: epsilon, into: out,
                               fill: filler(cb.baseAddress!, transposed: transposed))
        }
    }

    package func transportCost(f: UnsafeBufferPointer<Double>, g: UnsafeBufferPointer<Double>,
                               logA: UnsafeBufferPointer<Double>, logB: UnsafeBufferPointer<Double>,
                               epsilon: Double) -> Double {
        costs.withUnsafeBufferPointer { cb in
            EngineRows.transportCost(outer: sourceCount, inner: targetCount, f: f, g: g, logA: logA, logB: logB,
                                     epsilon: epsilon, fill: filler(cb.baseAddress!, transposed: false))
        }
    }

    public func applyPlan(_ x: Span<Double>, f: Span<Double>, g: Span<Double>, logA: Span<Double>, logB: Span<Double>,
                          epsilon: Double, transposed: Bool, squared: Bool, into out: inout MutableSpan<Double>) {
        (transposed ? transposedCosts : costs).withUnsafeBufferPointer { cb in
            EngineRows.applyPlan(outer: transposed ? targetCount : sourceCount, inner: transposed ? sourceCount : targetCount,
                                 x: x, own: transposed ? g : f, ownLogWeights: transposed ? logB : logA,
                                 other: transposed ? f : g, otherLogWeights: transposed ? logA : logB,
                                 epsilon: epsilon, squared: squared, into: &out,
                                 fill: filler(cb.baseAddress!, transposed: transposed))
        }
    }

    package func planRow(_ i: Int, f: UnsafeBufferPointer<Double>, g: UnsafeBufferPointer<Double>,
                         logA: UnsafeBufferPointer<Double>, logB: UnsafeBufferPointer<Double>,
                         epsilon: Double, into out: UnsafeMutableBufferPointer<Double>) {
        costs.withUnsafeBufferPointer { cb in
            EngineRows.planRow(i, inner: targetCount, f: f, g: g, logA: logA, logB: logB, epsilon: epsilon,
                               into: out, fill: filler(cb.baseAddress!, transposed: false))
        }
    }
}
