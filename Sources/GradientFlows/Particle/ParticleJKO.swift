#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Wasserstein

/// Options of the particle (Lagrangian) JKO scheme.
public struct ParticleJKOOptions: Sendable {
    /// The transport method, in the library's one vocabulary:
    /// - `TransportMethod/exact` and `TransportMethod/auto`: exact `W2^2`, warm-started
    ///   (``ExactTransportTerm``: network simplex, sorted in 1-D); `TransportMethod/sorted` the
    ///   same in 1-D only;
    /// - `TransportMethod/lp`: exact `W2^2` from the linear program (``PlanTransportTerm``, no warm start);
    /// - `TransportMethod/sinkhorn(epsilon:options:)`: the debiased Sinkhorn divergence `S_eps`,
    ///   warm-started, on the dense or online geometry (``SinkhornTransportTerm``; always debiased,
    ///   `SinkhornOptions/divergence` is not consulted);
    /// - `TransportMethod/gaussian` has no plan to differentiate and is refused.
    ///
    /// ``transportTerm``, when set, takes precedence.
    public var transport: TransportMethod
    /// A caller-built transport term (for example ``PlanTransportTerm`` over a solver outside the
    /// method vocabulary, or ``SinkhornTransportTerm`` with `debiased: false`), or `nil` to build
    /// the term of ``transport``.
    public var transportTerm: (@Sendable () throws -> any ParticleTransportTerm)?
    /// The estimator of `int rho log rho` (used only when the energy has an entropy term).
    public var entropyEstimator: any EntropyEstimator
    /// The inner L-BFGS options. `gradientTolerance` applies to the `L2(rho)` norm of the velocity
    /// residual `r_i = (1/w_i) dPhi/dx_i = grad Psi(x_i) + (1/beta) grad_i E / w_i + (x_i - T(x_i))/tau`
    /// (units of the parameters per unit time); the positions are then accurate to about
    /// `tau * gradientTolerance / (1 + tau * curvature)`.
    public var optimizer: LBFGSOptions

    public init(transport: TransportMethod = .exact,
                transportTerm: (@Sendable () throws -> any ParticleTransportTerm)? = nil,
                entropyEstimator: any EntropyEstimator = GaussianKernelEntropy.silverman,
                optimizer: LBFGSOptions = LBFGSOptions(gradientTolerance: 1e-6, maxIterations: 200)) {
        self.transport = transport
        self.transportTerm = transportTerm
        self.entropyEstimator = entropyEstimator
        self.optimizer = optimizer
    }

    /// The transport term these options describe, for particles in dimension `dimension`.
    ///
    /// - Throws: `GradientFlowsError.unsupported(_:)` for `TransportMethod/gaussian` and for
    ///   `TransportMethod/sorted` outside 1-D; the Sinkhorn term's parameter errors; whatever
    ///   ``transportTerm`` throws.
    public func makeTransportTerm(dimension: Int) throws -> any ParticleTransportTerm {
        if let transportTerm { return try transportTerm() }
        switch transport {
        case .auto, .exact: return ExactTransportTerm()
        case .sorted:
            guard dimension == 1 else {
                throw GradientFlowsError.unsupported("the sorted transport method is one-dimensional; the particles have D = \(dimension) (use exact)")
            }
            return ExactTransportTerm()
        case .lp: return PlanTransportTerm(solver: LinearProgramSolver())
        case .gaussian:
            throw GradientFlowsError.unsupported("the gaussian method has no transport plan to differentiate; a particle JKO step needs exact or sinkhorn transport")
        case .sinkhorn(let epsilon, let options): return try SinkhornTransportTerm(epsilon: epsilon, options: options)
        }
    }
}

/// The particle JKO scheme: `rho_k` is the empirical measure of `M` particles, and a step solves
///
///     X_{k+1} = argmin_X  G(mu_X) + (1/beta) E(X) + W(mu_X, mu_{X_k}) / (2 tau)
///
/// over the new positions (the weights stay those of `X_k`), with `E` the entropy estimate and `W`
/// the transport term (exact `W2^2` or a Sinkhorn quantity). The inner problem is solved by
/// ``LBFGS`` started at `X_k` with the per-particle preconditioner `tau / w_i`, so its first
/// iterate is the explicit Euler step `x_i - tau grad Psi(x_i)`; it stops when the velocity
/// residual (see ``ParticleJKOOptions/optimizer``) meets the tolerance.
///
/// **Energy decrease.** L-BFGS is a descent method from `X_k`, where `W = 0`; hence
/// `F(X_{k+1}) + W(X_{k+1}, X_k)/(2 tau) <= F(X_k)` for the estimated free energy, every step.
///
/// **Gaussian oracle.** Summing the stationarity conditions gives the exact mean recursion
/// `m' = m / (1 + lambda tau)` for the Ornstein-Uhlenbeck energy; testing them against
/// `x_i - m'` and using the scale identity of covariance-adapted kernel estimators gives
/// `lambda V' - 1/beta + (V' - C)/tau = 0` per axis, `C` the covariance of matched old and new
/// positions, which is the exact Gaussian JKO step with `C = sqrt(V V')` (an affine update). The
/// particle step therefore departs from the exact formula only through the non-affinity of the
/// update and the inner tolerance.
///
/// - Complexity: per inner iteration, one transport solve plus one evaluation of `G` and of the
///   estimator (`O(M^2 D)` for the kernel estimator).
public struct ParticleJKO {
    /// The energy `F = G + (1/beta) int rho log rho`.
    public let energy: FreeEnergy
    /// The step `tau > 0`.
    public let tau: Double
    /// The options.
    public let options: ParticleJKOOptions
    private var transport: any ParticleTransportTerm

    /// - Throws: `GradientFlowsError.invalidParameter(name:value:requirement:)` for `tau <= 0` or
    ///   not finite, or invalid optimizer options.
    public init(energy: FreeEnergy, tau: Double, options: ParticleJKOOptions) throws {
        guard tau > 0, tau.isFinite else {
            throw GradientFlowsError.invalidParameter(name: "tau", value: tau, requirement: "the JKO step tau must be > 0 and finite")
        }
        try options.optimizer.validate()
        self.energy = energy
        self.tau = tau
        self.options = options
        transport = try options.makeTransportTerm(dimension: energy.dimension)
    }

    /// The free energy of a particle configuration: `(F, G, E)` with `E` the entropy estimate
    /// (`nil` without entropy term).
    public func freeEnergy(of particles: PointCloud) -> (total: Double, smooth: Double, negativeEntropy: Double?) {
        let x = particles.coordinates.span
        let g = energy.smooth.value(points: x, weights: particles.weights.span)
        guard let beta = energy.inverseTemperature else { return (g, g, nil) }
        let e = options.entropyEstimator.negativeEntropy(points: x, count: particles.count, dimension: particles.dimension)
        return (g + e / beta, g, e)
    }

    /// The report of a configuration that has not moved (a run's step 0).
    public func initialReport(_ particles: PointCloud) -> JKOStepReport {
        let f = freeEnergy(of: particles)
        let (mean, variance) = Self.moments(particles)
        return JKOStepReport(step: 0, time: 0, freeEnergy: f.total, smoothEnergy: f.smooth, negativeEntropy: f.negativeEntropy,
                             w2Step: 0, innerIterations: 0, transportSolves: 0, converged: true, residual: 0,
                             mean: mean, variance: variance)
    }

    /// Performs one JKO step from `particles` (step index `index`, for the report).
    ///
    /// - Throws: `GradientFlowsError.dimensionMismatch(what:expected:actual:)` if the particles do not
    ///   live in the energy's space; `GradientFlowsError.unsupported(_:)` for non-uniform weights
    ///   with an entropy term (the estimators assume equal weights); whatever the transport solver
    ///   throws. Non-convergence of the inner problem is reported, not thrown.
    public mutating func step(from particles: PointCloud, index: Int = 1) throws -> (particles: PointCloud, report: JKOStepReport) {
        let start = ContinuousClock.now
        let d = particles.dimension, m = particles.count
        guard d == energy.dimension else { throw GradientFlowsError.dimensionMismatch(what: "dimension of the particles against the energy", expected: energy.dimension, actual: d) }
        let weights = particles.weights
        let beta = energy.inverseTemperature
        if beta != nil {
            let w0 = weights[0]
            for w in weights where abs(w - w0) > 1e-12 * w0 {
                throw GradientFlowsError.unsupported("the particle entropy estimators assume equal weights; got non-uniform weights")
            }
        }
        try transport.setTarget(particles)

        var transportTime = Duration.zero, energyTime = Duration.zero, entropyTime = Duration.zero
        var solves = 0
        var allSolvesConverged = true
        var smoothGradient = [Double](repeating: 0, count: m * d)
        var entropyGradient = [Double](repeating: 0, count: m * d)
        var transportGradient = [Double](repeating: 0, count: m * d)
        // The last few evaluations, to report W2 at the accepted point without another solve.
        var recent: [(x: [Double], evaluation: TransportTermEvaluation, smooth: Double, entropy: Double?)] = []
        let clock = ContinuousClock()
        let tau = self.tau
        let energy = self.energy
        let estimator = options.entropyEstimator
        var transport = self.transport

        let objective: LBFGS.Objective = { x, gradient in
            for i in x.indices where !x[i].isFinite {
                for j in 0 ..< gradient.count { gradient[j] = 0 }
                return .infinity
            }
            let coordinates = x.withUnsafeBufferPointer { Array($0) }
            let cloud = try PointCloud(coordinates: coordinates, dimension: d, weights: weights, name: "JKO iterate")
            var t0 = clock.now
            var output = smoothGradient.mutableSpan
            let smooth = energy.smooth.valueAndFirstVariationGradient(points: x, weights: weights.span, gradient: &output)
            var t1 = clock.now
            energyTime += t1 - t0
            var entropy: Double?
            if beta != nil {
                t0 = clock.now
                var output = entropyGradient.mutableSpan
                entropy = estimator.negativeEntropyAndGradient(points: x, count: m, dimension: d, gradient: &output)
                t1 = clock.now
                entropyTime += t1 - t0
            }
            t0 = clock.now
            var transportOutput = transportGradient.mutableSpan
            let evaluation = try transport.evaluate(source: cloud, gradient: &transportOutput)
            t1 = clock.now
            transportTime += t1 - t0
            solves += evaluation.solves
            if !evaluation.converged { allSolvesConverged = false }
            if recent.count == 6 { recent.removeFirst() }
            recent.append((coordinates, evaluation, smooth, entropy))

            let inverseBeta = beta.map { 1 / $0 } ?? 0
            let inverseTwoTau = 0.5 / tau
            for i in 0 ..< m {
                let w = weights[i]
                for k in 0 ..< d {
                    let j = i * d + k
                    gradient[j] = w * smoothGradient[j] + inverseBeta * entropyGradient[j] + inverseTwoTau * transportGradient[j]
                }
            }
            return smooth + inverseBeta * (entropy ?? 0) + inverseTwoTau * evaluation.value
        }

        var preconditioner = [Double](repeating: 0, count: m * d)
        for i in 0 ..< m { for k in 0 ..< d { preconditioner[i * d + k] = tau / weights[i] } }
        let result = try LBFGS.minimize(initial: particles.coordinates, options: options.optimizer,
                                        preconditioner: preconditioner,
                                        gradientMeasure: { g in
                                            var s = 0.0
                                            for i in 0 ..< m {
                                                let inv = 1 / weights[i]
                                                for k in 0 ..< d { s += g[i * d + k] * g[i * d + k] * inv }
                                            }
                                            return s.squareRoot()
                                        },
                                        objective: objective)
        self.transport = transport

        let next = try PointCloud(coordinates: result.x, dimension: d, weights: weights, name: "JKO iterate")
        var w2Squared: Double
        var smoothValue: Double
        var entropyValue: Double?
        if let hit = recent.last(where: { $0.x == result.x }) {
            w2Squared = hit.evaluation.squaredDistance
            smoothValue = hit.smooth
            entropyValue = hit.entropy
        } else {
            var scratch = [Double](repeating: 0, count: m * d)
            let t0 = clock.now
            var output = scratch.mutableSpan
            let evaluation = try self.transport.evaluate(source: next, gradient: &output)
            transportTime += clock.now - t0
            solves += evaluation.solves
            w2Squared = evaluation.squaredDistance
            let f = freeEnergy(of: next)
            smoothValue = f.smooth
            entropyValue = f.negativeEntropy
        }
        w2Squared = max(w2Squared, 0)
        let (mean, variance) = Self.moments(next)
        let total = smoothValue + (beta.map { (entropyValue ?? 0) / $0 } ?? 0)
        let report = JKOStepReport(step: index, time: Double(index) * tau, freeEnergy: total, smoothEnergy: smoothValue,
                                   negativeEntropy: entropyValue, w2Step: w2Squared.squareRoot(),
                                   innerIterations: result.iterations, transportSolves: solves,
                                   converged: result.converged && allSolvesConverged, residual: result.gradientMeasure,
                                   mean: mean, variance: variance, transportSeconds: transportTime.seconds,
                                   energySeconds: energyTime.seconds, entropySeconds: entropyTime.seconds,
                                   totalSeconds: (clock.now - start).seconds)
        return (next, report)
    }

    /// Per-axis mean and variance (normalised by the mass).
    static func moments(_ cloud: PointCloud) -> (mean: [Double], variance: [Double]) {
        let mean = cloud.mean
        let d = cloud.dimension
        var variance = [Double](repeating: 0, count: d)
        for i in 0 ..< cloud.count {
            for k in 0 ..< d {
                let t = cloud.coordinates[i * d + k] - mean[k]
                variance[k] += cloud.weights[i] * t * t
            }
        }
        return (mean, variance.map { $0 / cloud.mass })
    }
}

extension GaussianKernelEntropy {
    /// The kernel estimator with Silverman's covariance-adapted bandwidth (the default).
    public static let silverman = GaussianKernelEntropy(uncheckedBandwidth: .silverman)
    /// The kernel estimator with Scott's covariance-adapted bandwidth.
    public static let scott = GaussianKernelEntropy(uncheckedBandwidth: .scott)
}
