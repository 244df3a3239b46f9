#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Wasserstein

/// Step, horizon, energy and seed of a reduced run.
///
/// The spec keys they mirror: `sgd.eta`, `horizon`, `record_every`, `energy.lambda`,
/// `energy.beta` (the noise is on exactly when `beta` is set), `seed`.
public struct ReducedFlowSettings: Sendable {
    /// The step `eta > 0`; `t = k eta`.
    public var eta: Double
    /// The final time.
    public var horizon: Double
    /// The time between records.
    public var recordEvery: Double
    /// Weight decay `lambda >= 0`.
    public var lambda: Double
    /// Inverse temperature: `nil` for the noiseless flow, else the Langevin noise
    /// `sqrt(2 eta / beta)` per coordinate of the full parameter (finite `d` only).
    public var beta: Double?
    /// The noise streams' seed.
    public var seed: UInt64
    /// Stop at the first step whose risk is at most this, recording the crossing time
    /// (``ReducedTrajectory/thresholdTime``).
    public var stopBelowRisk: Double?
    /// Split the `O(M^2 Q)` sums over the cores (results are identical either way).
    public var parallel: Bool = true

    public init(eta: Double, horizon: Double, recordEvery: Double? = nil, lambda: Double = 0, beta: Double? = nil,
                seed: UInt64 = 0, stopBelowRisk: Double? = nil) {
        self.eta = eta
        self.horizon = horizon
        self.recordEvery = recordEvery ?? max(eta, horizon / 20)
        self.lambda = lambda
        self.beta = beta
        self.seed = seed
        self.stopBelowRisk = stopBelowRisk
    }

    /// `round(horizon / eta)`, at most ``SGDExperiment/maximumSteps``.
    public var stepCount: Int { Int(clampingCount: (horizon / eta).rounded(), limit: SGDExperiment.maximumSteps) }
    /// `max(1, round(recordEvery / eta))`, at most the step count (one record at the end).
    public var recordStride: Int {
        max(1, Int(clampingCount: (recordEvery / eta).rounded(), limit: max(1, stepCount)))
    }
}

/// One record of a reduced run at `t = step * eta`.
public struct ReducedRecord: Sendable {
    public var step: Int
    public var time: Double
    /// `R(rho_bar)`, the population risk of the symmetric law (see ``ReducedKernels/risk(_:)``).
    public var risk: Double
    /// `R + (lambda/2) E|theta|^2`, `|theta|^2 = a^2 + |s|^2 + r^2`.
    public var penalizedRisk: Double
    /// The law at this time, when the run keeps them.
    public var law: ReducedLaw?
}

/// What a reduced run produced.
public struct ReducedTrajectory: Sendable {
    public var records: [ReducedRecord]
    public var finalLaw: ReducedLaw
    /// Steps taken.
    public var steps: Int
    public var status: RunStatus
    /// With ``ReducedFlowSettings/stopBelowRisk``: the first time the risk reached the
    /// threshold, linear in `t` between the two steps around the crossing; `nil` if it never did.
    public var thresholdTime: Double?
}

/// The mean-field dynamics of a rotation-invariant law, in reduced coordinates, on weighted
/// particles: `M` points `z_i` with fixed weights `w_i`, the cost of one step `O(M^2 Q)`,
/// independent of `d`.
///
/// ## Noiseless: the population flow, exact
/// For a rotation-invariant `rho`, `Psi(theta; rho)` is invariant under the rotations fixing
/// the teacher's span, so it is a function `Phi(a, s, r)` of the reduced coordinates. By the
/// chain rule (`grad_w s_l = e_l`, `grad_w r = u` for `r > 0`),
/// `grad_w Psi = sum_l (dPhi/ds_l) e_l + (dPhi/dr) u`: the orthogonal part of the velocity is
/// parallel to `u`, so `u` stays fixed and `r` moves along it, and `dz/dt = -grad_z Phi` is the
/// full flow `dtheta/dt = -grad_theta Psi` seen in `z`. The explicit Euler step
/// `theta <- theta - eta (grad Psi + lambda theta)` of the full particles is the same step in `z`
/// with one twist: when the step carries `r` through 0, the full particle crosses the axis and
/// comes out at `|r - eta (...)|` on the other side (`u -> -u`, which a symmetric law does not
/// see), so the reduced step takes the absolute value. Both runs then give the same law at every
/// step, up to the quadrature of ``ReducedKernels`` (no `O(eta)` term of their own).
///
/// ## Noisy: Langevin with weight decay
/// The full step adds `sqrt(2 eta / beta) g`, `g ~ N(0, I_D)`. On `a` and `s_l` that is the same
/// one-dimensional noise. On the orthogonal part `y = P_perp w in R^n` (`|y| = r`), the step
/// `y <- r_det u + sigma g_n` (`r_det = r - eta (dPhi/dr + lambda r)`, `sigma = sqrt(2 eta/beta)`)
/// has radius distributed exactly as
///
///     r <- sqrt((r_det + sigma g)^2 + sigma^2 chi^2_{n-1})
///
/// which is what the reduced step draws (a normal and a chi-square, `O(1)` whatever `n`), so
/// the reduced chain has, step for step, the law of the full Euler-Maruyama chain of
/// ``SGDRunner``'s noisy population flow (Docs/Theory.md 4.1: noise `sqrt(2 eta/beta)`, decay
/// `eta lambda`, `t = k eta`). Its `eta -> 0` limit is the Ito equation
/// `dr = (-(dPhi/dr + lambda r) + (n - 1)/(beta r)) dt + sqrt(2/beta) dB`: the mean of the step
/// is `r_det + (n - 1) sigma^2 / (2 r) + O(sigma^4/r^3)`. Unlike an Euler step of that equation
/// it never produces a negative or NaN radius near `r = 0`. At `d = infinity` the noise is
/// refused: `(n - 1)/(beta r)` is infinite.
///
/// ```swift
/// let teacher = try ReducedTeacher(directions: [[1]])
/// let setting = try ReducedSetting(activation: .relu, secondLayer: .fixed, inputDimension: .finite(20), teacher: teacher)
/// let kernels = try ReducedKernels(setting: setting)
/// let law = try ReducedInitialLaw(gamma: 1).quantised(setting: setting)
/// let flow = try ReducedPopulationFlow(kernels: kernels, settings: ReducedFlowSettings(eta: 0.05, horizon: 20))
/// let trajectory = try flow.run(from: law)
/// ```
public struct ReducedPopulationFlow: Sendable {
    public let kernels: ReducedKernels
    public let settings: ReducedFlowSettings

    /// - Throws: ``MeanFieldError`` naming `sgd.eta`, `horizon`, `record_every`,
    ///   `energy.lambda`, `energy.beta` (also when set at `d = infinity`) or
    ///   `risk_threshold`.
    public init(kernels: ReducedKernels, settings: ReducedFlowSettings) throws {
        let s = settings
        try require(s.eta.isFinite && s.eta > 0, .stepSize, "\(s.eta)", "must be > 0 and finite")
        try require(s.horizon.isFinite && s.horizon >= 0, .horizon, "\(s.horizon)", "must be finite and >= 0")
        try require(s.horizon / s.eta <= 1e9, .horizon, "\(s.horizon)", "horizon / eta must be at most 1e9 steps")
        try require(s.recordEvery.isFinite && s.recordEvery > 0, .recordInterval, "\(s.recordEvery)", "must be > 0 and finite")
        try require(s.lambda.isFinite && s.lambda >= 0, .weightDecay, "\(s.lambda)", "must be finite and >= 0")
        if let beta = s.beta {
            try require(beta.isFinite && beta > 0, .inverseTemperature, "\(beta)", "must be > 0 and finite (nil for no noise)")
            try require(kernels.setting.inputDimension != .infinity, .inverseTemperature, "\(beta)",
                        "the noisy reduced flow needs a finite input dimension (its radial drift (n - 1)/(beta r) is infinite at d = infinity)")
        }
        if let e = s.stopBelowRisk { try require(e.isFinite, .riskThreshold, "\(e)", "must be finite") }
        self.kernels = kernels
        self.settings = s
    }

    /// Runs from `law` to the horizon (or to the risk threshold). `recordLaws`: keep the law in
    /// every record. `progress` is called after every record.
    ///
    /// - Throws: ``MeanFieldError`` naming `law` when its coordinates do not match the setting.
    public func run(from law: ReducedLaw, recordLaws: Bool = false,
                    progress: ((RunProgress) -> Void)? = nil) throws -> ReducedTrajectory {
        try kernels.checkLaw(law)
        let m = law.count, Dz = kernels.coordinateCount
        let eta = settings.eta, lambda = settings.lambda
        let steps = settings.stepCount, stride = settings.recordStride
        let sigma = settings.beta.map { (2 * eta / $0).squareRoot() } ?? 0
        let extraDegrees = Double((kernels.setting.orthogonalDimension ?? 1) - 1)
        var g = Xoshiro256StarStar(seed: settings.seed)
        var current = law
        var psi = [Double](repeating: 0, count: m), v = [Double](repeating: 0, count: m)
        var grad = [Double](repeating: 0, count: m * Dz)
        var records = [ReducedRecord]()
        var status = RunStatus.completed
        var thresholdTime: Double? = nil
        var previousRisk = Double.nan
        var taken = 0
        for k in 0 ... steps {
            let last = k == steps
            let prepared = ReducedKernels.PreparedLaw(law: current, setting: kernels.setting)
            current.points.withUnsafeBufferPointer { pp in
                psi.withUnsafeMutableBufferPointer { ps in
                    v.withUnsafeMutableBufferPointer { vs in
                        grad.withUnsafeMutableBufferPointer { gs in
                            kernels.evaluate(points: pp.baseAddress!, count: m, law: prepared, psi: ps.baseAddress!,
                                             potential: vs.baseAddress!, gradient: gs.baseAddress!, parallel: settings.parallel,
                                             pointsAreLaw: true)
                        }
                    }
                }
            }
            let risk = kernels.riskFrom(psi: psi, potential: v, weights: current.weights)
            var finite = risk.isFinite
            for x in grad where !x.isFinite { finite = false; break }
            if !finite {
                status = .diverged(step: k, time: Double(k) * eta)
                break
            }
            taken = k
            var crossed = false
            if let e = settings.stopBelowRisk, risk <= e {
                // Linear in t between the previous step and this one.
                if k == 0 || !previousRisk.isFinite || previousRisk == risk {
                    thresholdTime = Double(k) * eta
                } else {
                    thresholdTime = (Double(k) - (risk - e) / (risk - previousRisk)) * eta
                }
                crossed = true
            }
            previousRisk = risk
            if k % stride == 0 || last || crossed {
                var norm2 = 0.0
                for i in 0 ..< m {
                    var q = 0.0
                    for c in 0 ..< Dz { q += current.points[i * Dz + c] * current.points[i * Dz + c] }
                    norm2 += current.weights[i] * q
                }
                records.append(ReducedRecord(step: k, time: Double(k) * eta, risk: risk, penalizedRisk: risk + 0.5 * lambda * norm2,
                                             law: recordLaws ? current : nil))
                progress?(RunProgress(step: k, totalSteps: steps, time: Double(k) * eta, horizon: Double(steps) * eta, risk: risk))
            }
            if last || crossed { break }
            // The step (see the type's notes): a and s_l as in the full chain, r through its exact radial law.
            for i in 0 ..< m {
                let row = i * Dz
                for c in 0 ..< Dz - 1 {
                    var x = current.points[row + c] - eta * (grad[row + c] + lambda * current.points[row + c])
                    if sigma > 0 { x += sigma * g.nextGaussian() }
                    current.points[row + c] = x
                }
                let r = current.points[row + Dz - 1]
                let rDet = r - eta * (grad[row + Dz - 1] + lambda * r)
                if sigma > 0 {
                    let radial = rDet + sigma * g.nextGaussian()
                    let orthogonal = extraDegrees > 0 ? sigma * sigma * g.nextChiSquare(degrees: extraDegrees) : 0
                    current.points[row + Dz - 1] = (radial * radial + orthogonal).squareRoot()
                } else {
                    current.points[row + Dz - 1] = abs(rDet)
                }
            }
        }
        return ReducedTrajectory(records: records, finalLaw: current, steps: taken, status: status, thresholdTime: thresholdTime)
    }
}
