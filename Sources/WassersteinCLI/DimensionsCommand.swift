import ArgumentParser
import Experiments
import Foundation
import Wasserstein

/// `wasserstein dimensions SPEC --dimensions ... --risk-threshold E --out DIR [--sgd]`.
struct DimensionsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dimensions",
        abstract: "The time T(eps) the mean-field flow takes to reach risk eps, against the input dimension d.",
        discussion: """
        Runs the reduced flow of a reduced spec (particle scheme) in every listed d, infinity included, each \
        stopped at the first step with risk <= eps (the time interpolated between the two steps around the \
        crossing); a threshold not reached within the horizon is reported as inf with status not_reached. With \
        --sgd, also runs online SGD in full d with the spec's sgd section (M = sgd.particles, eta = sgd.eta0 / d) \
        and reports its steps (samples) to the threshold and t = steps * eta. Dimensions run one per core. \
        Writes DIR/dimensions.csv, DIR/dimensions.svg, DIR/samples.svg (--sgd) and DIR/summary.json.
        """
    )

    @Argument(help: "The reduced spec (JSON); its model.input_dimension is ignored.")
    var spec: String

    @Option(help: "Comma-separated input dimensions, e.g. 10,20,40,80,160,infinity.")
    var dimensions: String

    @Option(name: .customLong("risk-threshold"), help: "The risk eps to reach.")
    var riskThreshold: Double

    @Option(help: "Output folder (created if needed).")
    var out: String

    @Flag(help: "Also run online SGD in full d with eta = sgd.eta0 / d.")
    var sgd = false

    @OptionGroup var memory: MemoryLimitOption

    func run() throws {
        let list = try DimensionsRun.parseDimensions(dimensions)
        // A risk is >= 0: a threshold at or below 0 is never reached and would run every d to its horizon.
        guard riskThreshold.isFinite, riskThreshold > 0 else { throw CommandError("--risk-threshold must be > 0 and finite, got \(riskThreshold)") }
        let reduced = try memory.apply(to: ReducedSpec.load(path: spec, requireDimension: false))
        let progress = ProgressReporter(label: "dimensions")
        let output = try OutputDirectory.writing(to: out, protecting: [spec]) { directory in
            try DimensionsRun.run(spec: reduced, dimensions: list, riskThreshold: riskThreshold, sgd: sgd,
                                  directory: directory, progress: progress.callback)
        }
        progress.finish()
        print("dimensions: \(output.rows.count) values of d, risk threshold \(g6(riskThreshold)), \(DurationText.precise(output.seconds)) -> \(out)")
        for r in output.rows {
            var line = "  d = \(MessageText.padded(r.dimension.description, to: 9)) t_reduced = "
            line += r.reducedTime.isFinite ? String(format: "%-9.4g", r.reducedTime) : "inf      "
            line += " (\(r.reducedStatus.rawValue))"
            if sgd, let steps = r.sgdSteps, let t = r.sgdTime, let status = r.sgdStatus, status != .notApplicable {
                line += steps.isFinite ? String(format: "   sgd: %.0f steps, t = %.4g", steps, t) : "   sgd: inf steps"
                line += " (\(status.rawValue))"
            }
            print(line)
        }
    }
}
