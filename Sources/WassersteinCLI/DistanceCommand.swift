import ArgumentParser
import Experiments
import Foundation
import Wasserstein

/// `wasserstein distance X Y`: W2 between two weighted point clouds read from files.
struct DistanceCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "distance",
        abstract: "W2 between two point clouds (CSV or .npy files).",
        discussion: """
        Point files hold one point per row (CSV with an optional header line, or .npy of shape (n, D) \
        or (n,)). Weight files hold one column; without them the weights are uniform. Methods: \
        exact (network simplex), lp (GLPK, small problems), sorted (D = 1 only), sinkhorn \
        (entropic, needs --epsilon; --geometry dense stores the n x m kernel, online recomputes \
        costs in O(n + m) memory, multiscale (D <= 3) evaluates only the pairs that can carry mass \
        and checks what it dropped, falling back to online; by default dense when it fits in half of \
        --memory-limit, else multiscale for D <= 3, else online), auto (sorted for D = 1, exact otherwise). In 1-D, exact runs \
        the sorted solver (exact there, and far faster); JSON output names it under "solver". Files \
        must be regular files (not pipes or devices) of at most 2 GiB.
        """
    )

    @OptionGroup var measures: MeasureFiles

    @Option(help: ArgumentHelp(stringLiteral: MethodNames.names.joined(separator: " | ")))
    var method: String = "auto"

    @Option(help: "Write the non-zero plan entries as CSV i,j,mass.")
    var plan: String?

    @Flag(help: "Print one JSON object instead of a line of text.")
    var json = false

    @Flag(help: "Rescale both measures to mass one instead of requiring equal masses.")
    var normalize = false

    @Option(help: "Move only this mass, at least cost (exact partial transport with --method exact or auto; entropic with --method sinkhorn).")
    var partial: Double?

    @Option(help: ArgumentHelp("Unbalanced entropic OT (--method sinkhorn): KL penalties on the marginals, one value or two (source,target); inf enforces a side.",
                               valueName: "rho[,rho_b]"))
    var unbalanced: String?

    @OptionGroup var entropic: EntropicOptions

    func run() throws {
        _ = try MethodNames.method(named: method)  // an unknown name first, before option combinations
        try entropic.validate(for: method)
        let chosen = try MethodNames.method(named: method, epsilon: entropic.epsilon ?? 0, options: entropic.sinkhornOptions())
        // The plan replaces the file at its path: never one of the inputs.
        if let plan { try measures.refuseReplacing(with: plan) }
        if let unbalanced { return try runUnbalanced(penalties: unbalanced, method: chosen) }
        if let partial { return try runPartial(mass: partial, method: chosen) }
        let (source, target) = try measures.read(normalizing: normalize)
        let problem = try TransportProblem(source: source, target: target, massPolicy: normalize ? .normalize : .requireEqual)

        // The plan only when it is written: for 10^7 sorted points it costs 7x the distance. An
        // entropic plan keeps entries down to a total dropped mass of 1e-12 (all n m entries
        // otherwise).
        let planOutput: PlanOutput
        if plan == nil {
            planOutput = .none
        } else if case .sinkhorn = chosen {
            planOutput = .sparse(minimumMass: 1e-12 / (Double(problem.source.count) * Double(problem.target.count)))
        } else {
            planOutput = .full
        }
        let clock = ContinuousClock()
        let start = clock.now
        // A progress line with the time left for an entropic solve, on standard error and only
        // when it is a terminal.
        var reporter: ProgressReporter? = nil
        if case .sinkhorn = chosen { reporter = ProgressReporter(label: "sinkhorn") }
        let result: TransportResult
        do {
            defer { reporter?.finish() }
            result = try wasserstein2(problem, method: chosen, planOutput: planOutput, progress: reporter?.entropicObserver())
        }
        let seconds = (clock.now - start).seconds

        if let plan {
            try DistanceCommand.writePlan(result.plan, to: plan)
        }
        let name = chosen.resolved(dimension: problem.dimension).name
        let solver = MethodNames.solverLabel(result.method)
        if json {
            var members: [(String, JSONValue)] = [
                ("method", .string(name)),
                ("solver", .string(solver)),
                ("n", .integer(source.count)),
                ("m", .integer(target.count)),
                ("dimension", .integer(problem.dimension)),
                ("w2", .finite(result.w2)),
                ("w2_squared", .finite(result.w2Squared)),
                ("seconds", .number(seconds)),
                ("status", .string(result.status.rawValue)),
                ("converged", .bool(result.converged)),
                ("iterations", .integer(result.iterations)),
            ]
            if let e = result.entropic {
                members += [
                    ("entropic_estimate", .bool(true)),
                    ("geometry", .string(e.geometry?.rawValue ?? "dense")),
                    ("epsilon", .finite(e.epsilon)),
                    ("transport_cost", .finite(result.cost)),
                    ("regularized_cost", .finite(e.regularizedCost)),
                    ("marginal_error", .finite(e.marginalError)),
                ]
            }
            if let divergence = result.entropic?.divergence { members.append(("divergence", .finite(divergence))) }
            if let checks = result.entropic?.truncationChecks, !checks.isEmpty {
                members += [
                    ("truncation_check", .string(checks.allSatisfy(\.passed) ? "passed" : "failed, solved again on the online geometry")),
                    ("truncation_bound", .finite(checks.map(\.bound).max() ?? 0)),
                ]
            }
            if let p = result.plan { members.append(("plan_entries", .integer(p.entries.count))) }
            print(JSONValue.object(members).serialized())
        } else {
            // Name the solver where it is not the method's usual one (exact in 1-D).
            let label = result.method == .sorted && name != "sorted" ? "\(name), sorted 1-D solver" : name
            var line = "W2 = \(format(result.w2))  W2^2 = \(format(result.w2Squared))  [\(label), n = \(source.count), m = \(target.count), D = \(problem.dimension), \(String(format: "%.3g", seconds)) s]"
            if let e = result.entropic {
                line += "\nentropic estimate (eps = \(format(e.epsilon)), \(e.geometry?.rawValue ?? "dense") geometry): W2^2 above is the transport cost <P, C>; regularized cost = \(format(e.regularizedCost)), marginal error = \(String(format: "%.2e", e.marginalError)), \(result.iterations) iterations"
            }
            if let divergence = result.entropic?.divergence { line += "\nSinkhorn divergence S_eps = \(format(divergence))" }
            if let checks = result.entropic?.truncationChecks, !checks.isEmpty {
                let bound = String(format: "%.2e", checks.map(\.bound).max() ?? 0)
                line += checks.allSatisfy(\.passed)
                    ? "\ntruncation check passed: the dropped pairs move the marginals by at most \(bound)"
                    : "\ntruncation check failed (bound \(bound)): solved again on the online geometry"
            }
            print(line)
        }
        if !result.converged {
            warn("the solver stopped at its iteration limit before converging")
        }
    }

    private func format(_ v: Double) -> String { String(format: "%.10g", v) }

    static func writePlan(_ plan: TransportPlan?, to path: String) throws {
        guard let plan else { throw CommandError("this method computes no transport plan to write to \(path)") }
        var text = "i,j,mass\n"
        text.reserveCapacity(plan.entries.count * 32)
        for e in plan.entries.sorted(by: { ($0.source, $0.target) < ($1.source, $1.target) }) {
            text += "\(e.source),\(e.target),\(e.mass)\n"
        }
        do {
            // `--plan runs/plan.csv` creates `runs/`, as `--out` does.
            try FileManager.default.createDirectory(atPath: FolderPath.parent(path), withIntermediateDirectories: true)
            try text.write(toFile: path, atomically: true, encoding: .utf8)
        } catch {
            throw DataFileError.unwritable(path: path, reason: error.localizedDescription)
        }
    }
}

extension Duration {
    var seconds: Double {
        let c = components
        return Double(c.seconds) + Double(c.attoseconds) * 1e-18
    }
}
