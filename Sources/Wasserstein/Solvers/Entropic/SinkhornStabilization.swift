#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

// What keeps the kernel iteration of BalancedSinkhornCore meaningful at small eps: absorption of
// large scalings into the log potentials, and the exact log-sum-exp repair of rows and columns
// whose sums leave the safe range (see the notes at the top of SinkhornCore.swift).

extension BalancedSinkhornCore {
    // MARK: Exact fallbacks

    /// Rows whose sum left the safe range get f_i from an exact log-sum-exp (the plain update),
    /// alpha_i = f_i, u_i = 1, and a rebuilt row. Returns the number of rows fixed.
    mutating func repairRows() -> Int {
        var bad = [Int]()
        for i in 0 ..< n where !sinkhornSafeSumRange.contains(r[i]) { bad.append(i) }
        guard !bad.isEmpty else { return 0 }
        stats.logDomainUpdates += bad.count
        // log(b_j v_j) + beta_j / eps, the column part of the exponent.
        let invEps = 1 / eps
        for j in 0 ..< m { scratch[j] = w[j] > 0 ? log(w[j]) + beta[j] * invEps : -Double.infinity }
        let geo = self.geo, scratch = self.scratch, alpha = self.alpha, u = self.u, r = self.r, w = self.w
        let K = self.K, beta = self.beta, m = self.m, eps = self.eps
        bad.withUnsafeBufferPointer { list in
            Parallel.forEachChunk(count: list.count, minimumChunk: Swift.max(1, 2_048 / Swift.max(1, m))) { range in
                for t in range {
                    let i = list[t]
                    alpha[i] = -eps * Self.stabilizedLogSumExp(count: m, logWeights: scratch) { geo.cost(i, $0) * invEps }
                    u[i] = 1
                    geo.kernelRow(i, alpha: alpha[i], beta: beta, invEps: invEps, out: K + i * m, columns: 0 ..< m)
                    r[i] = entropicDot(K + i * m, w, m)
                }
            }
        }
        return bad.count
    }

    /// `log sum_k exp(logWeights[k] - scaledCost(k))` over the `k` with finite `logWeights[k]`,
    /// shifted by its largest term so that nothing overflows: the exact log-domain update of
    /// one potential, shared by the row and column repairs.
    @inline(__always)
    static func stabilizedLogSumExp(count: Int, logWeights: UnsafeMutablePointer<Double>, scaledCost: (Int) -> Double) -> Double {
        var top = -Double.infinity
        for k in 0 ..< count where logWeights[k] > -Double.infinity {
            top = Swift.max(top, logWeights[k] - scaledCost(k))
        }
        var sum = 0.0
        for k in 0 ..< count where logWeights[k] > -Double.infinity {
            sum += exp(logWeights[k] - scaledCost(k) - top)
        }
        return top + log(sum)
    }

    /// The column counterpart of ``repairRows()``, using s and w = a u.
    mutating func repairColumns() -> Int {
        var bad = [Int]()
        for j in 0 ..< m where !sinkhornSafeSumRange.contains(s[j]) { bad.append(j) }
        guard !bad.isEmpty else { return 0 }
        stats.logDomainUpdates += bad.count
        let invEps = 1 / eps
        for i in 0 ..< n { scratch[i] = w[i] > 0 ? log(w[i]) + alpha[i] * invEps : -Double.infinity }
        for j in bad {
            beta[j] = -eps * Self.stabilizedLogSumExp(count: n, logWeights: scratch) { geo.cost($0, j) * invEps }
            v[j] = 1
            rebuildColumn(j)
            var t = 0.0
            for i in 0 ..< n { t += K[i * m + j] * w[i] }
            s[j] = t
        }
        return bad.count
    }

    // MARK: Absorption

    /// Absorbs scalings outside the bound into alpha/beta and rebuilds what changed. The
    /// products r and s are rescaled so that they keep describing the same plan.
    mutating func absorbLargeScalings() {
        var rows = [Int](), columns = [Int]()
        let lo = 1 / sinkhornAbsorptionBound, hi = sinkhornAbsorptionBound
        for i in 0 ..< n where !(u[i] >= lo && u[i] <= hi) { rows.append(i) }
        for j in 0 ..< m where !(v[j] >= lo && v[j] <= hi) { columns.append(j) }
        if rows.isEmpty && columns.isEmpty { return }
        if prefersFullRebuild(rows: rows.count, columns: columns.count) {
            absorbAll()
            buildKernel()
            return
        }
        for i in rows {
            alpha[i] += eps * log(u[i])
            r[i] *= u[i]
            u[i] = 1
        }
        for j in columns {
            beta[j] += eps * log(v[j])
            s[j] *= v[j]
            v[j] = 1
        }
        rebuildKernel(rows: rows, columns: columns)
    }

    /// Rebuilds the listed rows and columns of K from the current alpha and beta (rows over
    /// the cores), after their offsets absorbed a scaling or a potential's drift.
    mutating func rebuildKernel(rows: [Int], columns: [Int]) {
        stats.partialRebuilds += rows.count + columns.count
        let me = self
        rows.withUnsafeBufferPointer { list in
            Parallel.forEachChunk(count: list.count, minimumChunk: Swift.max(1, 4_096 / Swift.max(1, m))) { range in
                for t in range { me.rebuildRow(list[t]) }
            }
        }
        for j in columns { rebuildColumn(j) }
    }

    /// Moves all scalings into the potentials (alpha += eps log u, ...), leaving u = v = 1.
    /// The caller rebuilds the kernel.
    func absorbAll() {
        for i in 0 ..< n {
            alpha[i] += eps * log(u[i])
            r[i] *= u[i]
            u[i] = 1
        }
        for j in 0 ..< m {
            beta[j] += eps * log(v[j])
            s[j] *= v[j]
            v[j] = 1
        }
    }
}
