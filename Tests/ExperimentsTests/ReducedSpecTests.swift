import Foundation
import MeanField
import Testing
@testable import Experiments

@Suite("Reduced specs")
struct ReducedSpecTests {
    static let valid = """
    {
      "name": "relu teacher",
      "model": {"activation": "relu", "input_dimension": 20, "second_layer": "trained"},
      "teacher": {"directions": [[1]], "coefficients": [1], "noise": 0.1, "activation": "he2"},
      "initialization": {"a": {"mean": 0.5, "std": 0}, "w": {"gamma": 1}},
      "energy": {"lambda": 0.01},
      "eta": 0.05, "horizon": 2, "record_every": 0.5, "seed": 4,
      "nodes": {"a": 4, "s": 6, "r": 4},
      "sgd": {"eta0": 0.5, "particles": 64}
    }
    """

    func parse(_ text: String, requireDimension: Bool = true) throws -> ReducedSpec {
        try ReducedSpec.parse(data: Data(text.utf8), requireDimension: requireDimension)
    }

    func variant(_ old: String, _ new: String) -> String {
        precondition(Self.valid.contains(old), "fixture does not contain \(old)")
        return Self.valid.replacingOccurrences(of: old, with: new)
    }

    @Test("A valid reduced spec parses into the right values and builds its reduction")
    func validSpec() throws {
        let s = try parse(Self.valid)
        #expect(s.inputDimension == .finite(20))
        #expect(s.dynamics == .population && s.scheme == .particles)
        #expect(s.teacher == ReducedTeacherSpec(directions: [[1]], coefficients: [1], noise: 0.1, activation: "he2"))
        #expect(s.secondLayerInitialization == NormalSpec(mean: 0.5, std: 0))
        #expect(s.nodes == ReducedNodesSpec(a: 4, s: 6, r: 4))
        #expect(s.sgd == ReducedSGDSpec(eta0: 0.5, particles: 64, seed: 4, recordEvery: 0.5, maxDimension: nil))
        #expect(s.coordinateCount == 3)
        let setting = try s.reducedSetting()
        #expect(setting.orthogonalDimension == 19)
        #expect(setting.teacherActivation.description == "he2")
        // a.std = 0 quantises a to one node: 6 x 4 points.
        #expect(try s.initialReducedLaw(setting: setting).count == 24)
    }

    @Test("input_dimension may be \"infinity\", and dimensions may leave it out")
    func infinity() throws {
        let s = try parse(variant("\"input_dimension\": 20", "\"input_dimension\": \"infinity\""))
        #expect(s.inputDimension == .infinity)
        #expect(try s.reducedSetting().orthogonalDimension == nil)
        let open = try parse(variant("\"input_dimension\": 20, ", ""), requireDimension: false)
        #expect(open.inputDimension == nil)
        #expect(try open.at(dimension: .finite(7)).inputDimension == .finite(7))
    }

    @Test("A finite beta makes the dynamics noisy by default")
    func noisyDefault() throws {
        let s = try parse(variant("\"lambda\": 0.01", "\"lambda\": 0.01, \"beta\": 50"))
        #expect(s.dynamics == .noisy && s.beta == 50)
        #expect(s.flowSettings().beta == 50)
        #expect(try parse(Self.valid).flowSettings().beta == nil)
    }

    @Test("Bad reduced specs name the key", arguments: [
        ("\"input_dimension\": 20", "\"input_dimension\": 1", "model.input_dimension"),
        ("\"input_dimension\": 20", "\"input_dimension\": \"huge\"", "model.input_dimension"),
        ("\"input_dimension\": 20, ", "", "model.input_dimension"),
        ("\"second_layer\": \"trained\"", "\"second_layer\": \"trained\", \"inputs\": \"sphere\"", "model.inputs"),
        ("\"directions\": [[1]]", "\"directions\": [[1, 0, 0]]", "teacher.directions"),
        ("\"directions\": [[1]]", "\"directions\": [[1], [1, 0]]", "teacher.directions[1]"),
        ("\"directions\": [[1]]", "\"directions\": [[0]]", "teacher.directions"),
        ("\"coefficients\": [1]", "\"coefficients\": [1, 2]", "teacher.coefficients"),
        ("\"activation\": \"he2\"", "\"activation\": \"cubic\"", "teacher.activation"),
        ("\"gamma\": 1", "\"std\": 1", "initialization.w.std"),
        ("\"gamma\": 1", "\"gamma\": -1", "initialization.w.gamma"),
        ("\"a\": {\"mean\": 0.5, \"std\": 0}, ", "", "initialization.a"),
        ("\"lambda\": 0.01", "\"lambda\": 0.01, \"beta\": 0", "energy.beta"),
        ("\"energy\": {\"lambda\": 0.01}", "\"energy\": {\"lambda\": 0.01}, \"dynamics\": \"noisy\"", "dynamics"),
        ("\"energy\": {\"lambda\": 0.01}", "\"energy\": {\"beta\": 5}, \"dynamics\": \"population\"", "energy.beta"),
        ("\"eta\": 0.05", "\"eta\": 3", "eta"),
        ("\"eta\": 0.05, ", "", "eta"),
        ("\"nodes\": {\"a\": 4, \"s\": 6, \"r\": 4}", "\"nodes\": {\"s\": 300}", "nodes.s"),
        ("\"nodes\": {\"a\": 4, \"s\": 6, \"r\": 4}", "\"nodes\": {\"s\": 6}, \"particles\": 10", "particles"),
        ("\"eta0\": 0.5", "\"eta0\": 0", "sgd.eta0"),
        ("\"eta0\": 0.5", "\"eta0\": 0.5, \"max_dimension\": 1", "sgd.max_dimension"),
        ("\"seed\": 4", "\"seed\": 4, \"jko\": {}", "jko"),
        ("\"seed\": 4", "\"seed\": 4, \"scheme\": \"grid\"", "grid"),
        ("\"seed\": 4", "\"seed\": 4, \"grid\": {\"tau\": 0.1, \"bounds\": [[-2, 2], [-1, 1], [-1, 2]], \"points_per_axis\": 16}",
         "grid.bounds[2]"),
        ("\"seed\": 4", "\"seed\": 4, \"grid\": {\"tau\": 0.1, \"bounds\": [[-1, 1], [0, 2]], \"points_per_axis\": 16}", "grid.bounds"),
        ("\"seed\": 4", "\"seed\": 4, \"kernels\": {\"sphere_nodes\": 0}", "kernels.sphere_nodes"),
    ])
    func badSpecs(old: String, new: String, key: String) throws {
        let text = variant(old, new)
        do {
            _ = try parse(text)
            Issue.record("accepted a spec with a bad \(key)")
        } catch let error as ExperimentError {
            guard case .invalidSpec(let k, _) = error else {
                Issue.record("unexpected error \(error)")
                return
            }
            #expect(k == key, "\(error)")
        }
    }

    @Test("Noisy dynamics are refused at d = infinity, in the spec and in a dimension list")
    func noisyAtInfinity() throws {
        let noisy = variant("\"lambda\": 0.01", "\"lambda\": 0.01, \"beta\": 50")
        do {
            _ = try parse(noisy.replacingOccurrences(of: "\"input_dimension\": 20", with: "\"input_dimension\": \"infinity\""))
            Issue.record("accepted noisy dynamics at d = infinity")
        } catch ExperimentError.invalidSpec(let key, let reason) {
            #expect(key == "dynamics" && reason.contains("infinite"), "\(reason)")
        }
        #expect(throws: ExperimentError.self) { _ = try parse(noisy).at(dimension: .infinity) }
        #expect(throws: ExperimentError.self) { _ = try parse(Self.valid).at(dimension: .finite(1)) }
    }
}
