import ArgumentParser
import Experiments
import Foundation

/// `wasserstein reduced SPEC --out DIR`: the mean-field flow in reduced coordinates.
struct ReducedCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "reduced",
        abstract: "Run the mean-field flow of a rotation-invariant law in reduced coordinates z = (a, s, r).",
        discussion: """
        Gaussian inputs, a teacher spanning k = 1 or 2 directions, and w ~ N(0, gamma^2/d I_d): the law \
        stays invariant under the rotations fixing the teacher's span, and the flow in any d (infinity \
        included) is a flow of the reduced coordinates, at a cost that does not depend on d. Writes \
        DIR/trajectory.csv (t, step, risk, penalized_risk[, free_energy]), DIR/summary.json, DIR/risk.svg \
        and, for the particle scheme, DIR/law_initial.npy and DIR/law_final.npy (rows: coordinates, then weight).
        """
    )

    @Argument(help: "The reduced spec (JSON); see Docs/Guide.md section 3.5.")
    var spec: String

    @Option(help: "Output folder (created if needed).")
    var out: String

    @OptionGroup var memory: MemoryLimitOption

    func run() throws {
        let reduced = try memory.apply(to: ReducedSpec.load(path: spec))
        let progress = ProgressReporter(label: "reduced")
        let output = try OutputDirectory.writing(to: out, protecting: [spec]) { directory in
            try ReducedRun.run(spec: reduced, directory: directory, progress: progress.callback)
        }
        progress.finish()
        let first = output.records.first?.risk ?? .nan, last = output.records.last
        var line = "reduced: d = \(reduced.inputDimension?.description ?? "?"), \(reduced.dynamics.rawValue) (\(reduced.scheme.rawValue)), "
        line += "risk \(g6(first)) -> \(g6(last?.risk ?? .nan))"
        if let f = last?.freeEnergy { line += ", free energy \(g6(f))" }
        line += ", \(DurationText.precise(output.seconds)) -> \(out)"
        print(line)
        if case .diverged(let step, let time) = output.status {
            FileHandle.standardError.write(Data("wasserstein: warning: the reduced flow diverged at step \(step) (t = \(time)); reduce eta\n".utf8))
        }
    }
}
