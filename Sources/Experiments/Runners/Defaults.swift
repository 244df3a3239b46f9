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

    /// The particle transport term for `transport = sinkhorn`: the debiased Sinkhorn divergence
    /// `S_eps`, which vanishes when the particles do not move. (Plain `OT_eps` does not: with the
    /// `KL(P | a (x) b)` convention it pulls the particles together, a spurious contraction.)
    public static func sinkhornTransport(epsilon: Double) throws -> ParticleTransport {
        .sinkhorn(epsilon: epsilon, debiased: true)
    }
}
