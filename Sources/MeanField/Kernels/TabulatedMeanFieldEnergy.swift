import GradientFlows
import Wasserstein

/// The smooth mean-field energy `G(rho) = R(rho) + (lambda/2) int |theta|^2 d rho` of a
/// `MeanField.MeanFieldEnergy`, with `V(theta_i) + (lambda/2)|theta_i|^2` and `U(theta_i, theta_j)`
/// tabulated once on a fixed point set: the points of a grid.
///
/// The grid JKO scheme and the Gibbs fixed point evaluate `G` and its first variation
/// `Psi_lambda(theta_i; rho) = V_i + (lambda/2)|theta_i|^2 + sum_j U_ij rho_j` on the same `N`
/// grid points again and again, each time an `O(N^2)` sum of closed-form kernels (arc-cosines for
/// ReLU). With the `N x N` table the sum is a matrix-vector product, about 10 to 30 times cheaper.
/// The values are those of the kernels themselves (the table holds `PopulationRisk.interaction`
/// and `PopulationRisk.potential`), so the energy is the same function; only the order of the
/// additions differs (rounding, ~1e-15 relative).
///
/// Calls on any other point set (and calls that ask for the gradient) go to the wrapped
/// `MeanField.MeanFieldEnergy` unchanged, so the type is safe to use anywhere an `Energy` is
/// expected.
///
/// - Complexity: building `O(N^2)` kernel evaluations and `8 N^2` bytes (`N = 48^2`: 42 MB);
///   each tabulated evaluation `O(N^2)` multiply-adds, split over the cores.
public struct TabulatedMeanFieldEnergy: Energy, RawBufferEnergy {
    /// The energy whose values are tabulated.
    public let base: MeanFieldEnergy
    /// The tabulated points, row-major `N x D`.
    public let points: [Double]
    /// The number of points `N`.
    public let count: Int
    /// `V_i + (lambda/2)|theta_i|^2`.
    let potentialTable: [Double]
    /// `U_ij`, row-major `N x N` (symmetric).
    let kernelTable: [Double]

    /// The largest point set the table accepts (`8 N^2` bytes: 16384 points would take 2 GB).
    public static let maximumCount = 8192

    /// Tabulates `energy` on `points`.
    ///
    /// - Throws: ``MeanFieldError/invalidSetting(parameter:value:requirement:)`` naming the tabulated
    ///   points for an empty or ragged array, non-finite coordinates, or more than ``maximumCount`` points.
    public init(energy: MeanFieldEnergy, points: [Double]) throws {
        let D = energy.dimension
        try require(!points.isEmpty && points.count % D == 0, .tabulatedPoints, "\(points.count) values",
                    "need a non-empty N x \(D) array")
        try requireFinite(points, .tabulatedPoints)
        let n = points.count / D
        try require(n <= Self.maximumCount, .tabulatedPoints, "\(n) points",
                    "at most \(Self.maximumCount) (the table takes 8 N^2 bytes)")
        self.base = energy
        self.points = points
        self.count = n
        let rows = (0 ..< n).map { Array(points[$0 * D ..< ($0 + 1) * D]) }
        let risk = energy.risk, lambda = energy.weightDecay
        var potential = [Double](repeating: 0, count: n)
        for i in 0 ..< n {
            potential[i] = risk.potential(rows[i]) + 0.5 * lambda * rows[i].reduce(0) { $0 + $1 * $1 }
        }
        var table = [Double](repeating: 0, count: n * n)
        table.withUnsafeMutableBufferPointer { t in
            nonisolated(unsafe) let base = t.baseAddress!
            // Row i fills U_ij for every j (each chunk writes only its own rows).
            Parallel.forEachChunk(count: n, minimumChunk: 16) { range in
                for i in range {
                    for j in 0 ..< n { base[i * n + j] = risk.interaction(rows[i], rows[j]) }
                }
            }
        }
        self.potentialTable = potential
        self.kernelTable = table
    }

    public var dimension: Int { base.dimension }

    /// Whether `points` is the tabulated point set (same values, same order).
    func isTabulated(_ points: UnsafeBufferPointer<Double>) -> Bool {
        guard points.count == self.points.count else { return false }
        return self.points.withUnsafeBufferPointer { own in
            for k in 0 ..< own.count where own[k] != points[k] { return false }
            return true
        }
    }

    /// `(U w)_i` for every `i`.
    func interactionSums(_ weights: UnsafeBufferPointer<Double>) -> [Double] {
        let n = count
        var out = [Double](repeating: 0, count: n)
        kernelTable.withUnsafeBufferPointer { t in
            out.withUnsafeMutableBufferPointer { o in
                nonisolated(unsafe) let table = t.baseAddress!, result = o.baseAddress!, w = weights.baseAddress!
                Parallel.forEachChunk(count: n, minimumChunk: 64) { range in
                    for i in range {
                        let row = table + i * n
                        var s0 = 0.0, s1 = 0.0, s2 = 0.0, s3 = 0.0
                        var j = 0
                        while j + 4 <= n {
                            s0 += row[j] * w[j]; s1 += row[j + 1] * w[j + 1]
                            s2 += row[j + 2] * w[j + 2]; s3 += row[j + 3] * w[j + 3]
                            j += 4
                        }
                        while j < n { s0 += row[j] * w[j]; j += 1 }
                        result[i] = (s0 + s1) + (s2 + s3)
                    }
                }
            }
        }
        return out
    }

    package func value(points: UnsafeBufferPointer<Double>, weights: UnsafeBufferPointer<Double>) -> Double {
        guard isTabulated(points) else { return base.value(points: points, weights: weights) }
        let u = interactionSums(weights)
        var s = 0.0
        for i in 0 ..< count { s += weights[i] * (potentialTable[i] + 0.5 * u[i]) }
        return 0.5 * base.risk.teacherSecondMoment + s
    }

    package func firstVariation(points: UnsafeBufferPointer<Double>, weights: UnsafeBufferPointer<Double>,
                                potential: UnsafeMutableBufferPointer<Double>?,
                                gradient: UnsafeMutableBufferPointer<Double>?) {
        guard gradient == nil, isTabulated(points) else {
            base.firstVariation(points: points, weights: weights, potential: potential, gradient: gradient)
            return
        }
        guard let potential else { return }
        let u = interactionSums(weights)
        for i in 0 ..< count { potential[i] = potentialTable[i] + u[i] }
    }
}
