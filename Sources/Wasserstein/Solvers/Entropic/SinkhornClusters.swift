#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

extension BalancedSinkhornCore {
    // MARK: Weakly coupled clusters

    /// The groups of points that the plan couples to the rest only weakly: connected
    /// components (other than the largest) of the graph whose edges are the plan entries
    /// holding at least 1% of their row's or their column's mass, at the current u, v (r and s
    /// up to date). Each has rows I and columns J.
    ///
    /// Why: at small eps an outlier x_i and its image y_j, or a few such points, form a group
    /// joined to the rest by plan entries of relative size delta ~ exp(-gap / eps). Its
    /// imbalance is the eigenvector of an eigenvalue 1 - O(delta) of the Sinkhorn iteration
    /// (measured on 2-D Gaussian clouds at eps = 0.01, n = 500 to 2000: the five slowest modes,
    /// 1 - 1e-9, are each localised on one pair), and even Newton's method needs one step per
    /// factor e of that imbalance, because the plan is exponential in the potentials. The
    /// exact line search of ``shiftClusters(_:)`` removes these modes.
    func findWeakClusters() -> [(rows: [Int], columns: [Int])] {
        let K = self.K, a = self.a, b = self.b, u = self.u, v = self.v, r = self.r, s = self.s, m = self.m
        var edges = [[Int]](repeating: [], count: n)
        edges.withUnsafeMutableBufferPointer { out in
            let base = out.baseAddress!
            Parallel.forEachChunk(count: n, minimumChunk: rowChunk) { range in
                for i in range {
                    let row = K + i * m
                    let rowLimit = 0.01 * r[i], scale = a[i] * u[i]
                    var list = [Int]()
                    for j in 0 ..< m {
                        let k = row[j]
                        if k * b[j] * v[j] >= rowLimit || k * scale >= 0.01 * s[j] { list.append(j) }
                    }
                    (base + i).pointee = list
                }
            }
        }
        // Union-find over rows 0..<n and columns n..<n+m.
        var parent = Array(0 ..< (n + m))
        func root(_ x: Int) -> Int {
            var x = x
            while parent[x] != x {
                parent[x] = parent[parent[x]]
                x = parent[x]
            }
            return x
        }
        for i in 0 ..< n {
            for j in edges[i] {
                let p = root(i), q = root(n + j)
                if p != q { parent[p] = q }
            }
        }
        var groups = [Int: (rows: [Int], columns: [Int])]()
        for i in 0 ..< n where a[i] > 0 { groups[root(i), default: ([], [])].rows.append(i) }
        for j in 0 ..< m where b[j] > 0 { groups[root(n + j), default: ([], [])].columns.append(j) }
        // Ties broken by the root index: Dictionary order varies between processes, and the
        // result must not.
        let largest = groups.max {
            let sizeA = $0.value.rows.count + $0.value.columns.count, sizeB = $1.value.rows.count + $1.value.columns.count
            return sizeA != sizeB ? sizeA < sizeB : $0.key > $1.key
        }?.key
        return groups.filter { $0.key != largest && !$0.value.rows.isEmpty && !$0.value.columns.isEmpty }
            .sorted { $0.key < $1.key }.map { $0.value }
    }

    /// For each cluster (I, J), the exact maximisation of the dual objective along the direction
    /// that raises f on I and lowers g on J by the same amount eps * tau: the plan inside I x J
    /// is unchanged, the mass leaving I (R) is multiplied by X = e^tau and the mass entering J
    /// (S) divided by it, so the optimum solves R X - S / X = sum_I a - sum_J b, a quadratic in
    /// X. It never decreases the dual objective. s is kept up to date; r is not (the caller
    /// recomputes it).
    func shiftClusters(_ clusters: [(rows: [Int], columns: [Int])]) {
        for cluster in clusters {
            // Leaks summed directly over the entries outside the block: as differences of
            // nearly equal masses they would be pure rounding noise for an isolated group.
            var rowMass = 0.0, columnMass = 0.0, leaving = 0.0, entering = 0.0, target = 0.0
            let inRows = Set(cluster.rows), inColumns = Set(cluster.columns)
            for i in cluster.rows {
                let row = K + i * m, scale = a[i] * u[i]
                var total = 0.0, outside = 0.0
                for t in 0 ..< m {
                    let p = row[t] * b[t] * v[t]
                    total += p
                    if !inColumns.contains(t) { outside += p }
                }
                rowMass += scale * total
                leaving += scale * outside
                target += a[i]
            }
            for j in cluster.columns {
                let scale = b[j] * v[j]
                var total = 0.0, outside = 0.0
                for i in 0 ..< n {
                    let p = K[i * m + j] * a[i] * u[i]
                    total += p
                    if !inRows.contains(i) { outside += p }
                }
                columnMass += scale * total
                entering += scale * outside
                target -= b[j]
            }
            let mass = rowMass + columnMass
            // Mass differences at rounding level are no signal.
            if abs(target) < 1e-14 * mass { target = 0 }
            // Only genuinely isolated groups have the slow mode this step is for; shifting a
            // group with a sizeable leak is still an ascent step but fights the scaling
            // iterations (measured: it destabilises over-relaxed Sinkhorn on near-diagonal plans).
            guard leaving + entering <= 1e-3 * mass, leaving > 0 || entering > 0 else { continue }
            // A leak that underflowed to 0 (an outlier whose other plan entries are below
            // 1e-308) is floored at 1e-30 of the group's mass: the shift then pushes the other
            // leak below anything double precision resolves, as the true optimum does.
            let floor = 1e-30 * mass
            let out = Swift.max(leaving, floor), into = Swift.max(entering, floor)
            let root = (target * target + 4 * out * into).squareRoot()
            let factor = target >= 0 ? (target + root) / (2 * out) : 2 * into / (root - target)
            guard factor.isFinite, factor > 0 else { continue }
            let change = Swift.min(Swift.max(factor, 1e-20), 1e20)
            for i in cluster.rows {
                let row = K + i * m
                let delta = a[i] * u[i] * (change - 1)
                for t in 0 ..< m { s[t] += row[t] * delta }
                u[i] *= change
            }
            for j in cluster.columns { v[j] /= change }
        }
    }
}
