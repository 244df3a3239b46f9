import Wasserstein

/// A setting of the mean-field layer, named in the library's words (the Swift parameter it
/// comes from): what a ``MeanFieldError`` points at.
///
/// A front end that read the value from somewhere else (an experiment spec, a command-line
/// option) maps the parameter to its own name when it reports the error; the library does not
/// know those names.
public enum MeanFieldParameter: String, Sendable, CaseIterable {
    /// `NetworkModel.inputDimension`, `ReducedSetting.inputDimension`: the input dimension `d`.
    case inputDimension = "input dimension d"
    /// `Teacher` or `ReducedTeacher` directions.
    case teacherDirections = "teacher directions"
    /// `Teacher` or `ReducedTeacher` coefficients.
    case teacherCoefficients = "teacher coefficients"
    /// `Teacher` or `ReducedTeacher` label noise.
    case teacherNoise = "teacher noise"
    /// `InitialLaw.aMean`, `ReducedInitialLaw.aMean`.
    case secondLayerMean = "initial second-layer mean aMean"
    /// `InitialLaw.aStd`, `ReducedInitialLaw.aStd`.
    case secondLayerSpread = "initial second-layer spread aStd"
    /// `InitialLaw.wMean`.
    case firstLayerMean = "initial first-layer mean wMean"
    /// `InitialLaw.wStd`.
    case firstLayerSpread = "initial first-layer spread wStd"
    /// `ReducedInitialLaw.gamma`, the radial spread `wStd sqrt(d)`.
    case radialSpread = "initial radial spread gamma"
    /// The weight decay `lambda` (`EnergySettings.lambda`, `weightDecay`).
    case weightDecay = "weight decay lambda"
    /// The inverse temperature `beta` of the entropy term.
    case inverseTemperature = "inverse temperature beta"
    /// A number of particles.
    case particleCount = "particle count"
    /// A particle array (row-major, `count x D`).
    case particles = "particles"
    /// `Experiment.initialParticles`.
    case initialParticles = "initial particles"
    /// The SGD step `eta` (`SGDSettings.eta`, `ReducedFlowSettings.eta`).
    case stepSize = "step size eta"
    /// The time horizon.
    case horizon = "horizon"
    /// The time between records (`recordEvery`).
    case recordInterval = "record interval"
    /// `SGDSettings.noise`: Langevin noise in the dynamics.
    case noise = "noisy dynamics"
    /// The multipass training-set size (`SGDKind.multipass(samples:)`).
    case trainingSamples = "training-set size"
    /// `KernelOptions.quadratureNodes`, `ReducedKernels` quadrature nodes.
    case quadratureNodes = "quadrature nodes"
    /// `ReducedKernels` sphere nodes.
    case sphereNodes = "sphere nodes"
    /// `ReducedFlowSettings.stopBelowRisk`.
    case riskThreshold = "risk threshold"
    /// The grid of a reduced grid energy.
    case grid = "grid"
    /// Reduced points `(a, s, r)` or `(s, r)`.
    case points = "points"
    /// Weights of a law.
    case weights = "weights"
    /// A reduced law.
    case law = "law"
    /// A projection basis.
    case basis = "basis"
    /// A projection direction.
    case direction = "direction"
    /// `ReducedInitialLaw.Nodes`: the quantisation nodes per axis.
    case quantisationNodes = "quantisation nodes"
    /// The points of a `TabulatedMeanFieldEnergy`.
    case tabulatedPoints = "tabulated points"
}

/// The errors of the mean-field layer.
///
/// Every case names the setting at fault as a ``MeanFieldParameter``, in library words. A
/// command-line front end maps it to the spec key or option the user wrote (Experiments keeps that
/// table) and prints one line.
public enum MeanFieldError: Error, Equatable, Sendable, CustomStringConvertible {
    /// A setting outside its domain: the parameter, the rejected value as text, and what it
    /// must satisfy.
    case invalidSetting(parameter: MeanFieldParameter, value: String, requirement: String)
    /// A vector setting of the wrong length (a teacher direction, an initial mean, a particle
    /// array).
    case lengthMismatch(parameter: MeanFieldParameter, expected: Int, actual: Int)

    /// The parameter this error refers to.
    public var parameter: MeanFieldParameter {
        switch self {
        case .invalidSetting(let parameter, _, _), .lengthMismatch(let parameter, _, _): return parameter
        }
    }

    public var description: String { describing(parameter.rawValue) }

    /// The message with the parameter called `name` (a front end's word for it).
    public func describing(_ name: String) -> String {
        switch self {
        case .invalidSetting(_, let value, let requirement):
            return MessageText.escaped("invalid \(name) = \(value): \(requirement)")
        case .lengthMismatch(_, let expected, let actual):
            return MessageText.escaped("invalid \(name): expected \(expected) values, got \(actual)")
        }
    }
}

@inline(__always)
func require(_ condition: Bool, _ parameter: MeanFieldParameter, _ value: @autoclosure () -> String, _ requirement: String) throws {
    if !condition { throw MeanFieldError.invalidSetting(parameter: parameter, value: value(), requirement: requirement) }
}

@inline(__always)
func requireFinite(_ values: [Double], _ parameter: MeanFieldParameter) throws {
    for (i, v) in values.enumerated() where !v.isFinite {
        throw MeanFieldError.invalidSetting(parameter: parameter, value: "\(v) (entry \(i))", requirement: "must be finite")
    }
}
