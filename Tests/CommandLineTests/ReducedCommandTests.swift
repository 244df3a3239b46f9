import Foundation
#if canImport(FoundationXML)
import FoundationXML
#endif
import Testing
import Wasserstein

/// `reduced`, `dimensions` and `compare --reference reduced` end to end on tiny problems.
@Suite("wasserstein reduced, dimensions and compare --reference reduced")
struct ReducedCommandTests {
    /// The linear network with a fixed second layer: `R(t) = (1 - eta)^{2k} / 2` along the Euler steps.
    static let linear = """
    {
      "model": {"activation": "linear", "input_dimension": 6, "second_layer": "fixed"},
      "teacher": {"directions": [[1]]},
      "initialization": {"w": {"gamma": 0.8}},
      "eta": 0.1, "horizon": 2, "record_every": 0.5,
      "nodes": {"s": 4, "r": 3}, "kernels": {"sphere_nodes": 4},
      "sgd": {"eta0": 0.1, "particles": 8, "record_every": 0.05}
    }
    """

    /// A ReLU student with a trained second layer, to exercise the general path.
    static let relu = """
    {
      "model": {"activation": "relu", "input_dimension": "infinity"},
      "teacher": {"directions": [[1]], "activation": "erf"},
      "initialization": {"a": {"mean": 0.2, "std": 0.5}, "w": {"gamma": 1}},
      "energy": {"lambda": 0.1},
      "eta": 0.1, "horizon": 1, "record_every": 0.25,
      "nodes": {"a": 3, "s": 3, "r": 2}
    }
    """

    func lines(_ path: String) throws -> [[String]] {
        try String(contentsOfFile: path, encoding: .utf8).split(separator: "\n").map { $0.split(separator: ",", omittingEmptySubsequences: false).map(String.init) }
    }

    func json(_ path: String) throws -> [String: Any] {
        try #require(JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: path))) as? [String: Any])
    }

    @Test("reduced writes the trajectory (the closed form of the linear network), the laws and a summary")
    func reducedFiles() throws {
        let s = try Scratch()
        let out = try CommandRunner.run(["reduced", s.file("spec.json", Self.linear), "--out", s.path("run")])
        #expect(out.status == 0, "\(out.stderr)")
        #expect(out.stdout.hasPrefix("reduced: d = 6, population (particles)"), "\(out.stdout)")
        let rows = try lines(s.path("run/trajectory.csv"))
        #expect(rows[0] == ["t", "step", "risk", "penalized_risk"])
        #expect(rows.count == 6)   // t = 0, 0.5, ..., 2
        for row in rows.dropFirst() {
            let step = try #require(Double(row[1])), risk = try #require(Double(row[2]))
            #expect(abs(risk - 0.5 * pow(0.9, 2 * step)) < 1e-12, "step \(step)")
        }
        let law = try NPYFormat.read(path: s.path("run/law_final.npy"))
        #expect(law.shape == [12, 3])   // 4 x 3 points of (s, r, weight)
        let weights = stride(from: 2, to: law.values.count, by: 3).map { law.values[$0] }
        #expect(abs(weights.reduce(0, +) - 1) < 1e-12)
        let summary = try json(s.path("run/summary.json"))
        #expect(summary["status"] as? String == "completed")
        #expect(summary["points"] as? Int == 12)
        #expect(FileManager.default.fileExists(atPath: s.path("run/risk.svg")))
    }

    @Test("reduced at d = infinity with a trained second layer and an erf teacher lowers the penalized risk")
    func reducedInfinity() throws {
        let s = try Scratch()
        let out = try CommandRunner.run(["reduced", s.file("spec.json", Self.relu), "--out", s.path("run")])
        #expect(out.status == 0, "\(out.stderr)")
        let rows = try lines(s.path("run/trajectory.csv")).dropFirst()
        let penalized = rows.map { Double($0[3])! }
        // A gradient flow of R + (lambda/2) E|z|^2 never increases it (eta small enough here).
        for k in 1 ..< penalized.count { #expect(penalized[k] <= penalized[k - 1] + 1e-12) }
        let summary = try json(s.path("run/summary.json"))
        #expect(summary["input_dimension"] as? String == "infinity")
        #expect((summary["kernels"] as? String)?.contains("t = 0") == true)
    }

    /// The noisy flow of a ReLU network with a fixed second layer on a small (s, r) grid.
    static let grid = """
    {
      "model": {"activation": "relu", "input_dimension": 6, "second_layer": "fixed"},
      "teacher": {"directions": [[1]]},
      "initialization": {"w": {"gamma": 1}},
      "energy": {"lambda": 0.5, "beta": 12},
      "scheme": "grid",
      "grid": {"tau": 0.2, "bounds": [[-1.5, 2], [0, 2.5]], "points_per_axis": [16, 12]},
      "horizon": 1, "record_every": 0.2,
      "kernels": {"sphere_nodes": 4}
    }
    """

    @Test("reduced on the grid: F of the full law never increases, and the run approaches the Gibbs point")
    func reducedGrid() throws {
        let s = try Scratch()
        let out = try CommandRunner.run(["reduced", s.file("spec.json", Self.grid), "--out", s.path("run")])
        #expect(out.status == 0, "\(out.stderr)")
        let rows = try lines(s.path("run/trajectory.csv"))
        #expect(rows[0] == ["t", "step", "risk", "penalized_risk", "free_energy"])
        let f = rows.dropFirst().map { Double($0[4])! }
        #expect(f.count == 6)
        // A JKO step never raises the energy it minimises.
        for k in 1 ..< f.count { #expect(f[k] <= f[k - 1] + 1e-9, "step \(k): \(f[k - 1]) -> \(f[k])") }
        let summary = try json(s.path("run/summary.json"))
        let stationary = try #require(summary["stationary"] as? [String: Any])
        #expect(stationary["converged"] as? Bool == true)
        // The Gibbs point minimises F: no state of the run is below it.
        let fStar = try #require(stationary["free_energy"] as? Double)
        #expect(f.allSatisfy { $0 >= fStar - 1e-9 })
        let w2 = try lines(s.path("run/w2_to_stationary.csv")).dropFirst().map { Double($0[1])! }
        #expect(w2.count >= 2 && w2.last! < w2.first!)
        let density = try NPYFormat.read(path: s.path("run/density_final.npy"))
        #expect(density.shape == [16, 12])
    }

    @Test("Bad reduced specs and options give one-line errors", arguments: [
        (["reduced"], "\"eta\": 0.1", "\"eta\": -1", "'eta'"),
        (["reduced"], "\"gamma\": 0.8", "\"gamma\": 0.8, \"mean\": 0", "'initialization.w.mean'"),
        (["reduced"], "\"activation\": \"linear\"", "\"activation\": \"he2\"", "'model.activation'"),
        (["dimensions", "--dimensions", "4,abc", "--risk-threshold", "0.1"], "", "", "--dimensions"),
        (["dimensions", "--dimensions", "1,8", "--risk-threshold", "0.1"], "", "", "--dimensions"),
    ])
    func badInputs(command: [String], old: String, new: String, message: String) throws {
        let s = try Scratch()
        let text = old.isEmpty ? Self.linear : Self.linear.replacingOccurrences(of: old, with: new)
        let out = try CommandRunner.run([command[0], s.file("spec.json", text), "--out", s.path("run")] + command.dropFirst())
        // A bad spec is a data error (1); a bad list option is a usage error (64, issue 10).
        #expect(out.status == (message.hasPrefix("--") ? 64 : 1))
        #expect(out.stderr.split(separator: "\n").count == 1, "\(out.stderr)")
        #expect(out.stderr.contains(message), "\(out.stderr)")
    }

    @Test("dimensions writes the crossing times, SGD's steps, an SVG with the infinity column, and a summary")
    func dimensionsFiles() throws {
        let s = try Scratch()
        let out = try CommandRunner.run(["dimensions", s.file("spec.json", Self.linear), "--dimensions", "4,16,infinity",
                                         "--risk-threshold", "0.05", "--sgd", "--out", s.path("run")])
        #expect(out.status == 0, "\(out.stderr)")
        let rows = try lines(s.path("run/dimensions.csv"))
        #expect(rows[0] == ["d", "t_reduced", "reduced_status", "reduced_final_risk", "sgd_eta", "sgd_steps", "t_sgd", "sgd_status",
                            "sgd_final_risk", "reduced_samples"])
        #expect(rows.dropFirst().map { $0[0] } == ["4", "16", "inf"])
        // The Euler crossing of (0.9)^{2k}/2 = 0.05: k = 10 + (R_10 - 0.05)/(R_10 - R_11).
        let r10 = 0.5 * pow(0.9, 20), r11 = 0.5 * pow(0.9, 22)
        let expected = (10 + (r10 - 0.05) / (r10 - r11)) * 0.1
        for row in rows.dropFirst() {
            #expect(row[2] == "reached")
            #expect(abs(Double(row[1])! - expected) < 1e-9)
        }
        #expect(rows[1][7] == "reached" && rows[2][7] == "reached")
        #expect(rows[3][5] == "nan" && rows[3][7] == "not_applicable" && rows[3][9] == "inf")
        // Samples the reduced flow predicts at d = 16: T d / eta0.
        #expect(abs(Double(rows[2][9])! - expected * 16 / 0.1) < 1e-6)

        let parser = XMLParser(contentsOf: URL(fileURLWithPath: s.path("run/dimensions.svg")))!
        let collector = DimensionChartCollector()
        parser.delegate = collector
        #expect(parser.parse(), "dimensions.svg is not well-formed XML")
        #expect(collector.points["reduced flow (M = infinity)"] == 3)
        #expect(collector.points.values.contains(2))   // SGD: finite d only
        #expect(collector.infinityLabels == 1)
        #expect(FileManager.default.fileExists(atPath: s.path("run/samples.svg")))
        let summary = try json(s.path("run/summary.json"))
        #expect((summary["rows"] as? [Any])?.count == 3)
    }

    @Test("reduced, dimensions and demo refuse runs above the memory limit, naming the key, before making the output folder")
    func memoryLimit() throws {
        let s = try Scratch()
        let spec = s.file("spec.json", Self.linear)
        // The linear run needs about 6 KiB: refused at 2K (option or spec key), run at 1G.
        ExtremeInputCommandTests.expectOneLineError(
            try CommandRunner.run(["reduced", spec, "--out", s.path("small"), "--memory-limit", "2K"]), containing: "spec key 'nodes'")
        #expect(!FileManager.default.fileExists(atPath: s.path("small")))
        let keyed = s.file("keyed.json", Self.linear.replacingOccurrences(of: "\"eta\": 0.1", with: "\"eta\": 0.1, \"memory_limit\": \"2K\""))
        ExtremeInputCommandTests.expectOneLineError(try CommandRunner.run(["reduced", keyed, "--out", s.path("keyed")]), containing: "memory")
        #expect(try CommandRunner.run(["reduced", keyed, "--out", s.path("roomy"), "--memory-limit", "1G"]).status == 0)
        // dimensions --sgd at d = 10^6 with 100000 particles: about 4 TB for online SGD.
        let wide = s.file("wide.json", Self.linear.replacingOccurrences(of: "\"particles\": 8", with: "\"particles\": 100000"))
        ExtremeInputCommandTests.expectOneLineError(
            try CommandRunner.run(["dimensions", wide, "--dimensions", "8,1000000", "--risk-threshold", "0.05", "--sgd",
                                   "--out", s.path("wide"), "--memory-limit", "64G"]), containing: "spec key 'sgd.particles'")
        #expect(!FileManager.default.fileExists(atPath: s.path("wide")))
        // demo's fixed runs need a few MiB.
        ExtremeInputCommandTests.expectOneLineError(try CommandRunner.run(["demo", "--out", s.path("demo"), "--memory-limit", "2K"]),
                                                    containing: "memory")
        #expect(!FileManager.default.fileExists(atPath: s.path("demo")))
        #expect(try CommandRunner.run(["reduced", spec, "--out", s.path("bad"), "--memory-limit", "lots"]).status == 64)
    }

    @Test("dimensions marks a threshold the horizon does not reach, in the CSV and the SVG")
    func dimensionsNotReached() throws {
        let s = try Scratch()
        let out = try CommandRunner.run(["dimensions", s.file("spec.json", Self.linear), "--dimensions", "8,infinity",
                                         "--risk-threshold", "1e-4", "--out", s.path("run")])
        #expect(out.status == 0, "\(out.stderr)")
        let rows = try lines(s.path("run/dimensions.csv")).dropFirst()
        for row in rows { #expect(row[1] == "inf" && row[2] == "not_reached") }
        let svg = try String(contentsOfFile: s.path("run/dimensions.svg"), encoding: .utf8)
        #expect(svg.components(separatedBy: "data-not-reached=").count - 1 == 2)
    }

    static let full = """
    {
      "model": {"activation": "linear", "input_dimension": 5, "second_layer": "fixed", "inputs": "gaussian"},
      "teacher": {"kind": "neurons", "directions": [[0, 0, 1, 0, 0]]},
      "initialization": {"w": {"mean": 0, "std": 0.4}},
      "energy": {"lambda": 0},
      "particles": 16, "horizon": 1, "seed": 2,
      "sgd": {"eta": 0.05, "kind": "online"},
      "record_every": 0.25
    }
    """

    @Test("compare --reference reduced writes the comparison against the closed-form reference")
    func compareReduced() throws {
        let s = try Scratch()
        let out = try CommandRunner.run(["compare", s.file("spec.json", Self.full), "--reference", "reduced", "--reference-nodes", "1,4,3",
                                         "--out", s.path("run")])
        #expect(out.status == 0, "\(out.stderr)")
        let rows = try lines(s.path("run/comparison.csv"))
        #expect(rows[0] == ["t", "risk_reduced", "risk_sgd", "risk_gap", "risk_common_start", "w2_reduced", "w2_norm_marginal",
                            "w2_overlap_marginal"])
        for row in rows.dropFirst() {
            #expect(abs(Double(row[1])! - 0.5 * exp(-2 * Double(row[0])!)) < 1e-7)
            #expect(abs(Double(row[3])! - abs(Double(row[1])! - Double(row[2])!)) < 1e-15)
        }
        let summary = try json(s.path("run/summary.json"))
        #expect(summary["command"] as? String == "compare --reference reduced")
        for name in ["risk.svg", "risk_gap.svg", "w2_distances.svg"] { #expect(FileManager.default.fileExists(atPath: s.path("run/" + name))) }
    }

    @Test("compare --reference reduced refuses a sphere-input spec and bad option combinations", arguments: [
        (["--reference", "reduced"], "\"gaussian\"", "\"sphere\"", "model.inputs", Int32(1)),
        (["--reference", "exact"], "", "", "--reference", Int32(64)),
        (["--reference-eta", "0.1"], "", "", "--reference-eta", Int32(64)),
        (["--reference", "reduced", "--sweep-particles", "4", "--reference-particles", "8"], "", "", "--reference-particles", Int32(64)),
        // The sweep's memory check counts the reduced reference: 512 points, about 800 KiB.
        (["--reference", "reduced", "--sweep-particles", "4,16", "--sweep-eta", "0.05", "--reference-nodes", "4,16,8",
          "--memory-limit", "512K"], "", "", "--reference-nodes", Int32(64)),
    ])
    func compareRefusals(extra: [String], old: String, new: String, message: String, status: Int32) throws {
        let s = try Scratch()
        let text = old.isEmpty ? Self.full : Self.full.replacingOccurrences(of: old, with: new)
        let out = try CommandRunner.run(["compare", s.file("spec.json", text), "--out", s.path("run")] + extra)
        #expect(out.status == status, "\(out.stderr)")
        #expect(out.stderr.split(separator: "\n").count == 1, "\(out.stderr)")
        #expect(out.stderr.contains(message), "\(out.stderr)")
    }
}

/// Counts the drawn points of every polyline of a ``DimensionChart`` and its infinity labels.
final class DimensionChartCollector: NSObject, XMLParserDelegate {
    var points: [String: Int] = [:]
    var infinityLabels = 0
    func parser(_ parser: XMLParser, didStartElement elementName: String, namespaceURI: String?,
                qualifiedName qName: String?, attributes: [String: String] = [:]) {
        if elementName == "polyline", let name = attributes["data-series"] {
            let drawn = attributes["points"]?.split(separator: " ").count ?? 0
            points[name] = attributes["data-points"] == String(drawn) ? drawn : -1
        }
        if elementName == "text", attributes["data-infinity"] == "true" { infinityLabels += 1 }
    }
}
