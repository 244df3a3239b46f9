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
}
