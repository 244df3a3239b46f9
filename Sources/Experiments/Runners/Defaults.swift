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

    /// The particle transport term for `transport = sinkhorn`.
    public static func sinkhornTransport(epsilon: Double) throws -> ParticleTransport {
        throw ExperimentError.invalidSpec(key: "jko.transport", reason: "sinkhorn transport for the particle scheme is not available yet; use exact")
    }
}
