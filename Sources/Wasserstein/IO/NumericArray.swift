/// A dense array of doubles with a shape, as read from or written to a data file.
///
/// Storage is row-major (C order) whatever the file's order was.
public struct NumericArray: Sendable, Equatable {
    /// The shape: `[n]` for a vector, `[n, D]` for a table of points.
    public var shape: [Int]
    /// The values, row-major, `shape.reduce(1, *)` of them.
    public var values: [Double]

    /// - Precondition: the product of `shape` is `values.count`. A mismatch is a programming
    ///   error, not bad input: the file readers check a file's shape before they build an array.
    public init(shape: [Int], values: [Double]) {
        precondition(shape.reduce(1, *) == values.count, "shape \(shape) does not match \(values.count) values")
        self.shape = shape
        self.values = values
    }

    /// A vector `[n]`.
    public init(vector: [Double]) {
        self.init(shape: [vector.count], values: vector)
    }

    /// A matrix `[rows, columns]` from row-major values.
    public init(rows: Int, columns: Int, values: [Double]) {
        self.init(shape: [rows, columns], values: values)
    }

    /// Rows and columns when this is read as a table of points: `(n,)` is `n` points in
    /// dimension one, `(n, D)` is `n` points in dimension `D`.
    public var tableShape: (rows: Int, columns: Int)? {
        switch shape.count {
        case 1: return (shape[0], 1)
        case 2: return (shape[0], shape[1])
        default: return nil
        }
    }
}
