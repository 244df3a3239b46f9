#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A geometry extended by one dummy source (row `n`) and one dummy target (column `m`), for
/// entropic partial transport on the balanced driver.
///
/// The extended cost is `C` between real points, `0` between a dummy and a real point, and
/// `+infinity` between the two dummies: that cell is left out of every sum, so no plan of the
/// extended problem moves mass from dummy to dummy. Why `+infinity` rather than a large
/// finite cost (the exact solver's choice, ``PartialTransport``): an entropic plan is positive
/// on every finite cell, so a finite cost `A` would let `~ exp(-A / eps)` of extra mass through
/// the dummies and the real plan would move slightly more than asked; with the cell left out
/// the real plan moves exactly `m` at the fixed point. The real part is any geometry (dense,
/// online), reached only through its own operations on the first `n` and `m` entries; the
/// dummy row and column cost `O(n + m)` per soft-min.
public struct PartialTransportGeometry<Base: SinkhornGeometry>: SinkhornGeometry, RawBufferSinkhornGeometry {
    /// The geometry between the real points.
    public let base: Base

    /// Wraps `base` (`n x m`) into the `(n + 1) x (m + 1)` partial geometry.
    public init(base: Base) { self.base = base }

    /// The base's name (`"dense"`, `"online"`).
    public var name: String { base.name }
    /// `n + 1`.
    public var sourceCount: Int { base.sourceCount + 1 }
    /// `m + 1`.
    public var targetCount: Int { base.targetCount + 1 }
    /// The base's range: the dummy costs are constants, which change no plan of the real
    /// points (their masses are fixed), so the schedule and resolution of the base apply.
    public var costRange: Double { base.costRange }

    package func softMin(_ potential: UnsafeBufferPointer<Double>, logWeights: UnsafeBufferPointer<Double>,
                         epsilon: Double, transposed: Bool, into out: UnsafeMutableBufferPointer<Double>) {
        let outer = transposed ? base.targetCount : base.sourceCount
        let inner = transposed ? base.sourceCount : base.targetCount
        guard potential.count == inner + 1, logWeights.count == inner + 1, out.count == outer + 1 else {
            for k in 0 ..< out.count { out[k] = .nan }
            return
        }
        let realPotential = UnsafeBufferPointer(rebasing: potential[0 ..< inner])
        let realWeights = UnsafeBufferPointer(rebasing: logWeights[0 ..< inner])
        // The real points: the base soft-min over the real partners, then one more term for the
        // dummy partner at cost 0, `-(p_dummy + eps log w_dummy)`, merged by a two-term soft-min.
        base.softMin(realPotential, logWeights: realWeights, epsilon: epsilon, transposed: transposed,
                     into: UnsafeMutableBufferPointer(rebasing: out[0 ..< outer]))
        let dummyLogWeight = logWeights[inner]
        if dummyLogWeight > -Double.infinity {
            let y = -(potential[inner] + epsilon * dummyLogWeight)
            for k in 0 ..< outer { out[k] = Self.softMin(out[k], y, epsilon) }
        }
        // The dummy: every real partner at cost 0, the other dummy left out.
        out[outer] = Self.softMinOfZeroCosts(realPotential, logWeights: realWeights, epsilon: epsilon)
    }

    /// `-eps log(exp(-x / eps) + exp(-y / eps))`, without overflow.
    @inline(__always)
    static func softMin(_ x: Double, _ y: Double, _ epsilon: Double) -> Double {
        let low = Swift.min(x, y), high = Swift.max(x, y)
        guard high.isFinite else { return low }
        return low - epsilon * log1p(exp((low - high) / epsilon))
    }

    /// `-eps log sum_k exp(p_k / eps + logWeights_k)` (max-shifted; zero weights left out).
    static func softMinOfZeroCosts(_ p: UnsafeBufferPointer<Double>, logWeights: UnsafeBufferPointer<Double>,
                                   epsilon: Double) -> Double {
        var top = -Double.infinity
        for k in 0 ..< p.count where logWeights[k] > -Double.infinity { top = Swift.max(top, p[k] / epsilon + logWeights[k]) }
        guard top.isFinite else { return .infinity }
        var sum = 0.0
        for k in 0 ..< p.count where logWeights[k] > -Double.infinity { sum += exp(p[k] / epsilon + logWeights[k] - top) }
        return -epsilon * (top + log(sum))
    }

    /// `<P, C>` of the real part (the dummy cells cost nothing).
    package func transportCost(f: UnsafeBufferPointer<Double>, g: UnsafeBufferPointer<Double>,
                               logA: UnsafeBufferPointer<Double>, logB: UnsafeBufferPointer<Double>,
                               epsilon: Double) -> Double {
        let n = base.sourceCount, m = base.targetCount
        guard f.count == n + 1, logA.count == n + 1, g.count == m + 1, logB.count == m + 1 else { return .nan }
        return base.transportCost(f: UnsafeBufferPointer(rebasing: f[0 ..< n]), g: UnsafeBufferPointer(rebasing: g[0 ..< m]),
                                  logA: UnsafeBufferPointer(rebasing: logA[0 ..< n]),
                                  logB: UnsafeBufferPointer(rebasing: logB[0 ..< m]), epsilon: epsilon)
    }

    package func planRow(_ i: Int, f: UnsafeBufferPointer<Double>, g: UnsafeBufferPointer<Double>,
                         logA: UnsafeBufferPointer<Double>, logB: UnsafeBufferPointer<Double>,
                         epsilon: Double, into out: UnsafeMutableBufferPointer<Double>) {
        let n = base.sourceCount, m = base.targetCount
        guard f.count == n + 1, logA.count == n + 1, g.count == m + 1, logB.count == m + 1, out.count == m + 1,
              0 ... n ~= i else {
            for k in 0 ..< out.count { out[k] = .nan }
            return
        }
        if i < n {
            base.planRow(i, f: UnsafeBufferPointer(rebasing: f[0 ..< n]), g: UnsafeBufferPointer(rebasing: g[0 ..< m]),
                         logA: UnsafeBufferPointer(rebasing: logA[0 ..< n]), logB: UnsafeBufferPointer(rebasing: logB[0 ..< m]),
                         epsilon: epsilon, into: UnsafeMutableBufferPointer(rebasing: out[0 ..< m]))
            out[m] = exp(logA[i] + logB[m] + (f[i] + g[m]) / epsilon)
        } else {
            for j in 0 ..< m { out[j] = exp(logA[n] + logB[j] + (f[n] + g[j]) / epsilon) }
            out[m] = 0
        }
    }
}

/// The result of an entropic partial transport solve.
public struct EntropicPartialOutput: Sendable {
    /// `<P, C>` of the real plan.
    public var transportCost: Double
    /// `sum P` over the real points, computed from the returned potentials (one soft-min pass):
    /// the requested mass up to the tolerance.
    public var transportedMass: Double
    /// The mass asked for.
    public var requestedMass: Double
    /// The solve of the extended problem: potentials of length `n + 1` and `m + 1` (the dummies
    /// last), iterations, ``EntropicOutput/converged``, and ``EntropicOutput/regularizedCost``,
    /// the value `<P, C> + eps KL(P | a' (x) b')` of the extended problem.
    public var extended: EntropicOutput
    /// Whether the solve met the tolerance.
    public var converged: Bool { extended.converged }
    /// Source potential of the real points (`n` values).
    public var f: [Double] { Array(extended.f.dropLast()) }
    /// Target potential of the real points (`m` values).
    public var g: [Double] { Array(extended.g.dropLast()) }
}

extension EntropicEngine {
    /// Entropic partial transport: move the mass `m <= min(|a|, |b|)` at least regularised cost,
    /// by balanced entropic OT on ``PartialTransportGeometry`` with the dummy masses
    /// `|b| - m` (source) and `|a| - m` (target):
    ///
    ///     min <P', C'> + eps KL(P' | a' (x) b')  over couplings P' of (a', b') with P'_{n m} = 0.
    ///
    /// Its real part `P` satisfies `P 1 <= a`, `P^T 1 <= b`, `sum P = m`; as `eps -> 0` the
    /// value tends to the exact partial cost (``PartialTransport``). It differs from POT's
    /// `entropic_partial_wasserstein` (entropy `sum P log P` on the real part only, solved by
    /// Dykstra's projections in the kernel domain): the same limit, another regulariser, and here
    /// the engine (log domain, or a kernel stabilised by absorption), so no exponential underflows
    /// at small `eps`.
    ///
    /// - Parameters:
    ///   - geometry: the real costs (`n x m`).
    ///   - a: `n` source weights.
    ///   - b: `m` target weights.
    ///   - mass: `m` in `[0, min(|a|, |b|)]` (a relative `1e-9` above the minimum is taken as it).
    ///   - parameters: the engine's parameters (tolerance relative to `|a| + |b| - m`).
    ///   - progress: receives the driver's reports.
    /// - Throws: ``WassersteinError/invalidParameter(name:value:requirement:)`` for a mass out of
    ///   range, the weights' and the driver's errors.
    public static func partial<G: SinkhornGeometry>(_ geometry: G, a: [Double], b: [Double], mass: Double,
                                                    parameters: EntropicParameters,
                                                    progress: EntropicProgressObserver? = nil) throws -> EntropicPartialOutput {
        guard a.count == geometry.sourceCount else { throw WassersteinError.dimensionMismatch(expected: geometry.sourceCount, actual: a.count) }
        guard b.count == geometry.targetCount else { throw WassersteinError.dimensionMismatch(expected: geometry.targetCount, actual: b.count) }
        let ma = try EntropicProblem.checkedMass(a, name: "source weights")
        let mb = try EntropicProblem.checkedMass(b, name: "target weights")
        let limit = Swift.min(ma, mb)
        guard mass.isFinite, mass >= 0, mass <= limit * (1 + PartialTransport.massTolerance) else {
            throw WassersteinError.invalidParameter(name: "partial mass", value: mass,
                                                    requirement: "must be in [0, min(total masses)] = [0, \(limit)]")
        }
        // The plan of mass 0 is empty; the entropic potentials would run to -infinity there.
        guard mass > 0 else {
            throw WassersteinError.invalidParameter(name: "partial mass", value: mass,
                                                    requirement: "must be > 0 for the entropic solver (the plan of mass 0 is empty)")
        }
        let moved = Swift.min(mass, limit)
        let extendedA = a + [Swift.max(0, mb - moved)]
        let extendedB = b + [Swift.max(0, ma - moved)]
        let extended = PartialTransportGeometry(base: geometry)
        var driver = try EntropicSinkhorn(geometry: extended, problem: .balanced(a: extendedA, b: extendedB),
                                          parameters: parameters)
        driver.progress = progress
        let output = try driver.solve()
        // The real mass of the returned plan: sum_i a_i exp((f_i - T(g)_i) / eps), T over the real columns.
        let n = a.count, m = b.count, epsilon = parameters.epsilon
        var rows = output.f
        let realF = Array(output.f[0 ..< n]), realG = Array(output.g[0 ..< m])
        let logB = b.map { $0 > 0 ? log($0) : -Double.infinity }
        rows.removeLast()
        realG.withUnsafeBufferPointer { gb in
            logB.withUnsafeBufferPointer { lb in
                rows.withUnsafeMutableBufferPointer { rb in
                    geometry.softMin(gb, logWeights: lb, epsilon: epsilon, transposed: false, into: rb)
                }
            }
        }
        var transported = 0.0
        for i in 0 ..< n where a[i] > 0 { transported += a[i] * exp((realF[i] - rows[i]) / epsilon) }
        guard transported.isFinite else {
            throw WassersteinError.solverFailure("the entropic partial solve produced a non-finite mass at epsilon \(epsilon)")
        }
        return EntropicPartialOutput(transportCost: output.transportCost, transportedMass: transported,
                                     requestedMass: moved, extended: output)
    }

    /// Entropic partial transport between two point clouds (any masses).
    ///
    /// - Throws: ``WassersteinError/dimensionMismatch(expected:actual:)`` and the errors of
    ///   ``partial(_:a:b:mass:parameters:progress:)``.
    public static func partial<G: SinkhornGeometry>(source: PointCloud, target: PointCloud, mass: Double,
                                                    parameters: EntropicParameters,
                                                    geometry: (PointCloud, PointCloud) throws -> G,
                                                    progress: EntropicProgressObserver? = nil) throws -> EntropicPartialOutput {
        guard source.dimension == target.dimension else {
            throw WassersteinError.dimensionMismatch(expected: source.dimension, actual: target.dimension)
        }
        return try partial(geometry(source, target), a: source.weights, b: target.weights, mass: mass, parameters: parameters,
                           progress: progress)
    }
}
