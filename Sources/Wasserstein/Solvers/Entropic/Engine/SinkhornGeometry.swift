import CEntropicKernels
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// What the entropic driver (``EntropicSinkhorn``) may ask of a cost.
///
/// Why a protocol: the driver (epsilon schedule, stopping rule, result) is the same whether the
/// costs are stored (``DenseCostGeometry``), recomputed tile by tile from coordinates
/// (``OnlinePointCloudGeometry``), or, later, given by a separable grid kernel or a truncated
/// multiscale one. The driver talks to a geometry only through the operations below, in the
/// log domain, so that no geometry has to hold an `n x m` array unless it wants to, and no
/// operation under- or overflows for any `epsilon > 0` (OTT-JAX's geometry/solver split).
///
/// Conventions (Docs/Theory.md 2.1, MATH.md): the plan of potentials `(f, g)` is
/// `P_ij = a_i b_j exp((f_i + g_j - C_ij) / eps)`, costs and potentials in cost units.
public protocol SinkhornGeometry: Sendable {
    /// A short name for reports and JSON output (`"dense"`, `"online"`).
    var name: String { get }
    /// `n`, the number of source points (rows of the cost).
    var sourceCount: Int { get }
    /// `m`, the number of target points (columns of the cost).
    var targetCount: Int { get }
    /// An upper bound on `max C - min C` (finite): the first epsilon of a scaling schedule,
    /// and the scale against which the driver checks that `epsilon` is resolvable in Double.
    var costRange: Double { get }

    /// The log-domain soft-min (c-transform) of a potential.
    ///
    /// Rows (`transposed == false`): `out_i = -eps log sum_j exp((potential_j - C_ij) / eps + logWeights_j)`
    /// for `i < n`, with `potential` and `logWeights` of length `m`. Columns (`transposed`):
    /// `out_j = -eps log sum_i exp((potential_i - C_ij) / eps + logWeights_i)` for `j < m`.
    /// A weight of zero (`logWeights = -infinity`) leaves its term out.
    ///
    /// On entry `out` may hold an estimate of the result (the previous iterate): an
    /// implementation may use it to stabilise the sum in one pass and must fall back to an
    /// exact max-shifted sum where the estimate is poor or not finite. The result must not
    /// depend on how the work is split over cores.
    func softMin(_ potential: Span<Double>, logWeights: Span<Double>,
                 epsilon: Double, transposed: Bool, into out: inout MutableSpan<Double>)

    /// `<P, C> = sum_ij P_ij C_ij` for the plan of `(f, g)` with weights `exp(logA)`, `exp(logB)`.
    func transportCost(f: Span<Double>, g: Span<Double>, logA: Span<Double>, logB: Span<Double>,
                       epsilon: Double) -> Double

    /// Row `i` of the plan of `(f, g)`: `out_j = a_i b_j exp((f_i + g_j - C_ij) / eps)`, `m` values.
    func planRow(_ i: Int, f: Span<Double>, g: Span<Double>, logA: Span<Double>, logB: Span<Double>,
                 epsilon: Double, into out: inout MutableSpan<Double>)

    /// Whether ``applyKernel(_:epsilon:transposed:into:)`` is available at this epsilon.
    ///
    /// Kernel mode replaces the log-sum-exp of a soft-min by `K v`, `K_ij = exp(-C_ij / eps)`,
    /// applied to the scalings `v_j = b_j exp((g_j - s) / eps)` (`s` the largest exponent, so
    /// `v <= 1`), and `T(g)_i = -s - eps log (K v)_i`: no exponential per pair, which pays where
    /// `K` has structure (a separable grid kernel is a convolution). The driver
    /// (``EntropicSinkhorn``) uses it only while `K v` stays within the range of doubles and
    /// falls back to ``softMin(_:logWeights:epsilon:transposed:into:)`` otherwise. The default
    /// answers `false`.
    func offersKernelMode(epsilon: Double) -> Bool

    /// `out = K v` (`transposed`: `K^T v`), `K_ij = exp(-C_ij / eps)`, for finite `v >= 0` of the
    /// length of the rows (columns). Called only when ``offersKernelMode(epsilon:)`` is true; the
    /// default fills `out` with NaN.
    func applyKernel(_ v: Span<Double>, epsilon: Double, transposed: Bool, into out: inout MutableSpan<Double>)

    /// A product with the plan of `(f, g)` with weights `exp(logA)`, `exp(logB)`, or with its
    /// entrywise square: rows, `out_i = sum_j P_ij^k x_j` for `i < n` (`x` of length `m`);
    /// transposed, `out_j = sum_i P_ij^k x_i` for `j < m` (`x` of length `n`); `k = 2` when
    /// `squared`, else 1.
    ///
    /// Why: the driver's Newton-CG steps (``EntropicParameters/usesNewtonSteps``) solve the
    /// linearised marginal equations with these products alone, so that no geometry has to form
    /// the plan. The result must not depend on how the work is split over cores. The default
    /// builds the plan row by row with ``SinkhornGeometry/planRow(_:f:g:logA:logB:epsilon:into:)`` on one core;
    /// the point-cloud geometries override it with their tiled row loops.
    func applyPlan(_ x: Span<Double>, f: Span<Double>, g: Span<Double>, logA: Span<Double>, logB: Span<Double>,
                   epsilon: Double, transposed: Bool, squared: Bool, into out: inout MutableSpan<Double>)
}

extension SinkhornGeometry {
    /// No kernel mode: the driver works in the log domain.
    public func offersKernelMode(epsilon: Double) -> Bool { false }

    /// Not available: NaN (see ``SinkhornGeometry/offersKernelMode(epsilon:)``).
    public func applyKernel(_ v: Span<Double>, epsilon: Double, transposed: Bool, into out: inout MutableSpan<Double>) {
        for i in 0 ..< out.count { out[i] = .nan }
    }

    // The raw-buffer forms, for the driver's loops, which hold the storage of their arrays.

    package func softMin(_ potential: UnsafeBufferPointer<Double>, logWeights: UnsafeBufferPointer<Double>,
                         epsilon: Double, transposed: Bool, into out: UnsafeMutableBufferPointer<Double>) {
        var output = MutableSpan(_unsafeElements: out)
        softMin(Span(_unsafeElements: potential), logWeights: Span(_unsafeElements: logWeights),
                epsilon: epsilon, transposed: transposed, into: &output)
    }

    package func transportCost(f: UnsafeBufferPointer<Double>, g: UnsafeBufferPointer<Double>,
                               logA: UnsafeBufferPointer<Double>, logB: UnsafeBufferPointer<Double>,
                               epsilon: Double) -> Double {
        transportCost(f: Span(_unsafeElements: f), g: Span(_unsafeElements: g), logA: Span(_unsafeElements: logA),
                      logB: Span(_unsafeElements: logB), epsilon: epsilon)
    }

    package func planRow(_ i: Int, f: UnsafeBufferPointer<Double>, g: UnsafeBufferPointer<Double>,
                         logA: UnsafeBufferPointer<Double>, logB: UnsafeBufferPointer<Double>,
                         epsilon: Double, into out: UnsafeMutableBufferPointer<Double>) {
        var output = MutableSpan(_unsafeElements: out)
        planRow(i, f: Span(_unsafeElements: f), g: Span(_unsafeElements: g), logA: Span(_unsafeElements: logA),
                logB: Span(_unsafeElements: logB), epsilon: epsilon, into: &output)
    }

    package func applyKernel(_ v: UnsafeBufferPointer<Double>, epsilon: Double, transposed: Bool,
                             into out: UnsafeMutableBufferPointer<Double>) {
        var output = MutableSpan(_unsafeElements: out)
        applyKernel(Span(_unsafeElements: v), epsilon: epsilon, transposed: transposed, into: &output)
    }

    /// Row by row from ``SinkhornGeometry/planRow(_:f:g:logA:logB:epsilon:into:)``, rows in index order.
    public func applyPlan(_ x: Span<Double>, f: Span<Double>, g: Span<Double>, logA: Span<Double>, logB: Span<Double>,
                          epsilon: Double, transposed: Bool, squared: Bool, into out: inout MutableSpan<Double>) {
        let n = sourceCount, m = targetCount
        guard f.count == n, logA.count == n, g.count == m, logB.count == m, x.count == (transposed ? n : m),
              out.count == (transposed ? m : n) else {
            for k in 0 ..< out.count { out[k] = .nan }
            return
        }
        var row = [Double](repeating: 0, count: m)
        if transposed { for j in 0 ..< m { out[j] = 0 } }
        f.withUnsafeBufferPointer { fb in g.withUnsafeBufferPointer { gb in
            logA.withUnsafeBufferPointer { ab in logB.withUnsafeBufferPointer { bb in
                for i in 0 ..< n {
                    row.withUnsafeMutableBufferPointer { rb in
                        planRow(i, f: fb, g: gb, logA: ab, logB: bb, epsilon: epsilon, into: rb)
                    }
                    if transposed {
                        let xi = x[i]
                        for j in 0 ..< m { out[j] += (squared ? row[j] * row[j] : row[j]) * xi }
                    } else {
                        var sum = 0.0
                        for j in 0 ..< m { sum += (squared ? row[j] * row[j] : row[j]) * x[j] }
                        out[i] = sum
                    }
                }
            } }
        } }
    }
}

/// A geometry whose row loops index raw buffers: it gives the operations on the storage, and
/// the ``SinkhornGeometry`` requirements on spans follow from them here, once for every such
/// geometry. Each conformer must implement the first three itself (a missing one would resolve
/// to the raw-buffer form above, which calls back into the span form).
package protocol RawBufferSinkhornGeometry: SinkhornGeometry {
    func softMin(_ potential: UnsafeBufferPointer<Double>, logWeights: UnsafeBufferPointer<Double>,
                 epsilon: Double, transposed: Bool, into out: UnsafeMutableBufferPointer<Double>)
    func transportCost(f: UnsafeBufferPointer<Double>, g: UnsafeBufferPointer<Double>,
                       logA: UnsafeBufferPointer<Double>, logB: UnsafeBufferPointer<Double>,
                       epsilon: Double) -> Double
    func planRow(_ i: Int, f: UnsafeBufferPointer<Double>, g: UnsafeBufferPointer<Double>,
                 logA: UnsafeBufferPointer<Double>, logB: UnsafeBufferPointer<Double>,
                 epsilon: Double, into out: UnsafeMutableBufferPointer<Double>)
    func applyKernel(_ v: UnsafeBufferPointer<Double>, epsilon: Double, transposed: Bool,
                     into out: UnsafeMutableBufferPointer<Double>)
}

extension RawBufferSinkhornGeometry {
    public func softMin(_ potential: Span<Double>, logWeights: Span<Double>,
                        epsilon: Double, transposed: Bool, into out: inout MutableSpan<Double>) {
        potential.withUnsafeBufferPointer { p in
            logWeights.withUnsafeBufferPointer { w in
                out.withUnsafeMutableBufferPointer { o in softMin(p, logWeights: w, epsilon: epsilon, transposed: transposed, into: o) }
            }
        }
    }

    public func transportCost(f: Span<Double>, g: Span<Double>, logA: Span<Double>, logB: Span<Double>,
                              epsilon: Double) -> Double {
        f.withUnsafeBufferPointer { fb in g.withUnsafeBufferPointer { gb in
            logA.withUnsafeBufferPointer { ab in logB.withUnsafeBufferPointer { bb in
                transportCost(f: fb, g: gb, logA: ab, logB: bb, epsilon: epsilon)
            } }
        } }
    }

    public func planRow(_ i: Int, f: Span<Double>, g: Span<Double>, logA: Span<Double>, logB: Span<Double>,
                        epsilon: Double, into out: inout MutableSpan<Double>) {
        f.withUnsafeBufferPointer { fb in g.withUnsafeBufferPointer { gb in
            logA.withUnsafeBufferPointer { ab in logB.withUnsafeBufferPointer { bb in
                out.withUnsafeMutableBufferPointer { o in
                    planRow(i, f: fb, g: gb, logA: ab, logB: bb, epsilon: epsilon, into: o)
                }
            } }
        } }
    }

    public func applyKernel(_ v: Span<Double>, epsilon: Double, transposed: Bool, into out: inout MutableSpan<Double>) {
        v.withUnsafeBufferPointer { vb in
            out.withUnsafeMutableBufferPointer { o in applyKernel(vb, epsilon: epsilon, transposed: transposed, into: o) }
        }
    }

    /// No kernel mode (see ``SinkhornGeometry/offersKernelMode(epsilon:)``): NaN.
    package func applyKernel(_ v: UnsafeBufferPointer<Double>, epsilon: Double, transposed: Bool,
                             into out: UnsafeMutableBufferPointer<Double>) {
        for i in 0 ..< out.count { out[i] = .nan }
    }
}

// MARK: - The row machinery shared by the geometries

/// Columns per tile of the row loops: the tile's costs and exponentials stay in L1 (2 x 2 KB).
@usableFromInline let engineTile = 256

/// Row sums outside this range are recomputed with the exact max shift.
@usableFromInline let engineSafeSum = 1e-200 ... 1e200

/// A source of cost tiles: `fill(row, start, count, buffer)` returns a pointer to the costs
/// `C(row, start ..< start + count)` (in the geometry's current direction), either into
/// `buffer` or straight into stored memory.
@usableFromInline
internal struct EngineRows {
    /// Sum of `exp((t_j - c_j + shift) * invEps)` over one tile, and optionally of the
    /// same terms times `c_j`, in four partial sums in a fixed order (deterministic).
    ///
    /// The loop is `ck_exp_tile_sum` of the C target `CEntropicKernels`: AVX2 where the
    /// processor has it (about twice the exponentials per second of the SSE2 loop the default
    /// x86-64 target allows Swift), the portable loop otherwise; both are `entropicExp` with the
    /// same operations and partial sums, so the answer is the same bits on every machine.
    @inline(__always)
    static func tileSums(costs c: UnsafePointer<Double>, shifted t: UnsafePointer<Double>, count: Int,
                         shift: Double, invEps: Double, weighted: Bool) -> (mass: Double, cost: Double) {
        var cost = 0.0
        let mass = ck_exp_tile_sum(c, t, count, shift, invEps, weighted ? 1 : 0, &cost)
        return (mass, weighted ? cost : 0)
    }

    /// `max_j (t_j - c_j)` over one tile (`-infinity` when every `t_j` is `-infinity`).
    @inline(__always)
    static func tileMax(costs c: UnsafePointer<Double>, shifted t: UnsafePointer<Double>, count: Int) -> Double {
        var top = -Double.infinity
        for j in 0 ..< count {
            let v = t[j] - c[j]
            top = v > top ? v : top
        }
        return top
    }

    /// For one row: `log sum_j exp((t_j - c_j) / eps)` times `-eps`, with `t_j = potential_j +
    /// eps log w_j` already formed, and (when `weighted`) `sum_j exp((t_j - c_j + shift) / eps) c_j`
    /// with the shift used. Tries `estimate` as the shift first (one pass), and falls back to
    /// the exact maximum (two passes) when the estimate is not finite or the sum leaves
    /// ``engineSafeSum``. Returns `(value, mass, weightedCost, shift)` so that callers can form
    /// `exp(-shift / eps) * mass = sum_j exp((t_j - c_j) / eps)` without overflow where possible.
    @inline(__always)
    static func row(count: Int, t: UnsafePointer<Double>, estimate: Double, epsilon: Double, weighted: Bool,
                    tile: (Int, Int) -> UnsafePointer<Double>)
        -> (value: Double, mass: Double, cost: Double, shift: Double) {
        let invEps = 1 / epsilon
        if estimate.isFinite {
            var mass = 0.0, cost = 0.0
            var start = 0
            while start < count {
                let len = Swift.min(engineTile, count - start)
                let c = tile(start, len)
                let s = tileSums(costs: c, shifted: t + start, count: len, shift: estimate, invEps: invEps,
                                 weighted: weighted)
                mass += s.mass
                cost += s.cost
                start += len
            }
            if engineSafeSum.contains(mass) {
                return (estimate - epsilon * log(mass), mass, cost, estimate)
            }
        }
        var top = -Double.infinity
        var start = 0
        while start < count {
            let len = Swift.min(engineTile, count - start)
            top = Swift.max(top, tileMax(costs: tile(start, len), shifted: t + start, count: len))
            start += len
        }
        // top is -infinity only when every weight is zero, which the driver rules out.
        guard top.isFinite else { return (Double.infinity, 0, 0, -top) }
        var mass = 0.0, cost = 0.0
        start = 0
        while start < count {
            let len = Swift.min(engineTile, count - start)
            let s = tileSums(costs: tile(start, len), shifted: t + start, count: len, shift: -top, invEps: invEps,
                             weighted: weighted)
            mass += s.mass
            cost += s.cost
            start += len
        }
        // The largest term is exactly 1, so mass >= 1 and the log is finite.
        return (-top - epsilon * log(mass), mass, cost, -top)
    }

    /// `t_j = potential_j + eps * logWeights_j` (`-infinity` for zero weights).
    static func shifted(_ potential: UnsafeBufferPointer<Double>, logWeights: UnsafeBufferPointer<Double>,
                        epsilon: Double) -> [Double] {
        var t = [Double](repeating: 0, count: potential.count)
        for j in 0 ..< potential.count {
            let lw = logWeights[j]
            t[j] = lw == -Double.infinity ? -Double.infinity : potential[j] + epsilon * lw
        }
        return t
    }

    /// The smallest number of rows worth a separate task for rows of `inner` entries.
    static func minimumChunk(inner: Int) -> Int { Swift.max(1, 16_384 / Swift.max(1, inner)) }

    /// The shared body of ``SinkhornGeometry/softMin(_:logWeights:epsilon:transposed:into:)``:
    /// rows split over the cores, each row summed by one thread in a fixed order.
    static func softMin(outer: Int, inner: Int, potential: UnsafeBufferPointer<Double>,
                        logWeights: UnsafeBufferPointer<Double>, epsilon: Double,
                        into out: UnsafeMutableBufferPointer<Double>,
                        fill: @escaping (Int, Int, Int, UnsafeMutablePointer<Double>) -> UnsafePointer<Double>) {
        // Buffers of the wrong length are a caller's bug; answer NaN (the driver then reports a
        // solver failure) rather than read or write out of bounds.
        guard let outStart = out.baseAddress else { return }
        guard potential.count == inner, logWeights.count == inner, out.count == outer, inner > 0 else {
            for i in 0 ..< out.count { out[i] = .nan }
            return
        }
        let t = shifted(potential, logWeights: logWeights, epsilon: epsilon)
        nonisolated(unsafe) let outBase = outStart
        t.withUnsafeBufferPointer { tb in
            guard let tStart = tb.baseAddress else { return }
            nonisolated(unsafe) let tp = tStart
            Parallel.forEachChunk(count: outer, minimumChunk: minimumChunk(inner: inner)) { range in
                let buffer = UnsafeMutablePointer<Double>.allocate(capacity: engineTile)
                defer { buffer.deallocate() }
                for i in range {
                    let r = row(count: inner, t: tp, estimate: outBase[i], epsilon: epsilon, weighted: false,
                                tile: { start, len in fill(i, start, len, buffer) })
                    outBase[i] = r.value
                }
            }
        }
    }

    /// The shared body of ``SinkhornGeometry/transportCost(f:g:logA:logB:epsilon:)``: per row
    /// `a_i exp((f_i - shift) / eps) sum_j exp((t_j - C_ij + shift) / eps) C_ij`, rows summed in
    /// index order after the parallel pass (deterministic).
    static func transportCost(outer: Int, inner: Int, f: UnsafeBufferPointer<Double>, g: UnsafeBufferPointer<Double>,
                              logA: UnsafeBufferPointer<Double>, logB: UnsafeBufferPointer<Double>, epsilon: Double,
                              fill: @escaping (Int, Int, Int, UnsafeMutablePointer<Double>) -> UnsafePointer<Double>) -> Double {
        guard f.count == outer, logA.count == outer, g.count == inner, logB.count == inner, outer > 0, inner > 0 else {
            return .nan
        }
        let t = shifted(g, logWeights: logB, epsilon: epsilon)
        var rows = [Double](repeating: 0, count: outer)
        t.withUnsafeBufferPointer { tb in
            rows.withUnsafeMutableBufferPointer { rb in
                guard let tStart = tb.baseAddress, let rStart = rb.baseAddress else { return }
                nonisolated(unsafe) let tp = tStart, rp = rStart
                Parallel.forEachChunk(count: outer, minimumChunk: minimumChunk(inner: inner)) { range in
                    let buffer = UnsafeMutablePointer<Double>.allocate(capacity: engineTile)
                    defer { buffer.deallocate() }
                    for i in range where logA[i] > -Double.infinity {
                        // The shift f_i makes the row's terms the plan entries over a_i.
                        let r = row(count: inner, t: tp, estimate: f[i], epsilon: epsilon, weighted: true,
                                    tile: { start, len in fill(i, start, len, buffer) })
                        rp[i] = exp(logA[i] + (f[i] - r.shift) / epsilon) * r.cost
                    }
                }
            }
        }
        var total = 0.0
        for v in rows { total += v }
        return total
    }

    /// The shared body of ``SinkhornGeometry/applyPlan(_:f:g:logA:logB:epsilon:transposed:squared:into:)``
    /// for geometries with a tile filler in both directions: `own` and `other` are the
    /// potentials and log weights of the output side and of the summed side. Per output
    /// `k`, `sum_l exp(e_kl) x_l` (or `exp(2 e_kl)`), `e_kl = (own_k + eps logW_k + other_l + eps logW_l - C_kl) / eps`,
    /// the exponentials of a tile formed first (a loop that vectorises) and then summed by
    /// ``entropicDot(_:_:_:)``; outputs split over the cores, each summed by one thread in a fixed order.
    static func applyPlan(outer: Int, inner: Int, x: Span<Double>, own: Span<Double>, ownLogWeights: Span<Double>,
                          other: Span<Double>, otherLogWeights: Span<Double>, epsilon: Double, squared: Bool,
                          into out: inout MutableSpan<Double>,
                          fill: @escaping (Int, Int, Int, UnsafeMutablePointer<Double>) -> UnsafePointer<Double>) {
        guard x.count == inner, own.count == outer, ownLogWeights.count == outer, other.count == inner,
              otherLogWeights.count == inner, out.count == outer, inner > 0 else {
            for k in 0 ..< out.count { out[k] = .nan }
            return
        }
        var t = [Double](repeating: 0, count: inner)
        for l in 0 ..< inner {
            let lw = otherLogWeights[l]
            t[l] = lw == -Double.infinity ? -Double.infinity : other[l] + epsilon * lw
        }
        var s = [Double](repeating: 0, count: outer)
        for k in 0 ..< outer {
            let lw = ownLogWeights[k]
            s[k] = lw == -Double.infinity ? -Double.infinity : own[k] + epsilon * lw
        }
        let scale = (squared ? 2 : 1) / epsilon
        x.withUnsafeBufferPointer { xb in t.withUnsafeBufferPointer { tb in s.withUnsafeBufferPointer { sb in
            out.withUnsafeMutableBufferPointer { ob in
                nonisolated(unsafe) let xp = xb.baseAddress!, tp = tb.baseAddress!, sp = sb.baseAddress!, op = ob.baseAddress!
                Parallel.forEachChunk(count: outer, minimumChunk: minimumChunk(inner: inner)) { range in
                    let costs = UnsafeMutablePointer<Double>.allocate(capacity: engineTile)
                    let terms = UnsafeMutablePointer<Double>.allocate(capacity: engineTile)
                    defer { costs.deallocate(); terms.deallocate() }
                    for k in range {
                        let shift = sp[k]
                        guard shift > -Double.infinity else { op[k] = 0; continue }
                        var sum = 0.0
                        var start = 0
                        while start < inner {
                            let len = Swift.min(engineTile, inner - start)
                            let c = fill(k, start, len, costs)
                            let tt = tp + start
                            // exp(-infinity) = 0 for zero weights.
                            for l in 0 ..< len { terms[l] = entropicExp((shift + tt[l] - c[l]) * scale) }
                            sum += entropicDot(terms, xp + start, len)
                            start += len
                        }
                        op[k] = sum
                    }
                }
            }
        } } }
    }

    /// The shared body of ``SinkhornGeometry/planRow(_:f:g:logA:logB:epsilon:into:)``.
    static func planRow(_ i: Int, inner: Int, f: UnsafeBufferPointer<Double>, g: UnsafeBufferPointer<Double>,
                        logA: UnsafeBufferPointer<Double>, logB: UnsafeBufferPointer<Double>, epsilon: Double,
                        into out: UnsafeMutableBufferPointer<Double>,
                        fill: (Int, Int, Int, UnsafeMutablePointer<Double>) -> UnsafePointer<Double>) {
        guard f.count == logA.count, 0 ..< f.count ~= i, g.count == inner, logB.count == inner, out.count == inner else {
            for j in 0 ..< out.count { out[j] = .nan }
            return
        }
        let buffer = UnsafeMutablePointer<Double>.allocate(capacity: engineTile)
        defer { buffer.deallocate() }
        var start = 0
        while start < inner {
            let len = Swift.min(engineTile, inner - start)
            let c = fill(i, start, len, buffer)
            for k in 0 ..< len {
                let j = start + k
                out[j] = exp(logA[i] + logB[j] + (f[i] + g[j] - c[k]) / epsilon)
            }
            start += len
        }
    }
}
