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
/// `SinkhornCore.swift`). The soft-min is ``AbsorbingKernelStore/absorbedSoftMin(_:logWeights:transposed:into:fresh:sameCloud:)``
/// (offsets that follow the iterate, exact repair of sums out of range), shared with
/// ``DenseCostGeometry``'s stored kernel.
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
        core.absorbedSoftMin(p, logWeights: lw, transposed: transposed, into: o, fresh: state.epsilon != epsilon,
                             sameCloud: sameCloud)
        state.epsilon = epsilon
        state.stats = core.stats
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
