/// Reusable memory for ``SinkhornSolver`` and ``SinkhornDivergence``.
///
/// A Sinkhorn solve of an `n x m` problem needs one `n x m` matrix (the stabilised kernel) and
/// a few vectors. Solvers called in a loop (a JKO scheme calls one thousands of times) should
/// pass the same workspace every time: its buffers only grow, so after the first call no
/// memory is allocated. The workspace also remembers the over-relaxation factor that worked
/// last time, a good first guess for the next, similar problem.
///
/// A workspace is not thread-safe: use one per thread (it is deliberately not `Sendable`).
///
/// Memory: `8 * (n * m + 8 * max(n, m) + 4 * (n + m))` bytes for the largest problem seen,
/// about 512 MB at `n = m = 8000`. ``releaseMemory()`` gives it back.
public final class SinkhornWorkspace {
    let kernel = GrowableBuffer()
    let alpha = GrowableBuffer()
    let beta = GrowableBuffer()
    let u = GrowableBuffer()
    let v = GrowableBuffer()
    let r = GrowableBuffer()
    let s = GrowableBuffer()
    let w = GrowableBuffer()
    let scratch = GrowableBuffer()
    let partial = GrowableBuffer()
    let newton = GrowableBuffer()

    /// The over-relaxation factor the adaptive rule ended with on the last solve at the target
    /// epsilon; the next warm-started solve starts from it.
    var relaxationHint: Double = 1

    /// Counters of the last solve, for benchmarks and diagnostics.
    public internal(set) var lastStatistics = SinkhornStatistics()

    /// Creates an empty workspace; buffers are allocated on first use.
    public init() {}

    /// The bytes currently held by the buffers.
    public var allocatedBytes: Int {
        [kernel, alpha, beta, u, v, r, s, w, scratch, partial, newton].reduce(0) { $0 + $1.capacity } * MemoryLayout<Double>.stride
    }

    /// Frees all buffers (the next solve allocates again).
    public func releaseMemory() {
        for b in [kernel, alpha, beta, u, v, r, s, w, scratch, partial, newton] { b.release() }
        relaxationHint = 1
    }
}

/// What a Sinkhorn solve did, beyond the result itself.
public struct SinkhornStatistics: Sendable, Equatable {
    /// Full Sinkhorn iterations (one update of each potential), over all epsilon stages.
    public var iterations = 0
    /// Epsilon stages run (1 without epsilon scaling).
    public var stages = 0
    /// Full rebuilds of the `n x m` stabilised kernel (each costs `n * m` exponentials).
    public var kernelBuilds = 0
    /// Single rows or columns of the kernel rebuilt after absorbing a large scaling.
    public var partialRebuilds = 0
    /// Rows or columns whose update fell back to an exact log-sum-exp because the kernel
    /// under- or overflowed for them.
    public var logDomainUpdates = 0
    /// Accepted Newton-CG steps (see `BalancedSinkhornCore.newtonStep`).
    public var newtonSteps = 0
    /// Newton steps tried and rejected (the iteration then continues with scaling updates).
    public var rejectedNewtonSteps = 0
    /// Conjugate-gradient iterations inside accepted Newton steps.
    public var conjugateGradientIterations = 0
    /// The over-relaxation factor in use at the end (1 = plain Sinkhorn).
    public var finalRelaxation = 1.0
    public init() {}
}
