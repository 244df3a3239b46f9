#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Wasserstein

/// The exact Ornstein-Uhlenbeck flow and its exact JKO steps for
/// `F = (lambda/2) int |theta|^2 + (1/beta) int rho log rho` from a Gaussian law with independent
/// axes (Docs/Theory.md 5.4, oracles 1 and 2). `lambda = 0` is the heat equation.
///
/// The flow keeps Gaussians Gaussian and the axes independent, so a state is a mean and a
/// standard deviation per axis.
public struct OrnsteinUhlenbeckOracle: Sendable, Equatable {
    /// The stiffness `lambda >= 0`.
    public let lambda: Double
    /// The inverse temperature `beta > 0`.
    public let beta: Double

    /// - Throws: `GradientFlowsError.invalidParameter(name:value:requirement:)` for `lambda < 0`
    ///   (or non-finite) and `beta <= 0` (or non-finite).
    public init(lambda: Double, beta: Double) throws {
        guard lambda >= 0, lambda.isFinite else {
            throw GradientFlowsError.invalidParameter(name: "lambda", value: lambda, requirement: "lambda must be >= 0 and finite")
        }
        guard beta > 0, beta.isFinite else {
            throw GradientFlowsError.invalidParameter(name: "beta", value: beta, requirement: "beta must be > 0 and finite")
        }
        self.lambda = lambda
        self.beta = beta
    }

    /// The mean at time `t` of the exact flow: `exp(-lambda t) m0`.
    public func mean(at t: Double, initial m0: Double) -> Double { exp(-lambda * t) * m0 }

    /// The standard deviation at time `t` of the exact flow from `s0`:
    /// `S(t) = exp(-2 lambda t) s0^2 + (1 - exp(-2 lambda t)) / (lambda beta)`, or `s0^2 + 2t/beta`
    /// for `lambda = 0`.
    public func standardDeviation(at t: Double, initial s0: Double) -> Double {
        if lambda == 0 { return (s0 * s0 + 2 * t / beta).squareRoot() }
        let e = exp(-2 * lambda * t)
        // (1 - e) / lambda computed without cancellation for small lambda t.
        let oneMinusE = -expm1(-2 * lambda * t)
        return (e * s0 * s0 + oneMinusE / (lambda * beta)).squareRoot()
    }

    /// One exact JKO step of size `tau` from `N(m, s^2)` on one axis:
    /// `m' = m / (1 + lambda tau)`, `s' = (s + sqrt(s^2 + 4 (1 + lambda tau) tau / beta)) / (2 (1 + lambda tau))`.
    public func jkoStep(mean m: Double, standardDeviation s: Double, tau: Double) -> (mean: Double, standardDeviation: Double) {
        let a = 1 + lambda * tau
        return (m / a, (s + (s * s + 4 * a * tau / beta).squareRoot()) / (2 * a))
    }

    /// One step of the *entropic* JKO scheme with blur `gamma` on one axis (the grid scheme's
    /// continuum limit): the minimiser of
    /// `(lambda/2) int |theta|^2 + (1/betaEffective) int rho log rho + OT_gamma(rho, N(m, s^2)) / (2 tau)`,
    /// where `OT_gamma = min <P, C> + gamma int P log P` (entropy of the coupling against Lebesgue
    /// measure, as on a grid). Gaussians stay Gaussian; the spread solves
    /// `lambda a - 1/(betaEffective a) + (a / tau)(1 - s^2 / c(a)) = 0` with the optimal
    /// cross-covariance `c(a) = (sqrt(gamma^2 + 16 a^2 s^2) - gamma) / 4`, solved here by bisection.
    ///
    /// For small `gamma` the blur adds the diffusion `gamma / (4 tau)` (see GridJKO), so
    /// `betaEffective` with `1/betaEffective = 1/beta - gamma/(4 tau)` reproduces ``jkoStep(mean:standardDeviation:tau:)``
    /// up to `O(gamma^2)`.
    public static func entropicJKOStep(lambda: Double, betaEffective: Double, gamma: Double, tau: Double,
                                       mean m: Double, standardDeviation s: Double) -> (mean: Double, standardDeviation: Double) {
        func residual(_ a: Double) -> Double {
            let c = ((gamma * gamma + 16 * a * a * s * s).squareRoot() - gamma) / 4
            let entropyForce = betaEffective.isFinite ? 1 / (betaEffective * a) : 0
            return lambda * a - entropyForce + (a / tau) * (1 - s * s / c)
        }
        // residual is increasing in a; bracket the root.
        var lo = 1e-12 * max(s, 1e-300), hi = max(s, 1e-300)
        while residual(hi) < 0 { hi *= 2 }
        while residual(lo) > 0 && lo > 1e-300 { lo /= 2 }
        for _ in 0 ..< 200 {
            let mid = 0.5 * (lo + hi)
            if residual(mid) < 0 { lo = mid } else { hi = mid }
            if hi - lo <= 1e-15 * hi { break }
        }
        return (m / (1 + lambda * tau), 0.5 * (lo + hi))
    }

    /// The free energy of `N(m, diag(s^2))`: `sum_k (lambda/2)(m_k^2 + s_k^2) - (1/(2 beta)) log(2 pi e s_k^2)`.
    public func freeEnergy(mean: [Double], standardDeviation: [Double]) -> Double {
        var f = 0.0
        for k in 0 ..< min(mean.count, standardDeviation.count) {
            let s2 = standardDeviation[k] * standardDeviation[k]
            f += 0.5 * lambda * (mean[k] * mean[k] + s2) - 0.5 / beta * log(2 * Double.pi * M_E_value * s2)
        }
        return f
    }

    /// The stationary law `N(0, 1/(lambda beta))` per axis (`lambda > 0`); `nil` for the heat equation.
    public var stationaryStandardDeviation: Double? { lambda > 0 ? (1 / (lambda * beta)).squareRoot() : nil }
}

/// `e`, spelled out (Glibc's `M_E` is not imported uniformly across platforms).
let M_E_value = 2.718281828459045235360287471352662498

/// `W2` between two Gaussians with diagonal covariances (Bures formula, diagonal case):
/// `sqrt(|m1 - m2|^2 + sum_k (s1_k - s2_k)^2)`.
public func gaussianW2Diagonal(mean1: [Double], standardDeviation1: [Double],
                               mean2: [Double], standardDeviation2: [Double]) -> Double {
    var s = 0.0
    for k in 0 ..< mean1.count {
        let dm = mean1[k] - mean2[k], ds = standardDeviation1[k] - standardDeviation2[k]
        s += dm * dm + ds * ds
    }
    return s.squareRoot()
}
