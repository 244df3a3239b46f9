// JKO against SGD for a ReLU teacher in d = 20: the particle JKO scheme of the mean-field risk and
// online SGD, from the same particles, compared at common times (`CompareRun`, the library behind
// `wasserstein compare`).
//
//     swift run -c release example-jko-versus-sgd [--out DIR] [--spec FILE] [--particles M]
//
// The experiment is Examples/JKOVersusSGD/spec.json (read from the source tree; `--spec` reads
// another); the same run is `wasserstein compare Examples/JKOVersusSGD/spec.json --out DIR`.
import ArgumentParser
import Experiments
import Foundation

@main
struct JKOVersusSGDExample: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "example-jko-versus-sgd",
        abstract: "Particle JKO of the mean-field risk against online SGD, ReLU teacher, d = 20.",
        discussion: """
        Writes DIR/comparison.csv, DIR/summary.json, DIR/spec.json (the spec that ran) and the pictures \
        risk.svg, risk_gap.svg, w2_distances.svg and marginal_*.svg (histograms of |w|, <w, w*> and a at three times).
        """
    )

    /// The bundled spec, next to this file in the source tree.
    static let bundledSpec = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("spec.json").path

    @Option(help: "Output folder (created if needed).")
    var out = "example-output/jko-versus-sgd"

    @Option(help: "The experiment spec (default: the bundled Examples/JKOVersusSGD/spec.json).")
    var spec: String?

    @Option(help: "Override the spec's number of particles M.")
    var particles: Int?

    @Option(help: "Override the spec's seed.")
    var seed: UInt64?

    func run() throws {
        let path = spec ?? Self.bundledSpec
        guard FileManager.default.fileExists(atPath: path) else {
            throw ValidationError("no spec at \(path) (the bundled spec is read from the source tree; pass --spec FILE)")
        }
        var experiment = try ExperimentSpec.load(path: path)
        if let particles {
            guard particles >= 1 else { throw ValidationError("--particles must be >= 1, got \(particles)") }
            experiment.particles = particles
        }
        if let seed { experiment.seed = seed }
        try OutputDirectory.writing(to: out, protecting: [path]) { directory in
            // The spec that ran, for `wasserstein compare DIR/spec.json` (overrides applied).
            var text = try String(contentsOfFile: path, encoding: .utf8)
            if particles != nil || seed != nil {
                text = text.replacingOccurrences(of: #""particles": *[0-9]+"#, with: "\"particles\": \(experiment.particles)", options: .regularExpression)
                text = text.replacingOccurrences(of: #""seed": *[0-9]+"#, with: "\"seed\": \(experiment.seed)", options: .regularExpression)
            }
            try text.write(toFile: directory.file("spec.json"), atomically: true, encoding: .utf8)

            let progress = ProgressReporter(label: "jko-versus-sgd")
            let output = try CompareRun.run(spec: experiment, directory: directory, progress: progress.callback)
            progress.finish()

            let rows = output.rows
            let first = rows.first!, last = rows.last!
            let d = experiment.model!.inputDimension
            print("jko-versus-sgd: ReLU teacher, d = \(d), M = \(experiment.particles), horizon \(experiment.horizon), tau = \(experiment.jko!.tau), eta = \(experiment.sgd!.eta) (\(experiment.sgd!.kind.rawValue) SGD)")
            print(String(format: "  risk  t = 0: %.4f   t = %.2f: JKO %.4f, SGD %.4f", first.riskJKO, last.time, last.riskJKO, last.riskSGD))
            print(String(format: "  max |risk gap| over t: %.4f (final %.4f)", output.maxRiskGap, last.riskGap))
            print(String(format: "  max W2 of the 1-D marginals: |w| %.4f, <w,w*>/|w*| %.4f, a %.4f; max W2 of the full clouds (D = %d) %.4f",
                         rows.map(\.w2Norm).max() ?? .nan, rows.compactMap(\.w2Overlap).max() ?? .nan,
                         rows.compactMap(\.w2SecondLayer).max() ?? .nan, experiment.parameterDimension, rows.map(\.w2Clouds).max() ?? .nan))
            let seconds = output.summary.seconds
            let times = [("sgd", seconds.sgd), ("jko", seconds.jko)] + (seconds.grid.map { [("grid", $0)] } ?? [])
            print("  time: " + times.map { "\($0.0) \(String(format: "%.1f", $0.1)) s" }.joined(separator: ", ") + " -> \(directory.path)")
        }
    }
}
