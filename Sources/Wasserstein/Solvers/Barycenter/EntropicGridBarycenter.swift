#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The result of an ``EntropicGridBarycenter`` solve.
public struct GridBarycenterResult: Sendable {
    /// The barycenter's masses on the grid, row-major (axis 0 slowest): positive, except where
    /// they fall below the smallest double (far from every input at small `eps`). Their sum
    /// is one up to ``marginalError``: the barycenter is the common second marginal of the plans
    /// from the inputs (each at mass one), exact only at the fixed point.
    public let masses: [Double]
    /// Points per axis of the grid.
    public let pointsPerAxis: [Int]
    /// Iterations done (each one update of every scaling).
    public let iterations: Int
    /// True when ``marginalError`` fell to the tolerance before the iteration cap.
    public let converged: Bool
    /// The largest L1 distance between the barycenter and the second marginal of a plan whose
    /// first marginal is its input; for the debiased variant also the L1 residual of the
    /// auxiliary vector's equation `d (K d) = b`, whichever is larger.
    public let marginalError: Double
    /// The weights used.
    public let weights: [Double]
    /// Whether this is the debiased barycenter.
    public let debiased: Bool
    /// Kernel applications done in kernel mode with one shift for the whole grid (convolutions of
    /// scalings).
    public let kernelModeApplications: Int
    /// Kernel applications done in the log domain throughout (``EntropicGridBarycenter/allowsKernelMode`` off).
    public let logDomainApplications: Int
    /// Kernel applications done axis by axis with a shift per grid line, where one shift for the
    /// whole grid left outputs unresolved (each line in kernel mode, or in the log domain where
    /// even its own shift does not resolve it).
    public let lineStabilizedApplications: Int
}

/// The fixed-support entropic W2 barycenter of densities on a regular grid in 1, 2 or 3
/// dimensions: the masses `b` minimising `sum_k w_k OT_eps(a_k, b)` (the plain, biased barycenter
/// of Benamou et al. 2015 and Solomon et al. 2015) or, with ``debiased``, the Sinkhorn-divergence
/// barycenter minimising `sum_k w_k S_eps(a_k, b)`, `S_eps(a, b) = OT_eps(a, b) - (OT_eps(a, a) +
/// OT_eps(b, b)) / 2` (Janati, Cuturi and Gramfort 2020), with `OT_eps` the entropic transport
/// cost of the cost `|x - y|^2` and the grid's Gibbs kernel `K = exp(-C / eps)`.
///
/// Iterative Bregman projections on the scalings `u_k, v_k` of the plans `diag(u_k) K diag(v_k)`:
///
///     u_k = a_k / (K v_k),   b = d * prod_k (K u_k)^(w_k),   v_k = b / (K u_k)
///
/// (`K` is symmetric on a grid). The plain barycenter has `d = 1`. Why `d` for the debiased one:
/// with `g_k = eps log v_k` the potentials of `OT_eps(a_k, b)` on the `b` side and `h = eps log d`
/// the symmetric potential of `OT_eps(b, b)` (`d (K d) = b`), the gradient of the objective in
/// `b` is `sum_k w_k g_k - h` (the self term's gradient is `2 h`, halved). It must be constant on
/// the simplex, and the constant can be absorbed in the potentials (shifting `f_k` up and `g_k`
/// down leaves a plan between equal masses unchanged), so the optimum has `prod_k v_k^(w_k) = d`.
/// With `v_k = b / (K u_k)` and `sum_k w_k = 1` that is `b = d prod_k (K u_k)^(w_k)`, and `d` is
/// advanced by one step of the symmetric fixed point `d <- sqrt(d b / (K d))` per iteration.
/// Non-uniform weights enter only as the exponents of that geometric mean, the same in the log
/// domain and in kernel mode.
///
/// Every kernel application `log(K e^x)` runs in kernel mode (the separable convolution of
/// ``SeparableGridGeometry`` on `e^(x - max x)`) where that resolves every output that matters to
/// full precision, and otherwise axis by axis with a shift per grid line, each line in kernel mode
/// or, where even that does not resolve it, by the geometry's exact log-domain pass; all give the
/// same numbers to rounding, so the answer does not depend on which was used.
///
/// Stops when ``GridBarycenterResult/marginalError`` is at most ``tolerance`` or after
/// ``maximumIterations`` iterations (the result then says it did not converge).
public struct EntropicGridBarycenter: Sendable {
    /// The entropic regularisation `eps > 0`, in the units of the squared grid coordinates.
    public var epsilon: Double
    /// The Sinkhorn-divergence (debiased) barycenter rather than the plain entropic one.
    public var debiased: Bool
    /// The cap on iterations.
    public var maximumIterations: Int
    /// Stop when the marginal error (L1, inputs at mass one) is at most this.
    public var tolerance: Double
    /// Whether kernel applications may run in kernel mode (`false`: always in the log domain).
    public var allowsKernelMode: Bool

    /// Creates a solver.
    public init(epsilon: Double, debiased: Bool = true, maximumIterations: Int = 5000, tolerance: Double = 1e-7,
                allowsKernelMode: Bool = true) {
        self.epsilon = epsilon
        self.debiased = debiased
        self.maximumIterations = maximumIterations
        self.tolerance = tolerance
        self.allowsKernelMode = allowsKernelMode
    }

    /// Computes the barycenter of `inputs` on `grid`.
    ///
    /// - Parameters:
    ///   - inputs: at least one array of `grid.sourceCount` finite masses `>= 0` (row-major,
    ///     axis 0 slowest) with a positive sum; each is taken at mass one.
    ///   - grid: the grid (its spacing sets the cost; its kernel truncation is used in kernel mode).
    ///   - weights: one finite weight `>= 0` per input, summing to one within `1e-9`; `nil`
    ///     for uniform weights.
    /// - Throws: ``WassersteinError/emptyCloud(_:)`` for no inputs,
    ///   ``WassersteinError/malformedShape(_:)`` for an input of the wrong size,
    ///   ``WassersteinError/invalidWeight(cloud:index:value:)`` for a negative or non-finite mass
    ///   or weight, ``WassersteinError/zeroMass(_:)`` for an input without mass,
    ///   ``WassersteinError/weightCountMismatch(cloud:points:weights:)`` and
    ///   ``WassersteinError/invalidParameter(name:value:requirement:)`` for weights that do not
    ///   sum to one, an `epsilon` that is not positive or too small for the grid's cost range
    ///   (range / eps above `1e15`), or a bad iteration cap or tolerance.
    public func solve(_ inputs: [[Double]], on grid: SeparableGridGeometry, weights: [Double]? = nil) throws -> GridBarycenterResult {
        guard !inputs.isEmpty else { throw WassersteinError.emptyCloud("barycenter inputs") }
        let n = grid.sourceCount
        guard epsilon > 0, epsilon.isFinite else {
            throw WassersteinError.invalidParameter(name: "epsilon", value: epsilon, requirement: "must be finite and > 0")
        }
        guard grid.costRange / epsilon <= 1e15 else {
            throw WassersteinError.invalidParameter(name: "epsilon", value: epsilon,
                requirement: "too small for the grid's squared diameter \(grid.costRange): range / epsilon must be at most 1e15")
        }
        guard maximumIterations >= 0 else {
            throw WassersteinError.invalidParameter(name: "maximum iterations", value: Double(maximumIterations), requirement: "must be >= 0")
        }
        guard tolerance.isFinite, tolerance >= 0 else {
            throw WassersteinError.invalidParameter(name: "tolerance", value: tolerance, requirement: "must be finite and >= 0")
        }
        let lambda = try Self.checkedWeights(weights, count: inputs.count)
        var logA = [[Double]]()
        for (k, a) in inputs.enumerated() {
            let name = "barycenter input \(k)"
            guard a.count == n else {
                throw WassersteinError.malformedShape("\(name) has \(a.count) values, the grid \(grid.pointsPerAxis) has \(n) points")
            }
            var mass = 0.0
            for (i, m) in a.enumerated() {
                guard m.isFinite, m >= 0 else { throw WassersteinError.invalidWeight(cloud: name, index: i, value: m) }
                mass += m
            }
            guard mass > 0 else { throw WassersteinError.zeroMass(name) }
            guard mass.isFinite else {
                throw WassersteinError.invalidParameter(name: "total mass of \(name)", value: mass, requirement: "must be finite")
            }
            logA.append(a.map { $0 > 0 ? log($0 / mass) : -.infinity })
        }
        // Inputs of weight zero do not enter the objective.
        let active = lambda.indices.filter { lambda[$0] > 0 }
        var kernel = GridLogKernel(grid: grid, epsilon: epsilon, allowsKernelMode: allowsKernelMode)

        var logV = [[Double]](repeating: [Double](repeating: 0, count: n), count: inputs.count)
        var logKU = logV
        var logD = [Double](repeating: 0, count: n)
        var logB = [Double](repeating: 0, count: n)
        var logU = [Double](repeating: 0, count: n)
        var logKV = [Double](repeating: 0, count: n)
        var logKD = [Double](repeating: 0, count: n)
        var iterations = 0
        var error = Double.infinity
        while true {
            for k in active {
                kernel.apply(logV[k], needed: logA[k], into: &logKV)
                for i in 0 ..< n { logU[i] = logA[k][i] == -.infinity ? -.infinity : logA[k][i] - logKV[i] }
                kernel.apply(logU, needed: nil, into: &logKU[k])
            }
            for i in 0 ..< n { logB[i] = debiased ? logD[i] : 0 }
            for k in active {
                let w = lambda[k]
                for i in 0 ..< n { logB[i] += w * logKU[k][i] }
            }
            // The plans' second marginals v_k (K u_k) against b; then the v that makes them b.
            error = 0
            for k in active {
                var sum = 0.0
                for i in 0 ..< n { sum += abs(exp(logV[k][i] + logKU[k][i]) - exp(logB[i])) }
                error = Swift.max(error, sum)
                for i in 0 ..< n { logV[k][i] = logB[i] - logKU[k][i] }
            }
            if debiased {
                kernel.apply(logD, needed: nil, into: &logKD)
                var residual = 0.0
                for i in 0 ..< n {
                    residual += abs(exp(logD[i] + logKD[i]) - exp(logB[i]))
                    logD[i] = 0.5 * (logD[i] + logB[i] - logKD[i])
                }
                error = Swift.max(error, residual)
            }
            if error.isNaN {
                throw WassersteinError.solverFailure("the grid barycenter's scalings left the range of doubles (epsilon \(epsilon))")
            }
            iterations += 1
            if error <= tolerance || iterations >= maximumIterations { break }
        }
        return GridBarycenterResult(masses: logB.map { exp($0) }, pointsPerAxis: grid.pointsPerAxis, iterations: iterations,
                                    converged: error <= tolerance, marginalError: error, weights: lambda, debiased: debiased,
                                    kernelModeApplications: kernel.kernelModeCount, logDomainApplications: kernel.logDomainCount,
                                    lineStabilizedApplications: kernel.lineStabilisedCount)
    }

    /// Uniform weights for `nil`; otherwise checks one finite weight `>= 0` per input, summing to
    /// one within `1e-9`.
    static func checkedWeights(_ weights: [Double]?, count: Int) throws -> [Double] {
        guard let weights else { return [Double](repeating: 1 / Double(count), count: count) }
        guard weights.count == count else {
            throw WassersteinError.weightCountMismatch(cloud: "barycenter weights", points: count, weights: weights.count)
        }
        for (i, w) in weights.enumerated() where !(w.isFinite && w >= 0) {
            throw WassersteinError.invalidWeight(cloud: "barycenter weights", index: i, value: w)
        }
        let sum = weights.reduce(0, +)
        guard abs(sum - 1) <= 1e-9 else {
            throw WassersteinError.invalidParameter(name: "sum of the barycenter weights", value: sum, requirement: "must be 1 (within 1e-9)")
        }
        return weights
    }
}

/// `out_i = log sum_j K_ij e^(x_j)` on a separable grid, `K_ij = exp(-|x_i - x_j|^2 / eps)`, exact
/// to rounding (relative error of the sum about `1e-15`).
///
/// Kernel mode first: `v = e^(x - max x)` (so `v <= 1`), `r = K v` by the grid's separable
/// convolution, `out = max x + log r`. Every term it leaves out (a tap below the grid's truncation,
/// a `v` that underflows) is below `max(truncation, e^-708)`, at most `N` of them, so an output
/// with `r >= floor = max(1e-270, 1e16 N truncation)` is right to `1e-16` relative. When an
/// output that matters falls below the floor, the call is redone one axis at a time with a shift
/// per 1-D line, and the lines that still fall short by the geometry's exact log-domain pass
/// (without kernel mode: the geometry's log-domain passes throughout).
struct GridLogKernel {
    let grid: SeparableGridGeometry
    let convolution: SeparableConvolution?
    let logTaps: [SeparableGridGeometry.LogTaps]
    let floor: Double
    private(set) var kernelModeCount = 0
    private(set) var logDomainCount = 0
    private(set) var lineStabilisedCount = 0
    private var v: [Double]
    private var scratch: [Double]

    init(grid: SeparableGridGeometry, epsilon: Double, allowsKernelMode: Bool) {
        self.grid = grid
        let n = grid.sourceCount
        convolution = allowsKernelMode ? SeparableConvolution(pointsPerAxis: grid.pointsPerAxis, taps: grid.kernelTaps(epsilon: epsilon)) : nil
        logTaps = grid.plainLogTaps(epsilon: epsilon)
        floor = Swift.max(1e-270, 1e16 * Double(n) * grid.kernelTruncation)
        v = [Double](repeating: 0, count: n)
        scratch = [Double](repeating: 0, count: grid.pointsPerAxis.count >= 2 ? n : 0)
    }

    /// `out = log K e^x`; only the outputs `i` with `needed[i] > -infinity` must be right (all
    /// for `nil`); the others are then finite or `-infinity`. `x` must not be all `-infinity`.
    mutating func apply(_ x: [Double], needed: [Double]?, into out: inout [Double]) {
        let n = x.count
        var top = -Double.infinity
        for e in x where e > top { top = e }
        if let convolution, top.isFinite {
            for j in 0 ..< n { v[j] = entropicExp(x[j] - top) }
            v.withUnsafeBufferPointer { vb in
                out.withUnsafeMutableBufferPointer { ob in
                    scratch.withUnsafeMutableBufferPointer { sb in convolution.apply(vb, into: ob, scratch: sb) }
                }
            }
            var resolved = true
            for i in 0 ..< n where !(out[i] >= floor) {
                if needed == nil || needed![i] > -.infinity { resolved = false; break }
            }
            if resolved {
                for i in 0 ..< n { out[i] = out[i] > 0 ? top + log(out[i]) : -.infinity }
                kernelModeCount += 1
                return
            }
        }
        if let convolution {
            lineStabilisedCount += 1
            x.withUnsafeBufferPointer { xb in
                out.withUnsafeMutableBufferPointer { ob in lineStabilisedApply(xb.baseAddress!, convolution, into: ob.baseAddress!) }
            }
            return
        }
        logDomainCount += 1
        x.withUnsafeBufferPointer { xb in
            out.withUnsafeMutableBufferPointer { ob in grid.logApply(xb.baseAddress!, axisTaps: logTaps, into: ob.baseAddress!) }
        }
    }

    /// `out = log K e^x` one axis at a time, each 1-D line in kernel mode with its own shift
    /// (`e^(x - max of the line)`, convolved, logged), and a line whose outputs fall below
    /// ``lineFloor`` by the exact log-domain pass of that line alone: every line is right to
    /// rounding, so the whole is. Why: a line spans one axis, so its range of exponents is a
    /// fraction of the whole grid's, and most lines stay in kernel mode where one shift for the
    /// grid could not. The axes rotate as in ``SeparableGridGeometry/logApply(_:axisTaps:into:)``.
    private func lineStabilisedApply(_ s: UnsafePointer<Double>, _ convolution: SeparableConvolution,
                                     into out: UnsafeMutablePointer<Double>) {
        let n = grid.pointsPerAxis
        let count = grid.sourceCount
        func pass(_ src: UnsafePointer<Double>, _ dst: UnsafeMutablePointer<Double>, rows: Int, axis a: Int) {
            let length = n[a]
            let v = UnsafeMutablePointer<Double>.allocate(capacity: length)
            let y = UnsafeMutablePointer<Double>.allocate(capacity: length)
            defer { v.deallocate(); y.deallocate() }
            let floor = Swift.max(1e-270, 1e16 * Double(length) * grid.kernelTruncation)
            convolution.paddedTaps[a].withUnsafeBufferPointer { taps in
                for r in 0 ..< rows {
                    let line = src + r * length
                    var top = -Double.infinity
                    for l in 0 ..< length where line[l] > top { top = line[l] }
                    guard top.isFinite else {
                        for k in 0 ..< length { dst[k * rows + r] = -.infinity }
                        continue
                    }
                    for l in 0 ..< length { v[l] = entropicExp(line[l] - top) }
                    SeparableConvolution.convolveContiguous(v, y, length: length, paddedTaps: taps)
                    var resolved = true
                    for k in 0 ..< length where !(y[k] >= floor) { resolved = false; break }
                    if resolved {
                        for k in 0 ..< length { dst[k * rows + r] = top + log(y[k]) }
                    } else {
                        SeparableGridGeometry.logPass(line, y, rows: 1, length: length, taps: logTaps[a])
                        for k in 0 ..< length { dst[k * rows + r] = y[k] }
                    }
                }
            }
        }
        switch n.count {
        case 1:
            pass(s, out, rows: 1, axis: 0)
        case 2:
            let scratch = UnsafeMutablePointer<Double>.allocate(capacity: count)
            defer { scratch.deallocate() }
            pass(s, scratch, rows: n[0], axis: 1)
            pass(scratch, out, rows: n[1], axis: 0)
        default:
            let scratch = UnsafeMutablePointer<Double>.allocate(capacity: count)
            defer { scratch.deallocate() }
            pass(s, out, rows: n[0] * n[1], axis: 2)
            pass(out, scratch, rows: n[2] * n[0], axis: 1)
            pass(scratch, out, rows: n[1] * n[2], axis: 0)
        }
    }
}
