/// A weighted point cloud in R^D: the discrete measure `sum_i w_i delta_{x_i}`.
///
/// Coordinates are stored contiguously, row-major (`count x dimension`), so that point `i`
/// occupies `coordinates[i * dimension ..< (i + 1) * dimension]`. The initialisers validate
/// everything once (non-empty, finite coordinates, finite non-negative weights with positive
/// total), so solvers can trust the invariants without checking again.
///
/// ```swift
/// let mu = try PointCloud(points: [[0, 0], [1, 0]])                 // uniform weights
/// let nu = try PointCloud(points: [[0, 1]], weights: [1])
/// ```
public struct PointCloud: Sendable, Equatable {
    /// The number of points `n`.
    public let count: Int
    /// The dimension `D` of the ambient space.
    public let dimension: Int
    /// Row-major coordinates, `count * dimension` values.
    public let coordinates: [Double]
    /// The weights, one per point; finite, non-negative, with positive sum.
    public let weights: [Double]
    /// The total mass `sum_i w_i`.
    public let mass: Double

    /// Creates a cloud from row-major coordinates.
    ///
    /// - Parameters:
    ///   - coordinates: `n * dimension` values, point after point.
    ///   - dimension: the dimension `D >= 1`.
    ///   - weights: one weight per point; `nil` means uniform weights `1/n`.
    ///   - name: how error messages refer to this cloud.
    /// - Throws: ``WassersteinError`` on an empty cloud, a shape that does not divide,
    ///   a non-finite coordinate, a negative or non-finite weight, or zero mass.
    public init(coordinates: [Double], dimension: Int, weights: [Double]? = nil, name: String = "point cloud") throws {
        guard dimension >= 1 else {
            throw WassersteinError.malformedShape("\(name): dimension must be >= 1, got \(dimension)")
        }
        guard coordinates.count % dimension == 0 else {
            throw WassersteinError.malformedShape(
                "\(name): \(coordinates.count) values do not split into points of dimension \(dimension)")
        }
        let n = coordinates.count / dimension
        guard n > 0 else { throw WassersteinError.emptyCloud(name) }
        for (k, value) in coordinates.enumerated() where !value.isFinite {
            throw WassersteinError.nonFiniteCoordinate(cloud: name, point: k / dimension, axis: k % dimension)
        }
        let w: [Double]
        if let weights {
            guard weights.count == n else {
                throw WassersteinError.weightCountMismatch(cloud: name, points: n, weights: weights.count)
            }
            for (i, value) in weights.enumerated() where !(value.isFinite && value >= 0) {
                throw WassersteinError.invalidWeight(cloud: name, index: i, value: value)
            }
            w = weights
        } else {
            w = [Double](repeating: 1.0 / Double(n), count: n)
        }
        let total = w.reduce(0, +)
        guard total > 0 else { throw WassersteinError.zeroMass(name) }
        guard total.isFinite else {
            throw WassersteinError.invalidParameter(name: "total mass of \(name)", value: total,
                                                    requirement: "the weights must sum to a finite value; rescale them")
        }
        self.count = n
        self.dimension = dimension
        self.coordinates = coordinates
        self.weights = w
        self.mass = total
    }

    /// Creates a cloud from a list of points, all of the same dimension.
    public init(points: [[Double]], weights: [Double]? = nil, name: String = "point cloud") throws {
        guard let first = points.first else { throw WassersteinError.emptyCloud(name) }
        let d = first.count
        guard d >= 1 else { throw WassersteinError.malformedShape("\(name): points have dimension 0") }
        var flat = [Double]()
        flat.reserveCapacity(points.count * d)
        for p in points {
            guard p.count == d else { throw WassersteinError.dimensionMismatch(expected: d, actual: p.count) }
            flat.append(contentsOf: p)
        }
        try self.init(coordinates: flat, dimension: d, weights: weights, name: name)
    }

    /// Creates a one-dimensional cloud from its values.
    public init(values: [Double], weights: [Double]? = nil, name: String = "point cloud") throws {
        try self.init(coordinates: values, dimension: 1, weights: weights, name: name)
    }

    /// Trusted initialiser for code that has already established the invariants.
    @usableFromInline
    internal init(unchecked coordinates: [Double], dimension: Int, weights: [Double], mass: Double) {
        self.count = weights.count
        self.dimension = dimension
        self.coordinates = coordinates
        self.weights = weights
        self.mass = mass
    }

    /// The coordinates of point `i`.
    @inlinable
    public func point(_ i: Int) -> ArraySlice<Double> {
        coordinates[i * dimension ..< (i + 1) * dimension]
    }

    /// The same points with weights rescaled to total mass one.
    ///
    /// The weights are divided by the largest weight first, then by the sum of the quotients
    /// (between 1 and `n`): with subnormal weights (`1e-320`) the reciprocal of the mass is
    /// infinite and their products lose most of their digits, with weights near `1e308` the sum
    /// overflows; this way every step stays in the normal range and each weight is exact to a
    /// few ulps, whatever the scale.
    public func normalized() -> PointCloud {
        if mass == 1 { return self }
        let w = Self.unitWeights(weights)
        return PointCloud(unchecked: coordinates, dimension: dimension, weights: w, mass: w.reduce(0, +))
    }

    /// `weights` rescaled to sum one, by the largest weight first and then by the sum (see
    /// ``normalized()``); `weights` must be finite, non-negative, with a positive entry.
    static func unitWeights(_ weights: [Double]) -> [Double] {
        let largest = weights.max() ?? 1
        let relative = weights.map { $0 / largest }
        let total = relative.reduce(0, +)
        return relative.map { $0 / total }
    }

    /// The cloud translated by a vector `v` of length `dimension`.
    public func translated(by v: [Double]) throws -> PointCloud {
        guard v.count == dimension else { throw WassersteinError.dimensionMismatch(expected: dimension, actual: v.count) }
        var c = coordinates
        for i in 0 ..< count {
            for k in 0 ..< dimension { c[i * dimension + k] += v[k] }
        }
        return try PointCloud(coordinates: c, dimension: dimension, weights: weights)
    }

    /// The same support with other weights (validated).
    public func reweighted(_ newWeights: [Double], name: String = "point cloud") throws -> PointCloud {
        try PointCloud(coordinates: coordinates, dimension: dimension, weights: newWeights, name: name)
    }

    /// The weighted mean of the points, `sum_i w_i x_i / mass`.
    ///
    /// Formed with the weights rescaled to mass one (``normalized()``), so that subnormal or
    /// huge weights give the same mean as their normal multiples.
    public var mean: [Double] {
        let p = mass == 1 ? weights : Self.unitWeights(weights)
        var m = [Double](repeating: 0, count: dimension)
        for i in 0 ..< count {
            let w = p[i]
            for k in 0 ..< dimension { m[k] += w * coordinates[i * dimension + k] }
        }
        return m
    }

    /// The weighted covariance (normalised by the mass, not by n - 1), row-major `D x D`,
    /// formed with the weights rescaled to mass one, as ``mean``.
    public var covariance: [Double] {
        let m = mean
        let d = dimension
        let p = mass == 1 ? weights : Self.unitWeights(weights)
        var s = [Double](repeating: 0, count: d * d)
        for i in 0 ..< count {
            let w = p[i]
            for k in 0 ..< d {
                let dk = coordinates[i * d + k] - m[k]
                for l in k ..< d { s[k * d + l] += w * dk * (coordinates[i * d + l] - m[l]) }
            }
        }
        for k in 0 ..< d {
            for l in k ..< d { s[l * d + k] = s[k * d + l] }
        }
        return s
    }
}
