import GradientFlows

/// Choices the commands make when a spec leaves them open.
public enum Defaults {
    /// The entropy estimator used for particle free energies (noisy SGD records, particle JKO).
    public static func entropyEstimator(dimension: Int) -> (any EntropyEstimator)? {
        nil
    }
}
