import Foundation
import Testing
import Wasserstein

/// `distance --unbalanced` and entropic `distance --partial --method sinkhorn` against the library
/// and the exact partial solver, and their usage errors.
@Suite("wasserstein distance --unbalanced, --partial --method sinkhorn")
struct UnbalancedPartialCommandTests {
    func json(_ text: String) throws -> [String: Any] {
        try #require(JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any])
    }

    static let mu = [[0.0, 0], [1, 0], [0, 2]]
    static let nu = [[3.0, 1], [-1, 1]]

    static func files(_ s: Scratch) -> (x: String, y: String, yw: String) {
        (s.file("x.csv", "0,0\n1,0\n0,2\n"), s.file("y.csv", "3,1\n-1,1\n"), s.file("yw.csv", "1\n1\n"))
    }

    @Test("--unbalanced: JSON equals the library (unequal masses), two penalties, the divergence; text line")
    func unbalanced() throws {
        let s = try Scratch()
        let f = Self.files(s)
        // Target weights 1, 1: mass 2 against the source's 1 (uniform 1/3).
        let out = try CommandRunner.run(["distance", f.x, f.y, "--y-weights", f.yw, "--method", "sinkhorn", "--epsilon", "0.5",
                                         "--unbalanced", "2", "--divergence", "--json", "--tolerance", "1e-11"])
        #expect(out.status == 0, "\(out.stderr)")
        let o = try json(out.stdout)
        let x = try PointCloud(points: Self.mu), y = try PointCloud(points: Self.nu, weights: [1, 1])
        let parameters = try EntropicParameters(epsilon: 0.5, tolerance: 1e-11)
        let library = try EntropicEngine.unbalancedDivergence(source: x, target: y, penalty: 2, parameters: parameters,
                                                              geometry: EntropicEngine.dense())
        #expect(o["problem"] as? String == "unbalanced" && o["converged"] as? Bool == true)
        #expect(abs((o["regularized_cost"] as? Double ?? 0) - library.cross.regularizedCost) <= 1e-12)
        #expect(abs((o["transported_mass"] as? Double ?? 0) - library.cross.transportedMass) <= 1e-12)
        #expect(abs((o["divergence"] as? Double ?? 0) - library.divergence) <= 1e-12)
        #expect((o["iterations"] as? Int ?? 0) > 0)
        // inf enforces the source side: the plan moves exactly |a| = 1.
        let one = try CommandRunner.run(["distance", f.x, f.y, "--y-weights", f.yw, "--method", "sinkhorn", "--epsilon", "0.5",
                                         "--unbalanced", "inf,1", "--json", "--geometry", "online"])
        #expect(one.status == 0, "\(one.stderr)")
        let p = try json(one.stdout)
        #expect(abs((p["transported_mass"] as? Double ?? 0) - 1) <= 1e-8)
        #expect(p["source_penalty"] is NSNull && p["target_penalty"] as? Double == 1 && p["geometry"] as? String == "online")
        let text = try CommandRunner.run(["distance", f.x, f.y, "--method", "sinkhorn", "--epsilon", "0.5", "--unbalanced", "1"])
        #expect(text.status == 0 && text.stdout.hasPrefix("unbalanced OT_eps = "), "\(text.stderr)")
    }

    @Test("--partial --method sinkhorn: mass m moved, near the exact partial cost at small eps")
    func partial() throws {
        let s = try Scratch()
        let f = Self.files(s)
        let out = try CommandRunner.run(["distance", f.x, f.y, "--y-weights", f.yw, "--partial", "0.8", "--method", "sinkhorn",
                                         "--epsilon", "0.01", "--json"])
        #expect(out.status == 0, "\(out.stderr)")
        let o = try json(out.stdout)
        let exact = try PartialTransport().solve(source: PointCloud(points: Self.mu), target: PointCloud(points: Self.nu, weights: [1, 1]),
                                                 mass: 0.8)
        #expect(o["problem"] as? String == "partial" && o["converged"] as? Bool == true)
        #expect(abs((o["transported_mass"] as? Double ?? 0) - 0.8) <= 1e-8)
        let cost = try #require(o["cost"] as? Double)
        #expect(cost >= exact.cost - 1e-9 && cost <= exact.cost + 0.01)
    }

    @Test("usage errors exit 64 with one line naming the option")
    func errors() throws {
        let s = try Scratch()
        let f = Self.files(s)
        let sinkhorn = ["--method", "sinkhorn", "--epsilon", "0.1"]
        let cases: [([String], String)] = [
            (["--unbalanced", "1"], "--unbalanced needs --method sinkhorn"),
            (["--unbalanced", "0"] + sinkhorn, "must be a number > 0"),
            (["--unbalanced=-1"] + sinkhorn, "must be a number > 0"),
            (["--unbalanced", "nan"] + sinkhorn, "must be a number > 0"),
            (["--unbalanced", "1,2,3"] + sinkhorn, "one penalty or two"),
            (["--unbalanced", "1,"] + sinkhorn, "must be a number > 0"),
            (["--unbalanced", "1,2", "--divergence"] + sinkhorn, "one penalty for both sides"),
            (["--unbalanced", "1", "--partial", "0.5"] + sinkhorn, "exclude each other"),
            (["--partial", "0.5", "--divergence"] + sinkhorn, "--divergence does not apply"),
            (["--partial", "0.5", "--method", "lp"], "--partial needs --method exact"),
            (["--unbalanced", "1", "--geometry", "multiscale"] + sinkhorn, "balanced problems only"),
            (["--partial", "0.5", "--geometry", "multiscale"] + sinkhorn, "balanced problems only"),
        ]
        for (extra, text) in cases {
            let out = try CommandRunner.run(["distance", f.x, f.y] + extra)
            #expect(out.status == 64, "\(extra): exit \(out.status), \(out.stderr)")
            #expect(out.stderr.hasPrefix("wasserstein: error: ") && out.stderr.filter { $0 == "\n" }.count == 1, "\(extra): \(out.stderr)")
            #expect(out.stderr.contains(text), "\(extra): \(out.stderr)")
            #expect(out.stdout.isEmpty)
        }
        // A mass above min(|a|, |b|) is a data error (exit 1).
        let big = try CommandRunner.run(["distance", f.x, f.y, "--partial", "1.5"] + sinkhorn)
        #expect(big.status == 1 && big.stderr.contains("partial mass"), "\(big.stderr)")
    }

    /// The entries of a `--plan` CSV as a dense row-major `n x m` array.
    static func densePlan(_ path: String, _ n: Int, _ m: Int) throws -> [Double] {
        var plan = [Double](repeating: 0, count: n * m)
        for line in try String(contentsOfFile: path, encoding: .utf8).split(separator: "\n") {
            let parts = line.split(separator: ",")
            guard parts.count == 3, let i = Int(parts[0]), let j = Int(parts[1]), let mass = Double(parts[2]) else { continue }
            plan[i * m + j] += mass
        }
        return plan
    }

    @Test("--plan for --unbalanced (POT's documented plan) and --partial --method sinkhorn (the rank-one plan of an additive cost)")
    func plans() throws {
        let s = try Scratch()
        // Points 0 and 1 on a line, weights 1/2: M = [[0, 1], [1, 0]]; reg = reg_m = 1.
        let line = s.file("line.csv", "0\n1\n"), half = s.file("half.csv", "0.5\n0.5\n")
        let out = try CommandRunner.run(["distance", line, line, "--x-weights", half, "--y-weights", half, "--method", "sinkhorn",
                                         "--epsilon", "1", "--unbalanced", "1", "--tolerance", "1e-11", "--plan", s.path("u.csv"), "--json"])
        #expect(out.status == 0, "\(out.stderr)")
        let plan = try Self.densePlan(s.path("u.csv"), 2, 2)
        for (p, q) in zip(plan, [0.3220536, 0.1184769, 0.1184769, 0.3220536]) { #expect(abs(p - q) <= 5e-8, "\(plan)") }
        let moved = try #require(try json(out.stdout)["transported_mass"] as? Double)
        #expect(abs(plan.reduce(0, +) - moved) <= 1e-12)

        // POT's partial example: a = [0.1, 0.2], b = [0.1, 0.1], M = [[0, 1], [2, 3]] (x = (0, 0),
        // (0, sqrt 2); y = (0, 0), (1, 0)), m = 0.2. M_ij = r_i + c_j, so every plan with the row
        // masses (0.1, 0.1) and the column masses (0.1, 0.1) costs 0.3; among them the entropic plan,
        // a_i b_j exp((f_i + g_j - r_i - c_j) / eps), is of rank one: 0.05 everywhere.
        let x = s.file("px.csv", "0,0\n0,1.4142135623730951\n"), y = s.file("py.csv", "0,0\n1,0\n")
        let a = s.file("pa.csv", "0.1\n0.2\n"), b = s.file("pb.csv", "0.1\n0.1\n")
        let partial = try CommandRunner.run(["distance", x, y, "--x-weights", a, "--y-weights", b, "--partial", "0.2", "--method", "sinkhorn",
                                             "--epsilon", "0.02", "--tolerance", "1e-11", "--plan", s.path("p.csv"), "--json"])
        #expect(partial.status == 0, "\(partial.stderr)")
        let p = try Self.densePlan(s.path("p.csv"), 2, 2)
        for got in p { #expect(abs(got - 0.05) <= 1e-10, "\(p)") }
        let o = try json(partial.stdout)
        let partialMoved = try #require(o["transported_mass"] as? Double), cost = try #require(o["cost"] as? Double)
        #expect(abs(p.reduce(0, +) - partialMoved) <= 1e-12)
        #expect(abs(p[1] + 2 * p[2] + 3 * p[3] - cost) <= 1e-12)
    }
}
