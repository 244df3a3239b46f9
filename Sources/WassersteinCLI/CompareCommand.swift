import ArgumentParser
import Experiments
import Foundation

/// `wasserstein compare SPEC --out DIR [--sweep-particles ... --sweep-eta ...]`.
struct CompareCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "compare",
        abstract: "Compare the JKO flow with SGD on one spec, or sweep the gap over M and eta.",
        discussion: """
        Without sweep options: runs the particle JKO scheme (and the grid scheme when D <= 2 and the spec's \
        jko section has bounds and points_per_axis) and the spec's particle dynamics from the same initial \
        particles, and writes DIR/comparison.csv, DIR/summary.json (max_risk_gap, settings) and SVG pictures \
        (risk.svg, risk_gap.svg, w2_distances.svg, marginal_*.svg) and the particles compared (particles_initial.npy, particles_jko_final.npy, particles_sgd_final.npy). jko.tau must be a whole multiple of sgd.eta.
        With --sweep-particles and/or --sweep-eta: compares SGD runs of every (M, eta) with one reference \
        JKO run, averaging max_risk_gap over --seeds seeds; writes DIR/sweep.csv, DIR/summary.json and \
        log-log plots with fitted slopes (sweep_particles.svg, sweep_eta.svg).
        With --reference reduced (Gaussian inputs, a teacher spanning one or two directions, w.mean = 0, no \
        noise): the reference is the reduced mean-field flow without sampling error instead of JKO; the common \
        times are k jko.tau, or k record_every without a jko section.
        """
    )

    @Argument(help: "The experiment spec (JSON) with sgd and jko sections.")
    var spec: String

    @Option(help: "Output folder (created if needed; written only when the run succeeds).")
    var out: String

    @Option(name: .customLong("sweep-particles"), help: "Comma-separated widths M, e.g. 100,400,1600.")
    var sweepParticles: String?

    @Option(name: .customLong("sweep-eta"), help: "Comma-separated SGD steps, e.g. 0.01,0.005,0.0025 (each must divide jko.tau).")
    var sweepEta: String?

    @Option(help: "SGD seeds per sweep cell.")
    var seeds: Int = 3

    @Option(name: .customLong("reference-particles"), help: "Width of the reference JKO run of a sweep (default: the largest M).")
    var referenceParticles: Int?

    @OptionGroup var memory: MemoryLimitOption

    @OptionGroup var referenceOptions: ReferenceOptions

    func run() throws {
        let experiment = try memory.apply(to: ExperimentSpec.load(path: spec))
        let reduced = try referenceOptions.isReduced(referenceParticles: referenceParticles)
        let progress = ProgressReporter(label: "compare")
        if sweepParticles != nil || sweepEta != nil {
            let widths = try sweepParticles.map { try SweepRun.parseIntegerList($0, option: "--sweep-particles") } ?? [experiment.particles]
            let etas = try sweepEta.map { try SweepRun.parseList($0, option: "--sweep-eta") } ?? [experiment.sgd?.eta ?? 0]
            guard seeds >= 1 else { throw CommandError("--seeds must be >= 1, got \(seeds)") }
            if let r = referenceParticles, r < 1 { throw CommandError("--reference-particles must be >= 1, got \(r)") }
            let output = try OutputDirectory.writing(to: out, protecting: [spec]) { directory in
                try SweepRun.run(spec: experiment, particles: widths, etas: etas, seeds: seeds,
                                 referenceParticles: referenceParticles,
                                 reference: referenceOptions.sweepReference(referenceParticles: referenceParticles),
                                 directory: directory, progress: progress.callback)
            }
            progress.finish()
            let against = reduced ? "the reduced flow" : "a JKO reference of M = \(output.referenceParticles)"
            print("sweep: \(output.cells.count) cells x \(seeds) seeds against \(against) -> \(out)")
            for c in output.cells {
                print(String(format: "  M = %6d  eta = %-8g  max_risk_gap = %.4g +- %.2g", c.particles, c.eta, c.mean, c.standardDeviation))
            }
            for s in output.slopesInParticles { print(String(format: "  slope in M at eta = %g: %.2f", s.eta, s.slope) + Self.interval(s.interval)) }
            for s in output.slopesInEta { print(String(format: "  slope in eta at M = %d: %.2f", s.particles, s.slope) + Self.interval(s.interval)) }
            return
        }
        guard referenceParticles == nil else { throw CommandError("--reference-particles only applies to a sweep") }
        if reduced { return try referenceOptions.runReducedComparison(spec: experiment, specPath: spec, out: out) }
        let output = try OutputDirectory.writing(to: out, protecting: [spec]) { directory in
            try CompareRun.run(spec: experiment, directory: directory, progress: progress.callback)
        }
        progress.finish()
        let last = output.rows.last
        print("compare: \(output.rows.count) common times, max |risk gap| = \(g6(output.maxRiskGap)), final risk JKO \(g6(last?.riskJKO ?? .nan)) / SGD \(g6(last?.riskSGD ?? .nan)) -> \(out)")
    }

    /// `  (95% CI -0.60 to -0.31)` after a slope, or nothing with a single seed.
    static func interval(_ i: ClosedRange<Double>?) -> String {
        i.map { String(format: "  (95%% CI %.2f to %.2f)", $0.lowerBound, $0.upperBound) } ?? ""
    }
}
