import Foundation
import GradientFlows
import Testing
@testable import MeanField
import Wasserstein

/// The negative entropy of the Gaussian fitted to the particles,
/// `int rho log rho = -(D/2) log(2 pi e) - (1/2) log det S`, with a diagonal `S` (enough for a
/// recording test; the real estimators come from the JKO work).
struct DiagonalGaussianEntropy: EntropyEstimator {
    func negativeEntropy(points: Span<Double>, count: Int, dimension: Int) -> Double {
        var total = -0.5 * Double(dimension) * log(2 * Double.pi * M_E)
        for k in 0 ..< dimension {
            var m = 0.0, v = 0.0
            for i in 0 ..< count { m += points[i * dimension + k] }
            m /= Double(count)
            for i in 0 ..< count { v += (points[i * dimension + k] - m) * (points[i * dimension + k] - m) }
            total -= 0.5 * log(v / Double(count))
        }
        return total
    }
    func negativeEntropyAndGradient(points: Span<Double>, count: Int, dimension: Int,
                                    gradient: inout MutableSpan<Double>) -> Double {
        for i in 0 ..< gradient.count { gradient[i] = 0 }
        return negativeEntropy(points: points, count: count, dimension: dimension)
    }
}

private func meanAndAxisVariance(_ p: [Double], m: Int, d: Int) -> (mean: [Double], variance: Double) {
    var mean = [Double](repeating: 0, count: d)
    for j in 0 ..< m { for k in 0 ..< d { mean[k] += p[j * d + k] / Double(m) } }
    var v = 0.0
    for j in 0 ..< m { for k in 0 ..< d { v += (p[j * d + k] - mean[k]) * (p[j * d + k] - mean[k]) } }
    return (mean, v / Double(m * d))
}

@Suite("Particle dynamics: oracles, tracking, reproducibility, errors")
struct DynamicsTests {
    let bStar = [1.0, -0.5, 0.3]

    func linearExperiment(lambda: Double, beta: Double?, noise: Bool, particles: Int, eta: Double, horizon: Double) throws -> SGDExperiment {
        let model = try NetworkModel(activation: .linear, inputDimension: 3, secondLayer: .fixed)
        return SGDExperiment(model: model, teacher: .linear(coefficients: bStar, noise: 0.1),
                             initialization: InitialLaw(wMean: [0.2, 0.1, -0.3], wStd: 0.5),
                             energy: EnergyParameters(lambda: lambda, beta: beta), particles: particles, horizon: horizon,
                             seed: 42, sgd: SGDSettings(eta: eta, kind: .population, noise: noise), recordEvery: 0.25)
    }

    @Test("Linear network, no noise: the particle mean follows dm/dt = b* - (1 + lambda) m")
    func linearOracleMean() throws {
        // sigma_* = <theta, x>, Gaussian x: grad Psi_lambda = m - b* + lambda theta, so the mean
        // obeys dm/dt = b* - (1 + lambda) m, m(t) = m* + (m0 - m*) e^{-ct}, c = 1 + lambda,
        // m* = b*/c. Explicit Euler gives (1 - c eta)^k instead of e^{-cketa}; their gap at
        // t = k eta is e^{-ct} (c^2 eta t / 2)(1 + O(eta)), the tolerance (10% slack). The
        // deviations from the mean decay exactly like (1 - eta lambda)^k (no interaction term).
        let lambda = 0.5, eta = 0.01, c = 1 + lambda
        let e = try linearExperiment(lambda: lambda, beta: nil, noise: false, particles: 50, eta: eta, horizon: 2)
        let traj = try SGDRunner(experiment: e).run()
        #expect(traj.status == .completed)
        let first = meanAndAxisVariance(traj.records[0].particles!, m: 50, d: 3)
        for rec in traj.records {
            let t = rec.time
            let now = meanAndAxisVariance(rec.particles!, m: 50, d: 3)
            for k in 0 ..< 3 {
                let mStar = bStar[k] / c
                let exact = mStar + (first.mean[k] - mStar) * exp(-c * t)
                let tol = 1.1 * abs(first.mean[k] - mStar) * exp(-c * t) * c * c * eta * t / 2 + 1e-13
                #expect(abs(now.mean[k] - exact) <= tol, "t = \(t), axis \(k): \(now.mean[k]) vs \(exact)")
            }
            let discreteSpread = first.variance * pow(1 - eta * lambda, 2 * Double(rec.step))
            #expect(abs(now.variance - discreteSpread) <= 1e-12)
            // Its continuous limit e^{-2 lambda t} S0 (Euler gap ~ lambda^2 eta t S0).
            #expect(abs(now.variance - exp(-2 * lambda * t) * first.variance) <= 1.1 * lambda * lambda * eta * t * first.variance + 1e-13)
            // Risk: R = (|b*|^2 + s^2)/2 - <b*, m> + |m|^2/2 (Docs/Theory.md 5.4, oracle 3; exact for any M).
            let bm = zip(bStar, now.mean).reduce(0) { $0 + $1.0 * $1.1 }
            let mm = now.mean.reduce(0) { $0 + $1 * $1 }
            #expect(abs(rec.risk - (0.5 * (bStar.reduce(0) { $0 + $1 * $1 } + 0.01) - bm + 0.5 * mm)) <= 1e-13)
        }
    }

    @Test("Linear network with noise: mean and spread follow the OU formulas")
    func linearOracleNoise() throws {
        // Particle SDE: d theta_j = (b* - m_M - lambda theta_j) dt + sqrt(2/beta) dB_j. The
        // interaction enters only through the mean (U is bilinear), so the deviations from the
        // empirical mean are an OU process with rate lambda: the per-axis variance of the law is
        // S(t) = e^{-2 lambda t} S0 + (1 - e^{-2 lambda t}) / (lambda beta) (Docs/Theory.md 5.4, oracle 1);
        // the empirical (1/M) variance of M particles carries the factor (1 - 1/M) on the noise
        // part (the centred noises dB_j - dB_bar). Tolerances: 5 standard deviations of the
        // sampling fluctuation (variance: sqrt(2/(M d)) S; mean: sqrt((1 - e^{-2ct}) / (c beta M)))
        // plus the Euler gap, computed exactly from the discrete recursion
        // S_{k+1} = (1 - eta lambda)^2 S_k + (2 eta / beta)(1 - 1/M).
        let lambda = 1.0, beta = 20.0, eta = 0.005, m = 400, c = 1 + lambda
        let e = try linearExperiment(lambda: lambda, beta: beta, noise: true, particles: m, eta: eta, horizon: 1.5)
        let traj = try SGDRunner(experiment: e).run()
        let first = meanAndAxisVariance(traj.records[0].particles!, m: m, d: 3)
        for rec in traj.records where rec.step > 0 {
            let t = rec.time
            let now = meanAndAxisVariance(rec.particles!, m: m, d: 3)
            let noisePart = (1 - 1 / Double(m)) * (1 - exp(-2 * lambda * t)) / (lambda * beta)
            let continuous = exp(-2 * lambda * t) * first.variance + noisePart
            var discrete = first.variance
            for _ in 0 ..< rec.step { discrete = (1 - eta * lambda) * (1 - eta * lambda) * discrete + 2 * eta / beta * (1 - 1 / Double(m)) }
            let tolVar = 5 * (2 / Double(m * 3)).squareRoot() * continuous + abs(discrete - continuous)
            #expect(abs(now.variance - continuous) <= tolVar, "t = \(t): spread \(now.variance) vs \(continuous)")
            for k in 0 ..< 3 {
                let mStar = bStar[k] / c
                let exact = mStar + (first.mean[k] - mStar) * exp(-c * t)
                let sd = ((1 - exp(-2 * c * t)) / (c * beta * Double(m))).squareRoot()
                let euler = 1.1 * abs(first.mean[k] - mStar) * exp(-c * t) * c * c * eta * t / 2
                #expect(abs(now.mean[k] - exact) <= 5 * sd + euler, "t = \(t), axis \(k)")
            }
        }
        // The spread really moved from S0 toward 1/(lambda beta) (the test can tell).
        let last = meanAndAxisVariance(traj.finalParticles, m: m, d: 3)
        #expect(abs(last.variance - first.variance) > 0.1 * first.variance)
    }

    @Test("Online SGD at small eta tracks the population flow (M = 200, erf, trained)")
    func onlineTracksPopulation() throws {
        // Same initial particles (same seed). The population flow at eta = 0.01 and online SGD
        // at eta = 5e-4 differ by the SGD fluctuation, of order sqrt(eta) (Docs/Theory.md section 6; the
        // finite-M error is common to both), plus the flow's Euler error O(eta). Tolerance:
        // sqrt(eta_sgd) * R(0) at every record, and the final gap must be under 5% of the risk
        // drop (an error in the step scaling, e.g. a stray factor 2 or 1/M, breaks both).
        let model = try NetworkModel(activation: .erf, inputDimension: 3, secondLayer: .trained)
        let law = InitialLaw(aMean: 0.5, aStd: 0.3, wMean: 0, wStd: 0.5)
        func run(_ kind: SGDKind, eta: Double, seed: UInt64) throws -> Trajectory {
            var e = SGDExperiment(model: model, teacher: .singleNeuron([1.0, 0.5, -0.5]), initialization: law,
                                  particles: 200, horizon: 1, seed: seed, sgd: SGDSettings(eta: eta, kind: kind), recordEvery: 0.25)
            e.recordParticles = false
            var g = Xoshiro256StarStar(seed: 1)
            e.initialParticles = law.sample(model: model, count: 200, using: &g)
            return try SGDRunner(experiment: e).run()
        }
        let pop = try run(.population, eta: 0.01, seed: 1)
        let r0 = pop.records[0].risk, drop = r0 - pop.records.last!.risk
        #expect(drop > 0.3 * r0)
        for seed: UInt64 in [1, 2] {
            let sgd = try run(.online, eta: 0.0005, seed: seed)
            #expect(sgd.records.count == pop.records.count)
            for (a, b) in zip(sgd.records, pop.records) {
                #expect(abs(a.time - b.time) < 1e-12)
                #expect(abs(a.risk - b.risk) <= 0.0005.squareRoot() * r0, "seed \(seed), t = \(a.time): \(a.risk) vs \(b.risk)")
            }
            #expect(abs(sgd.records.last!.risk - pop.records.last!.risk) <= 0.05 * drop)
        }
    }

    @Test("The risk decreases along the population flow, at the rate -(1/M) sum |grad Psi|^2",
          arguments: [Activation.relu, .erf, .tanh])
    func riskDecreases(_ s: Activation) throws {
        let model = try NetworkModel(activation: s, inputDimension: 4, secondLayer: .trained)
        let teacher = Teacher.neurons(directions: [[1, 0, 0.5, 0], [0, -1, 0, 0.5]], coefficients: [1, 0.5], noise: 0.1)
        // tanh goes through the quadrature (debug builds run it slowly): fewer particles, 16 nodes.
        let quadrature = s.description == "tanh"
        let m = quadrature ? 12 : 30
        var e = SGDExperiment(model: model, teacher: teacher, initialization: InitialLaw(aMean: 0, aStd: 0.5, wMean: 0, wStd: 0.5),
                              particles: m, horizon: 2, seed: 3, sgd: SGDSettings(eta: 0.02, kind: .population), recordEvery: 0.02)
        e.kernelOptions = KernelOptions(quadratureNodes: 16)
        let runner = try SGDRunner(experiment: e)
        let traj = runner.run()
        #expect(traj.records.count == 101)
        for (a, b) in zip(traj.records, traj.records.dropFirst()) {
            #expect(b.risk <= a.risk + 1e-12, "t = \(b.time): \(b.risk) > \(a.risk)")
        }
        #expect(traj.records.last!.risk < 0.8 * traj.records[0].risk)
        // First step: R(theta - eta grad Psi) - R(theta) = -(eta/M) sum |grad Psi|^2 + O(eta^2);
        // the O(eta^2) term is bounded by comparing with half the step (Richardson): the
        // first-order prediction must be within 4x the second-order remainder.
        let p0 = traj.records[0].particles!
        let (_, g) = try runner.risk.firstVariation(points: p0)
        let rate = g.reduce(0) { $0 + $1 * $1 } / Double(m)
        let eta = 0.02
        let actual = traj.records[1].risk - traj.records[0].risk
        var half = p0
        for i in 0 ..< half.count { half[i] -= eta / 2 * g[i] }
        let actualHalf = try runner.risk.risk(particles: half) - traj.records[0].risk
        let remainder = abs(actual - 2 * actualHalf)   // ~ eta^2 / 2 * curvature term
        #expect(abs(actual + eta * rate) <= 4 * remainder + 1e-12, "\(actual) vs \(-eta * rate)")
    }

    @Test("Fixed seeds give bitwise-identical runs, serial or on two cores",
          arguments: [SGDKind.online, .multipass(samples: 50), .population])
    func reproducible(_ kind: SGDKind) throws {
        let model = try NetworkModel(activation: .relu, inputDimension: 3, secondLayer: .trained)
        var e = SGDExperiment(model: model, teacher: .singleNeuron([1, 0, 0], noise: 0.2),
                              initialization: InitialLaw(aMean: 0.5, aStd: 0.2, wMean: 0, wStd: 0.5),
                              energy: EnergyParameters(lambda: 0.1, beta: 50), particles: 150, horizon: 0.2, seed: 9,
                              sgd: SGDSettings(eta: 0.01, kind: kind, noise: true), recordEvery: 0.1)
        e.onlineParallelThreshold = 0          // split online sweeps too (blocks of 64 particles)
        let a = try SGDRunner(experiment: e).run()
        let b = try SGDRunner(experiment: e).run()
        e.parallel = false
        let c = try SGDRunner(experiment: e).run()
        e.seed = 10
        let other = try SGDRunner(experiment: e).run()
        #expect(a.finalParticles == b.finalParticles)
        #expect(a.finalParticles == c.finalParticles)
        #expect(a.records.map(\.risk) == c.records.map(\.risk))
        #expect(a.records.map { $0.particles! } == c.records.map { $0.particles! })
        #expect(a.finalParticles != other.finalParticles)
    }

    @Test("Multipass SGD on one sample fits it; the training set is reproducible")
    func multipassFitsOneSample() throws {
        let model = try NetworkModel(activation: .erf, inputDimension: 3, secondLayer: .trained)
        let e = SGDExperiment(model: model, teacher: .singleNeuron([1, -1, 0.5], noise: 0.3),
                              initialization: InitialLaw(aMean: 0.2, aStd: 0.2, wMean: 0, wStd: 0.5), particles: 20,
                              horizon: 20, seed: 4, sgd: SGDSettings(eta: 0.05, kind: .multipass(samples: 1)), recordEvery: 20)
        let runner = try SGDRunner(experiment: e)
        let (x, y) = runner.trainingSet()!
        #expect(runner.trainingSet()!.inputs == x)
        let traj = runner.run()
        let before = y[0] - model.output(particles: traj.records[0].particles!, at: x)
        let after = y[0] - model.output(particles: traj.finalParticles, at: x)
        // Gradient descent on one squared residual converges geometrically to an interpolant.
        #expect(abs(after) < 1e-3 * abs(before), "\(before) -> \(after)")
    }

    @Test("Free energy is recorded when beta is finite and an estimator is given")
    func freeEnergyRecording() throws {
        let e = try linearExperiment(lambda: 0.5, beta: 10, noise: true, particles: 40, eta: 0.01, horizon: 0.1)
        let with = try SGDRunner(experiment: e, entropyEstimator: DiagonalGaussianEntropy()).run()
        #expect(with.recordsFreeEnergy)
        let est = DiagonalGaussianEntropy()
        for r in with.records {
            let h = est.negativeEntropy(points: r.particles!.span, count: 40, dimension: 3)
            var n2 = 0.0
            for v in r.particles! { n2 += v * v }
            #expect(abs(r.penalizedRisk - (r.risk + 0.25 * n2 / 40)) <= 1e-13)
            #expect(r.negativeEntropy == h)
            #expect(abs(r.freeEnergy! - (r.penalizedRisk + h / 10)) <= 1e-13)
        }
        let without = try SGDRunner(experiment: e).run()
        #expect(!without.recordsFreeEnergy)
        #expect(without.records.allSatisfy { $0.freeEnergy == nil })
    }

    @Test("Progress reports advance to the last step; divergence is reported, not trapped")
    func progressAndDivergence() throws {
        let model = try NetworkModel(activation: .relu, inputDimension: 3)
        var e = SGDExperiment(model: model, teacher: .singleNeuron([1, 0, 0]), initialization: InitialLaw(wStd: 0.5),
                              particles: 10, horizon: 1, seed: 1, sgd: SGDSettings(eta: 0.01), recordEvery: 0.5)
        var steps: [Int] = []
        let traj = try SGDRunner(experiment: e).run { steps.append($0.step) }
        #expect(steps.last == 100)
        #expect(steps == steps.sorted())
        #expect(traj.steps == 100 && traj.records.map(\.step) == [0, 50, 100])
        e.sgd.eta = 1e3
        e.horizon = 1e5
        let bad = try SGDRunner(experiment: e).run()
        guard case .diverged = bad.status else { Issue.record("expected divergence, got \(bad.status)"); return }
        #expect(bad.records.allSatisfy { $0.risk.isFinite })
    }

    /// The bad settings of an SGD experiment and the parameter each error must name (library
    /// words; Experiments maps them to spec keys, ExperimentsTests/VocabularyTests).
    static let badSettings: [(change: @Sendable (inout SGDExperiment) -> Void, parameter: MeanFieldParameter)] = [
        ({ $0.sgd.eta = 0 }, .stepSize),
        ({ $0.sgd.eta = .nan }, .stepSize),
        ({ $0.energy.beta = nil }, .noise),
        ({ $0.energy.beta = -1 }, .inverseTemperature),
        ({ $0.energy.lambda = -0.1 }, .weightDecay),
        ({ $0.particles = 0 }, .particleCount),
        ({ $0.horizon = -1 }, .horizon),
        ({ $0.recordEvery = 0 }, .recordInterval),
        ({ $0.initialization.wStd = -1 }, .firstLayerSpread),
        ({ $0.initialization.aStd = .infinity }, .secondLayerSpread),
        ({ $0.initialization.wMean = [1, 2] }, .firstLayerMean),
        ({ $0.teacher = .linear(coefficients: [1, 2], noise: 0) }, .teacherCoefficients),
        ({ $0.sgd.kind = .multipass(samples: 0) }, .trainingSamples),
        ({ $0.initialParticles = [1, 2, 3] }, .initialParticles),
        ({ $0.kernelOptions.quadratureNodes = 0 }, .quadratureNodes),
    ]

    @Test("Bad settings throw errors naming the parameter in library words")
    func badSettings() throws {
        let good = try linearExperiment(lambda: 0.1, beta: 10, noise: true, particles: 10, eta: 0.01, horizon: 1)
        func parameter(_ change: (inout SGDExperiment) -> Void) -> MeanFieldParameter? {
            var e = good
            change(&e)
            do { _ = try SGDRunner(experiment: e); return nil } catch let error as MeanFieldError { return error.parameter } catch { return nil }
        }
        #expect(parameter { _ in } == nil)
        for (change, expected) in Self.badSettings {
            #expect(parameter(change) == expected)
        }
        var e = good
        e.sgd.eta = -2
        #expect(throws: MeanFieldError.invalidSetting(parameter: .stepSize, value: "-2.0", requirement: "must be > 0 and finite")) {
            _ = try SGDRunner(experiment: e)
        }
        #expect(MeanFieldError.invalidSetting(parameter: .stepSize, value: "-2.0", requirement: "must be > 0 and finite").description
                == "invalid step size eta = -2.0: must be > 0 and finite")
    }
}
