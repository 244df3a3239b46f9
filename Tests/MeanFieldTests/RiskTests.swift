import Foundation
import GradientFlows
import Testing
@testable import MeanField
import Wasserstein

private func particles(_ m: Int, _ D: Int, seed: UInt64, scale: Double = 0.7) -> [Double] {
    randomVector(m * D, scale: scale, seed: seed)
}

@Suite("Population risk R_M, first variation and the Energy conformance")
struct RiskTests {
    static let settings: [(Activation, InputDistribution, SecondLayer, Bool)] = [
        (.relu, .gaussian, .trained, false), (.erf, .gaussian, .trained, false), (.relu, .sphere, .fixed, false),
        (.tanh, .gaussian, .trained, false), (.sigmoid, .sphere, .trained, false), (.relu, .gaussian, .fixed, true),
        (.erf, .gaussian, .fixed, true),
    ]

    private func makeRisk(_ s: Activation, _ inputs: InputDistribution, _ layer: SecondLayer, linearTeacher: Bool, d: Int = 4) throws -> PopulationRisk {
        let model = try NetworkModel(activation: s, inputDimension: d, secondLayer: layer, inputs: inputs)
        let teacher: Teacher = linearTeacher
            ? .linear(coefficients: [0.8, -0.5, 0.3, 0.1], noise: 0.2)
            : .neurons(directions: [[1, 0.5, 0, -0.5], [0, -0.7, 0.6, 0.2]], coefficients: [1, -0.6], noise: 0.3)
        return try PopulationRisk(model: model, teacher: teacher)
    }

    @Test("Exact R_M agrees with the empirical risk on a large test sample", arguments: settings)
    func riskVersusEmpirical(_ s: Activation, _ inputs: InputDistribution, _ layer: SecondLayer, _ linearTeacher: Bool) throws {
        let risk = try makeRisk(s, inputs, layer, linearTeacher: linearTeacher)
        let D = risk.parameterDimension, m = 5
        let theta = particles(m, D, seed: 9)
        let exact = try risk.risk(particles: theta)
        // Empirical (1/2N) sum (y - f(x))^2 with fresh noise; tolerance 5 standard errors of
        // the sample mean (plus the quadrature error, < 1e-6 at these norms).
        var g = Xoshiro256StarStar(seed: 77)
        let n = 60_000
        var sum = 0.0, sum2 = 0.0
        var x = [Double](repeating: 0, count: 4)
        for _ in 0 ..< n {
            var draw = x.mutableSpan
            inputs.sample(into: &draw, using: &g)
            let y = risk.teacher.mean(at: x, activation: s) + risk.teacher.noise * g.nextGaussian()
            let f = risk.model.output(particles: theta, at: x)
            let l = 0.5 * (y - f) * (y - f)
            sum += l; sum2 += l * l
        }
        let mean = sum / Double(n)
        let se = ((sum2 / Double(n) - mean * mean) / Double(n)).squareRoot()
        #expect(abs(exact - mean) <= 5 * se + 1e-6, "\(s) \(inputs) \(layer): R_M = \(exact), empirical \(mean) +- \(se)")
    }

    @Test("grad Psi(theta_j; empirical) equals finite differences of M * R_M", arguments: settings)
    func gradientVersusFiniteDifferences(_ s: Activation, _ inputs: InputDistribution, _ layer: SecondLayer, _ linearTeacher: Bool) throws {
        let risk = try makeRisk(s, inputs, layer, linearTeacher: linearTeacher)
        let D = risk.parameterDimension, m = 4
        let theta = particles(m, D, seed: 21)
        let (_, grad) = try risk.firstVariation(points: theta)
        // Central differences, h = 1e-5: error ~ h^2 * third derivatives + 1e-16 * M R_M / h,
        // below 1e-8 here; the tolerance 1e-7 leaves room for relu's 1e-8 angle rounding. A
        // quadrature kernel is symmetric only up to its error (its frame follows the first
        // argument), so there the tolerance adds 10x the a-posteriori quadrature error estimate.
        let quadratureSlack = 10 * (try risk.kernelErrorEstimate(particles: theta))
        let h = 1e-5
        for c in 0 ..< m * D {
            var p = theta, q = theta
            p[c] += h; q[c] -= h
            let fd = Double(m) * (try risk.risk(particles: p) - risk.risk(particles: q)) / (2 * h)
            #expect(abs(fd - grad[c]) <= 1e-7 * max(1, abs(fd)) + quadratureSlack, "\(s) \(inputs) \(layer) coordinate \(c): \(grad[c]) vs \(fd)")
        }
    }

    @Test("Linear network: R_M = (R# - 2<b*, m> + |m|^2) / 2 exactly, for any M")
    func linearNetworkRisk() throws {
        let b = [0.8, -0.5, 0.3, 0.1]
        let model = try NetworkModel(activation: .linear, inputDimension: 4, secondLayer: .fixed)
        let risk = try PopulationRisk(model: model, teacher: .linear(coefficients: b, noise: 0.5))
        let theta = particles(7, 4, seed: 4)
        var mean = [Double](repeating: 0, count: 4)
        for j in 0 ..< 7 { for k in 0 ..< 4 { mean[k] += theta[j * 4 + k] / 7 } }
        let bm = zip(b, mean).reduce(0) { $0 + $1.0 * $1.1 }
        let mm = mean.reduce(0) { $0 + $1 * $1 }
        let expected = 0.5 * (b.reduce(0) { $0 + $1 * $1 } + 0.25 - 2 * bm + mm)
        #expect(abs(try risk.risk(particles: theta) - expected) <= 1e-14)
    }

    @Test("MeanFieldEnergy: value, Psi_lambda = dG/dw_i and grad = (1/w_i) dG/dtheta_i for weighted measures")
    func energyConformance() throws {
        let risk = try makeRisk(.erf, .gaussian, .trained, linearTeacher: false)
        let lambda = 0.3
        let energy = try MeanFieldEnergy(risk: risk, weightDecay: lambda)
        let D = energy.dimension, m = 5
        let theta = particles(m, D, seed: 5)
        let weights = [0.1, 0.3, 0.2, 0.15, 0.25]
        func value(_ p: [Double], _ w: [Double]) -> Double {
            energy.value(points: p.span, weights: w.span)
        }
        // Value = R(rho) + (lambda/2) sum w |theta|^2.
        var penalty = 0.0
        for i in 0 ..< m { for k in 0 ..< D { penalty += weights[i] * theta[i * D + k] * theta[i * D + k] } }
        #expect(abs(value(theta, weights) - (risk.risk(points: theta, weights: weights) + 0.5 * lambda * penalty)) <= 1e-14)
        var potential = [Double](repeating: 0, count: m)
        var gradient = [Double](repeating: 0, count: m * D)
        do {
            var pot: MutableSpan<Double>? = potential.mutableSpan, gr: MutableSpan<Double>? = gradient.mutableSpan
            energy.firstVariation(points: theta.span, weights: weights.span, potential: &pot, gradient: &gr)
        }
        // G is quadratic in the weights, so dG/dw_i = Psi_lambda(theta_i) (central differences are
        // exact up to rounding, 1e-9); dG/dtheta_i = w_i grad Psi_lambda(theta_i) (1e-7, as above).
        let h = 1e-5
        for i in 0 ..< m {
            var wp = weights, wq = weights
            wp[i] += h; wq[i] -= h
            let fd = (value(theta, wp) - value(theta, wq)) / (2 * h)
            #expect(abs(fd - potential[i]) <= 1e-9, "potential \(i): \(potential[i]) vs \(fd)")
            for k in 0 ..< D {
                var p = theta, q = theta
                p[i * D + k] += h; q[i * D + k] -= h
                let fdt = (value(p, weights) - value(q, weights)) / (2 * h)
                #expect(abs(fdt - weights[i] * gradient[i * D + k]) <= 1e-7, "gradient \(i),\(k)")
            }
        }
        // The fused value-and-gradient pass (what the particle JKO calls) agrees with the two
        // separate calls: the same sums in the same order, so to rounding of the weight decay.
        var fused = [Double](repeating: .nan, count: m * D)
        var fusedOutput = fused.mutableSpan
        let fusedValue = energy.valueAndFirstVariationGradient(points: theta.span, weights: weights.span, gradient: &fusedOutput)
        #expect(abs(fusedValue - value(theta, weights)) <= 1e-14)
        for j in 0 ..< m * D { #expect(abs(fused[j] - gradient[j]) <= 1e-14) }
        // A FreeEnergy wraps it (the JKO engineer's entry point).
        let free = try FreeEnergy(smooth: energy, inverseTemperature: 10)
        #expect(free.dimension == D)
    }

    @Test("Parallel and serial evaluation are bitwise identical (M = 300)", arguments: [Activation.relu, .erf])
    func parallelIsBitwiseSerial(_ s: Activation) throws {
        let risk = try makeRisk(s, .gaussian, .trained, linearTeacher: false)
        let m = 300, D = risk.parameterDimension
        let theta = particles(m, D, seed: 8)
        let w = [Double](repeating: 1 / Double(m), count: m)
        func run(_ parallel: Bool) -> ([Double], [Double]) {
            var psi = [Double](repeating: 0, count: m), grad = [Double](repeating: 0, count: m * D)
            theta.withUnsafeBufferPointer { tp in
                w.withUnsafeBufferPointer { wp in
                    psi.withUnsafeMutableBufferPointer { ps in
                        grad.withUnsafeMutableBufferPointer { gs in
                            risk.evaluate(points: tp.baseAddress!, weights: wp.baseAddress!, count: m, psi: ps.baseAddress!,
                                          potential: nil, gradient: gs.baseAddress!, parallel: parallel)
                        }
                    }
                }
            }
            return (psi, grad)
        }
        let a = run(true), b = run(false)
        #expect(a.0 == b.0)
        #expect(a.1 == b.1)
    }

    @Test("Quadrature error estimate is zero for closed forms and small but positive for tanh")
    func errorEstimate() throws {
        let closed = try makeRisk(.relu, .gaussian, .trained, linearTeacher: false)
        let quad = try makeRisk(.tanh, .gaussian, .trained, linearTeacher: false)
        let theta = particles(6, 5, seed: 1, scale: 0.4)
        #expect(try closed.kernelErrorEstimate(particles: theta) == 0)
        #expect(closed.kernelDescription == "closed form (relu, gaussian inputs)")
        #expect(quad.kernelDescription == "product Gauss-Hermite quadrature, 48 x 48 nodes (tanh, gaussian inputs)")
        let e = try quad.kernelErrorEstimate(particles: theta)
        // |w| ~ 0.9 and teacher norms ~ 1.3 here: the table gives 5e-8 at |w| = 1 and 2e-4 at
        // |w| = 2 with 48 nodes.
        #expect(e > 0 && e < 1e-5, "estimate \(e)")
    }

    @Test("Malformed inputs throw errors naming the parameter")
    func errors() throws {
        let risk = try makeRisk(.relu, .gaussian, .trained, linearTeacher: false)
        #expect(throws: MeanFieldError.self) { try risk.risk(particles: [1, 2, 3]) }
        #expect(throws: MeanFieldError.self) { try risk.risk(particles: [Double](repeating: .nan, count: 5)) }
        let model = try NetworkModel(activation: .relu, inputDimension: 4)
        #expect(throws: MeanFieldError.lengthMismatch(parameter: .teacherDirections, expected: 4, actual: 3)) {
            try PopulationRisk(model: model, teacher: .singleNeuron([1, 0, 0]))
        }
        #expect(throws: MeanFieldError.lengthMismatch(parameter: .teacherCoefficients, expected: 2, actual: 1)) {
            try PopulationRisk(model: model, teacher: .neurons(directions: [[1, 0, 0, 0], [0, 1, 0, 0]], coefficients: [1], noise: 0))
        }
        do {
            _ = try PopulationRisk(model: model, teacher: .linear(coefficients: [1, 0, 0, 0], noise: -1))
            Issue.record("negative noise accepted")
        } catch let e as MeanFieldError {
            #expect(e.parameter == .teacherNoise)
            #expect(e.description.contains("teacher noise"))
        }
        #expect(throws: MeanFieldError.self) { try NetworkModel(activation: .relu, inputDimension: 0) }
    }
}

@Suite("Particle marginals")
struct MarginalTests {
    @Test("Norms, overlaps and second-layer weights of a hand-made system")
    func handMade() throws {
        let model = try NetworkModel(activation: .relu, inputDimension: 2, secondLayer: .trained)
        let p: [Double] = [2, 3, 4, -1, 0, 1]   // (a, w) = (2, (3, 4)), (-1, (0, 1))
        let m = try model.marginals(particles: p, direction: [0, 2])
        #expect(m.weightNorms == [5, 1])
        #expect(m.overlaps == [4, 1])
        #expect(m.secondLayer == [2, -1])
        #expect(throws: MeanFieldError.self) { try model.marginals(particles: p, direction: [0, 0]) }
        #expect(throws: MeanFieldError.self) { try model.marginals(particles: [1, 2]) }
    }
}
