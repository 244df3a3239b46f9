import GradientFlows
import Wasserstein

/// Runs the particle dynamics of an ``SGDExperiment`` and records its trajectory.
///
/// The updates (Docs/Theory.md 4.1, time `t = k eta`), for every particle `j`:
///
///     theta_j <- theta_j - eta*lambda*theta_j + eta*(y_k - f(x_k; Theta)) * grad sigma_*(x_k; theta_j) + sqrt(2 eta/beta) g_j
///
/// for one-pass and multi-pass SGD, and
///
///     theta_j <- theta_j - eta*(grad Psi(theta_j; empirical) + lambda*theta_j) + sqrt(2 eta/beta) g_j
///
/// for the population flow; the noise term is present when ``SGDSettings/noise`` is set.
///
/// ## Randomness and reproducibility
/// Everything is drawn from xoshiro256** streams derived from the seed: the initial particles
/// from the seed's stream itself (so every dynamics with the same seed starts from the same
/// particles), the samples `(x_k, y_k)` (or the training set and its indices) from that stream
/// jumped once, and the particle noise from further jumped streams, one per block of 64
/// particles. Work split over the cores follows those blocks, so a seed gives bitwise-identical
/// runs with one core or two. Normal draws use the ziggurat method (`ZigguratTables`); the
/// label noise uses the polar method.
///
/// ```swift
/// let model = try NetworkModel(activation: .relu, inputDimension: 20)
/// var experiment = SGDExperiment(model: model, teacher: .singleNeuron(e1),
///                                initialization: InitialLaw(aMean: 1, aStd: 0.1, wMean: 0, wStd: 0.2),
///                                particles: 1000, horizon: 10, seed: 1,
///                                sgd: SGDSettings(eta: 0.01, kind: .online), recordEvery: 0.5)
/// let trajectory = try SGDRunner(experiment: experiment).run()
/// ```
public struct SGDRunner: Sendable {
    public let experiment: SGDExperiment
    /// The risk functional used for the records (and the population flow's gradients).
    public let risk: PopulationRisk
    /// Estimates `int rho log rho` for the free-energy records (used only when `beta` is
    /// finite). `nil`: free energies are not recorded.
    public let entropyEstimator: (any EntropyEstimator)?

    /// Particles per noise stream (and per unit of parallel work).
    static let blockSize = 64

    /// - Throws: ``MeanFieldError`` naming the offending parameter.
    public init(experiment: SGDExperiment, entropyEstimator: (any EntropyEstimator)? = nil) throws {
        try experiment.validate()
        self.experiment = experiment
        self.risk = try PopulationRisk(model: experiment.model, teacher: experiment.teacher, options: experiment.kernelOptions)
        self.entropyEstimator = entropyEstimator
    }

    /// The initial particles (row-major `M x D`): ``SGDExperiment/initialParticles`` or a draw
    /// from ``SGDExperiment/initialization`` with the seed's stream.
    public func initialParticles() -> [Double] {
        if let p = experiment.initialParticles { return p }
        var g = Xoshiro256StarStar(seed: experiment.seed)
        return experiment.initialization.sample(model: experiment.model, count: experiment.particles, using: &g)
    }

    /// The fixed training set of multi-pass SGD (`nil` for the other kinds): inputs row-major
    /// `m x d` and their noisy labels, drawn from the sample stream exactly as the run draws them.
    public func trainingSet() -> (inputs: [Double], labels: [Double])? {
        guard case .multipass(let n) = experiment.sgd.kind else { return nil }
        var (samples, _) = streams()
        return Self.drawTrainingSet(count: n, experiment: experiment, using: &samples)
    }

    static func drawTrainingSet(count n: Int, experiment e: SGDExperiment,
                                using samples: inout Xoshiro256StarStar) -> (inputs: [Double], labels: [Double]) {
        let d = e.model.inputDimension
        let x = e.model.inputs.sample(count: n, dimension: d, using: &samples)
        var y = [Double](repeating: 0, count: n)
        for i in 0 ..< n {
            y[i] = e.teacher.mean(at: Array(x[i * d ..< (i + 1) * d]), activation: e.model.activation)
            if e.teacher.noise > 0 { y[i] += e.teacher.noise * samples.nextGaussianPair().0 }
        }
        return (x, y)
    }

    /// Runs the dynamics to the horizon. `progress` is called after every record and about every
    /// 1% of the steps.
    public func run(progress: ((RunProgress) -> Void)? = nil) -> Trajectory {
        var recorder = Recorder(runner: self, progress: progress)
        switch experiment.sgd.kind {
        case .population:
            runPopulation(&recorder)
        case .online, .multipass:
            recorder = experiment.model.activation.accept(OnlineVisitor(runner: self, recorder: recorder))
        }
        return recorder.finish()
    }

    // MARK: - Streams

    func streams() -> (samples: Xoshiro256StarStar, noise: [Xoshiro256StarStar]) {
        var g = Xoshiro256StarStar(seed: experiment.seed)
        g.jump()
        let samples = g
        let blocks = (experiment.particles + Self.blockSize - 1) / Self.blockSize
        var noise = [Xoshiro256StarStar]()
        noise.reserveCapacity(blocks)
        for _ in 0 ..< blocks {
            g.jump()
            noise.append(g)
        }
        return (samples, noise)
    }

    var noiseScale: Double {
        guard experiment.sgd.noise, let beta = experiment.energy.beta else { return 0 }
        return (2 * experiment.sgd.eta / beta).squareRoot()
    }

    // MARK: - Population flow

    func runPopulation(_ recorder: inout Recorder) {
        let m = experiment.particles, D = experiment.model.parameterDimension
        let eta = experiment.sgd.eta, lambda = experiment.energy.lambda
        let steps = experiment.stepCount, stride = experiment.recordStride
        let sigma = noiseScale
        var (_, noise) = streams()
        var p = initialParticles()
        let weights = [Double](repeating: 1 / Double(m), count: m)
        var psi = [Double](repeating: 0, count: m)
        var v = [Double](repeating: 0, count: m)
        var grad = [Double](repeating: 0, count: m * D)
        var noiseBuffer = [Double](repeating: 0, count: Self.blockSize * D)
        for k in 0 ... steps {
            let last = k == steps
            p.withUnsafeBufferPointer { pp in
                weights.withUnsafeBufferPointer { wp in
                    psi.withUnsafeMutableBufferPointer { ps in
                        v.withUnsafeMutableBufferPointer { vs in
                            grad.withUnsafeMutableBufferPointer { gs in
                                risk.evaluate(points: pp.baseAddress!, weights: wp.baseAddress!, count: m,
                                              psi: ps.baseAddress!, potential: vs.baseAddress!,
                                              gradient: last ? nil : gs.baseAddress!, parallel: experiment.parallel)
                            }
                        }
                    }
                }
            }
            let r = risk.riskFrom(psi: psi, potential: v, weights: weights)
            if !r.isFinite {
                recorder.diverged(step: k)
                return
            }
            if k % stride == 0 || last { recorder.record(step: k, particles: p, risk: r) }
            if last { break }
            recorder.tick(step: k)
            p.withUnsafeMutableBufferPointer { pp in
                grad.withUnsafeBufferPointer { gs in
                    for i in 0 ..< m * D { pp[i] -= eta * (gs[i] + lambda * pp[i]) }
                }
                if sigma > 0 {
                    noiseBuffer.withUnsafeMutableBufferPointer { nb in
                        for b in 0 ..< noise.count {
                            let j0 = b * Self.blockSize, j1 = min(m, j0 + Self.blockSize)
                            let n = (j1 - j0) * D
                            noise[b].fillStandardNormal(nb.baseAddress!, count: n)
                            for t in 0 ..< n { pp[j0 * D + t] += sigma * nb[t] }
                        }
                    }
                }
            }
        }
    }
}

// MARK: - Recording

/// Collects the records of a run and reports progress.
struct Recorder {
    let runner: SGDRunner
    let progress: ((RunProgress) -> Void)?
    var records: [TrajectoryRecord] = []
    var lastParticles: [Double] = []
    var status: RunStatus = .completed
    var steps = 0
    let tickEvery: Int

    init(runner: SGDRunner, progress: ((RunProgress) -> Void)?) {
        self.runner = runner
        self.progress = progress
        tickEvery = max(1, runner.experiment.stepCount / 100)
    }

    mutating func record(step: Int, particles: [Double], risk r: Double? = nil) {
        let e = runner.experiment
        let m = e.particles, D = e.model.parameterDimension
        var finite = true
        for v in particles where !v.isFinite { finite = false; break }
        if !finite {
            diverged(step: step)
            return
        }
        let value = r ?? (try? runner.risk.risk(particles: particles)) ?? .nan
        if !value.isFinite {
            diverged(step: step)
            return
        }
        var norm2 = 0.0
        for v in particles { norm2 += v * v }
        let penalized = value + 0.5 * e.energy.lambda * norm2 / Double(m)
        var negEntropy: Double? = nil
        var free: Double? = nil
        if let beta = e.energy.beta, let estimator = runner.entropyEstimator {
            let h = estimator.negativeEntropy(points: particles.span, count: m, dimension: D)
            negEntropy = h
            free = penalized + h / beta
        }
        records.append(TrajectoryRecord(step: step, time: Double(step) * e.sgd.eta, risk: value,
                                        penalizedRisk: penalized, negativeEntropy: negEntropy,
                                        freeEnergy: free, particles: e.recordParticles ? particles : nil))
        lastParticles = particles
        steps = step
        progress?(RunProgress(step: step, totalSteps: e.stepCount, time: Double(step) * e.sgd.eta,
                              horizon: Double(e.stepCount) * e.sgd.eta, risk: value))
    }

    mutating func tick(step: Int) {
        guard let progress, step % tickEvery == 0, step > 0 else { return }
        let e = runner.experiment
        progress(RunProgress(step: step, totalSteps: e.stepCount, time: Double(step) * e.sgd.eta,
                             horizon: Double(e.stepCount) * e.sgd.eta, risk: records.last?.risk))
    }

    mutating func diverged(step: Int) {
        status = .diverged(step: step, time: Double(step) * runner.experiment.sgd.eta)
        steps = step
    }

    func finish() -> Trajectory {
        let e = runner.experiment
        // A run that diverged before its first record (a risk already infinite at t = 0) has no
        // last finite record: it ends where it started. Without this the final particles were
        // empty and writing them as an M x D array trapped.
        let final = lastParticles.isEmpty ? runner.initialParticles() : lastParticles
        return Trajectory(records: records, finalParticles: final, particleCount: e.particles,
                          parameterDimension: e.model.parameterDimension, steps: steps, status: status,
                          riskIsClosedForm: runner.risk.isClosedForm,
                          recordsFreeEnergy: e.energy.beta != nil && runner.entropyEstimator != nil)
    }
}
