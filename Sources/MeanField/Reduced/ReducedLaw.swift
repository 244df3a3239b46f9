#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Wasserstein

/// A law `rho_bar` of reduced coordinates as weighted points: `sum_i weights[i] delta_{z_i}`.
///
/// It stands for the rotation-invariant law of full parameters obtained by drawing `z` from it
/// and the orthogonal direction `u` uniformly on `S^(n-1)`. Points are row-major
/// `count x coordinateCount`, each row `[a, s_1 ... s_k, r]` (no `a` with a fixed second
/// layer), `r >= 0`. Weights are positive and sum to 1: a deterministic quantisation of a
/// smooth law (``ReducedInitialLaw/quantised(setting:nodes:)``) carries unequal weights, which
/// the flow keeps (each point moves, its mass does not).
public struct ReducedLaw: Sendable {
    /// Row-major `count x coordinateCount`.
    public var points: [Double]
    /// One weight per point, summing to 1.
    public var weights: [Double]
    /// Values per point: `(1 +) k + 1`.
    public let coordinateCount: Int

    /// - Throws: ``MeanFieldError`` naming `points` (empty, wrong length, not finite, `r < 0`)
    ///   or `weights` (wrong count, negative, not summing to 1 within `1e-9`).
    public init(points: [Double], weights: [Double]? = nil, coordinateCount: Int) throws {
        try require(coordinateCount >= 2, .points, "\(coordinateCount) coordinates", "a reduced point has at least (s, r)")
        let m = points.count / coordinateCount
        if points.isEmpty || points.count % coordinateCount != 0 {
            throw MeanFieldError.lengthMismatch(parameter: .points, expected: max(1, m) * coordinateCount, actual: points.count)
        }
        try requireFinite(points, .points)
        for i in 0 ..< m where points[i * coordinateCount + coordinateCount - 1] < 0 {
            throw MeanFieldError.invalidSetting(parameter: .points, value: "r = \(points[i * coordinateCount + coordinateCount - 1]) (point \(i))",
                                                requirement: "the radial coordinate r = |P_perp w| must be >= 0")
        }
        let w = weights ?? [Double](repeating: 1 / Double(m), count: m)
        if w.count != m { throw MeanFieldError.lengthMismatch(parameter: .weights, expected: m, actual: w.count) }
        try requireFinite(w, .weights)
        try require(w.allSatisfy { $0 >= 0 }, .weights, "a negative entry", "must be >= 0")
        let total = w.reduce(0, +)
        try require(abs(total - 1) <= 1e-9, .weights, "sum \(total)", "must sum to 1")
        self.points = points
        self.weights = w
        self.coordinateCount = coordinateCount
    }

    /// The number of points.
    public var count: Int { weights.count }

    /// The reduced coordinates of full particles (row-major `M x D`, equal weights): `s_l =
    /// <w, e_l>` for the basis vectors `e_l` of the teacher's span, `r = |w - sum_l s_l e_l|`.
    /// For a rotation-invariant cloud this is the exact reduced law of the cloud's
    /// symmetrisation (the average over the rotations fixing the span), the law the reduced
    /// flow follows.
    ///
    /// - Throws: ``MeanFieldError`` naming `particles` or `basis` (wrong lengths).
    public init(projecting particles: [Double], model: NetworkModel, basis: [[Double]]) throws {
        let D = model.parameterDimension, d = model.inputDimension, o = model.weightOffset
        if particles.isEmpty || particles.count % D != 0 {
            throw MeanFieldError.lengthMismatch(parameter: .particles, expected: max(1, particles.count / D) * D, actual: particles.count)
        }
        try require(!basis.isEmpty && basis.count < d, .basis, "\(basis.count) vectors", "needs 1 ... d - 1 vectors")
        for e in basis where e.count != d { throw MeanFieldError.lengthMismatch(parameter: .basis, expected: d, actual: e.count) }
        let m = particles.count / D, k = basis.count
        let Dz = o + k + 1
        var z = [Double](repeating: 0, count: m * Dz)
        for j in 0 ..< m {
            let w = particles[(j * D + o) ..< (j * D + D)]
            var norm2 = 0.0
            for v in w { norm2 += v * v }
            var overlap2 = 0.0
            if o == 1 { z[j * Dz] = particles[j * D] }
            for (l, e) in basis.enumerated() {
                var p = 0.0
                for t in 0 ..< d { p += w[w.startIndex + t] * e[t] }
                z[j * Dz + o + l] = p
                overlap2 += p * p
            }
            // |P_perp w|^2 = |w|^2 - sum_l s_l^2 (clamped at 0 against rounding).
            z[j * Dz + Dz - 1] = max(0, norm2 - overlap2).squareRoot()
        }
        try self.init(points: z, coordinateCount: Dz)
    }

    /// The coordinate `column` of every point (e.g. `coordinateCount - 1` for `r`).
    public func column(_ column: Int) -> [Double] {
        precondition(column >= 0 && column < coordinateCount)
        return (0 ..< count).map { points[$0 * coordinateCount + column] }
    }

    /// `sum_i weights[i] f(z_i)`.
    public func expectation(_ f: (ArraySlice<Double>) -> Double) -> Double {
        var s = 0.0
        for i in 0 ..< count { s += weights[i] * f(points[(i * coordinateCount) ..< ((i + 1) * coordinateCount)]) }
        return s
    }
}

/// The symmetric initial law of the lecture, `a ~ N(a.mean, a.std^2)` (trained second layer)
/// independent of `w ~ N(0, (gamma^2 / d) I_d)`, in reduced coordinates:
///
///     s_l ~ N(0, gamma^2 / d)  (l = 1 ... k),   r ~ (gamma / sqrt(d)) chi_n,   n = d - k
///
/// all independent. As `d -> infinity`: `s = 0` and `r = gamma` (`|w| -> gamma`). `gamma` is
/// the typical norm `|w|`; a full run with `initialization.w.std = sigma` has `gamma = sigma
/// sqrt(d)`, and `w.mean` must be 0 (a non-zero mean breaks the symmetry).
public struct ReducedInitialLaw: Sendable {
    public var aMean: Double
    public var aStd: Double
    /// `gamma >= 0`: `w ~ N(0, (gamma^2/d) I_d)`.
    public var gamma: Double

    /// - Throws: ``MeanFieldError`` naming `initialization.a.mean`, `initialization.a.std` or
    ///   `initialization.w.std` (for `gamma`).
    public init(aMean: Double = 1, aStd: Double = 0, gamma: Double) throws {
        try require(aMean.isFinite, .secondLayerMean, "\(aMean)", "must be finite")
        try require(aStd.isFinite && aStd >= 0, .secondLayerSpread, "\(aStd)", "must be finite and >= 0")
        try require(gamma.isFinite && gamma >= 0, .firstLayerSpread, "gamma = \(gamma)", "must be finite and >= 0")
        self.aMean = aMean
        self.aStd = aStd
        self.gamma = gamma
    }

    /// The full-dimensional initial law this stands for (`w.std = gamma / sqrt(d)`, mean 0).
    public func fullLaw(inputDimension d: Int) -> InitialLaw {
        InitialLaw(aMean: aMean, aStd: aStd, wMean: 0, wStd: gamma / Double(d).squareRoot())
    }

    /// How many nodes per coordinate ``quantised(setting:nodes:)`` uses.
    public struct Nodes: Sendable, Equatable {
        /// Nodes for `a` (1 when `a.std = 0` or the second layer is fixed).
        public var a: Int
        /// Nodes per overlap coordinate `s_l` (1 at `d = infinity`).
        public var s: Int
        /// Nodes for `r` (1 at `d = infinity`).
        public var r: Int
        public init(a: Int = 8, s: Int = 16, r: Int = 8) {
            self.a = a
            self.s = s
            self.r = r
        }
    }

    /// A deterministic quantisation: the tensor product of Gauss rules for each coordinate's
    /// law (Gauss-Hermite for `a` and each `s_l`; for `r`, generalised Gauss-Laguerre on
    /// `r^2 d / (2 gamma^2) ~ Gamma(n/2)`), so that the reduced reference has no sampling
    /// error: `E[g(z)]` is exact for polynomials of degree `2 nodes - 1` in each `a`, `s_l`,
    /// `r^2`, and converges geometrically in the nodes for analytic `g`. Coordinates whose law is
    /// a point mass (`a.std = 0`, `gamma = 0`, or `s`, `r` at `d = infinity`) get one node.
    ///
    /// - Throws: ``MeanFieldError`` naming `nodes` outside `1 ... 256`.
    public func quantised(setting: ReducedSetting, nodes: Nodes = Nodes()) throws -> ReducedLaw {
        for v in [nodes.a, nodes.s, nodes.r] { try require((1 ... 256).contains(v), .quantisationNodes, "\(v)", "must be in 1 ... 256") }
        let k = setting.spanDimension
        var axes = [GaussRule]()
        if setting.secondLayer == .trained {
            axes.append(aStd > 0 ? scaled(GaussRule.hermite(nodes.a), mean: aMean, std: aStd) : GaussRule(nodes: [aMean], weights: [1]))
        }
        switch setting.inputDimension {
        case .infinity:
            for _ in 0 ..< k { axes.append(GaussRule(nodes: [0], weights: [1])) }
            axes.append(GaussRule(nodes: [gamma], weights: [1]))
        case .finite(let d):
            let sigma = gamma / Double(d).squareRoot()
            let n = d - k
            for _ in 0 ..< k {
                axes.append(sigma > 0 ? scaled(GaussRule.hermite(nodes.s), mean: 0, std: sigma) : GaussRule(nodes: [0], weights: [1]))
            }
            if sigma > 0 {
                let laguerre = GaussRule.generalizedLaguerre(nodes.r, alpha: Double(n) / 2 - 1)
                axes.append(GaussRule(nodes: laguerre.nodes.map { sigma * (2 * $0).squareRoot() }, weights: laguerre.weights))
            } else {
                axes.append(GaussRule(nodes: [0], weights: [1]))
            }
        }
        // Tensor product, the last axis fastest.
        var points = [Double](), weights = [Double]()
        let sizes = axes.map { $0.nodes.count }
        let total = sizes.reduce(1, *)
        points.reserveCapacity(total * axes.count)
        weights.reserveCapacity(total)
        for flat in 0 ..< total {
            var rest = flat, w = 1.0
            var row = [Double](repeating: 0, count: axes.count)
            for c in stride(from: axes.count - 1, through: 0, by: -1) {
                let idx = rest % sizes[c]
                rest /= sizes[c]
                row[c] = axes[c].nodes[idx]
                w *= axes[c].weights[idx]
            }
            points += row
            weights.append(w)
        }
        let sum = weights.reduce(0, +)
        return try ReducedLaw(points: points, weights: weights.map { $0 / sum }, coordinateCount: setting.coordinateCount)
    }

    /// `count` equally weighted points drawn from the law (xoshiro256** from `seed`): normals
    /// for `a` and `s_l`, `r = (gamma/sqrt(d)) sqrt(chi^2_n)` with the chi-square drawn as
    /// `2 Gamma(n/2)` (Marsaglia-Tsang), so a draw costs `O(1)` whatever `d`.
    public func sampled(setting: ReducedSetting, count: Int, seed: UInt64) throws -> ReducedLaw {
        try require(count >= 1, .particleCount, "\(count)", "must be >= 1")
        var g = Xoshiro256StarStar(seed: seed)
        let k = setting.spanDimension, Dz = setting.coordinateCount, o = setting.overlapOffset
        var points = [Double](repeating: 0, count: count * Dz)
        for j in 0 ..< count {
            if o == 1 { points[j * Dz] = aMean + aStd * g.nextGaussian() }
            switch setting.inputDimension {
            case .infinity:
                points[j * Dz + Dz - 1] = gamma
            case .finite(let d):
                let sigma = gamma / Double(d).squareRoot()
                for l in 0 ..< k { points[j * Dz + o + l] = sigma * g.nextGaussian() }
                points[j * Dz + Dz - 1] = sigma * g.nextChiSquare(degrees: Double(d - k)).squareRoot()
            }
        }
        return try ReducedLaw(points: points, coordinateCount: Dz)
    }

    private func scaled(_ rule: GaussRule, mean: Double, std: Double) -> GaussRule {
        GaussRule(nodes: rule.nodes.map { mean + std * $0 }, weights: rule.weights)
    }
}

extension Xoshiro256StarStar {
    /// A `Gamma(shape, 1)` draw by Marsaglia and Tsang's squeeze method (shape < 1 through
    /// `Gamma(shape + 1) U^(1/shape)`).
    mutating func nextGamma(shape: Double) -> Double {
        precondition(shape > 0)
        if shape < 1 {
            let g = nextGamma(shape: shape + 1)
            var u = nextUniform()
            while u <= 0 { u = nextUniform() }
            return g * pow(u, 1 / shape)
        }
        let dd = shape - 1.0 / 3, c = 1 / (9 * dd).squareRoot()
        while true {
            var x = 0.0, v = 0.0
            repeat {
                x = nextGaussian()
                v = 1 + c * x
            } while v <= 0
            v = v * v * v
            let u = nextUniform()
            if u < 1 - 0.0331 * x * x * x * x { return dd * v }
            if u > 0, log(u) < 0.5 * x * x + dd * (1 - v + log(v)) { return dd * v }
        }
    }

    /// A chi-square draw with `degrees > 0` degrees of freedom (`2 Gamma(degrees/2)`).
    mutating func nextChiSquare(degrees: Double) -> Double { 2 * nextGamma(shape: degrees / 2) }
}
