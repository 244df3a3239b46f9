#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Dispatch
import Synchronization
import Wasserstein

/// A second thread that takes a fixed share of every step of a run whose steps are too short
/// (microseconds) for a hand-off to a sleeping thread.
///
/// Waking a parked thread costs tens of microseconds, more than an online SGD step, so between
/// steps the partner spins on one atomic word instead of sleeping. The protocol per step `s`
/// (the word holds `4 s + tag`):
///
/// - the owner publishes the step's inputs, then stores `4 s` (tag 0: posted);
/// - the partner claims the step by a compare-exchange `4 s -> 4 s + 1`, runs `work(share)`,
///   and stores `4 s + 3` (done);
/// - the owner runs its own share, then waits for `4 s + 3`; if the partner has not claimed the
///   step by then (it was descheduled or parked), the owner takes the share back by a
///   compare-exchange `4 s -> 4 s + 2` and runs it itself.
///
/// Exactly one thread runs each share, and which one never changes what it computes, so results
/// do not depend on whether the partner keeps up. A partner idle for ``idleBudget`` (a record
/// of the run, say) parks on a semaphore and is woken by the next post; it never spins without
/// a run in progress. ``stop()`` ends and joins the thread.
///
/// The owner calls ``post()`` and ``finish()`` from one thread only. Acquire/release ordering
/// on the word orders the step's data: the owner's writes before a post are visible to the
/// partner's work, and the partner's writes before `done` are visible to the owner after
/// ``finish()``.
final class StepPartner: @unchecked Sendable {
    /// Spinning without work for this long parks the partner.
    static let idleBudget: Duration = .microseconds(200)
    /// A wait for the partner longer than this counts as a stall (see ``finish()``).
    static let stallLimit: Duration = .microseconds(50)

    /// The cores this process may run on (its CPU affinity, capped by the cores online); a
    /// partner needs at least two.
    static let coresAvailable: Int = {
        min(Parallel.coreCount, allowedCpuCount() ?? Parallel.coreCount)
    }()

    /// The number of CPUs in this process's affinity mask, from the `Cpus_allowed` line of
    /// `/proc/self/status` (a comma-separated hex mask); `nil` where that is not available.
    static func allowedCpuCount() -> Int? {
        #if canImport(Glibc)
        let fd = open("/proc/self/status", O_RDONLY)
        if fd < 0 { return nil }
        defer { close(fd) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n <= 0 { break }
            bytes += chunk[0 ..< n]
        }
        let text = String(decoding: bytes, as: UTF8.self)
        for line in text.split(separator: "\n") where line.hasPrefix("Cpus_allowed:") {
            var count = 0
            for ch in line.dropFirst("Cpus_allowed:".count) {
                if let v = ch.hexDigitValue { count += v.nonzeroBitCount }
            }
            return count > 0 ? count : nil
        }
        #endif
        return nil
    }

    private static let exitValue = -1
    private let storage: UnsafeMutableRawPointer
    /// The step word, alone on its cache line.
    private let word: UnsafeMutablePointer<Atomic<Int>>
    /// 1 while the partner is parked (or about to park), on its own cache line.
    private let parked: UnsafeMutablePointer<Atomic<Int>>
    private let wakeUp = DispatchSemaphore(value: 0)
    private let work: (Range<Int>) -> Void
    private let share: Range<Int>
    private let declineEvery: Int
    private var thread: pthread_t
    private var step = 0
    private var running = false

    /// Starts the partner thread, which will run `work(share)` for each step it claims.
    /// Returns `nil` if the thread cannot be created (the caller then runs serially).
    /// `declineEvery > 0` (tests only) makes the partner leave every `declineEvery`-th step to
    /// the owner.
    init?(share: Range<Int>, declineEvery: Int = 0, work: @escaping (Range<Int>) -> Void) {
        storage = .allocate(byteCount: 192, alignment: 64)
        word = (storage + 64).bindMemory(to: Atomic<Int>.self, capacity: 1)
        word.initialize(to: Atomic(0))
        parked = (storage + 128).bindMemory(to: Atomic<Int>.self, capacity: 1)
        parked.initialize(to: Atomic(0))
        self.work = work
        self.share = share
        self.declineEvery = declineEvery
        thread = pthread_t()
        let context = Unmanaged.passRetained(self).toOpaque()
        let rc = pthread_create(&thread, nil, { raw in
            let partner = Unmanaged<StepPartner>.fromOpaque(raw!).takeRetainedValue()
            partner.loop()
            return nil
        }, context)
        if rc != 0 {
            Unmanaged<StepPartner>.fromOpaque(context).release()
            return nil
        }
        running = true
    }

    deinit {
        word.deinitialize(count: 1)
        parked.deinitialize(count: 1)
        storage.deallocate()
    }

    /// Publishes the next step (everything written before this call is visible to the partner's
    /// work) and wakes the partner if it is parked. Returns true if it was parked (it will then
    /// miss the next few steps, which the owner takes back).
    @discardableResult
    func post() -> Bool {
        step += 1
        word.pointee.store(4 &* step, ordering: .sequentiallyConsistent)
        return wakeIfParked()
    }

    /// Who ran the partner's share of a step.
    enum Outcome {
        /// The partner, without keeping the owner waiting long.
        case partner
        /// The owner, because the partner had not claimed it (descheduled or parked).
        case owner
        /// The partner, but the owner waited more than ``stallLimit`` for it (it was
        /// descheduled in the middle of its share).
        case stalled
    }

    /// Waits until the partner's share of the posted step is done, or runs it here if the
    /// partner has not claimed it.
    @discardableResult
    func finish() -> Outcome {
        let posted = 4 &* step
        var v = word.pointee.load(ordering: .acquiring)
        if v == posted {
            let (stolen, now) = word.pointee.compareExchange(expected: posted, desired: posted | 2,
                                                             ordering: .acquiringAndReleasing)
            if stolen {
                work(share)
                return .owner
            }
            v = now
        }
        var spins = 0
        var since: ContinuousClock.Instant? = nil
        var stalled = false
        while v != posted | 3 {
            spins &+= 1
            if spins & 255 == 0 && !stalled {
                let clock = ContinuousClock()
                if let since {
                    stalled = clock.now - since > Self.stallLimit
                } else {
                    since = clock.now
                }
            }
            v = word.pointee.load(ordering: .acquiring)
        }
        return stalled ? .stalled : .partner
    }

    /// Ends the partner thread and waits for it. Call once, between steps.
    func stop() {
        guard running else { return }
        running = false
        word.pointee.store(Self.exitValue, ordering: .sequentiallyConsistent)
        _ = wakeIfParked()
        pthread_join(thread, nil)
    }

    private func wakeIfParked() -> Bool {
        if parked.pointee.load(ordering: .sequentiallyConsistent) == 1,
           parked.pointee.exchange(0, ordering: .sequentiallyConsistent) == 1 {
            wakeUp.signal()
            return true
        }
        return false
    }

    private func loop() {
        let clock = ContinuousClock()
        var seen = 0        // the last step word acted on
        var idleSince = clock.now
        var spins = 0
        while true {
            let v = word.pointee.load(ordering: .acquiring)
            if v == Self.exitValue { return }
            if v != seen {
                seen = v
                if v & 3 == 0 && (declineEvery == 0 || (v >> 2) % declineEvery != 0) {
                    let (claimed, _) = word.pointee.compareExchange(expected: v, desired: v | 1,
                                                                    ordering: .acquiringAndReleasing)
                    if claimed {
                        work(share)
                        word.pointee.store(v | 3, ordering: .releasing)
                        seen = v | 3
                    }
                }
                idleSince = clock.now
                spins = 0
                continue
            }
            spins &+= 1
            if spins & 1023 == 0 && clock.now - idleSince > Self.idleBudget {
                // Park. Announce it first, then look at the word again: either that look sees a
                // new post, or the owner's post sees the announcement and signals.
                parked.pointee.store(1, ordering: .sequentiallyConsistent)
                if word.pointee.load(ordering: .sequentiallyConsistent) == seen {
                    wakeUp.wait()
                } else if parked.pointee.exchange(0, ordering: .sequentiallyConsistent) == 0 {
                    wakeUp.wait()   // the owner took the flag and signals: consume it
                }
                idleSince = clock.now
                spins = 0
            }
        }
    }
}
