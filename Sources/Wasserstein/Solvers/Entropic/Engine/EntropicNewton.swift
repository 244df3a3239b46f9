#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The Newton-CG stage of the balanced driver (``EntropicParameters/usesNewtonSteps``): when
/// to take a step, and its direction from products with the plan
/// (``SinkhornGeometry/applyPlan(_:f:g:logA:logB:epsilon:transposed:squared:into:)``).
///
/// Why: where the balanced iteration has eigenvalues within `1e-9` of 1 (groups of points joined
/// to the rest only by tiny plan entries: at `eps = 0.05` in `D = 21` every point forms such a
/// pair with its image), no relaxation factor helps, while Newton's method solves for all modes
/// at once (Brauer, Clason, Lorenz, Wirth 2017). The rule of when to switch follows the dense
/// solver's loop (``BalancedSinkhornCore``): try Newton when the scaling iterations' observed
/// rate predicts many further iterations, keep it while its progress per unit of work is at
/// least half that of the scaling iterations, else hand back for a while. "Many" is 300 here,
/// not the dense loop's 40: a step's conjugate gradients cost more than scaling iterations on the
/// tiled geometries, and at 40 the stage slowed converging solves down (3-D uniform clouds,
/// `n = 5000`, eps = 0.0025: 147 plain iterations against 176 with three steps, 1.6x the time),
/// while the stalls it is for predict thousands.
///
/// The system, in log-scaling units `x = df / eps`, `y = dg / eps`, with `rho`, `kappa` the row
/// and column masses of the plan `P` of the current potentials:
/// `[[diag(rho), P], [P^T, diag(kappa)]] (x, y) = (a - rho, b - kappa)`. Eliminating `x` leaves
/// `(diag(kappa) - P^T diag(1/rho) P) y = b - P^T (a / rho)`, symmetric positive semi-definite
/// with the gauge `1` as null vector, solved by conjugate gradients preconditioned by its exact
/// diagonal `kappa - (P o P)^T (1 / rho)` (tiny exactly on the columns of isolated pairs, the
/// slowest modes); then `x = (a - rho - P y) / rho`. Each CG iteration is one product with `P`
/// and one with `P^T`, the work of one Sinkhorn iteration.
struct EntropicNewtonStage {
    /// The scaling iterations' predicted remaining count above which a Newton step is tried
    /// (see the type's notes).
    static let worthwhilePrediction = 300.0
    /// Iterations before the first attempt, and (at least 50) after Newton handed back.
    private var cooldown = 12
    /// Whether the last step did well enough for another one.
    private var active = false
    /// `-log` of the scaling iterations' rate just before Newton took over.
    private var scalingEfficiency = 0.0
    private var poorSteps = 0
    /// The errors of the last scaling iterations at one relaxation factor (at most 12).
    private var history = [Double]()
    /// The error before the last accepted step and the work since, judged at the next error.
    private var pending: (error: Double, work: Int)?

    /// Steps accepted, steps rejected and conjugate-gradient iterations, for tests and reports.
    private(set) var acceptedSteps = 0
    private(set) var rejectedSteps = 0
    private(set) var conjugateGradientIterations = 0

    /// Called at every error of the balanced loop; returns whether to take a Newton step now.
    /// `steady` is false when the relaxation factor just changed (the rate history restarts).
    /// After an accepted step it judges the step's progress (including the scaling sweep after
    /// it) and, when Newton falls behind, hands back and returns `restartRelaxation`.
    mutating func decide(error: Double, tolerance: Double, mass: Double, remaining: Int, steady: Bool)
        -> (step: Bool, restartRelaxation: Bool) {
        var restart = false
        if let last = pending {
            pending = nil
            let efficiency = log(last.error / error) / Double(Swift.max(1, last.work))
            // Two steps in a row at less than half the scaling iterations' rate hand the lead
            // back (one slow step is often a large nonlinear move).
            poorSteps = efficiency > 0.5 * scalingEfficiency ? 0 : poorSteps + 1
            active = poorSteps < 2
            if !active {
                handBack(work: last.work)
                restart = true
            }
        }
        guard error.isFinite, remaining >= 12 else { return (false, restart) }
        if cooldown > 0 { cooldown -= 1 }
        if active { return (true, restart) }
        if cooldown == 0, let rate = recentRate(), error < 1e-2 * mass {
            scalingEfficiency = rate < 1 ? -log(rate) : 0
            poorSteps = 0
            if !(rate < 1) || log(tolerance / error) / log(rate) > Self.worthwhilePrediction { return (true, restart) }
        }
        if !steady { history.removeAll() }
        history.append(error)
        if history.count > 12 { history.removeFirst() }
        return (false, restart)
    }

    /// Records a step's outcome: accepted (judged at the next error, after one scaling sweep)
    /// or rejected (hand back at once).
    mutating func record(accepted: Bool, errorBefore: Double, work: Int, inner: Int) {
        conjugateGradientIterations += inner
        if accepted {
            acceptedSteps += 1
            pending = (errorBefore, work + 1)
        } else {
            rejectedSteps += 1
            active = false
            handBack(work: work)
        }
    }

    private mutating func handBack(work: Int) {
        cooldown = Swift.max(50, 2 * work)
        history.removeAll()
    }

    /// The geometric mean contraction factor of the recorded errors, once 12 are recorded.
    private func recentRate() -> Double? {
        guard history.count >= 12, let first = history.first, let last = history.last, first > 0 else { return nil }
        return pow(last / first, 1 / Double(history.count - 1))
    }

    /// The Newton direction at `(f, g)` in potential units (`eps x`, `eps y`), with the row and
    /// column masses `rho`, `kappa` of their plan; `nil` when no column carries mass or a value
    /// is not finite. `products` counts the plan products (two make one iteration's work).
    static func direction<Geometry: SinkhornGeometry>(
        geometry: Geometry, f: [Double], g: [Double], logA: [Double], logB: [Double], a: [Double], b: [Double],
        rho: [Double], kappa: [Double], epsilon: Double, error: Double, mass: Double, maxInner: Int
    ) -> (df: [Double], dg: [Double], products: Int, inner: Int)? {
        let n = f.count, m = g.count
        var products = 0
        func plan(_ v: [Double], transposed: Bool, squared: Bool = false) -> [Double] {
            var out = [Double](repeating: 0, count: transposed ? m : n)
            var span = out.mutableSpan
            geometry.applyPlan(v.span, f: f.span, g: g.span, logA: logA.span, logB: logB.span, epsilon: epsilon,
                               transposed: transposed, squared: squared, into: &span)
            products += 1
            return out
        }
        // 1 / rho on rows with mass (a row without weight has no plan entries).
        let inverseRho = (0 ..< n).map { i in a[i] > 0 && rho[i] > 0 ? 1 / rho[i] : 0 }
        let active = (0 ..< m).filter { kappa[$0] > 0 }.count
        guard active > 0 else { return nil }
        // Right-hand side b - P^T (a / rho), projected off the gauge.
        var residual = plan((0 ..< n).map { a[$0] * inverseRho[$0] }, transposed: true)
        var mean = 0.0
        for j in 0 ..< m { residual[j] = kappa[j] > 0 ? b[j] - residual[j] : 0; mean += residual[j] }
        mean /= Double(active)
        for j in 0 ..< m where kappa[j] > 0 { residual[j] -= mean }
        let squares = plan(inverseRho, transposed: true, squared: true)
        let preconditioner = (0 ..< m).map { j in
            kappa[j] > 0 ? 1 / Swift.max(kappa[j] - squares[j], 1e-9 * kappa[j]) : 0
        }
        let norm0 = residual.withUnsafeBufferPointer { entropicDot($0.baseAddress!, $0.baseAddress!, m) }.squareRoot()
        // Forcing term sqrt(error): inexact Newton (Eisenstat and Walker), as the dense loop.
        let forcing = Swift.min(0.25, (error / mass).squareRoot())
        var y = [Double](repeating: 0, count: m)
        var scratch = [Double](repeating: 0, count: 3 * m)
        var rows = [Double](repeating: 0, count: n)
        let inner = kappa.withUnsafeBufferPointer { kb in preconditioner.withUnsafeBufferPointer { pb in
            residual.withUnsafeMutableBufferPointer { rb in y.withUnsafeMutableBufferPointer { yb in
                scratch.withUnsafeMutableBufferPointer { sb in
                    let base = sb.baseAddress!
                    return schurConjugateGradient(count: m, kappa: kb.baseAddress!, preconditioner: pb.baseAddress!,
                                                  active: active, residual: rb.baseAddress!, solution: yb.baseAddress!,
                                                  z: base, direction: base + m, image: base + 2 * m, norm0: norm0,
                                                  forcing: forcing, maxInner: maxInner) { direction, image in
                        // S d = kappa o d - P^T ((P d) / rho)
                        var rowsSpan = rows.mutableSpan
                        geometry.applyPlan(UnsafeBufferPointer(start: direction, count: m).span, f: f.span, g: g.span, logA: logA.span,
                                           logB: logB.span, epsilon: epsilon, transposed: false, squared: false, into: &rowsSpan)
                        for i in 0 ..< n { rows[i] *= inverseRho[i] }
                        var imageSpan = UnsafeMutableBufferPointer(start: image, count: m).mutableSpan
                        geometry.applyPlan(rows.span, f: f.span, g: g.span, logA: logA.span, logB: logB.span,
                                           epsilon: epsilon, transposed: true, squared: false, into: &imageSpan)
                        for j in 0 ..< m { image[j] = kappa[j] * direction[j] - image[j] }
                    }
                }
            } }
        } }
        products += 2 * inner
        let py = plan(y, transposed: false)
        var df = [Double](repeating: 0, count: n), dg = [Double](repeating: 0, count: m)
        for i in 0 ..< n where inverseRho[i] > 0 { df[i] = epsilon * ((a[i] - rho[i] - py[i]) * inverseRho[i]) }
        for j in 0 ..< m { dg[j] = epsilon * y[j] }
        guard df.allSatisfy({ $0.isFinite }), dg.allSatisfy({ $0.isFinite }) else { return nil }
        return (df, dg, products, inner)
    }
}
