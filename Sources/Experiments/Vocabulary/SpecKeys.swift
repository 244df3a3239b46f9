import MeanField
import Wasserstein

/// The one table from the libraries' parameter names to the words a user of the command line
/// wrote: spec keys for ``MeanFieldParameter``, options for the remedies the Wasserstein layer
/// names. The libraries speak only in their own words; errors are translated here when reported.
public enum SpecKeys {
    /// The spec key that sets each mean-field parameter; parameters no spec sets (arrays passed
    /// between library calls) have none and keep their library name.
    static let meanField: [MeanFieldParameter: String] = [
        .inputDimension: "model.input_dimension",
        .teacherDirections: "teacher.directions",
        .teacherCoefficients: "teacher.coefficients",
        .teacherNoise: "teacher.noise",
        .secondLayerMean: "initialization.a.mean",
        .secondLayerSpread: "initialization.a.std",
        .firstLayerMean: "initialization.w.mean",
        .firstLayerSpread: "initialization.w.std",
        .radialSpread: "initialization.w.std",
        .weightDecay: "energy.lambda",
        .inverseTemperature: "energy.beta",
        .particleCount: "particles",
        .initialParticles: "initial_particles",
        .stepSize: "sgd.eta",
        .horizon: "horizon",
        .recordInterval: "record_every",
        .noise: "sgd.noise",
        .trainingSamples: "sgd.samples",
        .quadratureNodes: "quadrature_nodes",
        .sphereNodes: "sphere_nodes",
        .riskThreshold: "risk_threshold",
        .grid: "grid",
        .quantisationNodes: "nodes",
    ]

    /// The remedies the Wasserstein layer names in its messages, and the command-line option
    /// that applies each.
    static let remedies: [(library: String, option: String)] = [
        ("MassPolicy.normalize", "--normalize"),
        ("use the exact method", "--method exact"),
    ]

    /// The spec key of a mean-field parameter, `nil` when no spec key sets it.
    public static func key(for parameter: MeanFieldParameter) -> String? { meanField[parameter] }

    /// The spec key a mean-field error points at, `nil` when no spec key sets the parameter.
    public static func key(for error: MeanFieldError) -> String? { key(for: error.parameter) }

    /// A mean-field error as a command-line user reads it: the parameter named by its spec key.
    public static func message(for error: MeanFieldError) -> String {
        error.describing(key(for: error) ?? error.parameter.rawValue)
    }

    /// A Wasserstein error as a command-line user reads it: the library's remedy followed by the
    /// option that applies it.
    public static func message(for error: WassersteinError) -> String {
        let text = error.description
        let options = remedies.filter { text.contains($0.library) }.map(\.option)
        return options.isEmpty ? text : text + " (\(options.joined(separator: ", ")) at the command line)"
    }
}

// MARK: - Spec names of the library's enums

extension Activation {
    /// Parses `model.activation` (`relu`, `erf`, `tanh`, `sigmoid`, `linear`).
    /// - Throws: ``ExperimentError/invalidSpec(key:reason:)`` naming `model.activation`.
    public init(specName name: String) throws {
        guard let a = Activation(name: name) else {
            throw ExperimentError.invalidSpec(key: "model.activation", reason: "invalid value \"\(name)\": must be one of relu, erf, tanh, sigmoid, linear")
        }
        self = a
    }
}

extension SecondLayer {
    /// Parses `model.second_layer` (`trained` or `fixed`).
    /// - Throws: ``ExperimentError/invalidSpec(key:reason:)`` naming `model.second_layer`.
    public init(specName name: String) throws {
        guard let v = SecondLayer(rawValue: name.lowercased()) else {
            throw ExperimentError.invalidSpec(key: "model.second_layer", reason: "invalid value \"\(name)\": must be trained or fixed")
        }
        self = v
    }
}

extension InputDistribution {
    /// Parses `model.inputs` (`gaussian` or `sphere`).
    /// - Throws: ``ExperimentError/invalidSpec(key:reason:)`` naming `model.inputs`.
    public init(specName name: String) throws {
        guard let v = InputDistribution(rawValue: name.lowercased()) else {
            throw ExperimentError.invalidSpec(key: "model.inputs", reason: "invalid value \"\(name)\": must be gaussian or sphere")
        }
        self = v
    }
}

extension SGDKind {
    /// Parses `sgd.kind` (`online`, `multipass`, `population`); `samples` is `sgd.samples`, the
    /// size of the multipass training set (required for `multipass`, ignored otherwise).
    /// - Throws: ``ExperimentError/invalidSpec(key:reason:)`` naming `sgd.kind` or `sgd.samples`.
    public init(specName name: String, samples: Int? = nil) throws {
        switch name.lowercased() {
        case "online": self = .online
        case "population": self = .population
        case "multipass":
            guard let samples else {
                throw ExperimentError.invalidSpec(key: "sgd.samples", reason: "missing: multipass SGD needs the training-set size sgd.samples")
            }
            guard samples >= 1 else {
                throw ExperimentError.invalidSpec(key: "sgd.samples", reason: "invalid value \(samples): the multipass training set needs >= 1 samples")
            }
            self = .multipass(samples: samples)
        default:
            throw ExperimentError.invalidSpec(key: "sgd.kind", reason: "invalid value \"\(name)\": must be online, multipass or population")
        }
    }
}
