#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The result of a ``FreeSupportBarycenter`` solve.
public struct BarycenterResult: Sendable {
    /// The barycenter: `N` points with uniform weights `1 / N`.
    public let support: PointCloud
    /// `sum_k lambda_k W2^2(support, mu_k)` for the returned support (each `mu_k` at mass one).
    public let cost: Double
    /// Fixed-point updates applied.
    public let iterations: Int
    /// True when the last update moved no point by more than the tolerance and every plan of
    /// it was optimal (none stopped at the simplex's pivot cap).
    public let converged: Bool
    /// The largest distance a point moved in the last update.
    public let lastDisplacement: Double
    /// The weights `lambda` used, normalised to sum one.
    public let weights: [Double]
}

/// The free-support W2 barycenter of point clouds: `N` points with uniform weights minimising
/// `sum_k lambda_k W2^2(X, mu_k)`, by the fixed-point iteration
///
///     X <- sum_k lambda_k T_k(X),   T_k(x_i) = N sum_j P^k_ij y^k_j,
///
/// `P^k` an exact optimal plan from the current support to cloud `k` and `T_k` its barycentric
/// projection (Álvarez-Esteban et al. 2016; Cuturi and Doucet 2014). Why a fixed point: for fixed
/// plans the objective is a quadratic in `X` whose minimiser is exactly this average, and
/// re-solving the plans at the new support can only lower the cost further, so the cost never
/// rises and, plans being vertices of finitely many polytopes, the iteration settles.
///
/// Each cloud is taken at mass one (its weights normalised); the weights `lambda` are
/// normalised to sum one. The plans come from the network simplex (warm-started from the
/// previous iteration's basis, one workspace per cloud, the clouds on all cores) or, in one
/// dimension, from the sorted solver. In 1-D the answer is the quantile average: the barycenter's
/// quantile function is `sum_k lambda_k F_k^-1`, averaged over the `N` cells of `[0, 1]`.
///
/// The iteration stops when no point moves by more than ``tolerance`` times the diameter of the
/// bounding box of all clouds, or after ``maximumIterations`` updates.
public struct FreeSupportBarycenter: Sendable {
    /// The number of support points `N`; `nil` for the largest cloud's count.
    public var supportSize: Int?
    /// The cap on fixed-point updates.
    public var maximumIterations: Int
    /// Stop when the largest move is at most this fraction of the bounding-box diameter.
    public var tolerance: Double
    /// The seed of the initial support: `N` distinct points drawn from the mixture
    /// `sum_k lambda_k mu_k`, without replacement while the inputs have points left.
    public var seed: UInt64

    /// Creates a solver.
    public init(supportSize: Int? = nil, maximumIterations: Int = 100, tolerance: Double = 1e-9, seed: UInt64 = 0) {
        self.supportSize = supportSize
        self.maximumIterations = maximumIterations
        self.tolerance = tolerance
        self.seed = seed
    }

    /// Computes the barycenter of `clouds` with weights `lambda` (`nil`: uniform).
    ///
    /// - Parameters:
    ///   - clouds: at least one cloud, all of the same dimension.
    ///   - weights: one finite non-negative weight per cloud, positive sum.
    ///   - initialSupport: `N x D` row-major starting points; `nil` draws them (``seed``). Give
    ///     distinct points: repeated ones can stay together at a fixed point that is not the barycenter.
    /// - Throws: ``WassersteinError`` for no clouds, mismatched dimensions, bad weights or
    ///   options, an initial support of the wrong shape, and the solvers' errors.
    public func solve(_ clouds: [PointCloud], weights: [Double]? = nil, initialSupport: [Double]? = nil) throws -> BarycenterResult {
        guard let first = clouds.first else { throw WassersteinError.emptyCloud("barycenter inputs") }
        let d = first.dimension
        for c in clouds where c.dimension != d { throw WassersteinError.dimensionMismatch(expected: d, actual: c.dimension) }
        let lambda = try Self.normalizedWeights(weights, count: clouds.count)
        let n = supportSize ?? clouds.map(\.count).max()!
        guard n >= 1, n <= 1 << 24 else {
            throw WassersteinError.invalidParameter(name: "support size", value: Double(n), requirement: "must be in 1 ... 2^24")
        }
        guard maximumIterations >= 0 else {
            throw WassersteinError.invalidParameter(name: "maximum iterations", value: Double(maximumIterations), requirement: "must be >= 0")
        }
        guard tolerance.isFinite, tolerance >= 0 else {
            throw WassersteinError.invalidParameter(name: "tolerance", value: tolerance, requirement: "must be finite and >= 0")
        }
        let targets = clouds.map { $0.normalized() }
        // The bounding box of all clouds: its diameter scales the tolerance, and bounds every cost.
        var lo = [Double](repeating: .infinity, count: d), hi = [Double](repeating: -.infinity, count: d)
        for c in targets {
            for i in 0 ..< c.count {
                for l in 0 ..< d { let v = c.coordinates[i * d + l]; lo[l] = min(lo[l], v); hi[l] = max(hi[l], v) }
            }
        }
        var diameterSquared = 0.0
        for l in 0 ..< d { diameterSquared += (hi[l] - lo[l]) * (hi[l] - lo[l]) }
        guard diameterSquared.isFinite else {
            throw WassersteinError.invalidParameter(name: "squared coordinate range", value: diameterSquared,
                                                    requirement: "squared distances between the points overflow the Double range; rescale the coordinates")
        }
        let threshold = tolerance * diameterSquared.squareRoot()

        var x: [Double]
        if let initialSupport {
            guard initialSupport.count == n * d else {
                throw WassersteinError.malformedShape("initial support of \(initialSupport.count) values is not \(n) x \(d)")
            }
            x = initialSupport
            _ = try PointCloud(coordinates: x, dimension: d, name: "initial support")
        } else {
            x = Self.drawFromMixture(targets, lambda: lambda, count: n, seed: seed, spread: diameterSquared.squareRoot())
        }

        let uniform = [Double](repeating: 1 / Double(n), count: n)
        let workspaces = targets.map { _ in NetworkSimplexWorkspace() }
        var step = try update(x, uniform, targets, lambda, workspaces)
        var iterations = 0
        var displacement = Double.infinity
        while true {
            displacement = Self.largestMove(x, step.next, dimension: d)
            if displacement <= threshold { break }
            if iterations == maximumIterations { break }
            x = step.next
            iterations += 1
            step = try update(x, uniform, targets, lambda, workspaces)
        }
        let converged = displacement <= threshold && step.optimal
        let support = PointCloud(unchecked: x, dimension: d, weights: uniform, mass: uniform.reduce(0, +))
        return BarycenterResult(support: support, cost: step.cost, iterations: iterations, converged: converged,
                                lastDisplacement: displacement, weights: lambda)
    }

    /// The exact plans from `x` to every cloud: the cost `sum_k lambda_k W2^2(x, mu_k)` and the
    /// next support `sum_k lambda_k T_k(x)`.
    private func update(_ x: [Double], _ uniform: [Double], _ targets: [PointCloud], _ lambda: [Double],
                        _ workspaces: [NetworkSimplexWorkspace]) throws -> (cost: Double, next: [Double], optimal: Bool) {
        let n = uniform.count, d = targets[0].dimension
        let support = PointCloud(unchecked: x, dimension: d, weights: uniform, mass: SortedSolver.compensatedSum(uniform))
        let k = targets.count
        var results = [Result<TransportResult, any Error>?](repeating: nil, count: k)
        results.withUnsafeMutableBufferPointer { rp in
            let base = rp.baseAddress!
            // Each cloud's solve writes its own slot and uses its own workspace.
            Parallel.forEachChunk(count: k) { range in
                for c in range {
                    base[c] = Result {
                        let problem = TransportProblem(unchecked: support, targets[c])
                        if d == 1 { return try SortedSolver(planOutput: .full).solve(problem) }
                        return try workspaces[c].solve(problem)
                    }
                }
            }
        }
        var next = [Double](repeating: 0, count: n * d)
        var cost = 0.0, optimal = true
        for c in 0 ..< k {
            let result = try results[c]!.get()
            optimal = optimal && result.status != .iterationLimit
            guard let plan = result.plan else { throw WassersteinError.solverFailure("no plan for barycenter input \(c)") }
            cost += lambda[c] * result.cost
            let y = targets[c].coordinates
            // T_c(x_i) = (1 / a_i) sum_j P_ij y_j with a_i = 1 / N.
            let scale = lambda[c] * Double(n)
            for e in plan.entries {
                let w = scale * e.mass
                for l in 0 ..< d { next[e.source * d + l] += w * y[e.target * d + l] }
            }
        }
        return (cost, next, optimal)
    }

    static func largestMove(_ a: [Double], _ b: [Double], dimension d: Int) -> Double {
        var largest = 0.0
        for i in 0 ..< a.count / d {
            var s = 0.0
            for l in 0 ..< d { let t = a[i * d + l] - b[i * d + l]; s += t * t }
            largest = max(largest, s)
        }
        return largest.squareRoot()
    }

    /// `lambda` normalised to sum one (uniform for `nil`).
    static func normalizedWeights(_ weights: [Double]?, count: Int) throws -> [Double] {
        guard let weights else { return [Double](repeating: 1 / Double(count), count: count) }
        guard weights.count == count else {
            throw WassersteinError.weightCountMismatch(cloud: "barycenter weights", points: count, weights: weights.count)
        }
        for (i, w) in weights.enumerated() where !(w.isFinite && w >= 0) {
            throw WassersteinError.invalidWeight(cloud: "barycenter weights", index: i, value: w)
        }
        guard weights.contains(where: { $0 > 0 }) else { throw WassersteinError.zeroMass("barycenter weights") }
        return PointCloud.unitWeights(weights)
    }

    /// `count` points drawn from the mixture `sum_k lambda_k mu_k` (clouds at mass one), seeded,
    /// without replacement while there are points left, then with replacement; repeated points
    /// are then moved apart by `1e-6` of `spread`.
    ///
    /// Why distinct points: two equal support points are a fixed point of the iteration that
    /// the barycenter need not have. With ties the plans may send the pair to `(p, q)` in one
    /// cloud and to `(q', p')` in another, and both then move to the same average again; a cloud
    /// and its translate gave a support 0.4% above the true barycenter cost that way.
    static func drawFromMixture(_ clouds: [PointCloud], lambda: [Double], count: Int, seed: UInt64, spread: Double) -> [Double] {
        var rng = Xoshiro256StarStar(seed: seed)
        let d = clouds[0].dimension
        // Weighted sampling without replacement by exponential clocks: point (k, i) rings at
        // -log(u) / (lambda_k w_ki); the first `count` to ring are drawn.
        var clocks = [(time: Double, cloud: Int, point: Int)]()
        for (k, c) in clouds.enumerated() where lambda[k] > 0 {
            for i in 0 ..< c.count where c.weights[i] > 0 {
                let u = 1 - rng.nextUniform()  // in (0, 1]
                clocks.append((-log(u) / (lambda[k] * c.weights[i]), k, i))
            }
        }
        clocks.sort { $0.time != $1.time ? $0.time < $1.time : ($0.cloud, $0.point) < ($1.cloud, $1.point) }
        var out = [Double]()
        out.reserveCapacity(count * d)
        for c in clocks.prefix(count) { out.append(contentsOf: clouds[c.cloud].point(c.point)) }
        if count > clocks.count {
            // More points than the inputs hold: the rest with replacement, by the same weights.
            var acc = 0.0
            let sums = clocks.map { c -> Double in acc += lambda[c.cloud] * clouds[c.cloud].weights[c.point]; return acc }
            for _ in clocks.count ..< count {
                let target = rng.nextUniform() * acc
                var lo = 0, hi = sums.count - 1
                while lo < hi {
                    let mid = (lo + hi) / 2
                    if sums[mid] > target { hi = mid } else { lo = mid + 1 }
                }
                out.append(contentsOf: clouds[clocks[lo].cloud].point(clocks[lo].point))
            }
        }
        separateRepeats(&out, dimension: d, scale: 1e-6 * (spread > 0 ? spread : 1), rng: &rng)
        return out
    }

    /// Moves every point equal to an earlier one by a small Gaussian offset of size `scale`.
    static func separateRepeats(_ x: inout [Double], dimension d: Int, scale: Double, rng: inout Xoshiro256StarStar) {
        let n = x.count / d
        let order = (0 ..< n).sorted { i, j in
            for l in 0 ..< d where x[i * d + l] != x[j * d + l] { return x[i * d + l] < x[j * d + l] }
            return i < j
        }
        var previous = -1
        for i in order {
            if previous >= 0, (0 ..< d).allSatisfy({ x[i * d + $0] == x[previous * d + $0] }) {
                for l in 0 ..< d { x[i * d + l] += scale * rng.nextGaussian() }
            } else {
                previous = i
            }
        }
    }
}
