#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The multiscale point-cloud geometry for `D <= 3`: soft-mins over the columns that can carry
/// mass, found level by level in a k-d tree from the current potentials (kernel truncation,
/// Schmitzer 2019), with a bound on everything left out.
///
/// Why: the online geometry evaluates all `n m` pairs per soft-min; at small eps almost all of
/// them contribute nothing. For the rows of one leaf `X` of the row tree, a node `Y` of the column
/// tree is dropped, with every point below it, when
/// `dmin(X, Y)^2 - max_{j in Y} t_j - R_X > k eps`, where `t_j = potential_j + eps log w_j` and
/// `R_X` is an upper bound on the soft-min values of the rows of `X`: every dropped term is then
/// below `exp(-k)` times the row's sum. The kept leaves come out as runs of contiguous columns,
/// gathered once per row leaf and summed row by row with the engine's row machinery
/// (`EngineRows`), so the kept part is computed exactly as the online geometry would.
///
/// The neighbourhoods are chosen afresh at every soft-min, from the potential and the previous
/// soft-min values the driver passes in `out` (the reference `R_X` is their maximum over the leaf
/// plus `eps`); nothing of size `n x m` is stored, and the tree walk costs a small fraction of
/// the pair evaluations. When a row's new value exceeds the reference (the estimate was low, so
/// too much might have been dropped), the leaf is redone with the new value as reference; the
/// first soft-min, without estimates, uses a bound from a walk down the tree
/// (`min_Y dmax(X, Y)^2 - max_Y t`, never below the soft-min).
///
/// Each dropped node `Y` adds `|Y| exp(-(dmin^2 - max t - R_X) / eps)` to a bound on the dropped
/// share of the rows of `X`; `truncationBound(f:g:logA:logB:epsilon:)` (package) turns these into a
/// bound on the L1 distance between the exact marginals of the plan of `(f, g)` and the
/// truncated ones, the a-posteriori check that ``EntropicEngine/solveMultiscale(_:parameters:truncation:progress:)``
/// makes before it accepts a result (and falls back to ``OnlinePointCloudGeometry`` otherwise).
///
/// Cost `|x - y|^2` only (the box bounds are those of the squared distance).
public struct MultiscalePointCloudGeometry: SinkhornGeometry, RawBufferSinkhornGeometry {
    /// `"multiscale"`.
    public var name: String { "multiscale" }
    /// `n`.
    public var sourceCount: Int { sourceTree.count }
    /// `m`.
    public var targetCount: Int { targetTree.count }
    /// The dimension `D`, 1 to 3.
    public var dimension: Int { sourceTree.dimension }
    /// The squared diameter of the clouds' bounding box.
    public let costRange: Double
    /// `k`: terms below `exp(-k)` of their row's sum may be dropped.
    public let truncation: Double
    /// The default `k`: dropped terms below `exp(-32)`, about `1.3e-14`, of their row's sum.
    public static let defaultTruncation = 32.0
    let sourceTree: PointTree
    let targetTree: PointTree
    /// The same clouds without truncation: the plan rows, and the fallback of the engine.
    public let online: OnlinePointCloudGeometry

    /// - Parameters:
    ///   - source: the `n` source points, `D <= 3`.
    ///   - target: the `m` target points, same dimension.
    ///   - truncation: `k >= 1`: terms below `exp(-k)` of their row's sum may be dropped.
    /// - Throws: ``WassersteinError/dimensionMismatch(expected:actual:)`` for clouds of different
    ///   dimensions, ``WassersteinError/unsupported(_:)`` for `D > 3`,
    ///   ``WassersteinError/invalidParameter(name:value:requirement:)`` for `k` below 1 or not
    ///   finite, or costs that overflow.
    public init(source: PointCloud, target: PointCloud, truncation: Double = MultiscalePointCloudGeometry.defaultTruncation) throws {
        guard truncation >= 1, truncation.isFinite else {
            throw WassersteinError.invalidParameter(name: "truncation k", value: truncation,
                                                    requirement: "terms below exp(-k) of a row are dropped: k must be finite and >= 1")
        }
        online = try OnlinePointCloudGeometry(source: source, target: target)
        guard source.dimension <= 3 else {
            throw WassersteinError.unsupported("the multiscale geometry needs dimension <= 3, got \(source.dimension); use the online geometry")
        }
        costRange = online.costRange
        self.truncation = truncation
        sourceTree = PointTree(source)
        // One tree for a cloud against itself (the self terms of the divergence).
        targetTree = source == target ? sourceTree : PointTree(target)
    }

    package func softMin(_ potential: UnsafeBufferPointer<Double>, logWeights: UnsafeBufferPointer<Double>,
                         epsilon: Double, transposed: Bool, into out: UnsafeMutableBufferPointer<Double>) {
        let rows = transposed ? targetTree : sourceTree, columns = transposed ? sourceTree : targetTree
        guard potential.count == columns.count, logWeights.count == columns.count, out.count == rows.count,
              let outStart = out.baseAddress else {
            for i in 0 ..< out.count { out[i] = .nan }
            return
        }
        let t = EngineRows.shifted(potential, logWeights: logWeights, epsilon: epsilon)
        nonisolated(unsafe) let outBase = outStart
        truncatedRows(rows: rows, columns: columns, t: t, estimates: UnsafePointer(outStart), epsilon: epsilon,
                      weighted: false) { i, row, _, _ in outBase[i] = row.value }
    }

    package func transportCost(f: UnsafeBufferPointer<Double>, g: UnsafeBufferPointer<Double>,
                               logA: UnsafeBufferPointer<Double>, logB: UnsafeBufferPointer<Double>,
                               epsilon: Double) -> Double {
        guard f.count == sourceCount, logA.count == sourceCount, g.count == targetCount, logB.count == targetCount,
              let fStart = f.baseAddress else { return .nan }
        let t = EngineRows.shifted(g, logWeights: logB, epsilon: epsilon)
        var rows = [Double](repeating: 0, count: sourceCount)
        rows.withUnsafeMutableBufferPointer { rb in
            nonisolated(unsafe) let rp = rb.baseAddress!
            truncatedRows(rows: sourceTree, columns: targetTree, t: t, estimates: fStart, epsilon: epsilon,
                          weighted: true) { i, row, _, _ in
                // As the online geometry: the shift f_i makes the row's terms the plan entries over a_i.
                if logA[i] > -Double.infinity { rp[i] = exp(logA[i] + (f[i] - row.shift) / epsilon) * row.cost }
            }
        }
        var total = 0.0
        for v in rows { total += v }
        return total
    }

    /// The exact row (all `m` columns), from the online geometry.
    package func planRow(_ i: Int, f: UnsafeBufferPointer<Double>, g: UnsafeBufferPointer<Double>,
                         logA: UnsafeBufferPointer<Double>, logB: UnsafeBufferPointer<Double>,
                         epsilon: Double, into out: UnsafeMutableBufferPointer<Double>) {
        online.planRow(i, f: f, g: g, logA: logA, logB: logB, epsilon: epsilon, into: out)
    }

    /// An upper bound on `|P 1 - P~ 1|_1 + |P^T 1 - P~^T 1|_1`, where `P` is the exact plan of
    /// the potentials `(f, g)` (marginals `a_i exp((f_i - T(g)_i) / eps)`, and the same for the
    /// columns) and `P~` the one the truncated soft-mins give.
    ///
    /// The exact row sum is the kept sum times `1 + D_i / S_i`, and `D_i / S_i` is at most the
    /// row's share of the dropped nodes' bounds (see the type's documentation), so the bound is
    /// `sum_i a_i exp((f_i - T~(g)_i) / eps) rho_i` plus the same over the columns. It costs two
    /// truncated soft-mins. The exact marginal error of `(f, g)` is at most the truncated one
    /// (what the driver reports) plus this bound.
    package func truncationBound(f: UnsafeBufferPointer<Double>, g: UnsafeBufferPointer<Double>,
                                 logA: UnsafeBufferPointer<Double>, logB: UnsafeBufferPointer<Double>,
                                 epsilon: Double) -> Double {
        guard f.count == sourceCount, logA.count == sourceCount, g.count == targetCount, logB.count == targetCount,
              let fStart = f.baseAddress, let gStart = g.baseAddress else { return .nan }
        func side(rows: PointTree, columns: PointTree, own: UnsafePointer<Double>, ownLogWeights: UnsafeBufferPointer<Double>,
                  other: UnsafeBufferPointer<Double>, otherLogWeights: UnsafeBufferPointer<Double>) -> Double {
            let t = EngineRows.shifted(other, logWeights: otherLogWeights, epsilon: epsilon)
            var share = [Double](repeating: 0, count: rows.count)
            share.withUnsafeMutableBufferPointer { sb in
                nonisolated(unsafe) let sp = sb.baseAddress!
                truncatedRows(rows: rows, columns: columns, t: t, estimates: own, epsilon: epsilon, weighted: false) { i, row, rho, _ in
                    let lw = ownLogWeights[i]
                    if lw > -Double.infinity { sp[i] = exp(lw + (own[i] - row.value) / epsilon) * rho }
                }
            }
            var total = 0.0
            for v in share { total += v }
            return total
        }
        let rowsBound = side(rows: sourceTree, columns: targetTree, own: fStart, ownLogWeights: logA, other: g, otherLogWeights: logB)
        let columnsBound = side(rows: targetTree, columns: sourceTree, own: gStart, ownLogWeights: logB, other: f, otherLogWeights: logA)
        let total = rowsBound + columnsBound
        return total.isNaN ? .infinity : total
    }

    /// The truncated rows: for each leaf of `rows`, the kept columns, then each row of the leaf by
    /// `EngineRows.row(count:t:estimate:epsilon:weighted:tile:)` over them. `body(i, row, rho, kept)`
    /// receives row `i` (cloud order), a bound `rho` on the share of its exact sum that was
    /// dropped and the number of columns kept; it is called once per row, from either core. `t`
    /// and `estimates` in cloud order.
    func truncatedRows(rows: PointTree, columns: PointTree, t: [Double], estimates: UnsafePointer<Double>,
                       epsilon: Double, weighted: Bool,
                       body: (Int, (value: Double, mass: Double, cost: Double, shift: Double), Double, Int) -> Void) {
        let m = columns.count, d = rows.dimension
        var tTree = [Double](repeating: 0, count: m)
        for p in 0 ..< m { tTree[p] = t[columns.order[p]] }
        let topT = columns.nodeMaxima(tTree)
        let k = truncation
        // The reference is raised by eps over the estimates: the potentials move a little between
        // iterations, and a reference below a row's value costs a second pass over the leaf.
        let margin = epsilon
        nonisolated(unsafe) let estimate = estimates
        rows.axes.withUnsafeBufferPointer { rowAxes in
            columns.axes.withUnsafeBufferPointer { columnAxes in
                tTree.withUnsafeBufferPointer { tb in
                    nonisolated(unsafe) let ra = rowAxes.baseAddress!, ca = columnAxes.baseAddress!, tp = tb.baseAddress!
                    Parallel.forEachChunk(count: rows.leaves.count, minimumChunk: 8) { range in
                        var scratch = LeafScratch()
                        let buffer = UnsafeMutablePointer<Double>.allocate(capacity: engineTile)
                        defer { buffer.deallocate() }
                        for leaf in rows.leaves[range] {
                            let lo = rows.start[leaf], hi = rows.end[leaf]
                            var reference = -Double.infinity, allFinite = true
                            for p in lo ..< hi {
                                let e = estimate[rows.order[p]]
                                if e.isFinite { reference = Swift.max(reference, e) } else { allFinite = false }
                            }
                            var fromBound = !allFinite

                            if fromBound { reference = Self.upperBound(leaf, rows: rows, columns: columns, topT: topT) }
                            reference += margin
                            var pass = 0
                            while true {
                                pass += 1
                                let share = Self.select(leaf, rows: rows, columns: columns, topT: topT, reference: reference,
                                                        cutoff: k * epsilon, epsilon: epsilon, into: &scratch.runs)
                                scratch.gather(columns: ca, columnCount: m, t: tp, dimension: d)
                                let count = scratch.count
                                var highest = -Double.infinity
                                scratch.results.removeAll(keepingCapacity: true)
                                scratch.axes.withUnsafeBufferPointer { sa in
                                    scratch.t.withUnsafeBufferPointer { st in
                                        let others = sa.baseAddress ?? UnsafePointer(buffer)
                                        let shifted = st.baseAddress ?? UnsafePointer(buffer)
                                        for p in lo ..< hi {
                                            let i = rows.order[p]
                                            let e = estimate[i]
                                            let r = EngineRows.row(count: count, t: shifted, estimate: e.isFinite ? e : reference,
                                                                   epsilon: epsilon, weighted: weighted) { start, len in
                                                OnlinePointCloudGeometry.fillCosts(own: ra, ownCount: rows.count, index: p,
                                                                                   others: others, otherCount: count, start: start,
                                                                                   count: len, dimension: d, power: 2, out: buffer)
                                                return UnsafePointer(buffer)
                                            }
                                            scratch.results.append(r)
                                            highest = r.value.isNaN ? .infinity : Swift.max(highest, r.value)
                                        }
                                    }
                                }
                                // Accept when every value is below the reference (then every dropped
                                // term is below exp(-k) of its row). Otherwise redo with the values
                                // (the kept set only grows, so the new values stay below), or with the
                                // walk's bound when a value is not finite. Three passes at most.
                                if count > 0 && highest <= reference || pass == 3 {
                                    for (offset, r) in scratch.results.enumerated() {
                                        // Exact for a value above the reference too (a forced third pass).
                                        let rho = share == 0 ? 0 : share * exp((r.value - reference) / epsilon)
                                        body(rows.order[lo + offset], r, rho, count)
                                    }
                                    break
                                }
                                if highest.isFinite && count > 0 {
                                    reference = highest + margin
                                } else if !fromBound {
                                    reference = Self.upperBound(leaf, rows: rows, columns: columns, topT: topT) + margin
                                    fromBound = true
                                } else {
                                    reference = .infinity
                                }
                            }
                        }
                    }
                }
            }
        }
    }

    /// The pairs one soft-min evaluates (rows times kept columns), with `estimates` as the values
    /// of the previous soft-min: what the truncation saves against `n m` (tests and benchmarks).
    func evaluatedPairs(_ potential: [Double], logWeights: [Double], epsilon: Double, transposed: Bool,
                        estimates: [Double]) -> Int {
        let rows = transposed ? targetTree : sourceTree, columns = transposed ? sourceTree : targetTree
        guard potential.count == columns.count, logWeights.count == columns.count, estimates.count == rows.count else { return 0 }
        let t = potential.withUnsafeBufferPointer { pb in
            logWeights.withUnsafeBufferPointer { EngineRows.shifted(pb, logWeights: $0, epsilon: epsilon) }
        }
        var kept = [Int](repeating: 0, count: rows.count)
        kept.withUnsafeMutableBufferPointer { kb in
            nonisolated(unsafe) let kp = kb.baseAddress!
            estimates.withUnsafeBufferPointer { eb in
                truncatedRows(rows: rows, columns: columns, t: t, estimates: eb.baseAddress!, epsilon: epsilon,
                              weighted: false) { i, _, _, count in kp[i] = count }
            }
        }
        return kept.reduce(0, +)
    }

    /// Per-thread workspace of ``truncatedRows``: the kept runs and their gathered columns.
    struct LeafScratch {
        var runs: [(start: Int, end: Int)] = []
        var axes: [Double] = []
        var t: [Double] = []
        var results: [(value: Double, mass: Double, cost: Double, shift: Double)] = []
        var count = 0

        /// Copies the kept columns' coordinates (by axis) and shifted potentials into contiguous memory.
        mutating func gather(columns: UnsafePointer<Double>, columnCount: Int, t source: UnsafePointer<Double>, dimension: Int) {
            var total = 0
            for r in runs { total += r.end - r.start }
            count = total
            if axes.count < total * dimension { axes = [Double](repeating: 0, count: total * dimension) }
            if t.count < total { t = [Double](repeating: 0, count: total) }
            axes.withUnsafeMutableBufferPointer { ab in
                t.withUnsafeMutableBufferPointer { tb in
                    var q = 0
                    for r in runs {
                        let len = r.end - r.start
                        for k in 0 ..< dimension {
                            (ab.baseAddress! + k * total + q).update(from: columns + k * columnCount + r.start, count: len)
                        }
                        (tb.baseAddress! + q).update(from: source + r.start, count: len)
                        q += len
                    }
                }
            }
        }
    }

    /// The kept leaves of `columns` for the rows of `leaf` (merged into runs, in order) and the
    /// bound on the dropped share: the sum over dropped nodes of `|Y| exp(-(dmin^2 - max t - reference) / eps)`.
    static func select(_ leaf: Int, rows: PointTree, columns: PointTree, topT: [Double], reference: Double,
                       cutoff: Double, epsilon: Double, into runs: inout [(start: Int, end: Int)]) -> Double {
        runs.removeAll(keepingCapacity: true)
        var share = 0.0
        var stack = [0]
        while let v = stack.popLast() {
            let top = topT[v]
            if top == -Double.infinity { continue }   // only zero weights below: no mass to lose
            let gap = rows.minimumSquaredDistance(leaf, to: columns, v) - top - reference
            if gap > cutoff {
                share += Double(columns.end[v] - columns.start[v]) * exp(-gap / epsilon)
                continue
            }
            if columns.firstChild[v] < 0 {
                if let last = runs.last, last.end == columns.start[v] {
                    runs[runs.count - 1].end = columns.end[v]
                } else {
                    runs.append((columns.start[v], columns.end[v]))
                }
            } else {
                // The second child first, so the first is handled next and the runs come out in order.
                stack.append(columns.secondChild[v])
                stack.append(columns.firstChild[v])
            }
        }
        return share
    }

    /// An upper bound on the soft-min of every row of `leaf`: the soft-min is at most
    /// `C_ij - t_j` for any `j`, and for the point of largest `t` under a node `Y`, at most
    /// `dmax(X, Y)^2 - max_Y t`. Taken along one walk down the tree towards the nodes that look
    /// closest.
    static func upperBound(_ leaf: Int, rows: PointTree, columns: PointTree, topT: [Double]) -> Double {
        var bound = Double.infinity
        var v = 0
        while topT[v] > -Double.infinity {
            bound = Swift.min(bound, rows.maximumSquaredDistance(leaf, to: columns, v) - topT[v])
            let a = columns.firstChild[v]
            if a < 0 { break }
            let b = columns.secondChild[v]
            let ga = rows.minimumSquaredDistance(leaf, to: columns, a) - topT[a]
            let gb = rows.minimumSquaredDistance(leaf, to: columns, b) - topT[b]
            v = ga <= gb ? a : b
        }
        return bound
    }
}
