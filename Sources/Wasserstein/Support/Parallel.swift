import Dispatch

/// Splitting work over the machine's cores.
///
/// The numeric kernels of the toolkit (cost matrices, Sinkhorn half-steps, mean-field
/// interaction sums) split into independent row blocks. `Parallel` runs such blocks on all
/// active cores through `DispatchQueue.concurrentPerform`, and runs them inline when the work
/// is too small for the hand-off to pay.
public enum Parallel {
    /// The number of cores work is split over (at least 1).
    public static let coreCount: Int = max(1, ProcessInfoShim.activeProcessorCount)

    /// Calls `body` on disjoint ranges covering `0 ..< count`, concurrently when `count` is at
    /// least `2 * minimumChunk`. `body` must only write to memory owned by its range.
    ///
    /// - Parameters:
    ///   - count: the number of items.
    ///   - minimumChunk: the smallest number of items worth a separate task.
    ///   - body: the work for one range of items.
    @inlinable
    public static func forEachChunk(count: Int, minimumChunk: Int = 1, _ body: (Range<Int>) -> Void) {
        guard count > 0 else { return }
        let workers = min(coreCount, count / max(1, minimumChunk))
        if workers <= 1 {
            body(0 ..< count)
            return
        }
        // A few chunks per worker balances uneven rows without much overhead.
        let chunks = workers == 1 ? 1 : workers * 4
        let size = (count + chunks - 1) / chunks
        let actual = (count + size - 1) / size
        // Each chunk touches only its own range, so sharing `body` across threads is safe even
        // though its type cannot say so; this is the one place that vouches for it.
        withoutActuallyEscaping(body) { escapable in
            nonisolated(unsafe) let work = escapable
            DispatchQueue.concurrentPerform(iterations: actual) { c in
                let lo = c * size
                let hi = min(count, lo + size)
                if lo < hi { work(lo ..< hi) }
            }
        }
    }
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// `sysconf`, without importing Foundation into the numeric core.
@usableFromInline
enum ProcessInfoShim {
    @usableFromInline
    static var activeProcessorCount: Int {
        #if canImport(Glibc) || canImport(Darwin)
        let n = sysconf(Int32(_SC_NPROCESSORS_ONLN))
        return n > 0 ? Int(n) : 1
        #else
        return 1
        #endif
    }
}
