import Foundation
import Testing
import Experiments
import MeanField
import Wasserstein

/// Mutation fuzzing of the spec parser, bounded and seeded (a couple of seconds in a debug
/// build): every mutated spec is refused with a typed error or parses into a spec whose
/// settings are in range. A trap fails the whole run, which is the point.
@Suite("Parser fuzzing: experiment specs")
struct SpecFuzzTests {
    static let seeds: [String] = [
        """
        {"model": {"activation": "relu", "input_dimension": 3, "second_layer": "trained", "inputs": "gaussian"},
         "teacher": {"kind": "neurons", "directions": [[1, 0, 0]], "coefficients": [2], "noise": 0.1},
         "initialization": {"a": {"mean": 0, "std": 1}, "w": {"mean": 0, "std": 0.5}},
         "energy": {"lambda": 0.01, "beta": null}, "particles": 50, "horizon": 1, "seed": 3,
         "sgd": {"eta": 0.01, "kind": "online", "noise": false},
         "jko": {"tau": 0.1, "scheme": "particle", "transport": "exact"}, "record_every": 0.1}
        """,
        """
        {"energy": {"potential": "quadratic", "lambda": 1, "beta": 4},
         "initialization": {"w": {"mean": [0.5, -0.5], "std": 0.5}}, "particles": 30, "horizon": 0.2, "seed": 2,
         "jko": {"tau": 0.1, "scheme": "grid", "bounds": [[-3, 3], [-3, 3]], "points_per_axis": 24}}
        """,
        DemoRun.compareSpec,
        DemoRun.jkoSpec,
        """
        {"model": {"activation": "tanh", "input_dimension": 2, "second_layer": "fixed"},
         "teacher": {"kind": "neurons", "directions": [[0.6, 0.8]]}, "initialization": {"w": {"mean": [0, 0], "std": 1}},
         "energy": {"lambda": 0.001, "beta": 100}, "particles": 64, "horizon": 2, "seed": 1,
         "sgd": {"eta": 0.05, "kind": "online", "noise": true},
         "jko": {"tau": 0.1, "scheme": "particle", "transport": "sinkhorn", "epsilon": 0.05}}
        """,
    ]

    /// JSON values to put in place of a value of the spec.
    static let values: [String] = [
        "1e308", "-1e308", "1e309", "1e-320", "4.9e-324", "-0", "0", "-1", "1e15", "1e300", "1e-300",
        "9007199254740993", "18446744073709551616", "0.5", "NaN", "Infinity", "null", "true", "\"\"",
        "\"\\u0000\\n\\u001b[2J\"", "[]", "[[]]", "{}", "[1e308, 1e308]", "[[1e-320, 0], [0, 1e-320]]", "\"relu\"",
        "\"grid\"", "\"sinkhorn\"", "\"quadratic\"",
    ]

    /// Byte-level and value-level mutations of JSON text.
    static func mutate(_ text: String, _ g: inout Xoshiro256StarStar) -> [UInt8] {
        var bytes = Array(text.utf8)
        for _ in 0 ... Int(g.next() % 3) {
            let position = bytes.isEmpty ? 0 : Int(g.next() % UInt64(bytes.count))
            switch g.next() % 6 {
            case 0, 1:  // replace the value after a ':' by a hard value
                if let colon = bytes[position...].firstIndex(of: 0x3A) {
                    var end = colon + 1
                    var depth = 0
                    while end < bytes.count {
                        let b = bytes[end]
                        if b == 0x5B || b == 0x7B { depth += 1 }
                        if b == 0x5D || b == 0x7D { if depth == 0 { break }; depth -= 1 }
                        if b == 0x2C && depth == 0 { break }
                        end += 1
                    }
                    bytes.replaceSubrange(colon + 1 ..< end, with: Array((" " + values[Int(g.next() % UInt64(values.count))]).utf8))
                }
            case 2 where !bytes.isEmpty:  // flip a bit
                bytes[position] ^= UInt8(1) << (g.next() % 8)
            case 3:  // truncate
                bytes.removeLast(bytes.count - position)
            case 4:  // insert garbage
                bytes.insert(contentsOf: (0 ..< Int(g.next() % 8)).map { _ in UInt8(truncatingIfNeeded: g.next()) }, at: position)
            default:  // drop a key and its value (up to the next comma)
                if let quote = bytes[position...].firstIndex(of: 0x22),
                   let comma = bytes[quote...].firstIndex(of: 0x2C) {
                    bytes.removeSubrange(quote ... comma)
                }
            }
        }
        return bytes
    }

    /// The ranges the runners rely on.
    static func checkRanges(_ s: ExperimentSpec, _ context: String) {
        #expect(s.particles >= 1 && s.particles <= 10_000_000, "\(context)")
        #expect(s.horizon.isFinite && s.horizon > 0, "\(context)")
        #expect(s.recordEvery.isFinite && s.recordEvery > 0, "\(context)")
        #expect(s.energy.lambda.isFinite && s.energy.lambda >= 0, "\(context)")
        if let beta = s.energy.beta { #expect(beta.isFinite && beta > 0, "\(context)") }
        if let sgd = s.sgd { #expect(sgd.eta.isFinite && sgd.eta > 0 && sgd.eta <= s.horizon, "\(context)") }
        if let jko = s.jko {
            #expect(jko.tau.isFinite && jko.tau > 0 && jko.tau <= s.horizon, "\(context)")
            if let e = jko.epsilon { #expect(e.isFinite && e > 0, "\(context)") }
            if let p = jko.pointsPerAxis { #expect(p >= 8 && p <= ExperimentSpec.maximumPointsPerAxis, "\(context)") }
            for pair in jko.bounds ?? [] { #expect(pair.count == 2 && pair[0] < pair[1] && pair.allSatisfy(\.isFinite), "\(context)") }
        }
        #expect(s.initialization.w.mean.allSatisfy(\.isFinite) && s.initialization.w.std.isFinite, "\(context)")
        #expect(s.parameterDimension >= 1, "\(context)")
    }

    @Test("Mutated specs give a typed one-line error or a spec in range")
    func specs() {
        var g = Xoshiro256StarStar(seed: 4_242)
        var accepted = 0, refused = 0
        for round in 0 ..< 2000 {
            let bytes = Self.mutate(Self.seeds[round % Self.seeds.count], &g)
            let context = MessageText.excerpt(bytes: bytes, limit: 400)
            do {
                let spec = try ExperimentSpec.parse(data: Data(bytes), file: "fuzz.json")
                Self.checkRanges(spec, context)
                accepted += 1
            } catch let error as ExperimentError {
                #expect(!error.description.contains("\n") && !error.description.contains("\u{1B}"), "\(error.description)")
                refused += 1
            } catch let error as MeanFieldError {
                #expect(!error.description.contains("\n"), "\(error.description)")
                refused += 1
            } catch is WassersteinError {
                refused += 1
            } catch {
                Issue.record("untyped error \(error) for \(context)")
            }
        }
        #expect(accepted > 40 && refused > 1000, "accepted \(accepted), refused \(refused)")
    }
}
