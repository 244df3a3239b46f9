import ArgumentParser
import Experiments
import Foundation
import Wasserstein

extension DistanceCommand {
    /// `distance X Y --partial MASS`: exact partial transport of `MASS` (``PartialTransport``).
    /// The two clouds need not carry the same mass (that is the point of moving only part of it).
    func runPartial(mass: Double, method chosen: TransportMethod) throws {
        guard mass.isFinite, mass >= 0 else { throw CommandError("--partial must be >= 0 and finite, got \(mass)") }
        switch chosen {
        case .auto, .exact: break
        case .sinkhorn: return try runEntropicPartial(mass: mass)
        default:
            throw CommandError("--partial needs --method exact (or auto; the network simplex) or --method sinkhorn (entropic)")
        }
        var (source, target) = try measures.read(normalizing: normalize)
        if normalize {
            source = source.normalized()
            target = target.normalized()
        }
        let clock = ContinuousClock()
        let start = clock.now
        let result = try PartialTransport().solve(source: source, target: target, mass: mass)
        let seconds = (clock.now - start).seconds
        if let plan { try DistanceCommand.writePlan(result.plan, to: plan) }
        let d = source.dimension
        func format(_ v: Double) -> String { String(format: "%.10g", v) }
        if json {
            print(JSONValue.object([
                ("method", .string("exact")),
                ("solver", .string("network_simplex")),
                ("partial", .bool(true)),
                ("n", .integer(source.count)),
                ("m", .integer(target.count)),
                ("dimension", .integer(d)),
                ("mass", .finite(mass)),
                ("transported_mass", .finite(result.transportedMass)),
                ("cost", .finite(result.cost)),
                ("seconds", .number(seconds)),
                ("status", .string(result.status.rawValue)),
                ("converged", .bool(result.converged)),
                ("iterations", .integer(result.iterations)),
                ("plan_entries", .integer(result.plan.entries.count)),
            ]).serialized())
        } else {
            print("partial cost = \(format(result.cost))  mass moved = \(format(result.transportedMass)) of \(format(source.mass)) and \(format(target.mass))  [exact, n = \(source.count), m = \(target.count), D = \(d), \(String(format: "%.3g", seconds)) s]")
        }
        if !result.converged {
            warn("the solver stopped at its iteration limit before converging")
        }
    }
}
