/// Products with a stored, row-major `rows x columns` kernel on both cores, shared by the
/// balanced core (``BalancedSinkhornCore``) and the stored kernel of ``DenseCostGeometry``.
///
/// Why fixed blocks: `K^T x` sums over rows, so each of at most ``sinkhornColumnBlocks`` fixed
/// row blocks accumulates its own partial column sum and the partials are added in block order;
/// the result then does not depend on how many cores ran the blocks.
enum StoredKernel {
    /// Rows per parallel chunk: about 16k kernel entries, below which threads do not pay.
    static func rowChunk(columns: Int) -> Int { Swift.max(1, 16_384 / Swift.max(1, columns)) }

    /// Whether a product is large enough for the second core.
    static func parallelWorthIt(rows: Int, columns: Int) -> Bool { rows * columns >= 65_536 }

    /// `out = K x` (`x` indexed by columns, `out` by rows), rows split over the cores.
    static func multiply(_ K: UnsafePointer<Double>, rows n: Int, columns m: Int, _ x: UnsafePointer<Double>,
                         into out: UnsafeMutablePointer<Double>) {
        nonisolated(unsafe) let K = K, x = x, out = out
        Parallel.forEachChunk(count: n, minimumChunk: rowChunk(columns: m)) { range in
            for i in range { out[i] = entropicDot(K + i * m, x, m) }
        }
    }

    /// `out = K^T x` (`x` indexed by rows, `out` by columns); `partial` holds
    /// `min(sinkhornColumnBlocks, rows) * columns` values.
    static func multiplyTransposed(_ K: UnsafePointer<Double>, rows n: Int, columns m: Int, _ x: UnsafePointer<Double>,
                                   into out: UnsafeMutablePointer<Double>, partial: UnsafeMutablePointer<Double>) {
        nonisolated(unsafe) let K = K, x = x
        sumRowBlocks(rows: n, columns: m, partial: partial, into: out) { rows, acc in
            var i = rows.lowerBound
            while i + 2 <= rows.upperBound {
                let c0 = x[i], c1 = x[i + 1]
                let k0 = K + i * m, k1 = k0 + m
                for j in 0 ..< m { acc[j] += c0 * k0[j] + c1 * k1[j] }
                i += 2
            }
            if i < rows.upperBound {
                let c0 = x[i], k0 = K + i * m
                for j in 0 ..< m { acc[j] += c0 * k0[j] }
            }
        }
    }

    /// `out_j = sum_i K_ij^2 x_i`.
    static func multiplySquaredTransposed(_ K: UnsafePointer<Double>, rows n: Int, columns m: Int, _ x: UnsafePointer<Double>,
                                          into out: UnsafeMutablePointer<Double>, partial: UnsafeMutablePointer<Double>) {
        nonisolated(unsafe) let K = K, x = x
        sumRowBlocks(rows: n, columns: m, partial: partial, into: out) { rows, acc in
            for i in rows {
                let c = x[i], k = K + i * m
                for j in 0 ..< m { acc[j] += c * k[j] * k[j] }
            }
        }
    }

    /// `out_j = sum over the row blocks of acc_j`, where `accumulate(rows, acc)` adds one block's
    /// rows into its zeroed partial `acc` (length `columns`).
    private static func sumRowBlocks(rows n: Int, columns m: Int, partial: UnsafeMutablePointer<Double>,
                                     into out: UnsafeMutablePointer<Double>,
                                     _ accumulate: @escaping (Range<Int>, UnsafeMutablePointer<Double>) -> Void) {
        let blocks = Swift.min(sinkhornColumnBlocks, n)
        let rowsPerBlock = (n + blocks - 1) / blocks
        nonisolated(unsafe) let partial = partial
        let body: (Range<Int>) -> Void = { range in
            for block in range {
                let acc = partial + block * m
                for j in 0 ..< m { acc[j] = 0 }
                accumulate(Swift.min(n, block * rowsPerBlock) ..< Swift.min(n, (block + 1) * rowsPerBlock), acc)
            }
        }
        if parallelWorthIt(rows: n, columns: m) {
            Parallel.forEachChunk(count: blocks, minimumChunk: 1, body)
        } else {
            body(0 ..< blocks)
        }
        for j in 0 ..< m {
            var t = 0.0
            for block in 0 ..< blocks { t += partial[block * m + j] }
            out[j] = t
        }
    }
}
