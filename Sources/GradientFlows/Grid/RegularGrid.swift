#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Wasserstein

/// A regular grid in dimension `D = 1`, `2` or `3`: `n_a` equally spaced points per axis from the
/// lower to the upper bound, both included (spacing `h_a = (upper_a - lower_a) / (n_a - 1)`).
///
/// Each point stands for the cell of volume `h_0 ... h_{D-1}` around it; a density on the grid is
/// a vector of cell masses. Points are numbered row-major with axis 0 slowest:
/// index `i = i_0 n_1 + i_1` in 2-D, `i = (i_0 n_1 + i_1) n_2 + i_2` in 3-D.
///
/// `D = 3` is there for the reduced mean-field flow in `(a, s, r)`. Every array of the schemes is
/// `O(N)`, so the cap on the total number of points (``maximumPointCount``) bounds the size, and
/// time grows with `N`: an OU step takes about 0.6 CPU seconds on `48^3` points and 2 on `64^3`
/// (Docs/Benchmarks.md).
public struct RegularGrid: Sendable, Equatable {
    /// The lower bound of each axis.
    public let lowerBounds: [Double]
    /// The upper bound of each axis.
    public let upperBounds: [Double]
    /// The number of points of each axis.
    public let pointsPerAxis: [Int]

    /// The smallest number of points per axis accepted (a coarser grid cannot resolve a density).
    public static let minimumPointsPerAxis = 8
    /// The largest total number of points accepted (`2048 x 2048`; memory is a few arrays of this size).
    public static let maximumPointCount = 1 << 22

    /// - Throws: ``GradientFlowsError/unsupported(_:)`` for `D` other than 1, 2 or 3;
    ///   ``GradientFlowsError/dimensionMismatch(what:expected:actual:)`` for lists of different lengths;
    ///   ``GradientFlowsError/invalidParameter(name:value:requirement:)`` for bounds that are not
    ///   finite with `lower < upper`, or fewer than ``minimumPointsPerAxis`` points on an axis;
    ///   ``GradientFlowsError/tooLarge(_:)`` beyond ``maximumPointCount`` points.
    public init(lowerBounds: [Double], upperBounds: [Double], pointsPerAxis: [Int]) throws {
        let d = lowerBounds.count
        guard (1 ... 3).contains(d) else {
            throw GradientFlowsError.unsupported("grid schemes support dimension 1, 2 or 3, got \(d) lower bounds")
        }
        guard upperBounds.count == d else {
            throw GradientFlowsError.dimensionMismatch(what: "upperBounds against lowerBounds", expected: d, actual: upperBounds.count)
        }
        guard pointsPerAxis.count == d else {
            throw GradientFlowsError.dimensionMismatch(what: "pointsPerAxis against lowerBounds", expected: d, actual: pointsPerAxis.count)
        }
        var total = 1
        for a in 0 ..< d {
            guard lowerBounds[a].isFinite, upperBounds[a].isFinite, lowerBounds[a] < upperBounds[a] else {
                throw GradientFlowsError.invalidParameter(name: "upperBounds[\(a)] - lowerBounds[\(a)]", value: upperBounds[a] - lowerBounds[a],
                                                          requirement: "grid bounds must be finite with lower < upper")
            }
            guard pointsPerAxis[a] >= RegularGrid.minimumPointsPerAxis else {
                throw GradientFlowsError.invalidParameter(name: "pointsPerAxis[\(a)]", value: Double(pointsPerAxis[a]),
                                                          requirement: "a grid needs at least \(RegularGrid.minimumPointsPerAxis) points per axis")
            }
            guard pointsPerAxis[a] <= RegularGrid.maximumPointCount else {
                throw GradientFlowsError.tooLarge("\(pointsPerAxis[a]) points on axis \(a); at most \(RegularGrid.maximumPointCount) grid points in all")
            }
            total *= pointsPerAxis[a]
            guard total <= RegularGrid.maximumPointCount else {
                throw GradientFlowsError.tooLarge("a grid of \(pointsPerAxis.map(String.init).joined(separator: " x ")) points; at most \(RegularGrid.maximumPointCount) in all")
            }
        }
        self.lowerBounds = lowerBounds
        self.upperBounds = upperBounds
        self.pointsPerAxis = pointsPerAxis
    }

    /// The same bounds and number of points on every one of `dimension` axes.
    public init(dimension: Int, lower: Double, upper: Double, pointsPerAxis n: Int) throws {
        guard dimension >= 1 else {
            throw GradientFlowsError.invalidParameter(name: "dimension", value: Double(dimension), requirement: "must be >= 1")
        }
        try self.init(lowerBounds: Array(repeating: lower, count: dimension), upperBounds: Array(repeating: upper, count: dimension),
                      pointsPerAxis: Array(repeating: n, count: dimension))
    }

    /// The dimension `D`.
    public var dimension: Int { pointsPerAxis.count }
    /// The total number of points.
    public var count: Int { pointsPerAxis.reduce(1, *) }
    /// The spacing `h_a` of each axis.
    public var spacing: [Double] { (0 ..< dimension).map { (upperBounds[$0] - lowerBounds[$0]) / Double(pointsPerAxis[$0] - 1) } }
    /// The cell volume `prod_a h_a`.
    public var cellVolume: Double { spacing.reduce(1, *) }
    /// The coordinates of the points of each axis (what `grid.json`'s `axes` holds).
    public var axes: [[Double]] {
        let h = spacing
        return (0 ..< dimension).map { a in (0 ..< pointsPerAxis[a]).map { lowerBounds[a] + Double($0) * h[a] } }
    }

    /// All points, row-major `count x D` (axis 0 slowest).
    public var points: [Double] {
        let ax = axes
        switch dimension {
        case 1:
            return ax[0]
        case 2:
            var out = [Double]()
            out.reserveCapacity(2 * count)
            for x0 in ax[0] { for x1 in ax[1] { out.append(x0); out.append(x1) } }
            return out
        default:
            var out = [Double]()
            out.reserveCapacity(3 * count)
            for x0 in ax[0] { for x1 in ax[1] { for x2 in ax[2] { out.append(x0); out.append(x1); out.append(x2) } } }
            return out
        }
    }

    /// The outer product `f_0 (x) ... (x) f_{D-1}` of one factor per axis, in the point order:
    /// how product densities (Gaussians, a radial weight times a Gaussian) are laid on the grid.
    public func tensorProduct(_ factors: [[Double]]) -> [Double] {
        switch dimension {
        case 1:
            return factors[0]
        case 2:
            var out = [Double]()
            out.reserveCapacity(count)
            for f0 in factors[0] { for f1 in factors[1] { out.append(f0 * f1) } }
            return out
        default:
            var out = [Double]()
            out.reserveCapacity(count)
            for f0 in factors[0] { for f1 in factors[1] { let f01 = f0 * f1; for f2 in factors[2] { out.append(f01 * f2) } } }
            return out
        }
    }

    /// The marginal masses along each axis of a vector of cell masses.
    public func marginals(_ masses: [Double]) -> [[Double]] {
        let n = pointsPerAxis
        var out = n.map { [Double](repeating: 0, count: $0) }
        switch dimension {
        case 1:
            out[0] = masses
        case 2:
            for i0 in 0 ..< n[0] {
                for i1 in 0 ..< n[1] {
                    let p = masses[i0 * n[1] + i1]
                    out[0][i0] += p
                    out[1][i1] += p
                }
            }
        default:
            var i = 0
            for i0 in 0 ..< n[0] {
                for i1 in 0 ..< n[1] {
                    var row = 0.0
                    for i2 in 0 ..< n[2] {
                        let p = masses[i]
                        row += p
                        out[2][i2] += p
                        i += 1
                    }
                    out[0][i0] += row
                    out[1][i1] += row
                }
            }
        }
        return out
    }
}

/// A probability density on a ``RegularGrid``, stored as cell masses (non-negative, summing to 1).
public struct GridDensity: Sendable, Equatable {
    /// The grid.
    public let grid: RegularGrid
    /// The mass of each cell, in the grid's point order; sums to 1.
    public let masses: [Double]

    /// Wraps cell masses, normalising them to total mass 1.
    ///
    /// - Throws: ``GradientFlowsError/dimensionMismatch(what:expected:actual:)`` for a count of
    ///   masses other than the grid's; ``GradientFlowsError/invalidParameter(name:value:requirement:)``
    ///   for a negative or non-finite mass, or a total mass that is not positive and finite.
    public init(grid: RegularGrid, masses: [Double]) throws {
        guard masses.count == grid.count else {
            throw GradientFlowsError.dimensionMismatch(what: "count of the grid density's masses against the grid points", expected: grid.count, actual: masses.count)
        }
        var total = 0.0
        for (i, m) in masses.enumerated() {
            guard m.isFinite, m >= 0 else {
                throw GradientFlowsError.invalidParameter(name: "masses[\(i)]", value: m, requirement: "a grid density's masses must be finite and >= 0")
            }
            total += m
        }
        guard total > 0, total.isFinite else {
            throw GradientFlowsError.invalidParameter(name: "total mass", value: total, requirement: "a grid density's total mass must be > 0 and finite")
        }
        self.grid = grid
        self.masses = total == 1 ? masses : masses.map { $0 / total }
    }

    init(trusted grid: RegularGrid, masses: [Double]) {
        self.grid = grid
        self.masses = masses
    }

    /// The Gaussian `N(mean, diag(standardDeviation^2))` sampled at the grid points and normalised
    /// (point sampling: for spacings below the standard deviation the discrete moments match the
    /// continuous ones to spectral accuracy, apart from the mass cut off by the bounds).
    ///
    /// - Throws: ``GradientFlowsError/dimensionMismatch(what:expected:actual:)``,
    ///   ``GradientFlowsError/invalidParameter(name:value:requirement:)`` for a non-positive deviation
    ///   or a Gaussian that underflows on the whole grid (total mass 0).
    public static func normal(grid: RegularGrid, mean: [Double], standardDeviation: [Double]) throws -> GridDensity {
        let d = grid.dimension
        guard mean.count == d else { throw GradientFlowsError.dimensionMismatch(what: "length of mean against the grid dimension", expected: d, actual: mean.count) }
        guard standardDeviation.count == d else {
            throw GradientFlowsError.dimensionMismatch(what: "length of standardDeviation against the grid dimension", expected: d, actual: standardDeviation.count)
        }
        for s in standardDeviation where !(s > 0 && s.isFinite) {
            throw GradientFlowsError.invalidParameter(name: "standardDeviation", value: s, requirement: "must be > 0 and finite")
        }
        for m in mean where !m.isFinite {
            throw GradientFlowsError.invalidParameter(name: "mean", value: m, requirement: "must be finite")
        }
        let ax = grid.axes
        let factors = (0 ..< d).map { a in ax[a].map { x -> Double in
            let t = (x - mean[a]) / standardDeviation[a]
            return exp(-0.5 * t * t)
        } }
        return try GridDensity(grid: grid, masses: grid.tensorProduct(factors))
    }

    /// Density values `mass / cellVolume` at the grid points (what `density_final.npy` holds).
    public var densityValues: [Double] {
        let inv = 1 / grid.cellVolume
        return masses.map { $0 * inv }
    }

    /// The exact negative entropy of the piecewise-constant density: `sum_i p_i log(p_i / cellVolume)`.
    public var negativeEntropy: Double {
        let vol = grid.cellVolume
        var s = 0.0
        for p in masses where p > 0 { s += p * log(p / vol) }
        return s
    }

    /// The mean per axis.
    public var mean: [Double] { moments.mean }
    /// The variance per axis.
    public var variance: [Double] { moments.variance }

    /// Mean and variance per axis.
    public var moments: (mean: [Double], variance: [Double]) {
        let d = grid.dimension
        let ax = grid.axes
        let marginals = grid.marginals(masses)
        var mean = [Double](repeating: 0, count: d), variance = [Double](repeating: 0, count: d)
        for a in 0 ..< d {
            for (k, p) in marginals[a].enumerated() { mean[a] += p * ax[a][k] }
            for (k, p) in marginals[a].enumerated() { variance[a] += p * (ax[a][k] - mean[a]) * (ax[a][k] - mean[a]) }
        }
        return (mean, variance)
    }
}
