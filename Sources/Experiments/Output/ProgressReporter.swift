import Foundation

/// A one-line progress display on standard error, shown only when standard error is a terminal
/// (so logs and pipes stay clean), and redrawn at most ten times a second.
public final class ProgressReporter: @unchecked Sendable {
    private let label: String
    private let enabled: Bool
    private var lastDraw: Double = 0
    private var drewSomething = false
    private let lock = NSLock()

    /// - Parameters:
    ///   - label: a short name shown before the fraction.
    ///   - enabled: force on or off; by default on exactly when standard error is a terminal.
    public init(label: String, enabled: Bool? = nil) {
        self.label = label
        self.enabled = enabled ?? (isatty(STDERR_FILENO) != 0)
    }

    /// Whether anything will be shown.
    public var isEnabled: Bool { enabled }

    /// Reports progress `fraction` in [0, 1] with an optional detail such as `t=0.50 risk=0.12`.
    public func update(fraction: Double, detail: String = "") {
        guard enabled else { return }
        lock.lock()
        defer { lock.unlock() }
        let now = Date().timeIntervalSince1970
        guard now - lastDraw >= 0.1 || fraction >= 1 else { return }
        lastDraw = now
        let percent = Int(clampingCount: (fraction * 100).rounded(), limit: 100)
        let line = "\r\(label) \(String(repeating: " ", count: max(0, 3 - String(percent).count)))\(percent)% \(detail)"
        FileHandle.standardError.write(Data((line + "\u{1B}[K").utf8))
        drewSomething = true
    }

    /// A callback for runners, or `nil` when nothing would be shown (so runners skip the work).
    public var callback: (@Sendable (Double, String) -> Void)? {
        guard enabled else { return nil }
        return { [self] fraction, detail in self.update(fraction: fraction, detail: detail) }
    }

    /// Ends the progress line.
    public func finish() {
        guard enabled else { return }
        lock.lock()
        defer { lock.unlock() }
        if drewSomething { FileHandle.standardError.write(Data("\n".utf8)) }
        drewSomething = false
    }
}
