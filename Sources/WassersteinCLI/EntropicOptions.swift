import ArgumentParser
import Wasserstein

/// The options of `--method sinkhorn`.
struct EntropicOptions: ParsableArguments {
    @Option(help: "Entropic regularisation (absolute, in units of |x - y|^2); required by sinkhorn.")
    var epsilon: Double?

    @Option(help: "Sinkhorn stops when the L1 marginal error is below this times the mass (default 1e-9).")
    var tolerance: Double?

    @Option(name: .customLong("max-iterations"), help: "Sinkhorn iteration cap (default 10000).")
    var maxIterations: Int?

    @Flag(help: "Also compute the debiased Sinkhorn divergence.")
    var divergence = false

    func validate(for method: DistanceCommand.Chosen) throws {
        guard case .sinkhorn = method else {
            if epsilon != nil || tolerance != nil || maxIterations != nil || divergence {
                throw CommandError("--epsilon, --tolerance, --max-iterations and --divergence only apply to --method sinkhorn")
            }
            return
        }
        guard let epsilon else { throw CommandError("--method sinkhorn needs --epsilon E (E > 0)") }
        guard epsilon > 0, epsilon.isFinite else { throw CommandError("--epsilon must be > 0 and finite, got \(epsilon)") }
        if let tolerance, !(tolerance > 0 && tolerance < 1) {
            throw CommandError("--tolerance must be in (0, 1), got \(tolerance)")
        }
        if let maxIterations, maxIterations < 1 {
            throw CommandError("--max-iterations must be >= 1, got \(maxIterations)")
        }
    }

    /// Solves the entropic problem; with `--divergence` also the two self problems.
    func solve(_ problem: TransportProblem, wantsPlan: Bool) throws -> (TransportResult, Double?) {
        // Keep plan entries down to a total dropped mass of 1e-12 (the sparse plan of a dense
        // entropic coupling would otherwise hold all n m entries).
        let cells = Double(problem.source.count) * Double(problem.target.count)
        let solver = try SinkhornSolver(epsilon: epsilon!, tolerance: tolerance ?? 1e-9, maxIterations: maxIterations ?? 10_000,
                                        planOutput: wantsPlan ? .sparse(minimumMass: 1e-12 / cells) : .none)
        if divergence {
            let d = try SinkhornDivergence(solver: solver).evaluate(problem)
            return (d.cross, d.divergence)
        }
        return (try solver.solve(problem), nil)
    }
}
