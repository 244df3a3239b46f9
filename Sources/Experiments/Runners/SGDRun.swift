import Foundation
import GradientFlows
import MeanField
import Wasserstein

/// `wasserstein sgd`: runs the particle dynamics of a spec and writes
/// `trajectory.csv`, `particles_initial.npy`, `particles_final.npy` and `summary.json`.
public enum SGDRun {
    /// What a run produced, for callers that go on working with it (`compare`, `demo`).
    public struct Output: Sendable {
        public var trajectory: Trajectory
        public var seconds: Double
        public var summary: Summary
    }

    /// `summary.json` of a particle-dynamics run.
    public struct Summary: RunSummary {
        public let command = "sgd"
        /// The spec's `sgd.kind`.
        public var kind: String
        public var eta: Double
        public var noise: Bool
        public var particles: Int
        public var parameterDimension: Int
        public var horizon: Double
        public var steps: Int
        public var seed: Int
        /// The seed of the SGD samples and noise (`sgd.seed`, else `seed`).
        public var sgdSeed: Int
        public var lambda: Double
        /// `nil` (written `null`) for the infinite temperature.
        @NullIfAbsent public var beta: Double?
        @NullIfAbsent public var riskInitial: Double?
        @NullIfAbsent public var riskFinal: Double?
        @NullIfAbsent public var freeEnergyFinal: Double?
        /// Whether the risk is computed in closed form (else estimated on samples).
        public var riskIsClosedForm: Bool
        /// The type name of the entropy estimator, when the free energy is tracked.
        @NullIfAbsent public var entropyEstimator: String?
        public var seconds: Double
        /// `completed` or `diverged`.
        public var status: String
        /// Where the run diverged (diverged runs only).
        public var divergedAtStep: Int?
        public var divergedAtTime: Double?
    }

    /// Runs the dynamics of `spec` and, when `directory` is given, writes the result files.
    ///
    /// - Parameters:
    ///   - spec: the experiment (its `sgd` section is required).
    ///   - directory: where to write the files; `nil` writes nothing.
    ///   - recordParticles: keep the particles of every record (for comparisons).
    ///   - entropyEstimator: the estimator of the free energy's entropy term (default: the
    ///     Silverman kernel estimate when `beta` is finite).
    ///   - progress: called with the fraction done and a short status text.
    public static func run(spec: ExperimentSpec, directory: OutputDirectory?, recordParticles: Bool = false,
                           entropyEstimator: (any EntropyEstimator)? = nil,
                           progress: (@Sendable (Double, String) -> Void)? = nil) throws -> Output {
        let experiment = try spec.sgdExperiment(recordParticles: recordParticles)
        let sgdSettings = try spec.sgdSection()
        try spec.checkMemory(spec.sgdMemory(recordParticles: recordParticles))
        let estimator = entropyEstimator ?? (spec.energy.beta != nil ? Defaults.entropyEstimator(dimension: spec.parameterDimension) : nil)
        let runner = try SGDRunner(experiment: experiment, entropyEstimator: estimator)
        let clock = ContinuousClock()
        let start = clock.now
        let trajectory = runner.run { p in
            progress?(p.fractionDone, "t=\(String(format: "%.3f", p.time))" + (p.risk.map { " risk=\(String(format: "%.5g", $0))" } ?? ""))
        }
        let seconds = (clock.now - start).timeInSeconds
        let D = trajectory.parameterDimension, M = trajectory.particleCount

        var divergence: (step: Int, time: Double)? = nil
        if case .diverged(let step, let time) = trajectory.status { divergence = (step, time) }
        let last = trajectory.records.last
        let summary = Summary(
            kind: sgdSettings.kind.rawValue,
            eta: sgdSettings.eta,
            noise: sgdSettings.noise,
            particles: M,
            parameterDimension: D,
            horizon: spec.horizon,
            steps: trajectory.steps,
            seed: Int(truncatingIfNeeded: spec.seed),
            sgdSeed: Int(truncatingIfNeeded: sgdSettings.seed ?? spec.seed),
            lambda: spec.energy.lambda,
            beta: spec.energy.beta,
            riskInitial: trajectory.records.first?.risk,
            riskFinal: last?.risk,
            freeEnergyFinal: last?.freeEnergy,
            riskIsClosedForm: trajectory.riskIsClosedForm,
            entropyEstimator: estimator.map { String(describing: type(of: $0)) },
            seconds: seconds,
            status: divergence == nil ? "completed" : "diverged",
            divergedAtStep: divergence?.step,
            divergedAtTime: divergence?.time)

        if let directory {
            var header = ["t", "step", "risk", "penalized_risk"]
            if trajectory.recordsFreeEnergy { header += ["negative_entropy", "free_energy"] }
            let rows = trajectory.records.map { r -> [Double] in
                var row = [CSVFormat.cleanTime(r.time), Double(r.step), r.risk, r.penalizedRisk]
                if trajectory.recordsFreeEnergy { row += [r.negativeEntropy ?? .nan, r.freeEnergy ?? .nan] }
                return row
            }
            try directory.writeCSV("trajectory.csv", header: header, rows: rows)
            try directory.writeMatrix("particles_initial.npy", rows: M, columns: D, values: runner.initialParticles())
            try directory.writeMatrix("particles_final.npy", rows: M, columns: D, values: trajectory.finalParticles)
            try directory.writeSummary(summary)
        }
        return Output(trajectory: trajectory, seconds: seconds, summary: summary)
    }
}

extension Duration {
    /// The duration in seconds.
    public var timeInSeconds: Double {
        let c = components
        return Double(c.seconds) + Double(c.attoseconds) * 1e-18
    }
}
