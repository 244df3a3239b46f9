import GradientFlows
import Wasserstein

/// Choices the commands make when a spec leaves them open.
public enum Defaults {
    /// The entropy estimator used for particle free energies (noisy SGD records, particle JKO):
    /// a Gaussian kernel density estimate with Silverman's bandwidth (see Docs/Theory.md for its
    /// measured bias).
    public static func entropyEstimator(dimension: Int) -> (any EntropyEstimator)? {
        GaussianKernelEntropy.silverman
    }

    /// The Sinkhorn settings of the particle JKO's `transport = sinkhorn` (the particle scheme
    /// always uses the debiased divergence `S_eps`, which vanishes when the particles do not move):
    /// marginal tolerance 1e-11, so that the gradient error (about the tolerance times the
    /// cloud's diameter) stays far below the inner L-BFGS tolerance; the geometry chosen from
    /// `M`, `D` and the memory limit (``JKORun/settings(spec:scheme:trackStationary:entropyEstimator:)``
    /// passes the spec's).
    public static let particleSinkhornOptions = SinkhornOptions(tolerance: 1e-11, maxIterations: 10_000)
}
