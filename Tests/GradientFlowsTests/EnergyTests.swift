import Testing
import Wasserstein
@testable import GradientFlows

/// Central finite difference of `f` at `x` along coordinate `j`.
func finiteDifference(_ x: [Double], _ j: Int, step h: Double = 1e-5, _ f: ([Double]) -> Double) -> Double {
    var xp = x, xm = x
    xp[j] += h
    xm[j] -= h
    return (f(xp) - f(xm)) / (2 * h)
}

/// A smooth symmetric test kernel U(a, b) = exp(-|a - b|^2 / 2) + <a, b>/4.
let gaussianPlusLinearKernel: PairwiseInteraction.Kernel = { a, b, g in
    var q = 0.0, dot = 0.0
    for k in 0 ..< a.count { q += (a[k] - b[k]) * (a[k] - b[k]); dot += a[k] * b[k] }
    let e = exp(-0.5 * q)
    for k in 0 ..< a.count { g?[k] = -e * (a[k] - b[k]) + 0.25 * b[k] }
    return e + 0.25 * dot
}

@Suite("Energies")
struct EnergyTests {
    let points: [Double] = [0.3, -1.2, 1.1, 0.4, -0.7, 0.9, 2.0, -0.1, 0.05, 0.6]   // 5 points in 2-D
    let weights: [Double] = [0.1, 0.3, 0.2, 0.25, 0.15]

    func value(_ e: any Energy, _ x: [Double], _ w: [Double]) -> Double {
        e.value(points: x.span, weights: w.span)
    }

    func firstVariation(_ e: any Energy, _ x: [Double], _ w: [Double]) -> (psi: [Double], grad: [Double]) {
        var psi = [Double](repeating: .nan, count: w.count), grad = [Double](repeating: .nan, count: x.count)
        do {
            var potential: MutableSpan<Double>? = psi.mutableSpan, gradient: MutableSpan<Double>? = grad.mutableSpan
            e.firstVariation(points: x.span, weights: w.span, potential: &potential, gradient: &gradient)
        }
        return (psi, grad)
    }

    /// The defining identities of the first variation, checked by finite differences of G:
    /// dG/dx_i = w_i grad Psi(x_i) and dG/dw_i = Psi(x_i) (for the pairwise energy, U symmetric).
    /// Tolerance 1e-6: central differences with step 1e-5 on O(1) smooth functions err ~1e-10.
    func checkFirstVariation(_ e: any Energy, weightDerivativeIsPsi: Bool = true) {
        let (psi, grad) = firstVariation(e, points, weights)
        for j in 0 ..< points.count {
            let fd = finiteDifference(points, j) { value(e, $0, weights) }
            #expect(abs(fd - weights[j / 2] * grad[j]) < 1e-6)
        }
        if weightDerivativeIsPsi {
            for i in 0 ..< weights.count {
                let fd = finiteDifference(weights, i) { value(e, points, $0) }
                #expect(abs(fd - psi[i]) < 1e-6)
            }
        }
        // The fused entry point agrees with the separate ones.
        var fused = [Double](repeating: .nan, count: points.count)
        var fusedOutput = fused.mutableSpan
        let v = e.valueAndFirstVariationGradient(points: points.span, weights: weights.span, gradient: &fusedOutput)
        #expect(abs(v - value(e, points, weights)) < 1e-12)
        for j in 0 ..< points.count { #expect(abs(fused[j] - grad[j]) < 1e-12) }
    }

    @Test("quadratic potential: value (lambda/2) sum w |x|^2 and first variation")
    func quadratic() throws {
        let e = try QuadraticPotential(dimension: 2, lambda: 0.7)
        var expected = 0.0
        for i in 0 ..< 5 { expected += weights[i] * (points[2 * i] * points[2 * i] + points[2 * i + 1] * points[2 * i + 1]) }
        #expect(abs(value(e, points, weights) - 0.35 * expected) < 1e-14)
        checkFirstVariation(e)
    }

    @Test("potential energy from a closure: first variation is V")
    func potential() throws {
        let e = try PotentialEnergy(dimension: 2) { t, g in
            g?[0] = cos(t[0]) * t[1]
            g?[1] = sin(t[0]) + 2 * t[1]
            return sin(t[0]) * t[1] + t[1] * t[1]
        }
        checkFirstVariation(e)
    }

    @Test("pairwise interaction: G = (1/2) sum w_i w_j U_ij, Psi = sum_j w_j U_ij")
    func pairwise() throws {
        let e = try PairwiseInteraction(dimension: 2, kernel: gaussianPlusLinearKernel)
        // Direct double sum, independent of the implementation's split into Psi.
        var direct = 0.0
        for i in 0 ..< 5 { for j in 0 ..< 5 {
            let a = Array(points[2 * i ..< 2 * i + 2]), b = Array(points[2 * j ..< 2 * j + 2])
            let q = (a[0] - b[0]) * (a[0] - b[0]) + (a[1] - b[1]) * (a[1] - b[1])
            direct += 0.5 * weights[i] * weights[j] * (exp(-0.5 * q) + 0.25 * (a[0] * b[0] + a[1] * b[1]))
        } }
        #expect(abs(value(e, points, weights) - direct) < 1e-14)
        // dG/dw_i = Psi_i holds for the quadratic form (1/2) w^T U w with U symmetric.
        checkFirstVariation(e)
    }

    @Test("energy sum adds values and first variations")
    func sum() throws {
        let q = try QuadraticPotential(dimension: 2, lambda: 1.3)
        let u = try PairwiseInteraction(dimension: 2, kernel: gaussianPlusLinearKernel)
        let s = try EnergySum([q, u])
        #expect(abs(value(s, points, weights) - value(q, points, weights) - value(u, points, weights)) < 1e-14)
        let (ps, gs) = firstVariation(s, points, weights)
        let (pq, gq) = firstVariation(q, points, weights)
        let (pu, gu) = firstVariation(u, points, weights)
        for i in 0 ..< 5 { #expect(abs(ps[i] - pq[i] - pu[i]) < 1e-14) }
        for j in 0 ..< 10 { #expect(abs(gs[j] - gq[j] - gu[j]) < 1e-14) }
        checkFirstVariation(s)
    }

    /// The O(N) test energy used on grids equals the generic pairwise form of U = <theta, theta'>.
    @Test("mean interaction equals the pairwise energy with U = <theta, theta'>")
    func meanInteraction() throws {
        let fast = MeanInteraction(dimension: 2)
        let slow = try PairwiseInteraction(dimension: 2) { a, b, g in
            g?[0] = b[0]
            g?[1] = b[1]
            return a[0] * b[0] + a[1] * b[1]
        }
        #expect(abs(value(fast, points, weights) - value(slow, points, weights)) < 1e-14)
        let (pf, gf) = firstVariation(fast, points, weights)
        let (ps, gs) = firstVariation(slow, points, weights)
        for i in 0 ..< 5 { #expect(abs(pf[i] - ps[i]) < 1e-14) }
        for j in 0 ..< 10 { #expect(abs(gf[j] - gs[j]) < 1e-14) }
    }

    @Test("bad energy parameters throw typed errors")
    func badParameters() throws {
        #expect(throws: GradientFlowsError.self) { try QuadraticPotential(dimension: 0, lambda: 1) }
        #expect(throws: GradientFlowsError.self) { try QuadraticPotential(dimension: 1, lambda: .nan) }
        #expect(throws: GradientFlowsError.self) { try EnergySum([]) }
        #expect(throws: GradientFlowsError.dimensionMismatch(what: "dimension of an energy term", expected: 1, actual: 2)) {
            try EnergySum([QuadraticPotential(dimension: 1, lambda: 1), QuadraticPotential(dimension: 2, lambda: 1)])
        }
        #expect(throws: GradientFlowsError.self) { try FreeEnergy.ornsteinUhlenbeck(dimension: 1, lambda: 1, beta: 0) }
        #expect(throws: GradientFlowsError.self) { try FreeEnergy.ornsteinUhlenbeck(dimension: 1, lambda: 1, beta: -2) }
        #expect(throws: GradientFlowsError.self) { try FreeEnergy.ornsteinUhlenbeck(dimension: 1, lambda: 1, beta: .infinity) }
        #expect(throws: GradientFlowsError.self) { try OrnsteinUhlenbeckOracle(lambda: -1, beta: 1) }
    }
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
