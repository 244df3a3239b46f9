#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

// The stored kernel K_ij = exp((alpha_i + beta_j - C_ij) / eps) of BalancedSinkhornCore: its
// construction and its products (see the notes at the top of SinkhornCore.swift).

extension BalancedSinkhornCore {
    // MARK: Kernel construction

    /// Recomputes all of K from alpha, beta and eps.
    mutating func buildKernel() {
        stats.kernelBuilds += 1
        let geo = self.geo, K = self.K, alpha = self.alpha, beta = self.beta, m = self.m
        let invEps = 1 / eps
        Parallel.forEachChunk(count: n, minimumChunk: Swift.max(1, 4_096 / Swift.max(1, m))) { range in
            for i in range {
                geo.kernelRow(i, alpha: alpha[i], beta: beta, invEps: invEps, out: K + i * m, columns: 0 ..< m)
            }
        }
    }

    func rebuildRow(_ i: Int) {
        geo.kernelRow(i, alpha: alpha[i], beta: beta, invEps: 1 / eps, out: K + i * m, columns: 0 ..< m)
    }

    func rebuildColumn(_ j: Int) {
        let invEps = 1 / eps, bj = beta[j]
        for i in 0 ..< n {
            K[i * m + j] = entropicExp((alpha[i] + bj - geo.cost(i, j)) * invEps)
        }
    }

    // MARK: Products

    /// out = K x (x indexed by columns, out by rows), rows split over cores.
    func multiplyKernel(_ x: UnsafePointer<Double>, into out: UnsafeMutablePointer<Double>) {
        let K = self.K, m = self.m
        Parallel.forEachChunk(count: n, minimumChunk: rowChunk) { range in
            for i in range { out[i] = entropicDot(K + i * m, x, m) }
        }
    }

    /// out = K^T x (x indexed by rows, out by columns): eight fixed row blocks each
    /// accumulate a partial column sum; the partials are added in block order.
    func multiplyKernelTransposed(_ x: UnsafePointer<Double>, into out: UnsafeMutablePointer<Double>) {
        let K = self.K, m = self.m
        sumRowBlocks(into: out) { rows, acc in
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

    /// out_j = sum_i K_ij^2 x_i (for the diagonal of the Newton Schur complement).
    func multiplySquaredKernelTransposed(_ x: UnsafePointer<Double>, into out: UnsafeMutablePointer<Double>) {
        let K = self.K, m = self.m
        sumRowBlocks(into: out) { rows, acc in
            for i in rows {
                let c = x[i], k = K + i * m
                for j in 0 ..< m { acc[j] += c * k[j] * k[j] }
            }
        }
    }

    /// `out_j = sum over the row blocks of acc_j`, where `accumulate(rows, acc)` adds one block's
    /// rows into its zeroed partial `acc` (length `m`). The blocks are fixed (at most
    /// `sinkhornColumnBlocks`) and their partials are added in block order, so the sums do not
    /// depend on how many cores ran the blocks.
    private func sumRowBlocks(into out: UnsafeMutablePointer<Double>,
                              _ accumulate: @escaping (Range<Int>, UnsafeMutablePointer<Double>) -> Void) {
        let partial = self.partial, m = self.m, n = self.n
        let blocks = Swift.min(sinkhornColumnBlocks, n)
        let rowsPerBlock = (n + blocks - 1) / blocks
        let body: (Range<Int>) -> Void = { range in
            for block in range {
                let acc = partial + block * m
                for j in 0 ..< m { acc[j] = 0 }
                accumulate(Swift.min(n, block * rowsPerBlock) ..< Swift.min(n, (block + 1) * rowsPerBlock), acc)
            }
        }
        if parallelWorthIt {
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

    /// r = K (b v): the row sums of the current plan divided by a_i u_i.
    func computeRowSums() {
        for j in 0 ..< m { w[j] = b[j] * v[j] }
        multiplyKernel(w, into: r)
    }

    /// s = K^T (a u): the column sums of the current plan divided by b_j v_j.
    func computeColumnSums() {
        for i in 0 ..< n { w[i] = a[i] * u[i] }
        multiplyKernelTransposed(w, into: s)
    }
}
