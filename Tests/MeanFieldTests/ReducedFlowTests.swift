import Foundation
import Testing
@testable import MeanField
import Wasserstein

/// The full population flow of `particles` (row-major `M x (d + 1)`), noiseless.
private func fullFlow(_ model: NetworkModel, _ teacher: Teacher, particles: [Double], eta: Double, horizon: Double) throws -> Trajectory {
    var e = SGDExperiment(model: model, teacher: teacher, initialization: InitialLaw(wStd: 1),
                          particles: particles.count / model.parameterDimension, horizon: horizon, seed: 1,
                          sgd: SGDSettings(eta: eta, kind: .population), recordEvery: eta)
    e.initialParticles = particles
    e.recordParticles = false
    return try SGDRunner(experiment: e).run()
}

@Suite("Reduced dynamics: against the full flow, the d = infinity limit, the noisy radial law")
struct ReducedFlowTests {
    @Test("d = 2, a cloud closed under the reflection fixing e_1: reduced and full flows have the same risk at every step",
          arguments: [Activation?.none, .he2])
    func exactInTwoDimensions(_ teacherActivation: Activation?) throws {
        let setting = try reducedSetting(.relu, d: .finite(2), teacherActivation: teacherActivation)
        var g = Xoshiro256StarStar(seed: 5)
        var z = [Double](), cloud = [Double]()
        for _ in 0 ..< 40 {
            let a = 1 + 0.3 * g.nextGaussian(), s = 0.5 * g.nextGaussian(), r = abs(0.5 * g.nextGaussian())
            z += [a, s, r]
            cloud += [a, s, r, a, s, -r]
        }
        let law = try ReducedLaw(points: z, coordinateCount: 3)
        let flow = try ReducedPopulationFlow(kernels: ReducedKernels(setting: setting),
                                             settings: ReducedFlowSettings(eta: 0.05, horizon: 3, recordEvery: 0.05))
        let reduced = try flow.run(from: law)
        let full = try fullFlow(NetworkModel(activation: .relu, inputDimension: 2),
                                .neurons(directions: [[1, 0]], coefficients: [1], noise: 0, activation: teacherActivation),
                                particles: cloud, eta: 0.05, horizon: 3)
        #expect(reduced.records.count == full.records.count)
        #expect(reduced.records.last!.risk < 0.8 * reduced.records.first!.risk)
        for (a, b) in zip(reduced.records, full.records) {
            #expect(abs(a.risk - b.risk) <= 1e-11, "t = \(a.time): \(a.risk) vs \(b.risk)")
        }
    }

    @Test("d = 4 and 8: the reduced flow of a sampled cloud's symmetrisation tracks the full flow of the cloud to O(1/M)",
          arguments: [4, 8])
    func againstFullFlow(_ d: Int) throws {
        // Both runs start from the same (a, s, r); the full cloud's orthogonal directions are
        // M draws instead of the uniform law, which moves the risk by O(1/M) (a U-statistic
        // with mean-zero off-diagonal terms plus the diagonal's bias).
        let m = 120
        let model = try NetworkModel(activation: .relu, inputDimension: d)
        let teacher = Teacher.singleNeuron([1] + [Double](repeating: 0, count: d - 1))
        var g = Xoshiro256StarStar(seed: UInt64(d))
        let cloud = InitialLaw(aMean: 0.5, aStd: 0.3, wMean: 0, wStd: 1 / Double(d).squareRoot()).sample(model: model, count: m, using: &g)
        let reducedTeacher = try ReducedTeacher(teacher: teacher, inputDimension: d)
        let law = try ReducedLaw(projecting: cloud, model: model, basis: reducedTeacher.basis!)
        let setting = try ReducedSetting(activation: .relu, inputDimension: .finite(d), teacher: reducedTeacher)
        // Four nodes (errors of U below 1e-4 at n = 3) keep the debug build fast.
        let flow = try ReducedPopulationFlow(kernels: ReducedKernels(setting: setting, sphereNodes: 4),
                                             settings: ReducedFlowSettings(eta: 0.2, horizon: 3, recordEvery: 0.2))
        let reduced = try flow.run(from: law)
        let full = try fullFlow(model, teacher, particles: cloud, eta: 0.2, horizon: 3)
        let r0 = reduced.records.first!.risk
        #expect(reduced.records.last!.risk < 0.5 * r0)
        var worst = 0.0
        for (a, b) in zip(reduced.records, full.records) { worst = max(worst, abs(a.risk - b.risk)) }
        #expect(worst <= 3 * r0 / Double(m), "d = \(d): largest risk gap \(worst), R0 = \(r0)")
    }

    @Test("d -> infinity: the risk trajectories of quantised laws converge to the d = infinity one")
    func largeDimensionLimit() throws {
        func trajectory(_ d: ReducedDimension) throws -> [Double] {
            let setting = try reducedSetting(.erf, d: d, trained: false)
            let law = try ReducedInitialLaw(gamma: 0.8).quantised(setting: setting, nodes: .init(s: 8, r: 6))
            let flow = try ReducedPopulationFlow(kernels: ReducedKernels(setting: setting),
                                                 settings: ReducedFlowSettings(eta: 0.1, horizon: 8, recordEvery: 0.5))
            return try flow.run(from: law).records.map(\.risk)
        }
        let limit = try trajectory(.infinity)
        var gaps = [Double]()
        for d in [100, 1_000, 10_000, 100_000] {
            let r = try trajectory(.finite(d))
            gaps.append(zip(r, limit).map { abs($0 - $1) }.max()!)
        }
        #expect(limit.last! < 0.2 * limit.first!)
        // The gap shrinks with d (about like 1/d: s ~ N(0, gamma^2/d)) and is small at d = 10^5.
        for i in 1 ..< gaps.count { #expect(gaps[i] < 0.5 * gaps[i - 1], "\(gaps)") }
        #expect(gaps.last! < 1e-4, "\(gaps)")
    }

    @Test("Noise and weight decay, no potential: E[r^2] follows the n-dimensional Ornstein-Uhlenbeck recursion",
          arguments: [5, 1001])
    func radialNoise(_ d: Int) throws {
        // Linear student, zero teacher: U = <s, s'> + r r' t has E_t[dU/dr] = 0, so r only
        // feels decay and noise. The full chain's orthogonal part y in R^n obeys
        // y <- (1 - eta lambda) y + sigma g_n, so E|y|^2 <- (1 - eta lambda)^2 E|y|^2 + n sigma^2
        // exactly, and its limit is the OU formula e^{-2 lambda t} r0^2 + n (1 - e^{-2 lambda t})/(lambda beta).
        let teacher = try ReducedTeacher(directions: [[1]], coefficients: [0])
        let setting = try ReducedSetting(activation: .linear, secondLayer: .fixed, inputDimension: .finite(d), teacher: teacher)
        let m = 400, n = Double(d - 1)
        let r0 = 0.05
        let law = try ReducedLaw(points: [Double]((0 ..< m).flatMap { _ in [0.0, r0] }), coordinateCount: 2)
        let eta = 0.05, lambda = 0.5, beta = 4.0
        let flow = try ReducedPopulationFlow(kernels: ReducedKernels(setting: setting, sphereNodes: 1),
                                             settings: ReducedFlowSettings(eta: eta, horizon: 2, recordEvery: 0.5, lambda: lambda, beta: beta, seed: 9))
        let run = try flow.run(from: law, recordLaws: true)
        let sigma2 = 2 * eta / beta
        var expected = r0 * r0
        var step = 0
        for record in run.records {
            while step < record.step {
                expected = (1 - eta * lambda) * (1 - eta * lambda) * expected + n * sigma2
                step += 1
            }
            let r2 = record.law!.column(1).map { $0 * $0 }
            let mean = r2.reduce(0, +) / Double(m)
            let variance = r2.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Double(m - 1)
            let se = (variance / Double(m)).squareRoot()
            #expect(abs(mean - expected) <= 5 * se + 1e-15, "d = \(d), t = \(record.time): \(mean) vs \(expected) +- \(se)")
            let t = record.time
            let ou = exp(-2 * lambda * t) * r0 * r0 + n * (1 - exp(-2 * lambda * t)) / (lambda * beta)
            // The chain's O(eta) distance to the continuous OU formula.
            #expect(abs(expected - ou) <= 0.1 * ou + 1e-12)
        }
    }

    @Test("Quantised initial law: exact moments of s, r, a; sampled law within Monte Carlo error")
    func initialLawMoments() throws {
        let d = 12, gamma = 1.3
        let setting = try reducedSetting(.relu, d: .finite(d))
        let initial = try ReducedInitialLaw(aMean: 0.4, aStd: 0.2, gamma: gamma)
        let law = try initial.quantised(setting: setting, nodes: .init(a: 3, s: 4, r: 5))
        #expect(law.count == 60)
        let sigma2 = gamma * gamma / Double(d), n = Double(d - 1)
        #expect(abs(law.expectation { $0[$0.startIndex] } - 0.4) <= 1e-14)
        #expect(abs(law.expectation { pow($0[$0.startIndex] - 0.4, 2) } - 0.04) <= 1e-14)
        #expect(abs(law.expectation { pow($0[$0.startIndex + 1], 2) } - sigma2) <= 1e-14)
        #expect(abs(law.expectation { pow($0[$0.startIndex + 1], 4) } - 3 * sigma2 * sigma2) <= 1e-14)
        // r^2 = sigma^2 chi^2_n: E r^2 = n sigma^2, E r^4 = n (n + 2) sigma^4 (polynomials in r^2: exact).
        #expect(abs(law.expectation { pow($0[$0.startIndex + 2], 2) } - n * sigma2) <= 1e-13)
        #expect(abs(law.expectation { pow($0[$0.startIndex + 2], 4) } - n * (n + 2) * sigma2 * sigma2) <= 1e-12)
        // E r = sigma sqrt(2) Gamma((n+1)/2) / Gamma(n/2): not a polynomial in r^2, so only
        // approximate (6.6e-5 with these 5 nodes, 2.4e-6 with 10: r = sqrt(2x) is not smooth at x = 0,
        // where the Laguerre weight x^(n/2 - 1) damps it).
        let meanR = gamma / Double(d).squareRoot() * 2.0.squareRoot() * exp(lgamma((n + 1) / 2) - lgamma(n / 2))
        #expect(abs(law.expectation { $0[$0.startIndex + 2] } - meanR) <= 1e-4)
        let finer = try initial.quantised(setting: setting, nodes: .init(a: 1, s: 1, r: 10))
        #expect(abs(finer.expectation { $0[$0.startIndex + 2] } - meanR) <= 3e-6)
        let sampled = try initial.sampled(setting: setting, count: 20_000, seed: 4)
        let r2 = sampled.column(2).map { $0 * $0 }
        let mean = r2.reduce(0, +) / 20_000
        let sd = (r2.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / 20_000).squareRoot()
        #expect(abs(mean - n * sigma2) <= 5 * sd / 20_000.0.squareRoot())
        // Relative spread of chi^2_n is sqrt(2/n).
        #expect(abs(sd / (n * sigma2) - (2 / n).squareRoot()) <= 0.05 * (2 / n).squareRoot())
        // d = infinity: one point (s = 0, r = gamma) per a-node.
        let limit = try initial.quantised(setting: reducedSetting(.relu, d: .infinity), nodes: .init(a: 3))
        #expect(limit.count == 3 && limit.column(1).allSatisfy { $0 == 0 } && limit.column(2).allSatisfy { $0 == gamma })
    }

    @Test("Runs are identical with one core or two; the threshold time interpolates the step risks")
    func reproducibilityAndThreshold() throws {
        let setting = try reducedSetting(.relu, d: .finite(20))
        let law = try ReducedInitialLaw(aMean: 0.5, aStd: 0.2, gamma: 1).quantised(setting: setting, nodes: .init(a: 3, s: 4, r: 3))
        var settings = ReducedFlowSettings(eta: 0.2, horizon: 6, recordEvery: 0.2, lambda: 0.01, beta: 50, seed: 3)
        let kernels = try ReducedKernels(setting: setting)
        let parallel = try ReducedPopulationFlow(kernels: kernels, settings: settings).run(from: law)
        settings.parallel = false
        let serial = try ReducedPopulationFlow(kernels: kernels, settings: settings).run(from: law)
        #expect(parallel.finalLaw.points == serial.finalLaw.points)
        #expect(parallel.records.map(\.risk) == serial.records.map(\.risk))
        // Threshold halfway down the noiseless run's risk.
        settings.beta = nil
        let whole = try ReducedPopulationFlow(kernels: kernels, settings: settings).run(from: law)
        let risks = whole.records.map(\.risk)
        let threshold = 0.5 * (risks.first! + risks.last!)
        settings.stopBelowRisk = threshold
        let stopped = try ReducedPopulationFlow(kernels: kernels, settings: settings).run(from: law)
        let k = risks.firstIndex { $0 <= threshold }!
        let expected = (Double(k) - (risks[k] - threshold) / (risks[k] - risks[k - 1])) * 0.2
        #expect(abs(stopped.thresholdTime! - expected) <= 1e-12)
        #expect(stopped.steps == k && stopped.records.last!.step == k)
    }

    @Test("Typed errors: d <= k, noise at d = infinity, mismatched laws, bad weights, k > 2")
    func errors() throws {
        let teacher = try ReducedTeacher(directions: [[1, 0], [0, 1]])
        #expect(throws: MeanFieldError.self) { try ReducedSetting(activation: .relu, inputDimension: .finite(2), teacher: teacher) }
        #expect(throws: MeanFieldError.self) { try ReducedTeacher(directions: [[1, 0, 0]]) }
        #expect(throws: MeanFieldError.self) {
            try ReducedTeacher(teacher: .neurons(directions: [[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0]], coefficients: [1, 1, 1], noise: 0),
                               inputDimension: 4)
        }
        let setting = try reducedSetting(.relu, d: .infinity)
        let kernels = try ReducedKernels(setting: setting)
        do {
            _ = try ReducedPopulationFlow(kernels: kernels, settings: ReducedFlowSettings(eta: 0.1, horizon: 1, beta: 10))
            Issue.record("noise at d = infinity accepted")
        } catch let e as MeanFieldError {
            #expect(e.parameter == .inverseTemperature)
        }
        let wrong = try ReducedLaw(points: [0.1, 1], coordinateCount: 2)
        #expect(throws: MeanFieldError.self) { try kernels.risk(wrong) }
        #expect(throws: MeanFieldError.self) { try ReducedLaw(points: [1, 0.1, 1, 1, 0.2, 1], weights: [0.7, 0.7], coordinateCount: 3) }
        #expect(throws: MeanFieldError.self) { try ReducedLaw(points: [1, 0.1, -1], coordinateCount: 3) }
    }
}
