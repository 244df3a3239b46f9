#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The dense point-cloud geometry of ``SinkhornSolver``: the stored kernel stabilised by
/// absorption, as a ``SinkhornGeometry`` for the engine's driver (``EntropicSinkhorn``).
///
/// Why: a soft-min in the log domain costs `n m` exponentials; over a stored kernel it is one
/// matrix-vector product (memory-bound, 5-10x cheaper, see the notes at the top of
/// `SinkhornCore.swift`). The kernel is kept with offsets, `K_ij = exp((alpha_i + beta_j - C_ij) / eps)`,
/// and a soft-min of `p` with log weights `lw` is
/// `out_i = alpha_i - eps log sum_j K_ij exp(lw_j + (p_j - beta_j) / eps)`: exact for any
/// offsets. The offsets follow the iterate (absorption, Schmitzer 2019): an offset more than
/// `tau eps` (`e^tau` = ``sinkhornAbsorptionBound``) away from its potential (`beta_j` from
/// `p_j`) or from the previous output (`alpha_i` from `out_i`, the estimate the driver passes in)
/// takes the new value and its row or column of `K` is rebuilt, so the scalings stay within
/// `[e^-tau, e^tau]` and no kernel entry that matters underflows. An output whose sum still
/// leaves ``sinkhornSafeSumRange`` is computed by an exact log-sum-exp (the repair of the
/// balanced core), so nothing reaches NaN or infinity for any `eps > 0`.
///
/// The kernel, offsets and products are those of ``BalancedSinkhornCore`` over the buffers of a
/// ``SinkhornWorkspace`` (one implementation of each). A geometry value borrows the workspace's
/// memory and the clouds' coordinates for one solve: it is built and used inside
/// ``SinkhornWorkspace/solveSymmetric(cloud:epsilon:tolerance:maxIterations:warmStart:)`` and
/// never escapes it, and its soft-mins mutate the stored kernel, so one solve uses it at a time
/// (hence `@unchecked Sendable`).
struct StabilizedKernelGeometry: SinkhornGeometry, RawBufferSinkhornGeometry, @unchecked Sendable {
    /// What changes across soft-mins: the epsilon the kernel belongs to, and the counters.
    final class State {
        var epsilon = Double.nan
        var stats = SinkhornStatistics()
    }

    let geo: EntropicGeometry
    let a: UnsafePointer<Double>
    let b: UnsafePointer<Double>
    let massA: Double
    let massB: Double
    let buffers: SinkhornWorkspace
    let state = State()
    /// Whether source and target are the same cloud: a fresh kernel then starts with
    /// `alpha = beta`, the symmetric optimum's form.
    let sameCloud: Bool
    let costRange: Double

    var name: String { "dense" }
    var sourceCount: Int { geo.n }
    var targetCount: Int { geo.m }

    /// The geometry of the clouds behind `geo` over `buffers` (sized here), weights `a`, `b`.
    init(geo: EntropicGeometry, a: UnsafePointer<Double>, b: UnsafePointer<Double>, massA: Double, massB: Double,
         buffers: SinkhornWorkspace, costRange: Double) {
        self.geo = geo
        self.a = a
        self.b = b
        self.massA = massA
        self.massB = massB
        self.buffers = buffers
        self.costRange = costRange
        sameCloud = geo.x == geo.y && geo.n == geo.m
        let n = geo.n, m = geo.m, big = Swift.max(n, m)
        buffers.kernel.reserve(n * m)
        buffers.alpha.reserve(n); buffers.beta.reserve(m); buffers.u.reserve(n); buffers.v.reserve(m)
        buffers.r.reserve(n); buffers.s.reserve(m); buffers.w.reserve(big); buffers.scratch.reserve(2 * big)
        buffers.partial.reserve(sinkhornColumnBlocks * big)
        buffers.newton.reserve(4 * n + 9 * m)
    }

    /// The balanced core's view of the buffers at `epsilon` (its kernel, offsets and products).
    func core(_ epsilon: Double) -> BalancedSinkhornCore {
        var core = BalancedSinkhornCore(
            geo: geo, a: a, b: b, massA: massA, massB: massB,
            K: buffers.kernel.pointer, alpha: buffers.alpha.pointer, beta: buffers.beta.pointer,
            u: buffers.u.pointer, v: buffers.v.pointer, r: buffers.r.pointer, s: buffers.s.pointer,
            w: buffers.w.pointer, scratch: buffers.scratch.pointer, partial: buffers.partial.pointer,
            newton: buffers.newton.pointer, eps: epsilon)
        core.stats = state.stats
        return core
    }

    func softMin(_ potential: UnsafeBufferPointer<Double>, logWeights: UnsafeBufferPointer<Double>,
                 epsilon: Double, transposed: Bool, into out: UnsafeMutableBufferPointer<Double>) {
        let n = geo.n, m = geo.m
        let outer = transposed ? m : n, inner = transposed ? n : m
        guard potential.count == inner, logWeights.count == inner, out.count == outer,
              let p = potential.baseAddress, let lw = logWeights.baseAddress, let o = out.baseAddress else {
            for l in 0 ..< out.count { out[l] = .nan }
            return
        }
        var core = core(epsilon)
        defer { state.stats = core.stats }
        let outerOffset = transposed ? core.beta : core.alpha, innerOffset = transposed ? core.alpha : core.beta
        let invEps = 1 / epsilon
        let reach = epsilon * log(sinkhornAbsorptionBound)
        if state.epsilon != epsilon {
            // A fresh kernel at this epsilon, centred on the current iterate.
            for k in 0 ..< inner { innerOffset[k] = p[k] }
            for l in 0 ..< outer { outerOffset[l] = o[l].isFinite ? o[l] : (sameCloud ? p[l] : 0) }
            core.buildKernel()
            state.epsilon = epsilon
        } else {
            // Absorption: offsets that drifted out of reach take the current values.
            var drifted = [Int](), moved = [Int]()
            for k in 0 ..< inner where lw[k] > -Double.infinity && !(abs(p[k] - innerOffset[k]) <= reach) {
                innerOffset[k] = p[k]
                drifted.append(k)
            }
            for l in 0 ..< outer where o[l].isFinite && !(abs(o[l] - outerOffset[l]) <= reach) {
                outerOffset[l] = o[l]
                moved.append(l)
            }
            let rows = transposed ? drifted : moved, columns = transposed ? moved : drifted
            if core.prefersFullRebuild(rows: rows.count, columns: columns.count) {
                core.buildKernel()
            } else if !rows.isEmpty || !columns.isEmpty {
                core.rebuildKernel(rows: rows, columns: columns)
            }
        }
        // Scalings x_k = exp(lw_k + (p_k - offset_k) / eps), within e^(+-tau) of the weights;
        // 0 for zero weights (exp(-infinity)).
        let x = core.w, sums = transposed ? core.s : core.r
        for k in 0 ..< inner { x[k] = entropicExp(lw[k] + (p[k] - innerOffset[k]) * invEps) }
        if transposed {
            core.multiplyKernelTransposed(x, into: sums)
        } else {
            core.multiplyKernel(x, into: sums)
        }
        var repairs = [Int]()
        for l in 0 ..< outer {
            if sinkhornSafeSumRange.contains(sums[l]) {
                o[l] = outerOffset[l] - epsilon * log(sums[l])
            } else {
                repairs.append(l)
            }
        }
        guard !repairs.isEmpty else { return }
        // The exact log-sum-exp for the outputs the kernel cannot resolve; their offsets are
        // absorbed at the next call (the output is then far from them).
        core.stats.logDomainUpdates += repairs.count
        let logTerms = core.scratch
        for k in 0 ..< inner { logTerms[k] = lw[k] > -Double.infinity ? lw[k] + p[k] * invEps : -Double.infinity }
        let geo = self.geo
        nonisolated(unsafe) let output = o
        repairs.withUnsafeBufferPointer { list in
            Parallel.forEachChunk(count: list.count, minimumChunk: Swift.max(1, 2_048 / Swift.max(1, inner))) { range in
                for t in range {
                    let l = list[t]
                    output[l] = -epsilon * BalancedSinkhornCore.stabilizedLogSumExp(count: inner, logWeights: logTerms) {
                        (transposed ? geo.cost($0, l) : geo.cost(l, $0)) * invEps
                    }
                }
            }
        }
    }

    /// `<P, C>` by the balanced core's plan evaluation (the weights are the geometry's own).
    func transportCost(f: UnsafeBufferPointer<Double>, g: UnsafeBufferPointer<Double>,
                       logA: UnsafeBufferPointer<Double>, logB: UnsafeBufferPointer<Double>,
                       epsilon: Double) -> Double {
        guard f.count == geo.n, g.count == geo.m, let fp = f.baseAddress, let gp = g.baseAddress else { return .nan }
        return core(epsilon).evaluatePlan(f: fp, g: gp).transport
    }

    func planRow(_ i: Int, f: UnsafeBufferPointer<Double>, g: UnsafeBufferPointer<Double>,
                 logA: UnsafeBufferPointer<Double>, logB: UnsafeBufferPointer<Double>,
                 epsilon: Double, into out: UnsafeMutableBufferPointer<Double>) {
        guard 0 ..< geo.n ~= i, f.count == geo.n, g.count == geo.m, out.count == geo.m,
              let gp = g.baseAddress, let o = out.baseAddress else {
            for j in 0 ..< out.count { out[j] = .nan }
            return
        }
        geo.kernelRow(i, alpha: f[i], beta: gp, invEps: 1 / epsilon, out: o, columns: 0 ..< geo.m)
        for j in 0 ..< geo.m { o[j] *= a[i] * b[j] }
    }
}
