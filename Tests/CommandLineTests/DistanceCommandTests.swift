import Foundation
import Testing
import Wasserstein

@Suite("wasserstein distance")
struct DistanceCommandTests {
    /// Two small clouds with non-uniform weights and an exact answer from the library.
    static func clouds(_ s: Scratch) -> (x: String, y: String, xw: String, yw: String) {
        (s.file("x.csv", "u,v\n0,0\n1,0\n0,2\n"), s.file("y.csv", "3,1\n-1,1\n"),
         s.file("xw.csv", "0.2\n0.3\n0.5\n"), s.file("yw.csv", "0.6\n0.4\n"))
    }

    func json(_ text: String) throws -> [String: Any] {
        try #require(JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any])
    }

    @Test("JSON output has the documented keys and the library's value, for every exact method")
    func jsonOutput() throws {
        let s = try Scratch()
        let f = Self.clouds(s)
        let mu = try PointCloud(points: [[0, 0], [1, 0], [0, 2]], weights: [0.2, 0.3, 0.5])
        let nu = try PointCloud(points: [[3, 1], [-1, 1]], weights: [0.6, 0.4])
        // The LP is an independent solver: the command must agree with it.
        let reference = try LinearProgramSolver().solve(TransportProblem(source: mu, target: nu)).cost
        for method in ["auto", "exact", "lp"] {
            let out = try CommandRunner.run(["distance", f.x, f.y, "--x-weights", f.xw, "--y-weights", f.yw, "--method", method, "--json"])
            #expect(out.status == 0, "\(out.stderr)")
            let o = try json(out.stdout)
            for key in ["method", "n", "m", "dimension", "w2", "w2_squared", "seconds"] {
                #expect(o[key] != nil, "missing \(key)")
            }
            #expect(o["method"] as? String == (method == "auto" ? "exact" : method))
            #expect(o["n"] as? Int == 3 && o["m"] as? Int == 2 && o["dimension"] as? Int == 2)
            let w2sq = try #require(o["w2_squared"] as? Double)
            #expect(abs(w2sq - reference) <= 1e-12 * reference)
            #expect(abs((o["w2"] as? Double ?? 0) - reference.squareRoot()) <= 1e-12)
        }
    }

    @Test("The plan file is a coupling whose cost is W2^2")
    func planFile() throws {
        let s = try Scratch()
        let f = Self.clouds(s)
        let out = try CommandRunner.run(["distance", f.x, f.y, "--x-weights", f.xw, "--y-weights", f.yw, "--plan", s.path("plan.csv"), "--json"])
        #expect(out.status == 0, "\(out.stderr)")
        let table = try CSVFormat.read(path: s.path("plan.csv"))
        #expect(table.header == ["i", "j", "mass"])
        let x = [[0.0, 0], [1, 0], [0, 2]], y = [[3.0, 1], [-1, 1]]
        var rows = [0.0, 0, 0], cols = [0.0, 0], cost = 0.0
        for r in 0 ..< table.array.shape[0] {
            let i = Int(table.array.values[3 * r]), j = Int(table.array.values[3 * r + 1]), m = table.array.values[3 * r + 2]
            rows[i] += m
            cols[j] += m
            cost += m * (pow(x[i][0] - y[j][0], 2) + pow(x[i][1] - y[j][1], 2))
        }
        for (r, e) in zip(rows, [0.2, 0.3, 0.5]) { #expect(abs(r - e) < 1e-12) }
        for (c, e) in zip(cols, [0.6, 0.4]) { #expect(abs(c - e) < 1e-12) }
        let o = try json(out.stdout)
        #expect(abs(cost - (o["w2_squared"] as? Double ?? -1)) < 1e-12)
    }

    @Test("1-D .npy input uses the sorted method and matches the sorted-pairs formula")
    func oneDimensional() throws {
        let s = try Scratch()
        let a = [0.5, -1, 2, 4], b = [1.0, 0, 3, -2]
        try NPYFormat.write(NumericArray(vector: a), path: s.path("a.npy"))
        try NPYFormat.write(NumericArray(vector: b), path: s.path("b.npy"))
        let out = try CommandRunner.run(["distance", s.path("a.npy"), s.path("b.npy"), "--json"])
        #expect(out.status == 0, "\(out.stderr)")
        let o = try json(out.stdout)
        #expect(o["method"] as? String == "sorted")
        let expected = zip(a.sorted(), b.sorted()).map { ($0 - $1) * ($0 - $1) }.reduce(0, +) / 4  // Docs/Theory.md 1.3
        #expect(abs((o["w2_squared"] as? Double ?? -1) - expected) < 1e-12)
    }

    @Test("The text output is one line")
    func textOutput() throws {
        let s = try Scratch()
        let f = Self.clouds(s)
        let out = try CommandRunner.run(["distance", f.x, f.y, "--x-weights", f.xw, "--y-weights", f.yw])
        #expect(out.status == 0)
        #expect(out.stdout.hasPrefix("W2 = "))
        #expect(out.stdout.split(separator: "\n").count == 1)
    }

    // The same file on both sides, bad once: only the side tells the user which role failed.
    @Test("File errors name the file and the side (source or target)")
    func fileErrorsNameTheSide() throws {
        let s = try Scratch()
        let f = Self.clouds(s)
        let nan = s.file("nan.csv", "1,2\nnan,3\n")
        let cases: [([String], String)] = [
            ([nan, f.y], "source \(nan) has a non-finite coordinate"),
            ([f.x, nan], "target \(nan) has a non-finite coordinate"),
            ([f.x, f.x, "--y-weights", f.yw], "\(f.yw): holds 2 weights for the 3 points of the target \(f.x)"),
            ([f.x, f.x, "--x-weights", f.yw], "\(f.yw): holds 2 weights for the 3 points of the source \(f.x)"),
            ([f.x, s.file("three-d.csv", "1,2,3\n")], "the target's points have dimension 3, the source's (\(f.x)) 2"),
        ]
        for (args, message) in cases {
            let out = try CommandRunner.run(["distance"] + args)
            #expect(out.status == 1 && out.stderr.contains(message), "\(args): \(out.stderr)")
        }
    }

    @Test("--method gaussian: the Bures value of the moment-matched Gaussians, the library's")
    func gaussianMethod() throws {
        let s = try Scratch()
        let f = Self.clouds(s)
        let mu = try PointCloud(points: [[0, 0], [1, 0], [0, 2]], weights: [0.2, 0.3, 0.5])
        let nu = try PointCloud(points: [[3, 1], [-1, 1]], weights: [0.6, 0.4])
        let expected = try wasserstein2(GaussianMeasure(sampleMomentsOf: mu), GaussianMeasure(sampleMomentsOf: nu)).cost
        let out = try CommandRunner.run(["distance", f.x, f.y, "--x-weights", f.xw, "--y-weights", f.yw, "--method", "gaussian", "--json"])
        #expect(out.status == 0, "\(out.stderr)")
        let o = try json(out.stdout)
        #expect(o["method"] as? String == "gaussian" && o["solver"] as? String == "gaussian")
        let value = try #require(o["w2_squared"] as? Double)
        #expect(abs(value - expected) <= 1e-12 * expected)
        // Gelbrich: never above the exact value.
        #expect(value <= (try wasserstein2(mu, nu).cost) + 1e-12)
    }

    @Test("Bad input gives one line on standard error and a non-zero exit", arguments: [
        "missing file", "malformed csv", "nan", "infinite", "negative weight", "zero mass", "weight count",
        "dimension mismatch", "empty cloud", "sorted in 2-D", "unknown method", "mass mismatch", "bad npy",
        "epsilon without sinkhorn", "directory",
    ])
    func badInput(_ kind: String) throws {
        let s = try Scratch()
        let f = Self.clouds(s)
        let args: [String]
        switch kind {
        case "missing file": args = [f.x, s.path("missing.csv")]
        case "malformed csv": args = [f.x, s.file("bad.csv", "1,2\n3\n")]
        case "nan": args = [f.x, s.file("nan.csv", "1,2\nnan,3\n")]
        case "infinite": args = [f.x, s.file("inf.csv", "1,2\ninf,3\n")]
        case "negative weight": args = [f.x, f.y, "--y-weights", s.file("neg.csv", "1.2\n-0.2\n")]
        case "zero mass": args = [f.x, f.y, "--x-weights", s.file("zero.csv", "0\n0\n0\n")]
        case "weight count": args = [f.x, f.y, "--y-weights", s.file("three.csv", "0.2\n0.3\n0.5\n")]
        case "dimension mismatch": args = [f.x, s.file("three-d.csv", "1,2,3\n")]
        case "empty cloud": args = [f.x, s.file("empty.csv", "u,v\n")]
        case "sorted in 2-D": args = [f.x, f.y, "--method", "sorted"]
        case "unknown method": args = [f.x, f.y, "--method", "fast"]
        case "mass mismatch": args = [f.x, f.y, "--y-weights", s.file("heavy.csv", "1\n1\n")]
        case "bad npy": args = [f.x, s.file("bad.npy", "not numpy at all")]
        case "epsilon without sinkhorn": args = [f.x, f.y, "--epsilon", "0.1"]
        case "directory": args = [f.x, s.url.path]
        default: fatalError()
        }
        let out = try CommandRunner.run(["distance"] + args)
        // Bad option combinations are usage errors (64, like ArgumentParser's); bad data is 1.
        let usage: Set<String> = ["unknown method", "epsilon without sinkhorn"]
        #expect(out.status == (usage.contains(kind) ? 64 : 1), "\(kind): \(out.status)")
        #expect(out.stdout.isEmpty)
        let lines = out.stderr.split(separator: "\n")
        #expect(lines.count == 1, "stderr: \(out.stderr)")
        #expect(out.stderr.hasPrefix("wasserstein: error: "))
    }

    @Test("--normalize accepts measures of different mass")
    func normalize() throws {
        let s = try Scratch()
        let f = Self.clouds(s)
        let heavy = s.file("heavy.csv", "3\n2\n")  // the same proportions as 0.6, 0.4
        let a = try CommandRunner.run(["distance", f.x, f.y, "--x-weights", f.xw, "--y-weights", heavy, "--normalize", "--json"])
        let b = try CommandRunner.run(["distance", f.x, f.y, "--x-weights", f.xw, "--y-weights", f.yw, "--json"])
        #expect(a.status == 0 && b.status == 0)
        let va = try json(a.stdout)["w2_squared"] as? Double, vb = try json(b.stdout)["w2_squared"] as? Double
        #expect(va != nil && abs(va! - vb!) < 1e-12)
    }

    @Test("lp on a large problem suggests exact")
    func largeLinearProgram() throws {
        let s = try Scratch()
        let rows = (0 ..< 400).map { "\(Double($0) * 0.01),\(Double($0 % 7))" }.joined(separator: "\n")
        let big = s.file("big.csv", rows + "\n")
        let out = try CommandRunner.run(["distance", big, big, "--method", "lp"])
        #expect(out.status != 0)
        #expect(out.stderr.contains("exact"))
        #expect(out.stderr.split(separator: "\n").count == 1)
    }
}
