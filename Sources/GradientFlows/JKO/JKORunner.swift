import Wasserstein

/// The state of a JKO run: particles or a grid density.
public enum JKOState: Sendable, Equatable {
    /// `M` particles (the empirical measure).
    case particles(PointCloud)
    /// Cell masses on a grid.
    case density(GridDensity)

    /// The dimension `D`.
    public var dimension: Int {
        switch self {
        case .particles(let p): return p.dimension
        case .density(let g): return g.grid.dimension
        }
    }

    /// Per-axis mean and variance.
    public var moments: (mean: [Double], variance: [Double]) {
        switch self {
        case .particles(let p): return ParticleJKO.moments(p)
        case .density(let g): return g.moments
        }
    }
}

/// A normal law `N(mean, diag(standardDeviation^2))`, the initial law of the oracle runs.
public struct NormalLaw: Sendable, Equatable {
    /// The mean, one entry per axis.
    public var mean: [Double]
    /// The standard deviation of each axis.
    public var standardDeviation: [Double]

    /// - Throws: `GradientFlowsError.dimensionMismatch(what:expected:actual:)` for lists of different
    ///   lengths; `GradientFlowsError.invalidParameter(name:value:requirement:)` for an empty mean,
    ///   a non-finite mean or a deviation that is not positive and finite.
    public init(mean: [Double], standardDeviation: [Double]) throws {
        guard !mean.isEmpty else { throw GradientFlowsError.invalidParameter(name: "dimension", value: 0, requirement: "a normal law needs a mean of dimension >= 1") }
        guard standardDeviation.count == mean.count else {
            throw GradientFlowsError.dimensionMismatch(what: "standard deviations against the mean", expected: mean.count, actual: standardDeviation.count)
        }
        for m in mean where !m.isFinite { throw GradientFlowsError.invalidParameter(name: "mean", value: m, requirement: "must be finite") }
        for s in standardDeviation where !(s > 0 && s.isFinite) {
            throw GradientFlowsError.invalidParameter(name: "standard deviation", value: s, requirement: "must be > 0 and finite")
        }
        self.mean = mean
        self.standardDeviation = standardDeviation
    }

    /// The dimension `D`.
    public var dimension: Int { mean.count }

    /// `count` equally weighted samples drawn with `Xoshiro256StarStar` seeded with `seed`
    /// (coordinates drawn point by point, axis by axis).
    public func sample(count: Int, seed: UInt64) throws -> PointCloud {
        guard count >= 1 else { throw GradientFlowsError.invalidParameter(name: "particles", value: Double(count), requirement: "need at least 1 particle") }
        var rng = Xoshiro256StarStar(seed: seed)
        let d = dimension
        var x = [Double](repeating: 0, count: count * d)
        for i in 0 ..< count { for k in 0 ..< d { x[i * d + k] = mean[k] + standardDeviation[k] * rng.nextGaussian() } }
        return try PointCloud(coordinates: x, dimension: d)
    }

    /// The law sampled at the points of `grid` (see ``GridDensity/normal(grid:mean:standardDeviation:)``).
    public func discretized(on grid: RegularGrid) throws -> GridDensity {
        try GridDensity.normal(grid: grid, mean: mean, standardDeviation: standardDeviation)
    }
}

/// The discretisation of a JKO run: which ``JKOScheme`` steps it, with what options.
///
/// Mapping from an experiment spec's `jko` section: `scheme = particle` with `transport = exact`
/// is `.particle(ParticleJKOOptions(transport: .exact))`; `transport = sinkhorn` with `epsilon`
/// is `ParticleJKOOptions(transport: .sinkhorn(epsilon: epsilon, options: ...))`. `scheme = grid` with `bounds` and
/// `points_per_axis` is `.grid(RegularGrid(...), GridJKOOptions(epsilon: epsilon))`: the grid scheme
/// is entropic by construction, `epsilon` (when given) is its blur `gamma`, and without it the
/// default epsilon applies (``GridJKO/defaultEpsilon(grid:tau:beta:)``).
public enum JKODiscretization: Sendable {
    /// Lagrangian: particles, any `D`.
    case particle(ParticleJKOOptions)
    /// Eulerian: a density on a grid, `D <= 3`.
    case grid(RegularGrid, GridJKOOptions)
}

/// Everything a JKO run needs besides the energy and the initial state.
public struct JKORunSettings: Sendable {
    /// The step `tau > 0`; time `t = k tau`.
    public var tau: Double
    /// The number of steps.
    public var steps: Int
    /// The scheme and its options.
    public var scheme: JKODiscretization
    /// Grid scheme only (and `beta` finite): compute the Gibbs measure `rho*` first and report
    /// `W2(rho_k, rho*)` in ``JKOStepReport/distanceToStationary`` every ``stationaryDistanceEvery`` steps.
    public var trackStationaryDistance: Bool
    /// How often to compute the distance to `rho*` (steps; the initial and final states always).
    public var stationaryDistanceEvery: Int
    /// The `L1` marginal tolerance of the Sinkhorn solves behind the distance to `rho*` (2-D).
    /// The distance comes from the potentials, whose error is second order in the marginal
    /// error: on the Ornstein-Uhlenbeck oracle (64 x 64 grid) `1e-6` and `1e-9` give the same
    /// `W2` to 12 digits, with a quarter fewer iterations.
    public var stationaryDistanceTolerance: Double
    /// Options of the Gibbs fixed point.
    public var gibbs: GibbsOptions
    /// When set, each report also carries the moment-based distance to the exact
    /// Ornstein-Uhlenbeck flow (``JKOStepReport/gaussianW2ToExactFlow``), from the initial state's
    /// own mean and deviations.
    public var oracle: OrnsteinUhlenbeckOracle?

    public init(tau: Double, steps: Int, scheme: JKODiscretization, trackStationaryDistance: Bool = false,
                stationaryDistanceEvery: Int = 1, stationaryDistanceTolerance: Double = 1e-6,
                gibbs: GibbsOptions = GibbsOptions(), oracle: OrnsteinUhlenbeckOracle? = nil) {
        self.tau = tau
        self.steps = steps
        self.scheme = scheme
        self.trackStationaryDistance = trackStationaryDistance
        self.stationaryDistanceEvery = stationaryDistanceEvery
        self.stationaryDistanceTolerance = stationaryDistanceTolerance
        self.gibbs = gibbs
        self.oracle = oracle
    }
}

/// What a JKO run produced.
public struct JKORunResult: Sendable {
    /// One report per state, step 0 (the initial state) to the last step.
    public var reports: [JKOStepReport]
    /// The final state.
    public var final: JKOState
    /// The Gibbs measure, when the distance to it was tracked.
    public var stationary: GibbsResult?
    /// Grid scheme: the blur `gamma` used, its diffusion `gamma/(4 tau)`, and whether it was compensated.
    public var gridBlur: (gamma: Double, diffusion: Double, compensated: Bool)?
    /// True when every step's inner problem converged.
    public var allConverged: Bool { reports.allSatisfy(\.converged) }
}

/// What a ``JKORunner`` is busy with, for progress displays: on a 2-D grid the distance to the
/// Gibbs measure can take longer than the steps themselves, and a display should say so.
public enum JKORunPhase: Sendable, Equatable {
    /// Solving for the Gibbs measure `rho*` (once, before the first step).
    case stationaryMeasure
    /// JKO step `k` (1-based).
    case step(Int)
    /// `W2(rho_k, rho*)` after step `k` (0: the initial state).
    case distanceToStationary(Int)
}

/// Runs a JKO scheme for a number of steps: the entry point the `wasserstein jko` command maps onto.
///
/// ```swift
/// let energy = try FreeEnergy.ornsteinUhlenbeck(dimension: 1, lambda: 1, beta: 2)
/// let grid = try RegularGrid(dimension: 1, lower: -4, upper: 4, pointsPerAxis: 161)
/// let runner = try JKORunner(energy: energy,
///                            settings: JKORunSettings(tau: 0.05, steps: 40, scheme: .grid(grid, GridJKOOptions())))
/// let start = try NormalLaw(mean: [1], standardDeviation: [0.5]).discretized(on: grid)
/// let result = try runner.run(from: .density(start)) { report, _ in print(report.step, report.freeEnergy) }
/// ```
public struct JKORunner: Sendable {
    /// The energy.
    public let energy: FreeEnergy
    /// The settings.
    public let settings: JKORunSettings

    /// Validates the settings against the energy.
    ///
    /// - Throws: `GradientFlowsError.invalidParameter(name:value:requirement:)` for `tau <= 0`,
    ///   `steps < 0`, a non-positive distance period, a stationary distance without entropy or on
    ///   the particle scheme, and everything ``GridJKO/init(energy:tau:grid:options:)`` and
    ///   ``ParticleJKO/init(energy:tau:options:)`` reject.
    public init(energy: FreeEnergy, settings: JKORunSettings) throws {
        guard settings.tau > 0, settings.tau.isFinite else {
            throw GradientFlowsError.invalidParameter(name: "tau", value: settings.tau, requirement: "the JKO step tau must be > 0 and finite")
        }
        guard settings.steps >= 0 else {
            throw GradientFlowsError.invalidParameter(name: "steps", value: Double(settings.steps), requirement: "must be >= 0")
        }
        guard settings.stationaryDistanceEvery >= 1 else {
            throw GradientFlowsError.invalidParameter(name: "stationary distance period", value: Double(settings.stationaryDistanceEvery), requirement: "must be >= 1")
        }
        guard settings.stationaryDistanceTolerance > 0, settings.stationaryDistanceTolerance.isFinite else {
            throw GradientFlowsError.invalidParameter(name: "stationary distance tolerance", value: settings.stationaryDistanceTolerance, requirement: "must be > 0 and finite")
        }
        if settings.trackStationaryDistance {
            guard energy.inverseTemperature != nil else {
                throw GradientFlowsError.invalidParameter(name: "beta", value: .infinity, requirement: "the distance to the Gibbs measure needs a finite beta")
            }
            guard case .grid = settings.scheme else {
                throw GradientFlowsError.unsupported("the distance to the Gibbs measure is computed on the grid scheme only")
            }
        }
        // Build once to validate everything the schemes check.
        switch settings.scheme {
        case .particle(let options): _ = try ParticleJKO(energy: energy, tau: settings.tau, options: options)
        case .grid(let grid, let options): _ = try GridJKO(energy: energy, tau: settings.tau, grid: grid, options: options)
        }
        self.energy = energy
        self.settings = settings
    }

    /// Runs from `initial`, calling `progress` after the initial state and after every step,
    /// and `phase` before each piece of work starts.
    ///
    /// - Throws: `GradientFlowsError.dimensionMismatch(what:expected:actual:)` or
    ///   `GradientFlowsError.unsupported(_:)` when the initial state does not fit the scheme
    ///   (particles for the grid scheme, a density on another grid);
    ///   `GradientFlowsError.invalidParameter(name:value:requirement:)` when the energy of the
    ///   initial state is not finite; whatever the steps throw. Non-convergence is reported per step.
    public func run(from initial: JKOState,
                    progress: ((JKOStepReport, JKOState) -> Void)? = nil,
                    phase: ((JKORunPhase) -> Void)? = nil) throws -> JKORunResult {
        guard initial.dimension == energy.dimension else {
            throw GradientFlowsError.dimensionMismatch(what: "dimension of the initial state against the energy", expected: energy.dimension, actual: initial.dimension)
        }
        let (mean0, variance0) = initial.moments
        let deviation0 = variance0.map { $0.squareRoot() }
        func annotate(_ report: inout JKOStepReport) {
            guard let oracle = settings.oracle else { return }
            let t = report.time
            let exactMean = mean0.map { oracle.mean(at: t, initial: $0) }
            let exactDeviation = deviation0.map { oracle.standardDeviation(at: t, initial: $0) }
            report.gaussianW2ToExactFlow = gaussianW2Diagonal(mean1: report.mean, standardDeviation1: report.variance.map { $0.squareRoot() },
                                                              mean2: exactMean, standardDeviation2: exactDeviation)
        }
        switch settings.scheme {
        case .particle(let options):
            guard case .particles(let particles) = initial else {
                throw GradientFlowsError.unsupported("the particle scheme starts from particles, not from a grid density")
            }
            var scheme = try ParticleJKO(energy: energy, tau: settings.tau, options: options)
            let (reports, final) = try Self.run(&scheme, from: particles, steps: settings.steps, annotate: { r, _ in annotate(&r) },
                                                wrap: JKOState.particles, progress: progress, phase: phase)
            return JKORunResult(reports: reports, final: .particles(final), stationary: nil, gridBlur: nil)

        case .grid(let grid, let options):
            guard case .density(let density) = initial else {
                throw GradientFlowsError.unsupported("the grid scheme starts from a grid density, not from particles")
            }
            guard density.grid == grid else {
                throw GradientFlowsError.unsupported("the initial density lives on another grid than the scheme's")
            }
            var scheme = try GridJKO(energy: energy, tau: settings.tau, grid: grid, options: options)
            var stationary: GibbsResult?
            var distance: GridWassersteinDistance?
            if settings.trackStationaryDistance {
                phase?(.stationaryMeasure)
                stationary = try GibbsFixedPoint.solve(energy: energy, grid: grid, options: settings.gibbs)
                distance = try GridWassersteinDistance(
                    grid: grid, method: GridWassersteinDistance.automaticMethod(for: grid, tolerance: settings.stationaryDistanceTolerance))
            }
            let steps = settings.steps, every = settings.stationaryDistanceEvery
            // The grid scheme's extra report: W2 to the Gibbs measure, at the initial and final
            // states and every `every` steps.
            func annotateGrid(_ report: inout JKOStepReport, _ density: GridDensity) throws {
                annotate(&report)
                guard let target = stationary?.density, var d = distance else { return }
                if report.step == 0 || report.step == steps || report.step % every == 0 {
                    phase?(.distanceToStationary(report.step))
                    report.distanceToStationary = try d.distance(density, target).w2
                    distance = d
                }
            }
            let (reports, final) = try Self.run(&scheme, from: density, steps: steps, annotate: annotateGrid,
                                                wrap: JKOState.density, progress: progress, phase: phase)
            return JKORunResult(reports: reports, final: .density(final), stationary: stationary,
                                gridBlur: (scheme.epsilon, scheme.entropicDiffusion, scheme.entropicDiffusionIsCompensated))
        }
    }

    /// The one run loop of every scheme: the initial report (its energy must be finite), then
    /// `steps` steps, each report annotated (oracle distances, distance to `rho*`) and passed to
    /// `progress` with the state.
    static func run<Scheme: JKOScheme>(_ scheme: inout Scheme, from initial: Scheme.State, steps: Int,
                                       annotate: (inout JKOStepReport, Scheme.State) throws -> Void,
                                       wrap: (Scheme.State) -> JKOState,
                                       progress: ((JKOStepReport, JKOState) -> Void)?,
                                       phase: ((JKORunPhase) -> Void)?) throws -> (reports: [JKOStepReport], final: Scheme.State) {
        var reports = [JKOStepReport]()
        reports.reserveCapacity(steps + 1)
        var state = initial
        var report = scheme.initialReport(state)
        try requireFiniteEnergy(report)
        try annotate(&report, state)
        reports.append(report)
        progress?(report, wrap(state))
        for k in stride(from: 1, through: steps, by: 1) {
            phase?(.step(k))
            let step = try scheme.advance(from: state, index: k)
            state = step.state
            report = step.report
            try annotate(&report, state)
            reports.append(report)
            progress?(report, wrap(state))
        }
        return (reports, state)
    }

    /// A run cannot start from a state whose energy is infinite or NaN (parameters near the top
    /// of the Double range): say so, instead of letting the first inner solve fail obscurely.
    static func requireFiniteEnergy(_ report: JKOStepReport) throws {
        guard report.freeEnergy.isFinite else {
            throw GradientFlowsError.invalidParameter(
                name: "initial free energy", value: report.freeEnergy,
                requirement: "the energy of the initial state must be finite; the initial law or the energy's parameters are too large for double precision")
        }
    }
}
