#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The cost `|x - y|^p` between two point clouds, `p >= 1` (`p = 2`, the squared Euclidean
/// cost of the rest of the toolkit, is the default and the fast path).
///
/// Why `p >= 1` only: for `p < 1` the cost is not a metric power the transport theory of the
/// toolkit covers (concave costs), and `p = 1` already needs a square root per pair.
public struct PointCloudCost: Sendable, Equatable {
    /// The exponent `p`, finite and `>= 1`.
    public let power: Double

    /// The squared Euclidean cost `|x - y|^2` (no factor 1/2).
    public static let squaredEuclidean = PointCloudCost(unchecked: 2)

    /// - Throws: ``WassersteinError/invalidParameter(name:value:requirement:)`` for `p` NaN,
    ///   infinite or below 1.
    public init(power: Double) throws {
        guard power >= 1, power.isFinite else {
            throw WassersteinError.invalidParameter(name: "cost power p", value: power,
                                                    requirement: "the cost |x - y|^p needs a finite p >= 1")
        }
        self.power = power
    }

    init(unchecked power: Double) { self.power = power }

    /// An upper bound on the cost between any two points of the clouds: the bounding box's
    /// squared diagonal to the power `p / 2`.
    ///
    /// - Throws: ``WassersteinError/invalidParameter(name:value:requirement:)`` when it is not
    ///   finite (coordinates so large that the costs overflow).
    func upperBound(_ clouds: [PointCloud]) throws -> Double {
        let d = clouds.first?.dimension ?? 1
        var squared = 0.0
        for k in 0 ..< d {
            var lo = Double.infinity, hi = -Double.infinity
            for cloud in clouds {
                for i in 0 ..< cloud.count {
                    let v = cloud.coordinates[i * d + k]
                    lo = Swift.min(lo, v)
                    hi = Swift.max(hi, v)
                }
            }
            squared += (hi - lo) * (hi - lo)
        }
        let bound = power == 2 ? squared : pow(squared, power / 2)
        guard bound.isFinite else {
            throw WassersteinError.invalidParameter(
                name: "cost bound", value: bound,
                requirement: "the costs |x - y|^\(power) overflow for these coordinates; rescale them")
        }
        return bound
    }
}

/// The online point-cloud geometry: costs recomputed tile by tile from the coordinates.
///
/// Why: a stored `n x m` kernel limits Sinkhorn to n = 32,000 on 8 GB (issue 19); here memory is
/// `O((n + m) D)` (the coordinates, stored once per axis so that the inner loops read contiguous
/// memory) and every soft-min recomputes `n m` costs and exponentials. The rows are split over
/// the cores; each row is summed by one thread in a fixed order, so results do not depend on
/// the number of cores. The inner loops are specialised for `D = 1, 2, 3` so that they compile
/// to packed SIMD code on the baseline x86-64 target (with `entropicExp`); other dimensions
/// accumulate axis by axis, which vectorises as well.
///
/// The cost is symmetric, so the transposed soft-min is the same loop with the clouds' roles
/// exchanged.
public struct OnlinePointCloudGeometry: SinkhornGeometry, RawBufferSinkhornGeometry {
    /// `"online"`.
    public var name: String { "online" }
    /// `n`.
    public let sourceCount: Int
    /// `m`.
    public let targetCount: Int
    /// The dimension `D` of the points.
    public let dimension: Int
    /// The cost `|x - y|^p`.
    public let cost: PointCloudCost
    /// The largest cost between the clouds' bounding boxes (an upper bound on `max C - min C`).
    public let costRange: Double
    /// Source coordinates by axis: axis `k` of point `i` at `k * n + i`.
    let xAxes: [Double]
    /// Target coordinates by axis: axis `k` of point `j` at `k * m + j`.
    let yAxes: [Double]

    /// - Parameters:
    ///   - source: the `n` source points (their weights are the problem's business, not the
    ///     geometry's).
    ///   - target: the `m` target points, same dimension.
    ///   - cost: `|x - y|^p`, default `p = 2`.
    /// - Throws: ``WassersteinError/dimensionMismatch(expected:actual:)`` for clouds of different
    ///   dimensions, ``WassersteinError/invalidParameter(name:value:requirement:)`` when the costs
    ///   overflow.
    public init(source: PointCloud, target: PointCloud, cost: PointCloudCost = .squaredEuclidean) throws {
        guard source.dimension == target.dimension else {
            throw WassersteinError.dimensionMismatch(expected: source.dimension, actual: target.dimension)
        }
        self.sourceCount = source.count
        self.targetCount = target.count
        self.dimension = source.dimension
        self.cost = cost
        self.costRange = try cost.upperBound([source, target])
        self.xAxes = Self.byAxis(source)
        self.yAxes = Self.byAxis(target)
    }

    static func byAxis(_ cloud: PointCloud) -> [Double] {
        let n = cloud.count, d = cloud.dimension
        var out = [Double](repeating: 0, count: n * d)
        for i in 0 ..< n {
            for k in 0 ..< d { out[k * n + i] = cloud.coordinates[i * d + k] }
        }
        return out
    }

    /// Writes `C(point, others[start ..< start + count])` into `out`: the costs between point
    /// `index` of the cloud `own` (by axis, `ownCount` points) and a tile of `others`.
    @inline(__always)
    static func fillCosts(own: UnsafePointer<Double>, ownCount: Int, index: Int,
                          others: UnsafePointer<Double>, otherCount: Int, start: Int, count: Int,
                          dimension: Int, power: Double, out: UnsafeMutablePointer<Double>) {
        switch dimension {
        case 1:
            let x0 = own[index]
            let y0 = others + start
            for j in 0 ..< count {
                let t = x0 - y0[j]
                out[j] = t * t
            }
        case 2:
            let x0 = own[index], x1 = own[ownCount + index]
            let y0 = others + start, y1 = others + otherCount + start
            for j in 0 ..< count {
                let t0 = x0 - y0[j], t1 = x1 - y1[j]
                out[j] = t0 * t0 + t1 * t1
            }
        case 3:
            let x0 = own[index], x1 = own[ownCount + index], x2 = own[2 * ownCount + index]
            let y0 = others + start, y1 = others + otherCount + start, y2 = others + 2 * otherCount + start
            for j in 0 ..< count {
                let t0 = x0 - y0[j], t1 = x1 - y1[j], t2 = x2 - y2[j]
                out[j] = t0 * t0 + t1 * t1 + t2 * t2
            }
        default:
            // Axis by axis: each pass is a contiguous, vectorisable loop over the tile. The sum
            // runs in axis order, as in the specialised cases.
            let x0 = own[index]
            let y0 = others + start
            for j in 0 ..< count {
                let t = x0 - y0[j]
                out[j] = t * t
            }
            for k in 1 ..< dimension {
                let xk = own[k * ownCount + index]
                let yk = others + k * otherCount + start
                for j in 0 ..< count {
                    let t = xk - yk[j]
                    out[j] += t * t
                }
            }
        }
        if power == 2 { return }
        if power == 1 {
            for j in 0 ..< count { out[j] = out[j].squareRoot() }
        } else {
            let half = power / 2
            for j in 0 ..< count { out[j] = pow(out[j], half) }
        }
    }

    /// The tile filler for rows of the source (`transposed == false`) or of the target.
    func filler(x: UnsafePointer<Double>, y: UnsafePointer<Double>, transposed: Bool)
        -> (Int, Int, Int, UnsafeMutablePointer<Double>) -> UnsafePointer<Double> {
        let n = sourceCount, m = targetCount, d = dimension, p = cost.power
        nonisolated(unsafe) let own = transposed ? y : x, others = transposed ? x : y
        let ownCount = transposed ? m : n, otherCount = transposed ? n : m
        return { index, start, count, buffer in
            Self.fillCosts(own: own, ownCount: ownCount, index: index, others: others, otherCount: otherCount,
                      start: start, count: count, dimension: d, power: p, out: buffer)
            return UnsafePointer(buffer)
        }
    }

    package func softMin(_ potential: UnsafeBufferPointer<Double>, logWeights: UnsafeBufferPointer<Double>,
                         epsilon: Double, transposed: Bool, into out: UnsafeMutableBufferPointer<Double>) {
        xAxes.withUnsafeBufferPointer { xb in
            yAxes.withUnsafeBufferPointer { yb in
                EngineRows.softMin(outer: transposed ? targetCount : sourceCount,
                                   inner: transposed ? sourceCount : targetCount,
                                   potential: potential, logWeights: logWeights, epsilon: epsilon, into: out,
                                   fill: filler(x: xb.baseAddress!, y: yb.baseAddress!, transposed: transposed))
            }
        }
    }

    package func transportCost(f: UnsafeBufferPointer<Double>, g: UnsafeBufferPointer<Double>,
                               logA: UnsafeBufferPointer<Double>, logB: UnsafeBufferPointer<Double>,
                               epsilon: Double) -> Double {
        xAxes.withUnsafeBufferPointer { xb in
            yAxes.withUnsafeBufferPointer { yb in
                EngineRows.transportCost(outer: sourceCount, inner: targetCount, f: f, g: g, logA: logA, logB: logB,
                                         epsilon: epsilon,
                                         fill: filler(x: xb.baseAddress!, y: yb.baseAddress!, transposed: false))
            }
        }
    }

    public func applyPlan(_ x: Span<Double>, f: Span<Double>, g: Span<Double>, logA: Span<Double>, logB: Span<Double>,
                          epsilon: Double, transposed: Bool, squared: Bool, into out: inout MutableSpan<Double>) {
        xAxes.withUnsafeBufferPointer { xb in
            yAxes.withUnsafeBufferPointer { yb in
                EngineRows.applyPlan(outer: transposed ? targetCount : sourceCount, inner: transposed ? sourceCount : targetCount,
                                     x: x, own: transposed ? g : f, ownLogWeights: transposed ? logB : logA,
                                     other: transposed ? f : g, otherLogWeights: transposed ? logA : logB,
                                     epsilon: epsilon, squared: squared, into: &out,
                                     fill: filler(x: xb.baseAddress!, y: yb.baseAddress!, transposed: transposed))
            }
        }
    }

    package func planRow(_ i: Int, f: UnsafeBufferPointer<Double>, g: UnsafeBufferPointer<Double>,
                         logA: UnsafeBufferPointer<Double>, logB: UnsafeBufferPointer<Double>,
                         epsilon: Double, into out: UnsafeMutableBufferPointer<Double>) {
        xAxes.withUnsafeBufferPointer { xb in
            yAxes.withUnsafeBufferPointer { yb in
                EngineRows.planRow(i, inner: targetCount, f: f, g: g, logA: logA, logB: logB, epsilon: epsilon,
                                   into: out, fill: filler(x: xb.baseAddress!, y: yb.baseAddress!, transposed: false))
            }
        }
    }

    /// The full `n x m` cost matrix, row-major (for ``DenseCostGeometry`` and tests: the same
    /// arithmetic as the online loops, so both geometries see bit-identical costs).
    func costMatrix() -> [Double] {
        let n = sourceCount, m = targetCount
        var out = [Double](repeating: 0, count: n * m)
        xAxes.withUnsafeBufferPointer { xb in
            yAxes.withUnsafeBufferPointer { yb in
                out.withUnsafeMutableBufferPointer { ob in
                    for i in 0 ..< n {
                        Self.fillCosts(own: xb.baseAddress!, ownCount: n, index: i, others: yb.baseAddress!, otherCount: m,
                                       start: 0, count: m, dimension: dimension, power: cost.power,
                                       out: ob.baseAddress! + i * m)
                    }
                }
            }
        }
        return out
    }
}
