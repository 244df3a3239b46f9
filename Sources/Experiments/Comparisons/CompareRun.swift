import Foundation
import GradientFlows
import MeanField
import Wasserstein

/// `wasserstein compare`: the JKO flow and the particle dynamics of one spec, from the same
/// initial particles, sampled at the common times `t = k tau`.
///
/// The comparison reports the risk of both, their gap, the exact `W2` between the two particle
/// clouds, and the 1-D `W2` between their marginals of `|w|`, of `<w, w*>/|w*|` (single-neuron or
/// linear teacher) and of `a` (trained second layer). Docs/Theory.md section 6 explains why the marginals,
/// not the full `W2`, are the yardstick in high dimension.
public enum CompareRun {
    /// One common time of the comparison.
    public struct Row: Sendable {
        public var time: Double
        public var riskJKO: Double
        public var riskSGD: Double
        /// The grid scheme's risk (D <= 2 with grid settings).
        public var riskGrid: Double?
        /// Free energies (finite beta).
        public var freeEnergyJKO: Double?
        public var freeEnergySGD: Double?
        /// Exact W2 between the JKO and SGD particle clouds.
        public var w2Clouds: Double
        /// Sorted 1-D W2 between the marginals of |w|.
        public var w2Norm: Double
        /// ... of <w, w*>/|w*|.
        public var w2Overlap: Double?
        /// ... of a.
        public var w2SecondLayer: Double?
        /// |riskJKO - riskSGD|.
        public var riskGap: Double { abs(riskJKO - riskSGD) }
    }

    /// What a comparison produced.
    public struct Output: Sendable {
        public var rows: [Row]
        /// `sup_t |risk_jko - risk_sgd|`.
        public var maxRiskGap: Double
        public var summary: Summary
        /// Particles at every common time: JKO and SGD, row-major `M x D` each.
        public var jkoStates: [[Double]]
        public var sgdStates: [[Double]]
    }

    /// `summary.json` of a comparison.
    public struct Summary: RunSummary {
        public let command = "compare"
        /// `sup_t |risk_jko - risk_sgd|`.
        public var maxRiskGap: Double
        /// The gap at the last common time.
        @NullIfAbsent public var finalRiskGap: Double?
        /// The largest 1-D `W2` between the marginals of `|w|`, of `<w, w*>/|w*|` and of `a`.
        @NullIfAbsent public var maxW2NormMarginal: Double?
        @NullIfAbsent public var maxW2OverlapMarginal: Double?
        @NullIfAbsent public var maxW2AMarginal: Double?
        /// The largest exact `W2` between the two particle clouds.
        @NullIfAbsent public var maxW2Clouds: Double?
        @NullIfAbsent public var riskFinalJKO: Double?
        @NullIfAbsent public var riskFinalSGD: Double?
        /// The grid scheme's final risk (`D <= 2` with grid settings).
        @NullIfAbsent public var riskFinalGrid: Double?
        /// The number of common times compared.
        public var times: Int
        public var settings: Settings
        public var jkoAllStepsConverged: Bool
        public var seconds: Seconds

        /// What was compared.
        public struct Settings: RunSummary {
            public var particles: Int
            public var parameterDimension: Int
            public var inputDimension: Int
            public var activation: String
            public var horizon: Double
            public var tau: Double
            public var eta: Double
            public var sgdKind: String
            public var sgdNoise: Bool
            public var jkoTransport: String
            public var lambda: Double
            @NullIfAbsent public var beta: Double?
            public var seed: Int
            public var sgdSeed: Int
            /// Whether the grid scheme ran too.
            public var grid: Bool
        }

        /// The time each scheme took.
        public struct Seconds: RunSummary {
            public var sgd: Double
            public var jko: Double
            @NullIfAbsent public var grid: Double?
        }
    }

    /// The number of SGD steps per JKO step, `tau / eta`, which must be a whole number so that
    /// both are sampled at the same times.
    static func stride(spec: ExperimentSpec) throws -> Int {
        let j = try spec.jkoSection("compare needs tau")
        let s = try spec.sgdSection("compare needs the particle dynamics")
        // A count beyond the step limit is refused as such before the divisibility check.
        _ = try ExperimentSpec.stepCount(j.tau, over: s.eta, key: "sgd.eta", what: "jko.tau / sgd.eta")
        guard let k = try? stride(interval: j.tau, eta: s.eta) else {
            throw ExperimentError.invalidSpec(key: "jko.tau", reason: "must be a whole multiple of sgd.eta (\(s.eta)) so that JKO and SGD share their sampling times, got \(j.tau)")
        }
        return k
    }

    /// `interval / eta` when it is a whole number `>= 1` (within `1e-9` relative), else an error.
    static func stride(interval: Double, eta: Double) throws -> Int {
        let ratio = interval / eta
        let k = ratio.rounded()
        guard k >= 1, abs(ratio - k) <= 1e-9 * k else {
            throw ExperimentError.invalidSpec(key: "sgd.eta", reason: "\(interval) is not a whole multiple of \(eta)")
        }
        // sgd.eta = 1e-300 made this 1e299, and its conversion to Int trapped.
        return try ExperimentSpec.stepCount(interval, over: eta, key: "sgd.eta", what: "the interval / sgd.eta")
    }

    /// Runs both schemes and compares them; writes `comparison.csv`, `summary.json` and the SVG
    /// pictures when `directory` is given.
    public static func run(spec: ExperimentSpec, directory: OutputDirectory?, pictures: Bool = true,
                           progress: (@Sendable (Double, String) -> Void)? = nil) throws -> Output {
        let modelSpec = try spec.modelSection("compare needs a model; the oracle spec has no SGD")
        let strideSteps = try stride(spec: spec)
        let jkoSpec = try spec.jkoSection("compare needs tau")
        let sgdSettings = try spec.sgdSection("compare needs the particle dynamics")
        try spec.checkMemory(spec.compareMemory())
        let tau = jkoSpec.tau
        let model = try spec.networkModel()
        let direction = spec.teacherDirection
        let lambda = spec.energy.lambda
        let clock = ContinuousClock()

        // The particle dynamics, recorded at every JKO time.
        var sgdSpec = spec
        sgdSpec.recordEvery = tau
        let t0 = clock.now
        let sgd = try SGDRun.run(spec: sgdSpec, directory: nil, recordParticles: true) { f, text in progress?(0.45 * f, "sgd " + text) }
        let sgdSeconds = (clock.now - t0).timeInSeconds

        // The JKO flow (particle scheme), from the same initial particles.
        let t1 = clock.now
        let jko = try JKORun.run(spec: spec, directory: nil, scheme: .particle, keepStates: true) { f, text in progress?(0.45 + 0.45 * f, "particle " + text) }
        let jkoSeconds = (clock.now - t1).timeInSeconds

        // The grid scheme too, when D <= 2 and the spec gives a grid.
        var grid: JKORun.Output? = nil
        var gridSeconds: Double? = nil
        if spec.parameterDimension <= 2, spec.jko?.bounds != nil {
            let t2 = clock.now
            grid = try JKORun.run(spec: spec, directory: nil, scheme: .grid, trackStationary: false) { f, text in progress?(0.9 + 0.08 * f, "grid " + text) }
            gridSeconds = (clock.now - t2).timeInSeconds
        }

        // Match the records by time: JKO step k is SGD step k * stride.
        var sgdByStep = [Int: TrajectoryRecord]()
        for r in sgd.trajectory.records { sgdByStep[r.step] = r }
        let D = spec.parameterDimension, M = spec.particles
        let exact = NetworkSimplexWorkspace()
        var rows = [Row]()
        var jkoStates = [[Double]](), sgdStates = [[Double]]()
        for (k, report) in jko.result.reports.enumerated() {
            guard let s = sgdByStep[k * strideSteps], let sp = s.particles else { break }
            let jp = jko.states[k]
            let x = try PointCloud(coordinates: jp, dimension: D, name: "JKO particles")
            let y = try PointCloud(coordinates: sp, dimension: D, name: "SGD particles")
            let w2 = try exact.solve(TransportProblem(source: x, target: y)).w2
            let mj = try model.marginals(particles: jp, direction: direction)
            let ms = try model.marginals(particles: sp, direction: direction)
            func sorted(_ a: [Double]?, _ b: [Double]?) throws -> Double? {
                guard let a, let b else { return nil }
                return try SortedSolver(planOutput: .none).solve(TransportProblem(source: PointCloud(values: a), target: PointCloud(values: b))).w2
            }
            var row = Row(time: report.time, riskJKO: JKORun.risk(of: report, lambda: lambda), riskSGD: s.risk,
                          riskGrid: nil, freeEnergyJKO: spec.energy.beta != nil ? report.freeEnergy : nil,
                          freeEnergySGD: s.freeEnergy, w2Clouds: w2,
                          w2Norm: try sorted(mj.weightNorms, ms.weightNorms)!,
                          w2Overlap: try sorted(mj.overlaps, ms.overlaps), w2SecondLayer: try sorted(mj.secondLayer, ms.secondLayer))
            if let g = grid, k < g.result.reports.count { row.riskGrid = JKORun.risk(of: g.result.reports[k], lambda: lambda) }
            rows.append(row)
            jkoStates.append(jp)
            sgdStates.append(sp)
        }
        progress?(1, "done")
        let maxGap = rows.map(\.riskGap).max() ?? 0
        let summary = Summary(
            maxRiskGap: maxGap,
            finalRiskGap: rows.last?.riskGap,
            maxW2NormMarginal: rows.map(\.w2Norm).max(),
            maxW2OverlapMarginal: rows.compactMap(\.w2Overlap).max(),
            maxW2AMarginal: rows.compactMap(\.w2SecondLayer).max(),
            maxW2Clouds: rows.map(\.w2Clouds).max(),
            riskFinalJKO: rows.last?.riskJKO,
            riskFinalSGD: rows.last?.riskSGD,
            riskFinalGrid: rows.last?.riskGrid,
            times: rows.count,
            settings: Summary.Settings(
                particles: M, parameterDimension: D, inputDimension: model.inputDimension,
                activation: modelSpec.activation, horizon: spec.horizon, tau: tau, eta: sgdSettings.eta,
                sgdKind: sgdSettings.kind.rawValue, sgdNoise: sgdSettings.noise, jkoTransport: jkoSpec.transport.name,
                lambda: lambda, beta: spec.energy.beta, seed: Int(truncatingIfNeeded: spec.seed),
                sgdSeed: Int(truncatingIfNeeded: sgdSettings.seed ?? spec.seed), grid: grid != nil),
            jkoAllStepsConverged: jko.result.allConverged,
            seconds: Summary.Seconds(sgd: sgdSeconds, jko: jkoSeconds, grid: gridSeconds))
        let output = Output(rows: rows, maxRiskGap: maxGap, summary: summary, jkoStates: jkoStates, sgdStates: sgdStates)
        if let directory {
            try write(output, spec: spec, model: model, directory: directory, pictures: pictures)
        }
        return output
    }

    /// The header and rows of `comparison.csv` (columns only where they apply).
    public static func table(_ rows: [Row]) -> (header: [String], rows: [[Double]]) {
        let hasGrid = rows.contains { $0.riskGrid != nil }
        let hasFree = rows.contains { $0.freeEnergyJKO != nil }
        let hasOverlap = rows.contains { $0.w2Overlap != nil }
        let hasA = rows.contains { $0.w2SecondLayer != nil }
        var header = ["t", "risk_jko", "risk_sgd"]
        if hasGrid { header.append("risk_grid") }
        header += ["risk_gap", "w2_jko_sgd", "w2_norm_marginal"]
        if hasOverlap { header.append("w2_overlap_marginal") }
        if hasA { header.append("w2_a_marginal") }
        if hasFree { header += ["free_energy_jko", "free_energy_sgd"] }
        let body = rows.map { r -> [Double] in
            var v = [CSVFormat.cleanTime(r.time), r.riskJKO, r.riskSGD]
            if hasGrid { v.append(r.riskGrid ?? .nan) }
            v += [r.riskGap, r.w2Clouds, r.w2Norm]
            if hasOverlap { v.append(r.w2Overlap ?? .nan) }
            if hasA { v.append(r.w2SecondLayer ?? .nan) }
            if hasFree { v += [r.freeEnergyJKO ?? .nan, r.freeEnergySGD ?? .nan] }
            return v
        }
        return (header, body)
    }

    static func write(_ output: Output, spec: ExperimentSpec, model: NetworkModel, directory: OutputDirectory, pictures: Bool) throws {
        let (header, body) = table(output.rows)
        try directory.writeCSV("comparison.csv", header: header, rows: body)
        try directory.writeSummary(output.summary)
        // The clouds compared: the common start and both ends (the last common time).
        let M = spec.particles, D = spec.parameterDimension
        if let start = output.jkoStates.first, let jko = output.jkoStates.last, let sgd = output.sgdStates.last {
            try directory.writeMatrix("particles_initial.npy", rows: M, columns: D, values: start)
            try directory.writeMatrix("particles_jko_final.npy", rows: M, columns: D, values: jko)
            try directory.writeMatrix("particles_sgd_final.npy", rows: M, columns: D, values: sgd)
        }
        guard pictures else { return }
        let rows = output.rows
        let t = rows.map(\.time)
        let sgdSettings = try spec.sgdSection(), jkoSpec = try spec.jkoSection()
        let setting = "M = \(spec.particles), eta = \(sgdSettings.eta), tau = \(jkoSpec.tau)"
        var riskSeries = [ChartSeries(name: "JKO (particles)", x: t, y: rows.map(\.riskJKO)),
                          ChartSeries(name: sgdSettings.noise ? "noisy SGD" : "SGD", x: t, y: rows.map(\.riskSGD), dashed: true)]
        if rows.contains(where: { $0.riskGrid != nil }) {
            riskSeries.append(ChartSeries(name: "JKO (grid)", x: t, y: rows.map { $0.riskGrid ?? .nan }))
        }
        try LineChart(title: "Risk along the flow (\(setting))", xLabel: "t", yLabel: "risk R", series: riskSeries)
            .write(to: directory.file("risk.svg"))

        // A risk and a distance between laws are different quantities: one chart each.
        try LineChart(title: "|R_JKO - R_SGD| along the flow (\(setting))", xLabel: "t", yLabel: "|risk gap|",
                      series: [ChartSeries(name: "|risk gap|", x: t, y: rows.map(\.riskGap), markers: true)])
            .write(to: directory.file("risk_gap.svg"))
        var distanceSeries = [ChartSeries(name: "W2 marginal |w|", x: t, y: rows.map(\.w2Norm))]
        if rows.contains(where: { $0.w2Overlap != nil }) {
            distanceSeries.append(ChartSeries(name: "W2 marginal <w,w*>/|w*|", x: t, y: rows.map { $0.w2Overlap ?? .nan }))
        }
        if rows.contains(where: { $0.w2SecondLayer != nil }) {
            distanceSeries.append(ChartSeries(name: "W2 marginal a", x: t, y: rows.map { $0.w2SecondLayer ?? .nan }))
        }
        distanceSeries.append(ChartSeries(name: "W2 full clouds", x: t, y: rows.map(\.w2Clouds), dashed: true))
        try LineChart(title: "W2 between the JKO and SGD particles (\(setting))", xLabel: "t", yLabel: "W2",
                      series: distanceSeries)
            .write(to: directory.file("w2_distances.svg"))

        // Marginal histograms at the start, the middle and the end.
        let picks = Array(Set([0, rows.count / 2, rows.count - 1])).sorted()
        let direction = spec.teacherDirection
        for k in picks {
            let mj = try model.marginals(particles: output.jkoStates[k], direction: direction)
            let ms = try model.marginals(particles: output.sgdStates[k], direction: direction)
            let time = String(format: "%.2f", rows[k].time)
            var quantities: [(String, String, [Double], [Double])] = [("norm", "|w|", mj.weightNorms, ms.weightNorms)]
            if let a = mj.overlaps, let b = ms.overlaps { quantities.append(("overlap", "<w, w*>/|w*|", a, b)) }
            if let a = mj.secondLayer, let b = ms.secondLayer { quantities.append(("a", "a", a, b)) }
            for (file, label, a, b) in quantities {
                try HistogramChart(title: "Marginal of \(label) at t = \(time)", xLabel: label,
                                   samples: [("JKO", a), ("SGD", b)], binCount: max(10, min(40, spec.particles / 10)))
                    .write(to: directory.file("marginal_\(file)_t\(time).svg"))
            }
        }
    }
}
