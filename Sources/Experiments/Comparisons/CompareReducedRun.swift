import Foundation
import GradientFlows
import MeanField
import Wasserstein

/// `wasserstein compare --reference reduced`: the spec's particle dynamics against the mean-field
/// flow itself, computed without sampling error by the reduced flow of the rotation-symmetric
/// setting (``ReducedReference``), at the common times `t = k tau` (`jko.tau`, or `record_every`
/// when the spec has no `jko` section).
///
/// The risk gap is taken against the quantised reference. A quantised law is close to the initial
/// law in the sense of smooth integrals (the risk), not in `W2` (eight Gauss-Hermite nodes for
/// `a ~ N(0, 1)` are 0.33 away from it in `W2`), so the distances are taken from a **common
/// start**, as ``CompareRun`` does with JKO: a second reduced run starts from the SGD's own initial
/// particles mapped to `z = (a, s, r)`, and at every time the report gives `W2` in `z` between it
/// and the SGD cloud mapped to `z` (exact network simplex) and the sorted 1-D `W2` of the marginals
/// of `|w|`, `<w, w*>/|w*|` and `a`. By Docs/Theory.md 7.4 the first is exactly the `W2` between the
/// cloud's symmetrisation (its average over the rotations fixing the teacher's span) and the
/// mean-field flow of the symmetrised initial cloud, and a lower bound on the `W2` from the cloud
/// itself; unlike the full-dimensional `W2` between two clouds it has no `M^(-1/D)` floor.
public enum CompareReducedRun {
    /// One common time.
    public struct Row: Sendable {
        public var time: Double
        public var riskReduced: Double
        public var riskSGD: Double
        /// The risk of the reduced flow from the SGD's initial particles (common start).
        public var riskCommonStart: Double
        /// `W2` in `z` between the SGD cloud's reduced coordinates and the common-start flow.
        public var w2Reduced: Double
        public var w2Norm: Double
        public var w2Overlap: Double?
        public var w2SecondLayer: Double?
        public var riskGap: Double { abs(riskReduced - riskSGD) }
    }

    /// What a comparison produced.
    public struct Output: Sendable {
        public var rows: [Row]
        public var maxRiskGap: Double
        public var summary: Summary
    }

    /// `summary.json` of `compare --reference reduced`.
    public struct Summary: RunSummary {
        public let command = "compare --reference reduced"
        public var maxRiskGap: Double
        @NullIfAbsent public var finalRiskGap: Double?
        /// The largest `W2` in `z` between the SGD cloud and the common-start flow.
        @NullIfAbsent public var maxW2Reduced: Double?
        @NullIfAbsent public var maxW2NormMarginal: Double?
        @NullIfAbsent public var maxW2OverlapMarginal: Double?
        @NullIfAbsent public var maxW2AMarginal: Double?
        @NullIfAbsent public var riskFinalReduced: Double?
        @NullIfAbsent public var riskFinalSGD: Double?
        @NullIfAbsent public var riskFinalCommonStart: Double?
        /// The number of common times compared.
        public var times: Int
        public var reference: Reference
        public var settings: Settings
        /// `completed` or `diverged`, and where the SGD diverged.
        public var sgdStatus: String
        public var divergedAtStep: Int?
        public var divergedAtTime: Double?
        public var seconds: Seconds

        /// The reduced reference.
        public struct Reference: RunSummary {
            public let scheme = "reduced flow (RK4)"
            public var points: Int
            /// The Runge-Kutta step.
            public var step: Double
            public var kernels: String
        }

        /// What was compared.
        public struct Settings: RunSummary {
            public var particles: Int
            public var inputDimension: Int
            public var activation: String
            public var horizon: Double
            /// The time between two common times.
            public var interval: Double
            public var eta: Double
            public var sgdKind: String
            public var lambda: Double
            public var seed: Int
        }

        /// The time each part took.
        public struct Seconds: RunSummary {
            public var reference: Double
            public var sgd: Double
            public var commonStart: Double
        }
    }

    /// Runs the SGD of `spec` and the reduced reference, and compares them; writes
    /// `comparison.csv`, `summary.json`, `risk.svg`, `risk_gap.svg` and `w2_distances.svg` when
    /// `directory` is given.
    ///
    /// - Parameters:
    ///   - spec: the experiment (a rotation-symmetric setting with an `sgd` section).
    ///   - directory: where to write the files; `nil` writes nothing.
    ///   - referenceStep: the reference's Runge-Kutta step (default 0.01, at most the interval).
    ///   - nodes: the quantisation of the reference's initial law.
    ///   - progress: called with the fraction done and a short status text.
    public static func run(spec: ExperimentSpec, directory: OutputDirectory?, referenceStep: Double? = nil,
                           nodes: ReducedNodesSpec = ReducedNodesSpec(),
                           progress: (@Sendable (Double, String) -> Void)? = nil) throws -> Output {
        let reduced = try ReducedReference(spec: spec)
        let sgd = try spec.sgdSection("compare needs the particle dynamics")
        let modelSpec = try spec.modelSection("compare needs a model")
        let interval = spec.jko?.tau ?? spec.recordEvery
        let intervalKey = spec.jko != nil ? "jko.tau" : "record_every"
        guard let strideSteps = try? CompareRun.stride(interval: interval, eta: sgd.eta) else {
            throw ExperimentError.invalidSpec(key: intervalKey, reason: "must be a whole multiple of sgd.eta (\(sgd.eta)) so that the reference and SGD share their sampling times, got \(interval)")
        }
        // Before the reference's work: SGD keeps the particles of every common time.
        try spec.checkMemory(spec.compareReducedMemory(interval: interval, intervalKey: intervalKey, nodes: nodes))
        let count = Int(clampingCount: (spec.horizon / interval + 1e-9).rounded(.down), limit: 1 << 40) + 1
        let step = ReducedReference.step(requested: referenceStep, interval: interval)
        let model = try spec.networkModel()
        let clock = ContinuousClock()

        // The reference first: a non-symmetric or noisy spec fails before any SGD work.
        let t0 = clock.now
        let reference = try reduced.risks(spec: spec, interval: interval, count: count, step: step, nodes: nodes) { f in
            progress?(0.5 * f, "reduced reference")
        }
        let referenceSeconds = (clock.now - t0).timeInSeconds

        var sgdSpec = spec
        sgdSpec.recordEvery = interval
        let t1 = clock.now
        let run = try SGDRun.run(spec: sgdSpec, directory: nil, recordParticles: true) { f, text in progress?(0.5 + 0.45 * f, "sgd " + text) }
        let sgdSeconds = (clock.now - t1).timeInSeconds

        var byStep = [Int: TrajectoryRecord]()
        for r in run.trajectory.records { byStep[r.step] = r }
        guard let startParticles = byStep[0]?.particles else {
            throw ExperimentError.invalidSpec(key: "sgd", reason: "the particle dynamics recorded no initial state")
        }

        // The common start: the reduced flow from the SGD's own initial particles.
        let t2 = clock.now
        let flow = try ReducedReferenceFlow(kernels: reduced.kernels, lambda: spec.energy.lambda, step: step)
        let common = try flow.run(from: ReducedLaw(projecting: startParticles, model: model, basis: reduced.basis),
                                  interval: interval, count: count) { f in progress?(0.95 + 0.05 * f, "common start") }
        let commonSeconds = (clock.now - t2).timeInSeconds

        let exact = NetworkSimplexWorkspace()
        let direction = spec.teacherDirection
        let k = reduced.setting.spanDimension
        let o = reduced.setting.overlapOffset
        var rows = [Row]()
        for (i, ref) in reference.enumerated() {
            guard let s = byStep[i * strideSteps], let particles = s.particles, i < common.count else { break }
            let cloud = try ReducedLaw(projecting: particles, model: model, basis: reduced.basis)
            let law = common[i].law
            let Dz = law.coordinateCount
            let w2 = try exact.solve(TransportProblem(
                source: PointCloud(coordinates: cloud.points, dimension: Dz, name: "SGD particles in z"),
                target: PointCloud(coordinates: law.points, dimension: Dz, name: "reduced flow in z"))).w2
            func sorted(_ a: [Double]?, _ b: [Double]?) throws -> Double? {
                guard let a, let b else { return nil }
                return try SortedSolver(planOutput: .none).solve(TransportProblem(source: PointCloud(values: a), target: PointCloud(values: b))).w2
            }
            // Marginals in z: |w| = sqrt(|s|^2 + r^2), the overlap s_1 (e_1 = w*/|w*|), a.
            func norms(_ l: ReducedLaw) -> [Double] {
                (0 ..< l.count).map { j in
                    var q = 0.0
                    for c in o ..< Dz { q += l.points[j * Dz + c] * l.points[j * Dz + c] }
                    return q.squareRoot()
                }
            }
            let overlap = direction != nil && k == 1
            rows.append(Row(time: ref.time, riskReduced: ref.risk, riskSGD: s.risk, riskCommonStart: common[i].risk, w2Reduced: w2,
                            w2Norm: try sorted(norms(cloud), norms(law))!,
                            w2Overlap: overlap ? try sorted(cloud.column(o), law.column(o)) : nil,
                            w2SecondLayer: o == 1 ? try sorted(cloud.column(0), law.column(0)) : nil))
        }
        progress?(1, "done")
        let maxGap = rows.map(\.riskGap).max() ?? 0
        var divergence: (step: Int, time: Double)? = nil
        if case .diverged(let step, let time) = run.trajectory.status { divergence = (step, time) }
        let summary = Summary(
            maxRiskGap: maxGap,
            finalRiskGap: rows.last?.riskGap,
            maxW2Reduced: rows.map(\.w2Reduced).max(),
            maxW2NormMarginal: rows.map(\.w2Norm).max(),
            maxW2OverlapMarginal: rows.compactMap(\.w2Overlap).max(),
            maxW2AMarginal: rows.compactMap(\.w2SecondLayer).max(),
            riskFinalReduced: rows.last?.riskReduced,
            riskFinalSGD: rows.last?.riskSGD,
            riskFinalCommonStart: rows.last?.riskCommonStart,
            times: rows.count,
            reference: Summary.Reference(points: reference[0].law.count, step: step, kernels: reduced.kernels.kernelDescription),
            settings: Summary.Settings(particles: spec.particles, inputDimension: model.inputDimension, activation: modelSpec.activation,
                                       horizon: spec.horizon, interval: interval, eta: sgd.eta, sgdKind: sgd.kind.rawValue,
                                       lambda: spec.energy.lambda, seed: Int(truncatingIfNeeded: spec.seed)),
            sgdStatus: divergence == nil ? "completed" : "diverged",
            divergedAtStep: divergence?.step,
            divergedAtTime: divergence?.time,
            seconds: Summary.Seconds(reference: referenceSeconds, sgd: sgdSeconds, commonStart: commonSeconds))
        let output = Output(rows: rows, maxRiskGap: maxGap, summary: summary)
        if let directory { try write(output, spec: spec, directory: directory) }
        return output
    }

    /// The header and rows of `comparison.csv`.
    public static func table(_ rows: [Row]) -> (header: [String], rows: [[Double]]) {
        let hasOverlap = rows.contains { $0.w2Overlap != nil }
        let hasA = rows.contains { $0.w2SecondLayer != nil }
        var header = ["t", "risk_reduced", "risk_sgd", "risk_gap", "risk_common_start", "w2_reduced", "w2_norm_marginal"]
        if hasOverlap { header.append("w2_overlap_marginal") }
        if hasA { header.append("w2_a_marginal") }
        let body = rows.map { r -> [Double] in
            var v = [CSVFormat.cleanTime(r.time), r.riskReduced, r.riskSGD, r.riskGap, r.riskCommonStart, r.w2Reduced, r.w2Norm]
            if hasOverlap { v.append(r.w2Overlap ?? .nan) }
            if hasA { v.append(r.w2SecondLayer ?? .nan) }
            return v
        }
        return (header, body)
    }

    static func write(_ output: Output, spec: ExperimentSpec, directory: OutputDirectory) throws {
        let (header, body) = table(output.rows)
        try directory.writeCSV("comparison.csv", header: header, rows: body)
        try directory.writeSummary(output.summary)
        let rows = output.rows
        let t = rows.map(\.time)
        let modelSpec = try spec.modelSection(), sgd = try spec.sgdSection()
        let setting = "d = \(modelSpec.inputDimension), M = \(spec.particles), eta = \(sgd.eta)"
        try LineChart(title: "Risk: SGD against the reduced mean-field flow (\(setting))", xLabel: "t", yLabel: "risk R",
                      series: [ChartSeries(name: "reduced flow (M = infinity)", x: t, y: rows.map(\.riskReduced)),
                               ChartSeries(name: sgd.noise ? "noisy SGD" : "SGD", x: t, y: rows.map(\.riskSGD), dashed: true),
                               ChartSeries(name: "reduced flow from the SGD start", x: t, y: rows.map(\.riskCommonStart))])
            .write(to: directory.file("risk.svg"))
        // A risk and distances between laws: one chart each, as `compare` draws them.
        try LineChart(title: "|R_SGD - R_reduced| along the flow (\(setting))", xLabel: "t", yLabel: "|risk gap|",
                      series: [ChartSeries(name: "|risk gap|", x: t, y: rows.map(\.riskGap), markers: true)])
            .write(to: directory.file("risk_gap.svg"))
        var gaps = [ChartSeries(name: "W2 in z (common start)", x: t, y: rows.map(\.w2Reduced)),
                    ChartSeries(name: "W2 marginal |w|", x: t, y: rows.map(\.w2Norm))]
        if rows.contains(where: { $0.w2Overlap != nil }) {
            gaps.append(ChartSeries(name: "W2 marginal <w,w*>/|w*|", x: t, y: rows.map { $0.w2Overlap ?? .nan }))
        }
        if rows.contains(where: { $0.w2SecondLayer != nil }) {
            gaps.append(ChartSeries(name: "W2 marginal a", x: t, y: rows.map { $0.w2SecondLayer ?? .nan }))
        }
        try LineChart(title: "SGD against the reduced flow: W2 from a common start (\(setting))", xLabel: "t", yLabel: "W2",
                      series: gaps)
            .write(to: directory.file("w2_distances.svg"))
    }
}
