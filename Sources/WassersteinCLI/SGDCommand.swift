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

    @Option(help: "Output folder (created if needed).")
    var out: String

    func run() throws {
        let experiment = try ExperimentSpec.load(path: spec)
        let directory = try OutputDirectory(out)
        let progress = ProgressReporter(label: "sgd")
        let output = try SGDRun.run(spec: experiment, directory: directory, progress: progress.callback)
        progress.finish()
        let t = output.trajectory
        let last = t.records.last
        let first: Double = t.records.first?.risk ?? .nan
        let final: Double = last?.risk ?? .nan
        var line = "sgd: \(t.steps) steps, M = \(t.particleCount), D = \(t.parameterDimension), risk \(g6(first)) -> \(g6(final))"
        if let f = last?.freeEnergy { line += ", free energy \(g6(f))" }
        line += ", \(DurationText.precise(output.seconds)) -> \(directory.path)"
        print(line)
        if case .diverged(let step, let time) = t.status {
            FileHandle.standardError.write(Data("wasserstein: warning: the dynamics diverged at step \(step) (t = \(time)); reduce sgd.eta\n".utf8))
        }
    }
}

/// `%.6g` formatting for summary lines.
func g6(_ v: Double) -> String { String(format: "%.6g", v) }
