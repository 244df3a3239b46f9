import Foundation
@testable import MeanField
import Wasserstein

/// Monte Carlo mean and standard error of a scalar.
struct Estimate {
    var mean: Double
    var standardError: Double
}

/// Monte Carlo estimates of `E[s(<w,x>) r(<w',x>)]` and of each coordinate of the gradient
/// `E[s'(<w,x>) r(<w',x>) x]`, from `n` inputs of the given law.
func monteCarloKernel(_ s: Activation, _ r: Activation, _ w: [Double], _ w2: [Double],
                      inputs: InputDistribution, samples n: Int, seed: UInt64) -> (value: Estimate, gradient: [Estimate]) {
    let d = w.count
    var g = Xoshiro256StarStar(seed: seed)
    var x = [Double](repeating: 0, count: d)
    var sum = 0.0, sum2 = 0.0
    var gs = [Double](repeating: 0, count: d), gs2 = [Double](repeating: 0, count: d)
    for _ in 0 ..< n {
        var draw = x.mutableSpan
        inputs.sample(into: &draw, using: &g)
        var u1 = 0.0, u2 = 0.0
        for k in 0 ..< d { u1 += w[k] * x[k]; u2 += w2[k] * x[k] }
        let rv = r.value(u2)
        let v = s.value(u1) * rv
        sum += v; sum2 += v * v
        let sd = s.derivative(u1) * rv
        for k in 0 ..< d { let t = sd * x[k]; gs[k] += t; gs2[k] += t * t }
    }
    func est(_ a: Double, _ b: Double) -> Estimate {
        let mean = a / Double(n)
        return Estimate(mean: mean, standardError: (max(0, b / Double(n) - mean * mean) / Double(n)).squareRoot())
    }
    return (est(sum, sum2), (0 ..< d).map { est(gs[$0], gs2[$0]) })
}

/// A deterministic pseudo-random vector with entries ~ N(0, scale^2).
func randomVector(_ d: Int, scale: Double, seed: UInt64) -> [Double] {
    var g = Xoshiro256StarStar(seed: seed)
    return (0 ..< d).map { _ in scale * g.nextGaussian() }
}

/// The kernel of `PopulationRisk` for the pair `(w, w')` with a fixed second layer, through
/// the public API: `U` and its gradient.
func kernelThroughRisk(_ risk: PopulationRisk, _ w: [Double], _ w2: [Double]) -> (Double, [Double]) {
    let r = risk.interactionAndGradient(w, w2)
    return (r.value, r.gradient)
}

/// Central finite-difference gradient of `f` at `x` with step `h`.
func finiteDifferenceGradient(_ x: [Double], h: Double, _ f: ([Double]) -> Double) -> [Double] {
    (0 ..< x.count).map { k in
        var p = x, q = x
        p[k] += h; q[k] -= h
        return (f(p) - f(q)) / (2 * h)
    }
}
