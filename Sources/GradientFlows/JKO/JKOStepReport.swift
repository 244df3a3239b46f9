/// What one JKO step did: the state it reached, how far it moved, and what the inner solver
/// needed to get there. Both schemes (particle and grid) report in this form; a run's step 0 is
/// the initial state (no movement, no inner work).
public struct JKOStepReport: Sendable, Equatable {
    /// The step index `k` (0 for the initial state).
    public var step: Int
    /// The time `t = k tau`.
    public var time: Double
    /// `F(rho_k) = G(rho_k) + (1/beta) int rho_k log rho_k`; the entropy is estimated for
    /// particles (see ``EntropyEstimator``) and exact for the discrete grid density.
    public var freeEnergy: Double
    /// The smooth part `G(rho_k)` alone (for a mean-field model: the risk plus weight decay).
    public var smoothEnergy: Double
    /// `int rho_k log rho_k` (estimated or exact), `nil` without entropy term.
    public var negativeEntropy: Double?
    /// `W2(rho_k, rho_{k-1})`, the distance moved in this step (0 at step 0). Particles: from the
    /// transport solver at the final positions (exact `W2`, or the square root of the debiased
    /// Sinkhorn divergence / entropic transport cost). Grid: the square root of the debiased Sinkhorn
    /// divergence at the scheme's blur (see ``GridJKO``).
    public var w2Step: Double
    /// Inner iterations: L-BFGS iterations (particles) or generalised Sinkhorn iterations (grid).
    public var innerIterations: Int
    /// Transport solves (particles: OT problems solved; grid: Sinkhorn runs, one per outer
    /// re-linearisation of the interaction).
    public var transportSolves: Int
    /// Whether the inner problem met its tolerance (and every transport solve converged).
    public var converged: Bool
    /// The final inner residual: the `L2(rho)` norm of the velocity residual (particles) or the
    /// `L1` optimality residual of the Sinkhorn iteration (grid).
    public var residual: Double
    /// The mean of `rho_k`, per axis.
    public var mean: [Double]
    /// The variance of `rho_k`, per axis (normalised by the mass).
    public var variance: [Double]
    /// Seconds spent in transport solves during this step.
    public var transportSeconds: Double
    /// Seconds spent evaluating the smooth energy and its gradient (particles) or first variation (grid).
    public var energySeconds: Double
    /// Seconds spent in the entropy estimator (particles only).
    public var entropySeconds: Double
    /// Wall-clock seconds of the whole step.
    public var totalSeconds: Double
    /// `W2(rho_k, rho*)` to the stationary Gibbs measure, when the runner was asked for it.
    public var distanceToStationary: Double?
    /// With an Ornstein-Uhlenbeck oracle: `W2` between the Gaussian with `rho_k`'s per-axis mean and
    /// variance and the exact flow's law at `t` (a moment-based error, not `W2(rho_k, exact)`).
    public var gaussianW2ToExactFlow: Double?

    public init(step: Int, time: Double, freeEnergy: Double, smoothEnergy: Double, negativeEntropy: Double?,
                w2Step: Double, innerIterations: Int, transportSolves: Int, converged: Bool, residual: Double,
                mean: [Double], variance: [Double], transportSeconds: Double = 0, energySeconds: Double = 0,
                entropySeconds: Double = 0, totalSeconds: Double = 0, distanceToStationary: Double? = nil,
                gaussianW2ToExactFlow: Double? = nil) {
        self.step = step
        self.time = time
        self.freeEnergy = freeEnergy
        self.smoothEnergy = smoothEnergy
        self.negativeEntropy = negativeEntropy
        self.w2Step = w2Step
        self.innerIterations = innerIterations
        self.transportSolves = transportSolves
        self.converged = converged
        self.residual = residual
        self.mean = mean
        self.variance = variance
        self.transportSeconds = transportSeconds
        self.energySeconds = energySeconds
        self.entropySeconds = entropySeconds
        self.totalSeconds = totalSeconds
        self.distanceToStationary = distanceToStationary
        self.gaussianW2ToExactFlow = gaussianW2ToExactFlow
    }
}

extension Duration {
    /// The duration in seconds as a `Double`.
    var seconds: Double {
        let c = components
        return Double(c.seconds) + Double(c.attoseconds) * 1e-18
    }
}
