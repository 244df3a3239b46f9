import Foundation
import MeanField
import Wasserstein

/// An experiment described in a JSON file: the model, the teacher, the initial law, the energy,
/// and the settings of the particle dynamics (`sgd`) and of the JKO scheme (`jko`).
///
/// One spec drives `wasserstein sgd`, `wasserstein jko` and `wasserstein compare`, so that all
/// three start from the same initial law and measure the same energy. See Docs/Guide.md for the
/// full list of keys. A spec without `model` and with `"energy": {"potential": "quadratic"}`
/// describes the Ornstein-Uhlenbeck oracle.
public struct ExperimentSpec: Sendable, Equatable {
    /// The student network; `nil` for the quadratic-potential oracle.
    public var model: ModelSpec?
    /// The teacher producing labels; `nil` for the oracle.
    public var teacher: TeacherSpec?
    /// The initial law of the particles.
    public var initialization: InitializationSpec
    /// The energy: weight decay `lambda`, inverse temperature `beta` (nil = no entropy), potential.
    public var energy: EnergySpec
    /// The number of particles `M`.
    public var particles: Int
    /// The final time `T` (in units of t = k * eta = k * tau).
    public var horizon: Double
    /// The seed of every random draw of the run.
    public var seed: UInt64
    /// Particle dynamics settings (required by `sgd` and `compare`).
    public var sgd: SGDSpec?
    /// JKO settings (required by `jko` and `compare`).
    public var jko: JKOSpec?
    /// Record every this much time t.
    public var recordEvery: Double
    /// The most memory, in bytes, a run of this spec may need (spec key `memory_limit`,
    /// overridden by the command-line option `--memory-limit`); `nil` means the machine's
    /// physical memory. Runs are estimated before they start (see ``MemoryEstimate``).
    public var memoryLimit: Double? = nil

    /// The dimension `D` of a particle: `d + 1` with a trained second layer, `d` otherwise, and
    /// the length of the initial mean for the oracle.
    public var parameterDimension: Int {
        if let model { return model.secondLayer == .trained ? model.inputDimension + 1 : model.inputDimension }
        return initialization.w.mean.count
    }

    /// The `sgd` section, or an error naming it when the spec has none. Commands that need the
    /// particle dynamics read it through here once, so that no path force-unwraps the optional.
    public func sgdSection(_ purpose: String = "needed by this command") throws -> SGDSpec {
        guard let sgd else { throw ExperimentError.invalidSpec(key: "sgd", reason: "missing (\(purpose))") }
        return sgd
    }

    /// The `jko` section, or an error naming it when the spec has none.
    public func jkoSection(_ purpose: String = "needed by this command") throws -> JKOSpec {
        guard let jko else { throw ExperimentError.invalidSpec(key: "jko", reason: "missing (\(purpose))") }
        return jko
    }

    /// The `model` section, or an error naming it when the spec (an oracle spec) has none.
    public func modelSection(_ purpose: String = "needed by this command") throws -> ModelSpec {
        guard let model else { throw ExperimentError.invalidSpec(key: "model", reason: "missing (\(purpose))") }
        return model
    }
}

/// The student network.
public struct ModelSpec: Sendable, Equatable {
    public enum SecondLayer: String, Sendable { case trained, fixed }
    public enum Inputs: String, Sendable { case gaussian, sphere }
    /// `relu`, `erf`, `tanh`, `sigmoid` or `linear`.
    public var activation: String
    /// The input dimension `d`.
    public var inputDimension: Int
    public var secondLayer: SecondLayer
    public var inputs: Inputs
    public static let activations = ["relu", "erf", "tanh", "sigmoid", "linear"]
    /// The activations a teacher may have: the student's, and `he2` (`u^2 - 1`, information
    /// exponent 2).
    public static let teacherActivations = ["relu", "erf", "tanh", "sigmoid", "linear", "he2"]
}

/// Where the labels come from.
public enum TeacherSpec: Sendable, Equatable {
    /// `y = sum_k c_k s*(<w*_k, x>) + noise`, `s*` named by `activation` (`teacher.activation`,
    /// one of ``ModelSpec/teacherActivations``), or the student's activation when `nil`.
    case neurons(directions: [[Double]], coefficients: [Double], noise: Double, activation: String? = nil)
    /// `y = <b*, x> + noise`.
    case linear(coefficients: [Double], noise: Double)
}

/// A normal law, by mean and standard deviation.
public struct NormalSpec: Sendable, Equatable {
    public var mean: Double
    public var std: Double
}

extension SpecReader {
    /// `initialization.a` read from this `initialization` object: `{mean, std >= 0}` when the
    /// second layer is trained, `nil` otherwise, and an error naming `a` when it is given but
    /// not used (`unusedReason` says why). Shared by the experiment and reduced specs.
    func secondLayerInitialization(trained: Bool, unusedReason: String) throws -> NormalSpec? {
        guard trained else {
            if has("a") { throw fail("a", unusedReason) }
            return nil
        }
        let ar = try child("a")
        try ar.rejectUnknownKeys(allowed: ["mean", "std"])
        let std = try ar.number("std")
        guard std >= 0 else { throw ar.fail("std", "must be >= 0") }
        return NormalSpec(mean: try ar.number("mean"), std: std)
    }
}

/// The initial law: `a ~ N(a.mean, a.std^2)` (when trained), `w ~ N(w.mean, w.std^2 I)`.
public struct InitializationSpec: Sendable, Equatable {
    public var a: NormalSpec?
    /// The mean of `w`, one value per coordinate (a scalar in the file is repeated).
    public var w: (mean: [Double], std: Double)

    public static func == (l: InitializationSpec, r: InitializationSpec) -> Bool {
        l.a == r.a && l.w.mean == r.w.mean && l.w.std == r.w.std
    }
}

/// The energy being minimised.
public struct EnergySpec: Sendable, Equatable {
    public enum Potential: String, Sendable {
        /// The mean-field risk R of the model (the default).
        case risk
        /// No model: `F = (lambda/2) int |theta|^2 + (1/beta) int rho log rho`.
        case quadratic
    }
    public var potential: Potential
    /// Weight decay `lambda >= 0`.
    public var lambda: Double
    /// Inverse temperature `beta > 0`, or `nil` for no entropy.
    public var beta: Double?
}

/// Settings of the particle dynamics.
public struct SGDSpec: Sendable, Equatable {
    public enum Kind: String, Sendable { case online, multipass, population }
    /// The step size `eta` (time per step).
    public var eta: Double
    public var kind: Kind
    /// Whether to add the Langevin noise `sqrt(2 eta / beta) g` (needs finite beta).
    public var noise: Bool
    /// The training-set size `m` of multi-pass SGD.
    public var samples: Int?
    /// The seed of the dynamics' own draws (the samples `(x_k, y_k)` or the training set, and
    /// the Langevin noise), `sgd.seed`; `nil` uses the spec's `seed`, which always draws the
    /// initial particles. A separate seed runs several noise realisations from one initial cloud.
    public var seed: UInt64? = nil
}

/// Settings of the JKO scheme.
public struct JKOSpec: Sendable, Equatable {
    public enum Scheme: String, Sendable { case particle, grid }
    /// The time step `tau > 0`.
    public var tau: Double
    public var scheme: Scheme
    /// The particle scheme's transport (`jko.transport`, a `--method` word of ``MethodNames``:
    /// `exact`, or `sinkhorn` at `jko.epsilon` with ``Defaults/particleSinkhornOptions``).
    public var transport: TransportMethod
    /// Entropic regularisation for `transport = sinkhorn` (absolute, units of |x - y|^2).
    public var epsilon: Double?
    /// Grid bounds, one `[low, high]` per axis (grid scheme).
    public var bounds: [[Double]]?
    /// Grid points per axis (grid scheme).
    public var pointsPerAxis: Int?
    /// Whether the grid scheme computes the Gibbs fixed point `rho*` (when `beta` is finite) and
    /// reports `W2(rho_t, rho*)` along the run (`track_stationary`, default true).
    public var trackStationary: Bool = true
}

extension ExperimentSpec {
    /// The largest grid the grid scheme accepts, per axis.
    public static let maximumPointsPerAxis = 512

    /// The largest number of steps (SGD's `horizon / eta`, JKO's `horizon / tau`, SGD steps per
    /// JKO step `tau / eta`) a run accepts: `1e12`, as `SGDExperiment.maximumSteps` (MeanField).
    public static let maximumSteps = SGDExperiment.maximumSteps

    /// `round(span / step)`, or an error naming `key` when it exceeds ``maximumSteps``:
    /// converting the ratio of `horizon = 1e300` and `tau = 0.1` to `Int` used to trap.
    ///
    /// - Parameters:
    ///   - span: the time to cover (`horizon`, or `tau` for SGD steps per JKO step).
    ///   - step: the step (`tau`, `eta`).
    ///   - key: the spec key the error names.
    ///   - what: how the message names the ratio (`horizon / jko.tau`).
    public static func stepCount(_ span: Double, over step: Double, key: String, what: String) throws -> Int {
        let ratio = (span / step).rounded()
        guard ratio <= Double(maximumSteps) else {
            throw ExperimentError.invalidSpec(
                key: key, reason: "\(what) = \(String(format: "%.3g", span / step)) steps, above the limit of 1e12; raise \(key) or shorten the run")
        }
        return Int(clampingCount: ratio, limit: maximumSteps)
    }

    /// The largest spec file ``load(path:)`` reads (64 MiB; a spec is a few hundred bytes).
    public static let maximumFileBytes = 64 << 20

    /// Reads and validates a spec file: a regular file (not a pipe or device) of at most
    /// ``maximumFileBytes``.
    public static func load(path: String) throws -> ExperimentSpec {
        let bytes: [UInt8]
        do {
            bytes = try FileAccess.readBytes(path: path, maximumBytes: maximumFileBytes)
        } catch DataFileError.missing {
            throw ExperimentError.unreadableSpec(path: path, reason: "no such file")
        } catch DataFileError.unreadable(_, let reason) {
            throw ExperimentError.unreadableSpec(path: path, reason: "cannot read (\(reason))")
        }
        return try parse(data: Data(bytes), file: path)
    }

    /// Parses and validates spec text. `file` only names it in error messages.
    public static func parse(data: Data, file: String = "<spec>") throws -> ExperimentSpec {
        let r = try SpecReader.parse(data: data, file: file)
        try r.rejectUnknownKeys(allowed: ["model", "teacher", "initialization", "energy", "particles", "horizon",
                                          "seed", "sgd", "jko", "record_every", "dimension", "name", "description", "memory_limit"])
        for k in ["name", "description"] where r.has(k) { _ = try r.string(k) }
        // Energy first: it decides whether a model is needed.
        let e = try r.child("energy")
        try e.rejectUnknownKeys(allowed: ["lambda", "beta", "potential"])
        let potential = EnergySpec.Potential(rawValue: try e.choice("potential", ["risk", "quadratic"], default: "risk"))!
        let lambda = try e.number("lambda", default: 0)
        guard lambda >= 0 else { throw e.fail("lambda", "must be >= 0, got \(lambda)") }
        let beta = try e.optionalNumber("beta")
        if let beta, !(beta > 0) { throw e.fail("beta", "must be > 0 (use null for no entropy), got \(beta)") }
        if potential == .quadratic && beta == nil && lambda == 0 {
            throw e.fail("beta", "the quadratic potential needs lambda > 0 or a finite beta, or nothing moves")
        }
        let energy = EnergySpec(potential: potential, lambda: lambda, beta: beta)

        var model: ModelSpec? = nil
        var teacher: TeacherSpec? = nil
        if potential == .risk {
            let m = try r.child("model")
            try m.rejectUnknownKeys(allowed: ["activation", "input_dimension", "second_layer", "inputs"])
            let activation = try m.choice("activation", ModelSpec.activations)
            let d = try m.integer("input_dimension")
            guard d >= 1 else { throw m.fail("input_dimension", "must be >= 1, got \(d)") }
            guard d <= 100_000 else { throw m.fail("input_dimension", "must be <= 100000, got \(d)") }
            let second = ModelSpec.SecondLayer(rawValue: try m.choice("second_layer", ["trained", "fixed"], default: "trained"))!
            let inputs = ModelSpec.Inputs(rawValue: try m.choice("inputs", ["gaussian", "sphere"], default: "gaussian"))!
            model = ModelSpec(activation: activation, inputDimension: d, secondLayer: second, inputs: inputs)
            teacher = try parseTeacher(r.child("teacher"), d: d)
        } else {
            for k in ["model", "teacher"] where r.has(k) {
                throw r.fail(k, "not used with energy.potential = quadratic (remove it)")
            }
        }

        let i = try r.child("initialization")
        try i.rejectUnknownKeys(allowed: ["a", "w"])
        let a = try i.secondLayerInitialization(
            trained: model?.secondLayer == .trained,
            unusedReason: model == nil ? "not used without a model" : "not used with model.second_layer = fixed")
        let wr = try i.child("w")
        try wr.rejectUnknownKeys(allowed: ["mean", "std"])
        var wMean = try wr.scalarOrVector("mean")
        let wStd = try wr.number("std")
        guard wStd >= 0 else { throw wr.fail("std", "must be >= 0") }
        let dimensionKey = try r.optionalInteger("dimension")
        if let model {
            if dimensionKey != nil {
                throw r.fail("dimension", "only for a spec without a model (with one, D follows from model.input_dimension and model.second_layer)")
            }
            if wMean.count == 1 { wMean = [Double](repeating: wMean[0], count: model.inputDimension) }
            guard wMean.count == model.inputDimension else {
                throw wr.fail("mean", "has \(wMean.count) entries, model.input_dimension is \(model.inputDimension)")
            }
        } else {
            if let dd = dimensionKey {
                guard dd >= 1 else { throw r.fail("dimension", "must be >= 1") }
                // As model.input_dimension: a scalar mean is repeated dd times below.
                guard dd <= 100_000 else { throw r.fail("dimension", "must be <= 100000, got \(dd)") }
                if wMean.count == 1 { wMean = [Double](repeating: wMean[0], count: dd) }
                guard wMean.count == dd else { throw wr.fail("mean", "has \(wMean.count) entries, dimension is \(dd)") }
            }
        }

        let particles = try r.integer("particles")
        guard particles >= 1 else { throw r.fail("particles", "must be >= 1, got \(particles)") }
        guard particles <= 10_000_000 else { throw r.fail("particles", "must be <= 10^7, got \(particles)") }
        let horizon = try r.number("horizon")
        guard horizon > 0 else { throw r.fail("horizon", "must be > 0, got \(horizon)") }
        let seedValue = try r.seed("seed", default: 0)
        let recordEvery = try r.number("record_every", default: horizon / 20)
        guard recordEvery > 0 else { throw r.fail("record_every", "must be > 0, got \(recordEvery)") }
        let memoryLimit = try MemoryEstimate.limit(in: r)

        var sgd: SGDSpec? = nil
        if let s = try r.optionalChild("sgd") {
            try s.rejectUnknownKeys(allowed: ["eta", "kind", "noise", "samples", "seed"])
            let eta = try s.number("eta")
            guard eta > 0 else { throw s.fail("eta", "must be > 0, got \(eta)") }
            guard eta <= horizon else { throw s.fail("eta", "is larger than the horizon \(horizon)") }
            _ = try stepCount(horizon, over: eta, key: s.key("eta"), what: "horizon / sgd.eta")
            let kind = SGDSpec.Kind(rawValue: try s.choice("kind", ["online", "multipass", "population"], default: "online"))!
            let noise = try s.bool("noise", default: beta != nil)
            if noise && beta == nil { throw s.fail("noise", "needs a finite energy.beta") }
            let samples = try s.optionalInteger("samples")
            if kind == .multipass {
                guard let samples else { throw s.fail("samples", "missing (the training-set size of multi-pass SGD)") }
                guard samples >= 1 else { throw s.fail("samples", "must be >= 1") }
            }
            if model == nil {
                throw r.fail("sgd", "the particle dynamics need a model (the quadratic-potential oracle runs with `jko` only)")
            }
            let sgdSeed = s.has("seed") ? try s.seed("seed", default: 0) : nil
            sgd = SGDSpec(eta: eta, kind: kind, noise: noise, samples: samples, seed: sgdSeed)
        }

        var jko: JKOSpec? = nil
        if let j = try r.optionalChild("jko") {
            try j.rejectUnknownKeys(allowed: ["tau", "scheme", "transport", "epsilon", "bounds", "points_per_axis", "track_stationary"])
            let trackStationary = try j.bool("track_stationary", default: true)
            let tau = try j.number("tau")
            guard tau > 0 else { throw j.fail("tau", "must be > 0, got \(tau)") }
            guard tau <= horizon else { throw j.fail("tau", "is larger than the horizon \(horizon)") }
            _ = try stepCount(horizon, over: tau, key: j.key("tau"), what: "horizon / jko.tau")
            let scheme = JKOSpec.Scheme(rawValue: try j.choice("scheme", ["particle", "grid"], default: "particle"))!
            let transportName = try j.choice("transport", ["exact", "sinkhorn"], default: "exact")
            let epsilon = try j.optionalNumber("epsilon")
            if MethodNames.isEntropic(transportName) {
                guard let epsilon else { throw j.fail("epsilon", "missing (needed by transport = sinkhorn)") }
                guard epsilon > 0 else { throw j.fail("epsilon", "must be > 0, got \(epsilon)") }
            } else if let epsilon, !(epsilon > 0) {
                throw j.fail("epsilon", "must be > 0, got \(epsilon)")
            }
            var bounds: [[Double]]? = nil
            var points: Int? = nil
            // The grid keys are read whenever present: `compare` runs the grid scheme beside the
            // particle scheme when they are given and D <= 2.
            if scheme == .grid || j.has("bounds") || j.has("points_per_axis") {
                let dim = model.map { $0.secondLayer == .trained ? $0.inputDimension + 1 : $0.inputDimension } ?? wMean.count
                guard dim <= 2 else {
                    throw j.fail(scheme == .grid ? "scheme" : "bounds", "the grid scheme needs a parameter dimension D <= 2, this spec has D = \(dim)")
                }
                let b = try j.matrix("bounds")
                guard b.count == dim else { throw j.fail("bounds", "needs one [low, high] pair per axis (\(dim)), got \(b.count)") }
                for (k, pair) in b.enumerated() {
                    guard pair.count == 2, pair[0] < pair[1] else {
                        throw ExperimentError.invalidSpec(key: j.key("bounds") + "[\(k)]", reason: "must be [low, high] with low < high")
                    }
                }
                bounds = b
                let p = try j.integer("points_per_axis")
                guard p >= 8 else { throw j.fail("points_per_axis", "must be >= 8, got \(p) (grid too small)") }
                guard p <= maximumPointsPerAxis else {
                    throw j.fail("points_per_axis", "must be <= \(maximumPointsPerAxis), got \(p) (grid too large)")
                }
                points = p
            }
            let transport = try MethodNames.method(named: transportName, epsilon: epsilon ?? 0,
                                                   options: Defaults.particleSinkhornOptions)
            jko = JKOSpec(tau: tau, scheme: scheme, transport: transport, epsilon: epsilon, bounds: bounds, pointsPerAxis: points,
                          trackStationary: trackStationary)
        }

        return ExperimentSpec(model: model, teacher: teacher, initialization: InitializationSpec(a: a, w: (wMean, wStd)),
                              energy: energy, particles: particles, horizon: horizon, seed: seedValue,
                              sgd: sgd, jko: jko, recordEvery: recordEvery, memoryLimit: memoryLimit)
    }

    private static func parseTeacher(_ t: SpecReader, d: Int) throws -> TeacherSpec {
        let kind = try t.choice("kind", ["neurons", "linear"])
        let noise = try t.number("noise", default: 0)
        guard noise >= 0 else { throw t.fail("noise", "must be >= 0 (a standard deviation)") }
        switch kind {
        case "neurons":
            try t.rejectUnknownKeys(allowed: ["kind", "directions", "coefficients", "noise", "activation"])
            let activation = t.has("activation") ? try t.choice("activation", ModelSpec.teacherActivations) : nil
            let directions = try t.matrix("directions")
            guard !directions.isEmpty else { throw t.fail("directions", "needs at least one direction") }
            for (k, w) in directions.enumerated() where w.count != d {
                throw ExperimentError.invalidSpec(key: t.key("directions") + "[\(k)]", reason: "has \(w.count) entries, model.input_dimension is \(d)")
            }
            let c = try t.has("coefficients") ? t.numbers("coefficients") : [Double](repeating: 1, count: directions.count)
            guard c.count == directions.count else {
                throw t.fail("coefficients", "has \(c.count) entries for \(directions.count) directions")
            }
            return .neurons(directions: directions, coefficients: c, noise: noise, activation: activation)
        default:
            try t.rejectUnknownKeys(allowed: ["kind", "coefficients", "noise"])
            let b = try t.numbers("coefficients")
            guard b.count == d else { throw t.fail("coefficients", "has \(b.count) entries, model.input_dimension is \(d)") }
            return .linear(coefficients: b, noise: noise)
        }
    }
}
