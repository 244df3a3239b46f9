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
/// requested no index permutation is formed at all, and the values are sorted by a bucket sort
/// that reads the array three times and scatters it once (the radix sort scatters it six times).
///
/// The optimal plan (the monotone coupling, at most `n + m - 1` entries) and dual potentials
/// (from the same staircase, which is a dual-feasible basis because the squared cost is a
/// Monge matrix on sorted points) are returned unless ``planOutput`` is ``PlanOutput/none``; for
/// very large inputs that plan dominates memory, so turn it off when only the distance is needed.
///
/// - Throws: ``WassersteinError/unsupported(_:)`` when the dimension is not 1.
public struct SortedSolver: TransportSolver, Sendable {
    /// Whether to return the monotone plan and the dual potentials (``PlanOutput/none``: the
    /// cost only; ``PlanOutput/sparse(minimumMass:)`` drops the entries below the threshold).
    public var planOutput: PlanOutput

    /// Creates a solver; `planOutput: .none` returns the cost only.
    public init(planOutput: PlanOutput = .full) {
        self.planOutput = planOutput
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
        // The staircase multiplies by 1 / mass, which overflows for subnormal masses (weights
        // of 1e-320): solve at mass one, then scale back.
        if !(1 / x.mass).isFinite || !(1 / y.mass).isFinite {
            let unit = TransportProblem(unchecked: x.normalized(), y.normalized())
            return try solve(unit).scalingMass(by: x.mass)
        }
        if case .sparse(let minimumMass) = planOutput, !(minimumMass >= 0 && minimumMass.isFinite) {
            throw WassersteinError.invalidParameter(name: "plan threshold", value: minimumMass, requirement: "must be finite and >= 0")
        }
        let wantsPlan = planOutput.includesPlan
        let result = !wantsPlan && Self.isUniform(x.weights) && Self.isUniform(y.weights)
            ? uniformCostOnly(x, y) : general(x, y)
        // Finite coordinates can still have squared differences beyond the Double range.
        guard result.cost.isFinite else {
            throw WassersteinError.invalidParameter(name: "W2^2", value: result.cost,
                                                    requirement: "squared distances must be finite (coordinates too large)")
        }
        return result.keepingPlan(planOutput)
    }

    /// A running sum with Neumaier's compensation: error of order eps, independent of the count.
    struct CompensatedSum {
        var sum = 0.0
        var compensation = 0.0
        @inline(__always)
        mutating func add(_ v: Double) {
            let t = sum + v
            compensation += abs(sum) >= abs(v) ? (sum - t) + v : (v - t) + sum
            sum = t
        }
        var value: Double { sum + compensation }
    }

    static func compensatedSum(_ values: [Double]) -> Double {
        var s = CompensatedSum()
        for v in values { s.add(v) }
        return s.value
    }

    static func isUniform(_ w: [Double]) -> Bool {
        let w0 = w[0]
        for v in w where v != w0 { return false }
        return true
    }

    /// Sorts both supports, on two cores when they are large enough for it to pay.
    private static func sortBoth(_ x: [Double], _ y: [Double], withIndices: Bool) -> (SortedKeys, SortedKeys) {
        let slots = UnsafeMutablePointer<SortedKeys?>.allocate(capacity: 2)
        slots.initialize(repeating: nil, count: 2)
        defer {
            slots.deinitialize(count: 2)
            slots.deallocate()
        }
        x.withUnsafeBufferPointer { xp in
            y.withUnsafeBufferPointer { yp in
                // Each task writes only its own slot.
                Parallel.forEachChunk(count: 2, minimumChunk: xp.count + yp.count > 100_000 ? 1 : 2) { range in
                    for side in range {
                        slots[side] = SortedKeys(values: side == 0 ? xp : yp, withIndices: withIndices)
                    }
                }
            }
        }
        return (slots[0]!, slots[1]!)
    }

    /// Sorts the values of both supports (``BucketSort``), on two cores when they are large
    /// enough for it to pay; `body` sees the two sorted buffers.
    private static func withSortedValues<R>(_ x: [Double], _ y: [Double],
                                            _ body: (UnsafePointer<Double>, UnsafePointer<Double>) -> R) -> R {
        let sx = UnsafeMutablePointer<Double>.allocate(capacity: x.count)
        let sy = UnsafeMutablePointer<Double>.allocate(capacity: y.count)
        defer {
            sx.deallocate()
            sy.deallocate()
        }
        x.withUnsafeBufferPointer { xp in
            y.withUnsafeBufferPointer { yp in
                // Each task writes only its own output buffer.
                Parallel.forEachChunk(count: 2, minimumChunk: xp.count + yp.count > 100_000 ? 1 : 2) { range in
                    for side in range {
                        if side == 0 { BucketSort.sort(xp, into: sx) } else { BucketSort.sort(yp, into: sy) }
                    }
                }
            }
        }
        return body(sx, sy)
    }

    /// Uniform weights, cost only: the cumulative weights are `k / n` and `l / m`, so the merge
    /// runs on exact integers (`k m` against `l n`) and needs no index permutation, and the
    /// supports are sorted as plain values.
    private func uniformCostOnly(_ x: PointCloud, _ y: PointCloud) -> TransportResult {
        let n = x.count, m = y.count
        let total = Self.withSortedValues(x.coordinates, y.coordinates) { sx, sy -> Double in
            Self.uniformSortedCost(sx, count: n, sy, count: m)
        }
        // All weights equal w: the mass is n w exactly, where the stored sum of n copies of w
        // carries a relative round-off of up to n eps.
        return TransportResult(method: .sorted, status: .optimal, cost: total * (Double(n) * x.weights[0]), iterations: 0)
    }

    /// `int_0^1 |F^-1(t) - G^-1(t)|^2 dt` for `n` and `m` sorted values with uniform weights
    /// (mass one): the merge of the two staircases, whose steps are `k / n` and `l / m`, on
    /// exact integers (`k m` against `l n`). Shared by the cost-only path and the sliced
    /// distance, which sorts its projections itself.
    static func uniformSortedCost(_ sx: UnsafePointer<Double>, count n: Int, _ sy: UnsafePointer<Double>, count m: Int) -> Double {
        var total = 0.0
        // Blocked summation: partial sums of 4096 terms keep the round-off near
        // (4096 + (n + m) / 4096) eps instead of (n + m) eps.
        var block = 0.0, inBlock = 0
        if n == m {
            for k in 0 ..< n {
                let d = sx[k] - sy[k]
                block += d * d
                inBlock &+= 1
                if inBlock == 4096 { total += block; block = 0; inBlock = 0 }
            }
            return (total + block) / Double(n)
        }
        // Interval lengths in units of 1 / (n m), exact in integers.
        var i = 0, j = 0, position = 0
        while i < n && j < m {
            let endI = (i + 1) * m, endJ = (j + 1) * n
            let end = min(endI, endJ)
            let d = sx[i] - sy[j]
            block += Double(end - position) * (d * d)
            inBlock &+= 1
            if inBlock == 4096 { total += block; block = 0; inBlock = 0 }
            position = end
            if endI == end { i += 1 }
            if endJ == end { j += 1 }
        }
        return (total + block) / (Double(n) * Double(m))
    }

    /// Any weights, optionally with plan and potentials: sort with the permutation, then walk
    /// the staircase of the two normalised cumulative weight sequences (the north-west corner
    /// rule on sorted supports).
    private func general(_ x: PointCloud, _ y: PointCloud) -> TransportResult {
        let n = x.count, m = y.count
        let (sx, sy) = Self.sortBoth(x.coordinates, y.coordinates, withIndices: true)
        let ix = sx.indices!, iy = sy.indices!
        // Compensated totals: a plain running sum of 10^7 weights drifts by ~1e-10 relative,
        // which would show directly in the cost.
        let mass = Self.compensatedSum(x.weights)
        let inverseX = 1 / mass, inverseY = 1 / Self.compensatedSum(y.weights)
        let wantPlan = planOutput.includesPlan
        var entries = [TransportPlan.Entry]()
        var f = [Double](), g = [Double]()
        if wantPlan {
            entries.reserveCapacity(n + m - 1)
            f = [Double](repeating: 0, count: n)
            g = [Double](repeating: 0, count: m)
        }
        let wa = x.weights, wb = y.weights
        // Blocked summation, as in the uniform path.
        var sum = 0.0, block = 0.0, inBlock = 0
        // Cumulative weights; the last ones are pinned to 1, so the staircase ends in the corner.
        var i = 0, j = 0
        // Compensated running sums too: their drift would shift mass onto the extreme points.
        var cumulativeX = CompensatedSum(), cumulativeY = CompensatedSum()
        cumulativeX.add(wa[Int(ix[0])])
        cumulativeY.add(wb[Int(iy[0])])
        var endX = n == 1 ? 1 : min(1, cumulativeX.value * inverseX)
        var endY = m == 1 ? 1 : min(1, cumulativeY.value * inverseY)
        var position = 0.0
        if wantPlan {
            // Potentials along the staircase: f_i + g_j = C_ij on every visited cell.
            let d = sx.value(0) - sy.value(0)
            f[Int(ix[0])] = 0
            g[Int(iy[0])] = d * d
        }
        while true {
            let end = min(endX, endY)
            let length = end - position
            if length > 0 {
                let d = sx.value(i) - sy.value(j)
                block += length * (d * d)
                inBlock &+= 1
                if inBlock == 4096 { sum += block; block = 0; inBlock = 0 }
                if wantPlan {
                    entries.append(TransportPlan.Entry(source: Int(ix[i]), target: Int(iy[j]), mass: length * mass))
                }
                position = end
            }
            if i == n - 1 && j == m - 1 { break }
            // Leave the side that is exhausted first (the source side on ties), never past the end.
            if j == m - 1 || (i < n - 1 && endX <= endY) {
                i += 1
                cumulativeX.add(wa[Int(ix[i])])
                endX = i == n - 1 ? 1 : min(1, cumulativeX.value * inverseX)
                if wantPlan {
                    let e = sx.value(i) - sy.value(j)
                    f[Int(ix[i])] = e * e - g[Int(iy[j])]
                }
            } else {
                j += 1
                cumulativeY.add(wb[Int(iy[j])])
                endY = j == m - 1 ? 1 : min(1, cumulativeY.value * inverseY)
                if wantPlan {
                    let e = sx.value(i) - sy.value(j)
                    g[Int(iy[j])] = e * e - f[Int(ix[i])]
                }
            }
        }
        sum += block
        if !wantPlan {
            return TransportResult(method: .sorted, status: .optimal, cost: sum * mass, iterations: 0)
        }
        return TransportResult(method: .sorted, status: .optimal, cost: sum * mass,
                               plan: TransportPlan(sourceCount: n, targetCount: m, entries: entries),
                               potentials: DualPotentials(f: f, g: g), iterations: 0)
    }
}
