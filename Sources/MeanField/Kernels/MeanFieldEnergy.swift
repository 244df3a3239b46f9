import GradientFlows
import Wasserstein

/// The smooth part of the mean-field free energy,
/// `G(rho) = R(rho) + (lambda/2) int |theta|^2 d rho`, as a `GradientFlows.Energy` for the
/// JKO schemes.
///
/// Its first variation is `Psi_lambda(theta; rho) = Psi(theta; rho) + (lambda/2)|theta|^2`,
/// with gradient `grad Psi + lambda theta`. The entropy `(1/beta) int rho log rho` is not part
/// of it: wrap it in a `GradientFlows.FreeEnergy` with the inverse temperature.
///
/// Cost per call `O(M^2 d)` (closed-form kernels) or `O(M^2 n^2)` (quadrature), split over the
/// cores; the results do not depend on the number of cores.
public struct MeanFieldEnergy: Energy, RawBufferEnergy {
    /// The risk `R`.
    public let risk: PopulationRisk
    /// The weight decay `lambda >= 0`.
    public let weightDecay: Double

    /// - Throws: ``MeanFieldError`` (``MeanFieldParameter/weightDecay``) when `lambda` is negative or not finite.
    public init(risk: PopulationRisk, weightDecay lambda: Double = 0) throws {
        try require(lambda.isFinite && lambda >= 0, .weightDecay, "\(lambda)", "must be finite and >= 0")
        self.risk = risk
        self.weightDecay = lambda
    }

    public var dimension: Int { risk.parameterDimension }

    package func value(points: UnsafeBufferPointer<Double>, weights: UnsafeBufferPointer<Double>) -> Double {
        let m = weights.count, D = dimension
        precondition(points.count == m * D, "points must hold weights.count x dimension values")
        var psi = [Double](repeating: 0, count: m)
        var v = [Double](repeating: 0, count: m)
        psi.withUnsafeMutableBufferPointer { ps in
            v.withUnsafeMutableBufferPointer { vs in
                risk.evaluate(points: points.baseAddress!, weights: weights.baseAddress!, count: m,
                              psi: ps.baseAddress!, potential: vs.baseAddress!, gradient: nil)
            }
        }
        var r = risk.riskFrom(psi: psi, potential: v, weights: Array(weights))
        if weightDecay != 0 {
            var s = 0.0
            for i in 0 ..< m { s += weights[i] * squaredNorm(points.baseAddress! + i * D, D) }
            r += 0.5 * weightDecay * s
        }
        return r
    }

    /// One pass of the `O(M^2)` engine gives `Psi`, `V` and `grad Psi` together, so the value
    /// `R = (R# + sum_i w_i (V_i + Psi_i)) / 2` costs nothing extra (the default
    /// implementation would run the engine twice).
    func valueAndFirstVariationGradient(points: UnsafeBufferPointer<Double>, weights: UnsafeBufferPointer<Double>,
                                        gradient: UnsafeMutableBufferPointer<Double>) -> Double {
        let m = weights.count, D = dimension
        precondition(points.count == m * D, "points must hold weights.count x dimension values")
        precondition(gradient.count >= m * D)
        var psi = [Double](repeating: 0, count: m)
        var v = [Double](repeating: 0, count: m)
        psi.withUnsafeMutableBufferPointer { ps in
            v.withUnsafeMutableBufferPointer { vs in
                risk.evaluate(points: points.baseAddress!, weights: weights.baseAddress!, count: m,
                              psi: ps.baseAddress!, potential: vs.baseAddress!, gradient: gradient.baseAddress!)
            }
        }
        var r = risk.riskFrom(psi: psi, potential: v, weights: Array(weights))
        if weightDecay != 0 {
            let p = points.baseAddress!
            var s = 0.0
            for i in 0 ..< m {
                s += weights[i] * squaredNorm(p + i * D, D)
                for k in 0 ..< D { gradient[i * D + k] += weightDecay * p[i * D + k] }
            }
            r += 0.5 * weightDecay * s
        }
        return r
    }

    package func firstVariation(points: UnsafeBufferPointer<Double>, weights: UnsafeBufferPointer<Double>,
                                potential: UnsafeMutableBufferPointer<Double>?,
                                gradient: UnsafeMutableBufferPointer<Double>?) {
        let m = weights.count, D = dimension
        precondition(points.count == m * D, "points must hold weights.count x dimension values")
        precondition(potential == nil || potential!.count >= m)
        precondition(gradient == nil || gradient!.count >= m * D)
        if potential == nil && gradient == nil { return }
        risk.evaluate(points: points.baseAddress!, weights: weights.baseAddress!, count: m,
                      psi: potential?.baseAddress, potential: nil, gradient: gradient?.baseAddress)
        if weightDecay != 0 {
            let p = points.baseAddress!
            for i in 0 ..< m {
                if let potential { potential[i] += 0.5 * weightDecay * squaredNorm(p + i * D, D) }
                if let gradient {
                    for k in 0 ..< D { gradient[i * D + k] += weightDecay * p[i * D + k] }
                }
            }
        }
    }
}

extension MeanFieldEnergy {
    public func valueAndFirstVariationGradient(points: Span<Double>, weights: Span<Double>,
                                               gradient: inout MutableSpan<Double>) -> Double {
        gradient.withUnsafeMutableBufferPointer { g in
            points.withUnsafeBufferPointer { x in
                weights.withUnsafeBufferPointer { w in valueAndFirstVariationGradient(points: x, weights: w, gradient: g) }
            }
        }
    }
}
