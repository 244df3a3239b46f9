import Foundation
import GradientFlows
import MeanField
import Wasserstein

/// `wasserstein compare --sweep-particles ... --sweep-eta ...`: how the gap between SGD and the
/// mean-field flow closes as the width `M` grows and the step `eta` shrinks (Docs/Theory.md section 6:
/// `1/sqrt(M) + sqrt(eta)` up to logarithms).
///
/// One reference run stands for the mean-field flow: a JKO run (particle scheme, `referenceParticles`
/// particles, its own seed), or with ``Reference/reduced(step:nodes:)`` the reduced flow of a
/// rotation-symmetric setting, which has no sampling error (``ReducedReference``). Every
/// `(M, eta, seed)` SGD run is compared with it at the times `k tau` (`k record_every` for the
/// reduced reference of a spec without `jko`), and `max_risk_gap = sup_t |R_ref(t) - R_M(t)|` is
/// averaged over the seeds.
public enum SweepRun {
    /// What stands for the mean-field flow.
    public enum Reference: Sendable {
        /// A particle JKO run with `referenceParticles` particles.
        case jko
        /// The reduced flow from a quantised initial law, RK4 with `step` (default ``ReducedReference/defaultStep``).
        case reduced(step: Double?, nodes: ReducedNodesSpec)
    }

    /// One cell of the sweep.
    public struct Cell: Sendable {
        public var particles: Int
        public var eta: Double
        /// `max_risk_gap` of each seed.
        public var gaps: [Double]
        public var mean: Double { gaps.reduce(0, +) / Double(max(1, gaps.count)) }
        public var standardDeviation: Double {
            guard gaps.count > 1 else { return 0 }
            let m = mean
            return (gaps.reduce(0) { $0 + ($1 - m) * ($1 - m) } / Double(gaps.count - 1)).squareRoot()
        }
    }

    /// What a sweep produced.
    public struct Output: Sendable {
        public var cells: [Cell]
        /// Least-squares slope of `log gap` against `log M`, per `eta`, with its 95% bootstrap
        /// interval (``bootstrapSlopeInterval(x:samples:replicates:seed:)``; `nil` with one seed).
        public var slopesInParticles: [(eta: Double, slope: Double, interval: ClosedRange<Double>?)]
        /// Least-squares slope of `log gap` against `log eta`, per `M`, with its interval.
        public var slopesInEta: [(particles: Int, slope: Double, interval: ClosedRange<Double>?)]
        public var referenceParticles: Int
        public var summary: Summary
        /// How the pictures name the reference.
        public var referenceName: String? = nil
    }

    /// `summary.json` of a sweep.
    public struct Summary: RunSummary {
        public let command = "compare --sweep"
        public var reference: Reference
        public var seeds: Int
        public var cells: [Cell]
        public var slopeInParticles: [SlopeInParticles]
        public var slopeInEta: [SlopeInEta]
        public let slopeCI95Method = "percentile bootstrap over the seeds of each cell, 2000 replicates"
        public let expected = "max_risk_gap ~ 1/sqrt(M) + sqrt(eta): slope -1/2 in M at small eta, +1/2 in eta at large M, until the reference's own error dominates"

        /// The mean-field reference: a particle JKO run (`particles`, `tau`, `seed`,
        /// `all_steps_converged`) or the reduced flow (`points`, `step`, `interval`, `kernels`).
        public struct Reference: RunSummary {
            public var scheme: String
            public var particles: Int? = nil
            public var points: Int? = nil
            public var tau: Double? = nil
            public var step: Double? = nil
            public var interval: Double? = nil
            public var seed: Int? = nil
            public var allStepsConverged: Bool? = nil
            public var kernels: String? = nil
        }

        /// One `(M, eta)` cell: the mean, standard deviation and per-seed values of the largest gap.
        public struct Cell: RunSummary {
            public var particles: Int
            public var eta: Double
            public var maxRiskGap: Double
            public var maxRiskGapStd: Double
            public var maxRiskGapPerSeed: [Double]
        }

        /// The slope in `log M` at one `eta`, with its 95% interval (`null` with one seed).
        public struct SlopeInParticles: RunSummary {
            public var eta: Double
            public var slope: Double
            @NullIfAbsent public var slopeCI95: [Double]?
        }

        /// The slope in `log eta` at one `M`, with its 95% interval.
        public struct SlopeInEta: RunSummary {
            public var particles: Int
            public var slope: Double
            @NullIfAbsent public var slopeCI95: [Double]?
        }
    }

    /// Parses a comma-separated list of positive numbers (`--sweep-eta 0.01,0.003`).
    public static func parseList(_ text: String, option: String) throws -> [Double] {
        let parts = text.split(separator: ",", omittingEmptySubsequences: false).map { $0.trimmingCharacters(in: .whitespaces) }
        guard !parts.isEmpty, !text.trimmingCharacters(in: .whitespaces).isEmpty else {
            throw ExperimentError.invalidList(option: option, reason: "empty list")
        }
        return try parts.map { p in
            guard let v = Double(p), v.isFinite else { throw ExperimentError.invalidList(option: option, reason: "'\(MessageText.excerpt(p))' is not a number") }
            guard v > 0 else { throw ExperimentError.invalidList(option: option, reason: "values must be > 0, got \(p)") }
            return v
        }
    }

    /// Parses a comma-separated list of positive integers (`--sweep-particles 100,400`).
    public static func parseIntegerList(_ text: String, option: String) throws -> [Int] {
        try parseList(text, option: option).map { v in
            guard v == v.rounded(), v <= 1e7 else { throw ExperimentError.invalidList(option: option, reason: "'\(v)' is not a whole number of particles") }
            return Int(clampingCount: v, limit: 10_000_000)
        }
    }

    /// Least-squares slope of `log y` against `log x`.
    public static func logLogSlope(x: [Double], y: [Double]) -> Double? {
        let pts = zip(x, y).filter { $0.0 > 0 && $0.1 > 0 }.map { (log($0.0), log($0.1)) }
        guard pts.count >= 2 else { return nil }
        let mx = pts.reduce(0) { $0 + $1.0 } / Double(pts.count), my = pts.reduce(0) { $0 + $1.1 } / Double(pts.count)
        let sxx = pts.reduce(0) { $0 + ($1.0 - mx) * ($1.0 - mx) }
        guard sxx > 0 else { return nil }
        return pts.reduce(0) { $0 + ($1.0 - mx) * ($1.1 - my) } / sxx
    }

    /// A 95% interval for the log-log slope of the cell means, by a percentile bootstrap over
    /// the seeds: each replicate redraws every cell's per-seed values with replacement (as many
    /// as it has), refits the slope through the new means, and the interval runs from the 2.5%
    /// to the 97.5% quantile of the refitted slopes.
    ///
    /// It tells how much the fitted slope owes to the particular seeds; it is rough with few
    /// seeds (two seeds give each cell three possible means) and says nothing about the bias
    /// of the reference run.
    ///
    /// - Parameters:
    ///   - x: the cells' abscissae (`M` or `eta`), positive.
    ///   - samples: per cell, the values of its seeds (positive; others are left out of a fit).
    ///   - replicates: bootstrap replicates.
    ///   - seed: seeds the resampling, so that a sweep's interval is reproducible.
    /// - Returns: `nil` when a cell has fewer than two values, when fewer than two cells remain,
    ///   or when most replicates cannot be fitted.
    public static func bootstrapSlopeInterval(x: [Double], samples: [[Double]], replicates: Int = 2000,
                                              seed: UInt64) -> ClosedRange<Double>? {
        guard x.count == samples.count, x.count >= 2, replicates >= 1, samples.allSatisfy({ $0.count >= 2 }) else { return nil }
        var g = Xoshiro256StarStar(seed: seed)
        var slopes = [Double]()
        slopes.reserveCapacity(replicates)
        var means = [Double](repeating: 0, count: x.count)
        for _ in 0 ..< replicates {
            for (c, values) in samples.enumerated() {
                var total = 0.0
                for _ in 0 ..< values.count { total += values[g.nextIndex(below: values.count)] }
                means[c] = total / Double(values.count)
            }
            if let slope = logLogSlope(x: x, y: means), slope.isFinite { slopes.append(slope) }
        }
        guard slopes.count * 2 >= replicates else { return nil }
        slopes.sort()
        let last = slopes.count - 1
        let low = slopes[Int(clampingCount: (0.025 * Double(last)).rounded(), limit: last)]
        let high = slopes[Int(clampingCount: (0.975 * Double(last)).rounded(), limit: last)]
        return low ... high
    }

    /// Runs the sweep.
    ///
    /// - Parameters:
    ///   - spec: the experiment; its `sgd` and `jko` sections set the dynamics and the reference.
    ///   - particles: the widths `M`.
    ///   - etas: the steps `eta`; each must divide `jko.tau`.
    ///   - seeds: SGD runs per cell (seeds `spec.seed`, `spec.seed + 1`, ...).
    ///   - referenceParticles: the JKO reference's width (default: the largest `M`).
    ///   - referenceStart: the reference's initial particles instead of a random draw (for
    ///     example quantiles of the initial law, whose error is `O(1/M)` instead of `O(1/sqrt(M))`).
    ///   - kind: the reference: a particle JKO run (default) or the reduced mean-field flow.
    ///   - directory: where to write `sweep.csv`, `summary.json` and the pictures; `nil` writes nothing.
    ///   - progress: called with the fraction done and a short status text.
    public static func run(spec: ExperimentSpec, particles: [Int], etas: [Double], seeds: Int,
                           referenceParticles: Int? = nil, referenceStart: PointCloud? = nil, reference kind: Reference = .jko,
                           directory: OutputDirectory?, progress: (@Sendable (Double, String) -> Void)? = nil) throws -> Output {
        _ = try spec.modelSection("the sweep needs a model")
        if case .jko = kind { _ = try spec.jkoSection("the sweep needs tau") }
        let sgdSettings = try spec.sgdSection("the sweep needs the particle dynamics")
        guard seeds >= 1 else { throw ExperimentError.invalidList(option: "--seeds", reason: "must be >= 1, got \(seeds)") }
        guard !particles.isEmpty, particles.allSatisfy({ $0 >= 1 }) else {
            throw ExperimentError.invalidList(option: "--sweep-particles", reason: "needs widths >= 1")
        }
        guard !etas.isEmpty else { throw ExperimentError.invalidList(option: "--sweep-eta", reason: "empty list") }
        // The common times k tau: jko.tau, or record_every for a reduced reference without jko.
        let tau = spec.jko?.tau ?? spec.recordEvery
        let intervalName = spec.jko != nil ? "jko.tau" : "record_every"
        // Every eta must divide tau (checked before any work is done).
        for eta in etas {
            guard (try? CompareRun.stride(interval: tau, eta: eta)) != nil else {
                throw ExperimentError.invalidList(option: "--sweep-eta", reason: "\(eta) does not divide \(intervalName) = \(tau)")
            }
            guard eta <= spec.horizon else { throw ExperimentError.invalidList(option: "--sweep-eta", reason: "\(eta) exceeds the horizon") }
        }
        let reference = referenceStart?.count ?? referenceParticles ?? particles.max()!
        guard reference >= 1 else { throw ExperimentError.invalidList(option: "--reference-particles", reason: "must be >= 1") }
        try spec.checkMemory(spec.sweepMemory(particles: particles, etas: etas, referenceParticles: reference, reference: kind))
        let total = Double(particles.count * etas.count * seeds + 1)
        var done = 0.0

        // The mean-field reference, independent of every SGD run.
        let referenceRisk: [Double]
        let referenceSummary: Summary.Reference
        switch kind {
        case .jko:
            // JKO with its own seed.
            var refSpec = spec
            refSpec.particles = reference
            refSpec.seed = spec.seed &+ 1_000_003
            let ref = try JKORun.run(spec: refSpec, directory: nil, scheme: .particle, initialParticles: referenceStart) { f, text in
                progress?(f / total, "reference " + text)
            }
            referenceRisk = ref.result.reports.map { JKORun.risk(of: $0, lambda: spec.energy.lambda) }
            referenceSummary = Summary.Reference(scheme: "particle JKO", particles: reference, tau: tau,
                                                 seed: Int(truncatingIfNeeded: refSpec.seed), allStepsConverged: ref.result.allConverged)
        case .reduced(let requested, let nodes):
            let reduced = try ReducedReference(spec: spec)
            let step = ReducedReference.step(requested: requested, interval: tau)
            let count = Int(clampingCount: (spec.horizon / tau + 1e-9).rounded(.down), limit: 1 << 40) + 1
            let records = try reduced.risks(spec: spec, interval: tau, count: count, step: step, nodes: nodes) { f in
                progress?(f / total, "reduced reference")
            }
            referenceRisk = records.map(\.risk)
            referenceSummary = Summary.Reference(scheme: "reduced flow (RK4)", points: records[0].law.count, step: step,
                                                 interval: tau, kernels: reduced.kernels.kernelDescription)
        }
        done += 1

        var cells = [Cell]()
        for m in particles {
            for eta in etas {
                var gaps = [Double]()
                for s in 0 ..< seeds {
                    var run = spec
                    run.particles = m
                    var runSGD = sgdSettings
                    runSGD.eta = eta
                    if let sgdSeed = sgdSettings.seed { runSGD.seed = sgdSeed &+ UInt64(s) }
                    run.sgd = runSGD
                    run.seed = spec.seed &+ UInt64(s)
                    run.recordEvery = tau
                    let strideSteps = try CompareRun.stride(interval: tau, eta: eta)
                    let before = done
                    let out = try SGDRun.run(spec: run, directory: nil) { f, text in
                        progress?((before + f) / total, "M=\(m) eta=\(eta) seed \(s + 1)/\(seeds) " + text)
                    }
                    var gap = 0.0
                    for r in out.trajectory.records where r.step % strideSteps == 0 {
                        let k = r.step / strideSteps
                        guard k < referenceRisk.count else { continue }
                        gap = max(gap, abs(r.risk - referenceRisk[k]))
                    }
                    if case .diverged = out.trajectory.status { gap = .infinity }
                    gaps.append(gap)
                    done += 1
                }
                cells.append(Cell(particles: m, eta: eta, gaps: gaps))
            }
        }
        // The bootstrap's own stream, fixed by the spec's seed.
        let bootstrapSeed = spec.seed ^ 0xB007_5EED
        let slopesM = etas.compactMap { eta -> (eta: Double, slope: Double, interval: ClosedRange<Double>?)? in
            let c = cells.filter { $0.eta == eta }
            let x = c.map { Double($0.particles) }
            return logLogSlope(x: x, y: c.map(\.mean)).map {
                (eta, $0, bootstrapSlopeInterval(x: x, samples: c.map(\.gaps), seed: bootstrapSeed))
            }
        }
        let slopesEta = particles.compactMap { m -> (particles: Int, slope: Double, interval: ClosedRange<Double>?)? in
            let c = cells.filter { $0.particles == m }
            return logLogSlope(x: c.map(\.eta), y: c.map(\.mean)).map {
                (m, $0, bootstrapSlopeInterval(x: c.map(\.eta), samples: c.map(\.gaps), seed: bootstrapSeed))
            }
        }
        func interval(_ i: ClosedRange<Double>?) -> [Double]? { i.map { [$0.lowerBound, $0.upperBound] } }
        let summary = Summary(
            reference: referenceSummary,
            seeds: seeds,
            cells: cells.map { c in
                Summary.Cell(particles: c.particles, eta: c.eta, maxRiskGap: c.mean, maxRiskGapStd: c.standardDeviation,
                             maxRiskGapPerSeed: c.gaps)
            },
            slopeInParticles: slopesM.map { Summary.SlopeInParticles(eta: $0.eta, slope: $0.slope, slopeCI95: interval($0.interval)) },
            slopeInEta: slopesEta.map { Summary.SlopeInEta(particles: $0.particles, slope: $0.slope, slopeCI95: interval($0.interval)) })
        var output = Output(cells: cells, slopesInParticles: slopesM, slopesInEta: slopesEta, referenceParticles: reference, summary: summary)
        if case .reduced = kind { output.referenceName = "the reduced flow" }
        if let directory {
            try directory.writeCSV("sweep.csv", header: ["particles", "eta", "seeds", "max_risk_gap", "max_risk_gap_std"],
                                   rows: cells.map { [Double($0.particles), $0.eta, Double($0.gaps.count), $0.mean, $0.standardDeviation] })
            try directory.writeSummary(summary)
            try pictures(output, directory: directory)
        }
        return output
    }

    /// `slope -0.45 (95% CI -0.60 to -0.31)`: a fitted slope and its interval, for legends.
    public static func describeSlope(_ slope: Double, interval: ClosedRange<Double>?) -> String {
        String(format: "slope %.2f", slope) + (interval.map { String(format: " (95%% CI %.2f to %.2f)", $0.lowerBound, $0.upperBound) } ?? "")
    }

    static func pictures(_ output: Output, directory: OutputDirectory) throws {
        let etas = Array(Set(output.cells.map(\.eta))).sorted(by: >)
        let widths = Array(Set(output.cells.map(\.particles))).sorted()
        var series = [ChartSeries]()
        for eta in etas {
            let c = output.cells.filter { $0.eta == eta }.sorted { $0.particles < $1.particles }
            let fit = output.slopesInParticles.first { $0.eta == eta }
            let label = "eta = \(eta)" + (fit.map { ", " + describeSlope($0.slope, interval: $0.interval) } ?? "")
            series.append(ChartSeries(name: label, x: c.map { Double($0.particles) }, y: c.map(\.mean), markers: true,
                                      yErrors: c.map(\.standardDeviation)))
        }
        if let first = widths.first, let last = widths.last, last > first,
           let top = output.cells.filter({ $0.particles == first }).map(\.mean).max() {
            // The 1/sqrt(M) law through the first point, for reference.
            series.append(ChartSeries(name: "slope -1/2 (1/sqrt(M))", x: [Double(first), Double(last)],
                                      y: [top, top * (Double(first) / Double(last)).squareRoot()], dashed: true))
        }
        // Bars: one standard deviation over the seeds; legend: the fit and its 95% bootstrap interval.
        try LineChart(title: "max |R_SGD - R_ref| against width M (reference: \(output.referenceName ?? "JKO with M = \(output.referenceParticles)"))",
                      xLabel: "particles M", yLabel: "max risk gap", xScale: .logarithmic, yScale: .logarithmic, series: series)
            .write(to: directory.file("sweep_particles.svg"))
        if etas.count >= 2 {
            var s2 = [ChartSeries]()
            for m in widths {
                let c = output.cells.filter { $0.particles == m }.sorted { $0.eta < $1.eta }
                let fit = output.slopesInEta.first { $0.particles == m }
                s2.append(ChartSeries(name: "M = \(m)" + (fit.map { ", " + describeSlope($0.slope, interval: $0.interval) } ?? ""),
                                      x: c.map(\.eta), y: c.map(\.mean), markers: true, yErrors: c.map(\.standardDeviation)))
            }
            if let m = widths.last, let e0 = etas.last, let e1 = etas.first,
               let top = output.cells.first(where: { $0.particles == m && $0.eta == e1 })?.mean {
                // The sqrt(eta) law through the widest network's largest-eta point, for reference.
                s2.append(ChartSeries(name: "slope 1/2 (sqrt(eta))", x: [e0, e1], y: [top * (e0 / e1).squareRoot(), top], dashed: true))
            }
            try LineChart(title: "max |R_SGD - R_ref| against step eta (reference: \(output.referenceName ?? "JKO"))", xLabel: "eta", yLabel: "max risk gap",
                          xScale: .logarithmic, yScale: .logarithmic, series: s2)
                .write(to: directory.file("sweep_eta.svg"))
        }
    }
}
