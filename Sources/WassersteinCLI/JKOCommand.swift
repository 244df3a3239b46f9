import ArgumentParser
import Experiments
import Foundation

/// `wasserstein jko SPEC --out DIR`: the JKO scheme of a spec.
struct JKOCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "jko",
        abstract: "Run the JKO scheme (particle or grid) of a spec.",
        discussion: """
        Writes DIR/trajectory.csv (t, energy, risk, w2_step, ...), DIR/particles_final.npy (particle scheme) \
        or DIR/density_final.npy and DIR/grid.json (grid scheme), and DIR/summary.json. A spec with \
        "energy": {"potential": "quadratic"} and no model runs the Ornstein-Uhlenbeck oracle.
        """
    )

    @Argument(help: "The experiment spec (JSON) with a jko section.")
    var spec: String

    @Option(help: "Output folder (created if needed; written only when the run succeeds).")
    var out: String

    @OptionGroup var memory: MemoryLimitOption

    func run() throws {
        let experiment = try memory.apply(to: ExperimentSpec.load(path: spec))
        guard experiment.jko != nil else { throw ExperimentError.invalidSpec(key: "jko", reason: "missing (tau, scheme, transport)") }
        let progress = ProgressReporter(label: "jko")
        let output = try OutputDirectory.writing(to: out, protecting: [spec]) { directory in
            try JKORun.run(spec: experiment, directory: directory, progress: progress.callback)
        }
        progress.finish()
        let reports = output.result.reports
        let tau = try experiment.jkoSection().tau
        let first = reports.first?.freeEnergy ?? .nan, last = reports.last?.freeEnergy ?? .nan
        var line = "jko: \(reports.count - 1) steps of tau = \(g6(tau)), energy \(g6(first)) -> \(g6(last))"
        if let d = reports.last?.distanceToStationary { line += ", W2 to Gibbs \(g6(d))" }
        if let e = reports.last?.gaussianW2ToExactFlow { line += ", W2 to exact flow \(g6(e))" }
        line += ", \(DurationText.precise(output.seconds)) -> \(out)"
        print(line)
        if let st = output.result.stationary, !st.converged {
            warn("the Gibbs fixed point did not converge (\(st.iterations) iterations, residual \(g6(st.residual))); w2_to_stationary is to an approximate rho*")
        }
        if !output.result.allConverged {
            let bad = reports.filter { !$0.converged }.count
            warn("\(bad) step(s) stopped before their inner problem converged (see trajectory.csv, column converged)")
        }
    }
}
