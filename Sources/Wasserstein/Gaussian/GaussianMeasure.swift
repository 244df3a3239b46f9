/// A Gaussian measure `N(mean, covariance)` on R^D, possibly degenerate (singular covariance).
///
/// The W2 distance between Gaussians has the closed form (Bures-Wasserstein)
///
///     W2^2 = |m1 - m2|^2 + tr(S1 + S2 - 2 (S1^1/2 S2 S1^1/2)^1/2),
///
/// evaluated here with symmetric eigen-decompositions (``squaredDistance(to:)``). Between two
/// point clouds, ``init(sampleMomentsOf:)`` gives the Gaussian with the same weighted mean and
/// covariance, and ``GaussianMomentSolver`` applies the formula to them: a lower bound on the
/// W2 between the clouds and a quick estimate when they are close to Gaussian.
public struct GaussianMeasure: Sendable, Equatable {
    /// The dimension `D`.
    public let dimension: Int
    /// The mean, `D` values.
    public let mean: [Double]
    /// The covariance, row-major `D x D`, symmetric positive semi-definite.
    public let covariance: [Double]

    /// Relative tolerance of the symmetry and positive semi-definiteness checks.
    public static let validationTolerance = 1e-10

    /// Creates a Gaussian from its mean and covariance.
    ///
    /// - Parameters:
    ///   - mean: `D >= 1` finite values.
    ///   - covariance: `D * D` finite values, row-major; must be symmetric and positive
    ///     semi-definite up to a relative `1e-10` of its largest entry (it is then symmetrised).
    /// - Throws: ``WassersteinError/malformedShape(_:)`` on wrong sizes,
    ///   ``WassersteinError/invalidParameter(name:value:requirement:)`` on a non-finite value,
    ///   an asymmetric or an indefinite covariance.
    public init(mean: [Double], covariance: [Double]) throws {
        let d = mean.count
        guard d >= 1 else { throw WassersteinError.malformedShape("a Gaussian needs a mean of dimension >= 1") }
        guard covariance.count == d * d else {
            throw WassersteinError.malformedShape("covariance has \(covariance.count) entries, expected \(d) x \(d)")
        }
        for v in mean where !v.isFinite {
            throw WassersteinError.invalidParameter(name: "mean entry", value: v, requirement: "must be finite")
        }
        var scale = 0.0
        for v in covariance {
            guard v.isFinite else {
                throw WassersteinError.invalidParameter(name: "covariance entry", value: v, requirement: "must be finite")
            }
            scale = max(scale, abs(v))
        }
        let tolerance = Self.validationTolerance * scale
        var s = covariance
        for k in 0 ..< d {
            for l in k + 1 ..< d {
                let gap = abs(s[k * d + l] - s[l * d + k])
                guard gap <= tolerance else {
                    throw WassersteinError.invalidParameter(name: "covariance asymmetry |S[\(k),\(l)] - S[\(l),\(k)]|",
                                                            value: gap, requirement: "covariance must be symmetric")
                }
                let average = 0.5 * (s[k * d + l] + s[l * d + k])
                s[k * d + l] = average
                s[l * d + k] = average
            }
        }
        let smallest = SymmetricEigen(s, dimension: d).values.min()!
        guard smallest >= -tolerance * Double(d) else {
            throw WassersteinError.invalidParameter(name: "smallest covariance eigenvalue", value: smallest,
                                                    requirement: "covariance must be positive semi-definite")
        }
        self.dimension = d
        self.mean = mean
        self.covariance = s
    }

    /// The Gaussian with the weighted sample mean and covariance (normalised by the mass, not
    /// `n - 1`) of a point cloud.
    public init(sampleMomentsOf cloud: PointCloud) {
        dimension = cloud.dimension
        mean = cloud.mean
        covariance = cloud.covariance
    }

    /// `W2^2` between this Gaussian and another (Bures-Wasserstein closed form).
    ///
    /// Complexity `O(D^3)` (three symmetric eigen-decompositions).
    /// - Throws: ``WassersteinError/dimensionMismatch(expected:actual:)``.
    public func squaredDistance(to other: GaussianMeasure) throws -> Double {
        guard other.dimension == dimension else {
            throw WassersteinError.dimensionMismatch(expected: dimension, actual: other.dimension)
        }
        var meanTerm = 0.0
        for k in 0 ..< dimension {
            let t = mean[k] - other.mean[k]
            meanTerm += t * t
        }
        let value = max(0, meanTerm + Self.buresSquared(covariance, other.covariance, dimension: dimension))
        guard value.isFinite else {
            throw WassersteinError.invalidParameter(name: "W2^2", value: value,
                                                    requirement: "must be finite (means or covariances too large)")
        }
        return value
    }

    /// `tr(S1 + S2 - 2 (S1^1/2 S2 S1^1/2)^1/2)`, the squared Bures distance of two PSD matrices.
    static func buresSquared(_ s1: [Double], _ s2: [Double], dimension d: Int) -> Double {
        // Round-off can leave eigenvalues of a PSD matrix slightly negative: clamp them.
        let root1 = SymmetricEigen(s1, dimension: d).applying { max($0, 0).squareRoot() }
        // M = S1^1/2 S2 S1^1/2, symmetric PSD.
        var t = [Double](repeating: 0, count: d * d)
        for k in 0 ..< d {
            for l in 0 ..< d {
                var s = 0.0
                for e in 0 ..< d { s += root1[k * d + e] * s2[e * d + l] }
                t[k * d + l] = s
            }
        }
        var product = [Double](repeating: 0, count: d * d)
        for k in 0 ..< d {
            for l in 0 ..< d {
                var s = 0.0
                for e in 0 ..< d { s += t[k * d + e] * root1[e * d + l] }
                product[k * d + l] = s
            }
        }
        var crossTrace = 0.0
        for lambda in SymmetricEigen(product, dimension: d).values { crossTrace += max(lambda, 0).squareRoot() }
        var traces = 0.0
        for k in 0 ..< d { traces += s1[k * d + k] + s2[k * d + k] }
        return traces - 2 * crossTrace
    }
}

/// W2 between the Gaussians that share the sample means and covariances of two point clouds.
///
/// This is not the W2 between the clouds themselves (use an exact solver for that), but the
/// Bures-Wasserstein distance of their moment-matched Gaussians: exact when both clouds are
/// samples of Gaussians in the large-sample limit, a lower bound in general (Gelbrich), and
/// `O((n + m) D^2 + D^3)` to compute. The result has no plan or potentials.
public struct GaussianMomentSolver: TransportSolver, Sendable {
    public init() {}

    /// The Bures-Wasserstein `W2^2` of the moment-matched Gaussians.
    public func solve(_ problem: TransportProblem) throws -> TransportResult {
        let mu = GaussianMeasure(sampleMomentsOf: problem.source)
        let nu = GaussianMeasure(sampleMomentsOf: problem.target)
        return try wasserstein2(mu, nu)
    }
}

/// `W2` between two Gaussians, as a ``TransportResult`` with method ``TransportMethod/gaussian``
/// (cost `W2^2`, no plan).
///
/// - Throws: ``WassersteinError/dimensionMismatch(expected:actual:)``.
public func wasserstein2(_ mu: GaussianMeasure, _ nu: GaussianMeasure) throws -> TransportResult {
    TransportResult(method: .gaussian, status: .optimal, cost: try mu.squaredDistance(to: nu))
}
