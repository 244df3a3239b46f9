import Wasserstein

/// A potential energy `G(rho) = int V d rho` for a user-supplied potential `V : R^D -> R`.
///
/// The first variation is `V` itself and does not depend on `rho`, so a JKO step of this
/// energy (plus entropy) is a Fokker-Planck step with drift `-grad V`.
///
/// ```swift
/// // V(theta) = -<b, theta>
/// let tilt = try PotentialEnergy(dimension: 2) { theta, gradient in
///     gradient?[0] = -b[0]
///     gradient?[1] = -b[1]
///     return -(b[0] * theta[0] + b[1] * theta[1])
/// }
/// ```
public struct PotentialEnergy: Energy {
    /// `V(theta)`, writing `grad V(theta)` into `gradient` when it is not `nil`. `theta` and
    /// `gradient` have `dimension` entries.
    public typealias Potential = @Sendable (_ theta: Span<Double>, _ gradient: inout MutableSpan<Double>?) -> Double

    public let dimension: Int
    /// The potential `V` and its gradient.
    public let potential: Potential

    /// - Throws: `GradientFlowsError.invalidParameter(name:value:requirement:)` if `dimension < 1`.
    public init(dimension: Int, potential: @escaping Potential) throws {
        guard dimension >= 1 else {
            throw GradientFlowsError.invalidParameter(name: "dimension", value: Double(dimension), requirement: "dimension must be >= 1")
        }
        self.dimension = dimension
        self.potential = potential
    }

    /// `sum_i w_i V(theta_i)`; `O(count)` calls of `V`.
    public func value(points: Span<Double>, weights: Span<Double>) -> Double {
        points.withUnsafeBufferPointer { x in
            var total = 0.0
            for i in 0 ..< weights.count { total += weights[i] * potential(at: i, of: x, gradient: nil) }
            return total
        }
    }

    public func firstVariation(points: Span<Double>, weights: Span<Double>,
                               potential out: inout MutableSpan<Double>?,
                               gradient: inout MutableSpan<Double>?) {
        withUnsafeEnergyBuffers(points: points, weights: weights, potential: &out, gradient: &gradient) { x, w, o, g in
            for i in 0 ..< w.count {
                let v = potential(at: i, of: x, gradient: g)
                o?[i] = v
            }
        }
    }

    public func valueAndFirstVariationGradient(points: Span<Double>, weights: Span<Double>,
                                               gradient: inout MutableSpan<Double>) -> Double {
        gradient.withUnsafeMutableBufferPointer { g in
            points.withUnsafeBufferPointer { x in
                var total = 0.0
                for i in 0 ..< weights.count { total += weights[i] * potential(at: i, of: x, gradient: g) }
                return total
            }
        }
    }

    /// `V(theta_i)` for the `i`-th row of `points`, its gradient into the `i`-th row of `gradient`.
    private func potential(at i: Int, of points: UnsafeBufferPointer<Double>, gradient: UnsafeMutableBufferPointer<Double>?) -> Double {
        let d = dimension
        let row = UnsafeBufferPointer(rebasing: points[i * d ..< (i + 1) * d])
        let theta = Span(_unsafeElements: row)
        guard let gradient else {
            var none: MutableSpan<Double>? = nil
            return potential(theta, &none)
        }
        let gradientRow = UnsafeMutableBufferPointer(rebasing: gradient[i * d ..< (i + 1) * d])
        var output: MutableSpan<Double>? = MutableSpan(_unsafeElements: gradientRow)
        return potential(theta, &output)
    }
}

/// The quadratic potential energy `(lambda/2) int |theta|^2 d rho` (weight decay, the
/// Ornstein-Uhlenbeck confinement). Its first variation is `(lambda/2)|theta|^2`, with gradient
/// `lambda * theta`.
public struct QuadraticPotential: Energy, RawBufferEnergy {
    public let dimension: Int
    /// The stiffness `lambda` (finite; `lambda < 0` is allowed but gives an unbounded energy).
    public let lambda: Double

    /// - Throws: `GradientFlowsError.invalidParameter(name:value:requirement:)` if `dimension < 1`
    ///   or `lambda` is not finite.
    public init(dimension: Int, lambda: Double) throws {
        guard dimension >= 1 else {
            throw GradientFlowsError.invalidParameter(name: "dimension", value: Double(dimension), requirement: "dimension must be >= 1")
        }
        guard lambda.isFinite else {
            throw GradientFlowsError.invalidParameter(name: "lambda", value: lambda, requirement: "lambda must be finite")
        }
        self.dimension = dimension
        self.lambda = lambda
    }


    package func value(points: UnsafeBufferPointer<Double>, weights: UnsafeBufferPointer<Double>) -> Double {
        let d = dimension
        var total = 0.0
        for i in 0 ..< weights.count {
            var s = 0.0
            for k in 0 ..< d { s += points[i * d + k] * points[i * d + k] }
            total += weights[i] * s
        }
        return 0.5 * lambda * total
    }

    package func firstVariation(points: UnsafeBufferPointer<Double>, weights: UnsafeBufferPointer<Double>,
                                potential: UnsafeMutableBufferPointer<Double>?,
                                gradient: UnsafeMutableBufferPointer<Double>?) {
        let d = dimension
        if let potential {
            for i in 0 ..< weights.count {
                var s = 0.0
                for k in 0 ..< d { s += points[i * d + k] * points[i * d + k] }
                potential[i] = 0.5 * lambda * s
            }
        }
        if let gradient {
            for j in 0 ..< weights.count * d { gradient[j] = lambda * points[j] }
        }
    }
}

/// A pairwise interaction energy `(1/2) int int U(theta, theta') d rho(theta) d rho(theta')` for a
/// symmetric kernel `U` supplied by the caller.
///
/// First variation `Psi(theta; rho) = int U(theta, theta') d rho(theta')`, gradient
/// `int grad_1 U(theta, theta') d rho(theta')`. Evaluation on `n` points costs `n^2` kernel calls,
/// split over the cores.
public struct PairwiseInteraction: Energy, RawBufferEnergy {
    /// `U(theta, theta')`, writing the gradient in the *first* argument into `gradient` when it is
    /// not `nil`. Must be symmetric: `U(a, b) = U(b, a)`.
    ///
    /// The kernel runs `n^2` times per evaluation: a cheap one is faster with one range check and
    /// `[unchecked:]` subscripts in its loops, and the gradient taken once
    /// (`if var g = gradient.take() { ...; gradient = consume g }`) rather than `gradient?[k]` per
    /// entry (Docs/Benchmarks.md 4.2: 28% more instructions for the plain form on a `d = 20` kernel).
    public typealias Kernel = @Sendable (_ theta: Span<Double>, _ other: Span<Double>,
                                         _ gradient: inout MutableSpan<Double>?) -> Double

    public let dimension: Int
    /// The symmetric kernel `U`.
    public let kernel: Kernel

    /// - Throws: `GradientFlowsError.invalidParameter(name:value:requirement:)` if `dimension < 1`.
    public init(dimension: Int, kernel: @escaping Kernel) throws {
        guard dimension >= 1 else {
            throw GradientFlowsError.invalidParameter(name: "dimension", value: Double(dimension), requirement: "dimension must be >= 1")
        }
        self.dimension = dimension
        self.kernel = kernel
    }

    package func value(points: UnsafeBufferPointer<Double>, weights: UnsafeBufferPointer<Double>) -> Double {
        let n = weights.count
        var psi = [Double](repeating: 0, count: n)
        psi.withUnsafeMutableBufferPointer { out in
            firstVariation(points: points, weights: weights, potential: out, gradient: nil)
        }
        var total = 0.0
        for i in 0 ..< n { total += weights[i] * psi[i] }
        return 0.5 * total
    }

    package func firstVariation(points: UnsafeBufferPointer<Double>, weights: UnsafeBufferPointer<Double>,
                                potential: UnsafeMutableBufferPointer<Double>?,
                                gradient: UnsafeMutableBufferPointer<Double>?) {
        let n = weights.count, d = dimension
        let kernel = self.kernel
        Parallel.forEachChunk(count: n, minimumChunk: max(1, 4096 / max(1, n))) { range in
            var scratch = [Double](repeating: 0, count: d)
            scratch.withUnsafeMutableBufferPointer { g in
                for i in range {
                    let theta = Span(_unsafeElements: UnsafeBufferPointer(rebasing: points[i * d ..< (i + 1) * d]))
                    var psi = 0.0
                    if let gradient {
                        for k in 0 ..< d { gradient[i * d + k] = 0 }
                    }
                    for j in 0 ..< n where weights[j] != 0 {
                        let other = Span(_unsafeElements: UnsafeBufferPointer(rebasing: points[j * d ..< (j + 1) * d]))
                        let w = weights[j]
                        if let gradient {
                            var output: MutableSpan<Double>? = MutableSpan(_unsafeElements: g)
                            psi += w * kernel(theta, other, &output)
                            for k in 0 ..< d { gradient[i * d + k] += w * g[k] }
                        } else {
                            var none: MutableSpan<Double>? = nil
                            psi += w * kernel(theta, other, &none)
                        }
                    }
                    potential?[i] = psi
                }
            }
        }
    }

    public func valueAndFirstVariationGradient(points: Span<Double>, weights: Span<Double>,
                                               gradient: inout MutableSpan<Double>) -> Double {
        let n = weights.count
        var psi = [Double](repeating: 0, count: n)
        psi.withUnsafeMutableBufferPointer { out in
            gradient.withUnsafeMutableBufferPointer { g in
                points.withUnsafeBufferPointer { x in weights.withUnsafeBufferPointer { w in
                    firstVariation(points: x, weights: w, potential: out, gradient: g)
                } }
            }
        }
        var total = 0.0
        for i in 0 ..< n { total += weights[i] * psi[i] }
        return 0.5 * total
    }
}

/// The sum of several energies on the same space, `G = G_1 + ... + G_k`; first variations add.
///
/// Use it to build `R + (lambda/2) int |theta|^2`, or a potential plus an interaction.
public struct EnergySum: Energy {
    /// The terms, all of the same dimension.
    public let terms: [any Energy]
    public let dimension: Int

    /// - Throws: `GradientFlowsError.invalidParameter(name:value:requirement:)` for an empty list,
    ///   `GradientFlowsError.dimensionMismatch(what:expected:actual:)` for terms of different dimensions.
    public init(_ terms: [any Energy]) throws {
        guard let first = terms.first else {
            throw GradientFlowsError.invalidParameter(name: "terms", value: 0, requirement: "an energy sum needs at least one term")
        }
        for t in terms where t.dimension != first.dimension {
            throw GradientFlowsError.dimensionMismatch(what: "dimension of an energy term", expected: first.dimension, actual: t.dimension)
        }
        self.terms = terms
        self.dimension = first.dimension
    }

    public func value(points: Span<Double>, weights: Span<Double>) -> Double {
        var total = 0.0
        for t in terms { total += t.value(points: points, weights: weights) }
        return total
    }

    public func firstVariation(points: Span<Double>, weights: Span<Double>,
                               potential: inout MutableSpan<Double>?, gradient: inout MutableSpan<Double>?) {
        withUnsafeOutput(&potential) { potential in
            withUnsafeOutput(&gradient) { gradient in
                let n = weights.count, d = dimension
                // Each term writes into scratch arrays, added to the outputs.
                var p = [Double](repeating: 0, count: potential == nil ? 0 : n)
                var g = [Double](repeating: 0, count: gradient == nil ? 0 : n * d)
                if let potential { for i in 0 ..< n { potential[i] = 0 } }
                if let gradient { for i in 0 ..< n * d { gradient[i] = 0 } }
                for t in terms {
                    p.withUnsafeMutableBufferPointer { pp in
                        g.withUnsafeMutableBufferPointer { gp in
                            var termPotential: MutableSpan<Double>? = nil, termGradient: MutableSpan<Double>? = nil
                            if potential != nil { termPotential = MutableSpan(_unsafeElements: pp) }
                            if gradient != nil { termGradient = MutableSpan(_unsafeElements: gp) }
                            t.firstVariation(points: points, weights: weights, potential: &termPotential, gradient: &termGradient)
                        }
                    }
                    if let potential { for i in 0 ..< n { potential[i] += p[i] } }
                    if let gradient { for i in 0 ..< n * d { gradient[i] += g[i] } }
                }
            }
        }
    }

    public func valueAndFirstVariationGradient(points: Span<Double>, weights: Span<Double>,
                                               gradient: inout MutableSpan<Double>) -> Double {
        gradient.withUnsafeMutableBufferPointer { gradient in
            let count = gradient.count
            var g = [Double](repeating: 0, count: count)
            for i in 0 ..< count { gradient[i] = 0 }
            var total = 0.0
            for t in terms {
                var termGradient = g.mutableSpan
                total += t.valueAndFirstVariationGradient(points: points, weights: weights, gradient: &termGradient)
                for i in 0 ..< count { gradient[i] += g[i] }
            }
            return total
        }
    }
}

extension FreeEnergy {
    /// The Ornstein-Uhlenbeck free energy `F = (lambda/2) int |theta|^2 + (1/beta) int rho log rho`
    /// (Docs/Theory.md 5.4, oracle 1); `lambda = 0` gives the heat equation.
    ///
    /// - Throws: `GradientFlowsError.invalidParameter(name:value:requirement:)` for `dimension < 1`,
    ///   a non-finite `lambda`, or `beta <= 0`.
    public static func ornsteinUhlenbeck(dimension: Int, lambda: Double, beta: Double) throws -> FreeEnergy {
        try FreeEnergy(smooth: QuadraticPotential(dimension: dimension, lambda: lambda), inverseTemperature: beta)
    }
}
