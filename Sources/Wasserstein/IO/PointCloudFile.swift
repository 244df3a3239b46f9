/// Reading point clouds and weights from files: CSV (one point per row, optional header) or
/// NumPy `.npy` (shape `(n, D)`, or `(n,)` for `D = 1`).
public enum PointCloudFile {
    /// Reads a table of points; the format is chosen by the extension (`.npy`, else CSV).
    public static func readPoints(path: String) throws -> NumericArray {
        let array = try readArray(path: path)
        guard let shape = array.tableShape else {
            throw DataFileError.malformed(path: path, reason: "expected shape (n, D) or (n,), got \(array.shape)")
        }
        guard shape.rows > 0 else { throw DataFileError.malformed(path: path, reason: "holds no points") }
        guard shape.columns > 0 else { throw DataFileError.malformed(path: path, reason: "points have no coordinates") }
        return NumericArray(rows: shape.rows, columns: shape.columns, values: array.values)
    }

    /// Reads a weight vector: a one-column CSV or an `.npy` of shape `(n,)` or `(n, 1)`.
    public static func readWeights(path: String) throws -> [Double] {
        let array = try readArray(path: path)
        guard let shape = array.tableShape, shape.columns == 1 else {
            throw DataFileError.malformed(path: path, reason: "weights must be one column, got shape \(array.shape)")
        }
        guard shape.rows > 0 else { throw DataFileError.malformed(path: path, reason: "holds no weights") }
        return array.values
    }

    /// Reads a point cloud and, optionally, its weights (uniform without them), validated.
    ///
    /// - Parameters:
    ///   - path: the points file.
    ///   - weightsPath: the weight file (one weight per point); `nil` for uniform weights.
    ///   - name: how messages name the cloud (default: `path`).
    ///   - normalizing: rescale the weights to mass one as they are read (by the largest weight
    ///     first, see ``PointCloud/normalized()``), so that weights whose sum overflows, such as
    ///     three of `1e308`, are accepted; without it such a sum is an error.
    /// - Throws: ``DataFileError`` for unreadable or malformed files, ``WassersteinError`` for
    ///   invalid contents (NaN, negative weights, zero mass, count mismatch). An invalid weight
    ///   names the weight file, everything else the points file (or `name`).
    public static func read(points path: String, weights weightsPath: String? = nil, name: String? = nil,
                            normalizing: Bool = false) throws -> PointCloud {
        let table = try readPoints(path: path)
        var weights = try weightsPath.map { try readWeights(path: $0) }
        if let w = weights, let weightsPath {
            for (i, value) in w.enumerated() where !(value.isFinite && value >= 0) {
                throw WassersteinError.invalidWeight(cloud: weightsPath, index: i, value: value)
            }
            if normalizing, (w.max() ?? 0) > 0 { weights = PointCloud.unitWeights(w) }
        }
        let columns = table.tableShape!.columns
        return try PointCloud(coordinates: table.values, dimension: columns, weights: weights, name: name ?? path)
    }

    /// Reads the two clouds of a transport problem at once, each with optional weights: for
    /// files of millions of points, reading, parsing and validating one overlaps the other on a
    /// second core. Each cloud is named by its side and path (`source x.csv`, `target y.npy`), so
    /// that every message about its contents says which file and which side, even when both sides
    /// read the same file; errors are those of ``read(points:weights:name:normalizing:)``, the
    /// first cloud's when both fail, except that a weight file of the wrong length is a
    /// ``DataFileError/malformed(path:reason:)`` naming the weight file, the side and the points
    /// file, and that a file error (missing, unreadable, malformed) names the side and what the
    /// file holds after the path (`y.csv (target points): no such file`).
    public static func readPair(_ first: String, _ second: String, firstWeights: String? = nil,
                                secondWeights: String? = nil, normalizing: Bool = false) throws -> (PointCloud, PointCloud) {
        let requests = [(first, firstWeights), (second, secondWeights)]
        let results = UnsafeMutablePointer<Result<PointCloud, any Error>?>.allocate(capacity: 2)
        results.initialize(repeating: nil, count: 2)
        defer {
            results.deinitialize(count: 2)
            results.deallocate()
        }
        // Each task writes only its own slot.
        Parallel.forEachChunk(count: 2) { range in
            for k in range {
                let side = k == 0 ? "source" : "target"
                results[k] = Result {
                    do {
                        return try read(points: requests[k].0, weights: requests[k].1, name: "\(side) \(requests[k].0)",
                                        normalizing: normalizing)
                    } catch WassersteinError.weightCountMismatch(_, let points, let weights) where requests[k].1 != nil {
                        throw DataFileError.malformed(path: requests[k].1!,
                                                      reason: "holds \(weights) weights for the \(points) points of the \(side) \(requests[k].0)")
                    } catch let error as DataFileError {
                        throw error.naming(side: side, pointsPath: requests[k].0)
                    }
                }
            }
        }
        return (try results[0]!.get(), try results[1]!.get())
    }

    static func readArray(path: String) throws -> NumericArray {
        if path.lowercased().hasSuffix(".npy") {
            return try NPYFormat.read(path: path)
        }
        return try CSVFormat.read(path: path).array
    }
}
