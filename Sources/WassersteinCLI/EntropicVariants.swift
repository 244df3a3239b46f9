import ArgumentParser
import Experiments
import Foundation
import Wasserstein

extension DistanceCommand {
    /// `--unbalanced RHO` or `RHO_A,RHO_B`: each `> 0` or `inf` (that side enforced).
    static func parsePenalties(_ text: String) throws -> (source: Double, target: Double) {
        let parts = text.split(separator: ",", omittingEmptySubsequences: false).map { $0.trimmingCharacters(in: .whitespaces) }
        guard parts.count == 1 || parts.count == 2 else {
            throw CommandError("--unbalanced takes one penalty or two separated by a comma, got '\(MessageText.excerpt(text))'")
        }
        let values = try parts.map { part -> Double in
            guard let v = Double(part), v > 0 else {
                throw CommandError("--unbalanced: each penalty must be a number > 0 (or inf), got '\(MessageText.excerpt(part))'")
            }
            return v
        }
        return (values[0], values.count == 2 ? values[1] : values[0])
    }

    /// The engine's parameters from `--epsilon`, `--tolerance`, `--max-iterations`.
    private func entropicParameters() throws -> EntropicParameters {
        try EntropicParameters(epsilon: entropic.epsilon!, tolerance: entropic.tolerance ?? 1e-9,
                               maxIterations: entropic.maxIterations ?? 10_000)
    }

    /// `--geometry`, or the library's choice under `--memory-limit` (the dense geometry here is
    /// ``DenseCostGeometry``: 16 bytes per pair); dense or online only: the
    /// multiscale geometry's truncation check is written for the balanced problem, so an
    /// automatic choice of it runs online here and an explicit one is refused.
    private func geometryKind(_ source: PointCloud, _ target: PointCloud, divergence: Bool) throws -> SinkhornGeometryKind {
        if let kind = try entropic.geometryKind() {
            if kind == .multiscale {
                throw CommandError("--geometry multiscale solves balanced problems only; use dense or online with --unbalanced or --partial")
            }
            return kind
        }
        let kind = SinkhornGeometryKind.automatic(sourceCount: source.count, targetCount: target.count, dimension: source.dimension,
                                                  byteBudget: try entropic.memory.bytes() ?? MemoryEstimate.physicalMemory,
                                                  divergence: divergence, bytesPerCell: 16)
        return kind == .multiscale ? .online : kind
    }

    private func readUnchecked() throws -> (PointCloud, PointCloud) {
        var (source, target) = try measures.read(normalizing: normalize)
        if normalize {
            source = source.normalized()
            target = target.normalized()
        }
        return (source, target)
    }

    private func formatted(_ v: Double) -> String { String(format: "%.10g", v) }

    /// `distance X Y --method sinkhorn --epsilon E --unbalanced RHO[,RHO_B] [--divergence]`:
    /// KL-penalised entropic OT on the engine (``EntropicEngine/unbalanced(source:target:sourcePenalty:targetPenalty:parameters:geometry:progress:)``);
    /// the masses of the two files may differ.
    func runUnbalanced(penalties text: String, method chosen: TransportMethod) throws {
        guard case .sinkhorn = chosen else { throw CommandError("--unbalanced needs --method sinkhorn (and --epsilon)") }
        let penalties = try Self.parsePenalties(text)
        if partial != nil { throw CommandError("--unbalanced and --partial exclude each other") }
        if entropic.divergence && penalties.source != penalties.target {
            throw CommandError("--divergence with --unbalanced needs one penalty for both sides")
        }
        let (source, target) = try readUnchecked()
        let parameters = try entropicParameters()
        let kind = try geometryKind(source, target, divergence: entropic.divergence)
        let clock = ContinuousClock()
        let start = clock.now
        var output: EntropicOutput
        var divergence: UnbalancedDivergenceOutput? = nil
        let reporter = ProgressReporter(label: "sinkhorn")
        do {
            defer { reporter.finish() }
            let progress = reporter.entropicObserver()
            switch (kind, entropic.divergence) {
            case (.dense, false):
                output = try EntropicEngine.unbalanced(source: source, target: target, sourcePenalty: penalties.source,
                                                       targetPenalty: penalties.target, parameters: parameters,
                                                       geometry: EntropicEngine.dense(), progress: progress)
            case (.online, false), (.multiscale, false):
                output = try EntropicEngine.unbalanced(source: source, target: target, sourcePenalty: penalties.source,
                                                       targetPenalty: penalties.target, parameters: parameters,
                                                       geometry: EntropicEngine.online(), progress: progress)
            case (.dense, true):
                divergence = try EntropicEngine.unbalancedDivergence(source: source, target: target, penalty: penalties.source,
                                                                     parameters: parameters, geometry: EntropicEngine.dense(),
                                                                     progress: progress)
                output = divergence!.cross
            case (.online, true), (.multiscale, true):
                divergence = try EntropicEngine.unbalancedDivergence(source: source, target: target, penalty: penalties.source,
                                                                     parameters: parameters, geometry: EntropicEngine.online(),
                                                                     progress: progress)
                output = divergence!.cross
            }
        }
        let seconds = (clock.now - start).seconds
        let converged = divergence?.converged ?? output.converged
        if let plan { try writeEntropicPlan(source, target, f: output.f, g: output.g, epsilon: parameters.epsilon, kind: kind, to: plan) }
        if json {
            var members: [(String, JSONValue)] = [
                ("method", .string("sinkhorn")),
                ("problem", .string("unbalanced")),
                ("geometry", .string(kind.rawValue)),
                ("n", .integer(source.count)),
                ("m", .integer(target.count)),
                ("dimension", .integer(source.dimension)),
                ("epsilon", .finite(parameters.epsilon)),
                // null: infinite, the marginal is enforced.
                ("source_penalty", .finite(penalties.source)),
                ("target_penalty", .finite(penalties.target)),
                ("source_mass", .finite(source.mass)),
                ("target_mass", .finite(target.mass)),
                ("transported_mass", .finite(output.transportedMass)),
                ("transport_cost", .finite(output.transportCost)),
                ("regularized_cost", .finite(output.regularizedCost)),
                ("dual_cost", .finite(output.dualCost ?? output.regularizedCost)),
                ("marginal_error", .finite(output.marginalError)),
                ("seconds", .number(seconds)),
                ("converged", .bool(converged)),
                ("iterations", .integer(output.iterations)),
            ]
            if let divergence { members.append(("divergence", .finite(divergence.divergence))) }
            print(JSONValue.object(members).serialized())
        } else {
            let rho = penalties.source == penalties.target ? formatted(penalties.source)
                                                           : "\(formatted(penalties.source)), \(formatted(penalties.target))"
            var line = "unbalanced OT_eps = \(formatted(output.regularizedCost))  <P, C> = \(formatted(output.transportCost))  mass moved = \(formatted(output.transportedMass)) of \(formatted(source.mass)) and \(formatted(target.mass))  [sinkhorn, eps = \(formatted(parameters.epsilon)), rho = \(rho), \(kind.rawValue) geometry, n = \(source.count), m = \(target.count), D = \(source.dimension), \(output.iterations) iterations, \(String(format: "%.3g", seconds)) s]"
            if let divergence { line += "\nunbalanced Sinkhorn divergence S_eps = \(formatted(divergence.divergence))" }
            print(line)
        }
        if !converged { warn("the solver stopped at its iteration limit before converging") }
    }

    /// `distance X Y --partial MASS --method sinkhorn --epsilon E`: entropic partial transport on
    /// the engine (``EntropicEngine/partial(source:target:mass:parameters:geometry:progress:)``).
    func runEntropicPartial(mass: Double) throws {
        if entropic.divergence { throw CommandError("--divergence does not apply to --partial") }
        let (source, target) = try readUnchecked()
        let parameters = try entropicParameters()
        let kind = try geometryKind(source, target, divergence: false)
        let clock = ContinuousClock()
        let start = clock.now
        let result: EntropicPartialOutput
        let reporter = ProgressReporter(label: "sinkhorn")
        do {
            defer { reporter.finish() }
            switch kind {
            case .dense:
                result = try EntropicEngine.partial(source: source, target: target, mass: mass, parameters: parameters,
                                                    geometry: EntropicEngine.dense(), progress: reporter.entropicObserver())
            case .online, .multiscale:
                result = try EntropicEngine.partial(source: source, target: target, mass: mass, parameters: parameters,
                                                    geometry: EntropicEngine.online(), progress: reporter.entropicObserver())
            }
        }
        let seconds = (clock.now - start).seconds
        if let plan { try writeEntropicPlan(source, target, f: result.f, g: result.g, epsilon: parameters.epsilon, kind: kind, to: plan) }
        if json {
            print(JSONValue.object([
                ("method", .string("sinkhorn")),
                ("problem", .string("partial")),
                ("partial", .bool(true)),
                ("geometry", .string(kind.rawValue)),
                ("n", .integer(source.count)),
                ("m", .integer(target.count)),
                ("dimension", .integer(source.dimension)),
                ("epsilon", .finite(parameters.epsilon)),
                ("mass", .finite(mass)),
                ("transported_mass", .finite(result.transportedMass)),
                ("cost", .finite(result.transportCost)),
                ("regularized_cost", .finite(result.extended.regularizedCost)),
                ("marginal_error", .finite(result.extended.marginalError)),
                ("seconds", .number(seconds)),
                ("converged", .bool(result.converged)),
                ("iterations", .integer(result.extended.iterations)),
            ]).serialized())
        } else {
            print("partial cost = \(formatted(result.transportCost))  mass moved = \(formatted(result.transportedMass)) of \(formatted(source.mass)) and \(formatted(target.mass))  [sinkhorn, eps = \(formatted(parameters.epsilon)), \(kind.rawValue) geometry, n = \(source.count), m = \(target.count), D = \(source.dimension), \(result.extended.iterations) iterations, \(String(format: "%.3g", seconds)) s]")
        }
        if !result.converged { warn("the solver stopped at its iteration limit before converging") }
    }

    /// `--plan` of an unbalanced or entropic partial run: the plan of the potentials,
    /// `P_ij = a_i b_j exp((f_i + g_j - C_ij) / eps)` between the real points (a partial run's
    /// dummy row and column left out), row by row from the geometry, entries below
    /// `1e-12 / (n m)` dropped as for the balanced entropic plan.
    private func writeEntropicPlan(_ source: PointCloud, _ target: PointCloud, f: [Double], g: [Double], epsilon: Double,
                                   kind: SinkhornGeometryKind, to path: String) throws {
        let logA = source.weights.map { $0 > 0 ? log($0) : -.infinity }
        let logB = target.weights.map { $0 > 0 ? log($0) : -.infinity }
        let floor = 1e-12 / (Double(source.count) * Double(target.count))
        func entries(_ geometry: some SinkhornGeometry) -> [TransportPlan.Entry] {
            var out = [TransportPlan.Entry]()
            var row = [Double](repeating: 0, count: target.count)
            f.withUnsafeBufferPointer { fb in
                g.withUnsafeBufferPointer { gb in
                    logA.withUnsafeBufferPointer { ab in
                        logB.withUnsafeBufferPointer { bb in
                            for i in 0 ..< source.count {
                                row.withUnsafeMutableBufferPointer { rb in
                                    geometry.planRow(i, f: fb, g: gb, logA: ab, logB: bb, epsilon: epsilon, into: rb)
                                }
                                for (j, mass) in row.enumerated() where mass >= floor {
                                    out.append(TransportPlan.Entry(source: i, target: j, mass: mass))
                                }
                            }
                        }
                    }
                }
            }
            return out
        }
        let found = kind == .dense ? entries(try EntropicEngine.dense()(source, target)) : entries(try EntropicEngine.online()(source, target))
        try DistanceCommand.writePlan(TransportPlan(sourceCount: source.count, targetCount: target.count, entries: found), to: path)
    }
}
