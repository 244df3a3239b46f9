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
}
