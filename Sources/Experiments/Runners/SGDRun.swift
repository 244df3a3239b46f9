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
        public var summary: JSONValue
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

        var status: [(String, JSONValue)] = [("status", .string("completed"))]
        if case .diverged(let step, let time) = trajectory.status {
            status = [("status", .string("diverged")), ("diverged_at_step", .integer(step)), ("diverged_at_time", .number(time))]
        }
        let last = trajectory.records.last
        let summary = JSONValue.object([
            ("command", .string("sgd")),
            ("kind", .string(sgdSettings.kind.rawValue)),
            ("eta", .number(sgdSettings.eta)),
            ("noise", .bool(sgdSettings.noise)),
            ("particles", .integer(M)),
            ("parameter_dimension", .integer(D)),
            ("horizon", .number(spec.horizon)),
            ("steps", .integer(trajectory.steps)),
            ("seed", .integer(Int(truncatingIfNeeded: spec.seed))),
            ("sgd_seed", .integer(Int(truncatingIfNeeded: sgdSettings.seed ?? spec.seed))),
            ("lambda", .number(spec.energy.lambda)),
            ("beta", spec.energy.beta.map { .number($0) } ?? .null),
            ("risk_initial", .finite(trajectory.records.first?.risk)),
            ("risk_final", .finite(last?.risk)),
            ("free_energy_final", .finite(last?.freeEnergy)),
            ("risk_is_closed_form", .bool(trajectory.riskIsClosedForm)),
            ("entropy_estimator", estimator.map { .string(String(describing: type(of: $0))) } ?? .null),
            ("seconds", .number(seconds)),
        ] + status)

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
            try directory.writeJSON("summary.json", summary)
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
