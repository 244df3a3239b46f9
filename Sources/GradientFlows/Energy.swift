import Wasserstein

/// The smooth part `G` of an energy on probability measures over R^D, evaluated on discrete
/// measures `rho = sum_i w_i delta_{theta_i}` (particles with `w_i = 1/M`, or grid cells with
/// `w_i` the cell mass).
///
/// A JKO scheme needs only the value `G(rho)` and the first variation
/// `Psi(theta; rho) = dG/drho (theta)` with its gradient at the support points. The entropy
/// `(1/beta) int rho log rho`, which has no meaning on particles without an estimator, is not
/// part of this protocol: ``FreeEnergy`` adds it, and each scheme treats it in its own way
/// (exactly on a grid, through an estimator on particles).
public protocol Energy: Sendable {
    /// The dimension `D` of the parameter space.
    var dimension: Int { get }

    /// `G(rho)` for `rho = sum_i weights[i] delta_{points[i]}`, `points` row-major `count x D`.
    func value(points: Span<Double>, weights: Span<Double>) -> Double

    /// Writes the first variation `Psi(theta_i; rho)` into `potential` (one value per point) and
    /// its gradient `grad_theta Psi(theta_i; rho)` into `gradient` (row-major `count x D`).
    /// Either output may be `nil` when the caller does not need it.
    func firstVariation(points: Span<Double>, weights: Span<Double>,
                        potential: inout MutableSpan<Double>?,
                        gradient: inout MutableSpan<Double>?)

    /// `G(rho)` together with the gradient `grad_theta Psi(theta_i; rho)` at every support point
    /// (row-major `count x D`), in one pass.
    ///
    /// The particle JKO step asks for both at every inner iteration. The default implementation
    /// calls ``Energy/value(points:weights:)`` and then ``Energy/firstVariation(points:weights:potential:gradient:)``;
    /// energies whose value and gradient share work (pairwise sums, network forward passes)
    /// override it to compute the shared part once.
    func valueAndFirstVariationGradient(points: Span<Double>, weights: Span<Double>,
                                        gradient: inout MutableSpan<Double>) -> Double
}

extension Energy {
    public func valueAndFirstVariationGradient(points: Span<Double>, weights: Span<Double>,
                                               gradient: inout MutableSpan<Double>) -> Double {
        var none: MutableSpan<Double>? = nil
        var output: MutableSpan<Double>? = consume gradient
        firstVariation(points: points, weights: weights, potential: &none, gradient: &output)
        gradient = output.take()!
        return value(points: points, weights: weights)
    }
}

/// `F(rho) = G(rho) + (1/beta) int rho log rho`, with `beta = nil` meaning no entropy term.
public struct FreeEnergy: Sendable {
    /// The smooth part (potential, interaction, weight decay).
    public var smooth: any Energy
    /// The inverse temperature `beta > 0`, or `nil` for `beta = infinity`.
    public var inverseTemperature: Double?

    /// - Throws: `GradientFlowsError.invalidParameter(name:value:requirement:)` when `beta <= 0`
    ///   or is not finite.
    public init(smooth: any Energy, inverseTemperature: Double? = nil) throws {
        if let beta = inverseTemperature, !(beta > 0 && beta.isFinite) {
            throw GradientFlowsError.invalidParameter(name: "beta", value: beta, requirement: "beta must be > 0 and finite (omit it for no entropy)")
        }
        self.smooth = smooth
        self.inverseTemperature = inverseTemperature
    }

    /// The dimension `D`.
    public var dimension: Int { smooth.dimension }
}

/// An estimator of the negative entropy `int rho log rho` of a measure known only through
/// `M` equally weighted particles (a kernel density estimate, the blob method, ...).
///
/// Free energies `F = G + (1/beta) int rho log rho` of particle systems (noisy SGD records,
/// particle JKO steps) need such an estimate; grid schemes compute the term exactly instead.
public protocol EntropyEstimator: Sendable {
    /// The estimate of `int rho log rho` for the particles `points` (row-major `count x dimension`).
    func negativeEntropy(points: Span<Double>, count: Int, dimension: Int) -> Double

    /// The estimate and its gradient with respect to each particle position (row-major
    /// `count x dimension`), the gradient of the estimate as a function of all positions.
    func negativeEntropyAndGradient(points: Span<Double>, count: Int, dimension: Int,
                                    gradient: inout MutableSpan<Double>) -> Double
}

/// An energy whose inner loops index raw buffers: it gives its value and first variation on the
/// storage, and the ``Energy`` requirements on spans follow from them here, once for every such
/// energy (the span counts bound every index the loops use).
package protocol RawBufferEnergy: Energy {
    func value(points: UnsafeBufferPointer<Double>, weights: UnsafeBufferPointer<Double>) -> Double
    func firstVariation(points: UnsafeBufferPointer<Double>, weights: UnsafeBufferPointer<Double>,
                        potential: UnsafeMutableBufferPointer<Double>?, gradient: UnsafeMutableBufferPointer<Double>?)
}

extension RawBufferEnergy {
    public func value(points: Span<Double>, weights: Span<Double>) -> Double {
        points.withUnsafeBufferPointer { x in weights.withUnsafeBufferPointer { w in value(points: x, weights: w) } }
    }

    public func firstVariation(points: Span<Double>, weights: Span<Double>,
                               potential: inout MutableSpan<Double>?, gradient: inout MutableSpan<Double>?) {
        withUnsafeEnergyBuffers(points: points, weights: weights, potential: &potential, gradient: &gradient) { x, w, p, g in
            firstVariation(points: x, weights: w, potential: p, gradient: g)
        }
    }
}

/// Runs `body` on the storage of an energy's inputs and optional outputs (`nil` where the
/// caller passed none): the energies' inner loops index raw buffers, within the ranges the
/// spans' counts give.
@inlinable
package func withUnsafeEnergyBuffers<R>(points: Span<Double>, weights: Span<Double>,
                                        potential: inout MutableSpan<Double>?, gradient: inout MutableSpan<Double>?,
                                        _ body: (UnsafeBufferPointer<Double>, UnsafeBufferPointer<Double>,
                                                 UnsafeMutableBufferPointer<Double>?, UnsafeMutableBufferPointer<Double>?) -> R) -> R {
    withUnsafeOutput(&potential) { p in
        withUnsafeOutput(&gradient) { g in
            points.withUnsafeBufferPointer { x in weights.withUnsafeBufferPointer { w in body(x, w, p, g) } }
        }
    }
}

/// Runs `body` on the storage of an optional output span (`nil` when the caller passed none).
@inlinable
package func withUnsafeOutput<R>(_ span: inout MutableSpan<Double>?, _ body: (UnsafeMutableBufferPointer<Double>?) -> R) -> R {
    guard var storage = span.take() else { return body(nil) }
    let result = storage.withUnsafeMutableBufferPointer { body($0) }
    span = consume storage
    return result
}
