import Foundation
import MeanField
import Testing
@testable import Experiments

/// Memory estimates of `reduced`, `dimensions` and `demo` (issue 10, item 5): a run estimated
/// above the limit is refused before it does any work, naming the spec key that makes it large.
@Suite("Memory estimates of the reduced commands")
struct ReducedMemoryTests {
    /// `ReducedSpecTests.valid`: 6 x 4 quantised points (a point mass in `a`), 40 steps, 6 records.
    static let base = ReducedSpecTests.valid

    /// A trained second layer on an (a, s, r) grid.
    static let grid = """
    {
      "model": {"activation": "relu", "input_dimension": 10},
      "teacher": {"directions": [[1]]},
      "initialization": {"a": {"mean": 0.5, "std": 0.1}, "w": {"gamma": 1}},
      "horizon": 1,
      "scheme": "grid",
      "grid": {"tau": 0.1, "bounds": [[0, 1], [-2, 2], [0, 2]], "points_per_axis": [8, 10, 10]}
    }
    """

    static func spec(_ text: String, _ replacements: [(String, String)] = [], requireDimension: Bool = true) throws -> ReducedSpec {
        var s = text
        for (old, new) in replacements {
            precondition(s.contains(old), "fixture does not contain \(old)")
            s = s.replacingOccurrences(of: old, with: new)
        }
        return try ReducedSpec.parse(data: Data(s.utf8), requireDimension: requireDimension)
    }

    static func keyOf(_ error: Error) -> String? { ExtremeSpecTests.keyOf(error) }

    @Test("The particle count of the estimate is the count of the law the run builds")
    func particleCount() throws {
        for (text, replacements) in [(Self.base, [(String, String)]()),
                                     (Self.base, [("\"std\": 0}", "\"std\": 0.2}")]),
                                     (Self.base, [("\"nodes\": {\"a\": 4, \"s\": 6, \"r\": 4}", "\"particles\": 37")])] {
            let s = try Self.spec(text, replacements)
            let law = try s.initialReducedLaw(setting: s.reducedSetting())
            #expect(s.particleCount == law.count)
            // The estimate counts at least the law itself: points and weights.
            #expect(s.reducedMemory().bytes >= Double(8 * (law.points.count + law.weights.count)))
        }
    }

    @Test("The estimate grows with what it counts")
    func estimatesGrow() throws {
        let s = try Self.spec(Self.base)
        let more = try Self.spec(Self.base, [("\"nodes\": {\"a\": 4, \"s\": 6, \"r\": 4}", "\"nodes\": {\"a\": 4, \"s\": 60, \"r\": 40}")])
        #expect(more.reducedMemory().bytes > 50 * s.reducedMemory().bytes / 2)
        let oftener = try Self.spec(Self.base, [("\"record_every\": 0.5", "\"record_every\": 0.1")])
        #expect(oftener.reducedMemory().bytes > s.reducedMemory().bytes)
        let g = try Self.spec(Self.grid)
        let finer = try Self.spec(Self.grid, [("[8, 10, 10]", "[16, 20, 20]")])
        #expect(finer.reducedMemory().bytes > 8 * g.reducedMemory().bytes / 2)
        // The (s, r) plane matrix: 100^2 doubles on this grid, 400^2 on the finer one.
        #expect(g.reducedMemory().terms.contains { $0.bytes == 8 * 100 * 100 })
        #expect(finer.reducedMemory().terms.contains { $0.bytes == 8 * 400 * 400 })
        // dimensions: the runs that go at once add up; SGD in full d grows with d.
        let open = try Self.spec(Self.base, [("\"input_dimension\": 20, ", "")], requireDimension: false)
        let dims: [ReducedDimension] = [.finite(10), .finite(1000), .infinity]
        #expect(open.dimensionsMemory(dimensions: dims, sgd: true, concurrent: 2).bytes
                > open.dimensionsMemory(dimensions: dims, sgd: true, concurrent: 1).bytes)
        #expect(open.onlineSGDMemory(dimension: 1000).bytes > open.onlineSGDMemory(dimension: 10).bytes)
        #expect(open.onlineSGDMemory(dimension: 1000).bytes >= 8 * 64 * 1001)
    }

    @Test("reduced refuses above the limit, naming nodes, particles, record_every, grid.points_per_axis or grid.tau")
    func reducedRefuses() throws {
        // The spec key sets the limit: the run (about 11 KiB) fails at 2 KiB and runs at 1 GiB.
        let small = try Self.spec(Self.base, [("\"eta\": 0.05", "\"eta\": 0.05, \"memory_limit\": \"2K\"")])
        #expect(small.memoryLimit == 2048)
        #expect(performing: { try ReducedRun.run(spec: small, directory: nil) }, throws: { Self.keyOf($0) == "nodes" })
        var roomy = small
        roomy.memoryLimit = 0x1p30
        #expect(try ReducedRun.run(spec: roomy, directory: nil).status == .completed)
        var sampled = try Self.spec(Self.base, [("\"nodes\": {\"a\": 4, \"s\": 6, \"r\": 4}", "\"particles\": 200000")])
        sampled.memoryLimit = 0x1p20
        #expect(performing: { try ReducedRun.run(spec: sampled, directory: nil) }, throws: { Self.keyOf($0) == "particles" })
        // 1e9 steps, each recorded: about 300 GB of records, against 64 GiB.
        var records = try Self.spec(Self.base, [("\"eta\": 0.05, \"horizon\": 2, \"record_every\": 0.5",
                                                   "\"eta\": 1e-9, \"horizon\": 1, \"record_every\": 1e-9")])
        records.memoryLimit = 0x1p36
        #expect(records.reducedMemory().bytes > 1e11)
        #expect(performing: { try ReducedRun.run(spec: records, directory: nil) }, throws: { Self.keyOf($0) == "record_every" })
        #expect(performing: { try Self.spec(Self.base, [("\"eta\": 0.05", "\"eta\": 0.05, \"memory_limit\": \"lots\"")]) },
                throws: { Self.keyOf($0) == "memory_limit" })

        // Grid: 64 x 90 x 90 nodes, a 8100 x 8100 plane matrix (500 MiB), against 256 MiB.
        var plane = try Self.spec(Self.grid, [("[8, 10, 10]", "[64, 90, 90]")])
        plane.memoryLimit = 0x1p28
        #expect(performing: { try ReducedRun.run(spec: plane, directory: nil) }, throws: { Self.keyOf($0) == "grid.points_per_axis" })
        // 1e9 JKO steps: over 700 GB of step reports; beyond 1e9 the spec is refused.
        var steps = try Self.spec(Self.grid, [("\"tau\": 0.1", "\"tau\": 1e-9")])
        steps.memoryLimit = 0x1p36
        #expect(performing: { try ReducedRun.run(spec: steps, directory: nil) }, throws: { Self.keyOf($0) == "grid.tau" })
        #expect(performing: { try Self.spec(Self.grid, [("\"tau\": 0.1", "\"tau\": 1e-10")]) }, throws: { Self.keyOf($0) == "grid.tau" })
    }

    @Test("compare --reference reduced refuses above the limit before the reference runs, naming particles or --reference-nodes")
    func compareReducedRefuses() throws {
        // ExtremeSpecTests' huge spec: 10^7 particles in d = 1000, every common time kept.
        let huge = try ExtremeSpecTests.spec([("\"particles\": 12", "\"particles\": 10000000"),
                                              ("\"input_dimension\": 3", "\"input_dimension\": 1000"),
                                              ("\"directions\": [[1, 0, 0]]", "\"directions\": [[1\(String(repeating: ", 0", count: 999))]]")])
        var limited = huge
        limited.memoryLimit = 0x1p36
        #expect(performing: { try CompareReducedRun.run(spec: limited, directory: nil) }, throws: { Self.keyOf($0) == "particles" })
        // 256 x 256 x 64 reference points: about 7 GB.
        let small = try ExtremeSpecTests.spec([])
        let nodes = ReducedNodesSpec(a: 256, s: 256, r: 64)
        let estimate = small.compareReducedMemory(interval: 0.1, intervalKey: "jko.tau", nodes: nodes)
        #expect(estimate.largest?.key == "--reference-nodes" && estimate.bytes > 8 * Double(256 * 256 * 64) * 3)
        #expect(small.compareReducedMemory(interval: 0.1, intervalKey: "jko.tau", nodes: ReducedNodesSpec()).bytes < 1e7)
    }

    @Test("The sweep with --reference reduced counts the reduced reference, not a JKO run of --reference-particles")
    func sweepReducedReference() throws {
        // DimensionsTests.full (a rotation-symmetric linear network in d = 5, 16 particles) with a
        // jko section, which the old estimate sized as a particle JKO run.
        let text = DimensionsTests.full.replacingOccurrences(of: "\"record_every\": 0.25", with: "\"record_every\": 0.25, \"jko\": {\"tau\": 0.25}")
        precondition(text != DimensionsTests.full)
        var spec = try ExperimentSpec.parse(data: Data(text.utf8))
        spec.memoryLimit = 0x1p30
        // A JKO reference of 10^7 particles would need over 10 GiB; the reduced one of 12 points
        // needs a few KiB, so the sweep runs under 1 GiB.
        #expect(spec.jkoMemory(scheme: .particle, particles: 10_000_000).bytes > 0x1p30)
        let fits = try SweepRun.run(spec: spec, particles: [4, 16], etas: [0.05], seeds: 1, referenceParticles: 10_000_000,
                                    reference: .reduced(step: 0.05, nodes: ReducedNodesSpec(a: 1, s: 4, r: 3)), directory: nil)
        #expect(fits.cells.count == 2)
        // 4 x 16 x 8 reference points, about 800 KiB, against 512 KiB: refused before any work,
        // naming --reference-nodes (the widths and the JKO default of 16 particles are far smaller).
        spec.memoryLimit = 0x1p19
        let nodes = ReducedNodesSpec(a: 4, s: 16, r: 8)
        #expect(performing: { try SweepRun.run(spec: spec, particles: [4, 16], etas: [0.05], seeds: 1,
                                               reference: .reduced(step: 0.05, nodes: nodes), directory: nil) },
                throws: { Self.keyOf($0) == "--reference-nodes" })
        // The sweep reuses the single comparison's reference term.
        let sweep = spec.sweepMemory(particles: [4, 16], etas: [0.05], referenceParticles: 10_000_000, reference: .reduced(step: nil, nodes: nodes))
        #expect(sweep.largest == spec.reducedReferenceMemory(nodes: nodes).largest)
        #expect(spec.compareReducedMemory(interval: 0.25, intervalKey: "jko.tau", nodes: nodes).terms.contains(sweep.largest!))
    }

    @Test("dimensions refuses above the limit, naming sgd.particles for online SGD in a large d")
    func dimensionsRefuses() throws {
        // 100000 particles x 10^6 coordinates x 5 copies: 4 TB, against 64 GiB.
        var open = try Self.spec(Self.base, [("\"input_dimension\": 20, ", ""), ("\"particles\": 64", "\"particles\": 100000")],
                                 requireDimension: false)
        open.memoryLimit = 0x1p36
        let dims: [ReducedDimension] = [.finite(8), .finite(1_000_000)]
        #expect(performing: { try DimensionsRun.run(spec: open, dimensions: dims, riskThreshold: 0.05, sgd: true, directory: nil) },
                throws: { Self.keyOf($0) == "sgd.particles" })
        // Without --sgd, or with SGD stopped below that d, the same list is small.
        #expect(open.dimensionsMemory(dimensions: dims, sgd: false).bytes < 1e6)
        var capped = open
        capped.sgd!.maxDimension = 100
        #expect(capped.dimensionsMemory(dimensions: dims, sgd: true).bytes < 1e8)
        // The reduced runs themselves: the limit of the spec reaches every d.
        var tight = try Self.spec(Self.base, [("\"input_dimension\": 20, ", "")], requireDimension: false)
        tight.memoryLimit = 2048
        #expect(performing: { try DimensionsRun.run(spec: tight, dimensions: [.finite(8), .infinity], riskThreshold: 0.05, sgd: false,
                                                    directory: nil) },
                throws: { Self.keyOf($0) == "nodes" })
    }
}
