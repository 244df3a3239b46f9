import Foundation
import Testing
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Issue 17, items 1 and 5: every form of `--out`, and runs ended by SIGINT or SIGTERM.
@Suite("--out forms and interrupted runs")
struct OutputPathAndSignalTests {
    func entries(_ path: String) -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: path)) ?? []).sorted()
    }

    static let runFiles = [".wasserstein-output", "particles_final.npy", "particles_initial.npy", "summary.json", "trajectory.csv"]

    @Test("Every --out form writes the run where asked: one letter, nested, trailing slash, dots, absolute, new and existing",
          arguments: ["r", "a/b", "o/", "./x", "x/./y//", "..", "../up/one", "ABSOLUTE"])
    func outForms(_ form: String) throws {
        let s = try Scratch()
        let spec = s.file("spec.json", ExperimentCommandTests.spec())
        let work = s.path("work")
        try FileManager.default.createDirectory(atPath: work, withIntermediateDirectories: true)
        let out = form == "ABSOLUTE" ? s.path("abs/run") : form
        // Where the files must land, resolved here by hand (the folder tree is known).
        let expected: String
        switch form {
        case "..": expected = s.url.path
        case "../up/one": expected = s.path("up/one")
        case "ABSOLUTE": expected = s.path("abs/run")
        default: expected = work + "/" + form.split(separator: "/").filter { $0 != "." }.joined(separator: "/")
        }
        for attempt in ["new", "existing"] {
            let r = try CommandRunner.run(["sgd", spec, "--out", out], in: URL(fileURLWithPath: work))
            #expect(r.status == 0, "\(form) (\(attempt)): \(r.stderr)")
            #expect(r.stderr.isEmpty, "\(form) (\(attempt)): \(r.stderr)")
            let written = entries(expected).filter { $0.hasPrefix(".") || $0.hasSuffix(".npy") || $0.hasSuffix(".json") || $0.hasSuffix(".csv") }
            #expect(written.filter { $0 != "spec.json" } == Self.runFiles, "\(form) (\(attempt)): \(entries(expected))")
            #expect(!entries(work).contains { $0.hasPrefix(".wasserstein-partial-") })
            #expect(!entries(s.url.path).contains { $0.hasPrefix(".wasserstein-partial-") })
        }
    }

    @Test("jko and compare take a one-letter --out too (every command stages through the same folder code)")
    func otherCommandsOneLetter() throws {
        let s = try Scratch()
        let spec = s.file("spec.json", ExperimentCommandTests.spec())
        for (command, out) in [("jko", "j"), ("compare", "c")] {
            let r = try CommandRunner.run([command, spec, "--out", out], in: s.url)
            #expect(r.status == 0, "\(command): \(r.stderr)")
            #expect(entries(s.path(out)).contains("summary.json"), "\(command): \(entries(s.path(out)))")
        }
        #expect(entries(s.url.path) == ["c", "j", "spec.json"])
    }

    /// Starts `sgd` on a spec that runs for minutes, waits until its staging folder exists,
    /// sends `signal`, and returns the exit status and what is left in the folder.
    func interrupted(by signal: Int32, out: String, existing: Bool) throws -> (status: Int32, left: [String], outEntries: [String]) {
        let s = try Scratch()
        let long = ExperimentCommandTests.spec()
            .replacingOccurrences(of: "\"horizon\": 0.3", with: "\"horizon\": 100000")
            .replacingOccurrences(of: "\"record_every\": 0.05", with: "\"record_every\": 1000")
        #expect(long.contains("100000"), "the spec's horizon did not change: the run would end by itself")
        let spec = s.file("long.json", long)
        if existing { try FileManager.default.createDirectory(atPath: s.path(out), withIntermediateDirectories: true) }
        let process = Process()
        process.executableURL = CommandRunner.executable
        process.arguments = ["sgd", spec, "--out", out]
        process.currentDirectoryURL = s.url
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        let staging = existing ? s.path(out) : s.url.path
        let clock = ContinuousClock(), start = clock.now
        while !entries(staging).contains(where: { $0.hasPrefix(".wasserstein-partial-") }) && clock.now - start < .seconds(60) {
            usleep(20_000)
        }
        #expect(entries(staging).contains { $0.hasPrefix(".wasserstein-partial-") }, "no staging folder appeared")
        kill(process.processIdentifier, signal)
        process.waitUntilExit()
        return (process.terminationStatus, entries(s.url.path), entries(s.path(out)))
    }

    @Test("SIGINT and SIGTERM remove the staging folder and exit 130 / 143; a new --out is not created",
          arguments: [(SIGINT, 130), (SIGTERM, 143)] as [(Int32, Int32)])
    func signalsLeaveNothing(_ signal: Int32, _ status: Int32) throws {
        let fresh = try interrupted(by: signal, out: "r", existing: false)
        #expect(fresh.status == status)
        #expect(fresh.left == ["long.json"], "\(fresh.left)")
        let inside = try interrupted(by: signal, out: "old", existing: true)
        #expect(inside.status == status)
        #expect(inside.outEntries.isEmpty, "\(inside.outEntries)")
    }
}
