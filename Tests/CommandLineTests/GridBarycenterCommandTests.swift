import Foundation
import Testing
import Wasserstein

@Suite("wasserstein barycenter --grid")
struct GridBarycenterCommandTests {
    /// Writes masses `exp(-|x - m|^2 / (2 s^2))` on the grid `h i` as an .npy array of `shape`.
    static func gaussian(_ s: Scratch, _ name: String, shape: [Int], spacing: [Double], mean: [Double], sd: Double) throws -> (path: String, masses: [Double]) {
        let count = shape.reduce(1, *)
        var masses = [Double](repeating: 0, count: count)
        for p in 0 ..< count {
            var rest = p, r2 = 0.0
            for a in stride(from: shape.count - 1, through: 0, by: -1) {
                let x = spacing[a] * Double(rest % shape[a]) - mean[a]
                rest /= shape[a]
                r2 += x * x
            }
            masses[p] = exp(-r2 / (2 * sd * sd))
        }
        let path = s.path(name)
        try NPYFormat.write(NumericArray(shape: shape, values: masses), path: path)
        return (path, masses)
    }

    @Test("1-D, 2-D, 3-D: barycenter.npy in the inputs' shape, the library's answer; a curve or heat-map picture")
    func outputs() throws {
        let s = try Scratch()
        // 1-D on [0, 2] (--grid-extent 2): 41 points at spacing 0.05.
        let a = try Self.gaussian(s, "a.npy", shape: [41], spacing: [0.05], mean: [0.6], sd: 0.15)
        let b = try Self.gaussian(s, "b.npy", shape: [41], spacing: [0.05], mean: [1.3], sd: 0.15)
        let out = try CommandRunner.run(["barycenter", a.path, b.path, "--grid", "--grid-extent", "2", "--epsilon", "0.01", "--debiased",
                                         "--weights", "1,3", "--out", s.path("one")])
        #expect(out.status == 0, "\(out.stderr)")
        #expect(out.stdout.hasPrefix("debiased entropic barycenter of 2 inputs on the grid 41: eps = 0.01"))
        let got = try NPYFormat.read(path: s.path("one/barycenter.npy"))
        #expect(got.shape == [41])
        let grid = try SeparableGridGeometry(pointsPerAxis: [41], spacing: [0.05])
        let expected = try EntropicGridBarycenter(epsilon: 0.01, debiased: true).solve([a.masses, b.masses], on: grid, weights: [0.25, 0.75])
        #expect(got.values == expected.masses)
        // The translate halfway at weight 3/4: its mean 0.6 + 0.75 * 0.7.
        let mean = zip(got.values, 0 ..< 41).map { $0 * 0.05 * Double($1) }.reduce(0, +)
        #expect(abs(mean - 1.125) < 1e-4, "mean \(mean)")
        let summary = try #require(JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: s.path("one/summary.json")))) as? [String: Any])
        #expect(summary["converged"] as? Bool == true && summary["debiased"] as? Bool == true)
        #expect((summary["spacing"] as? [Double]) == [0.05] && (summary["shape"] as? [Int]) == [41])
        let curve = try String(contentsOfFile: s.path("one/barycenter.svg"), encoding: .utf8)
        for name in ["a.npy", "b.npy", "barycenter"] { #expect(curve.contains("data-series=\"\(name)\""), "\(name)") }

        // 2-D, 9 x 7 on the unit square: a heat map of the 63 cells with both inputs' means marked.
        let c = try Self.gaussian(s, "c.npy", shape: [9, 7], spacing: [0.125, 1.0 / 6], mean: [0.3, 0.4], sd: 0.2)
        let d = try Self.gaussian(s, "d.npy", shape: [9, 7], spacing: [0.125, 1.0 / 6], mean: [0.6, 0.5], sd: 0.2)
        let plane = try CommandRunner.run(["barycenter", c.path, d.path, "--grid", "--epsilon", "0.02", "--out", s.path("two")])
        #expect(plane.status == 0, "\(plane.stderr)")
        #expect(try NPYFormat.read(path: s.path("two/barycenter.npy")).shape == [9, 7])
        let map = try String(contentsOfFile: s.path("two/barycenter.svg"), encoding: .utf8)
        #expect(map.contains("data-columns=\"9\" data-rows=\"7\" data-cells=\"63\""))
        #expect(map.contains("data-marker=\"c.npy\"") && map.contains("data-marker=\"d.npy\""))

        // 3-D: the array, no picture.
        let e = try Self.gaussian(s, "e.npy", shape: [4, 5, 3], spacing: [1.0 / 3, 0.25, 0.5], mean: [0.5, 0.5, 0.5], sd: 0.3)
        let cube = try CommandRunner.run(["barycenter", e.path, e.path, "--grid", "--epsilon", "0.05", "--out", s.path("three")])
        #expect(cube.status == 0, "\(cube.stderr)")
        #expect(try NPYFormat.read(path: s.path("three/barycenter.npy")).shape == [4, 5, 3])
        #expect(!FileManager.default.fileExists(atPath: s.path("three/barycenter.svg")))
    }

    @Test("usage errors exit 64, data errors exit 1, each one line naming the option or file")
    func errors() throws {
        let s = try Scratch()
        let a = try Self.gaussian(s, "a.npy", shape: [6, 5], spacing: [0.2, 0.25], mean: [0.5, 0.5], sd: 0.3).path
        let other = try Self.gaussian(s, "other.npy", shape: [5, 6], spacing: [0.25, 0.2], mean: [0.5, 0.5], sd: 0.3).path
        let negative = s.path("negative.npy")
        try NPYFormat.write(NumericArray(shape: [2, 2], values: [0.5, -0.1, 0.3, 0.3]), path: negative)
        let empty = s.path("empty.npy")
        try NPYFormat.write(NumericArray(shape: [3], values: [0, 0, 0]), path: empty)
        let four = s.path("four.npy")
        try NPYFormat.write(NumericArray(shape: [2, 1, 1, 2], values: [1, 1, 1, 1]), path: four)
        let o = s.path("o")
        let cases: [([String], Int32, String)] = [
            (["barycenter", a, a, "--grid", "--out", o], 64, "--grid needs --epsilon"),
            (["barycenter", a, a, "--grid", "--epsilon", "0", "--out", o], 64, "--epsilon must be > 0"),
            (["barycenter", a, a, "--epsilon", "0.1", "--out", o], 64, "--epsilon needs --grid"),
            (["barycenter", a, a, "--debiased", "--out", o], 64, "--debiased needs --grid"),
            (["barycenter", a, a, "--grid", "--epsilon", "0.1", "--support", "3", "--out", o], 64, "--support does not apply"),
            (["barycenter", a, a, "--grid", "--epsilon", "0.1", "--grid-extent", "1,2,3", "--out", o], 64, "--grid-extent has 3 values"),
            (["barycenter", a, a, "--grid", "--epsilon", "0.1", "--grid-extent", "-1", "--out", o], 64, "--grid-extent"),
            (["barycenter", a, a, "--grid", "--epsilon", "0.1", "--max-iterations", "0", "--out", o], 64, "--max-iterations"),
            (["barycenter", a, other, "--grid", "--epsilon", "0.1", "--out", o], 1, "other.npy: shape [5, 6] differs"),
            (["barycenter", negative, "--grid", "--epsilon", "0.1", "--out", o], 1, "negative.npy: value -0.1"),
            (["barycenter", empty, "--grid", "--epsilon", "0.1", "--out", o], 1, "empty.npy: total mass 0"),
            (["barycenter", four, "--grid", "--epsilon", "0.1", "--out", o], 1, "four.npy: a grid density has 1, 2 or 3 axes"),
            (["barycenter", a, a, "--grid", "--epsilon", "1e-20", "--out", o], 1, "epsilon"),
        ]
        for (arguments, code, text) in cases {
            let out = try CommandRunner.run(arguments)
            #expect(out.status == code, "\(arguments): exit \(out.status), \(out.stderr)")
            #expect(out.stderr.hasPrefix("wasserstein: error: ") && out.stderr.filter { $0 == "\n" }.count == 1,
                    "\(arguments): \(out.stderr)")
            #expect(out.stderr.contains(text), "\(arguments): \(out.stderr)")
            #expect(out.stdout.isEmpty)
        }
        #expect(!FileManager.default.fileExists(atPath: o))
    }
}
