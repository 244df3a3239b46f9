import Foundation
import Wasserstein
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The folder a run writes its result files into (`--out DIR`).
///
/// A run never writes into the folder directly. Its files go to a fresh staging folder
/// (`.wasserstein-partial-<pid>-<random>`, inside the target when it exists, next to where it
/// will be created otherwise, so always on the same file system) and are moved into place only
/// when the whole run has succeeded. So:
///
/// - an error leaves the target exactly as it was: no half-written run, no mix of old and new files;
/// - the files of the toolkit's previous run in that folder (listed in its manifest,
///   ``manifestName``) are replaced or removed, so no stale file of an earlier run survives; a
///   file the toolkit did not write (not in the manifest) is never touched;
/// - a file given as an input of the run (the spec) is never replaced: the commit refuses
///   with ``ExperimentError/outputReplacesInput(input:output:)`` before changing anything.
///
/// A run interrupted by SIGINT or SIGTERM removes its staging folder before it exits, where the
/// program installed ``InterruptCleanup`` (the command line does); a run killed otherwise leaves
/// it behind, and the next run staging in the same folder removes it (its process is gone). Use ``writing(to:protecting:_:)``, which commits on success
/// and discards on error.
public struct OutputDirectory: Sendable {
    /// Where the files end up, as given (what messages name).
    public let path: String
    /// The same folder with links resolved: where the files are moved at the commit.
    let target: String
    /// Where the files are written until the run commits.
    let stagingPath: String

    /// The manifest the toolkit leaves in every folder it writes: the relative paths of the files
    /// of that run, one a line. The next run writing there removes those of them it does not rewrite.
    public static let manifestName = ".wasserstein-output"

    /// The name prefix of staging folders.
    static let stagingPrefix = ".wasserstein-partial-"

    private init(path: String, target: String, stagingPath: String) {
        self.path = path
        self.target = target
        self.stagingPath = stagingPath
    }

    /// Runs `body` with a staged output folder for `path`, then moves its files into place; on
    /// an error from `body` (or from the move) nothing of the run is left behind.
    ///
    /// - Parameters:
    ///   - path: the target folder; created with its parents if needed. If it exists it must be a
    ///     folder (a symbolic link to one is followed).
    ///   - inputs: files the run reads (the spec) that must never be replaced by its output.
    ///   - body: writes the run's files through the ``OutputDirectory`` it is given.
    /// - Throws: ``ExperimentError/output(path:reason:)`` when the folder cannot be created or
    ///   written, ``ExperimentError/outputReplacesInput(input:output:)`` when an output would
    ///   replace one of `inputs`, and whatever `body` throws.
    public static func writing<T>(to path: String, protecting inputs: [String] = [],
                                  _ body: (OutputDirectory) throws -> T) throws -> T {
        let directory = try stage(path)
        StagingRegistry.shared.insert(directory.stagingPath)
        defer { StagingRegistry.shared.remove(directory.stagingPath) }
        let value: T
        do {
            value = try body(directory)
            try StagingRegistry.shared.holding { try directory.commit(protecting: inputs) }
        } catch {
            directory.discard()
            throw directory.namingTarget(error)
        }
        return value
    }

    /// The path of a file inside the folder (in the staging folder until the commit).
    public func file(_ name: String) -> String { FolderPath.appending(stagingPath, name) }

    /// A subfolder, created if needed; its files are committed with the folder's.
    public func subdirectory(_ name: String) throws -> OutputDirectory {
        let staged = file(name)
        do {
            try FileManager.default.createDirectory(atPath: staged, withIntermediateDirectories: true)
        } catch {
            throw ExperimentError.output(path: FolderPath.appending(path, name), reason: error.localizedDescription)
        }
        return OutputDirectory(path: FolderPath.appending(path, name),
                               target: FolderPath.appending(target, name), stagingPath: staged)
    }

    /// Writes a CSV table with a header row.
    public func writeCSV(_ name: String, header: [String], rows: [[Double]]) throws {
        try CSVFormat.write(header: header, rows: rows, path: file(name))
    }

    /// Writes an `M x D` particle array (or any matrix) as float64 `.npy`.
    ///
    /// - Throws: ``ExperimentError/output(path:reason:)`` when `values` does not hold
    ///   `rows * columns` numbers (an error rather than the array's precondition trap).
    public func writeMatrix(_ name: String, rows: Int, columns: Int, values: [Double]) throws {
        let (cells, overflow) = rows.multipliedReportingOverflow(by: columns)
        guard !overflow, cells == values.count else {
            throw ExperimentError.output(path: FolderPath.appending(path, name),
                                         reason: "\(values.count) values do not form a \(rows) x \(columns) array")
        }
        try NPYFormat.write(NumericArray(rows: rows, columns: columns, values: values), path: file(name))
    }

    /// Writes a JSON document.
    public func writeJSON(_ name: String, _ value: JSONValue) throws {
        try value.write(to: file(name))
    }

    /// Writes a run's summary (`summary.json`, or a record such as `grid.json`), encoded as ``RunSummary`` describes.
    public func writeSummary(_ summary: some RunSummary, name: String = "summary.json") throws {
        try writeJSON(name, summary.json)
    }

    // MARK: - Staging and commit

    /// Creates the staging folder for the target `path`.
    static func stage(_ path: String) throws -> OutputDirectory {
        guard !path.isEmpty else { throw ExperimentError.output(path: path, reason: "empty path") }
        let fm = FileManager.default
        var target = FolderPath.normalized(path)
        var isDirectory: ObjCBool = false
        let parent: String
        if fm.fileExists(atPath: target, isDirectory: &isDirectory) {
            guard isDirectory.boolValue else { throw ExperimentError.output(path: path, reason: "exists and is not a folder") }
            // Write through a link to a folder, not over the link.
            if let resolved = realpath(target, nil) {
                target = String(cString: resolved)
                free(resolved)
            }
            parent = target
        } else {
            // Stage in the nearest existing ancestor: the target and its missing parents are
            // created there at the commit, by one rename on the same file system.
            var ancestor = FolderPath.parent(target)
            while !fm.fileExists(atPath: ancestor, isDirectory: &isDirectory) {
                // "." and "/" end the walk: only a removed working folder makes "." missing.
                guard ancestor != "." && ancestor != "/" else {
                    throw ExperimentError.output(path: path, reason: "the folder \(ancestor) does not exist")
                }
                ancestor = FolderPath.parent(ancestor)
            }
            guard isDirectory.boolValue else {
                throw ExperimentError.output(path: path, reason: "\(ancestor) exists and is not a folder")
            }
            parent = ancestor
        }
        removeAbandonedStaging(in: parent)
        let name = "\(stagingPrefix)\(getpid())-\(UInt32.random(in: 0 ... UInt32.max))"
        let staging = FolderPath.appending(parent, name)
        guard mkdir(staging, 0o755) == 0 else {
            throw ExperimentError.output(path: path, reason: String(cString: strerror(errno)))
        }
        return OutputDirectory(path: path, target: target, stagingPath: staging)
    }

    /// Removes the staging folders of runs whose process no longer exists (killed runs).
    static func removeAbandonedStaging(in folder: String) {
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: folder) else { return }
        for name in names where name.hasPrefix(stagingPrefix) {
            let rest = name.dropFirst(stagingPrefix.count)
            guard let dash = rest.firstIndex(of: "-"), let pid = pid_t(rest[..<dash]), pid > 0 else { continue }
            if kill(pid, 0) != 0 && errno == ESRCH {
                try? FileManager.default.removeItem(atPath: FolderPath.appending(folder, name))
            }
        }
    }

    /// `error` with the staging folder's path replaced by the target's: a message names the
    /// folder the user asked for (`--out`), never the hidden staging folder.
    func namingTarget(_ error: Error) -> Error {
        func shown(_ text: String) -> String { text.replacingOccurrences(of: stagingPath, with: path) }
        switch error {
        case let e as ExperimentError:
            if case .output(let p, let reason) = e { return ExperimentError.output(path: shown(p), reason: shown(reason)) }
            return e
        case let e as DataFileError:
            if case .unwritable(let p, let reason) = e { return ExperimentError.output(path: shown(p), reason: shown(reason)) }
            return e
        default:
            let text = String(describing: error)
            guard text.contains(stagingPath) else { return error }
            return ExperimentError.output(path: path, reason: shown((error as NSError).localizedDescription))
        }
    }

    /// Removes the staging folder and everything in it.
    func discard() {
        try? FileManager.default.removeItem(atPath: stagingPath)
    }

    /// Moves the staged files into the target, replacing and removing the previous run's files.
    func commit(protecting inputs: [String]) throws {
        let fm = FileManager.default
        let files = try stagedFiles()
        let manifest = "# files written by the wasserstein toolkit; the next run writing here removes them\n"
            + files.map { $0 + "\n" }.joined()
        do {
            try manifest.write(toFile: file(Self.manifestName), atomically: false, encoding: .utf8)
        } catch {
            throw ExperimentError.output(path: path, reason: error.localizedDescription)
        }
        var isDirectory: ObjCBool = false
        guard fm.fileExists(atPath: target, isDirectory: &isDirectory) else {
            // A new folder: create its parents and move the staging folder there in one step.
            let parent = FolderPath.parent(target)
            do {
                try fm.createDirectory(atPath: parent, withIntermediateDirectories: true)
            } catch {
                throw ExperimentError.output(path: path, reason: error.localizedDescription)
            }
            guard rename(stagingPath, target) == 0 else {
                throw ExperimentError.output(path: path, reason: String(cString: strerror(errno)))
            }
            return
        }
        guard isDirectory.boolValue else { throw ExperimentError.output(path: path, reason: "exists and is not a folder") }

        // An existing folder: check everything first, then change it.
        let previous = previousRunFiles()
        let written = Set(files)
        let stale = previous.filter { !written.contains($0) }
        for relative in files + stale + [Self.manifestName] {
            let destination = FolderPath.appending(target, relative)
            guard let id = FileIdentity(path: destination) else { continue }
            for input in inputs {
                if let other = FileIdentity(path: input), id.replaces(other) {
                    throw ExperimentError.outputReplacesInput(input: input, output: path)
                }
            }
        }
        for relative in files {
            let destination = FolderPath.appending(target, relative)
            if fm.fileExists(atPath: destination, isDirectory: &isDirectory), isDirectory.boolValue {
                throw ExperimentError.output(path: destination, reason: "a folder is in the way of the file")
            }
        }
        for relative in stale {
            let destination = FolderPath.appending(target, relative)
            // Only regular files: what the toolkit wrote. A link or folder put there since is the user's.
            var info = stat()
            if lstat(destination, &info) == 0, (info.st_mode & S_IFMT) == S_IFREG {
                unlink(destination)
                removeEmptyFolders(from: FolderPath.parent(relative))
            }
        }
        for relative in files + [Self.manifestName] {
            let source = file(relative)
            let destination = FolderPath.appending(target, relative)
            let folder = FolderPath.parent(destination)
            do {
                try fm.createDirectory(atPath: folder, withIntermediateDirectories: true)
            } catch {
                throw ExperimentError.output(path: folder, reason: error.localizedDescription)
            }
            guard rename(source, destination) == 0 else {
                throw ExperimentError.output(path: destination, reason: String(cString: strerror(errno)))
            }
        }
        discard()
    }

    /// The relative paths of the regular files in the staging folder, sorted.
    func stagedFiles() throws -> [String] {
        guard let enumerator = FileManager.default.enumerator(atPath: stagingPath) else {
            throw ExperimentError.output(path: path, reason: "the staging folder \(stagingPath) disappeared")
        }
        var files = [String]()
        while let relative = enumerator.nextObject() as? String {
            var info = stat()
            if lstat(file(relative), &info) == 0, (info.st_mode & S_IFMT) == S_IFREG, relative != Self.manifestName {
                files.append(relative)
            }
        }
        return files.sorted()
    }

    /// The files listed by the manifest of the previous run, keeping only plain relative paths
    /// inside the folder (a hand-edited manifest cannot point outside it).
    func previousRunFiles() -> [String] {
        let manifest = FolderPath.appending(target, Self.manifestName)
        guard let text = try? String(contentsOfFile: manifest, encoding: .utf8) else { return [] }
        return text.split(whereSeparator: \.isNewline).map(String.init).filter { line in
            guard !line.isEmpty, !line.hasPrefix("#"), !line.hasPrefix("/"), line != Self.manifestName else { return false }
            let parts = line.split(separator: "/", omittingEmptySubsequences: false)
            return !parts.contains { $0.isEmpty || $0 == "." || $0 == ".." || $0.hasPrefix(Self.stagingPrefix) }
        }
    }

    /// Removes `relative` and its parents inside the folder while they are empty.
    private func removeEmptyFolders(from relative: String) {
        var current = relative
        while !current.isEmpty && current != "." && current != "/" {
            guard rmdir(FolderPath.appending(target, current)) == 0 else { return }
            current = FolderPath.parent(current)
        }
    }
}

/// The identity of a directory entry, to tell whether an output would replace an input.
///
/// Outputs are written by renaming a finished file over the destination, which replaces the
/// destination's directory entry and nothing else. That changes what an input path reads when
/// the input is that entry, or a symbolic link leading to it; a hard link or a link in the
/// other direction keeps its content.
public struct FileIdentity: Sendable, Equatable {
    struct Node: Sendable, Equatable {
        var device: UInt64
        var inode: UInt64
    }
    /// The entry itself (not followed).
    let entry: Node
    /// What the entry leads to when links are followed; `nil` for a dangling link.
    let resolved: Node?

    /// The identity of the entry at `path`, or `nil` if there is none.
    public init?(path: String) {
        var info = stat()
        guard lstat(path, &info) == 0 else { return nil }
        entry = Node(device: UInt64(truncatingIfNeeded: info.st_dev), inode: UInt64(truncatingIfNeeded: info.st_ino))
        resolved = stat(path, &info) == 0
            ? Node(device: UInt64(truncatingIfNeeded: info.st_dev), inode: UInt64(truncatingIfNeeded: info.st_ino)) : nil
    }

    /// Whether renaming a file over this entry changes what `input` reads.
    public func replaces(_ input: FileIdentity) -> Bool {
        entry == input.entry || entry == input.resolved
    }

    /// Throws ``ExperimentError/outputReplacesInput(input:output:)`` when writing `output` (by a
    /// rename over it) would replace one of `inputs`.
    public static func refuseReplacing(_ inputs: [String], with output: String) throws {
        guard let destination = FileIdentity(path: output) else { return }
        for input in inputs {
            if let id = FileIdentity(path: input), destination.replaces(id) {
                throw ExperimentError.outputReplacesInput(input: input, output: output)
            }
        }
    }
}
