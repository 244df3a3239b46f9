// MeanField: the two-layer mean-field network, its energies and its particle dynamics.
//
// The pieces, in the order a run uses them:
//
//   NetworkModel, Activation, InputDistribution, SecondLayer   the network (spec keys model.*)
//   Teacher                                                    the target (spec key teacher)
//   PopulationRisk                                             R#, V, U, Psi, grad Psi, R(rho), R_M
//                                                              (closed forms or projected Gauss rules)
//   MeanFieldEnergy                                            G = R + (lambda/2) int |theta|^2 as a
//                                                              GradientFlows.Energy, for JKO
//   InitialLaw, SGDSettings, SGDKind, EnergyParameters,
//   SGDExperiment                                              one run, key for key with the spec
//   SGDRunner -> Trajectory (TrajectoryRecord, RunStatus)      the dynamics and what they record
//   NetworkModel.marginals                                     1-D marginals for comparisons
//
// Reduced/ (Gaussian inputs, a teacher spanning k = 1 or 2 directions, rotation-invariant laws):
//   ReducedSetting, ReducedTeacher, ReducedDimension           d (or infinity), k, student, teacher
//   ReducedKernels                                             V, U, Psi, grad_z Psi, R in z = (a, s, r)
//   ReducedLaw, ReducedInitialLaw                              weighted points in z; quantised or sampled
//   ReducedPopulationFlow -> ReducedTrajectory                 the flow (and its noisy version) in z
//
// Conventions (Docs/Theory.md, sections 3 and 4): loss (y - yhat)^2 / 2, network (1/M) sum_j a_j s(<w_j, x>), time
// t = k eta, noise sqrt(2 eta / beta), weight decay eta lambda. Particles are row-major M x D;
// with a trained second layer a row is [a, w_1 ... w_d].

/// One-dimensional marginals of a particle system, the yardstick Docs/Theory.md (section 6) recommends
/// for comparing particle systems in high dimension (sorted 1-D W2 shrinks with M; the W2
/// between full D-dimensional empirical measures decays only like M^(-1/D)).
public struct ParticleMarginals: Sendable {
    /// `|w_j|` for every particle.
    public var weightNorms: [Double]
    /// `<w_j, u> / |u|` for the reference direction `u` (when one is given).
    public var overlaps: [Double]?
    /// `a_j` (trained second layer only).
    public var secondLayer: [Double]?
}

extension NetworkModel {
    /// The 1-D marginals of `particles` (row-major `M x D`).
    ///
    /// - Parameters:
    ///   - particles: row-major `M x D` parameters.
    ///   - direction: a reference direction `u` in R^d (typically the teacher's `w*`
    ///     or `b*`), or `nil`.
    /// - Throws: ``MeanFieldError`` for a malformed particle array (key `particles`) or a
    ///   direction of the wrong length or zero norm (key `direction`).
    public func marginals(particles: [Double], direction: [Double]? = nil) throws -> ParticleMarginals {
        let D = parameterDimension, d = inputDimension, o = weightOffset
        if particles.isEmpty || particles.count % D != 0 {
            throw MeanFieldError.lengthMismatch(parameter: .particles, expected: max(D, (particles.count / D + 1) * D), actual: particles.count)
        }
        var unit: [Double]? = nil
        if let u = direction {
            if u.count != d { throw MeanFieldError.lengthMismatch(parameter: .direction, expected: d, actual: u.count) }
            let n = u.reduce(0) { $0 + $1 * $1 }.squareRoot()
            try require(n > 0 && n.isFinite, .direction, "\(u)", "must be a non-zero finite vector")
            unit = u.map { $0 / n }
        }
        let m = particles.count / D
        var norms = [Double](repeating: 0, count: m)
        var overlaps: [Double]? = unit == nil ? nil : [Double](repeating: 0, count: m)
        var a: [Double]? = o == 1 ? [Double](repeating: 0, count: m) : nil
        for j in 0 ..< m {
            var q = 0.0, p = 0.0
            for k in 0 ..< d {
                let v = particles[j * D + o + k]
                q += v * v
                if let unit { p += v * unit[k] }
            }
            norms[j] = q.squareRoot()
            overlaps?[j] = p
            a?[j] = particles[j * D]
        }
        return ParticleMarginals(weightNorms: norms, overlaps: overlaps, secondLayer: a)
    }
}
