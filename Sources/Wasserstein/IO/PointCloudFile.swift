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
    /// - Throws: ``DataFileError`` for unreadable or malformed files, ``WassersteinError`` for
    ///   invalid contents (NaN, negative weights, zero mass, count mismatch).
    public static func read(points path: String, weights weightsPath: String? = nil, name: String? = nil) throws -> PointCloud {
        let table = try readPoints(path: path)
        let weights = try weightsPath.map { try readWeights(path: $0) }
        let (rows, columns) = table.tableShape!
        _ = rows
        return try PointCloud(coordinates: table.values, dimension: columns, weights: weights, name: name ?? path)
    }

    static func readArray(path: String) throws -> NumericArray {
        if path.lowercased().hasSuffix(".npy") {
            return try NPYFormat.read(path: path)
        }
        return try CSVFormat.read(path: path).array
    }
}
