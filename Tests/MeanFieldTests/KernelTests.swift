import Foundation
import Testing
@testable import MeanField
import Wasserstein

/// Fixed-second-layer risk objects give direct access to `K(w, w') = U(w, w')`.
private func risk(_ s: Activation, d: Int, inputs: InputDistribution = .gaussian, teacher: Teacher? = nil,
                  nodes: Int? = nil, quadrature: Bool = false) throws -> PopulationRisk {
    let model = try NetworkModel(activation: s, inputDimension: d, secondLayer: .fixed, inputs: inputs)
    let t = teacher ?? .singleNeuron([Double](repeating: 0.5, count: d))
    return try PopulationRisk(model: model, teacher: t, options: KernelOptions(quadratureNodes: nodes, alwaysUseQuadrature: quadrature))
}

private let pairs: [([Double], [Double])] = [
    ([0.8, -0.3, 0.5, 0.1], [0.2, 0.9, -0.4, 0.6]),
    ([1.5, 0.2, -0.7, 0.4], [1.2, 0.5, -0.3, 0.2]),     // wide angle spread, larger norms
    ([0.3, 0.1, 0.0, -0.2], [-0.9, -0.2, 0.4, 0.5]),    // obtuse angle
]

@Suite("Kernels V, U and their gradients")
struct KernelTests {
    @Test("Closed forms (relu, erf, linear; Gaussian and sphere) agree with Monte Carlo",
          arguments: [(Activation.relu, InputDistribution.gaussian), (.erf, .gaussian), (.linear, .gaussian),
                      (.relu, .sphere), (.linear, .sphere)])
    func closedFormsVersusMonteCarlo(_ s: Activation, _ inputs: InputDistribution) throws {
        let r = try risk(s, d: 4, inputs: inputs)
        #expect(r.isClosedForm)
        for (i, (w, w2)) in pairs.enumerated() {
            let (k, g) = kernelThroughRisk(r, w, w2)
            let mc = monteCarloKernel(s, s, w, w2, inputs: inputs, samples: 60_000, seed: UInt64(100 + i))
            // 5 Monte Carlo standard errors (plus rounding): fails by chance with p < 1e-6.
            #expect(abs(k - mc.value.mean) <= 5 * mc.value.standardError + 1e-12, "\(s) \(inputs) pair \(i): \(k) vs \(mc.value.mean)")
            for c in 0 ..< 4 {
                #expect(abs(g[c] - mc.gradient[c].mean) <= 5 * mc.gradient[c].standardError + 1e-12,
                        "\(s) \(inputs) pair \(i) gradient \(c): \(g[c]) vs \(mc.gradient[c].mean)")
            }
        }
    }

    @Test("Linear-teacher cross kernels (Stein) agree with Monte Carlo", arguments: [Activation.relu, .erf, .tanh])
    func linearTeacherVersusMonteCarlo(_ s: Activation) throws {
        let b = [0.7, -0.4, 0.2, 0.5]
        let r = try risk(s, d: 4, teacher: .linear(coefficients: b, noise: 0.3))
        for (i, (w, _)) in pairs.enumerated() {
            // V(w) = -E[<b,x> s(<w,x>)], gradient -E[<b,x> s'(<w,x>) x].
            let v = r.potential(w)
            let gv = r.potentialGradient(w)
            let mc = monteCarloKernel(s, .linear, w, b, inputs: .gaussian, samples: 60_000, seed: UInt64(200 + i))
            #expect(abs(-v - mc.value.mean) <= 5 * mc.value.standardError + 1e-12)
            for c in 0 ..< 4 { #expect(abs(-gv[c] - mc.gradient[c].mean) <= 5 * mc.gradient[c].standardError + 1e-12) }
        }
        // R# = |b|^2 + s^2 for Gaussian inputs.
        #expect(abs(r.teacherSecondMoment - (b.reduce(0) { $0 + $1 * $1 } + 0.09)) < 1e-14)
    }

    @Test("Quadrature kernels (tanh, sigmoid, erf on the sphere, custom) agree with Monte Carlo",
          arguments: [(Activation.tanh, InputDistribution.gaussian), (.sigmoid, .gaussian), (.erf, .sphere),
                      (.tanh, .sphere),
                      (.custom(CustomActivation(name: "softplus", value: { log1p(exp($0)) }, derivative: { 1 / (1 + exp(-$0)) })), .gaussian)])
    func quadratureVersusMonteCarlo(_ s: Activation, _ inputs: InputDistribution) throws {
        let r = try risk(s, d: 4, inputs: inputs)
        #expect(!r.isClosedForm)
        for (i, (w, w2)) in pairs.enumerated() {
            let (k, g) = kernelThroughRisk(r, w, w2)
            let mc = monteCarloKernel(s, s, w, w2, inputs: inputs, samples: 60_000, seed: UInt64(300 + i))
            #expect(abs(k - mc.value.mean) <= 5 * mc.value.standardError + 1e-9, "\(s) \(inputs) pair \(i): \(k) vs \(mc.value.mean)")
            for c in 0 ..< 4 {
                #expect(abs(g[c] - mc.gradient[c].mean) <= 5 * mc.gradient[c].standardError + 1e-9,
                        "\(s) \(inputs) pair \(i) gradient \(c): \(g[c]) vs \(mc.gradient[c].mean)")
            }
        }
    }

    @Test("Quadrature reproduces the erf and linear closed forms; sphere quadrature reproduces relu/d")
    func quadratureVersusClosedForms() throws {
        // erf is entire but steep for |w| ~ 1.7 (pair 1): 128 Gauss-Hermite nodes per axis give
        // < 1e-9 there (48 nodes: ~1e-5, see the error table); linear is a degree-2 polynomial,
        // integrated exactly. relu has a kink, so the Gauss-Jacobi rule on the sphere converges
        // only algebraically: 48 nodes give ~1e-4 relative (measured), the tolerance is 2e-3 of
        // the kernel scale |w||w'|/d.
        for (s, tol) in [(Activation.erf, 1e-8), (.linear, 1e-13)] {
            let exact = try risk(s, d: 4)
            let quad = try risk(s, d: 4, nodes: 128, quadrature: true)
            for (w, w2) in pairs {
                let (k0, g0) = kernelThroughRisk(exact, w, w2)
                let (k1, g1) = kernelThroughRisk(quad, w, w2)
                #expect(abs(k0 - k1) <= tol, "\(s): \(k0) vs \(k1)")
                for c in 0 ..< 4 { #expect(abs(g0[c] - g1[c]) <= tol * 10, "\(s) gradient \(c): \(g0[c]) vs \(g1[c])") }
            }
        }
        let exact = try risk(.relu, d: 5, inputs: .sphere)
        let quad = try risk(.relu, d: 5, inputs: .sphere, nodes: 48, quadrature: true)
        for (w, w2) in pairs {
            let w = w + [0.3], w2 = w2 + [-0.1]
            let scale = (w.reduce(0) { $0 + $1 * $1 } * w2.reduce(0) { $0 + $1 * $1 }).squareRoot() / 5
            let (k0, _) = kernelThroughRisk(exact, w, w2)
            let (k1, _) = kernelThroughRisk(quad, w, w2)
            #expect(abs(k0 - k1) <= 2e-3 * scale, "relu sphere: \(k0) vs \(k1)")
        }
    }

    /// The error table in `PopulationRisk`'s documentation: (activation, inputs, |w| = |w'|,
    /// nodes, bound on the error of K and of its gradient, measured against 160 nodes).
    static let errorTable: [(Activation, InputDistribution, Double, Int, Double)] = [
        (.tanh, .gaussian, 0.5, 24, 3e-9), (.tanh, .gaussian, 1, 48, 2e-7), (.tanh, .gaussian, 2, 48, 1e-3),
        (.sigmoid, .gaussian, 1, 24, 5e-10), (.sigmoid, .gaussian, 2, 48, 3e-8),
        (.tanh, .sphere, 3, 24, 3e-10), (.erf, .sphere, 3, 24, 1e-13), (.sigmoid, .sphere, 3, 24, 1e-13),
    ]

    @Test("Quadrature errors stay within the documented table", arguments: errorTable)
    func quadratureConvergence(_ s: Activation, _ inputs: InputDistribution, _ norm: Double, _ nodes: Int, _ bound: Double) throws {
        let coarse = try risk(s, d: 6, inputs: inputs, nodes: nodes)
        // 160 nodes are converged far below these bounds (checked against 200 nodes).
        let fine = try risk(s, d: 6, inputs: inputs, nodes: 160)
        for seed in 0 ..< 3 {
            var w = randomVector(6, scale: 1, seed: UInt64(seed))
            var w2 = randomVector(6, scale: 1, seed: UInt64(seed + 50))
            let n1 = w.reduce(0) { $0 + $1 * $1 }.squareRoot(), n2 = w2.reduce(0) { $0 + $1 * $1 }.squareRoot()
            w = w.map { $0 * norm / n1 }
            w2 = w2.map { $0 * norm / n2 }
            let (k0, g0) = kernelThroughRisk(coarse, w, w2)
            let (k1, g1) = kernelThroughRisk(fine, w, w2)
            #expect(abs(k0 - k1) <= bound, "\(s) \(inputs) |w| = \(norm), \(nodes) nodes: \(abs(k0 - k1))")
            for c in 0 ..< 6 { #expect(abs(g0[c] - g1[c]) <= bound, "\(s) \(inputs) gradient: \(abs(g0[c] - g1[c]))") }
        }
    }

    @Test("Kernel gradients equal finite differences of the kernel, including near-parallel pairs",
          arguments: [Activation.relu, .erf, .linear, .tanh, .sigmoid])
    func gradientsVersusFiniteDifferences(_ s: Activation) throws {
        // Central differences with h = 1e-5: truncation ~h^2 |K'''| ~ 1e-10 and rounding
        // ~1e-16/h ~ 1e-11 (relu near parallel: the angle carries ~1e-8, hence 1e-6 there).
        // Quadrature kernels return the exact gradient of their own approximation, so the
        // comparison holds to the same tolerance.
        for inputs in InputDistribution.allCases {
            let r = try risk(s, d: 4, inputs: inputs)
            var cases = pairs
            cases.append(([0.6, 0.2, -0.1, 0.3], [0.6 + 1e-4, 0.2, -0.1, 0.3]))   // nearly parallel
            cases.append(([0.6, 0.2, -0.1, 0.3], [1.2, 0.4, -0.2, 0.6]))          // exactly parallel
            for (i, (w, w2)) in cases.enumerated() {
                let (_, g) = kernelThroughRisk(r, w, w2)
                let fd = finiteDifferenceGradient(w, h: 1e-5) { kernelThroughRisk(r, $0, w2).0 }
                let tol = (s.isPositivelyHomogeneous && i >= 3) ? 1e-6 : 1e-8
                for c in 0 ..< 4 { #expect(abs(g[c] - fd[c]) <= tol, "\(s) \(inputs) case \(i) coordinate \(c): \(g[c]) vs \(fd[c])") }
            }
        }
    }
}

@Suite("Low-dimensional special cases")
struct LowDimensionTests {
    @Test("Sphere quadrature in d = 1, 2, 3 (two-point and Chebyshev laws) agrees with Monte Carlo", arguments: [1, 2, 3])
    func sphereLowDimension(_ d: Int) throws {
        let model = try NetworkModel(activation: .tanh, inputDimension: d, secondLayer: .fixed, inputs: .sphere)
        let risk = try PopulationRisk(model: model, teacher: .singleNeuron([Double](repeating: 1, count: d)))
        let w = Array([0.9, -0.4, 0.3].prefix(d)), w2 = Array([-0.5, 0.8, 0.6].prefix(d))
        let (k, g) = kernelThroughRisk(risk, w, w2)
        let mc = monteCarloKernel(.tanh, .tanh, w, w2, inputs: .sphere, samples: 60_000, seed: 5)
        // 5 standard errors; in d = 1 the law is two points and MC is nearly exact.
        #expect(abs(k - mc.value.mean) <= 5 * mc.value.standardError + 1e-12, "d = \(d): \(k) vs \(mc.value.mean)")
        for c in 0 ..< d { #expect(abs(g[c] - mc.gradient[c].mean) <= 5 * mc.gradient[c].standardError + 1e-12) }
    }

    @Test("Every dynamics runs in d = 1 with one particle, Gaussian and sphere inputs",
          arguments: [SGDKind.online, .multipass(samples: 3), .population])
    func tinyRuns(_ kind: SGDKind) throws {
        for inputs in InputDistribution.allCases {
            for s in [Activation.relu, .tanh] {
                let model = try NetworkModel(activation: s, inputDimension: 1, secondLayer: .trained, inputs: inputs)
                let e = SGDExperiment(model: model, teacher: .singleNeuron([1], noise: 0.1),
                                      initialization: InitialLaw(aMean: 0.5, aStd: 0.1, wMean: 0.3, wStd: 0.1),
                                      energy: EnergyParameters(lambda: 0.1, beta: 100), particles: 1, horizon: 0.5, seed: 1,
                                      sgd: SGDSettings(eta: 0.05, kind: kind, noise: true), recordEvery: 0.25)
                let t = try SGDRunner(experiment: e).run()
                #expect(t.status == .completed)
                #expect(t.records.count == 3 && t.finalParticles.count == 2)
                #expect(t.records.allSatisfy { $0.risk.isFinite && $0.risk >= 0 })
            }
        }
    }
}
