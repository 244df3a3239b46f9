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
        StoredKernel.multiply(K, rows: n, columns: m, x, into: out)
    }

    /// out = K^T x (x indexed by rows, out by columns), in fixed row blocks.
    func multiplyKernelTransposed(_ x: UnsafePointer<Double>, into out: UnsafeMutablePointer<Double>) {
        StoredKernel.multiplyTransposed(K, rows: n, columns: m, x, into: out, partial: partial)
    }

    /// out_j = sum_i K_ij^2 x_i (for the diagonal of the Newton Schur complement).
    func multiplySquaredKernelTransposed(_ x: UnsafePointer<Double>, into out: UnsafeMutablePointer<Double>) {
        StoredKernel.multiplySquaredTransposed(K, rows: n, columns: m, x, into: out, partial: partial)
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
