import Foundation
import Testing
import Wasserstein

/// Issue 17, items 2-4, 6 and 7: traps, a hang, a truncated number and small slips, each with
/// its new behaviour. (Items 1 and 5, `--out` forms and signals: OutputPathAndSignalTests.)
@Suite("wasserstein under hostile input, third round")
struct ReliabilityIIICommandTests {
    func expectError(_ out: CommandRunner.Output, status: Int32, containing text: String,
                     sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(out.status == status, "\(out.stderr)", sourceLocation: sourceLocation)
        let lines = out.stderr.split(separator: "\n")
        #expect(lines.count == 1 && lines[0].hasPrefix("wasserstein: error: "), "\(out.stderr)", sourceLocation: sourceLocation)
        #expect(out.stderr.contains(text), "\(out.stderr)", sourceLocation: sourceLocation)
    }

    func entries(_ path: String) -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: path)) ?? []).sorted()
    }

    // MARK: 2

    @Test("record_every / eta beyond Int.max: reduced and dimensions record the start and the end, no trap, no staging left",
          arguments: ["1e300", "3e19"])
    func hugeRecordInterval(_ value: String) throws {
        let s = try Scratch()
        let text = ReducedCommandTests.linear.replacingOccurrences(of: "\"record_every\": 0.5", with: "\"record_every\": \(value)")
        #expect(text.contains(value))
        let spec = s.file("spec.json", text)
        let reduced = try CommandRunner.run(["reduced", spec, "--out", s.path("r")])
        #expect(reduced.status == 0, "\(reduced.stderr)")
        let rows = try String(contentsOfFile: s.path("r/trajectory.csv"), encoding: .utf8).split(separator: "\n")
        #expect(rows.count == 3, "\(rows)")   // header, t = 0, t = horizon
        let dims = try CommandRunner.run(["dimensions", spec, "--dimensions", "10,20", "--risk-threshold", "0.01", "--out", s.path("d")])
        #expect(dims.status == 0, "\(dims.stderr)")
        #expect(entries(s.url.path) == ["d", "r", "spec.json"])
    }

    // MARK: 3

    @Test("A grid JKO whose initial law lies outside the bounds is refused at once, naming the key (it ran for minutes)")
    func initialLawOutsideGrid() throws {
        let s = try Scratch()
        let sample = try String(contentsOfFile: GuideCommandTests.samples.appendingPathComponent("ou-grid.json").path, encoding: .utf8)
        let outside = sample.replacingOccurrences(of: "\"mean\": [1.0, -0.5]", with: "\"mean\": [8, -0.5]")
        #expect(outside != sample)
        let clock = ContinuousClock(), start = clock.now
        let out = try CommandRunner.run(["jko", s.file("out.json", outside), "--out", s.path("run")])
        #expect(clock.now - start < .seconds(20))
        expectError(out, status: 1, containing: "spec key 'initialization.w.mean'")
        #expect(out.stderr.contains("outside jko.bounds"))
        #expect(!FileManager.default.fileExists(atPath: s.path("run")))
        // Half a standard deviation from the edge: 31% outside on that axis, refused too.
        let edge = sample.replacingOccurrences(of: "\"mean\": [1.0, -0.5]", with: "\"mean\": [2.85, -0.5]")
        expectError(try CommandRunner.run(["jko", s.file("edge.json", edge), "--out", s.path("run")]), status: 1, containing: "initialization.w.mean")
    }

    // MARK: 4

    @Test("dimensions prints every digit of d (d = 1000000000 printed as 100000000 before)")
    func wideDimension() throws {
        let s = try Scratch()
        let out = try CommandRunner.run(["dimensions", s.file("spec.json", ReducedCommandTests.linear), "--dimensions", "1000000000,12",
                                         "--risk-threshold", "0.01", "--out", s.path("d")])
        #expect(out.status == 0, "\(out.stderr)")
        #expect(out.stdout.contains("  d = 1000000000 t_reduced"), "\(out.stdout)")
        #expect(out.stdout.contains("  d = 12        t_reduced"), "\(out.stdout)")
    }

    @Test("MessageText.padded pads and never cuts")
    func padded() {
        #expect(MessageText.padded("12", to: 5) == "12   ")
        #expect(MessageText.padded("1000000000", to: 9) == "1000000000")
    }

    // MARK: 6

    @Test("--normalize accepts weights whose sum overflows (three of 1e308) and gives the uniform-weight value")
    func normalizeHugeWeights() throws {
        let s = try Scratch()
        let x = s.file("x.csv", "0\n1\n3\n"), y = s.file("y.csv", "0.5\n2\n2.5\n")
        let w = s.file("w.csv", "1e308\n1e308\n1e308\n")
        let huge = try CommandRunner.run(["distance", x, y, "--x-weights", w, "--y-weights", w, "--normalize", "--json"])
        #expect(huge.status == 0, "\(huge.stderr)")
        let plain = try CommandRunner.run(["distance", x, y, "--json"])
        let a = try #require(JSONSerialization.jsonObject(with: Data(huge.stdout.utf8)) as? [String: Any])
        let b = try #require(JSONSerialization.jsonObject(with: Data(plain.stdout.utf8)) as? [String: Any])
        let wa = try #require(a["w2"] as? Double), wb = try #require(b["w2"] as? Double)
        // Uniform weights: W2^2 = mean of squared sorted differences = (0.25 + 1 + 0.25) / 3.
        #expect(abs(wb - (1.5 / 3).squareRoot()) < 1e-12)
        #expect(abs(wa - wb) < 1e-12)
        // Without --normalize the overflowing sum is still an error, naming the file.
        expectError(try CommandRunner.run(["distance", x, y, "--x-weights", w, "--y-weights", w]), status: 1, containing: "x.csv")
    }

    // MARK: 7

    @Test("--memory-limit below one byte, or in hex, is a usage error; 16GB, 16G and 16GiB are accepted",
          arguments: ["1e-300", "0.5", "0", "0x10", "0x1p40", "inf", "nan", "-1G"])
    func memoryLimitSpelling(_ value: String) throws {
        let s = try Scratch()
        let out = try CommandRunner.run(["sgd", s.file("spec.json", ExperimentCommandTests.spec()), "--out", s.path("run"), "--memory-limit", value])
        expectError(out, status: 64, containing: "--memory-limit")
        #expect(!FileManager.default.fileExists(atPath: s.path("run")))
    }

    @Test("--memory-limit 16GB, 16G and 16GiB run")
    func memoryLimitUnits() throws {
        let s = try Scratch()
        let spec = s.file("spec.json", ExperimentCommandTests.spec())
        for value in ["16GB", "16G", "16GiB", "17179869184", "1.6e10"] {
            let out = try CommandRunner.run(["sgd", spec, "--out", s.path("run"), "--memory-limit", value])
            #expect(out.status == 0, "\(value): \(out.stderr)")
        }
    }

    @Test("A bad weight names the weight file, not the points file")
    func badWeightNamesWeightFile() throws {
        let s = try Scratch()
        let x = s.file("points.csv", "0\n1\n"), w = s.file("weights.csv", "0.5\n-0.5\n")
        let out = try CommandRunner.run(["distance", x, x, "--y-weights", w])
        expectError(out, status: 1, containing: "weights.csv has an invalid weight -0.5 at index 1")
        #expect(!out.stderr.contains("points.csv"))
    }

    @Test("A step of dimensions' SGD too small names sgd.eta0 (it said 'invalid sgd.eta', a key the spec does not have)")
    func dimensionsEtaKey() throws {
        let s = try Scratch()
        let text = ReducedCommandTests.linear.replacingOccurrences(of: "\"eta0\": 0.1", with: "\"eta0\": 1e-300")
        #expect(text.contains("1e-300"))
        let out = try CommandRunner.run(["dimensions", s.file("spec.json", text), "--dimensions", "10", "--risk-threshold", "0.01",
                                         "--sgd", "--out", s.path("d")])
        expectError(out, status: 1, containing: "spec key 'sgd.eta0'")
    }

    @Test("A reduced grid blur that cannot be compensated names grid.epsilon")
    func reducedGridBlurKey() throws {
        let s = try Scratch()
        let text = ReducedCommandTests.grid.replacingOccurrences(of: "\"points_per_axis\": [16, 12]}", with: "\"points_per_axis\": [16, 12], \"epsilon\": 0.1}")
        #expect(text.contains("\"epsilon\": 0.1"))
        let out = try CommandRunner.run(["reduced", s.file("spec.json", text), "--out", s.path("run")])
        expectError(out, status: 1, containing: "spec key 'grid.epsilon'")
    }

    @Test("--risk-threshold at or below 0 is a usage error", arguments: ["-1", "0"])
    func riskThresholdSign(_ value: String) throws {
        let s = try Scratch()
        let out = try CommandRunner.run(["dimensions", s.file("spec.json", ReducedCommandTests.linear), "--dimensions", "10",
                                         "--risk-threshold", value, "--out", s.path("d")])
        expectError(out, status: 64, containing: "--risk-threshold")
    }

    @Test("input_dimension has one spelling of infinity: \"infinity\" (or \"inf\"), lowercase, no spaces",
          arguments: [" infinity", "INFINITY", "Inf", "infinity "])
    func infinitySpelling(_ value: String) throws {
        let s = try Scratch()
        let text = ReducedCommandTests.relu.replacingOccurrences(of: "\"input_dimension\": \"infinity\"", with: "\"input_dimension\": \"\(value)\"")
        #expect(text.contains(value))
        let out = try CommandRunner.run(["reduced", s.file("spec.json", text), "--out", s.path("run")])
        expectError(out, status: 1, containing: "model.input_dimension")
    }

    @Test("A run too large to allocate, with the memory check overridden, is one error line, not an abort")
    func unallocatable() throws {
        let s = try Scratch()
        let d = 100_000
        let direction = "[1" + String(repeating: ", 0", count: d - 1) + "]"
        let text = ExperimentCommandTests.spec()
            .replacingOccurrences(of: "\"input_dimension\": 3", with: "\"input_dimension\": \(d)")
            .replacingOccurrences(of: "\"directions\": [[1, 0, 0]]", with: "\"directions\": [\(direction)]")
            .replacingOccurrences(of: "\"particles\": 24", with: "\"particles\": 10000000")
        let out = try CommandRunner.run(["sgd", s.file("spec.json", text), "--out", s.path("run"), "--memory-limit", "100T"])
        expectError(out, status: 1, containing: "refuses to allocate")
        #expect(!FileManager.default.fileExists(atPath: s.path("run")))
    }

    @Test("Points of different dimensions name both files and their sides")
    func dimensionMismatchNamesFiles() throws {
        let s = try Scratch()
        let x = s.file("plane.csv", "0,0\n1,1\n"), y = s.file("line.csv", "0\n1\n")
        let out = try CommandRunner.run(["distance", x, y])
        expectError(out, status: 1, containing: "line.csv: the target's points have dimension 1, the source's (\(x)) 2")
    }
}
