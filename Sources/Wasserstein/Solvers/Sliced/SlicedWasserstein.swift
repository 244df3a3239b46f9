/// The directions a sliced distance projects on.
public enum SlicedDirections: Sendable, Equatable {
    /// `count` directions drawn uniformly on the sphere `S^(D-1)`: standard Gaussian vectors
    /// from ``Xoshiro256StarStar`` seeded with `seed`, normalised. The same seed gives the same
    /// directions (and so the same estimate) on every machine and core count.
    case random(count: Int, seed: UInt64)
    /// Given directions, row-major `K x D` (`K` = `coordinates.count / D`), each normalised to
    /// unit length; a zero or non-finite direction is an error.
    case given(coordinates: [Double])
}

/// The sliced estimate of a ``SlicedWasserstein`` solve.
public struct SlicedResult: Sendable {
    /// The dimension `D` of the directions.
    public let dimension: Int
    /// The unit directions used, row-major `K x D`.
    public let directions: [Double]
    /// `SW2^2`, the mean of the per-direction `W2^2(theta # mu, theta # nu)`.
    public let w2Squared: Double
    /// The Monte Carlo standard error of ``w2Squared``: the sample standard deviation of the
    /// per-direction values divided by `sqrt(K)`; `nil` for a single direction, where it is not defined.
    public let standardError: Double?
    /// `W2^2` of each direction's projections, in the order of ``directions``, when requested
    /// (``SlicedWasserstein/keepsPerDirection``).
    public let perDirection: [Double]?

    /// The number of directions `K`.
    public var directionCount: Int { directions.count / dimension }
    /// `SW2 = sqrt(SW2^2)`.
    public var w2: Double { max(w2Squared, 0).squareRoot() }
}

/// The sliced 2-Wasserstein distance
///
///     SW2^2(mu, nu) = E_theta W2^2(theta # mu, theta # nu),   theta uniform on S^(D-1),
///
/// estimated by the mean over `K` directions, each projected problem solved exactly by the
/// one-dimensional ``SortedSolver`` (weighted clouds included). Why: in one dimension W2 costs a
/// sort, so the sliced distance scales to millions of points where the exact `D`-dimensional
/// problem cannot; it is a distance on measures, with `SW2 <= W2`.
///
/// The normalisation is the expectation over the sphere (no factor `D`): for two Gaussians
/// `N(m1, s^2 I)`, `N(m2, s^2 I)` it is `|m1 - m2|^2 / D`. POT's `sliced_wasserstein_distance`
/// returns the square root of the same mean, so its value is ``SlicedResult/w2``.
///
/// The directions are split over the cores; each direction's value is written to its own slot
/// and the slots are summed in order afterwards, so the result does not depend on the core count
/// or on ``maximumThreads``, bit for bit.
///
/// ```swift
/// let problem = try TransportProblem(source: mu, target: nu)
/// let sliced = try SlicedWasserstein(directions: .random(count: 100, seed: 7)).solve(problem)
/// print(sliced.w2Squared, sliced.standardError ?? .nan)
/// ```
public struct SlicedWasserstein: Sendable {
    /// The directions to project on.
    public var directions: SlicedDirections
    /// Whether the result keeps every direction's `W2^2` (``SlicedResult/perDirection``).
    public var keepsPerDirection: Bool
    /// The most threads the directions are spread over; `nil` for all cores. The result is the
    /// same for every value (tests use it to check that).
    public var maximumThreads: Int?

    /// The default number of random directions.
    public static let defaultDirectionCount = 100

    /// Creates a solver.
    public init(directions: SlicedDirections = .random(count: SlicedWasserstein.defaultDirectionCount, seed: 0),
                keepsPerDirection: Bool = false, maximumThreads: Int? = nil) {
        self.directions = directions
        self.keepsPerDirection = keepsPerDirection
        self.maximumThreads = maximumThreads
    }

    /// The unit directions in dimension `d`, row-major.
    ///
    /// - Throws: ``WassersteinError/invalidParameter(name:value:requirement:)`` for a count
    ///   below 1, a zero or non-finite given direction; ``WassersteinError/malformedShape(_:)``
    ///   for given coordinates that do not split into directions of dimension `d`.
    public static func unitDirections(_ directions: SlicedDirections, dimension d: Int) throws -> [Double] {
        guard d >= 1 else { throw WassersteinError.malformedShape("directions need a dimension >= 1, got \(d)") }
        switch directions {
        case .random(let count, let seed):
            guard count >= 1 else {
                throw WassersteinError.invalidParameter(name: "number of directions", value: Double(count), requirement: "must be >= 1")
            }
            // 2^27 values (1 GiB) of directions is far beyond any useful Monte Carlo size; refuse
            // rather than exhaust memory.
            let (cells, overflow) = count.multipliedReportingOverflow(by: d)
            guard !overflow, cells <= 1 << 27 else {
                throw WassersteinError.tooLarge("\(count) directions of dimension \(d) exceed 2^27 values")
            }
            var rng = Xoshiro256StarStar(seed: seed)
            var out = [Double](repeating: 0, count: cells)
            var v = [Double](repeating: 0, count: d)
            for k in 0 ..< count {
                // A Gaussian vector is zero with probability zero; redraw rather than divide by it.
                while true {
                    var s = 0.0
                    for l in 0 ..< d { v[l] = rng.nextGaussian(); s += v[l] * v[l] }
                    if s > 0 {
                        let r = 1 / s.squareRoot()
                        for l in 0 ..< d { out[k * d + l] = v[l] * r }
                        break
                    }
                }
            }
            return out
        case .given(let coordinates):
            guard !coordinates.isEmpty, coordinates.count % d == 0 else {
                throw WassersteinError.malformedShape(
                    "\(coordinates.count) direction values do not split into directions of dimension \(d)")
            }
            var out = coordinates
            for k in 0 ..< coordinates.count / d {
                // Scale by the largest component first: |v|^2 of a direction like (1e200, 0) overflows.
                var largest = 0.0
                for l in 0 ..< d {
                    let c = coordinates[k * d + l]
                    guard c.isFinite else {
                        throw WassersteinError.invalidParameter(name: "direction \(k) component \(l)", value: c,
                                                                requirement: "directions must be finite")
                    }
                    largest = max(largest, abs(c))
                }
                guard largest > 0 else {
                    throw WassersteinError.invalidParameter(name: "length of direction \(k)", value: 0,
                                                            requirement: "a direction must be non-zero")
                }
                var s = 0.0
                for l in 0 ..< d { let c = coordinates[k * d + l] / largest; s += c * c }
                let norm = s.squareRoot()
                for l in 0 ..< d { out[k * d + l] = coordinates[k * d + l] / largest / norm }
            }
            return out
        }
    }

    /// Estimates `SW2^2` for the problem.
    ///
    /// - Throws: the errors of ``unitDirections(_:dimension:)``,
    ///   ``WassersteinError/invalidParameter(name:value:requirement:)`` when projections or
    ///   their squared differences overflow, and the sorted solver's errors.
    public func solve(_ problem: TransportProblem) throws -> SlicedResult {
        let d = problem.dimension
        let theta = try Self.unitDirections(directions, dimension: d)
        let k = theta.count / d
        if let t = maximumThreads, t < 1 {
            throw WassersteinError.invalidParameter(name: "maximumThreads", value: Double(t), requirement: "must be >= 1")
        }
        let values = try Self.projectedValues(problem, directions: theta, threads: maximumThreads ?? Parallel.coreCount)
        // In order, compensated: the same sum whatever the split.
        var sum = SortedSolver.CompensatedSum()
        for v in values { sum.add(v) }
        let mean = sum.value / Double(k)
        var error: Double? = nil
        if k >= 2 {
            var squares = SortedSolver.CompensatedSum()
            for v in values { squares.add((v - mean) * (v - mean)) }
            error = (squares.value / Double(k - 1)).squareRoot() / Double(k).squareRoot()
        }
        return SlicedResult(dimension: d, directions: theta, w2Squared: mean, standardError: error,
                            perDirection: keepsPerDirection ? values : nil)
    }

    /// `W2^2` of the projections on each of the unit directions (row-major `K x D`), spread
    /// over at most `threads` threads in contiguous blocks, each value in its own slot.
    static func projectedValues(_ problem: TransportProblem, directions theta: [Double], threads: Int) throws -> [Double] {
        let d = problem.dimension
        let k = theta.count / d
        let x = problem.source, y = problem.target
        var values = [Double](repeating: 0, count: k)
        // The first error of each worker (it stops there); one slot per worker, not per direction.
        // Small problems: the thread hand-off would cost more than the sorts.
        let perDirection = x.count + y.count
        let uniform = SortedSolver.isUniform(x.weights) && SortedSolver.isUniform(y.weights)
        let workers = max(1, min(threads, k, perDirection >= 2_000 ? k : 1))
        var failures = [Error?](repeating: nil, count: workers)
        values.withUnsafeMutableBufferPointer { vp in
            failures.withUnsafeMutableBufferPointer { fp in
                let vbase = vp.baseAddress!
                let fbase = fp.baseAddress!
                // Each worker owns the slots of its block of directions.
                Parallel.forEachChunk(count: workers) { range in
                    for w in range {
                        let lo = w * k / workers, hi = (w + 1) * k / workers
                        guard uniform else {
                            do {
                                for j in lo ..< hi { vbase[j] = try projectedW2Squared(x, y, direction: theta, at: j) }
                            } catch {
                                fbase[w] = error
                            }
                            continue
                        }
                        // Uniform weights: one set of buffers per worker, reused for each of its
                        // directions (projections, then their sorted copies).
                        let n = x.count, m = y.count
                        let buffers = UnsafeMutablePointer<Double>.allocate(capacity: 2 * (n + m))
                        defer { buffers.deallocate() }
                        do {
                            for j in lo ..< hi {
                                vbase[j] = try uniformProjectedW2Squared(x, y, direction: theta, at: j, buffers: buffers)
                            }
                        } catch {
                            fbase[w] = error
                        }
                    }
                }
            }
        }
        if let first = failures.first(where: { $0 != nil }), let error = first { throw error }
        return values
    }

    /// `W2^2` between the projections of the two clouds on direction `j` (cost only).
    static func projectedW2Squared(_ x: PointCloud, _ y: PointCloud, direction theta: [Double], at j: Int) throws -> Double {
        let d = x.dimension
        let px = try project(x, theta, j * d)
        let py = try project(y, theta, j * d)
        let problem = TransportProblem(unchecked: PointCloud(unchecked: px, dimension: 1, weights: x.weights, mass: x.mass),
                                       PointCloud(unchecked: py, dimension: 1, weights: y.weights, mass: y.mass))
        return try SortedSolver(planOutput: .none).solve(problem).cost
    }

    /// `W2^2` between the projections on direction `j` when both clouds have uniform weights:
    /// the sorted solver's cost-only path (``BucketSort`` and the integer staircase merge of
    /// ``SortedSolver/uniformSortedCost(_:count:_:count:)``), the same value bit for bit, without
    /// allocating: `buffers` holds `2 (n + m)` values.
    static func uniformProjectedW2Squared(_ x: PointCloud, _ y: PointCloud, direction theta: [Double], at j: Int,
                                          buffers: UnsafeMutablePointer<Double>) throws -> Double {
        let n = x.count, m = y.count, d = x.dimension
        let px = buffers, py = buffers + n, sx = buffers + n + m, sy = buffers + 2 * n + m
        guard project(x, theta, j * d, into: px), project(y, theta, j * d, into: py) else { throw projectionOverflow }
        BucketSort.sort(UnsafeBufferPointer(start: px, count: n), into: sx)
        BucketSort.sort(UnsafeBufferPointer(start: py, count: m), into: sy)
        // All weights equal w: the mass is n w exactly (as in the sorted solver).
        let cost = SortedSolver.uniformSortedCost(sx, count: n, sy, count: m) * (Double(n) * x.weights[0])
        guard cost.isFinite else {
            throw WassersteinError.invalidParameter(name: "W2^2", value: cost,
                                                    requirement: "squared distances must be finite (coordinates too large)")
        }
        return cost
    }

    static let projectionOverflow = WassersteinError.invalidParameter(
        name: "projected coordinate", value: .infinity,
        requirement: "projections of the points overflow the Double range (coordinates too large); rescale the coordinates")

    /// Writes `<theta, x_i>` for the unit direction at `theta[offset ..< offset + D]` into
    /// `output` (`n` values); false when one of them overflows.
    static func project(_ cloud: PointCloud, _ theta: [Double], _ offset: Int, into buffer: UnsafeMutablePointer<Double>) -> Bool {
        let n = cloud.count, d = cloud.dimension
        return cloud.coordinates.withUnsafeBufferPointer { cp in
            theta.withUnsafeBufferPointer { tp in
                let c = cp.baseAddress!, t = tp.baseAddress! + offset
                switch d {
                case 1:
                    for i in 0 ..< n { buffer[i] = t[0] * c[i] }
                case 2:
                    let t0 = t[0], t1 = t[1]
                    for i in 0 ..< n { buffer[i] = t0 * c[2 * i] + t1 * c[2 * i + 1] }
                case 3:
                    let t0 = t[0], t1 = t[1], t2 = t[2]
                    for i in 0 ..< n { buffer[i] = t0 * c[3 * i] + t1 * c[3 * i + 1] + t2 * c[3 * i + 2] }
                default:
                    for i in 0 ..< n {
                        var s = 0.0
                        for l in 0 ..< d { s += t[l] * c[i * d + l] }
                        buffer[i] = s
                    }
                }
                // A sum of finite products is non-finite only if it overflowed; checking the
                // sum of the values catches it in one pass (an overflow makes the sum infinite
                // or NaN), and a finite sum with an infinite term is impossible.
                var sum = 0.0
                for i in 0 ..< n { sum += buffer[i] }
                if sum.isFinite { return true }
                for i in 0 ..< n where !buffer[i].isFinite { return false }
                return true
            }
        }
    }

    /// The values `<theta, x_i>` for the unit direction stored at `theta[offset ..< offset + D]`.
    ///
    /// - Throws: ``WassersteinError/invalidParameter(name:value:requirement:)`` when a projection
    ///   overflows (coordinates near the Double limit).
    static func project(_ cloud: PointCloud, _ theta: [Double], _ offset: Int) throws -> [Double] {
        var finite = true
        let out = [Double](unsafeUninitializedCapacity: cloud.count) { buffer, initialized in
            finite = project(cloud, theta, offset, into: buffer.baseAddress!)
            initialized = cloud.count
        }
        guard finite else { throw projectionOverflow }
        return out
    }
}
