import GradientFlows
import Wasserstein

/// Which particle dynamics to run (`sgd.kind`).
public enum SGDKind: Sendable, Equatable {
    /// One-pass SGD: a fresh sample `(x_k, y_k)` at every step.
    case online
    /// Multi-pass SGD on a fixed training set of `samples` pairs drawn once from the seed; each
    /// step uses one pair drawn uniformly **with replacement** (no epochs).
    case multipass(samples: Int)
    /// The population gradient flow: the exact `grad Psi(theta_j; empirical measure)` from the
    /// kernels, explicit Euler in `t`.
    case population
}

/// Step size, kind and noise of the dynamics (`sgd.eta`, `sgd.kind`, `sgd.noise`).
public struct SGDSettings: Sendable {
    /// The step `eta > 0`; time advances by `eta` per step (`t = k eta`).
    public var eta: Double
    public var kind: SGDKind
    /// Add `sqrt(2 eta / beta) g_j` to every particle at every step (needs a finite `beta`).
    public var noise: Bool

    public init(eta: Double, kind: SGDKind = .online, noise: Bool = false) {
        self.eta = eta
        self.kind = kind
        self.noise = noise
    }
}

/// `energy.lambda` (weight decay) and `energy.beta` (inverse temperature; `nil` for no entropy).
public struct EnergyParameters: Sendable {
    public var lambda: Double
    public var beta: Double?
    public init(lambda: Double = 0, beta: Double? = nil) {
        self.lambda = lambda
        self.beta = beta
    }
}

/// Everything one particle run needs; the fields mirror the experiment-spec keys one to one.
///
/// | spec key | field |
/// |---|---|
/// | `model.*` | ``model`` |
/// | `teacher` | ``teacher`` |
/// | `initialization.*` | ``initialization`` |
/// | `energy.lambda`, `energy.beta` | ``energy`` |
/// | `particles` | ``particles`` |
/// | `horizon` | ``horizon`` |
/// | `seed` | ``seed`` |
/// | `sgd.eta`, `sgd.kind`, `sgd.noise` (`sgd.samples` for multipass) | ``sgd`` |
/// | `record_every` | ``recordEvery`` |
///
/// Steps: `round(horizon / eta)`, so the last recorded time is that count times `eta`. Records
/// are taken every `max(1, round(record_every / eta))` steps, at step 0 and at the last step.
///
/// `sgd.noise = true` needs a finite `energy.beta`. A finite `beta` with `sgd.noise = false` is
/// allowed: the dynamics are then noiseless, while the records still carry
/// `F_{lambda,beta}` (when an entropy estimator is given), which such a run does not minimise.
public struct SGDExperiment: Sendable {
    public var model: NetworkModel
    public var teacher: Teacher
    public var initialization: InitialLaw
    public var energy: EnergyParameters
    /// The number of particles `M >= 1`.
    public var particles: Int
    /// The final time `T >= 0` (units of `t`).
    public var horizon: Double
    public var seed: UInt64
    public var sgd: SGDSettings
    /// The time between records (`> 0`, units of `t`).
    public var recordEvery: Double
    /// Keep the particles in every record (else only in the final state). Default true.
    public var recordParticles: Bool = true
    /// How `V`, `U` are evaluated (closed forms or quadrature).
    public var kernelOptions: KernelOptions = KernelOptions()
    /// Split work over the cores (results are bitwise identical either way).
    public var parallel: Bool = true
    /// Start from these particles (row-major `M x D`) instead of sampling ``initialization``.
    public var initialParticles: [Double]? = nil
    /// `M d` from which one online step's sweep is split over the cores (tests lower it to
    /// exercise the split path). Measured on the 2-core machine (`bench-meanfield --only
    /// online-split`): at `M d = 2e4` a step takes 5 us and the partner loses (172k against
    /// 214k steps/s serial); at `4e5` it wins by 1.11x (9.7k against 8.7k), the two virtual
    /// cores sharing their floating-point units.
    var onlineParallelThreshold = 400_000
    /// How the online engine manages its partner thread (tests shrink it to exercise every path).
    var onlinePartner = OnlinePartnerPolicy()

    public init(model: NetworkModel, teacher: Teacher, initialization: InitialLaw,
                energy: EnergyParameters = EnergyParameters(), particles: Int, horizon: Double,
                seed: UInt64, sgd: SGDSettings, recordEvery: Double) {
        self.model = model
        self.teacher = teacher
        self.initialization = initialization
        self.energy = energy
        self.particles = particles
        self.horizon = horizon
        self.seed = seed
        self.sgd = sgd
        self.recordEvery = recordEvery
    }

    /// The number of steps `round(horizon / eta)` (at most `1e12` once ``validate()`` passed;
    /// clamped there before, so that reading it never traps).
    public var stepCount: Int { Int(clampingCount: (horizon / sgd.eta).rounded(), limit: Self.maximumSteps) }
    /// Steps between records, `max(1, round(record_every / eta))`, at most ``stepCount``: a
    /// `record_every` beyond the horizon records the start and the end only.
    public var recordStride: Int {
        max(1, Int(clampingCount: (recordEvery / sgd.eta).rounded(), limit: max(1, stepCount)))
    }

    /// The largest number of steps a run accepts.
    public static let maximumSteps = 1_000_000_000_000

    /// Checks every setting; the error names the spec key at fault.
    public func validate() throws {
        let d = model.inputDimension
        try require(d >= 1, .inputDimension, "\(d)", "must be >= 1")
        try teacher.validate(inputDimension: d)
        try initialization.validate(inputDimension: d)
        try require(energy.lambda.isFinite && energy.lambda >= 0, .weightDecay, "\(energy.lambda)", "must be finite and >= 0")
        if let beta = energy.beta {
            try require(beta.isFinite && beta > 0, .inverseTemperature, "\(beta)", "must be > 0 and finite (nil for no entropy)")
        }
        try require(particles >= 1, .particleCount, "\(particles)", "must be >= 1")
        try require(sgd.eta.isFinite && sgd.eta > 0, .stepSize, "\(sgd.eta)", "must be > 0 and finite")
        try require(horizon.isFinite && horizon >= 0, .horizon, "\(horizon)", "must be finite and >= 0")
        try require(horizon / sgd.eta <= Double(Self.maximumSteps), .stepSize, "\(sgd.eta)",
                    "horizon / eta = \(horizon / sgd.eta) steps, above the limit of 1e12; raise eta or shorten the horizon")
        try require(recordEvery.isFinite && recordEvery > 0, .recordInterval, "\(recordEvery)", "must be > 0 and finite")
        if sgd.noise {
            try require(energy.beta != nil, .noise, "true", "noisy dynamics need a finite inverse temperature beta")
        }
        if case .multipass(let m) = sgd.kind {
            try require(m >= 1, .trainingSamples, "\(m)", "the multipass training set needs >= 1 samples")
        }
        if let nodes = kernelOptions.quadratureNodes {
            try require((1 ... 256).contains(nodes), .quadratureNodes, "\(nodes)", "must be in 1 ... 256")
        }
        if let p = initialParticles {
            let D = model.parameterDimension
            if p.count != particles * D {
                throw MeanFieldError.lengthMismatch(parameter: .initialParticles, expected: particles * D, actual: p.count)
            }
            try requireFinite(p, .initialParticles)
        }
    }
}

/// One record of a run, at time `t = step * eta`.
public struct TrajectoryRecord: Sendable {
    public var step: Int
    public var time: Double
    /// The exact finite-`M` population risk `R_M` (closed form, or quadrature: see
    /// ``Trajectory/riskIsClosedForm``).
    public var risk: Double
    /// `R_M + (lambda/2) (1/M) sum_j |theta_j|^2`.
    public var penalizedRisk: Double
    /// The estimate of `int rho log rho` from the entropy estimator, when `beta` is finite and an
    /// estimator was given.
    public var negativeEntropy: Double?
    /// `F_{lambda,beta} = penalizedRisk + negativeEntropy / beta`, under the same conditions.
    public var freeEnergy: Double?
    /// The particles, row-major `M x D` (when ``SGDExperiment/recordParticles``).
    public var particles: [Double]?
}

/// How a run ended.
public enum RunStatus: Sendable, Equatable {
    case completed
    /// A particle or the network output became NaN or infinite (step too large, or a risk
    /// already infinite at the start); the run stopped at `step`, the last record holds the
    /// last finite state, and ``Trajectory/finalParticles`` are that record's particles (the
    /// initial particles when the run diverged before its first record).
    case diverged(step: Int, time: Double)
}

/// What a run produced.
public struct Trajectory: Sendable {
    public var records: [TrajectoryRecord]
    /// The particles at the end, row-major `M x D` (with a trained second layer a row is
    /// `[a, w_1, ..., w_d]`); after a divergence, those of the last finite record (see
    /// ``RunStatus/diverged(step:time:)``).
    public var finalParticles: [Double]
    public var particleCount: Int
    public var parameterDimension: Int
    /// Steps taken.
    public var steps: Int
    public var status: RunStatus
    /// Whether the recorded risks come from closed forms (else quadrature, see
    /// ``PopulationRisk``).
    public var riskIsClosedForm: Bool
    /// Whether free energies were recorded (finite `beta` and an entropy estimator).
    public var recordsFreeEnergy: Bool
}

/// Progress of a run, for a progress line.
public struct RunProgress: Sendable {
    public var step: Int
    public var totalSteps: Int
    public var time: Double
    public var horizon: Double
    /// The most recent recorded risk.
    public var risk: Double?
    public var fractionDone: Double { totalSteps == 0 ? 1 : Double(step) / Double(totalSteps) }
}
