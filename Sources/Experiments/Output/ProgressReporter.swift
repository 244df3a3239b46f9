import Foundation
import Wasserstein

/// A one-line progress display on standard error, shown only when standard error is a terminal
/// (so logs and pipes stay clean), and redrawn at most ten times a second.
///
/// The line reads `jko  40% 3.2 s, about 4.8 s left  step 4/10 t=0.400 ...`: the time spent and
/// an estimate of the time left, extrapolated from the rate at which the fraction has grown so
/// far (runners report fractions of their work, which need not be spread evenly in time; the
/// estimate follows the clock, not the count of steps).
public final class ProgressReporter: @unchecked Sendable {
    private let label: String
    private let enabled: Bool
    private let start = ContinuousClock.now
    private var lastDraw: Double = -1
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
        let elapsed = (ContinuousClock.now - start).timeInSeconds
        guard elapsed - lastDraw >= 0.1 || fraction >= 1 else { return }
        lastDraw = elapsed
        let line = "\r" + Self.line(label: label, fraction: fraction, elapsed: elapsed, detail: detail)
        FileHandle.standardError.write(Data((line + "\u{1B}[K").utf8))
        drewSomething = true
    }

    /// The text of one progress line: label, percentage, time spent, time left (once the
    /// fraction is large enough for the extrapolation to mean something), detail.
    public static func line(label: String, fraction: Double, elapsed: Double, detail: String) -> String {
        let f = fraction.isFinite ? min(max(fraction, 0), 1) : 0
        let percent = Int(clampingCount: (f * 100).rounded(.down), limit: 100)
        var text = "\(label) \(String(repeating: " ", count: max(0, 3 - String(percent).count)))\(percent)% \(DurationText.coarse(elapsed))"
        if let left = remaining(fraction: f, elapsed: elapsed) {
            text += ", about \(DurationText.coarse(left)) left"
        }
        return detail.isEmpty ? text : text + "  " + detail
    }

    /// The time left, `elapsed (1 - f) / f`, once at least 2% of the work and half a second have
    /// gone by (before that the rate is mostly start-up cost); `nil` otherwise or when done.
    public static func remaining(fraction f: Double, elapsed: Double) -> Double? {
        guard f >= 0.02, f < 1, elapsed >= 0.5 else { return nil }
        return elapsed * (1 - f) / f
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

/// The fraction done of an iterative entropic solve, from the driver's reports
/// (`EntropicProgress` of Wasserstein), for the progress line of a long solve.
///
/// Why this estimate: at the target epsilon the marginal error of Sinkhorn decays
/// log-linearly, `e_k ~ C r^k` (the contraction of the iteration), so the iterations still
/// needed are `log(e_k / e_target) / log(1 / r)`, with `log r` the least-squares slope of
/// `log e` against the iteration over the last ``window`` reports of the target stage. Before
/// the target stage only the stages' count is known (their iterations are fixed), not the
/// length of the target stage: no estimate then.
public struct IterativeSolveEstimate: Sendable {
    /// Reports of the target stage used for the slope.
    public static let window = 20
    private var points: [(iteration: Double, logError: Double)] = []

    /// An estimate with no reports yet.
    public init() {}

    /// Records `progress` and returns the iterations still needed, or `nil` while no estimate
    /// can be made (before the target stage, fewer than three reports of it, an error that does
    /// not decrease). At most the iterations the cap leaves; 0 once the error is at the target.
    public mutating func remainingIterations(after progress: EntropicProgress) -> Double? {
        // A new solve (the self terms of a divergence) starts over.
        if let last = points.last, Double(progress.iteration) <= last.iteration { points.removeAll() }
        guard progress.stage == progress.stageCount - 1 else { points.removeAll(); return nil }
        guard progress.marginalError > 0, progress.marginalError.isFinite, progress.targetError > 0 else { return nil }
        points.append((Double(progress.iteration), log(progress.marginalError)))
        if points.count > Self.window { points.removeFirst(points.count - Self.window) }
        let cap = Double(Swift.max(0, progress.maxIterations - progress.iteration))
        if progress.marginalError <= progress.targetError { return 0 }
        guard points.count >= 3 else { return nil }
        let count = Double(points.count)
        let meanX = points.reduce(0) { $0 + $1.iteration } / count
        let meanY = points.reduce(0) { $0 + $1.logError } / count
        var sxy = 0.0, sxx = 0.0
        for p in points {
            sxy += (p.iteration - meanX) * (p.logError - meanY)
            sxx += (p.iteration - meanX) * (p.iteration - meanX)
        }
        let slope = sxy / sxx
        guard slope < 0, slope.isFinite else { return nil }
        return Swift.min(cap, log(progress.marginalError / progress.targetError) / -slope)
    }

    /// `done / (done + remaining)`, or `nil` without an estimate.
    public mutating func fraction(after progress: EntropicProgress) -> Double? {
        guard let left = remainingIterations(after: progress) else { return nil }
        let done = Double(progress.iteration)
        return done + left > 0 ? done / (done + left) : 1
    }
}

extension ProgressReporter {
    /// An observer of entropic solves for this reporter (`nil` when nothing would be shown): the
    /// line reads `sinkhorn  40% 3.2 s, about 4.8 s left  iteration 120, error 3.1e-06, eps stage 13/13`,
    /// the time left from ``IterativeSolveEstimate`` (the fraction stays at 0, without a time
    /// left, until the estimate exists).
    public func entropicObserver() -> EntropicProgressObserver? {
        guard isEnabled else { return nil }
        let state = EstimateBox()
        return { [self] progress in
            let fraction = state.fraction(after: progress)
            let detail = "iteration \(progress.iteration), error \(String(format: "%.1e", progress.marginalError)), eps stage \(progress.stage + 1)/\(progress.stageCount)"
            update(fraction: fraction ?? 0, detail: detail)
        }
    }
}

/// The estimate behind a lock (observers are `@Sendable`).
private final class EstimateBox: @unchecked Sendable {
    private var estimate = IterativeSolveEstimate()
    private let lock = NSLock()

    func fraction(after progress: EntropicProgress) -> Double? {
        lock.lock()
        defer { lock.unlock() }
        return estimate.fraction(after: progress)
    }
}

/// Durations as people read them: never `0.00 s` for a fast run.
public enum DurationText {
    /// A measured duration, to about three digits: `96 us`, `3.4 ms`, `0.12 s`, `1.10 s`,
    /// `12.3 s`, `2 min 05 s`, `1 h 02 min`.
    public static func precise(_ seconds: Double) -> String {
        guard seconds.isFinite, seconds >= 0 else { return "? s" }
        if seconds < 1e-3 { return String(format: "%.0f us", max(1, (seconds * 1e6).rounded())) }
        if seconds < 0.01 { return String(format: "%.2g ms", seconds * 1e3) }
        if seconds < 10 { return String(format: "%.2f s", seconds) }
        if seconds < 60 { return String(format: "%.1f s", seconds) }
        return coarse(seconds)
    }

    /// An estimate or a running clock, to the second beyond ten seconds: `<0.1 s`, `0.4 s`,
    /// `12 s`, `2 min 05 s`, `1 h 02 min`.
    public static func coarse(_ seconds: Double) -> String {
        guard seconds.isFinite, seconds >= 0 else { return "? s" }
        if seconds < 0.1 { return "<0.1 s" }
        if seconds < 10 { return String(format: "%.1f s", seconds) }
        let whole = Int(clampingCount: seconds.rounded(), limit: 1 << 40)  // no trap for absurd estimates
        if whole < 60 { return "\(whole) s" }
        if whole < 3600 { return String(format: "%d min %02d s", whole / 60, whole % 60) }
        return String(format: "%d h %02d min", whole / 3600, (whole % 3600) / 60)
    }
}
