import ArgumentParser
import Experiments
import Foundation
import Wasserstein

/// `wasserstein sliced X Y`: the sliced (or max-sliced) W2 between two point clouds.
struct SlicedCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sliced",
        abstract: "Sliced or max-sliced W2 between two point clouds (CSV or .npy files).",
        discussion: """
        SW2^2 is the mean over unit directions theta of W2^2 between the projections <theta, x> of the \
        two clouds, each solved exactly in 1-D; the directions are K seeded random ones (uniform on the \
        sphere) or the rows of --directions-file (normalised). The standard error is that of the Monte \
        Carlo mean. With --max, the largest projected W2 over the sphere, by gradient ascent from the \
        best sampled directions. The directions run on all cores; the result does not depend on their number.
        """
    )

    @OptionGroup var measures: MeasureFiles

    @Option(help: "Number of random directions K (default 100).")
    var directions: Int?

    @Option(name: .customLong("directions-file"), help: "Directions, one per row (K x D, CSV or .npy), instead of random ones.")
    var directionsFile: String?

    @Option(help: "Seed of the random directions (default 0).")
    var seed: UInt64?

    @Flag(name: .customLong("max"), help: "Max-sliced W2: maximise the projected W2 over the sphere.")
    var maximize = false

    @Option(name: .customLong("per-direction"), help: "Write each direction and its W2^2 as CSV theta_1,...,theta_D,w2_squared.")
    var perDirection: String?

    @Flag(help: "Print one JSON object instead of a line of text.")
    var json = false

    @Flag(help: "Rescale both measures to mass one instead of requiring equal masses.")
    var normalize = false

    func run() throws {
        if directions != nil && directionsFile != nil {
            throw CommandError("--directions and --directions-file exclude each other")
        }
        if directionsFile != nil && seed != nil {
            throw CommandError("--seed applies to random directions, not to --directions-file")
        }
        if let directions, directions < 1 {
            throw CommandError("--directions must be >= 1, got \(directions)")
        }
        if let perDirection { try measures.refuseReplacing(with: perDirection, extra: [directionsFile].compactMap { $0 }) }
        let (source, target) = try measures.read(normalizing: normalize)
        let problem = try TransportProblem(source: source, target: target, massPolicy: normalize ? .normalize : .requireEqual)
        let d = problem.dimension
        let chosen: SlicedDirections
        let described: String
        if let directionsFile {
            let table = try PointCloudFile.readPoints(path: directionsFile)
            guard let columns = table.tableShape?.columns, columns == d else {
                throw DataFileError.malformed(path: directionsFile,
                                              reason: "directions must have \(d) columns (the points' dimension), got shape \(table.shape)")
            }
            chosen = .given(coordinates: table.values)
            described = "\(table.values.count / d) directions from \(MessageText.excerpt(directionsFile))"
        } else {
            let k = directions ?? SlicedWasserstein.defaultDirectionCount
            chosen = .random(count: k, seed: seed ?? 0)
            described = "\(k) random direction\(k == 1 ? "" : "s"), seed \(seed ?? 0)"
        }

        let clock = ContinuousClock()
        let start = clock.now
        if maximize {
            let result = try MaxSlicedWasserstein(directions: chosen).solve(problem)
            let seconds = (clock.now - start).seconds
            try writePerDirection(result.sampled)
            let bestSampled = result.sampled.perDirection!.max()!
            if json {
                print(JSONValue.object([("method", .string("max_sliced"))] + common(source, target, d, result.sampled) + [
                    ("w2", .finite(result.w2)),
                    ("w2_squared", .finite(result.w2Squared)),
                    ("direction", .numbers(result.direction)),
                    ("best_sampled_w2_squared", .finite(bestSampled)),
                    ("iterations", .integer(result.iterations)),
                    ("evaluations", .integer(result.evaluations)),
                    ("converged", .bool(result.converged)),
                    ("seconds", .number(seconds)),
                ]).serialized())
            } else {
                let direction = result.direction.map { format($0) }.joined(separator: ", ")
                print("max-sliced W2 = \(format(result.w2))  W2^2 = \(format(result.w2Squared))  direction = (\(direction))  [ascent from the best of \(described) (W2^2 = \(format(bestSampled))), \(result.iterations) steps, n = \(source.count), m = \(target.count), D = \(d), \(String(format: "%.3g", seconds)) s]")
            }
            if !result.converged { warn("the ascent stopped at its step cap before the value stalled") }
            return
        }
        let result = try SlicedWasserstein(directions: chosen, keepsPerDirection: perDirection != nil).solve(problem)
        let seconds = (clock.now - start).seconds
        try writePerDirection(result)
        if json {
            print(JSONValue.object([("method", .string("sliced"))] + common(source, target, d, result) + [
                ("sw2", .finite(result.w2)),
                ("sw2_squared", .finite(result.w2Squared)),
                ("standard_error", .finite(result.standardError)),
                ("seconds", .number(seconds)),
            ]).serialized())
        } else {
            let error = result.standardError.map { format($0) } ?? "undefined (one direction)"
            print("SW2 = \(format(result.w2))  SW2^2 = \(format(result.w2Squared))  standard error of SW2^2 = \(error)  [\(described), n = \(source.count), m = \(target.count), D = \(d), \(String(format: "%.3g", seconds)) s]")
        }
    }

    /// The members every JSON output has after `method`: sizes, the number of directions and
    /// the seed of random ones.
    private func common(_ source: PointCloud, _ target: PointCloud, _ d: Int, _ sampled: SlicedResult) -> [(String, JSONValue)] {
        var members: [(String, JSONValue)] = [
            ("n", .integer(source.count)),
            ("m", .integer(target.count)),
            ("dimension", .integer(d)),
            ("directions", .integer(sampled.directionCount)),
        ]
        if directionsFile == nil {
            // A seed above Int.max is written as a string rather than wrapped to a negative number.
            let s = seed ?? 0
            members.append(("seed", Int(exactly: s).map { .integer($0) } ?? .string("\(s)")))
        }
        return members
    }

    private func writePerDirection(_ result: SlicedResult) throws {
        guard let perDirection, let values = result.perDirection else { return }
        let d = result.dimension
        var text = (1 ... d).map { "theta_\($0)" }.joined(separator: ",") + ",w2_squared\n"
        for k in 0 ..< result.directionCount {
            text += (0 ..< d).map { "\(result.directions[k * d + $0])" }.joined(separator: ",") + ",\(values[k])\n"
        }
        do {
            try text.write(toFile: perDirection, atomically: true, encoding: .utf8)
        } catch {
            throw DataFileError.unwritable(path: perDirection, reason: error.localizedDescription)
        }
    }

    private func format(_ v: Double) -> String { String(format: "%.10g", v) }
}
