import Foundation
#if canImport(FoundationXML)
import FoundationXML
#endif
import Testing
import Wasserstein

/// The `sgd`, `jko` and `compare` commands on small specs: their files, their agreement, their errors.
@Suite("wasserstein sgd, jko and compare")
struct ExperimentCommandTests {
    static let model = """
    {
      "model": {"activation": "relu", "input_dimension": 3, "second_layer": "trained", "inputs": "gaussian"},
      "teacher": {"kind": "neurons", "directions": [[1, 0, 0]], "coefficients": [1], "noise": 0.1},
      "initialization": {"a": {"mean": 0, "std": 0.5}, "w": {"mean": 0, "std": 0.5}},
      "energy": {"lambda": 0.01, "beta": BETA},
      "particles": 24, "horizon": 0.3, "seed": 7,
      "sgd": {"eta": 0.01, "kind": "online", "noise": NOISE},
      "jko": {"tau": 0.05, "scheme": "particle", "transport": "exact"},
      "record_every": 0.05
    }
    """

    static func spec(beta: String = "null", noise: Bool = false) -> String {
        model.replacingOccurrences(of: "BETA", with: beta).replacingOccurrences(of: "NOISE", with: noise ? "true" : "false")
    }

    static let oracleGrid = """
    {"energy": {"potential": "quadratic", "lambda": 1, "beta": 4},
     "initialization": {"w": {"mean": [0.5, -0.5], "std": 0.5}}, "particles": 30, "horizon": 0.2, "seed": 2,
     "jko": {"tau": 0.1, "scheme": "grid", "bounds": [[-3, 3], [-3, 3]], "points_per_axis": 24}}
    """

    func table(_ path: String) throws -> (header: [String], columns: [String: [Double]]) {
        let t = try CSVFormat.read(path: path)
        let header = try #require(t.header)
        let n = t.array.shape[1]
        var columns = [String: [Double]]()
        for (k, name) in header.enumerated() {
            columns[name] = stride(from: k, to: t.array.values.count, by: n).map { t.array.values[$0] }
        }
        return (header, columns)
    }

    func json(_ path: String) throws -> [String: Any] {
        let data = try Data(contentsOf: URL(fileURLWithPath: path))
        return try #require(JSONSerialization.jsonObject(with: data) as? [String: Any])
    }

    @Test("sgd writes the trajectory, the particles and a summary; free energy when beta is finite")
    func sgdFiles() throws {
        let s = try Scratch()
        let spec = s.file("spec.json", Self.spec(beta: "50", noise: true))
        let out = try CommandRunner.run(["sgd", spec, "--out", s.path("run")])
        #expect(out.status == 0, "\(out.stderr)")
        let t = try table(s.path("run/trajectory.csv"))
        for c in ["t", "risk", "free_energy"] { #expect(t.header.contains(c), "missing \(c)") }
        #expect(t.columns["t"]!.count == 7)  // t = 0, 0.05, ..., 0.3
        let p = try NPYFormat.read(path: s.path("run/particles_final.npy"))
        #expect(p.shape == [24, 4])
        #expect(try json(s.path("run/summary.json"))["status"] as? String == "completed")
    }

    @Test("jko on the oracle grid writes a density that integrates to one and grid.json axes")
    func jkoGridFiles() throws {
        let s = try Scratch()
        let out = try CommandRunner.run(["jko", s.file("ou.json", Self.oracleGrid), "--out", s.path("run")])
        #expect(out.status == 0, "\(out.stderr)")
        let density = try NPYFormat.read(path: s.path("run/density_final.npy"))
        #expect(density.shape == [24, 24])
        let grid = try json(s.path("run/grid.json"))
        let axes = try #require(grid["axes"] as? [[Double]])
        #expect(axes.count == 2 && axes[0].count == 24 && axes[0].first == -3 && axes[0].last == 3)
        let h = axes[0][1] - axes[0][0]
        #expect(abs(density.values.reduce(0, +) * h * h - 1) < 1e-9)
        let t = try table(s.path("run/trajectory.csv"))
        for c in ["t", "energy", "w2_step", "w2_to_exact_flow"] { #expect(t.header.contains(c), "missing \(c)") }
        // The energy never increases from one JKO step to the next.
        let e = t.columns["energy"]!
        for k in 1 ..< e.count { #expect(e[k] <= e[k - 1] + 1e-12) }
    }

    @Test("compare agrees with the separate jko and sgd commands on the same spec")
    func compareAgrees() throws {
        let s = try Scratch()
        let spec = s.file("spec.json", Self.spec())
        for command in ["sgd", "jko", "compare"] {
            let out = try CommandRunner.run([command, spec, "--out", s.path(command)])
            #expect(out.status == 0, "\(command): \(out.stderr)")
        }
        let sgd = try table(s.path("sgd/trajectory.csv")).columns
        let jko = try table(s.path("jko/trajectory.csv")).columns
        let cmp = try table(s.path("compare/comparison.csv")).columns
        // record_every = tau in this spec, so all three sample the same times.
        #expect(cmp["t"]! == jko["t"]!)
        #expect(cmp["t"]! == sgd["t"]!)
        for k in cmp["t"]!.indices {
            #expect(abs(cmp["risk_jko"]![k] - jko["risk"]![k]) <= 1e-12)
            #expect(abs(cmp["risk_sgd"]![k] - sgd["risk"]![k]) <= 1e-12)
        }
        let summary = try json(s.path("compare/summary.json"))
        let gap = try #require(summary["max_risk_gap"] as? Double)
        let expected = zip(cmp["risk_jko"]!, cmp["risk_sgd"]!).map { abs($0 - $1) }.max()!
        #expect(abs(gap - expected) <= 1e-15)
        for c in ["w2_jko_sgd", "w2_norm_marginal", "w2_overlap_marginal", "w2_a_marginal"] {
            #expect(cmp[c] != nil, "missing \(c)")
        }
        // Both start from the same particles.
        #expect(cmp["w2_jko_sgd"]![0] == 0)
    }

    @Test("compare's pictures are well-formed SVG with one point per common time")
    func comparePictures() throws {
        let s = try Scratch()
        let out = try CommandRunner.run(["compare", s.file("spec.json", Self.spec()), "--out", s.path("run")])
        #expect(out.status == 0, "\(out.stderr)")
        let rows = try table(s.path("run/comparison.csv")).columns["t"]!.count
        for name in ["risk.svg", "risk_gap.svg", "w2_distances.svg"] {
            let parser = XMLParser(contentsOf: URL(fileURLWithPath: s.path("run/" + name)))!
            let collector = PolylineCollector()
            parser.delegate = collector
            #expect(parser.parse(), "\(name) is not well-formed XML")
            #expect(!collector.pointCounts.isEmpty)
            for (series, count) in collector.pointCounts { #expect(count == rows, "\(name) \(series)") }
        }
        let files = try FileManager.default.contentsOfDirectory(atPath: s.path("run"))
        #expect(files.contains { $0.hasPrefix("marginal_norm_") })
        #expect(files.contains { $0.hasPrefix("marginal_overlap_") })
        #expect(files.contains { $0.hasPrefix("marginal_a_") })
    }

    @Test("Bad specs give one-line errors naming the key", arguments: [
        ("jko", "\"tau\": 0.05", "\"tau\": 0", "jko.tau"),
        ("jko", "\"beta\": BETA", "\"beta\": -1", "energy.beta"),
        ("sgd", "\"eta\": 0.01", "\"eta\": 0", "sgd.eta"),
        ("compare", "\"tau\": 0.05", "\"tau\": 0.055", "jko.tau"),
        ("jko", "\"jko\": {\"tau\": 0.05, \"scheme\": \"particle\", \"transport\": \"exact\"},", "", "jko"),
        ("sgd", "\"particles\": 24,", "", "particles"),
        ("jko", "\"scheme\": \"particle\"", "\"scheme\": \"grid\", \"bounds\": [[0, 1]], \"points_per_axis\": 16", "jko.scheme"),
    ])
    func badSpecs(command: String, old: String, new: String, key: String) throws {
        let s = try Scratch()
        let text = Self.model.replacingOccurrences(of: old, with: new)
            .replacingOccurrences(of: "BETA", with: "null").replacingOccurrences(of: "NOISE", with: "false")
        #expect(text != Self.model)
        let out = try CommandRunner.run([command, s.file("spec.json", text), "--out", s.path("run")])
        #expect(out.status != 0)
        #expect(out.stderr.split(separator: "\n").count == 1, "\(out.stderr)")
        #expect(out.stderr.contains("'\(key)'"), "\(out.stderr)")
    }

    @Test("Grids that are too small or too large are refused by jko", arguments: [4, 100_000])
    func gridLimits(points: Int) throws {
        let s = try Scratch()
        let text = Self.oracleGrid.replacingOccurrences(of: "\"points_per_axis\": 24", with: "\"points_per_axis\": \(points)")
        let out = try CommandRunner.run(["jko", s.file("ou.json", text), "--out", s.path("run")])
        #expect(out.status != 0)
        #expect(out.stderr.contains("jko.points_per_axis"))
    }

    @Test("Bad sweep lists are usage errors: one line, exit code 64, no output folder", arguments: [
        ["--sweep-particles", "10,abc"], ["--sweep-particles", "0,10"], ["--sweep-eta", "0.01,-1"],
        ["--sweep-eta", "0.03"], ["--sweep-particles", ""], ["--sweep-particles", "10", "--seeds", "0"],
        ["--sweep-eta", "0.01,abc"], ["--sweep-particles", "10,2.5"], ["--sweep-particles", "1e300"],
        ["--sweep-eta", "nan"], ["--sweep-particles", "10", "--reference-particles", "0"],
    ])
    func badSweeps(_ extra: [String]) throws {
        let s = try Scratch()
        let out = try CommandRunner.run(["compare", s.file("spec.json", Self.spec()), "--out", s.path("run")] + extra)
        #expect(out.status == 64, "\(extra): \(out.status) \(out.stderr)")
        #expect(out.stderr.split(separator: "\n").count == 1, "\(out.stderr)")
        #expect(!FileManager.default.fileExists(atPath: s.path("run")))
    }

    @Test("A missing or malformed spec file is one line")
    func unreadableSpec() throws {
        let s = try Scratch()
        for args in [["sgd", s.path("none.json")], ["jko", s.file("bad.json", "{\"energy\": ")]] {
            let out = try CommandRunner.run(args + ["--out", s.path("run")])
            #expect(out.status != 0)
            #expect(out.stderr.split(separator: "\n").count == 1, "\(out.stderr)")
        }
    }
}

/// Counts the points of every polyline in an SVG, by its `data-series` name.
final class PolylineCollector: NSObject, XMLParserDelegate {
    var pointCounts: [String: Int] = [:]
    func parser(_ parser: XMLParser, didStartElement elementName: String, namespaceURI: String?,
                qualifiedName qName: String?, attributes: [String: String] = [:]) {
        guard elementName == "polyline", let name = attributes["data-series"] else { return }
        // Reference lines (dashed fits) are not data series of the comparison.
        let drawn = attributes["points"]?.split(separator: " ").count ?? 0
        if attributes["data-points"] == String(drawn) { pointCounts[name] = drawn } else { pointCounts[name] = -1 }
    }
}
