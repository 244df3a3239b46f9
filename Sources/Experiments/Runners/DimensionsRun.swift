import Foundation
import GradientFlows
import MeanField
import Wasserstein

/// `wasserstein dimensions`: the time `T(eps)` the mean-field flow takes to bring the risk down to
/// `eps`, against the input dimension `d` (infinity included), from the reduced flow; and, with
/// `--sgd`, the number of online-SGD steps (samples) a width-`M` network in full `d` takes with the
/// step `eta = eta0 / d`.
///
/// The reduced flow costs the same in every `d`, so the whole curve costs a few runs of it. The
/// dimensions are independent: they run one per core, each single-threaded.
public enum DimensionsRun {
    /// How a run ended with respect to the threshold.
    public enum Status: String, Sendable {
        /// The risk reached the threshold within the horizon.
        case reached
        /// It did not: the time is reported as infinity.
        case notReached = "not_reached"
        /// The dynamics produced a non-finite value before reaching it.
        case diverged
        /// Not run (online SGD at `d = infinity` or above `sgd.max_dimension`).
        case notApplicable = "not_applicable"
    }

    /// One dimension's results.
    public struct Row: Sendable {
        public var dimension: ReducedDimension
        /// `T(eps)` of the reduced flow (interpolated linearly in `t` between the two steps around
        /// the crossing), or infinity.
        public var reducedTime: Double
        public var reducedStatus: Status
        /// The reduced flow's last risk (at the crossing, or at the horizon).
        public var reducedFinalRisk: Double
        public var reducedSeconds: Double
        /// Online SGD (`--sgd`, finite `d`): the step `eta0 / d`, the steps to the threshold
        /// (rounded up from the interpolation between records), and `t = steps * eta`.
        public var sgdEta: Double?
        public var sgdSteps: Double?
        public var sgdTime: Double?
        public var sgdStatus: Status?
        public var sgdFinalRisk: Double?
        public var sgdSeconds: Double?
    }

    /// What a run produced.
    public struct Output: Sendable {
        public var rows: [Row]
        public var seconds: Double
        public var summary: Summary
    }

    /// `summary.json` of a `dimensions` run.
    public struct Summary: RunSummary {
        public let command = "dimensions"
        public var riskThreshold: Double
        public var activation: String
        public var teacherActivation: String
        public var secondLayer: String
        public var dynamics: String
        public var gamma: Double
        public var eta: Double
        public var horizon: Double
        /// The online-SGD settings (`--sgd`; `null` without).
        @NullIfAbsent public var sgd: SGDSettings?
        public var rows: [Row]
        public var seconds: Double
        public var cores: Int

        /// The spec's `sgd` section as used.
        public struct SGDSettings: RunSummary {
            public var eta0: Double
            public var particles: Int
            public var seed: Int
            public var recordEvery: Double
            @NullIfAbsent public var maxDimension: Int?
        }

        /// One dimension. The SGD members exist with `--sgd` only, and are `null` (`.some(nil)`)
        /// where SGD did not run.
        public struct Row: RunSummary {
            /// `d`, or `infinity`.
            public var d: String
            public var tReduced: Double
            public var reducedStatus: String
            public var reducedFinalRisk: Double
            public var reducedSeconds: Double
            public var sgdEta: Double??
            public var sgdSteps: Double??
            public var tSGD: Double??
            public var sgdStatus: String?
            public var sgdFinalRisk: Double??
            public var sgdSeconds: Double??
        }
    }

    /// Parses `--dimensions 10,20,infinity`: whole numbers `> k` and `infinity` (or `inf`), no repeats.
    public static func parseDimensions(_ text: String) throws -> [ReducedDimension] {
        let parts = text.split(separator: ",", omittingEmptySubsequences: false).map(String.init)
        guard !text.trimmingCharacters(in: .whitespaces).isEmpty else {
            throw ExperimentError.invalidList(option: "--dimensions", reason: "empty list")
        }
        var out = [ReducedDimension]()
        for p in parts {
            // Spaces around the commas are the list's business, not the dimension's.
            guard let d = ReducedDimension(text: p.trimmingCharacters(in: .whitespaces)) else {
                throw ExperimentError.invalidList(option: "--dimensions", reason: "'\(p.trimmingCharacters(in: .whitespaces))' is neither a whole number nor infinity")
            }
            if case .finite(let v) = d, !(2 ... 1_000_000_000).contains(v) {
                throw ExperimentError.invalidList(option: "--dimensions", reason: "\(v) is outside 2 ... 10^9")
            }
            guard !out.contains(d) else { throw ExperimentError.invalidList(option: "--dimensions", reason: "\(d) is listed twice") }
            out.append(d)
        }
        return out
    }

    /// Runs every dimension.
    ///
    /// - Parameters:
    ///   - spec: the reduced spec (particle scheme); its `model.input_dimension` is ignored.
    ///   - dimensions: the values of `d`.
    ///   - riskThreshold: `eps`.
    ///   - sgd: also run online SGD in full `d` (needs the spec's `sgd` section).
    ///   - directory: where to write `dimensions.csv`, `dimensions.svg`, `samples.svg` (with
    ///     `sgd`) and `summary.json`; `nil` writes nothing.
    ///   - progress: called with the fraction done and a short status text.
    /// - Throws: ``ExperimentError`` naming the spec key (`nodes`, `particles`, `record_every`,
    ///   `sgd.particles`, ...) of the largest part when the runs that go at once are estimated
    ///   (``ReducedSpec/dimensionsMemory(dimensions:sgd:concurrent:)``) above the memory limit.
    public static func run(spec: ReducedSpec, dimensions: [ReducedDimension], riskThreshold: Double, sgd: Bool,
                           directory: OutputDirectory?, progress: (@Sendable (Double, String) -> Void)? = nil) throws -> Output {
        guard riskThreshold.isFinite, riskThreshold > 0 else {
            throw ExperimentError.invalidList(option: "--risk-threshold", reason: "must be > 0 and finite, got \(riskThreshold)")
        }
        guard !dimensions.isEmpty else { throw ExperimentError.invalidList(option: "--dimensions", reason: "empty list") }
        guard spec.scheme == .particles else {
            throw ExperimentError.invalidSpec(key: "scheme", reason: "dimensions runs the particle scheme (the grid scheme has no threshold stop)")
        }
        // The online-SGD settings when --sgd asks for them (nil: reduced flow only).
        let sgdSettings: ReducedSGDSpec?
        if sgd {
            guard let s = spec.sgd else { throw ExperimentError.invalidSpec(key: "sgd", reason: "missing (--sgd needs eta0 and particles)") }
            sgdSettings = s
        } else {
            sgdSettings = nil
        }
        // Check every dimension before any work is done.
        let specs = try dimensions.map { try spec.at(dimension: $0) }
        for s in specs { _ = try s.reducedKernels() }
        try spec.checkMemory(spec.dimensionsMemory(dimensions: dimensions, sgd: sgd))

        enum Task { case reduced(Int), sgd(Int) }
        var tasks = [Task]()
        // SGD in the largest d first: the longest tasks start first, so the two cores finish together.
        if let sgdSettings {
            let limit = sgdSettings.maxDimension ?? Int.max
            let finite = specs.indices.filter { i in specs[i].inputDimension?.value.map { $0 <= limit } ?? false }
            tasks += finite.sorted { specs[$0].inputDimension!.value! > specs[$1].inputDimension!.value! }.map { Task.sgd($0) }
        }
        tasks += specs.indices.map { Task.reduced($0) }

        let results = ResultBox(rows: specs.map {
            Row(dimension: $0.inputDimension!, reducedTime: .nan, reducedStatus: .notApplicable, reducedFinalRisk: .nan, reducedSeconds: 0)
        })
        let clock = ContinuousClock()
        let start = clock.now
        let total = Double(tasks.count)
        let taskList = tasks
        DispatchQueue.concurrentPerform(iterations: taskList.count) { index in
            do {
                switch taskList[index] {
                case .reduced(let i):
                    let r = try reduced(spec: specs[i], threshold: riskThreshold)
                    results.update(i) { row in
                        row.reducedTime = r.time
                        row.reducedStatus = r.status
                        row.reducedFinalRisk = r.finalRisk
                        row.reducedSeconds = r.seconds
                    }
                case .sgd(let i):
                    let r = try onlineSGD(spec: specs[i], threshold: riskThreshold)
                    results.update(i) { row in
                        row.sgdEta = r.eta
                        row.sgdSteps = r.steps
                        row.sgdTime = r.time
                        row.sgdStatus = r.status
                        row.sgdFinalRisk = r.finalRisk
                        row.sgdSeconds = r.seconds
                    }
                }
            } catch {
                results.fail(error)
            }
            let done = results.finishTask()
            progress?(Double(done) / total, "\(done)/\(Int(clampingCount: total, limit: Int.max)) runs")
        }
        if let error = results.error { throw error }
        var rows = results.rows
        if sgd {
            for i in rows.indices where rows[i].sgdStatus == nil { rows[i].sgdStatus = .notApplicable }
        }
        let seconds = (clock.now - start).timeInSeconds
        let summary = Summary(
            riskThreshold: riskThreshold,
            activation: spec.activation,
            teacherActivation: spec.teacher.activation ?? spec.activation,
            secondLayer: spec.secondLayer.rawValue,
            dynamics: spec.dynamics.rawValue,
            gamma: spec.gamma,
            eta: spec.eta,
            horizon: spec.horizon,
            sgd: sgdSettings.map { s in
                Summary.SGDSettings(eta0: s.eta0, particles: s.particles, seed: Int(truncatingIfNeeded: s.seed),
                                    recordEvery: s.recordEvery, maxDimension: s.maxDimension)
            },
            rows: rows.map { r in
                Summary.Row(d: r.dimension.description, tReduced: r.reducedTime, reducedStatus: r.reducedStatus.rawValue,
                            reducedFinalRisk: r.reducedFinalRisk, reducedSeconds: r.reducedSeconds,
                            sgdEta: sgd ? .some(r.sgdEta) : nil, sgdSteps: sgd ? .some(r.sgdSteps) : nil,
                            tSGD: sgd ? .some(r.sgdTime) : nil,
                            sgdStatus: sgd ? (r.sgdStatus ?? .notApplicable).rawValue : nil,
                            sgdFinalRisk: sgd ? .some(r.sgdFinalRisk) : nil, sgdSeconds: sgd ? .some(r.sgdSeconds) : nil)
            },
            seconds: seconds,
            cores: Parallel.coreCount)
        let output = Output(rows: rows, seconds: seconds, summary: summary)
        if let directory { try write(output, spec: spec, threshold: riskThreshold, sgd: sgdSettings, directory: directory) }
        return output
    }

    struct Crossing {
        var time: Double
        var steps: Double
        var status: Status
        var finalRisk: Double
        var seconds: Double
        var eta: Double
    }

    /// The reduced flow of one dimension, stopped at the threshold, single-threaded.
    static func reduced(spec: ReducedSpec, threshold: Double) throws -> Crossing {
        let out = try ReducedRun.run(spec: spec, directory: nil, stopBelowRisk: threshold, parallel: false)
        let status: Status
        if case .diverged = out.status {
            status = out.thresholdTime == nil ? .diverged : .reached
        } else {
            status = out.thresholdTime == nil ? .notReached : .reached
        }
        let time = out.thresholdTime ?? .infinity
        return Crossing(time: time, steps: time / spec.eta, status: status, finalRisk: out.records.last?.risk ?? .nan,
                        seconds: out.seconds, eta: spec.eta)
    }

    /// Online SGD in full `d` with `eta = eta0 / d`, from the full initial law the reduced spec
    /// stands for; the crossing is interpolated linearly in the step count between records.
    static func onlineSGD(spec: ReducedSpec, threshold: Double) throws -> Crossing {
        let experiment = try fullExperiment(spec: spec)
        let runner = try SGDRunner(experiment: experiment, entropyEstimator: nil)
        let clock = ContinuousClock()
        let start = clock.now
        let trajectory = runner.run()
        let seconds = (clock.now - start).timeInSeconds
        let eta = experiment.sgd.eta
        let crossing = firstCrossing(steps: trajectory.records.map { Double($0.step) }, risks: trajectory.records.map(\.risk),
                                     threshold: threshold)
        let status: Status
        switch (crossing, trajectory.status) {
        case (.some, _): status = .reached
        case (nil, .diverged): status = .diverged
        case (nil, .completed): status = .notReached
        }
        // Whole steps: the sample count is an integer.
        let steps = crossing.map { $0.rounded(.up) } ?? .infinity
        return Crossing(time: steps * eta, steps: steps, status: status, finalRisk: trajectory.records.last?.risk ?? .nan,
                        seconds: seconds, eta: eta)
    }

    /// The full-dimensional online-SGD experiment a reduced spec stands for at its (finite) `d`:
    /// teacher directions embedded in the first `k` coordinates, `w ~ N(0, gamma^2/d I_d)`,
    /// `eta = eta0 / d`, noise when the dynamics are noisy, single-threaded.
    public static func fullExperiment(spec: ReducedSpec) throws -> SGDExperiment {
        guard let s = spec.sgd else { throw ExperimentError.invalidSpec(key: "sgd", reason: "missing (eta0 and particles)") }
        guard let d = spec.inputDimension?.value else {
            throw ExperimentError.invalidSpec(key: "model.input_dimension", reason: "online SGD needs a finite d")
        }
        let k = spec.teacher.spanDimension
        let directions = spec.teacher.directions.map { c -> [Double] in
            var w = [Double](repeating: 0, count: d)
            for l in 0 ..< k { w[l] = c[l] }
            return w
        }
        let own = try spec.teacher.activation.map { name -> Activation in
            guard let a = Activation(name: name) else { throw ExperimentError.invalidSpec(key: "teacher.activation", reason: "unknown activation \"\(name)\"") }
            return a
        }
        let model = try NetworkModel(activation: Activation(specName: spec.activation), inputDimension: d,
                                     secondLayer: spec.secondLayer == .trained ? .trained : .fixed, inputs: .gaussian)
        let teacher = Teacher.neurons(directions: directions, coefficients: spec.teacher.coefficients, noise: spec.teacher.noise, activation: own)
        let eta = s.eta0 / Double(d)
        guard eta <= spec.horizon else {
            throw ExperimentError.invalidSpec(key: "sgd.eta0", reason: "eta0 / d = \(eta) at d = \(d) is larger than the horizon \(spec.horizon)")
        }
        // The model's own check would name its step `sgd.eta`, a key this spec does not have.
        guard spec.horizon / eta <= Double(SGDExperiment.maximumSteps) else {
            throw ExperimentError.invalidSpec(key: "sgd.eta0", reason: "horizon / (eta0 / d) = \(spec.horizon / eta) steps at d = \(d), above the limit of \(SGDExperiment.maximumSteps); raise sgd.eta0 or shorten the horizon")
        }
        var e = SGDExperiment(model: model, teacher: teacher, initialization: try spec.reducedInitialLaw.fullLaw(inputDimension: d),
                              energy: EnergyParameters(lambda: spec.lambda, beta: spec.dynamics == .noisy ? spec.beta : nil),
                              particles: s.particles, horizon: spec.horizon, seed: s.seed,
                              sgd: SGDSettings(eta: eta, kind: .online, noise: spec.dynamics == .noisy), recordEvery: s.recordEvery)
        e.recordParticles = false
        e.parallel = false
        try e.validate()
        return e
    }

    /// The first `x` at which the piecewise-linear curve through `(steps[i], risks[i])` reaches
    /// `threshold` from above; `nil` if it never does.
    public static func firstCrossing(steps: [Double], risks: [Double], threshold: Double) -> Double? {
        for i in risks.indices where risks[i] <= threshold {
            if i == 0 { return steps[0] }
            let r0 = risks[i - 1], r1 = risks[i]
            guard r0.isFinite, r0 > r1 else { return steps[i] }
            return steps[i - 1] + (r0 - threshold) / (r0 - r1) * (steps[i] - steps[i - 1])
        }
        return nil
    }

    /// `dimensions.csv` (text: `d` is `inf` at infinity, times are `inf` when not reached, and
    /// each run has a status column), `summary.json`, `dimensions.svg` and, with SGD, `samples.svg`.
    static func write(_ output: Output, spec: ReducedSpec, threshold: Double, sgd: ReducedSGDSpec?, directory: OutputDirectory) throws {
        var header = ["d", "t_reduced", "reduced_status", "reduced_final_risk"]
        if sgd != nil { header += ["sgd_eta", "sgd_steps", "t_sgd", "sgd_status", "sgd_final_risk", "reduced_samples"] }
        let rows = output.rows.map { r -> [String] in
            var row = [r.dimension.value.map(String.init) ?? "inf", CSVFormat.formatNumber(r.reducedTime), r.reducedStatus.rawValue,
                       CSVFormat.formatNumber(r.reducedFinalRisk)]
            if let sgd {
                let na = "nan"
                row += [r.sgdEta.map(CSVFormat.formatNumber) ?? na, r.sgdSteps.map(CSVFormat.formatNumber) ?? na,
                        r.sgdTime.map(CSVFormat.formatNumber) ?? na, (r.sgdStatus ?? .notApplicable).rawValue,
                        r.sgdFinalRisk.map(CSVFormat.formatNumber) ?? na,
                        CSVFormat.formatNumber(samples(reducedTime: r.reducedTime, dimension: r.dimension, eta0: sgd.eta0))]
            }
            return row
        }
        try CSVFormat.write(header: header, textRows: rows, path: directory.file("dimensions.csv"))
        try directory.writeSummary(output.summary)
        try timeChart(output, spec: spec, threshold: threshold, sgd: sgd).write(to: directory.file("dimensions.svg"))
        if let sgd { try sampleChart(output, spec: spec, sgd: sgd, threshold: threshold).write(to: directory.file("samples.svg")) }
    }

    /// The sample count the reduced flow predicts for SGD with `eta = eta0 / d`: `T d / eta0`.
    static func samples(reducedTime: Double, dimension: ReducedDimension, eta0: Double) -> Double {
        guard let d = dimension.value else { return .infinity }
        return reducedTime * Double(d) / eta0
    }

    static func timeChart(_ output: Output, spec: ReducedSpec, threshold: Double, sgd: ReducedSGDSpec?) -> DimensionChart {
        let teacher = spec.teacher.activation ?? spec.activation
        var series = [DimensionChart.Series(name: "reduced flow (M = infinity)",
                                            points: output.rows.map { ($0.dimension, $0.reducedTime) })]
        if let sgd {
            series.append(DimensionChart.Series(name: "online SGD, M = \(sgd.particles), eta = \(String(format: "%g", sgd.eta0))/d",
                                                points: output.rows.filter { $0.sgdStatus != .notApplicable }.map { ($0.dimension, $0.sgdTime ?? .nan) },
                                                dashed: true))
        }
        return DimensionChart(title: "Time to risk \(String(format: "%g", threshold)): \(spec.activation) student, \(teacher) teacher",
                              yLabel: "T(eps)", series: series)
    }

    static func sampleChart(_ output: Output, spec: ReducedSpec, sgd: ReducedSGDSpec, threshold: Double) -> LineChart {
        let finite = output.rows.filter { $0.dimension != .infinity }
        let d = finite.map { Double($0.dimension.value!) }
        let ran = finite.filter { $0.sgdStatus != .notApplicable }
        let eta0 = sgd.eta0
        return LineChart(title: "Samples to risk \(String(format: "%g", threshold)) with eta = \(String(format: "%g", eta0))/d",
                         xLabel: "input dimension d", yLabel: "samples T / eta", xScale: .logarithmic, yScale: .logarithmic,
                         series: [ChartSeries(name: "reduced flow: T_reduced d / eta0", x: d,
                                              y: finite.map { samples(reducedTime: $0.reducedTime, dimension: $0.dimension, eta0: eta0) },
                                              markers: true),
                                  ChartSeries(name: "online SGD steps, M = \(sgd.particles)", x: ran.map { Double($0.dimension.value!) },
                                              y: ran.map { $0.sgdSteps ?? .nan },
                                              dashed: true, markers: true)])
    }

    /// Rows written by concurrent tasks, each to its own index.
    final class ResultBox: @unchecked Sendable {
        private let lock = NSLock()
        private(set) var rows: [Row]
        private(set) var error: Error?
        private var done = 0
        init(rows: [Row]) { self.rows = rows }
        func update(_ i: Int, _ body: (inout Row) -> Void) {
            lock.lock()
            defer { lock.unlock() }
            body(&rows[i])
        }
        func fail(_ e: Error) {
            lock.lock()
            defer { lock.unlock() }
            if error == nil { error = e }
        }
        func finishTask() -> Int {
            lock.lock()
            defer { lock.unlock() }
            done += 1
            return done
        }
    }
}
