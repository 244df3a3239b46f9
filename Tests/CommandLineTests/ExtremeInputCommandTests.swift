import Foundation
import Testing

/// Issue 10 through the command: extreme but finite numbers end in one error line and status 1,
/// or in the answer of the same problem at a normal scale.
@Suite("wasserstein with extreme but finite numbers")
struct ExtremeInputCommandTests {
    static func expectOneLineError(_ out: CommandRunner.Output, containing text: String,
                                   sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(out.status == 1, "\(out.stderr)", sourceLocation: sourceLocation)
        let lines = out.stderr.split(separator: "\n")
        #expect(lines.count == 1 && lines[0].hasPrefix("wasserstein: error: "), "\(out.stderr)", sourceLocation: sourceLocation)
        #expect(out.stderr.contains(text), "\(out.stderr)", sourceLocation: sourceLocation)
    }

    @Test("Sinkhorn with a point at 1e155 or 1e308 exits 1 at once (it used to loop and grow without bound)",
          arguments: ["1e155", "1e308"])
    func overflowingCoordinates(_ far: String) throws {
        let s = try Scratch()
        let x = s.file("x.csv", "0,0\n1,0\n\(far),0\n"), y = s.file("y.csv", "0,1\n1,1\n2,1.5\n")
        for extra in [[], ["--divergence"], ["--json"]] {
            let out = try CommandRunner.run(["distance", x, y, "--method", "sinkhorn", "--epsilon", "0.1"] + extra)
            Self.expectOneLineError(out, containing: "squared coordinate range")
        }
    }

    @Test("Sinkhorn with epsilon tiny against the squared range exits 1 and names epsilon")
    func epsilonTooSmall() throws {
        let s = try Scratch()
        let x = s.file("x.csv", "0,0\n1,0\n1e150,0\n"), y = s.file("y.csv", "0,1\n1,1\n2,1.5\n")
        let out = try CommandRunner.run(["distance", x, y, "--method", "sinkhorn", "--epsilon", "1"])
        Self.expectOneLineError(out, containing: "epsilon")
    }

    @Test("Subnormal weights with --normalize give the answer of normal weights, for every method")
    func subnormalWeights() throws {
        let s = try Scratch()
        let x = s.file("x.csv", "0\n1\n2\n"), y = s.file("y.csv", "0.5\n2\n4\n")
        let w = s.file("w.csv", "1e-320\n1e-320\n1e-320\n")
        // Monotone coupling of equal weights: (0.25 + 1 + 4) / 3 = 1.75 (it printed 1.125).
        for method in ["exact", "lp", "sorted", "auto"] {
            let out = try CommandRunner.run(["distance", x, y, "--x-weights", w, "--y-weights", w,
                                             "--normalize", "--method", method, "--json"])
            #expect(out.status == 0, "\(out.stderr)")
            let o = try #require(JSONSerialization.jsonObject(with: Data(out.stdout.utf8)) as? [String: Any])
            let value = try #require(o["w2_squared"] as? Double)
            #expect(abs(value - 1.75) <= 1e-12, "\(method): \(value)")
        }
        let out = try CommandRunner.run(["distance", x, y, "--x-weights", w, "--y-weights", w, "--normalize",
                                         "--method", "sinkhorn", "--epsilon", "0.001", "--json"])
        #expect(out.status == 0, "\(out.stderr)")
        let o = try #require(JSONSerialization.jsonObject(with: Data(out.stdout.utf8)) as? [String: Any])
        let value = try #require(o["w2_squared"] as? Double)
        #expect(value >= 1.75 - 1e-9 && value <= 1.76, "\(value)")
        // Without --normalize, Sinkhorn refuses the subnormal mass instead of "converging" to 0.
        let refused = try CommandRunner.run(["distance", x, y, "--x-weights", w, "--y-weights", w,
                                             "--method", "sinkhorn", "--epsilon", "0.001"])
        Self.expectOneLineError(refused, containing: "--normalize")
    }

    static let base = """
    {
      "model": {"activation": "relu", "input_dimension": 3, "second_layer": "trained", "inputs": "gaussian"},
      "teacher": {"kind": "neurons", "directions": [[1, 0, 0]], "coefficients": [1], "noise": 0},
      "initialization": {"a": {"mean": 0, "std": 0.5}, "w": {"mean": 0, "std": 0.4}},
      "energy": {"lambda": 0.001, "beta": null},
      "particles": 12, "horizon": 0.2, "seed": 7,
      "sgd": {"eta": 0.01, "kind": "online", "noise": false},
      "jko": {"tau": 0.1, "scheme": "particle", "transport": "exact"},
      "record_every": 0.05
    }
    """

    static func spec(_ old: String, _ new: String) -> String {
        precondition(base.contains(old), "fixture does not contain \(old)")
        return base.replacingOccurrences(of: old, with: new)
    }

    @Test("sgd whose risk is infinite at once: status diverged, exit 0, all four files (it trapped: SIGILL)",
          arguments: [("\"w\": {\"mean\": 0,", "\"w\": {\"mean\": 1e300,"), ("\"noise\": 0", "\"noise\": 1e300"),
                      ("\"std\": 0.5", "\"std\": 1e300"), ("\"coefficients\": [1]", "\"coefficients\": [1e300]")])
    func sgdDivergesAtOnce(_ change: (String, String)) throws {
        let s = try Scratch()
        let spec = s.file("spec.json", Self.spec(change.0, change.1))
        let out = try CommandRunner.run(["sgd", spec, "--out", s.path("run")])
        #expect(out.status == 0, "\(out.stderr)")
        #expect(out.stderr.contains("wasserstein: warning: the dynamics diverged at step 0"), "\(out.stderr)")
        let names = try FileManager.default.contentsOfDirectory(atPath: s.path("run")).filter { !$0.hasPrefix(".") }.sorted()
        #expect(names == ["particles_final.npy", "particles_initial.npy", "summary.json", "trajectory.csv"])
        let summary = try #require(JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: s.path("run/summary.json")))) as? [String: Any])
        #expect(summary["status"] as? String == "diverged")
        // jko and compare cannot start from an infinite energy: one line, status 1, no files.
        for command in ["jko", "compare"] {
            let failed = try CommandRunner.run([command, spec, "--out", s.path(command)])
            Self.expectOneLineError(failed, containing: "initial free energy")
            let left = (try? FileManager.default.contentsOfDirectory(atPath: s.path(command))) ?? []
            #expect(left.isEmpty, "\(command) left \(left)")
        }
    }

    @Test("Ratios that overflowed Int: sgd.eta = 1e-300, horizon = 1e300, record_every = 1e300, grid beta = 1e-300")
    func countsFromRatios() throws {
        let s = try Scratch()
        let eta = s.file("eta.json", Self.spec("\"eta\": 0.01", "\"eta\": 1e-300"))
        for command in ["sgd", "compare", "jko"] {
            Self.expectOneLineError(try CommandRunner.run([command, eta, "--out", s.path("a")]), containing: "'sgd.eta'")
        }
        let oracle = """
        {"energy": {"potential": "quadratic", "lambda": 1, "beta": BETA},
         "initialization": {"w": {"mean": [0.5, -0.5], "std": 0.5}}, "particles": 20, "horizon": HORIZON, "seed": 2,
         "jko": {"tau": 0.1, "scheme": "grid", "bounds": [[-3, 3], [-3, 3]], "points_per_axis": 12}}
        """
        let horizon = s.file("horizon.json", oracle.replacingOccurrences(of: "BETA", with: "4").replacingOccurrences(of: "HORIZON", with: "1e300"))
        Self.expectOneLineError(try CommandRunner.run(["jko", horizon, "--out", s.path("b")]), containing: "'jko.tau'")
        let beta = s.file("beta.json", oracle.replacingOccurrences(of: "BETA", with: "1e-300").replacingOccurrences(of: "HORIZON", with: "0.2"))
        let grid = try CommandRunner.run(["jko", beta, "--out", s.path("c")])
        #expect(grid.status == 0, "\(grid.stderr)")
        let record = s.file("record.json", Self.spec("\"record_every\": 0.05", "\"record_every\": 1e300"))
        let sgd = try CommandRunner.run(["sgd", record, "--out", s.path("d")])
        #expect(sgd.status == 0, "\(sgd.stderr)")
    }

    @Test("Runs too large for the memory limit exit 1 naming the key, before making the output folder")
    func memory() throws {
        let s = try Scratch()
        let huge = s.file("huge.json", Self.spec("\"particles\": 12", "\"particles\": 10000000")
            .replacingOccurrences(of: "\"input_dimension\": 3", with: "\"input_dimension\": 1000")
            .replacingOccurrences(of: "[[1, 0, 0]]", with: "[[1" + String(repeating: ", 0", count: 999) + "]]"))
        for command in ["sgd", "jko", "compare"] {
            let out = try CommandRunner.run([command, huge, "--out", s.path("huge"), "--memory-limit", "64G"])
            Self.expectOneLineError(out, containing: "spec key 'particles'")
            #expect(out.stderr.contains("memory"))
            #expect(!FileManager.default.fileExists(atPath: s.path("huge")))
        }
        let tau = s.file("tau.json", Self.spec("\"tau\": 0.1", "\"tau\": 1e-9"))
        Self.expectOneLineError(try CommandRunner.run(["jko", tau, "--out", s.path("tau"), "--memory-limit", "64G"]),
                                containing: "spec key 'jko.tau'")
        // The option overrides the spec and the machine: an ordinary run (about 4 KiB) fails at 2K, passes at 1G.
        let ordinary = s.file("ordinary.json", Self.base)
        Self.expectOneLineError(try CommandRunner.run(["sgd", ordinary, "--out", s.path("small"), "--memory-limit", "2K"]),
                                containing: "memory")
        #expect(try CommandRunner.run(["sgd", ordinary, "--out", s.path("roomy"), "--memory-limit", "1G"]).status == 0)
        let bad = try CommandRunner.run(["sgd", ordinary, "--out", s.path("bad"), "--memory-limit", "lots"])
        #expect(bad.status == 64, "\(bad.stderr)")
    }
}
