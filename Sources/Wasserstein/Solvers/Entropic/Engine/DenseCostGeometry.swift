/// A stored cost matrix as a ``SinkhornGeometry``: for small problems, for user-given costs,
/// and as the reference the other geometries are tested against through the same driver.
///
/// Why not the dense fast path: ``SinkhornSolver`` keeps a stabilised kernel with absorption,
/// row repair, cluster shifts and Newton steps, and is the solver to use for dense point clouds
/// (`n = 2000` at `eps = 0.1` in about 0.15 s). This geometry runs the engine's log-domain
/// iteration on stored costs: `n m` exponentials per soft-min, simple and exact, and it
/// accepts any finite cost matrix.
public struct DenseCostGeometry: SinkhornGeometry {
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
        self.costRange = range
    }

    /// The costs `|x_i - y_j|^p` of two point clouds, computed once and stored (`8 n m` bytes).
    ///
    /// - Throws: as ``OnlinePointCloudGeometry/init(source:target:cost:)``.
    public init(source: PointCloud, target: PointCloud, cost: PointCloudCost = .squaredEuclidean) throws {
        let online = try OnlinePointCloudGeometry(source: source, target: target, cost: cost)
        self.sourceCount = online.sourceCount
        self.targetCount = online.targetCount
        self.costs = online.costMatrix()
        self.costRange = online.costRange
    }

    /// Rows read the matrix in place; columns are gathered into the tile buffer (strided).
    func filler(_ c: UnsafePointer<Double>, transposed: Bool) -> (Int, Int, Int, UnsafeMutablePointer<Double>) -> UnsafePointer<Double> {
        let m = targetCount
        nonisolated(unsafe) let base = c
        if transposed {
            return { j, start, count, buffer in
                for k in 0 ..< count { buffer[k] = base[(start + k) * m + j] }
                return UnsafePointer(buffer)
            }
        }
        return { i, start, _, _ in base + i * m + start }
    }

    public func softMin(_ potential: UnsafeBufferPointer<Double>, logWeights: UnsafeBufferPointer<Double>,
                        epsilon: Double, transposed: Bool, into out: UnsafeMutableBufferPointer<Double>) {
        costs.withUnsafeBufferPointer { cb in
            EngineRows.softMin(outer: transposed ? targetCount : sourceCount, inner: transposed ? sourceCount : targetCount,
                               potential: potential, logWeights: logWeights, epsilon: epsilon, into: out,
                               fill: filler(cb.baseAddress!, transposed: transposed))
        }
    }

    public func transportCost(f: UnsafeBufferPointer<Double>, g: UnsafeBufferPointer<Double>,
                              logA: UnsafeBufferPointer<Double>, logB: UnsafeBufferPointer<Double>,
                              epsilon: Double) -> Double {
        costs.withUnsafeBufferPointer { cb in
            EngineRows.transportCost(outer: sourceCount, inner: targetCount, f: f, g: g, logA: logA, logB: logB,
                                     epsilon: epsilon, fill: filler(cb.baseAddress!, transposed: false))
        }
    }

    public func planRow(_ i: Int, f: UnsafeBufferPointer<Double>, g: UnsafeBufferPointer<Double>,
                        logA: UnsafeBufferPointer<Double>, logB: UnsafeBufferPointer<Double>,
                        epsilon: Double, into out: UnsafeMutableBufferPointer<Double>) {
        costs.withUnsafeBufferPointer { cb in
            EngineRows.planRow(i, inner: targetCount, f: f, g: g, logA: logA, logB: logB, epsilon: epsilon,
                               into: out, fill: filler(cb.baseAddress!, transposed: false))
        }
    }
}
