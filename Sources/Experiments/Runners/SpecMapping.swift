import GradientFlows
import MeanField
import Wasserstein

/// Builds the mean-field objects a spec describes.
extension ExperimentSpec {
    /// The network model, or an error naming `model` for the oracle spec that has none.
    public func networkModel() throws -> NetworkModel {
        guard let m = model else { throw ExperimentError.invalidSpec(key: "model", reason: "missing (this command needs a model)") }
        return try NetworkModel(activation: Activation(specName: m.activation), inputDimension: m.inputDimension,
                            secondLayer: m.secondLayer == .trained ? .trained : .fixed,
                            inputs: m.inputs == .gaussian ? .gaussian : .sphere)
    }

    /// The teacher.
    public func teacherModel() throws -> Teacher {
        switch teacher {
        case .neurons(let directions, let coefficients, let noise, let activation)?:
            let own = try activation.map { name -> Activation in
                guard let a = Activation(name: name) else {
                    throw ExperimentError.invalidSpec(key: "teacher.activation", reason: "unknown activation \"\(name)\"")
                }
                return a
            }
            return .neurons(directions: directions, coefficients: coefficients, noise: noise, activation: own)
        case .linear(let b, let noise)?:
            return .linear(coefficients: b, noise: noise)
        case nil:
            throw ExperimentError.invalidSpec(key: "teacher", reason: "missing (this command needs a teacher)")
        }
    }

    /// The initial law of the particles.
    public var initialLaw: InitialLaw {
        InitialLaw(aMean: initialization.a?.mean ?? 1, aStd: initialization.a?.std ?? 0,
                   wMean: initialization.w.mean, wStd: initialization.w.std)
    }

    /// The population risk of the model against the teacher (closed forms or quadrature).
    public func populationRisk() throws -> PopulationRisk {
        try PopulationRisk(model: networkModel(), teacher: teacherModel())
    }

    /// The direction `w*` of a single-neuron teacher (for the `<w, w*>/|w*|` marginal), or `b*`
    /// of a linear teacher; `nil` for several neurons.
    public var teacherDirection: [Double]? {
        switch teacher {
        case .neurons(let directions, _, _, _)? where directions.count == 1: return directions[0]
        case .linear(let b, _)?: return b
        default: return nil
        }
    }

    /// The particle-dynamics settings, or an error naming `sgd` when the spec has none.
    public func sgdExperiment(recordParticles: Bool = false) throws -> SGDExperiment {
        let s = try sgdSection()
        let kind: SGDKind
        switch s.kind {
        case .online: kind = .online
        case .population: kind = .population
        case .multipass: kind = .multipass(samples: s.samples ?? 0)
        }
        var e = SGDExperiment(model: try networkModel(), teacher: try teacherModel(), initialization: initialLaw,
                              energy: EnergyParameters(lambda: energy.lambda, beta: energy.beta), particles: particles,
                              horizon: horizon, seed: seed, sgd: SGDSettings(eta: s.eta, kind: kind, noise: s.noise),
                              recordEvery: recordEvery)
        e.recordParticles = recordParticles
        if let sgdSeed = s.seed {
            // The initial cloud still comes from `seed` (the one JKO starts from); only the
            // dynamics' own stream changes.
            var g = Xoshiro256StarStar(seed: seed)
            e.initialParticles = initialLaw.sample(model: e.model, count: particles, using: &g)
            e.seed = sgdSeed
        }
        try e.validate()
        return e
    }
}
