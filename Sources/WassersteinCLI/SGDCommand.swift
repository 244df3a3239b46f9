import ArgumentParser
import Experiments
import Foundation

/// `wasserstein sgd SPEC --out DIR`: particle dynamics of the two-layer network.
struct SGDCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sgd",
        abstract: "Run SGD, noisy SGD or the population gradient flow of a spec.",
        discussion: "Writes DIR/trajectory.csv (t, risk, ...), DIR/particles_initial.npy and DIR/particles_final.npy (M x D), and DIR/summary.json."
    )

    @Argument(help: "The experiment spec (JSON).")
    var spec: String

    @Option(help: "Output folder (created if needed; written only when the run succeeds).")
    var out: String

    @OptionGroup var memory: MemoryLimitOption

    func run() throws {
        let experiment = try memory.apply(to: ExperimentSpec.load(path: spec))
        let progress = ProgressReporter(label: "sgd")
        let output = try OutputDirectory.writing(to: out, protecting: [spec]) { directory in
            try SGDRun.run(spec: experiment, directory: directory, progress: progress.callback)
        }
        progress.finish()
        let t = output.trajectory
        let last = t.records.last
        let first: Double = t.records.first?.risk ?? .nan
        let final: Double = last?.risk ?? .nan
        var line = "sgd: \(t.steps) steps, M = \(t.particleCount), D = \(t.parameterDimension), risk \(g6(first)) -> \(g6(final))"
        if let f = last?.freeEnergy { line += ", free energy \(g6(f))" }
        line += ", \(DurationText.precise(output.seconds)) -> \(out)"
        print(line)
        if case .diverged(let step, let time) = t.status {
            let advice = step == 0
                ? "the risk is not finite at the start: the initialization or the teacher is too large for double precision"
                : "reduce sgd.eta"
            warn("the dynamics diverged at step \(step) (t = \(time)); \(advice)")
        }
    }
}

/// `%.6g` formatting for summary lines.
func g6(_ v: Double) -> String { String(format: "%.6g", v) }
