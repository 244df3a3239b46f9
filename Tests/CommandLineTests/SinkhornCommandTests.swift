import Foundation
import Testing
import Wasserstein

@Suite("wasserstein distance --method sinkhorn")
struct SinkhornCommandTests {
    func json(_ text: String) throws -> [String: Any] {
        try #require(JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any])
    }

    @Test("JSON output carries the entropic keys and the library's values")
    func entropicKeys() throws {
        let s = try Scratch()
        let x = s.file("x.csv", "0,0\n1,0\n0,2\n"), y = s.file("y.csv", "3,1\n-1,1\n")
        let out = try CommandRunner.run(["distance", x, y, "--method", "sinkhorn", "--epsilon", "0.5", "--divergence", "--json"])
        #expect(out.status == 0, "\(out.stderr)")
        let o = try json(out.stdout)
        for key in ["method", "n", "m", "dimension", "w2", "w2_squared", "seconds", "epsilon", "transport_cost",
                    "regularized_cost", "iterations", "converged", "marginal_error", "divergence"] {
            #expect(o[key] != nil, "missing \(key)")
        }
        let problem = try TransportProblem(source: PointCloud(points: [[0, 0], [1, 0], [0, 2]]), target: PointCloud(points: [[3, 1], [-1, 1]]))
        let reference = try SinkhornDivergence(epsilon: 0.5).evaluate(problem)
        #expect(abs((o["transport_cost"] as? Double ?? -1) - reference.cross.cost) < 1e-9)
        #expect(abs((o["divergence"] as? Double ?? -1) - reference.divergence) < 1e-9)
        #expect(o["w2_squared"] as? Double == o["transport_cost"] as? Double)
        #expect(o["converged"] as? Bool == true)
        // The entropic cost lies above the exact W2^2 (a bound that must hold for any eps).
        let exact = try NetworkSimplexSolver().solve(problem).cost
        #expect((o["transport_cost"] as? Double ?? 0) >= exact - 1e-12)
    }

    @Test("The text output says it is an entropic estimate")
    func textSaysEntropic() throws {
        let s = try Scratch()
        let x = s.file("x.csv", "0\n1\n"), y = s.file("y.csv", "2\n")
        let out = try CommandRunner.run(["distance", x, y, "--method", "sinkhorn", "--epsilon", "0.1"])
        #expect(out.status == 0)
        #expect(out.stdout.contains("entropic estimate"))
    }

    @Test("Bad entropic parameters give one-line errors", arguments: [
        ["--epsilon", "0"], ["--epsilon", "-1"], ["--epsilon", "nan"], [],
        ["--epsilon", "0.1", "--tolerance", "0"], ["--epsilon", "0.1", "--tolerance", "2"],
        ["--epsilon", "0.1", "--max-iterations", "0"],
    ])
    func badParameters(_ extra: [String]) throws {
        let s = try Scratch()
        let x = s.file("x.csv", "0\n1\n"), y = s.file("y.csv", "2\n")
        let out = try CommandRunner.run(["distance", x, y, "--method", "sinkhorn"] + extra)
        #expect(out.status == 64, "a usage error")
        #expect(out.stderr.split(separator: "\n").count == 1, "\(out.stderr)")
    }

    @Test("Running out of iterations is reported, not hidden")
    func iterationLimit() throws {
        let s = try Scratch()
        let x = s.file("x.csv", (0 ..< 30).map { "\(Double($0) / 7),\(sin(Double($0)))" }.joined(separator: "\n"))
        let y = s.file("y.csv", (0 ..< 30).map { "\(Double($0) / 5 + 3),\(cos(Double($0)))" }.joined(separator: "\n"))
        let out = try CommandRunner.run(["distance", x, y, "--method", "sinkhorn", "--epsilon", "0.001", "--max-iterations", "3", "--json"])
        #expect(out.status == 0)
        let o = try json(out.stdout)
        #expect(o["converged"] as? Bool == false)
        #expect(o["status"] as? String == "iterationLimit")
        #expect(out.stderr.contains("iteration limit"))
    }

    @Test("--geometry online agrees with dense, and the JSON output names the geometry")
    func onlineGeometry() throws {
        let s = try Scratch()
        let x = s.file("x.csv", (0 ..< 12).map { "\(Double($0) / 7),\(sin(Double($0)))" }.joined(separator: "\n"))
        let y = s.file("y.csv", (0 ..< 9).map { "\(Double($0) / 5 + 0.5),\(cos(Double($0)))" }.joined(separator: "\n"))
        var values = [String: [String: Any]]()
        for geometry in ["dense", "online", "multiscale"] {
            let out = try CommandRunner.run(["distance", x, y, "--method", "sinkhorn", "--epsilon", "0.1", "--tolerance", "1e-12",
                                             "--divergence", "--geometry", geometry, "--json"])
            #expect(out.status == 0, "\(out.stderr)")
            // Standard error is a pipe here, not a terminal: no progress line.
            #expect(out.stderr.isEmpty, "\(out.stderr)")
            let o = try json(out.stdout)
            #expect(o["geometry"] as? String == geometry)
            #expect(o["converged"] as? Bool == true)
            values[geometry] = o
        }
        for key in ["transport_cost", "regularized_cost", "divergence"] {
            let d = try #require(values["dense"]?[key] as? Double), o = try #require(values["online"]?[key] as? Double)
            #expect(abs(d - o) <= 1e-9 * max(1, abs(d)), "\(key): \(d) vs \(o)")
            let ms = try #require(values["multiscale"]?[key] as? Double)
            #expect(abs(d - ms) <= 1e-9 * max(1, abs(d)), "\(key): \(d) vs multiscale \(ms)")
        }
        #expect(values["multiscale"]?["truncation_check"] as? String == "passed")
        #expect((values["multiscale"]?["truncation_bound"] as? Double ?? 1) <= 1e-13)
        // The default picks dense for what fits, multiscale (D <= 3) under a tiny memory limit.
        let small = try CommandRunner.run(["distance", x, y, "--method", "sinkhorn", "--epsilon", "0.1", "--json"])
        #expect(try json(small.stdout)["geometry"] as? String == "dense")
        let tight = try CommandRunner.run(["distance", x, y, "--method", "sinkhorn", "--epsilon", "0.1", "--memory-limit", "1K", "--json"])
        #expect(try json(tight.stdout)["geometry"] as? String == "multiscale")
        let text = try CommandRunner.run(["distance", x, y, "--method", "sinkhorn", "--epsilon", "0.1", "--geometry", "online"])
        #expect(text.stdout.contains("online geometry"))
    }

    @Test("--geometry multiscale in D = 4 is refused in one line naming the geometry")
    func multiscaleDimension() throws {
        let s = try Scratch()
        let x = s.file("x.csv", "0,0,0,0\n1,0,0,0\n"), y = s.file("y.csv", "2,0,0,1\n")
        let out = try CommandRunner.run(["distance", x, y, "--method", "sinkhorn", "--epsilon", "0.1", "--geometry", "multiscale"])
        #expect(out.status == 1, "\(out.stderr)")
        #expect(out.stderr.split(separator: "\n").count == 1 && out.stderr.contains("multiscale geometry needs dimension <= 3"), "\(out.stderr)")
        // 40 x 20 cells (6.4 KB) do not fit in half of 1K: the automatic choice in D = 4 is online.
        let x40 = s.file("x40.csv", (0 ..< 40).map { "\(Double($0) / 40),0,\(sin(Double($0))),1" }.joined(separator: "\n"))
        let y20 = s.file("y20.csv", (0 ..< 20).map { "\(Double($0) / 20),1,0,\(cos(Double($0)))" }.joined(separator: "\n"))
        let text = try CommandRunner.run(["distance", x40, y20, "--method", "sinkhorn", "--epsilon", "0.1", "--memory-limit", "1K"])
        #expect(text.status == 0 && text.stdout.contains("online geometry"), "the automatic choice in D = 4 is online: \(text.stdout)")
    }

    @Test("--geometry and --memory-limit: bad values and other methods are usage errors", arguments: [
        ["--method", "sinkhorn", "--epsilon", "0.1", "--geometry", "sparse"],
        ["--method", "sinkhorn", "--epsilon", "0.1", "--memory-limit", "-3"],
        ["--method", "exact", "--geometry", "online"],
        ["--method", "exact", "--memory-limit", "1G"],
    ])
    func badGeometry(_ extra: [String]) throws {
        let s = try Scratch()
        let x = s.file("x.csv", "0\n1\n"), y = s.file("y.csv", "2\n")
        let out = try CommandRunner.run(["distance", x, y] + extra)
        #expect(out.status == 64, "a usage error: \(out.stderr)")
        #expect(out.stderr.split(separator: "\n").count == 1, "\(out.stderr)")
    }
}
