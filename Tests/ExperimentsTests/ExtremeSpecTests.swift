import Foundation
import Testing
import MeanField
import Wasserstein
@testable import Experiments

/// Specs with extreme but finite numbers (issue 10): a run that diverges at once, step counts
/// whose conversion to `Int` trapped, runs too large for the machine. Each ends in a typed
/// error naming the spec key, or in a correct run; never in a trap or the allocator's abort.
@Suite("Specs with extreme numbers")
struct ExtremeSpecTests {
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

    static let oracle = """
    {"energy": {"potential": "quadratic", "lambda": 1, "beta": BETA},
     "initialization": {"w": {"mean": [0.5, -0.5], "std": 0.5}}, "particles": 20, "horizon": HORIZON, "seed": 2,
     "jko": {"tau": 0.1, "scheme": "grid", "bounds": [[-3, 3], [-3, 3]], "points_per_axis": 12}}
    """

    static func spec(_ replacements: [(String, String)], in text: String = base) throws -> ExperimentSpec {
        var s = text
        for (old, new) in replacements {
            precondition(s.contains(old), "fixture does not contain \(old)")
            s = s.replacingOccurrences(of: old, with: new)
        }
        return try ExperimentSpec.parse(data: Data(s.utf8))
    }

    static func temporaryPath() -> String {
        FileManager.default.temporaryDirectory.appendingPathComponent("extreme-\(UUID().uuidString)").path
    }

    static func keyOf(_ error: Error) -> String? {
        switch error {
        case ExperimentError.invalidSpec(let key, _): return key
        case ExperimentError.invalidList(let option, _): return option
        case let e as MeanFieldError: return SpecKeys.key(for: e)
        default: return nil
        }
    }

    @Test("A run whose risk is infinite at t = 0 ends with status diverged and its initial particles (it trapped writing them)",
          arguments: [
            ("\"w\": {\"mean\": 0, \"std\": 0.4}", "\"w\": {\"mean\": 1e300, \"std\": 0.4}"),
            ("\"noise\": 0", "\"noise\": 1e300"),
            ("\"a\": {\"mean\": 0, \"std\": 0.5}", "\"a\": {\"mean\": 0, \"std\": 1e300}"),
            ("\"coefficients\": [1]", "\"coefficients\": [1e300]"),
          ])
    func divergedAtStart(_ change: (String, String)) throws {
        let spec = try Self.spec([change])
        let folder = Self.temporaryPath()
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let output = try OutputDirectory.writing(to: folder) { try SGDRun.run(spec: spec, directory: $0) }
        guard case .diverged(let step, _) = output.trajectory.status else {
            Issue.record("expected a divergence, got \(output.trajectory.status)")
            return
        }
        #expect(step == 0)
        let file = { (name: String) in (folder as NSString).appendingPathComponent(name) }
        let initial = try NPYFormat.read(path: file("particles_initial.npy"))
        let final = try NPYFormat.read(path: file("particles_final.npy"))
        #expect(final.shape == [12, 4] && final == initial)
        let summary = try String(contentsOfFile: file("summary.json"), encoding: .utf8)
        #expect(summary.contains("\"status\": \"diverged\"") || summary.contains("\"status\":\"diverged\""))
        let names = try FileManager.default.contentsOfDirectory(atPath: folder).filter { !$0.hasPrefix(".") }.sorted()
        #expect(names == ["particles_final.npy", "particles_initial.npy", "summary.json", "trajectory.csv"])
    }

    @Test("A matrix whose values do not match its shape is an error, not the array's trap")
    func mismatchedMatrix() throws {
        let folder = Self.temporaryPath()
        defer { try? FileManager.default.removeItem(atPath: folder) }
        #expect(throws: ExperimentError.self) {
            try OutputDirectory.writing(to: folder) { try $0.writeMatrix("x.npy", rows: 3, columns: 2, values: []) }
        }
        #expect(!FileManager.default.fileExists(atPath: folder))
    }

    @Test("Step counts beyond 1e12 are refused with the key (Int conversion trapped)")
    func stepCounts() throws {
        // sgd.eta = 1e-300: horizon / eta = 2e299 steps.
        #expect(performing: { try Self.spec([("\"eta\": 0.01", "\"eta\": 1e-300")]) },
                throws: { Self.keyOf($0) == "sgd.eta" })
        // horizon = 1e300 for the oracle (no sgd section): horizon / tau = 1e301 JKO steps.
        #expect(performing: { try Self.spec([("BETA", "4"), ("HORIZON", "1e300")], in: Self.oracle) },
                throws: { Self.keyOf($0) == "jko.tau" })
        // A spec changed in code skips the parser: compare's stride and the JKO settings check again.
        var spec = try Self.spec([])
        spec.sgd!.eta = 1e-300
        #expect(performing: { try CompareRun.stride(spec: spec) }, throws: { Self.keyOf($0) == "sgd.eta" })
        var jko = try Self.spec([("BETA", "4"), ("HORIZON", "1")], in: Self.oracle)
        jko.horizon = 1e300
        #expect(performing: { try JKORun.settings(spec: jko) }, throws: { Self.keyOf($0) == "jko.tau" })
        // The dynamics' own check (MeanField) names sgd.eta too.
        var sgdSpec = try Self.spec([])
        sgdSpec.horizon = 1e300
        #expect(performing: { try SGDRun.run(spec: sgdSpec, directory: nil) }, throws: { Self.keyOf($0) == "sgd.eta" })
    }

    @Test("A spec without a model refuses a huge dimension at the key (its scalar w.mean was repeated 1e14 times: the allocator aborted)")
    func hugeOracleDimension() throws {
        func text(_ d: String) -> String {
            """
            {"energy": {"potential": "quadratic", "lambda": 1}, "initialization": {"w": {"mean": 0, "std": 1}},
             "dimension": \(d), "particles": 1, "horizon": 1}
            """
        }
        for d in ["100000000000000", "100001"] {
            #expect { try ExperimentSpec.parse(data: Data(text(d).utf8)) } throws: { Self.keyOf($0) == "dimension" }
        }
        #expect(try ExperimentSpec.parse(data: Data(text("100000").utf8)).initialization.w.mean.count == 100_000)
    }

    @Test("A reduced grid with points_per_axis = +-1e308 is refused at the key (the message converted the count to Int and trapped)",
          arguments: ["1.7976931348623157e308", "-1e300", "[8, 1e20, 8]", "4", "1000"])
    func hugeReducedGridCounts(_ counts: String) throws {
        let text = """
        {"model": {"activation": "relu", "input_dimension": 10}, "teacher": {"directions": [[1]]},
         "initialization": {"a": {"mean": 0.5, "std": 0.1}, "w": {"gamma": 1}}, "horizon": 1, "scheme": "grid",
         "grid": {"tau": 0.1, "bounds": [[0, 1], [-2, 2], [0, 2]], "points_per_axis": \(counts)}}
        """
        #expect { try ReducedSpec.parse(data: Data(text.utf8)) } throws: { error in
            guard case ExperimentError.invalidSpec("grid.points_per_axis", let reason) = error else { return false }
            return reason.contains(counts == "4" ? "got 4 " : counts == "1000" ? "got 1000 " : "e+")
        }
    }

    @Test("record_every beyond the horizon records the start and the end")
    func recordEveryBeyondHorizon() throws {
        let spec = try Self.spec([("\"record_every\": 0.05", "\"record_every\": 1e300")])
        let experiment = try spec.sgdExperiment()
        #expect(experiment.recordStride == experiment.stepCount)
        let output = try SGDRun.run(spec: spec, directory: nil)
        #expect(output.trajectory.records.map(\.step) == [0, 20])
    }

    @Test("The grid scheme with beta = 1e-300 runs (its kernel width trapped): a gamma of 1e299 spans the whole grid")
    func gridWithTinyBeta() throws {
        let spec = try Self.spec([("BETA", "1e-300"), ("HORIZON", "0.2")], in: Self.oracle)
        let output = try JKORun.run(spec: spec, directory: nil)
        #expect(output.result.reports.count == 3)
        guard case .density(let density) = output.result.final else {
            Issue.record("expected a density")
            return
        }
        // At infinite temperature the density flattens: finite, positive, mass one.
        #expect(density.masses.allSatisfy { $0.isFinite && $0 >= 0 })
        #expect(abs(density.masses.reduce(0, +) - 1) <= 1e-9)
    }

    @Test("Runs estimated above the memory limit are refused, naming the key of the largest part")
    func memoryLimit() throws {
        let huge = try Self.spec([("\"particles\": 12", "\"particles\": 10000000"),
                                  ("\"input_dimension\": 3", "\"input_dimension\": 1000"),
                                  ("\"directions\": [[1, 0, 0]]", "\"directions\": [[1\(String(repeating: ", 0", count: 999))]]")])
        // 10^7 x 1001 doubles x 5 copies: 400 GB, refused against a limit of 64 GiB.
        try #require(huge.sgdMemory().bytes > 3e11 && huge.jkoMemory().bytes > 3e11)
        var limited = huge
        limited.memoryLimit = 0x1p36
        #expect(performing: { try SGDRun.run(spec: limited, directory: nil) }, throws: { Self.keyOf($0) == "particles" })
        #expect(performing: { try JKORun.run(spec: limited, directory: nil) }, throws: { Self.keyOf($0) == "particles" })
        #expect(performing: { try CompareRun.run(spec: limited, directory: nil) }, throws: { Self.keyOf($0) == "particles" })
        // jko.tau = 1e-9 over a horizon of 0.2: 2e8 step reports, over 100 GB.
        var steps = try Self.spec([])
        steps.jko!.tau = 1e-9
        steps.memoryLimit = 0x1p36
        try #require(steps.jkoMemory().bytes > 1e11)
        #expect(performing: { try JKORun.run(spec: steps, directory: nil) }, throws: { Self.keyOf($0) == "jko.tau" })
        // The spec key sets the limit: an ordinary run (about 4 KiB) passes 1 GiB and fails 2 KiB.
        let small = try Self.spec([("\"record_every\": 0.05", "\"record_every\": 0.05, \"memory_limit\": \"2K\"")])
        #expect(small.memoryLimit == 2048)
        #expect(performing: { try SGDRun.run(spec: small, directory: nil) }, throws: { Self.keyOf($0) == "particles" })
        let roomy = try Self.spec([("\"record_every\": 0.05", "\"record_every\": 0.05, \"memory_limit\": 1073741824")])
        #expect(roomy.memoryLimit == 0x1p30)
        #expect(try SGDRun.run(spec: roomy, directory: nil).trajectory.status == .completed)
        #expect(performing: { try Self.spec([("\"record_every\": 0.05", "\"record_every\": 0.05, \"memory_limit\": \"lots\"")]) },
                throws: { Self.keyOf($0) == "memory_limit" })
        // A sweep names the option that makes it large.
        var sweep = try Self.spec([])
        sweep.memoryLimit = 0x1p30
        #expect(performing: {
            try SweepRun.run(spec: sweep, particles: [10, 10_000_000], etas: [0.01], seeds: 1, referenceParticles: 10, directory: nil)
        }, throws: { Self.keyOf($0) == "--sweep-particles" })
    }

    @Test("Sizes parse with binary units; the estimate grows with what it counts")
    func sizesAndEstimates() throws {
        #expect(MemoryEstimate.parseSize("512") == 512)
        #expect(MemoryEstimate.parseSize("16G") == 16 * 0x1p30)
        #expect(MemoryEstimate.parseSize("1.5GiB") == 1.5 * 0x1p30)
        #expect(MemoryEstimate.parseSize("2k") == 2048)
        #expect(MemoryEstimate.parseSize("2e9") == 2e9)
        for bad in ["", "G", "-1G", "0", "abc", "1e400", "nan"] { #expect(MemoryEstimate.parseSize(bad) == nil, "\(bad)") }
        let spec = try Self.spec([])
        var twice = spec
        twice.particles *= 2
        #expect(twice.sgdMemory().bytes > spec.sgdMemory().bytes)
        #expect(spec.compareMemory().bytes > spec.jkoMemory().bytes + spec.sgdMemory().bytes)
        var finer = spec
        finer.jko!.tau /= 10
        #expect(finer.jkoMemory().bytes > spec.jkoMemory().bytes)
        // The particle arrays of this spec are counted: at least M x D doubles.
        #expect(spec.sgdMemory().bytes >= 8 * 12 * 4)
        // Sinkhorn transport counts the geometry the term will choose: the 20,000^2 kernel
        // (3.2 GB) within 64 GiB, the online geometry (no kernel) within 1 GiB.
        var sinkhorn = spec
        sinkhorn.particles = 20_000
        sinkhorn.jko!.transport = .sinkhorn(epsilon: 0.05, options: Defaults.particleSinkhornOptions)
        sinkhorn.memoryLimit = 0x1p36
        #expect(sinkhorn.jkoMemory().terms.contains { $0.what.contains("Sinkhorn kernel") && $0.bytes >= 8 * 20_000 * 20_000 })
        sinkhorn.memoryLimit = 0x1p30
        #expect(sinkhorn.jkoMemory().terms.contains { $0.what.contains("online Sinkhorn geometry") })
        #expect(sinkhorn.jkoMemory().bytes < 0x1p30)
    }

    @Test("Pictures of values near the Double range are drawn (bin indices and tick decades trapped)")
    func chartsOfExtremeValues() {
        let histogram = HistogramChart(title: "h", xLabel: "x", samples: [("a", [-1e308, 0, 1e308]), ("b", [1.7e308, .nan])])
        let (edges, densities) = histogram.densities()
        #expect(edges.count == 31 && densities.count == 2)
        #expect(histogram.svg().contains("</svg>"))
        for scale in [AxisScale.linear, .logarithmic] {
            let chart = LineChart(title: "l", xLabel: "x", yLabel: "y", xScale: scale, yScale: scale,
                                  series: [ChartSeries(name: "s", x: [.leastNonzeroMagnitude, 1, 1.7e308], y: [.leastNonzeroMagnitude, 2, 1.7e308])])
            #expect(chart.svg().contains("</svg>"))
        }
    }
}
