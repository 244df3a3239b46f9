import Foundation
import Testing
@testable import Experiments
import Wasserstein
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The output folder of a run: all of it or nothing, the previous run's files replaced, the
/// user's files and the run's inputs never touched.
@Suite("Output folders")
struct OutputDirectoryTests {
    struct Failure: Error {}

    /// A scratch folder, removed at the end.
    final class Folder {
        let path: String
        init() throws {
            path = FileManager.default.temporaryDirectory.appendingPathComponent("wout-\(UUID().uuidString)").path
            try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        }
        deinit { try? FileManager.default.removeItem(atPath: path) }
        func sub(_ name: String) -> String { path + "/" + name }
        func write(_ name: String, _ text: String) throws {
            try FileManager.default.createDirectory(atPath: (sub(name) as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
            try text.write(toFile: sub(name), atomically: false, encoding: .utf8)
        }
        func read(_ name: String) -> String? { try? String(contentsOfFile: sub(name), encoding: .utf8) }
        /// Every entry under `name`, recursively, hidden ones included, sorted.
        func tree(_ name: String) -> [String] {
            (FileManager.default.enumerator(atPath: sub(name))?.allObjects as? [String] ?? []).sorted()
        }
    }

    /// A run that writes `files` (name -> content) and then optionally fails.
    static func run(_ target: String, _ files: [String: String], protecting inputs: [String] = [], fail: Bool = false) throws {
        try OutputDirectory.writing(to: target, protecting: inputs) { directory in
            for (name, text) in files.sorted(by: { $0.key < $1.key }) {
                let parts = name.split(separator: "/")
                var d = directory
                for p in parts.dropLast() { d = try d.subdirectory(String(p)) }
                try text.write(toFile: d.file(String(parts.last!)), atomically: false, encoding: .utf8)
            }
            if fail { throw Failure() }
        }
    }

    @Test("A new folder appears with all its files and the manifest, parents included, or not at all")
    func newFolder() throws {
        let f = try Folder()
        #expect(throws: Failure.self) { try Self.run(f.sub("a/b/run"), ["x.csv": "1"], fail: true) }
        #expect(f.tree("").isEmpty, "\(f.tree(""))")  // not even the parents, no staging left
        // While the run writes, nothing is at the target yet.
        try OutputDirectory.writing(to: f.sub("a/b/run")) { directory in
            try "1".write(toFile: directory.file("x.csv"), atomically: false, encoding: .utf8)
            #expect(!FileManager.default.fileExists(atPath: f.sub("a")))
        }
        try FileManager.default.removeItem(atPath: f.sub("a"))
        try Self.run(f.sub("a/b/run"), ["x.csv": "1", "pics/p.svg": "<svg/>"])
        #expect(f.tree("a/b/run") == [".wasserstein-output", "pics", "pics/p.svg", "x.csv"])
        #expect(f.read("a/b/run/.wasserstein-output")!.split(separator: "\n").filter { !$0.hasPrefix("#") } == ["pics/p.svg", "x.csv"])
        #expect(f.tree("a/b") == ["run"] + f.tree("a/b/run").map { "run/" + $0 })
    }

    @Test("A second run replaces the first run's files, removes its stale ones, keeps the user's")
    func staleFiles() throws {
        let f = try Folder()
        try Self.run(f.sub("run"), ["trajectory.csv": "old", "particles_initial.npy": "old", "compare/risk.svg": "old"])
        try f.write("run/notes.txt", "mine")
        try f.write("run/compare/mine.svg", "mine too")
        try Self.run(f.sub("run"), ["trajectory.csv": "new", "summary.json": "new"])
        #expect(f.tree("run") == [".wasserstein-output", "compare", "compare/mine.svg", "notes.txt", "summary.json", "trajectory.csv"])
        #expect(f.read("run/trajectory.csv") == "new" && f.read("run/notes.txt") == "mine")
        // A folder the previous run filled and the new one does not use goes when it is empty.
        try Self.run(f.sub("run2"), ["sub/a.csv": "1"])
        try Self.run(f.sub("run2"), ["b.csv": "2"])
        #expect(f.tree("run2") == [".wasserstein-output", "b.csv"])
    }

    @Test("A failing run leaves an existing folder exactly as it was")
    func failureKeepsPrevious() throws {
        let f = try Folder()
        try Self.run(f.sub("run"), ["trajectory.csv": "old", "extra.csv": "old"])
        let before = f.tree("run")
        #expect(throws: Failure.self) { try Self.run(f.sub("run"), ["trajectory.csv": "new"], fail: true) }
        #expect(f.tree("run") == before)
        #expect(f.read("run/trajectory.csv") == "old" && f.read("run/extra.csv") == "old")
    }

    @Test("An input inside the folder is never replaced, nor removed as stale; nothing changes then")
    func inputsAreProtected() throws {
        let f = try Folder()
        try f.write("run/summary.json", "{\"the\": \"spec\"}")
        #expect(throws: ExperimentError.outputReplacesInput(input: f.sub("run/summary.json"), output: f.sub("run"))) {
            try Self.run(f.sub("run"), ["summary.json": "{}", "trajectory.csv": "t"], protecting: [f.sub("run/summary.json")])
        }
        #expect(f.tree("run") == ["summary.json"] && f.read("run/summary.json") == "{\"the\": \"spec\"}")
        // The same through a symbolic link to the file, and through a link to the folder.
        try FileManager.default.createSymbolicLink(atPath: f.sub("spec-link.json"), withDestinationPath: f.sub("run/summary.json"))
        try FileManager.default.createSymbolicLink(atPath: f.sub("run-link"), withDestinationPath: f.sub("run"))
        #expect(throws: ExperimentError.self) {
            try Self.run(f.sub("run-link"), ["summary.json": "{}"], protecting: [f.sub("spec-link.json")])
        }
        #expect(f.read("run/summary.json") == "{\"the\": \"spec\"}")
        // An input the previous run wrote (listed in its manifest) is not removed as stale either.
        try Self.run(f.sub("run3"), ["spec.json": "s", "a.csv": "1"])
        #expect(throws: ExperimentError.self) {
            try Self.run(f.sub("run3"), ["a.csv": "2"], protecting: [f.sub("run3/spec.json")])
        }
        #expect(f.read("run3/spec.json") == "s" && f.read("run3/a.csv") == "1")
        // The error is a usage error, and one line.
        let e = ExperimentError.outputReplacesInput(input: "runs/summary.json", output: "runs")
        #expect(e.isUsageError && e.description == "runs: refusing to write there: it would replace the input runs/summary.json; choose another output path")
    }

    @Test("Writing through a link to a folder keeps the link; a file in the way is an error")
    func linksAndFiles() throws {
        let f = try Folder()
        try FileManager.default.createDirectory(atPath: f.sub("real"), withIntermediateDirectories: true)
        try FileManager.default.createSymbolicLink(atPath: f.sub("link"), withDestinationPath: f.sub("real"))
        try Self.run(f.sub("link"), ["x.csv": "1"])
        #expect(f.read("real/x.csv") == "1")
        #expect((try? FileManager.default.destinationOfSymbolicLink(atPath: f.sub("link"))) == f.sub("real"))
        try f.write("plain", "a file")
        #expect(throws: ExperimentError.output(path: f.sub("plain"), reason: "exists and is not a folder")) {
            try Self.run(f.sub("plain"), ["x.csv": "1"])
        }
        try f.write("run/x.csv/inner", "a folder where a file goes")
        #expect(throws: ExperimentError.self) { try Self.run(f.sub("run"), ["x.csv": "1"]) }
        #expect(f.read("run/x.csv/inner") == "a folder where a file goes")
    }

    @Test("A manifest edited to point outside the folder removes nothing outside it")
    func hostileManifest() throws {
        let f = try Folder()
        try f.write("victim.txt", "keep")
        try f.write("run/.wasserstein-output", "../victim.txt\n/etc/hostname\n./x\n\(f.sub("victim.txt"))\nsub/../../victim.txt\n")
        try Self.run(f.sub("run"), ["a.csv": "1"])
        #expect(f.read("victim.txt") == "keep")
        #expect(f.tree("run") == [".wasserstein-output", "a.csv"])
    }

    @Test("Staging folders of dead runs are cleared; a live run's is kept")
    func abandonedStaging() throws {
        let f = try Folder()
        // A process id that cannot exist (above the kernel's limit) stands for a killed run.
        try f.write("run/.wasserstein-partial-2147483646-1/x.csv", "half")
        try f.write("run/.wasserstein-partial-\(getpid())-1/y.csv", "running")
        try Self.run(f.sub("run"), ["a.csv": "1"])
        #expect(f.tree("run").filter { !$0.hasPrefix(".wasserstein-partial-\(getpid())-1") } == [".wasserstein-output", "a.csv"])
        #expect(f.read("run/.wasserstein-partial-\(getpid())-1/y.csv") == "running")
    }

    @Test("Path arithmetic without Foundation: one letter, dots, slashes, the root")
    func folderPaths() {
        #expect(FolderPath.normalized("r") == "r" && FolderPath.parent("r") == ".")
        #expect(FolderPath.normalized("o/") == "o" && FolderPath.parent("o/") == ".")
        #expect(FolderPath.normalized("./a//b/./") == "a/b" && FolderPath.parent("a/b") == "a")
        #expect(FolderPath.normalized("") == "." && FolderPath.normalized("./") == ".")
        #expect(FolderPath.parent(".") == ".." && FolderPath.parent("..") == "../.." && FolderPath.parent("a/..") == "a/../..")
        #expect(FolderPath.normalized("//x///y") == "/x/y" && FolderPath.parent("/x") == "/" && FolderPath.parent("/") == "/")
        #expect(FolderPath.appending(".", "f") == "./f" && FolderPath.appending("/", "f") == "/f" && FolderPath.appending("", "f") == "f")
    }

    @Test("An error writing a file names the target folder, never the hidden staging folder")
    func errorsNameTheTarget() throws {
        let f = try Folder()
        var staged = ""
        do {
            try OutputDirectory.writing(to: f.sub("run")) { directory in
                staged = directory.file("x.csv")
                throw DataFileError.unwritable(path: staged, reason: "No space left on device")
            }
            Issue.record("the run did not fail")
        } catch let error as ExperimentError {
            #expect(error == .output(path: f.sub("run") + "/x.csv", reason: "No space left on device"))
            #expect(!String(describing: error).contains(OutputDirectory.stagingPrefix))
        }
        #expect(staged.contains(OutputDirectory.stagingPrefix))
        #expect(f.tree("").isEmpty)
    }
}
