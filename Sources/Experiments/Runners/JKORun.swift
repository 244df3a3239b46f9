import Foundation
import GradientFlows
import MeanField
import Wasserstein

/// `wasserstein jko`: runs the JKO scheme of a spec and writes `trajectory.csv`,
/// `particles_final.npy` (particle scheme) or `density_final.npy` + `grid.json` (grid scheme),
/// and `summary.json`.
public enum JKORun {
    /// What a run produced.
    public struct Output: Sendable {
        public var result: JKORunResult
        /// The particle states at every step (particle scheme, when asked for), row-major `M x D`.
        public var states: [[Double]]
        public var seconds: Double
        public var summary: Summary
    }

    /// `summary.json` of a JKO run.
    public struct Summary: RunSummary {
        public let command = "jko"
        /// `particle` or `grid`.
        public var scheme: String
        /// The particle scheme's transport (`exact`, `sinkhorn`), or `entropic (grid)`.
        public var transport: String
        public var tau: Double
        public var steps: Int
        /// The number of particles (particle scheme only).
        public var particles: Int?
        /// `steps * tau`.
        public var horizon: Double
        /// `quadratic` or `mean-field risk`.
        public var energy: String
        public var lambda: Double
        /// `nil` (written `null`) for the infinite temperature, no entropy term.
        @NullIfAbsent public var beta: Double?
        public var parameterDimension: Int
        public var seed: Int
        @NullIfAbsent public var energyInitial: Double?
        public var energyFinal: Double
        /// The risk of the initial and final states (specs with a model only).
        public var riskInitial: Double?
        public var riskFinal: Double?
        /// Whether the free energy never rose by more than `1e-12` relative from one step to the next.
        public var energyNonincreasing: Bool
        public var allStepsConverged: Bool
        public var innerIterations: Int
        public var transportSolves: Int
        public var transportSeconds: Double
        public var energySeconds: Double
        public var seconds: Double
        /// The grid scheme's blur of the heat semigroup.
        public var gridBlur: GridBlur?
        /// The grid scheme's Gibbs fixed point `rho*`, when tracked.
        public var stationary: Stationary?
        /// The Gaussian `W2` to the exact Ornstein-Uhlenbeck flow at the end (quadratic oracle).
        public var w2FinalToExactFlow: Double?

        /// The entropic blur of the grid scheme (`grid_blur`).
        public struct GridBlur: RunSummary {
            public var gamma: Double
            public var diffusion: Double
            public var compensated: Bool
        }

        /// The Gibbs fixed point `rho*` of the grid scheme and the final distance to it (`stationary`).
        public struct Stationary: RunSummary {
            public var iterations: Int
            public var converged: Bool
            public var residual: Double
            public var freeEnergy: Double
            /// The risk of `rho*` (runs with a risk functional on the grid).
            public var risk: Double?
            @NullIfAbsent public var w2FinalToStationary: Double?
        }
    }

    /// The free energy of the spec: the mean-field risk plus weight decay (or the quadratic
    /// potential of the oracle), plus `(1/beta) int rho log rho` when `beta` is finite.
    public static func energy(spec: ExperimentSpec) throws -> FreeEnergy {
        switch spec.energy.potential {
        case .quadratic:
            let smooth = try QuadraticPotential(dimension: spec.parameterDimension, lambda: spec.energy.lambda)
            return try FreeEnergy(smooth: smooth, inverseTemperature: spec.energy.beta)
        case .risk:
            let smooth = try MeanFieldEnergy(risk: spec.populationRisk(), weightDecay: spec.energy.lambda)
            return try FreeEnergy(smooth: smooth, inverseTemperature: spec.energy.beta)
        }
    }

    /// The initial particles: for a model, exactly those the particle dynamics start from (same
    /// seed, same stream); for the oracle, a draw from the normal initial law.
    public static func initialParticles(spec: ExperimentSpec) throws -> PointCloud {
        let D = spec.parameterDimension
        let values: [Double]
        if spec.model != nil {
            var g = Xoshiro256StarStar(seed: spec.seed)
            values = spec.initialLaw.sample(model: try spec.networkModel(), count: spec.particles, using: &g)
        } else {
            let law = try NormalLaw(mean: spec.initialization.w.mean, standardDeviation: [Double](repeating: spec.initialization.w.std, count: D))
            return try law.sample(count: spec.particles, seed: spec.seed)
        }
        return try PointCloud(coordinates: values, dimension: D, name: "initial particles")
    }

    /// The grid of a grid-scheme spec.
    public static func grid(spec: ExperimentSpec) throws -> RegularGrid {
        guard let j = spec.jko, let bounds = j.bounds, let n = j.pointsPerAxis else {
            throw ExperimentError.invalidSpec(key: "jko.bounds", reason: "the grid scheme needs bounds and points_per_axis")
        }
        return try RegularGrid(lowerBounds: bounds.map { $0[0] }, upperBounds: bounds.map { $0[1] },
                               pointsPerAxis: [Int](repeating: n, count: bounds.count))
    }

    /// The normal initial law on the grid: per axis `(a.mean, a.std)` then `(w.mean, w.std)`.
    public static func initialDensity(spec: ExperimentSpec, grid: RegularGrid) throws -> GridDensity {
        var mean = [Double](), std = [Double]()
        if let a = spec.initialization.a { mean.append(a.mean); std.append(a.std) }
        mean += spec.initialization.w.mean
        std += [Double](repeating: spec.initialization.w.std, count: spec.initialization.w.mean.count)
        for (k, s) in std.enumerated() where !(s > 0) {
            throw ExperimentError.invalidSpec(key: spec.initialization.a != nil && k == 0 ? "initialization.a.std" : "initialization.w.std",
                                              reason: "the grid scheme needs a positive standard deviation (a point mass has no density)")
        }
        // A law mostly outside the grid would be squeezed onto its edge: a different problem, and
        // one whose entropic solves converge very slowly. Refuse it, naming the key to change.
        let lower = grid.lowerBounds, upper = grid.upperBounds
        for k in 0 ..< mean.count {
            // The mass of N(mean_k, std_k^2) outside [low, high], each tail by erfc (no cancellation).
            let below = 0.5 * erfc((mean[k] - lower[k]) / (std[k] * 2.0.squareRoot()))
            let above = 0.5 * erfc((upper[k] - mean[k]) / (std[k] * 2.0.squareRoot()))
            let outside = below + above
            if outside > maximumMassOutsideBounds {
                let isA = spec.initialization.a != nil && k == 0
                let key = isA ? "initialization.a.mean" : "initialization.w.mean"
                throw ExperimentError.invalidSpec(
                    key: key, reason: "the initial law N(\(mean[k]), \(std[k])^2) on axis \(k) has \(String(format: "%.3g", 100 * outside))% of its mass outside jko.bounds [\(lower[k]), \(upper[k])] (at most \(100 * maximumMassOutsideBounds)%): widen the bounds or move the mean")
            }
        }
        return try NormalLaw(mean: mean, standardDeviation: std).discretized(on: grid)
    }

    /// The largest share of the initial law's mass that may fall outside the grid, per axis.
    public static let maximumMassOutsideBounds = 0.01

    /// The run settings of the spec's `jko` section.
    ///
    /// - Parameters:
    ///   - spec: the experiment (its `jko` section is required).
    ///   - scheme: run this scheme instead of the spec's (`compare` runs both).
    ///   - trackStationary: overrides `jko.track_stationary` (`compare` has no use for `rho*`).
    ///   - entropyEstimator: the particle scheme's entropy estimator (default: Silverman's
    ///     kernel estimate when `beta` is finite).
    public static func settings(spec: ExperimentSpec, scheme: JKOSpec.Scheme? = nil, trackStationary: Bool? = nil,
                                entropyEstimator: (any EntropyEstimator)? = nil) throws -> JKORunSettings {
        guard var j = spec.jko else { throw ExperimentError.invalidSpec(key: "jko", reason: "missing (needed by this command)") }
        if let scheme { j.scheme = scheme }
        let steps = max(1, try ExperimentSpec.stepCount(spec.horizon, over: j.tau, key: "jko.tau", what: "horizon / jko.tau"))
        var oracle: OrnsteinUhlenbeckOracle? = nil
        if spec.energy.potential == .quadratic, let beta = spec.energy.beta {
            oracle = try OrnsteinUhlenbeckOracle(lambda: spec.energy.lambda, beta: beta)
        }
        switch j.scheme {
        case .particle:
            var options = ParticleJKOOptions()
            if let e = entropyEstimator ?? Defaults.entropyEstimator(dimension: spec.parameterDimension) { options.entropyEstimator = e }
            options.transport = j.transport
            if case .sinkhorn(let epsilon, var sinkhorn) = j.transport, sinkhorn.memoryLimit == nil {
                // The geometry choice within the run's memory limit (spec key or --memory-limit).
                sinkhorn.memoryLimit = spec.memoryLimit
                options.transport = .sinkhorn(epsilon: epsilon, options: sinkhorn)
            }
            return JKORunSettings(tau: j.tau, steps: steps, scheme: .particle(options), oracle: oracle)
        case .grid:
            let g = try grid(spec: spec)
            let track = spec.energy.beta != nil && (trackStationary ?? j.trackStationary)
            return JKORunSettings(tau: j.tau, steps: steps, scheme: .grid(g, GridJKOOptions(epsilon: j.epsilon)),
                                  trackStationaryDistance: track, stationaryDistanceEvery: stationaryDistancePeriod(steps: steps),
                                  oracle: oracle)
        }
    }

    /// Steps between two distances to `rho*`: about five along the run besides the initial and
    /// final states. On a 2-D grid each distance is a long-range Sinkhorn problem, tens of times
    /// a JKO step (about 0.6 s against 0.016 s on 64 x 64 cells), so the distances set the run's time.
    public static func stationaryDistancePeriod(steps: Int) -> Int { max(1, steps / 5) }

    /// Runs the JKO scheme of `spec`; writes the result files when `directory` is given.
    ///
    /// - Parameters:
    ///   - spec: the experiment (its `jko` section is required).
    ///   - directory: where to write the files; `nil` writes nothing.
    ///   - scheme: run this scheme instead of the spec's.
    ///   - trackStationary: overrides `jko.track_stationary`.
    ///   - keepStates: keep the particles of every step (for comparisons).
    ///   - start: start the particle scheme from these particles instead of a draw from the spec.
    ///   - progress: called after every step with the fraction done and a status text.
    public static func run(spec: ExperimentSpec, directory: OutputDirectory?, scheme: JKOSpec.Scheme? = nil,
                           trackStationary: Bool? = nil, keepStates: Bool = false, initialParticles start: PointCloud? = nil,
                           progress: (@Sendable (Double, String) -> Void)? = nil) throws -> Output {
        let energy = try energy(spec: spec)
        let settings = try settings(spec: spec, scheme: scheme, trackStationary: trackStationary)
        try spec.checkMemory(spec.jkoMemory(scheme: scheme, particles: start?.count, keepStates: keepStates))
        let jkoSpec = try spec.jkoSection()
        let schemeName = (scheme ?? jkoSpec.scheme).rawValue
        let runner = try ExperimentError.namingBlur(key: "jko.epsilon") { try JKORunner(energy: energy, settings: settings) }
        let initial: JKOState
        switch settings.scheme {
        case .particle:
            if let start, start.dimension != spec.parameterDimension {
                throw WassersteinError.dimensionMismatch(expected: spec.parameterDimension, actual: start.dimension)
            }
            initial = .particles(try start ?? initialParticles(spec: spec))
        case .grid(let g, _): initial = .density(try initialDensity(spec: spec, grid: g))
        }
        let clock = ContinuousClock()
        let start = clock.now
        var states = [[Double]]()
        var work = progress.map { _ in WorkEstimate(settings: settings) }
        let result = try runner.run(from: initial, progress: { report, state in
            if keepStates, case .particles(let p) = state { states.append(p.coordinates) }
            guard let progress, var w = work else { return }
            w.finishPhase()
            work = w
            progress(w.fraction, "JKO step \(report.step)/\(settings.steps) t=\(String(format: "%.3f", report.time)) F=\(String(format: "%.5g", report.freeEnergy))")
        }, phase: { phase in
            guard let progress, var w = work else { return }
            w.start(phase)
            work = w
            switch phase {
            case .stationaryMeasure: progress(w.fraction, "Gibbs fixed point rho*")
            case .step(let k): progress(w.fraction, "JKO step \(k)/\(settings.steps)")
            case .distanceToStationary(let k):
                progress(w.fraction, "W2 to rho* after step \(k) (\(w.distancesDone + 1)/\(w.distanceCount))")
            }
        })
        let seconds = (clock.now - start).timeInSeconds
        let lambda = spec.energy.lambda
        let hasModel = spec.model != nil

        func risk(_ r: JKOStepReport) -> Double { JKORun.risk(of: r, lambda: lambda) }
        let last = result.reports.last!
        let (gridBlur, stationary) = gridSummary(result)
        let summary = Summary(
            scheme: schemeName,
            transport: schemeName == "grid" ? "entropic (grid)" : jkoSpec.transport.name,
            tau: jkoSpec.tau,
            steps: settings.steps,
            particles: { if case .particles = initial { return spec.particles } else { return nil } }(),
            horizon: Double(settings.steps) * jkoSpec.tau,
            energy: spec.energy.potential == .quadratic ? "quadratic" : "mean-field risk",
            lambda: lambda,
            beta: spec.energy.beta,
            parameterDimension: spec.parameterDimension,
            seed: Int(truncatingIfNeeded: spec.seed),
            energyInitial: result.reports.first?.freeEnergy,
            energyFinal: last.freeEnergy,
            riskInitial: hasModel ? result.reports.first.map(risk) : nil,
            riskFinal: hasModel ? risk(last) : nil,
            energyNonincreasing: zip(result.reports, result.reports.dropFirst()).allSatisfy { $1.freeEnergy <= $0.freeEnergy + 1e-12 * max(1, abs($0.freeEnergy)) },
            allStepsConverged: result.allConverged,
            innerIterations: result.reports.reduce(0) { $0 + $1.innerIterations },
            transportSolves: result.reports.reduce(0) { $0 + $1.transportSolves },
            transportSeconds: result.reports.reduce(0) { $0 + $1.transportSeconds },
            energySeconds: result.reports.reduce(0) { $0 + $1.energySeconds },
            seconds: seconds,
            gridBlur: gridBlur,
            stationary: stationary,
            w2FinalToExactFlow: last.gaussianW2ToExactFlow)

        if let directory {
            var header = ["t", "step", "energy", "smooth_energy"]
            if hasModel { header.append("risk") }
            let hasEntropy = spec.energy.beta != nil
            if hasEntropy { header.append("negative_entropy") }
            header += ["w2_step", "inner_iterations", "transport_solves", "converged", "residual"]
            let tracksStationary = result.stationary != nil
            if tracksStationary { header.append("w2_to_stationary") }
            if settings.oracle != nil { header.append("w2_to_exact_flow") }
            header.append("seconds")
            let rows = result.reports.map { r -> [Double] in
                var row = [CSVFormat.cleanTime(r.time), Double(r.step), r.freeEnergy, r.smoothEnergy]
                if hasModel { row.append(risk(r)) }
                if hasEntropy { row.append(r.negativeEntropy ?? .nan) }
                row += [r.w2Step, Double(r.innerIterations), Double(r.transportSolves),
                        r.converged ? 1 : 0, r.residual]
                if tracksStationary { row.append(r.distanceToStationary ?? .nan) }
                if settings.oracle != nil { row.append(r.gaussianW2ToExactFlow ?? .nan) }
                row.append(r.totalSeconds)
                return row
            }
            try directory.writeCSV("trajectory.csv", header: header, rows: rows)
            switch result.final {
            case .particles(let p):
                try directory.writeMatrix("particles_final.npy", rows: p.count, columns: p.dimension, values: p.coordinates)
            case .density(let g):
                try writeDensity(g, name: "density_final.npy", directory: directory)
                try directory.writeSummary(gridDescription(g.grid), name: "grid.json")
                if let st = result.stationary { try writeDensity(st.density, name: "density_stationary.npy", directory: directory) }
            }
            try directory.writeSummary(summary)
        }
        return Output(result: result, states: states, seconds: seconds, summary: summary)
    }

    /// The fraction of a run done, by time: the time spent over the time spent plus the time
    /// the remaining steps and distances to `rho*` will take at the mean durations seen so far
    /// (a distance can cost tens of steps, so counting work units would mislead).
    struct WorkEstimate {
        let steps: Int
        let distanceCount: Int
        var stepsDone = 0, distancesDone = 0
        var stepSeconds = 0.0, distanceSeconds = 0.0
        var current: JKORunPhase?
        var phaseStart = ContinuousClock.now

        init(settings: JKORunSettings) {
            steps = settings.steps
            if settings.trackStationaryDistance, case .grid = settings.scheme {
                // Steps 0, every, 2 every, ... and the last one.
                let every = settings.stationaryDistanceEvery
                distanceCount = settings.steps / every + 1 + (settings.steps % every == 0 ? 0 : 1)
            } else {
                distanceCount = 0
            }
        }

        mutating func start(_ phase: JKORunPhase) {
            finishPhase()
            current = phase
            phaseStart = .now
        }

        /// Books the time since the current phase started to its kind.
        mutating func finishPhase() {
            let elapsed = (ContinuousClock.now - phaseStart).timeInSeconds
            switch current {
            case .step?: stepSeconds += elapsed; stepsDone += 1
            case .distanceToStationary?: distanceSeconds += elapsed; distancesDone += 1
            case .stationaryMeasure?, nil: break
            }
            current = nil
            phaseStart = .now
        }

        var fraction: Double {
            let meanStep = stepsDone > 0 ? stepSeconds / Double(stepsDone) : nil
            let meanDistance = distancesDone > 0 ? distanceSeconds / Double(distancesDone) : nil
            // Until both kinds have been timed, the unknown one is taken to cost as much as the other.
            guard let step = meanStep ?? meanDistance, let distance = meanDistance ?? meanStep else { return 0 }
            let spent = stepSeconds + distanceSeconds
            let left = Double(steps - stepsDone) * step + Double(distanceCount - distancesDone) * distance
            return spent + left > 0 ? spent / (spent + left) : 0
        }
    }

    /// The risk `R(rho_k)` of a mean-field JKO state: the smooth energy minus the weight decay
    /// `(lambda/2) int |theta|^2`, whose value follows from the per-axis moments of the report.
    public static func risk(of report: JKOStepReport, lambda: Double) -> Double {
        let second = zip(report.mean, report.variance).reduce(0) { $0 + $1.0 * $1.0 + $1.1 }
        return report.smoothEnergy - lambda / 2 * second
    }

    /// Density values (not masses) shaped like the grid: `(n,)` or `(n0, n1)`, axis 0 slowest.
    static func writeDensity(_ density: GridDensity, name: String, directory: OutputDirectory) throws {
        let shape = density.grid.pointsPerAxis
        try NPYFormat.write(NumericArray(shape: shape, values: density.densityValues), path: directory.file(name))
    }

    /// `grid.json`: the coordinates of the grid points along each axis, and what the values mean.
    public struct GridDescription: RunSummary {
        public var axes: [[Double]]
        public var pointsPerAxis: [Int]
        public var lowerBounds: [Double]
        public var upperBounds: [Double]
        public var cellVolume: Double
        public let values = "density_final.npy holds density values (mass / cell volume) at the grid points; index [i0, i1] sits at (axes[0][i0], axes[1][i1])"
    }

    /// The ``GridDescription`` of `grid`.
    static func gridDescription(_ grid: RegularGrid) -> GridDescription {
        GridDescription(axes: grid.axes, pointsPerAxis: grid.pointsPerAxis, lowerBounds: grid.lowerBounds,
                        upperBounds: grid.upperBounds, cellVolume: grid.cellVolume)
    }

    /// The grid scheme's `grid_blur` and `stationary` members of `summary.json`, shared by `jko`
    /// and `reduced` (none for the particle scheme). `stationaryRisk` adds the Gibbs point's
    /// risk, for runs that have a risk functional on the grid.
    static func gridSummary(_ result: JKORunResult, stationaryRisk: ((GibbsResult) -> Double)? = nil)
        -> (gridBlur: Summary.GridBlur?, stationary: Summary.Stationary?) {
        let blur = result.gridBlur.map { Summary.GridBlur(gamma: $0.gamma, diffusion: $0.diffusion, compensated: $0.compensated) }
        let stationary = result.stationary.map { st in
            Summary.Stationary(iterations: st.iterations, converged: st.converged, residual: st.residual,
                               freeEnergy: st.freeEnergy, risk: stationaryRisk?(st),
                               w2FinalToStationary: result.reports.last?.distanceToStationary)
        }
        return (blur, stationary)
    }
}
