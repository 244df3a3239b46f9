import Dispatch
import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The staging folders of the runs in progress in this process, so that an interrupted run
/// (SIGINT, SIGTERM) can remove its own before the process exits.
///
/// A commit holds the lock while it moves files into place: a signal during the commit waits
/// for it, so the target is either as before or complete, never half moved.
final class StagingRegistry: @unchecked Sendable {
    static let shared = StagingRegistry()
    private let lock = NSLock()
    private var paths = Set<String>()

    func insert(_ path: String) { lock.withLock { _ = paths.insert(path) } }
    func remove(_ path: String) { lock.withLock { _ = paths.remove(path) } }

    /// Runs `body` (a commit) with the registry locked, so no signal handler removes anything
    /// meanwhile.
    func holding<T>(_ body: () throws -> T) rethrows -> T {
        lock.lock()
        defer { lock.unlock() }
        return try body()
    }

    /// Removes every registered staging folder and forgets them. The lock stays taken: the
    /// process exits right after, and no run may start or commit in between.
    func removeAllForExit() {
        lock.lock()
        for path in paths { try? FileManager.default.removeItem(atPath: path) }
        paths.removeAll()
    }
}

/// What a command-line front end installs so that SIGINT and SIGTERM end a run cleanly.
public enum InterruptCleanup {
    /// The signal sources, kept alive for the life of the process (a released source stops).
    private nonisolated(unsafe) static let installation: [any DispatchSourceSignal] = {
        [SIGINT, SIGTERM].map { number in
            // The default action would end the process at once; the source runs the cleanup on
            // a dispatch thread instead, while the run goes on until `exit`.
            signal(number, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: number, queue: .global(qos: .userInitiated))
            source.setEventHandler {
                StagingRegistry.shared.removeAllForExit()
                // The progress line may be half written on a terminal: end it.
                if isatty(STDERR_FILENO) != 0 { FileHandle.standardError.write(Data("\n".utf8)) }
                exit(128 + number)  // 130 for SIGINT, 143 for SIGTERM, as a shell reports them
            }
            source.resume()
            return source
        }
    }()

    /// Removes the staging folders of the runs in progress on SIGINT or SIGTERM, then exits
    /// with status 128 + the signal's number (130, 143). Call once, early, from the command's
    /// entry point; a library never installs it by itself (the signals are the program's).
    public static func install() {
        _ = installation
    }
}
