import Foundation
import Testing
@testable import Experiments

/// The typed run summaries and the one encoder that writes them to `summary.json`.
@Suite("Typed run summaries")
struct RunSummaryTests {
    struct Inner: RunSummary {
        var gamma: Double
        var compensated: Bool
    }

    struct Sample: RunSummary {
        let command = "sample"
        var steps: Int
        var tau: Double
        var residual: Double
        var riskFinalJKO: Double?
        @NullIfAbsent var beta: Double?
        var maxW2AMarginal: [Double]
        var slopeCI95: Double??
        var gridBlur: Inner?
        var label: String
    }

    @Test("members in declaration order, snake_case keys, integers, numbers, null and left-out members")
    func encoding() {
        let full = Sample(steps: 3, tau: 2, residual: .nan, riskFinalJKO: 0.25, beta: nil, maxW2AMarginal: [1, 0.5, .infinity],
                          slopeCI95: .some(nil), gridBlur: Inner(gamma: 0.125, compensated: true), label: "a \"b\"\n")
        #expect(full.serialized() == #"{"command":"sample","steps":3,"tau":2.0,"residual":null,"risk_final_jko":0.25,"beta":null,"max_w2_a_marginal":[1.0,0.5,null],"slope_ci95":null,"grid_blur":{"gamma":0.125,"compensated":true},"label":"a \"b\"\n"}"#)
        let sparse = Sample(steps: -1, tau: 1e300, residual: 0, riskFinalJKO: nil, beta: 4, maxW2AMarginal: [], slopeCI95: nil,
                            gridBlur: nil, label: "")
        #expect(sparse.serialized() == #"{"command":"sample","steps":-1,"tau":1e+300,"residual":0.0,"beta":4.0,"max_w2_a_marginal":[],"label":""}"#)
        // A list of records (`distances.json`).
        #expect([Inner(gamma: 1, compensated: false), Inner(gamma: -0.5, compensated: true)].serialized()
                == #"[{"gamma":1.0,"compensated":false},{"gamma":-0.5,"compensated":true}]"#)
        // The same as the untyped value written member by member.
        #expect(sparse.json == .object([("command", .string("sample")), ("steps", .integer(-1)), ("tau", .number(1e300)),
                                        ("residual", .number(0)), ("beta", .number(4)), ("max_w2_a_marginal", .array([])),
                                        ("label", .string(""))]))
    }

    @Test("Swift names to snake_case", arguments: [
        ("parameterDimension", "parameter_dimension"), ("riskFinalJKO", "risk_final_jko"), ("maxW2AMarginal", "max_w2_a_marginal"),
        ("tSGD", "t_sgd"), ("slopeCI95", "slope_ci95"), ("eta0", "eta0"), ("w2FinalToExactFlow", "w2_final_to_exact_flow"),
        ("d", "d"), ("already_snake", "already_snake"),
    ])
    func snakeCase(_ pair: (String, String)) {
        #expect(SummaryEncoding.snakeCase(pair.0) == pair.1)
    }

    // MARK: - The runners' files

    /// The top-level keys of `summary.json` as the runners wrote them before the summaries were
    /// typed (captured from the previous binary on the same kinds of runs): the files must not change.
    static let sgdKeys = ["command", "kind", "eta", "noise", "particles", "parameter_dimension", "horizon", "steps", "seed", "sgd_seed",
                          "lambda", "beta", "risk_initial", "risk_final", "free_energy_final", "risk_is_closed_form",
                          "entropy_estimator", "seconds", "status"]
    static let jkoParticleKeys = ["command", "scheme", "transport", "tau", "steps", "particles", "horizon", "energy", "lambda", "beta",
                                  "parameter_dimension", "seed", "energy_initial", "energy_final", "risk_initial", "risk_final",
                                  "energy_nonincreasing", "all_steps_converged", "inner_iterations", "transport_solves",
                                  "transport_seconds", "energy_seconds", "seconds"]
    static let jkoGridKeys = ["command", "scheme", "transport", "tau", "steps", "horizon", "energy", "lambda", "beta",
                              "parameter_dimension", "seed", "energy_initial", "energy_final", "energy_nonincreasing",
                              "all_steps_converged", "inner_iterations", "transport_solves", "transport_seconds", "energy_seconds",
                              "seconds", "grid_blur", "stationary", "w2_final_to_exact_flow"]
    static let compareKeys = ["command", "max_risk_gap", "final_risk_gap", "max_w2_norm_marginal", "max_w2_overlap_marginal",
                              "max_w2_a_marginal", "max_w2_clouds", "risk_final_jko", "risk_final_sgd", "risk_final_grid", "times",
                              "settings", "jko_all_steps_converged", "seconds"]
    static let reducedKeys = ["command", "scheme", "dynamics", "input_dimension", "activation", "teacher_activation", "second_layer",
                              "span_dimension", "gamma", "lambda", "beta", "horizon", "seed", "kernels", "teacher_second_moment",
                              "points", "initial_law", "eta", "steps", "risk_initial", "risk_final", "penalized_risk_final",
                              "free_energy_final", "free_energy_note", "status", "seconds"]

    static let network = """
    {
      "model": {"activation": "relu", "input_dimension": 3},
      "teacher": {"kind": "neurons", "directions": [[1, 0, 0]], "noise": 0.1},
      "initialization": {"a": {"mean": 0, "std": 0.5}, "w": {"mean": 0, "std": 0.5}},
      "energy": {"lambda": 0.01, "beta": 40},
      "particles": 20, "horizon": 0.2, "seed": 9,
      "sgd": {"eta": 0.02},
      "jko": {"tau": 0.1}
    }
    """

    static let ornsteinUhlenbeckGrid = """
    {
      "energy": {"potential": "quadratic", "lambda": 1, "beta": 4},
      "initialization": {"w": {"mean": [1.0], "std": 0.3}},
      "particles": 10, "horizon": 0.2, "seed": 3,
      "jko": {"tau": 0.1, "scheme": "grid", "bounds": [[-3, 3]], "points_per_axis": 40}
    }
    """

    static let linearReduced = """
    {
      "model": {"activation": "linear", "input_dimension": 6, "second_layer": "fixed"},
      "teacher": {"directions": [[1]]},
      "initialization": {"w": {"gamma": 0.8}},
      "eta": 0.1, "horizon": 1, "record_every": 0.5,
      "nodes": {"s": 4, "r": 3}, "kernels": {"sphere_nodes": 4}
    }
    """

    /// Runs `body` in a fresh folder and returns the typed summary and the text of `summary.json`.
    func written(_ body: (OutputDirectory) throws -> any RunSummary) throws -> (summary: any RunSummary, text: String) {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("summary-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let summary = try OutputDirectory.writing(to: folder) { try body($0) }
        let text = try String(contentsOfFile: (folder as NSString).appendingPathComponent("summary.json"), encoding: .utf8)
        return (summary, text)
    }

    @Test("summary.json holds the typed summary's members, in its order, under the keys the files always had",
          arguments: ["sgd", "jko particle", "jko grid", "compare", "reduced"])
    func runnerFiles(_ run: String) throws {
        let spec = { (text: String) in try ExperimentSpec.parse(data: Data(text.utf8)) }
        let result: (summary: any RunSummary, text: String)
        let keys: [String]
        switch run {
        case "sgd": result = try written { try SGDRun.run(spec: spec(Self.network), directory: $0).summary }; keys = Self.sgdKeys
        case "jko particle":
            result = try written { try JKORun.run(spec: spec(Self.network), directory: $0).summary }; keys = Self.jkoParticleKeys
        case "jko grid":
            result = try written { try JKORun.run(spec: spec(Self.ornsteinUhlenbeckGrid), directory: $0).summary }
            keys = Self.jkoGridKeys
        case "compare":
            result = try written { try CompareRun.run(spec: spec(Self.network), directory: $0, pictures: false).summary }
            keys = Self.compareKeys
        default:
            let reduced = try ReducedSpec.parse(data: Data(Self.linearReduced.utf8))
            result = try written { try ReducedRun.run(spec: reduced, directory: $0).summary }; keys = Self.reducedKeys
        }
        let (summary, text) = result
        // The order of the members in the file: the lines indented once.
        let fileKeys = text.split(separator: "\n").compactMap { line -> String? in
            guard line.hasPrefix("  \""), !line.hasPrefix("   "), let end = line.dropFirst(3).firstIndex(of: "\"") else { return nil }
            return String(line[line.index(line.startIndex, offsetBy: 3) ..< end])
        }
        #expect(fileKeys == keys)
        // The members found by reflection on the typed summary, not through its encoding.
        let members = Self.reflectedMembers(summary)
        #expect(members.map(\.key) == keys)
        let object = try JSONDecoder().decode([String: FileValue].self, from: Data(text.utf8))
        for (key, value) in members {
            let file = try #require(object[key], "\(run): \(key) is missing from the file")
            #expect(Self.matches(file, value), "\(run): \(key) is \(file) in the file, \(value ?? "nil") in the summary")
        }
    }

    /// The stored properties of a summary in declaration order, snake_cased, `nil` optionals left
    /// out and `@NullIfAbsent` ones kept as `nil`.
    static func reflectedMembers(_ value: Any) -> [(key: String, value: Any?)] {
        Mirror(reflecting: value).children.compactMap { child in
            guard var label = child.label else { return nil }
            let value = child.value
            if label.hasPrefix("_") {   // a property wrapper: its wrapped value, `nil` written as null
                label.removeFirst()
                let wrapped = Mirror(reflecting: value).children.first!.value
                return (SummaryEncoding.snakeCase(label), unwrapped(wrapped) ?? nil)
            }
            if Mirror(reflecting: value).displayStyle == .optional {
                guard let present = unwrapped(value) else { return nil }   // left out of the file
                return (SummaryEncoding.snakeCase(label), present)
            }
            return (SummaryEncoding.snakeCase(label), value)
        }
    }

    /// The value inside an optional (`nil` when absent), or the value itself.
    static func unwrapped(_ value: Any) -> Any?? {
        let mirror = Mirror(reflecting: value)
        guard mirror.displayStyle == .optional else { return .some(value) }
        guard let inner = mirror.children.first?.value else { return .none }
        return .some(unwrapped(inner) ?? nil)
    }

    /// A value read back from the file (`JSONSerialization` on Linux misreads some 17-digit numbers
    /// in the last place; `JSONDecoder` reads them exactly).
    enum FileValue: Decodable {
        case null, bool(Bool), number(Double), string(String), array([FileValue]), object([String: FileValue])

        init(from decoder: any Decoder) throws {
            let c = try decoder.singleValueContainer()
            if c.decodeNil() { self = .null } else if let b = try? c.decode(Bool.self) { self = .bool(b) }
            else if let v = try? c.decode(Double.self) { self = .number(v) } else if let s = try? c.decode(String.self) { self = .string(s) }
            else if let a = try? c.decode([FileValue].self) { self = .array(a) } else { self = .object(try c.decode([String: FileValue].self)) }
        }
    }

    /// Whether a value read back from the file is the summary's value.
    static func matches(_ file: FileValue, _ value: Any?) -> Bool {
        switch (file, value) {
        case (.null, nil): return true
        case (.number(let x), let v as Double): return x == v
        case (.null, let v as Double): return !v.isFinite
        case (.number(let x), let v as Int): return x == Double(v)
        case (.bool(let b), let v as Bool): return b == v
        case (.string(let s), let v as String): return s == v
        case (.array(let items), let v as [Int]): return items.count == v.count && zip(items, v).allSatisfy { matches($0, $1) }
        case (.array(let items), let v as [Double]): return items.count == v.count && zip(items, v).allSatisfy { matches($0, $1) }
        case (.object(let object), let v?):
            let members = reflectedMembers(v)
            return Set(object.keys) == Set(members.map(\.key)) && members.allSatisfy { m in object[m.key].map { matches($0, m.value) } ?? false }
        default: return false
        }
    }
}
