import Foundation
import Testing
import Wasserstein
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Issue 10, item 6: hostile but plausible command lines.
@Suite("wasserstein under hostile input")
struct ReliabilityCommandTests {
    func json(_ text: String) throws -> [String: Any] {
        try #require(JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any])
    }

    func entries(_ path: String) -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: path)) ?? []).sorted()
    }

    /// The error line of a failed run: exactly one line, the documented prefix, no raw control byte.
    func expectOneErrorLine(_ out: CommandRunner.Output, _ context: String = "") {
        #expect(out.stderr.hasPrefix("wasserstein: error: "), "\(context): \(out.stderr)")
        #expect(out.stderr.split(separator: "\n", omittingEmptySubsequences: false).count == 2, "\(context): \(out.stderr)")
        #expect(!out.stderr.unicodeScalars.dropLast().contains { $0.value < 0x20 || $0.value == 0x7F }, "\(context): \(out.stderr)")
    }

    // MARK: 6a

    @Test("--out never replaces the spec it was given: exit 64, the spec and the folder unchanged")
    func outKeepsTheSpec() throws {
        let s = try Scratch()
        try FileManager.default.createDirectory(atPath: s.path("run"), withIntermediateDirectories: true)
        let spec = s.file("run/summary.json", ExperimentCommandTests.spec())
        for command in ["sgd", "jko", "compare"] {
            let out = try CommandRunner.run([command, spec, "--out", s.path("run")])
            #expect(out.status == 64, "\(command): \(out.status)")
            expectOneErrorLine(out, command)
            #expect(out.stderr.contains("would replace the input \(spec)"), "\(out.stderr)")
            #expect(try String(contentsOfFile: spec, encoding: .utf8) == ExperimentCommandTests.spec())
            #expect(entries(s.path("run")) == ["summary.json"])
        }
    }

    @Test("distance --plan never replaces an input file: exit 64 before solving")
    func planKeepsTheInputs() throws {
        let s = try Scratch()
        let x = s.file("x.csv", "0\n1\n"), y = s.file("y.csv", "2\n3\n"), w = s.file("w.csv", "1\n1\n")
        // The first input read through a link: the plan must not replace the file behind it either.
        try FileManager.default.createSymbolicLink(atPath: s.path("x-link.csv"), withDestinationPath: x)
        for plan in [x, y, w] {
            let out = try CommandRunner.run(["distance", s.path("x-link.csv"), y, "--y-weights", w, "--normalize", "--plan", plan])
            #expect(out.status == 64, "\(plan): \(out.status) \(out.stderr)")
            expectOneErrorLine(out, plan)
            #expect(out.stderr.contains("would replace the input"), "\(out.stderr)")
        }
        #expect(try String(contentsOfFile: x, encoding: .utf8) == "0\n1\n")
        #expect(try String(contentsOfFile: y, encoding: .utf8) == "2\n3\n")
        #expect(try String(contentsOfFile: w, encoding: .utf8) == "1\n1\n")
        // Any other path is fine.
        #expect(try CommandRunner.run(["distance", x, y, "--y-weights", w, "--normalize", "--plan", s.path("plan.csv")]).status == 0)
    }

    // MARK: 6b

    @Test("A second run into the same folder removes the first run's stale files and keeps the user's")
    func staleFilesRemoved() throws {
        let s = try Scratch()
        let spec = s.file("spec.json", ExperimentCommandTests.spec())
        let run = s.path("run")
        #expect(try CommandRunner.run(["sgd", spec, "--out", run]).status == 0)
        #expect(entries(run) == [".wasserstein-output", "particles_final.npy", "particles_initial.npy", "summary.json", "trajectory.csv"])
        _ = s.file("run/notes.txt", "my notes")
        let jko = try CommandRunner.run(["jko", spec, "--out", run])
        #expect(jko.status == 0, "\(jko.stderr)")
        // particles_initial.npy was sgd's: gone. notes.txt is the user's: kept.
        #expect(entries(run) == [".wasserstein-output", "notes.txt", "particles_final.npy", "summary.json", "trajectory.csv"])
        #expect(try String(contentsOfFile: s.path("run/notes.txt"), encoding: .utf8) == "my notes")
        let summary = try #require(JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: s.path("run/summary.json")))) as? [String: Any])
        #expect(summary["command"] as? String == "jko", "\(summary)")
    }

    @Test("A failing run leaves no partial output: a new folder is not created, an old one is unchanged")
    func noPartialOutput() throws {
        let s = try Scratch()
        let good = s.file("spec.json", ExperimentCommandTests.spec())
        // Valid JSON that fails in the run, after the staging folder exists: tau not a multiple of eta.
        let bad = s.file("bad.json", ExperimentCommandTests.spec().replacingOccurrences(of: "\"tau\": 0.05", with: "\"tau\": 0.055"))
        let fresh = try CommandRunner.run(["compare", bad, "--out", s.path("new/run")])
        #expect(fresh.status == 1)
        expectOneErrorLine(fresh)
        #expect(!FileManager.default.fileExists(atPath: s.path("new")))
        #expect(entries(s.url.path) == ["bad.json", "spec.json"])
        #expect(try CommandRunner.run(["sgd", good, "--out", s.path("run")]).status == 0)
        let before = try Data(contentsOf: URL(fileURLWithPath: s.path("run/trajectory.csv")))
        let failed = try CommandRunner.run(["compare", bad, "--out", s.path("run")])
        #expect(failed.status == 1)
        #expect(entries(s.path("run")) == [".wasserstein-output", "particles_final.npy", "particles_initial.npy", "summary.json", "trajectory.csv"])
        #expect(try Data(contentsOf: URL(fileURLWithPath: s.path("run/trajectory.csv"))) == before)
    }

    // MARK: 6c

    @Test("Control bytes echoed from a file, a spec or the command line are escaped: one line stays one line")
    func controlBytesEscaped() throws {
        let s = try Scratch()
        let y = s.file("y.csv", "0\n1\n")
        // A CSV field with a terminal escape sequence, a carriage return and a byte that is not UTF-8.
        let evil = s.path("evil.csv")
        try Data(Array("1\n2\u{1B}[2J".utf8) + [0xFF, 0x0D, 0x0D, 0x0A]).write(to: URL(fileURLWithPath: evil))
        let csv = try CommandRunner.run(["distance", evil, y])
        #expect(csv.status == 1)
        expectOneErrorLine(csv)
        #expect(csv.stderr.contains("line 2, column 1: '2\\x1B[2J\\xFF\\r' is not a number"), "\(csv.stderr)")
        // A spec key with a newline and an escape sequence.
        let spec = s.file("spec.json", ExperimentCommandTests.spec().replacingOccurrences(of: "\"seed\": 7", with: "\"seed\": 7, \"a\\nb\\u001b[31m\": 1"))
        let keyed = try CommandRunner.run(["sgd", spec, "--out", s.path("run")])
        #expect(keyed.status == 1)
        expectOneErrorLine(keyed)
        #expect(keyed.stderr.contains("spec key 'a\\nb\\x1B[31m': unknown key"), "\(keyed.stderr)")
        // A file name with a newline, and an option value with one.
        let named = try CommandRunner.run(["distance", s.path("no\nsuch.csv"), y])
        #expect(named.status == 1)
        expectOneErrorLine(named)
        #expect(named.stderr.contains("no\\nsuch.csv (source points): no such file"), "\(named.stderr)")
        let option = try CommandRunner.run(["distance", y, y, "--method", "fast\n\u{1B}[31m"])
        #expect(option.status == 64)
        expectOneErrorLine(option)
    }

    // MARK: 6d

    @Test("A byte order mark is skipped; a partly numeric first row is an error with line and column, not a header")
    func csvFirstRow() throws {
        let s = try Scratch()
        let y = s.file("y.csv", "0,0\n2,2\n")
        let bom = s.path("bom.csv")
        try Data([0xEF, 0xBB, 0xBF] + Array("0,0\n1,1\n".utf8)).write(to: URL(fileURLWithPath: bom))
        let withBOM = try CommandRunner.run(["distance", bom, y, "--json"])
        #expect(withBOM.status == 0, "\(withBOM.stderr)")
        // Both rows are data: W2^2 = ((0-0)^2 * 2 + (1-2)^2 * 2) / 2 = 1.
        #expect(try json(withBOM.stdout)["n"] as? Int == 2)
        #expect(abs((try json(withBOM.stdout)["w2_squared"] as? Double ?? -1) - 1) < 1e-12)
        let malformed = try CommandRunner.run(["distance", s.file("e.csv", "1e,0\n1,2\n"), y])
        #expect(malformed.status == 1)
        expectOneErrorLine(malformed)
        #expect(malformed.stderr.contains("e.csv (source points): line 1, column 1: '1e' is not a number"), "\(malformed.stderr)")
    }

    // MARK: 6e

    @Test("Warnings go to standard error as 'wasserstein: warning:' in text mode too; standard output holds the result")
    func warningsOnStandardError() throws {
        let s = try Scratch()
        let x = s.file("x.csv", (0 ..< 30).map { "\(Double($0) / 7),\(sin(Double($0)))" }.joined(separator: "\n"))
        let y = s.file("y.csv", (0 ..< 30).map { "\(Double($0) / 5 + 3),\(cos(Double($0)))" }.joined(separator: "\n"))
        let out = try CommandRunner.run(["distance", x, y, "--method", "sinkhorn", "--epsilon", "0.001", "--max-iterations", "3"])
        #expect(out.status == 0)
        #expect(!out.stdout.contains("warning"), "\(out.stdout)")
        #expect(out.stdout.hasPrefix("W2 = "))
        #expect(out.stderr == "wasserstein: warning: the solver stopped at its iteration limit before converging\n", "\(out.stderr)")
    }

    // MARK: 6g

    @Test("exact on 1-D data runs the sorted solver, says so, and agrees with the network simplex")
    func exactOneDimensional() throws {
        let s = try Scratch()
        let a = [0.5, -1, 2, 4, 3.25], b = [1.0, 0, -2]
        let wa = [0.1, 0.3, 0.2, 0.25, 0.15], wb = [0.5, 0.2, 0.3]
        let x = s.file("a.csv", a.map { "\($0)" }.joined(separator: "\n")), y = s.file("b.csv", b.map { "\($0)" }.joined(separator: "\n"))
        let xw = s.file("aw.csv", wa.map { "\($0)" }.joined(separator: "\n")), yw = s.file("bw.csv", wb.map { "\($0)" }.joined(separator: "\n"))
        let out = try CommandRunner.run(["distance", x, y, "--x-weights", xw, "--y-weights", yw, "--method", "exact", "--json"])
        #expect(out.status == 0, "\(out.stderr)")
        let o = try json(out.stdout)
        #expect(o["method"] as? String == "exact" && o["solver"] as? String == "sorted", "\(o)")
        // The network simplex on the same problem, run directly: an independent solver.
        let reference = try NetworkSimplexSolver().solve(TransportProblem(source: PointCloud(values: a, weights: wa),
                                                                          target: PointCloud(values: b, weights: wb))).cost
        #expect(abs((o["w2_squared"] as? Double ?? -1) - reference) <= 1e-12 * reference)
        let text = try CommandRunner.run(["distance", x, y, "--x-weights", xw, "--y-weights", yw, "--method", "exact"])
        #expect(text.stdout.contains("[exact, sorted 1-D solver, n = 5"), "\(text.stdout)")
        // In 2-D, exact is the network simplex.
        let two = try CommandRunner.run(["distance", s.file("p.csv", "0,0\n1,1\n"), s.file("q.csv", "2,0\n"), "--method", "exact", "--json"])
        #expect(try json(two.stdout)["solver"] as? String == "network_simplex")
    }

    // MARK: 6h

    @Test("A FIFO or a device is refused at once, as a point file or as a spec")
    func pipesAndDevices() throws {
        let s = try Scratch()
        let y = s.file("y.csv", "0\n1\n")
        let fifo = s.path("points.csv")
        #expect(mkfifo(fifo, 0o600) == 0)
        let clock = ContinuousClock()
        let start = clock.now
        for args in [["distance", fifo, y], ["distance", "/dev/zero", y], ["distance", y, y, "--x-weights", "/dev/zero"],
                     ["sgd", fifo, "--out", s.path("run")], ["jko", "/dev/zero", "--out", s.path("run")]] {
            let out = try CommandRunner.run(args)
            #expect(out.status == 1, "\(args): \(out.status)")
            expectOneErrorLine(out, "\(args)")
            #expect(out.stderr.contains("not a regular file"), "\(out.stderr)")
        }
        #expect(clock.now - start < .seconds(60))
        #expect(!FileManager.default.fileExists(atPath: s.path("run")))
    }
}
