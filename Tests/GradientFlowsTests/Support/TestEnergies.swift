import Wasserstein
@testable import GradientFlows

/// The linear network of Docs/Theory.md 5.4, oracle 3 as a test energy (GradientFlows tests do not import
/// MeanField): V(theta) = -<b*, theta>, U(theta, theta') = <theta, theta'>, plus (lambda/2)|theta|^2.
/// Then R(rho) = const - <b*, m> + |m|^2 / 2 with m the mean of rho.
///
/// `fastInteraction` uses ``MeanInteraction`` (O(N), Psi = <theta, m>) instead of the generic
/// O(N^2) ``PairwiseInteraction``: the same energy (checked in EnergyTests), cheap enough for grids.
func linearNetworkEnergy(teacher b: [Double], lambda: Double, beta: Double?, fastInteraction: Bool = false) throws -> FreeEnergy {
    let d = b.count
    let tilt = try PotentialEnergy(dimension: d) { theta, gradient in
        var v = 0.0
        for k in 0 ..< d { v -= b[k] * theta[k] }
        for k in 0 ..< d { gradient?[k] = -b[k] }
        return v
    }
    let interaction: any Energy = fastInteraction ? MeanInteraction(dimension: d) : try PairwiseInteraction(dimension: d) { theta, other, gradient in
        var v = 0.0
        for k in 0 ..< d { v += theta[k] * other[k] }
        for k in 0 ..< d { gradient?[k] = other[k] }
        return v
    }
    return try FreeEnergy(smooth: EnergySum([tilt, interaction, QuadraticPotential(dimension: d, lambda: lambda)]),
                          inverseTemperature: beta)
}

/// (1/2) int int <theta, theta'> d rho d rho = |m|^2 / 2 with m = sum_i w_i theta_i; Psi(theta) = <theta, m>.
struct MeanInteraction: Energy {
    let dimension: Int

    func mean(_ points: Span<Double>, _ weights: Span<Double>) -> [Double] {
        var m = [Double](repeating: 0, count: dimension)
        for i in 0 ..< weights.count { for k in 0 ..< dimension { m[k] += weights[i] * points[i * dimension + k] } }
        return m
    }

    func value(points: Span<Double>, weights: Span<Double>) -> Double {
        0.5 * mean(points, weights).reduce(0) { $0 + $1 * $1 }
    }

    func firstVariation(points: Span<Double>, weights: Span<Double>,
                        potential: inout MutableSpan<Double>?, gradient: inout MutableSpan<Double>?) {
        let m = mean(points, weights)
        for i in 0 ..< weights.count {
            var p = 0.0
            for k in 0 ..< dimension {
                p += points[i * dimension + k] * m[k]
                gradient?[i * dimension + k] = m[k]
            }
            potential?[i] = p
        }
    }
}

/// A convex non-linear energy: tilt + repulsive Gaussian interaction U = exp(-|theta - theta'|^2 / 2)
/// (a positive definite kernel, so F is convex) + (lambda/2)|theta|^2.
func gaussianInteractionEnergy(dimension d: Int, tilt: Double, lambda: Double, beta: Double?) throws -> FreeEnergy {
    let potential = try PotentialEnergy(dimension: d) { theta, gradient in
        for k in 0 ..< d { gradient?[k] = k == 0 ? -tilt : 0 }
        return -tilt * theta[0]
    }
    let interaction = try PairwiseInteraction(dimension: d) { a, b, g in
        var q = 0.0
        for k in 0 ..< d { q += (a[k] - b[k]) * (a[k] - b[k]) }
        let e = exp(-0.5 * q)
        for k in 0 ..< d { g?[k] = -e * (a[k] - b[k]) }
        return e
    }
    return try FreeEnergy(smooth: EnergySum([potential, interaction, QuadraticPotential(dimension: d, lambda: lambda)]),
                          inverseTemperature: beta)
}

/// Asserts helper: the free energy of consecutive reports never increases (beyond round-off).
func energyIsNonIncreasing(_ reports: [JKOStepReport], slack: Double = 1e-12) -> Bool {
    for k in 1 ..< reports.count where reports[k].freeEnergy > reports[k - 1].freeEnergy + slack * max(1, abs(reports[k - 1].freeEnergy)) {
        return false
    }
    return true
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
