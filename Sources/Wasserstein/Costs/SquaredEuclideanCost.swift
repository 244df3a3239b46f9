/// The squared Euclidean cost `c(x, y) = |x - y|^2` (no factor 1/2), the cost of W2.
public enum SquaredEuclideanCost {
    /// `|x - y|^2` for two points of equal length.
    @inlinable
    public static func evaluate(_ x: Span<Double>, _ y: Span<Double>) -> Double {
        precondition(x.count == y.count, "SquaredEuclideanCost.evaluate: the points differ in length")
        var s = 0.0
        for k in 0 ..< x.count {
            let d = x[k] - y[k]
            s += d * d
        }
        return s
    }

    /// An upper bound on every `|x_i - y_j|^2`, and on every `|x_i - x_k|^2` and `|y_j - y_l|^2`:
    /// the squared diagonal of the bounding box of both clouds, in `O((n + m) D)`.
    ///
    /// Solvers call it before they start, because finite coordinates (a point at `1e155`) can
    /// have squared distances beyond the Double range: costs would be infinite and every
    /// schedule or tolerance derived from them meaningless.
    ///
    /// - Throws: ``WassersteinError/invalidParameter(name:value:requirement:)`` (name
    ///   "squared coordinate range") when the bound is not finite.
    public static func upperBound(source: PointCloud, target: PointCloud) throws -> Double {
        guard source.dimension == target.dimension else {
            throw WassersteinError.dimensionMismatch(expected: source.dimension, actual: target.dimension)
        }
        let d = source.dimension
        var bound = 0.0
        for k in 0 ..< d {
            var lo = Double.infinity, hi = -Double.infinity
            for i in 0 ..< source.count { let v = source.coordinates[i * d + k]; lo = min(lo, v); hi = max(hi, v) }
            for j in 0 ..< target.count { let v = target.coordinates[j * d + k]; lo = min(lo, v); hi = max(hi, v) }
            let width = hi - lo
            bound += width * width
        }
        guard bound.isFinite else {
            throw WassersteinError.invalidParameter(
                name: "squared coordinate range", value: bound,
                requirement: "squared distances between the points overflow the Double range (coordinates too large); rescale the coordinates")
        }
        return bound
    }

    /// The dense `n x m` cost matrix between two clouds, row-major, computed on all cores.
    ///
    /// Entries are formed from coordinate differences rather than from `|x|^2 + |y|^2 - 2<x, y>`,
    /// so that `C_ij` is exactly zero for equal points and never negative.
    public static func matrix(source: PointCloud, target: PointCloud) throws -> CostMatrix {
        guard source.dimension == target.dimension else {
            throw WassersteinError.dimensionMismatch(expected: source.dimension, actual: target.dimension)
        }
        return CostMatrix(unchecked: source.coordinates, target.coordinates, count: source.count, target.count, dimension: source.dimension)
    }
}

/// A dense row-major cost matrix `C[i, j] = c(x_i, y_j)`.
public struct CostMatrix: Sendable {
    /// Number of rows `n` (source points).
    public let rows: Int
    /// Number of columns `m` (target points).
    public let columns: Int
    /// The `rows * columns` entries, row-major.
    public let values: [Double]

    /// Wraps given values (validated: right count, all finite and non-negative... finite).
    public init(rows: Int, columns: Int, values: [Double]) throws {
        guard rows > 0, columns > 0, values.count == rows * columns else {
            throw WassersteinError.malformedShape("cost matrix of \(values.count) values is not \(rows) x \(columns)")
        }
        for v in values where !v.isFinite {
            throw WassersteinError.invalidParameter(name: "cost entry", value: v, requirement: "costs must be finite")
        }
        self.rows = rows
        self.columns = columns
        self.values = values
    }

    @usableFromInline
    init(unchecked x: [Double], _ y: [Double], count n: Int, _ m: Int, dimension d: Int) {
        rows = n
        columns = m
        values = [Double](unsafeUninitializedCapacity: n * m) { out, initialized in
            x.withUnsafeBufferPointer { xp in
                y.withUnsafeBufferPointer { yp in
                    let outBase = out.baseAddress!
                    Parallel.forEachChunk(count: n, minimumChunk: max(1, 65_536 / max(1, m * d))) { range in
                        for i in range {
                            let row = outBase + i * m
                            let xi = xp.baseAddress! + i * d
                            if d == 2 {
                                let x0 = xi[0], x1 = xi[1]
                                for j in 0 ..< m {
                                    let a = x0 - yp[2 * j], b = x1 - yp[2 * j + 1]
                                    row[j] = a * a + b * b
                                }
                            } else {
                                for j in 0 ..< m {
                                    let yj = yp.baseAddress! + j * d
                                    var s = 0.0
                                    for k in 0 ..< d {
                                        let t = xi[k] - yj[k]
                                        s += t * t
                                    }
                                    row[j] = s
                                }
                            }
                        }
                    }
                }
            }
            initialized = n * m
        }
    }

    /// The entry `C[i, j]`.
    @inlinable
    public subscript(i: Int, j: Int) -> Double { values[i * columns + j] }

    /// The largest entry.
    public var maximum: Double { values.max() ?? 0 }
}
