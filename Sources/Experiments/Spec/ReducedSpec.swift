import Foundation
import MeanField
import Wasserstein

/// A reduced experiment: the mean-field flow of a rotation-invariant law in the coordinates
/// `z = (a, s, r)` of the teacher's span (`wasserstein reduced`, `wasserstein dimensions`).
///
/// Its keys mirror those of ``ExperimentSpec`` where they mean the same thing (`model.activation`,
/// `energy.lambda`, `horizon`, `seed`, ...). What differs follows from the symmetry: inputs are
/// Gaussian, the teacher is given in coordinates of its own span (so that one spec serves every
/// `d`, `infinity` included), and the initial law is `w ~ N(0, gamma^2/d I_d)`, fixed by `gamma`
/// (the typical `|w|`) instead of a per-coordinate deviation. See Docs/Guide.md, section 3.5.
public struct ReducedSpec: Sendable, Equatable {
    /// How the law moves.
    public enum Dynamics: String, Sendable {
        /// The noiseless mean-field flow of `R + (lambda/2) E|theta|^2` (the population flow).
        case population
        /// The flow of `F_{lambda,beta}`: Langevin noise `sqrt(2/beta)`, which in `z` is a radial
        /// drift `(n - 1)/(beta r)` plus the noise.
        case noisy
    }

    /// How the reduced flow is discretised.
    public enum Scheme: String, Sendable {
        /// Weighted particles in `z`, explicit Euler (`ReducedPopulationFlow`).
        case particles
        /// The JKO scheme on an `(s, r)` or `(a, s, r)` grid.
        case grid
    }

    /// The student's activation (`model.activation`).
    public var activation: String
    public var secondLayer: ModelSpec.SecondLayer
    /// `model.input_dimension`: a finite `d` or infinity; `nil` only where a command sets it
    /// (`dimensions`).
    public var inputDimension: ReducedDimension?
    public var teacher: ReducedTeacherSpec
    /// `a ~ N(mean, std^2)` with a trained second layer, else `nil`.
    public var secondLayerInitialization: NormalSpec?
    /// `gamma` of `w ~ N(0, gamma^2/d I_d)`.
    public var gamma: Double
    /// `lambda` and `beta` (the potential is always the risk).
    public var lambda: Double
    public var beta: Double?
    public var dynamics: Dynamics
    public var scheme: Scheme
    /// The Euler step of the particle scheme (time per step).
    public var eta: Double
    public var horizon: Double
    public var recordEvery: Double
    public var seed: UInt64
    /// Nodes of the deterministic quantisation of the initial law (particle scheme), unless
    /// ``sampledParticles`` is set.
    public var nodes: ReducedNodesSpec
    /// Draw this many equally weighted points instead of quantising (particle scheme).
    public var sampledParticles: Int?
    /// `kernels.sphere_nodes`: the rule for `t = <u, u'>` (`nil`: the default for `n`).
    public var sphereNodes: Int?
    /// `kernels.quadrature_nodes`: Gauss-Hermite nodes per axis for kernels without a closed form.
    public var quadratureNodes: Int?
    /// The grid scheme's settings.
    public var grid: ReducedGridSpec?
    /// Online SGD in full `d` for `dimensions --sgd`.
    public var sgd: ReducedSGDSpec?
    /// `memory_limit` (bytes): refuse runs estimated to need more (``reducedMemory(scheme:)``,
    /// ``dimensionsMemory(dimensions:sgd:concurrent:)``); `nil`: the machine's physical memory.
    /// `--memory-limit` overrides it.
    public var memoryLimit: Double? = nil

    /// The number of reduced coordinates `(a,) s_1 ... s_k, r`.
    public var coordinateCount: Int { (secondLayer == .trained ? 1 : 0) + teacher.spanDimension + 1 }
}

extension ReducedDimension {
    /// Parses `20` or `infinity` (also `inf`), lowercase and without spaces, as
    /// `model.input_dimension` and `--dimensions` spell them; `nil` for anything else
    /// (`"INFINITY"`, `"Inf"`, `" infinity"`: one spelling, so a typo cannot pass unnoticed;
    /// a range check is the caller's).
    public init?(text t: String) {
        if t == "infinity" || t == "inf" {
            self = .infinity
        } else if let d = Int(t) {
            self = .finite(d)
        } else {
            return nil
        }
    }
}

/// The teacher of a reduced spec, in coordinates of its own span.
public struct ReducedTeacherSpec: Sendable, Equatable {
    /// One row per neuron, each with `k = 1` or `2` coordinates in an orthonormal basis of the
    /// span (`[[1]]`: `w* = e_1`).
    public var directions: [[Double]]
    public var coefficients: [Double]
    public var noise: Double
    /// The teacher's activation (`teacher.activation`), `nil` for the student's.
    public var activation: String?
    /// `k`.
    public var spanDimension: Int { directions.first?.count ?? 1 }
}

/// `nodes` of a reduced spec (and `--reference-nodes`): the node counts of the tensor-product
/// quantisation of the initial law, as the library takes them.
public typealias ReducedNodesSpec = ReducedInitialLaw.Nodes

/// `grid` of a reduced spec.
public struct ReducedGridSpec: Sendable, Equatable {
    /// The JKO step.
    public var tau: Double
    /// One `[low, high]` per axis: `(s, r)` with a fixed second layer, `(a, s, r)` with a trained one.
    public var bounds: [[Double]]
    /// Points per axis, in the order of `bounds`.
    public var pointsPerAxis: [Int]
    /// The blur of the entropic transport (`nil`: the scheme's default).
    public var epsilon: Double?
    /// Whether to compute the Gibbs point of `F` (noisy dynamics) and `W2` to it.
    public var trackStationary: Bool
}

/// `sgd` of a reduced spec: online SGD in full `d` with the step `eta = eta0 / d`.
public struct ReducedSGDSpec: Sendable, Equatable {
    /// `eta0`: the step in `d` is `eta0 / d`.
    public var eta0: Double
    /// The width `M`.
    public var particles: Int
    /// The SGD seed (default: the spec's seed).
    public var seed: UInt64
    /// Time between the SGD's risk records (the threshold crossing is interpolated between them).
    public var recordEvery: Double
    /// Run SGD only up to this `d` (its cost grows like `d^2`: `d / eta0` steps of `O(M d)`).
    public var maxDimension: Int?
}

extension ReducedSpec {
    /// The largest grid per axis.
    public static let maximumPointsPerAxis = 256
    /// The largest grid (2^22 nodes, 32 MiB per density).
    public static let maximumGridNodes = 1 << 22

    /// Reads and validates a reduced spec file.
    public static func load(path: String, requireDimension: Bool = true) throws -> ReducedSpec {
        guard FileManager.default.fileExists(atPath: path) else {
            throw ExperimentError.unreadableSpec(path: path, reason: "no such file")
        }
        guard let data = FileManager.default.contents(atPath: path) else {
            throw ExperimentError.unreadableSpec(path: path, reason: "cannot read")
        }
        return try parse(data: data, file: path, requireDimension: requireDimension)
    }

    /// Parses and validates reduced-spec text. `requireDimension`: whether
    /// `model.input_dimension` must be present (`dimensions` sets it itself).
    public static func parse(data: Data, file: String = "<spec>", requireDimension: Bool = true) throws -> ReducedSpec {
        let r = try SpecReader.parse(data: data, file: file)
        try r.rejectUnknownKeys(allowed: ["model", "teacher", "initialization", "energy", "dynamics", "scheme", "eta",
                                          "horizon", "record_every", "seed", "nodes", "particles", "kernels", "grid", "sgd",
                                          "name", "description", "memory_limit"])
        for k in ["name", "description"] where r.has(k) { _ = try r.string(k) }

        // model
        let m = try r.child("model")
        try m.rejectUnknownKeys(allowed: ["activation", "input_dimension", "second_layer", "inputs"])
        let activation = try m.choice("activation", ModelSpec.activations)
        let second = ModelSpec.SecondLayer(rawValue: try m.choice("second_layer", ["trained", "fixed"], default: "trained"))!
        if m.has("inputs") {
            _ = try m.choice("inputs", ["gaussian"])
        }

        // teacher (before the dimension: d must exceed k)
        let t = try r.child("teacher")
        try t.rejectUnknownKeys(allowed: ["kind", "directions", "coefficients", "noise", "activation"])
        if t.has("kind") { _ = try t.choice("kind", ["neurons"]) }
        let teacherActivation = t.has("activation") ? try t.choice("activation", ModelSpec.teacherActivations) : nil
        let directions = try t.has("directions") ? t.matrix("directions") : [[1.0]]
        guard !directions.isEmpty else { throw t.fail("directions", "needs at least one direction") }
        let k = directions[0].count
        guard k == 1 || k == 2 else {
            throw t.fail("directions", "each direction has k = 1 or 2 coordinates in the teacher's span (got \(k))")
        }
        for (j, w) in directions.enumerated() where w.count != k {
            throw ExperimentError.invalidSpec(key: t.key("directions") + "[\(j)]", reason: "has \(w.count) coordinates, the first has \(k)")
        }
        guard directions.contains(where: { $0.contains { $0 != 0 } }) else { throw t.fail("directions", "are all zero") }
        let coefficients = try t.has("coefficients") ? t.numbers("coefficients") : [Double](repeating: 1, count: directions.count)
        guard coefficients.count == directions.count else {
            throw t.fail("coefficients", "has \(coefficients.count) entries for \(directions.count) directions")
        }
        let noise = try t.number("noise", default: 0)
        guard noise >= 0 else { throw t.fail("noise", "must be >= 0 (a standard deviation)") }
        let teacher = ReducedTeacherSpec(directions: directions, coefficients: coefficients, noise: noise, activation: teacherActivation)

        var dimension: ReducedDimension? = nil
        if m.has("input_dimension") {
            dimension = try parseDimension(m, k: k)
        } else if requireDimension {
            throw m.fail("input_dimension", "missing (a whole number > k, or \"infinity\")")
        }

        // initialization
        let i = try r.child("initialization")
        try i.rejectUnknownKeys(allowed: ["a", "w"])
        let a = try i.secondLayerInitialization(trained: second == .trained,
                                                unusedReason: "not used with model.second_layer = fixed")
        let wr = try i.child("w")
        try wr.rejectUnknownKeys(allowed: ["gamma"])
        let gamma = try wr.number("gamma")
        guard gamma >= 0 else { throw wr.fail("gamma", "must be >= 0 (w ~ N(0, gamma^2/d I_d)), got \(gamma)") }

        // energy and dynamics
        var lambda = 0.0
        var beta: Double? = nil
        if let e = try r.optionalChild("energy") {
            try e.rejectUnknownKeys(allowed: ["lambda", "beta"])
            lambda = try e.number("lambda", default: 0)
            guard lambda >= 0 else { throw e.fail("lambda", "must be >= 0, got \(lambda)") }
            beta = try e.optionalNumber("beta")
            if let b = beta, !(b > 0) { throw e.fail("beta", "must be > 0 (use null for no entropy), got \(b)") }
        }
        let dynamics = Dynamics(rawValue: try r.choice("dynamics", ["population", "noisy"], default: beta == nil ? "population" : "noisy"))!
        if dynamics == .noisy {
            guard beta != nil else { throw r.fail("dynamics", "noisy needs a finite energy.beta") }
            if dimension == .infinity {
                throw r.fail("dynamics", "noisy needs a finite model.input_dimension (the radial drift (n - 1)/(beta r) is infinite at d = infinity)")
            }
        } else if beta != nil {
            throw ExperimentError.invalidSpec(key: "energy.beta", reason: "only with dynamics = noisy (the population flow has no entropy)")
        }
        let scheme = Scheme(rawValue: try r.choice("scheme", ["particles", "grid"], default: "particles"))!

        // time
        let horizon = try r.number("horizon")
        guard horizon > 0 else { throw r.fail("horizon", "must be > 0, got \(horizon)") }
        var eta = horizon / 100
        if scheme == .particles || r.has("eta") {
            eta = try r.number("eta")
            guard eta > 0 else { throw r.fail("eta", "must be > 0, got \(eta)") }
            guard eta <= horizon else { throw r.fail("eta", "is larger than the horizon \(horizon)") }
            guard horizon / eta <= 1e9 else { throw r.fail("eta", "horizon / eta must be at most 1e9 steps") }
        }
        let recordEvery = try r.number("record_every", default: horizon / 20)
        guard recordEvery > 0 else { throw r.fail("record_every", "must be > 0, got \(recordEvery)") }
        let seed = try r.seed("seed", default: 0)
        let memoryLimit = try MemoryEstimate.limit(in: r)

        // the particle law
        var nodes = ReducedNodesSpec()
        if let n = try r.optionalChild("nodes") {
            try n.rejectUnknownKeys(allowed: ["a", "s", "r"])
            for (key, keyPath) in [("a", \ReducedNodesSpec.a), ("s", \ReducedNodesSpec.s), ("r", \ReducedNodesSpec.r)] where n.has(key) {
                let v = try n.integer(key)
                guard (1 ... 256).contains(v) else { throw n.fail(key, "must be in 1 ... 256, got \(v)") }
                nodes[keyPath: keyPath] = v
            }
            if n.has("a"), second == .fixed { throw n.fail("a", "not used with model.second_layer = fixed") }
        }
        let sampled = try r.optionalInteger("particles")
        if let p = sampled {
            guard p >= 1, p <= 1_000_000 else { throw r.fail("particles", "must be in 1 ... 10^6, got \(p)") }
            if r.has("nodes") { throw r.fail("particles", "give either nodes (a deterministic quantisation) or particles (a random draw), not both") }
        }
        let pointCount = sampled ?? Int(clampingCount: Double(second == .trained && (a?.std ?? 0) > 0 ? nodes.a : 1) * pow(Double(nodes.s), Double(k)) * Double(nodes.r),
                                                    limit: 1 << 53)
        guard pointCount <= 200_000 else {
            throw r.fail(sampled != nil ? "particles" : "nodes", "the law would have \(pointCount) points; at most 200000 (one step costs points^2)")
        }

        var sphereNodes: Int? = nil, quadratureNodes: Int? = nil
        if let kr = try r.optionalChild("kernels") {
            try kr.rejectUnknownKeys(allowed: ["sphere_nodes", "quadrature_nodes"])
            sphereNodes = try kr.optionalInteger("sphere_nodes")
            if let q = sphereNodes, !(1 ... 512).contains(q) { throw kr.fail("sphere_nodes", "must be in 1 ... 512, got \(q)") }
            quadratureNodes = try kr.optionalInteger("quadrature_nodes")
            if let q = quadratureNodes, !(1 ... 256).contains(q) { throw kr.fail("quadrature_nodes", "must be in 1 ... 256, got \(q)") }
        }

        var grid: ReducedGridSpec? = nil
        if scheme == .grid || r.has("grid") {
            let g = try r.child("grid")
            try g.rejectUnknownKeys(allowed: ["tau", "bounds", "points_per_axis", "epsilon", "track_stationary"])
            let tau = try g.number("tau")
            guard tau > 0 else { throw g.fail("tau", "must be > 0, got \(tau)") }
            guard tau <= horizon else { throw g.fail("tau", "is larger than the horizon \(horizon)") }
            guard horizon / tau <= 1e9 else { throw g.fail("tau", "horizon / tau must be at most 1e9 steps") }
            let axes = second == .trained ? ["a", "s", "r"] : ["s", "r"]
            guard k == 1 else { throw r.fail("scheme", "the grid scheme handles a teacher span of dimension k = 1 (its axes are \(axes.joined(separator: ", ")))") }
            let b = try g.matrix("bounds")
            guard b.count == axes.count else {
                throw g.fail("bounds", "needs one [low, high] pair per axis (\(axes.joined(separator: ", "))), got \(b.count)")
            }
            for (j, pair) in b.enumerated() {
                guard pair.count == 2, pair[0] < pair[1] else {
                    throw ExperimentError.invalidSpec(key: g.key("bounds") + "[\(j)]", reason: "must be [low, high] with low < high")
                }
            }
            guard b[axes.count - 1][0] >= 0 else {
                throw ExperimentError.invalidSpec(key: g.key("bounds") + "[\(axes.count - 1)]", reason: "the r axis must start at 0 or above (r = |P_perp w| >= 0)")
            }
            // One count for every axis, or one per axis.
            let counts = try g.scalarOrVector("points_per_axis")
            guard counts.count == 1 || counts.count == axes.count else {
                throw g.fail("points_per_axis", "needs one count or one per axis (\(axes.joined(separator: ", "))), got \(counts.count)")
            }
            var p = [Int]()
            for c in counts {
                guard c == c.rounded() else { throw g.fail("points_per_axis", "must be whole numbers, got \(c)") }
                // The messages print c as JSON does: Int(c) trapped at 1e308.
                guard c >= 8 else { throw g.fail("points_per_axis", "must be >= 8, got \(CSVFormat.formatNumber(c)) (grid too small)") }
                guard c <= Double(maximumPointsPerAxis) else {
                    throw g.fail("points_per_axis", "must be <= \(maximumPointsPerAxis), got \(CSVFormat.formatNumber(c)) (grid too large)")
                }
                p.append(Int(clampingCount: c, limit: maximumPointsPerAxis))
            }
            if p.count == 1 { p = [Int](repeating: p[0], count: axes.count) }
            guard p.reduce(1, *) <= maximumGridNodes else {
                throw g.fail("points_per_axis", "the grid would have \(p.reduce(1, *)) nodes; at most \(maximumGridNodes)")
            }
            let epsilon = try g.optionalNumber("epsilon")
            if let e = epsilon, !(e > 0) { throw g.fail("epsilon", "must be > 0, got \(e)") }
            grid = ReducedGridSpec(tau: tau, bounds: b, pointsPerAxis: p, epsilon: epsilon,
                                   trackStationary: try g.bool("track_stationary", default: true))
        }

        var sgd: ReducedSGDSpec? = nil
        if let s = try r.optionalChild("sgd") {
            try s.rejectUnknownKeys(allowed: ["eta0", "particles", "seed", "record_every", "max_dimension"])
            let eta0 = try s.number("eta0")
            guard eta0 > 0 else { throw s.fail("eta0", "must be > 0, got \(eta0)") }
            let p = try s.integer("particles")
            guard p >= 1, p <= 1_000_000 else { throw s.fail("particles", "must be in 1 ... 10^6, got \(p)") }
            let every = try s.number("record_every", default: recordEvery)
            guard every > 0 else { throw s.fail("record_every", "must be > 0, got \(every)") }
            let maxDimension = try s.optionalInteger("max_dimension")
            if let m = maxDimension, m < 2 { throw s.fail("max_dimension", "must be >= 2, got \(m)") }
            sgd = ReducedSGDSpec(eta0: eta0, particles: p, seed: try s.seed("seed", default: seed), recordEvery: every,
                                 maxDimension: maxDimension)
        }

        return ReducedSpec(activation: activation, secondLayer: second, inputDimension: dimension, teacher: teacher,
                           secondLayerInitialization: a, gamma: gamma, lambda: lambda, beta: beta, dynamics: dynamics,
                           scheme: scheme, eta: eta, horizon: horizon, recordEvery: recordEvery, seed: seed, nodes: nodes,
                           sampledParticles: sampled, sphereNodes: sphereNodes, quadratureNodes: quadratureNodes, grid: grid, sgd: sgd,
                           memoryLimit: memoryLimit)
    }

    /// `model.input_dimension`: an integer `k < d <= 10^9` or `"infinity"`.
    private static func parseDimension(_ m: SpecReader, k: Int) throws -> ReducedDimension {
        if let text = m.object["input_dimension"] as? String {
            guard let d = ReducedDimension(text: text), d == .infinity else {
                throw m.fail("input_dimension", "must be a whole number or \"infinity\" (lowercase), got \"\(text)\"")
            }
            return d
        }
        let d = try m.integer("input_dimension")
        guard d > k else { throw m.fail("input_dimension", "must exceed the teacher span's dimension k = \(k), got \(d)") }
        guard d <= 1_000_000_000 else { throw m.fail("input_dimension", "must be <= 10^9 (or \"infinity\"), got \(d)") }
        return .finite(d)
    }

    /// The same spec at another input dimension (what `dimensions` runs), re-checking what
    /// depends on `d`.
    public func at(dimension: ReducedDimension) throws -> ReducedSpec {
        if case .finite(let d) = dimension {
            guard d > teacher.spanDimension else {
                throw ExperimentError.invalidList(option: "--dimensions", reason: "\(d) does not exceed the teacher span's dimension k = \(teacher.spanDimension)")
            }
        } else if dynamics == .noisy {
            throw ExperimentError.invalidList(option: "--dimensions", reason: "infinity with dynamics = noisy (the radial drift (n - 1)/(beta r) is infinite there)")
        }
        var s = self
        s.inputDimension = dimension
        return s
    }
}
