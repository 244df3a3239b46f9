import Foundation
import Testing
@testable import Experiments
import MeanField

@Suite("Experiment specs")
struct SpecTests {
    static let valid = """
    {
      "model": {"activation": "relu", "input_dimension": 3, "second_layer": "trained", "inputs": "gaussian"},
      "teacher": {"kind": "neurons", "directions": [[1, 0, 0]], "coefficients": [2], "noise": 0.1},
      "initialization": {"a": {"mean": 0, "std": 1}, "w": {"mean": 0, "std": 0.5}},
      "energy": {"lambda": 0.01, "beta": null},
      "particles": 50, "horizon": 1, "seed": 3,
      "sgd": {"eta": 0.01, "kind": "online", "noise": false},
      "jko": {"tau": 0.1, "scheme": "particle", "transport": "exact"},
      "record_every": 0.1
    }
    """

    func parse(_ text: String) throws -> ExperimentSpec {
        try ExperimentSpec.parse(data: Data(text.utf8))
    }

    /// Replaces the first occurrence of `old` in the valid spec.
    func variant(_ old: String, _ new: String) -> String {
        let s = Self.valid
        precondition(s.contains(old), "fixture does not contain \(old)")
        return s.replacingOccurrences(of: old, with: new)
    }

    @Test("A valid spec parses into the right values")
    func validSpec() throws {
        let s = try parse(Self.valid)
        #expect(s.model?.inputDimension == 3)
        #expect(s.parameterDimension == 4)
        #expect(s.initialization.w.mean == [0, 0, 0])
        #expect(s.energy.beta == nil)
        #expect(s.sgd?.kind == .online)
        #expect(s.jko?.tau == 0.1)
        #expect(s.teacher == .neurons(directions: [[1, 0, 0]], coefficients: [2], noise: 0.1))
    }

    @Test("teacher.activation: absent means the student's, he2 gives a He_2 teacher with the student unchanged")
    func teacherActivation() throws {
        let plain = try parse(Self.valid)
        #expect(try plain.teacherModel().activation(student: .erf).description == "erf")
        let s = try parse(variant("\"noise\": 0.1}", "\"noise\": 0.1, \"activation\": \"he2\"}"))
        #expect(s.teacher == .neurons(directions: [[1, 0, 0]], coefficients: [2], noise: 0.1, activation: "he2"))
        let teacher = try s.teacherModel()
        #expect(teacher.activation(student: .relu).description == "he2")
        // y = 2 He_2(<w*, x>) = 2 (x_1^2 - 1).
        #expect(abs(teacher.mean(at: [1.5, 0.3, -2], activation: .relu) - 2 * (1.5 * 1.5 - 1)) < 1e-15)
        #expect(try s.populationRisk().kernelDescription.contains("relu student, he2 teacher"))
    }

    @Test("The Ornstein-Uhlenbeck oracle needs no model")
    func oracleSpec() throws {
        let s = try parse("""
        {"energy": {"potential": "quadratic", "lambda": 1, "beta": 4},
         "initialization": {"w": {"mean": [1, -1], "std": 0.5}}, "particles": 10, "horizon": 1,
         "jko": {"tau": 0.1, "scheme": "grid", "bounds": [[-3, 3], [-3, 3]], "points_per_axis": 32}}
        """)
        #expect(s.model == nil)
        #expect(s.parameterDimension == 2)
        #expect(s.jko?.pointsPerAxis == 32)
        #expect(s.jko?.trackStationary == true)
    }

    @Test("jko.track_stationary decides whether the grid run computes rho*; compare's override wins")
    func trackStationary() throws {
        func settings(_ extra: String, override: Bool? = nil) throws -> Bool {
            let s = try parse("""
            {"energy": {"potential": "quadratic", "lambda": 1, "beta": 4},
             "initialization": {"w": {"mean": 0, "std": 0.5}}, "dimension": 1, "particles": 10, "horizon": 1,
             "jko": {"tau": 0.1, "scheme": "grid", "bounds": [[-3, 3]], "points_per_axis": 32\(extra)}}
            """)
            return try JKORun.settings(spec: s, trackStationary: override).trackStationaryDistance
        }
        #expect(try settings("") == true)
        #expect(try settings(", \"track_stationary\": false") == false)
        #expect(try settings("", override: false) == false)
        #expect(try settings(", \"track_stationary\": false", override: true) == true)
    }

    @Test("Particle dynamics without a model are refused at the sgd key")
    func sgdNeedsModel() {
        let text = """
        {"energy": {"potential": "quadratic", "lambda": 1, "beta": 4},
         "initialization": {"w": {"mean": 0, "std": 0.5}}, "dimension": 1, "particles": 10, "horizon": 1,
         "sgd": {"eta": 0.01, "kind": "population"}}
        """
        #expect { try parse(text) } throws: { error in
            guard case ExperimentError.invalidSpec(let key, _) = error else { return false }
            return key == "sgd"
        }
    }

    @Test("Bad specs name the offending key", arguments: [
        ("\"eta\": 0.01", "\"eta\": -1", "sgd.eta"),
        ("\"tau\": 0.1", "\"tau\": 0", "jko.tau"),
        ("\"beta\": null", "\"beta\": -2", "energy.beta"),
        ("\"activation\": \"relu\"", "\"activation\": \"swish\"", "model.activation"),
        ("\"input_dimension\": 3", "\"input_dimension\": \"three\"", "model.input_dimension"),
        ("\"particles\": 50", "\"particles\": 0", "particles"),
        ("\"particles\": 50", "\"particls\": 50", "particls"),
        ("\"directions\": [[1, 0, 0]]", "\"directions\": [[1, 0]]", "teacher.directions[0]"),
        ("\"kind\": \"online\"", "\"kind\": \"batch\"", "sgd.kind"),
        ("\"horizon\": 1", "\"horizon\": 0", "horizon"),
        ("\"std\": 0.5", "\"std\": -0.5", "initialization.w.std"),
        ("\"transport\": \"exact\"", "\"transport\": \"sinkhorn\"", "jko.epsilon"),
        ("\"scheme\": \"particle\"", "\"scheme\": \"grid\"", "jko.scheme"),
        ("\"seed\": 3", "\"seed\": 1e19", "seed"),
        ("\"seed\": 3", "\"seed\": 3, \"dimension\": 4", "dimension"),
        ("\"seed\": 3", "\"seed\": 3, \"name\": 7", "name"),
        ("\"transport\": \"exact\"", "\"transport\": \"exact\", \"track_stationary\": 1", "jko.track_stationary"),
        ("\"noise\": 0.1}", "\"noise\": 0.1, \"activation\": \"he3\"}", "teacher.activation"),
        ("\"noise\": 0.1}", "\"noise\": 0.1, \"activation\": 2}", "teacher.activation"),
    ])
    func badSpecs(old: String, new: String, key: String) {
        do {
            _ = try parse(variant(old, new))
            Issue.record("expected an error naming \(key)")
        } catch let error as ExperimentError {
            guard case .invalidSpec(let k, _) = error else { Issue.record("wrong error \(error)"); return }
            #expect(k == key)
            #expect(!error.description.contains("\n"))
        } catch {
            Issue.record("unexpected error \(error)")
        }
    }

    @Test("Grids that are too small or too large are refused")
    func gridLimits() {
        func grid(_ p: Int) -> String {
            """
            {"energy": {"potential": "quadratic", "lambda": 1, "beta": 4},
             "initialization": {"w": {"mean": 0, "std": 0.5}}, "particles": 10, "horizon": 1,
             "jko": {"tau": 0.1, "scheme": "grid", "bounds": [[-3, 3]], "points_per_axis": \(p)}}
            """
        }
        #expect(throws: ExperimentError.self) { try parse(grid(4)) }
        #expect(throws: ExperimentError.self) { try parse(grid(100_000)) }
        #expect(throws: Never.self) { try parse(grid(64)) }
    }

    @Test("Invalid JSON and missing files are reported as one line")
    func unreadable() {
        #expect(throws: ExperimentError.self) { try parse("{\"energy\": ") }
        #expect(throws: ExperimentError.self) { try parse("[1, 2]") }
        #expect(throws: ExperimentError.self) { try ExperimentSpec.load(path: "/nonexistent/spec.json") }
    }
}
