import ArgumentParser
import Experiments
import Foundation

/// `compare --reference jko|reduced [--reference-eta H]`: what stands for the mean-field flow.
struct ReferenceOptions: ParsableArguments {
    @Option(help: "The mean-field reference: jko (a particle JKO run, the default) or reduced (the reduced flow of a rotation-symmetric setting, without sampling error).")
    var reference: String = "jko"

    @Option(name: .customLong("reference-eta"), help: "The reduced reference's Runge-Kutta step (default 0.05).")
    var referenceEta: Double?

    @Option(name: .customLong("reference-nodes"), help: "The reduced reference's quantisation nodes for a,s,r (default 8,16,8).")
    var referenceNodes: String?

    /// `--reference-nodes a,s,r`.
    func nodes() throws -> ReducedNodesSpec {
        guard let text = referenceNodes else { return ReducedNodesSpec() }
        let v = try SweepRun.parseIntegerList(text, option: "--reference-nodes")
        guard v.count == 3, v.allSatisfy({ (1 ... 256).contains($0) }) else {
            throw CommandError("--reference-nodes needs three counts a,s,r in 1 ... 256, got \(text)")
        }
        return ReducedNodesSpec(a: v[0], s: v[1], r: v[2])
    }

    /// Whether the reduced reference was asked for; checks the combination of options.
    func isReduced(referenceParticles: Int?) throws -> Bool {
        switch reference {
        case "jko":
            if referenceEta != nil || referenceNodes != nil {
                throw CommandError("--reference-eta and --reference-nodes only apply to --reference reduced")
            }
            return false
        case "reduced":
            if referenceParticles != nil { throw CommandError("--reference-particles only applies to --reference jko (the reduced reference has no particles to sample)") }
            if let h = referenceEta, !(h > 0 && h.isFinite) { throw CommandError("--reference-eta must be > 0 and finite, got \(h)") }
            _ = try nodes()
            return true
        default:
            throw CommandError("unknown --reference '\(reference)' (expected jko or reduced)")
        }
    }

    /// The sweep's reference.
    func sweepReference(referenceParticles: Int?) throws -> SweepRun.Reference {
        try isReduced(referenceParticles: referenceParticles) ? .reduced(step: referenceEta, nodes: nodes()) : .jko
    }

    /// `compare --reference reduced` without a sweep.
    func runReducedComparison(spec: ExperimentSpec, specPath: String, out: String) throws {
        let progress = ProgressReporter(label: "compare")
        let output = try OutputDirectory.writing(to: out, protecting: [specPath]) { directory in
            try CompareReducedRun.run(spec: spec, directory: directory, referenceStep: referenceEta, nodes: nodes(),
                                      progress: progress.callback)
        }
        progress.finish()
        let last = output.rows.last
        print("compare: \(output.rows.count) common times against the reduced flow, max |risk gap| = \(g6(output.maxRiskGap)), final risk reduced \(g6(last?.riskReduced ?? .nan)) / SGD \(g6(last?.riskSGD ?? .nan)) -> \(out)")
    }
}
