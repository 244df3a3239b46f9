/// Exact W2 between measures on the real line, by sorting.
///
/// In one dimension the monotone (quantile) coupling is optimal for the squared cost, so
///
///     W2^2(mu, nu) = M * int_0^1 |F^-1(t) - G^-1(t)|^2 dt,
///
/// with `F`, `G` the normalised cumulative distribution functions and `M` the common mass. The
/// solver sorts both supports and merges the two staircases of cumulative weights: each
/// merged interval `[t_k, t_k+1)` couples one source point with one target point. Unequal
/// sizes, arbitrary (including zero) weights and duplicate points are all handled.
///
/// Work: `O((n + m) log(n + m))` with a comparison sort for small inputs and `O(n + m)` radix
/// sorting for large ones; both sides are sorted concurrently. With uniform weights and no plan
/// requested no index permutation is formed at all.
///
/// The optimal plan (the monotone coupling, at most `n + m - 1` entries) and dual potentials
/// (from the same staircase, which is a dual-feasible basis because the squared cost is a
/// Monge matrix on sorted points) are returned when ``computesPlan`` is true; for very large
/// inputs that plan dominates memory, so turn it off when only the distance is needed.
///
/// - Throws: ``WassersteinError/unsupported(_:)`` when the dimension is not 1.
public struct SortedSolver: TransportSolver, Sendable {
    /// Whether to return the monotone plan and the dual potentials.
    public var computesPlan: Bool

    /// Creates a solver; `computesPlan: false` returns the cost only.
    public init(computesPlan: Bool = true) {
        self.computesPlan = computesPlan
    }

    /// Solves a one-dimensional problem.
    ///
    /// - Throws: ``WassersteinError/unsupported(_:)`` when `problem.dimension != 1`,
    ///   ``WassersteinError/tooLarge(_:)`` beyond `2^32 - 1` points on a side.
    public func solve(_ problem: TransportProblem) throws -> TransportResult {
        guard problem.dimension == 1 else {
            throw WassersteinError.unsupported(
                "the sorted method needs one-dimensional points, got dimension \(problem.dimension); use the exact method")
        }
        let x = problem.source, y = problem.target
        // Sorting carries 32-bit indices.
        guard x.count < Int(UInt32.max), y.count < Int(UInt32.max) else {
            throw WassersteinError.tooLarge("the sorted method handles fewer than 2^32 points per side")
        }
        let result = !computesPlan && Self.isUniform(x.weights) && Self.isUniform(y.weights)
            ? uniformCostOnly(x, y) : general(x, y)
        // Finite coordinates can still have squared differences beyond the Double range.
        guard result.cost.isFinite else {
            throw WassersteinError.invalidParameter(name: "W2^2", value: result.cost,
                                                    requirement: "squared distances must be finite (coordinates too large)")
        }
        return result
    }

    static func isUniform(_ w: [Double]) -> Bool {
        let w0 = w[0]
        for v in w where v != w0 { return false }
        return true
    }

    /// Sorts two arrays on two cores when they are large enough for it to pay.
    private static func sortBoth(_ a: inout [Double], _ b: inout [Double]) {
        a.withUnsafeMutableBufferPointer { ap in
            b.withUnsafeMutableBufferPointer { bp in
                let pa = ap, pb = bp
                Parallel.forEachChunk(count: 2, minimumChunk: ap.count + bp.count > 100_000 ? 1 : 2) { range in
                    for side in range { RadixSort.sort(side == 0 ? pa : pb) }
                }
            }
        }
    }

    private static func sortBoth(_ a: inout [Double], _ ia: inout [UInt32], _ b: inout [Double], _ ib: inout [UInt32]) {
        a.withUnsafeMutableBufferPointer { ap in
            b.withUnsafeMutableBufferPointer { bp in
                ia.withUnsafeMutableBufferPointer { iap in
                    ib.withUnsafeMutableBufferPointer { ibp in
                        let pa = ap, pb = bp, qa = iap, qb = ibp
                        Parallel.forEachChunk(count: 2, minimumChunk: ap.count + bp.count > 100_000 ? 1 : 2) { range in
                            for side in range {
                                if side == 0 { RadixSort.sort(pa, carrying: qa) } else { RadixSort.sort(pb, carrying: qb) }
                            }
                        }
                    }
                }
            }
        }
    }

    /// Uniform weights, cost only: the cumulative weights are `k / n` and `l / m`, so the merge
    /// runs on exact integers (`k m` against `l n`) and needs no index permutation.
    private func uniformCostOnly(_ x: PointCloud, _ y: PointCloud) -> TransportResult {
        var xs = x.coordinates, ys = y.coordinates
        Self.sortBoth(&xs, &ys)
        let n = xs.count, m = ys.count
        var total = 0.0
        xs.withUnsafeBufferPointer { xp in
            ys.withUnsafeBufferPointer { yp in
                if n == m {
                    var s0 = 0.0, s1 = 0.0
                    var k = 0
                    while k + 1 < n {
                        let d0 = xp[k] - yp[k], d1 = xp[k + 1] - yp[k + 1]
                        s0 += d0 * d0
                        s1 += d1 * d1
                        k += 2
                    }
                    if k < n { let d = xp[k] - yp[k]; s0 += d * d }
                    total = (s0 + s1) / Double(n)
                    return
                }
                // Interval lengths in units of 1 / (n m).
                var i = 0, j = 0, position = 0
                var sum = 0.0
                while i < n && j < m {
                    let endI = (i + 1) * m, endJ = (j + 1) * n
                    let end = min(endI, endJ)
                    let d = xp[i] - yp[j]
                    sum += Double(end - position) * (d * d)
                    position = end
                    if endI == end { i += 1 }
                    if endJ == end { j += 1 }
                }
                total = sum / (Double(n) * Double(m))
            }
        }
        return TransportResult(method: .sorted, status: .optimal, cost: total * x.mass, iterations: 0)
    }

    /// Any weights, optionally with plan and potentials: sort with the permutation, then walk
    /// the staircase of the two normalised cumulative weight sequences.
    private func general(_ x: PointCloud, _ y: PointCloud) -> TransportResult {
        let n = x.count, m = y.count
        var xs = x.coordinates, ys = y.coordinates
        var ix = (0 ..< n).map { UInt32(truncatingIfNeeded: $0) }
        var iy = (0 ..< m).map { UInt32(truncatingIfNeeded: $0) }
        Self.sortBoth(&xs, &ix, &ys, &iy)
        let mass = x.mass
        let inverseX = 1 / x.mass, inverseY = 1 / y.mass
        var entries = [TransportPlan.Entry]()
        var f = [Double](), g = [Double]()
        if computesPlan {
            entries.reserveCapacity(n + m - 1)
            f = [Double](repeating: 0, count: n)
            g = [Double](repeating: 0, count: m)
        }
        var sum = 0.0
        let wantPlan = computesPlan
        xs.withUnsafeBufferPointer { xp in
            ys.withUnsafeBufferPointer { yp in
                x.weights.withUnsafeBufferPointer { wa in
                    y.weights.withUnsafeBufferPointer { wb in
                        // Cumulative weights; the last ones are the full sums, so both reach
                        // exactly 1 after scaling and the staircase ends in the corner.
                        var i = 0, j = 0
                        var cumulativeX = wa[Int(ix[0])], cumulativeY = wb[Int(iy[0])]
                        var endX = cumulativeX * inverseX, endY = cumulativeY * inverseY
                        if i == n - 1 { endX = 1 }
                        if j == m - 1 { endY = 1 }
                        var position = 0.0
                        if wantPlan {
                            f[Int(ix[0])] = 0
                            let d = xp[0] - yp[0]
                            g[Int(iy[0])] = d * d
                        }
                        while true {
                            let end = min(endX, endY)
                            let length = end - position
                            let d = xp[i] - yp[j]
                            if length > 0 {
                                sum += length * (d * d)
                                if wantPlan {
                                    entries.append(TransportPlan.Entry(source: Int(ix[i]), target: Int(iy[j]), mass: length * mass))
                                }
                                position = end
                            }
                            if i == n - 1 && j == m - 1 { break }
                            // North-west corner step: leave the side that is exhausted first
                            // (the source side on ties), never beyond the last point.
                            let advanceX = j == m - 1 || (i < n - 1 && endX <= endY)
                            if advanceX {
                                i += 1
                                cumulativeX += wa[Int(ix[i])]
                                endX = i == n - 1 ? 1 : min(1, cumulativeX * inverseX)
                                if wantPlan {
                                    let e = xp[i] - yp[j]
                                    f[Int(ix[i])] = e * e - g[Int(iy[j])]
                                }
                            } else {
                                j += 1
                                cumulativeY += wb[Int(iy[j])]
                                endY = j == m - 1 ? 1 : min(1, cumulativeY * inverseY)
                                if wantPlan {
                                    let e = xp[i] - yp[j]
                                    g[Int(iy[j])] = e * e - f[Int(ix[i])]
                                }
                            }
                        }
                    }
                }
            }
        }
        if !wantPlan {
            return TransportResult(method: .sorted, status: .optimal, cost: sum * mass, iterations: 0)
        }
        // Mass-weighted cost and the plan's own total, computed from the same entries.
        return TransportResult(method: .sorted, status: .optimal, cost: sum * mass,
                               plan: TransportPlan(sourceCount: n, targetCount: m, entries: entries),
                               potentials: DualPotentials(f: f, g: g), iterations: 0)
    }
}
