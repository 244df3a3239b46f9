import Foundation
import Testing
import Wasserstein

@Suite("wasserstein sliced, distance --partial, barycenter")
struct SlicedPartialBarycenterCommandTests {
    static func clouds(_ s: Scratch) -> (x: String, y: String, yw: String) {
        (s.file("x.csv", "u,v\n0,0\n1,0\n0,2\n"), s.file("y.csv", "3,1\n-1,1\n"), s.file("yw.csv", "0.75\n0.25\n"))
    }

    func json(_ text: String) throws -> [String: Any] {
        try #require(JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any])
    }

    @Test("sliced: JSON agrees with the library, given directions, per-direction file, --max between the sample and W2")
    func sliced() throws {
        let s = try Scratch()
        let f = Self.clouds(s)
        let mu = try PointCloud(points: [[0, 0], [1, 0], [0, 2]])
        let nu = try PointCloud(points: [[3, 1], [-1, 1]], weights: [0.75, 0.25])
        let problem = try TransportProblem(source: mu, target: nu)
        let library = try SlicedWasserstein(directions: .random(count: 20, seed: 5)).solve(problem)
        let out = try CommandRunner.run(["sliced", f.x, f.y, "--y-weights", f.yw, "--directions", "20", "--seed", "5", "--json",
                                         "--per-direction", s.path("dirs.csv")])
        #expect(out.status == 0, "\(out.stderr)")
        let o = try json(out.stdout)
        #expect(o["method"] as? String == "sliced" && o["directions"] as? Int == 20 && o["seed"] as? Int == 5)
        #expect(o["sw2_squared"] as? Double == library.w2Squared)
        #expect(abs((o["standard_error"] as? Double ?? -1) - library.standardError!) <= 1e-15)
        let table = try CSVFormat.read(path: s.path("dirs.csv"))
        #expect(table.header == ["theta_1", "theta_2", "w2_squared"] && table.array.shape == [20, 3])
        // The axes as a directions file: the mean of the two axis projections.
        let axes = s.file("axes.csv", "1,0\n0,-2\n")
        let byAxes = try CommandRunner.run(["sliced", f.x, f.y, "--y-weights", f.yw, "--directions-file", axes, "--json"])
        #expect(byAxes.status == 0, "\(byAxes.stderr)")
        let expected = try SlicedWasserstein(directions: .given(coordinates: [1, 0, 0, 1])).solve(problem).w2Squared
        #expect(abs((try json(byAxes.stdout)["sw2_squared"] as? Double ?? -1) - expected) <= 1e-12 * expected)
        let max = try CommandRunner.run(["sliced", f.x, f.y, "--y-weights", f.yw, "--max", "--json"])
        #expect(max.status == 0, "\(max.stderr)")
        let m = try json(max.stdout)
        let value = try #require(m["w2_squared"] as? Double)
        #expect(value >= (m["best_sampled_w2_squared"] as? Double ?? .infinity))
        #expect(value <= (try wasserstein2(problem).cost) * (1 + 1e-12))
        #expect((m["direction"] as? [Double])?.count == 2)
    }

    @Test("distance --partial: POT's documented value, unequal masses accepted, a plan that moves the mass")
    func partial() throws {
        let s = try Scratch()
        let f = Self.clouds(s)
        let out = try CommandRunner.run(["distance", f.x, f.y, "--partial", "0.5", "--plan", s.path("plan.csv"), "--json"])
        #expect(out.status == 0, "\(out.stderr)")
        let o = try json(out.stdout)
        let mu = try PointCloud(points: [[0, 0], [1, 0], [0, 2]])
        let nu = try PointCloud(points: [[3, 1], [-1, 1]])
        let library = try PartialTransport().solve(source: mu, target: nu, mass: 0.5)
        #expect(abs((o["cost"] as? Double ?? -1) - library.cost) <= 1e-12)
        #expect(o["partial"] as? Bool == true && o["solver"] as? String == "network_simplex")
        let plan = try CSVFormat.read(path: s.path("plan.csv"))
        let rows = plan.array.shape[0]
        let moved = (0 ..< rows).map { plan.array.values[3 * $0 + 2] }.reduce(0, +)
        #expect(abs(moved - 0.5) < 1e-12)
        // Unequal masses: 3 points of weight 1 against 2 of weight 1 (|a| = 3, |b| = 2).
        let ones3 = s.file("w3.csv", "1\n1\n1\n"), ones2 = s.file("w2.csv", "1\n1\n")
        let unequal = try CommandRunner.run(["distance", f.x, f.y, "--x-weights", ones3, "--y-weights", ones2, "--partial", "2"])
        #expect(unequal.status == 0, "\(unequal.stderr)")
        #expect(unequal.stdout.hasPrefix("partial cost = "))
    }

    @Test("barycenter: writes barycenter.npy and summary.json; 1-D inputs give the quantile average")
    func barycenter() throws {
        let s = try Scratch()
        let a = s.file("a.csv", "0\n1\n2\n3\n"), b = s.file("b.csv", "10\n14\n12\n16\n")
        let out = try CommandRunner.run(["barycenter", a, b, "--weights", "3,1", "--out", s.path("bary")])
        #expect(out.status == 0, "\(out.stderr)")
        #expect(out.stdout.hasPrefix("barycenter of 2 inputs: N = 4, D = 1"))
        let x = try NPYFormat.read(path: s.path("bary/barycenter.npy"))
        #expect(x.shape == [4, 1] || x.shape == [4])
        let expected = [0.0, 1, 2, 3].enumerated().map { 0.75 * $0.element + 0.25 * [10.0, 12, 14, 16][$0.offset] }
        for (g, e) in zip(x.values.sorted(), expected) { #expect(abs(g - e) < 1e-12) }
        let summary = try json(String(contentsOfFile: s.path("bary/summary.json"), encoding: .utf8))
        #expect(summary["converged"] as? Bool == true && summary["support"] as? Int == 4)
        #expect((summary["weights"] as? [Double]) == [0.75, 0.25])
        // The picture: one histogram per input and one of the barycenter, each of its 4 points.
        let svg = try String(contentsOfFile: s.path("bary/barycenter.svg"), encoding: .utf8)
        for name in ["a.csv", "b.csv", "barycenter"] {
            #expect(svg.contains("data-series=\"\(name)\" data-bins=\"40\" data-count=\"4\""), "\(name)")
        }
        // 2-D: a scatter plot of the inputs and the barycenter, every point drawn.
        let f = Self.clouds(s)
        let plane = try CommandRunner.run(["barycenter", f.x, f.y, "--out", s.path("bary2")])
        #expect(plane.status == 0, "\(plane.stderr)")
        let scatter = try String(contentsOfFile: s.path("bary2/barycenter.svg"), encoding: .utf8)
        let n = try NPYFormat.read(path: s.path("bary2/barycenter.npy")).shape[0]
        #expect(scatter.contains("<g data-series=\"barycenter\" data-points=\"\(n)\""))
        #expect(!scatter.contains("<polyline"))
        // 3-D: no picture (a projection would mislead).
        let cube = s.file("c.csv", "0,0,0\n1,1,1\n"), cube2 = s.file("c2.csv", "2,0,0\n1,3,1\n")
        #expect(try CommandRunner.run(["barycenter", cube, cube2, "--out", s.path("bary3")]).status == 0)
        #expect(!FileManager.default.fileExists(atPath: s.path("bary3/barycenter.svg")))
    }

    @Test("usage errors exit 64, data errors exit 1, each one line")
    func errors() throws {
        let s = try Scratch()
        let f = Self.clouds(s)
        let threeD = s.file("z.csv", "1,2,3\n")
        let zero = s.file("zero.csv", "0,0\n1,0\n")
        let cases: [([String], Int32, String)] = [
            (["sliced", f.x, f.y, "--directions", "3", "--directions-file", zero], 64, "exclude each other"),
            (["sliced", f.x, f.y, "--directions", "0"], 64, "--directions must be >= 1"),
            (["sliced", f.x, f.y, "--directions-file", zero, "--seed", "2"], 64, "--seed applies"),
            (["sliced", f.x, f.y, "--seed", "-1"], 64, ""),
            (["sliced", f.x, f.y, "--per-direction", f.x], 64, "replace"),
            (["sliced", f.x, f.y, "--y-weights", f.yw, "--directions-file", zero], 1, "direction 0"),
            (["sliced", f.x, f.y, "--directions-file", threeD], 1, "columns"),
            (["sliced", f.x, f.y, "--directions", "100000000"], 1, "problem too large"),
            (["sliced", f.x, threeD], 1, "the target's points have dimension 3"),
            (["sliced", f.x, f.y, "--y-weights", s.file("bad.csv", "2\n2\n")], 1, "total masses differ"),
            (["distance", f.x, f.y, "--partial", "0.5", "--method", "sinkhorn"], 64, "needs --epsilon"),
            (["distance", f.x, f.y, "--partial", "0.5", "--method", "lp"], 64, "--partial needs --method exact"),
            (["distance", f.x, f.y, "--partial=-1"], 64, "--partial must be >= 0"),
            (["distance", f.x, f.y, "--partial", "nan"], 64, "--partial must be >= 0"),
            (["distance", f.x, f.y, "--partial", "1.5"], 1, "partial mass"),
            (["barycenter", f.x, f.y, "--weights", "1", "--out", s.path("o")], 64, "--weights has 1 values for 2 inputs"),
            (["barycenter", f.x, f.y, "--weights", "1,abc", "--out", s.path("o")], 64, "not a finite number"),
            (["barycenter", f.x, f.y, "--weights", "0,0", "--out", s.path("o")], 64, "positive"),
            (["barycenter", f.x, f.y, "--support", "0", "--out", s.path("o")], 64, "--support must be >= 1"),
            (["barycenter", f.x, threeD, "--out", s.path("o")], 1, "dimension mismatch"),
            (["barycenter", f.x, s.path("missing.csv"), "--out", s.path("o")], 1, "missing.csv"),
            (["barycenter", f.x, "--out", s.path("single")], 0, ""),
            (["barycenter", "--out", s.path("o")], 64, ""),
        ]
        for (arguments, code, text) in cases {
            let out = try CommandRunner.run(arguments)
            if code == 0 {
                // One input: its own barycenter (N = 3 points, cost 0), not an error.
                #expect(out.status == 0, "\(out.stderr)")
                continue
            }
            #expect(out.status == code, "\(arguments): exit \(out.status), \(out.stderr)")
            #expect(out.stderr.hasPrefix("wasserstein: error: ") && out.stderr.filter { $0 == "\n" }.count == 1,
                    "\(arguments): \(out.stderr)")
            #expect(text.isEmpty || out.stderr.contains(text), "\(arguments): \(out.stderr)")
            #expect(out.stdout.isEmpty)
        }
        // A failed barycenter leaves no output folder.
        #expect(!FileManager.default.fileExists(atPath: s.path("o/barycenter.npy")))
    }
}
