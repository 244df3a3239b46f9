import Foundation
import GradientFlows
import MeanField
import Wasserstein

/// Builds the reduced-coordinate objects a ``ReducedSpec`` describes.
extension ReducedSpec {
    /// The student, dimension and teacher of the reduction (Gaussian inputs).
    public func reducedSetting() throws -> ReducedSetting {
        guard let d = inputDimension else {
            throw ExperimentError.invalidSpec(key: "model.input_dimension", reason: "missing (a whole number > k, or \"infinity\")")
        }
        let own = try teacher.activation.map { name -> Activation in
            guard let a = Activation(name: name) else {
                throw ExperimentError.invalidSpec(key: "teacher.activation", reason: "unknown activation \"\(name)\"")
            }
            return a
        }
        let t = try ReducedTeacher(directions: teacher.directions, coefficients: teacher.coefficients, noise: teacher.noise, activation: own)
        return try ReducedSetting(activation: Activation(specName: activation), secondLayer: secondLayer == .trained ? .trained : .fixed,
                                  inputDimension: d, teacher: t)
    }

    /// `V`, `U` and their gradients in `z`, with the spec's `kernels` settings.
    public func reducedKernels() throws -> ReducedKernels {
        try ReducedKernels(setting: reducedSetting(), sphereNodes: sphereNodes, quadratureNodes: quadratureNodes)
    }

    /// The symmetric initial law `a ~ N(a.mean, a.std^2)`, `w ~ N(0, gamma^2/d I_d)`.
    public var reducedInitialLaw: ReducedInitialLaw {
        get throws {
            try ReducedInitialLaw(aMean: secondLayerInitialization?.mean ?? 1, aStd: secondLayerInitialization?.std ?? 0, gamma: gamma)
        }
    }

    /// The initial points of the particle scheme: the quantisation by `nodes`, or `particles`
    /// equally weighted draws (seed `seed`).
    public func initialReducedLaw(setting: ReducedSetting) throws -> ReducedLaw {
        let law = try reducedInitialLaw
        if let m = sampledParticles { return try law.sampled(setting: setting, count: m, seed: seed) }
        return try law.quantised(setting: setting, nodes: nodes)
    }

    /// Step, horizon, energy and seed of the particle scheme.
    public func flowSettings(stopBelowRisk: Double? = nil) -> ReducedFlowSettings {
        ReducedFlowSettings(eta: eta, horizon: horizon, recordEvery: recordEvery, lambda: lambda,
                            beta: dynamics == .noisy ? beta : nil, seed: seed, stopBelowRisk: stopBelowRisk)
    }
}

/// `wasserstein reduced`: the mean-field flow of a rotation-invariant law in reduced coordinates,
/// writing `trajectory.csv`, `law_initial.npy`, `law_final.npy`, `risk.svg` and `summary.json`.
public enum ReducedRun {
    /// What a run produced.
    public struct Output: Sendable {
        /// One row per record: time, step, risk, penalized risk, and the free energy where the
        /// scheme computes one (grid).
        public var records: [Record]
        /// How the run ended (`completed`, `diverged`).
        public var status: RunStatus
        /// The first time the risk fell to `stopBelowRisk`, when asked for and reached.
        public var thresholdTime: Double?
        /// The final law (particle scheme).
        public var finalLaw: ReducedLaw?
        public var seconds: Double
        public var summary: JSONValue
    }

    /// One record.
    public struct Record: Sendable {
        public var time: Double
        public var step: Int
        public var risk: Double
        public var penalizedRisk: Double
        /// `F_{lambda,beta}` of the full law (grid scheme with noise).
        public var freeEnergy: Double?
    }

    /// Runs the spec's scheme and, when `directory` is given, writes the result files.
    ///
    /// - Throws: ``ExperimentError`` naming the spec key of the largest part when the run's
    ///   estimated memory (``ReducedSpec/reducedMemory(scheme:)``) exceeds the limit.
    ///
    /// - Parameters:
    ///   - spec: the reduced spec.
    ///   - directory: where to write the result files; `nil` writes nothing.
    ///   - stopBelowRisk: stop at the first step whose risk is at most this (`dimensions`).
    ///   - parallel: split each step's sums over the cores (`dimensions` runs one dimension
    ///     per core instead).
    ///   - progress: called with the fraction done and a short status text.
    public static func run(spec: ReducedSpec, directory: OutputDirectory?, stopBelowRisk: Double? = nil, parallel: Bool = true,
                           progress: (@Sendable (Double, String) -> Void)? = nil) throws -> Output {
        try spec.checkMemory(spec.reducedMemory())
        switch spec.scheme {
        case .particles:
            return try runParticles(spec: spec, directory: directory, stopBelowRisk: stopBelowRisk, parallel: parallel, progress: progress)
        case .grid:
            return try ReducedGridRun.run(spec: spec, directory: directory, progress: progress)
        }
    }

    static func runParticles(spec: ReducedSpec, directory: OutputDirectory?, stopBelowRisk: Double?, parallel: Bool,
                             progress: (@Sendable (Double, String) -> Void)?) throws -> Output {
        let setting = try spec.reducedSetting()
        let kernels = try spec.reducedKernels()
        let initial = try spec.initialReducedLaw(setting: setting)
        var settings = spec.flowSettings(stopBelowRisk: stopBelowRisk)
        settings.parallel = parallel
        let flow = try ReducedPopulationFlow(kernels: kernels, settings: settings)
        let clock = ContinuousClock()
        let start = clock.now
        let trajectory = try flow.run(from: initial) { p in
            progress?(p.fractionDone, "t=\(String(format: "%.3f", p.time))" + (p.risk.map { " risk=\(String(format: "%.5g", $0))" } ?? ""))
        }
        let seconds = (clock.now - start).timeInSeconds
        let records = trajectory.records.map {
            Record(time: $0.time, step: $0.step, risk: $0.risk, penalizedRisk: $0.penalizedRisk, freeEnergy: nil)
        }
        var members: [(String, JSONValue)] = [
            ("command", .string("reduced")),
            ("scheme", .string("particles")),
            ("dynamics", .string(spec.dynamics.rawValue)),
        ]
        members += settingsMembers(spec: spec, kernels: kernels)
        members += [
            ("points", .integer(initial.count)),
            ("initial_law", .string(spec.sampledParticles != nil ? "sampled" : "quantised")),
            ("eta", .number(spec.eta)),
            ("steps", .integer(trajectory.steps)),
            ("risk_initial", .finite(records.first?.risk)),
            ("risk_final", .finite(records.last?.risk)),
            ("penalized_risk_final", .finite(records.last?.penalizedRisk)),
            ("free_energy_final", .null),
            ("free_energy_note", .string(spec.dynamics == .noisy
                ? "the particle scheme has no density, so no entropy: use scheme = grid for F" : "no entropy (population flow)")),
        ]
        if let e = stopBelowRisk {
            members += [("risk_threshold", .number(e)), ("threshold_time", .finite(trajectory.thresholdTime))]
        }
        members += statusMembers(trajectory.status)
        members.append(("seconds", .number(seconds)))
        let output = Output(records: records, status: trajectory.status, thresholdTime: trajectory.thresholdTime,
                            finalLaw: trajectory.finalLaw, seconds: seconds, summary: .object(members))
        if let directory {
            try write(output, spec: spec, directory: directory)
            try writeLaw(initial, name: "law_initial.npy", directory: directory)
            try writeLaw(trajectory.finalLaw, name: "law_final.npy", directory: directory)
        }
        return output
    }

    /// The settings every reduced summary carries.
    static func settingsMembers(spec: ReducedSpec, kernels: ReducedKernels) -> [(String, JSONValue)] {
        [
            ("input_dimension", .string(spec.inputDimension?.description ?? "none")),
            ("activation", .string(spec.activation)),
            ("teacher_activation", .string(spec.teacher.activation ?? spec.activation)),
            ("second_layer", .string(spec.secondLayer.rawValue)),
            ("span_dimension", .integer(spec.teacher.spanDimension)),
            ("gamma", .number(spec.gamma)),
            ("lambda", .number(spec.lambda)),
            ("beta", spec.beta.map { .number($0) } ?? .null),
            ("horizon", .number(spec.horizon)),
            ("seed", .integer(Int(truncatingIfNeeded: spec.seed))),
            ("kernels", .string(kernels.kernelDescription)),
            ("teacher_second_moment", .finite(kernels.teacherSecondMoment)),
        ]
    }

    static func statusMembers(_ status: RunStatus) -> [(String, JSONValue)] {
        if case .diverged(let step, let time) = status {
            return [("status", .string("diverged")), ("diverged_at_step", .integer(step)), ("diverged_at_time", .number(time))]
        }
        return [("status", .string("completed"))]
    }

    /// `trajectory.csv`, `summary.json` and `risk.svg`.
    static func write(_ output: Output, spec: ReducedSpec, directory: OutputDirectory) throws {
        let hasFree = output.records.contains { $0.freeEnergy != nil }
        var header = ["t", "step", "risk", "penalized_risk"]
        if hasFree { header.append("free_energy") }
        let rows = output.records.map { r -> [Double] in
            var row = [CSVFormat.cleanTime(r.time), Double(r.step), r.risk, r.penalizedRisk]
            if hasFree { row.append(r.freeEnergy ?? .nan) }
            return row
        }
        try directory.writeCSV("trajectory.csv", header: header, rows: rows)
        try directory.writeJSON("summary.json", output.summary)
        let d = spec.inputDimension?.description ?? "?"
        try LineChart(title: "Reduced flow, d = \(d) (\(spec.dynamics.rawValue), \(spec.scheme.rawValue))", xLabel: "t", yLabel: "risk R",
                      series: [ChartSeries(name: "risk", x: output.records.map(\.time), y: output.records.map(\.risk))])
            .write(to: directory.file("risk.svg"))
    }

    /// A law as an `N x (coordinates + 1)` matrix: the points' coordinates `(a,) s.., r`, then the weight.
    static func writeLaw(_ law: ReducedLaw, name: String, directory: OutputDirectory) throws {
        let c = law.coordinateCount
        var values = [Double]()
        values.reserveCapacity(law.count * (c + 1))
        for i in 0 ..< law.count {
            values += law.points[(i * c) ..< ((i + 1) * c)]
            values.append(law.weights[i])
        }
        try directory.writeMatrix(name, rows: law.count, columns: c + 1, values: values)
    }
}
