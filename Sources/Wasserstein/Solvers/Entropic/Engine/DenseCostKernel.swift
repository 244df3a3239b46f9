#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The stored kernel of ``DenseCostGeometry``: `K_ij = exp((alpha_i + beta_j - C_ij) / eps)`
/// over the geometry's stored costs, with offsets that follow the iterate (absorption).
///
/// Why: a log-domain soft-min costs `n m` exponentials; with the kernel stored it is one
/// matrix-vector product, several times cheaper (unbalanced `n = 2000`, `eps = 0.01`: see
/// Benchmarks 8.1). The kernel is built at the first soft-min (`8 n m` bytes) and rebuilt only
/// where an offset is absorbed.
///
/// A geometry value may be shared by solves running at the same time, and the kernel follows
/// one solve's iterate: the first soft-min to take the lock uses the kernel, any other runs in
/// the log domain meanwhile (the same values to rounding), so sharing is safe and never waits.
final class DenseKernelCache: @unchecked Sendable {
    private let mutex: UnsafeMutablePointer<pthread_mutex_t>
    /// The epsilon the kernel belongs to (NaN: none built yet).
    var epsilon = Double.nan
    /// The kernel (`n m`), `alpha` (`n`), `beta` (`m`), scalings, sums and repair terms
    /// (`max(n, m)` each) and the row blocks of `K^T x`, in one allocation made at the first use.
    private var storage: UnsafeMutableBufferPointer<Double>?
    /// Counters for tests: full builds, rows and columns rebuilt, outputs repaired exactly.
    var builds = 0, rebuilds = 0, repairs = 0

    init() {
        mutex = .allocate(capacity: 1)
        mutex.initialize(to: pthread_mutex_t())
        pthread_mutex_init(mutex, nil)
    }

    deinit {
        storage?.deallocate()
        pthread_mutex_destroy(mutex)
        mutex.deinitialize(count: 1)
        mutex.deallocate()
    }

    /// `body()` under the lock, or `nil` at once when another thread holds it.
    func withLockIfAvailable<R>(_ body: () -> R) -> R? {
        guard pthread_mutex_trylock(mutex) == 0 else { return nil }
        defer { pthread_mutex_unlock(mutex) }
        return body()
    }

    /// The store over `costs` (`n x m`, row-major) at `epsilon`; call under the lock. The memory
    /// is left unwritten (plain doubles): the first (fresh) build writes every kernel entry and
    /// offset, the scalings and sums are written before they are read, and the row blocks are
    /// zeroed by each product, so no pass over `8 n m` bytes zeroes it first.
    func store(costs: UnsafePointer<Double>, rows n: Int, columns m: Int, epsilon: Double) -> StoredCostKernel {
        let big = Swift.max(n, m), blocks = Swift.min(sinkhornColumnBlocks, n)
        let count = n * m + n + m + 3 * big + blocks * m
        if storage?.count != count {
            storage?.deallocate()
            storage = UnsafeMutableBufferPointer<Double>.allocate(capacity: count)
        }
        let base = storage!.baseAddress!
        return StoredCostKernel(costs: costs, rowCount: n, columnCount: m, epsilon: epsilon, K: base,
                                rowOffsets: base + n * m, columnOffsets: base + n * m + n, scratch: base + n * m + n + m,
                                partial: base + n * m + n + m + 3 * big)
    }
}

/// A ``DenseKernelCache``'s buffers over a ``DenseCostGeometry``'s costs, for one soft-min.
struct StoredCostKernel: AbsorbingKernelStore {
    /// `C`, row-major.
    let costs: UnsafePointer<Double>
    let rowCount: Int
    let columnCount: Int
    let epsilon: Double
    let K: UnsafeMutablePointer<Double>
    let rowOffsets: UnsafeMutablePointer<Double>
    let columnOffsets: UnsafeMutablePointer<Double>
    let scratch: UnsafeMutablePointer<Double>
    let partial: UnsafeMutablePointer<Double>
    var builds = 0, rebuilds = 0, repairs = 0

    var scalingBuffer: UnsafeMutablePointer<Double> { scratch }
    var sumBuffer: UnsafeMutablePointer<Double> { scratch + Swift.max(rowCount, columnCount) }
    var logTermBuffer: UnsafeMutablePointer<Double> { scratch + 2 * Swift.max(rowCount, columnCount) }

    func cost(_ i: Int, _ j: Int) -> Double { costs[i * columnCount + j] }

    mutating func buildKernel() {
        builds += 1
        let m = columnCount, me = self
        Parallel.forEachChunk(count: rowCount, minimumChunk: Swift.max(1, 4_096 / Swift.max(1, m))) { range in
            for i in range { me.rebuildRow(i) }
        }
    }

    func rebuildRow(_ i: Int) {
        let m = columnCount, invEps = 1 / epsilon, ai = rowOffsets[i]
        let c = costs + i * m, k = K + i * m, beta = columnOffsets
        for j in 0 ..< m { k[j] = entropicExp((ai + beta[j] - c[j]) * invEps) }
    }

    mutating func rebuildKernel(rows: [Int], columns: [Int]) {
        rebuilds += rows.count + columns.count
        let m = columnCount, n = rowCount, me = self
        rows.withUnsafeBufferPointer { list in
            Parallel.forEachChunk(count: list.count, minimumChunk: Swift.max(1, 4_096 / Swift.max(1, m))) { range in
                for t in range { me.rebuildRow(list[t]) }
            }
        }
        // Columns in one pass over the rows (each row's entries for the listed columns).
        guard !columns.isEmpty else { return }
        let invEps = 1 / epsilon, alpha = rowOffsets, beta = columnOffsets, costs = self.costs, K = self.K
        columns.withUnsafeBufferPointer { list in
            nonisolated(unsafe) let list = list
            Parallel.forEachChunk(count: n, minimumChunk: Swift.max(1, 4_096 / Swift.max(1, list.count))) { range in
                for i in range {
                    let ai = alpha[i], c = costs + i * m, k = K + i * m
                    for j in list { k[j] = entropicExp((ai + beta[j] - c[j]) * invEps) }
                }
            }
        }
    }

    func multiplyKernel(_ x: UnsafePointer<Double>, into out: UnsafeMutablePointer<Double>) {
        StoredKernel.multiply(K, rows: rowCount, columns: columnCount, x, into: out)
    }

    func multiplyKernelTransposed(_ x: UnsafePointer<Double>, into out: UnsafeMutablePointer<Double>) {
        StoredKernel.multiplyTransposed(K, rows: rowCount, columns: columnCount, x, into: out, partial: partial)
    }

    mutating func noteRepairs(_ count: Int) { repairs += count }
}
