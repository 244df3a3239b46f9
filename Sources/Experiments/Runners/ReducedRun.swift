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
        public var summary: Summary
    }

    /// `summary.json` of a reduced run; members of one scheme only are left out for the other.
    public struct Summary: RunSummary {
        public let command = "reduced"
        /// `particles` or `grid`.
        public var scheme: String
        public var dynamics: String
        /// The input dimension `d`, or `infinity`, or `none`.
        public var inputDimension: String
        public var activation: String
        public var teacherActivation: String
        public var secondLayer: String
        public var spanDimension: Int
        public var gamma: Double
        public var lambda: Double
        @NullIfAbsent public var beta: Double?
        public var horizon: Double
        public var seed: Int
        /// How the kernels are evaluated.
        public var kernels: String
        public var teacherSecondMoment: Double
        /// The number of points of the reduced law and how it was drawn (particle scheme).
        public var points: Int? = nil
        public var initialLaw: String? = nil
        /// The grid's points per axis (grid scheme).
        public var gridPoints: [Int]? = nil
        /// The step of the particle scheme.
        public var eta: Double? = nil
        /// The step of the grid scheme.
        public var tau: Double? = nil
        public var steps: Int
        @NullIfAbsent public var riskInitial: Double? = nil
        @NullIfAbsent public var riskFinal: Double? = nil
        @NullIfAbsent public var penalizedRiskFinal: Double? = nil
        /// The free energy of the full law (grid scheme at finite `beta`).
        @NullIfAbsent public var freeEnergyFinal: Double? = nil
        /// What `free_energy_final` is, or why there is none.
        public var freeEnergyNote: String = ""
        /// The risk at which the run stopped and when (runs with a threshold; `.some(nil)`,
        /// written `null`, when the risk never fell that low).
        public var riskThreshold: Double? = nil
        public var thresholdTime: Double?? = nil
        /// The additive constant of the grid scheme's entropy.
        public var entropyConstant: Double? = nil
        public var allStepsConverged: Bool? = nil
        public var gridBlur: JKORun.Summary.GridBlur? = nil
        public var stationary: JKORun.Summary.Stationary? = nil
        /// `completed` or `diverged`, and where it diverged.
        public var status: String
        public var divergedAtStep: Int? = nil
        public var divergedAtTime: Double? = nil
        public var seconds: Double

        /// The members every reduced summary carries; the scheme's own are set after.
        init(scheme: String, spec: ReducedSpec, kernels: ReducedKernels, steps: Int, status: RunStatus, seconds: Double) {
            self.scheme = scheme
            dynamics = spec.dynamics.rawValue
            inputDimension = spec.inputDimension?.description ?? "none"
            activation = spec.activation
            teacherActivation = spec.teacher.activation ?? spec.activation
            secondLayer = spec.secondLayer.rawValue
            spanDimension = spec.teacher.spanDimension
            gamma = spec.gamma
            lambda = spec.lambda
            beta = spec.beta
            horizon = spec.horizon
            seed = Int(truncatingIfNeeded: spec.seed)
            self.kernels = kernels.kernelDescription
            teacherSecondMoment = kernels.teacherSecondMoment
            self.steps = steps
            self.status = "completed"
            if case .diverged(let step, let time) = status {
                self.status = "diverged"
                divergedAtStep = step
                divergedAtTime = time
            }
            self.seconds = seconds
        }
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
        var summary = Summary(scheme: "particles", spec: spec, kernels: kernels, steps: trajectory.steps,
                              status: trajectory.status, seconds: seconds)
        summary.points = initial.count
        summary.initialLaw = spec.sampledParticles != nil ? "sampled" : "quantised"
        summary.eta = spec.eta
        summary.riskInitial = records.first?.risk
        summary.riskFinal = records.last?.risk
        summary.penalizedRiskFinal = records.last?.penalizedRisk
        summary.freeEnergyNote = spec.dynamics == .noisy
            ? "the particle scheme has no density, so no entropy: use scheme = grid for F" : "no entropy (population flow)"
        if let e = stopBelowRisk {
            summary.riskThreshold = e
            summary.thresholdTime = .some(trajectory.thresholdTime)
        }
        let output = Output(records: records, status: trajectory.status, thresholdTime: trajectory.thresholdTime,
                            finalLaw: trajectory.finalLaw, seconds: seconds, summary: summary)
        if let directory {
            try write(output, spec: spec, directory: directory)
            try writeLaw(initial, name: "law_initial.npy", directory: directory)
            try writeLaw(trajectory.finalLaw, name: "law_final.npy", directory: directory)
        }
        return output
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
        try directory.writeSummary(output.summary)
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
