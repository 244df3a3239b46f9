import Foundation
import MeanField
import Wasserstein

/// The memory a run will need, estimated from its spec before anything is allocated.
///
/// Why: `particles = 10^7` with `input_dimension = 1000`, or `jko.tau = 1e-9` (a billion step
/// reports), used to abort inside the allocator after minutes of work, with no message. The
/// runners now add up the large allocations of a run (particle arrays and their working copies,
/// cost and kernel matrices, per-step and per-record rows) and refuse, naming the spec key of
/// the largest term, when the total exceeds the limit: ``ExperimentSpec/memoryLimit`` (spec key
/// `memory_limit`, command-line option `--memory-limit`) or else the machine's physical memory.
///
/// The estimate is an upper-side approximation (within a factor of about two of what the run
/// allocates at its peak); small vectors, code and the operating system are not counted.
public struct MemoryEstimate: Sendable, Equatable {
    /// One large allocation (or a group of them) of a run.
    public struct Term: Sendable, Equatable {
        /// The spec key (or command-line option, starting with `--`) that sets its size.
        public var key: String
        /// Its size in bytes.
        public var bytes: Double
        /// What it is, for the error message.
        public var what: String
    }

    /// The terms, in no particular order.
    public var terms: [Term]

    /// The total in bytes.
    public var bytes: Double { terms.reduce(0) { $0 + $1.bytes } }

    /// The largest term, whose key the error names.
    public var largest: Term? { terms.max { $0.bytes < $1.bytes } }

    /// The sum of two estimates (allocations alive at the same time).
    public static func + (a: MemoryEstimate, b: MemoryEstimate) -> MemoryEstimate {
        MemoryEstimate(terms: a.terms + b.terms)
    }

    /// The machine's physical memory, the default limit.
    public static var physicalMemory: Double { Double(ProcessInfo.processInfo.physicalMemory) }

    /// Reads a size in bytes: a number (`2e9`) optionally followed by `K`, `M`, `G` or `T`
    /// (powers of 1024, case-insensitive, an optional trailing `B` or `iB`): `512M`, `16G`, `1.5GiB`.
    ///
    /// `16GB`, `16G`, `16GiB` and `16g` are the same size. The number is decimal only (`0x10`,
    /// `inf` and `nan` are refused, though Swift's `Double(_:)` would read them).
    ///
    /// - Returns: the size, or `nil` when the text is not such a size, or is below one byte, or
    ///   is not finite.
    public static func parseSize(_ text: String) -> Double? {
        var s = text.trimmingCharacters(in: .whitespaces).uppercased()
        if s.hasSuffix("IB") { s.removeLast(2) } else if s.hasSuffix("B") { s.removeLast() }
        var factor = 1.0
        if let unit = s.last, let scale = ["K": 0x1p10, "M": 0x1p20, "G": 0x1p30, "T": 0x1p40][String(unit)] {
            factor = scale
            s.removeLast()
        }
        let number = s.trimmingCharacters(in: .whitespaces)
        guard number.range(of: #"^([0-9]+\.?[0-9]*|\.[0-9]+)(E[-+]?[0-9]+)?$"#, options: .regularExpression) != nil,
              let value = Double(number) else { return nil }
        let bytes = value * factor
        return bytes.isFinite && bytes >= 1 ? bytes : nil
    }

    /// Refuses the run when ``bytes`` exceeds `limit` (the spec's `memory_limit` or
    /// `--memory-limit`), or the machine's physical memory when `limit` is `nil`.
    ///
    /// - Throws: ``ExperimentError/invalidSpec(key:reason:)`` naming the key of the largest
    ///   term (``ExperimentError/invalidList(option:reason:)`` when it is a command-line option),
    ///   with the estimate and the limit.
    public func check(limit: Double?) throws {
        let bound = limit ?? Self.physicalMemory
        guard bytes > bound, let largest else {
            try probeAllocation()
            return
        }
        let source = limit == nil ? "the machine's physical memory" : "memory_limit / --memory-limit"
        let reason = "the run needs about \(Self.format(bytes)) (largest part: \(largest.what), \(Self.format(largest.bytes))), above the limit of \(Self.format(bound)) (\(source)); make it smaller, or raise the limit with --memory-limit or the spec key memory_limit"
        if largest.key.hasPrefix("--") { throw ExperimentError.invalidList(option: largest.key, reason: reason) }
        throw ExperimentError.invalidSpec(key: largest.key, reason: reason)
    }

    /// With a limit raised above what the machine has, the run's arrays may not be allocatable
    /// at all, and Swift ends a process whose allocation fails (SIGABRT). Before the run, ask
    /// the allocator for the estimate in one block and give it back: where even that is refused
    /// the run is, with the one-line error, instead of an abort in the middle of it.
    func probeAllocation() throws {
        guard bytes > Self.physicalMemory / 2, let largest else { return }
        guard bytes < 0x1p62, let block = malloc(Int(clampingCount: bytes, limit: 1 << 62)) else {
            let reason = "the run needs about \(Self.format(bytes)) (largest part: \(largest.what)), and the system refuses to allocate that much (physical memory \(Self.format(Self.physicalMemory))); make it smaller"
            if largest.key.hasPrefix("--") { throw ExperimentError.invalidList(option: largest.key, reason: reason) }
            throw ExperimentError.invalidSpec(key: largest.key, reason: reason)
        }
        free(block)
    }

    /// The spec key `memory_limit` of `r` (a size as ``parseSize(_:)`` reads it, or a number of
    /// bytes), `nil` when absent.
    ///
    /// - Throws: ``ExperimentError/invalidSpec(key:reason:)`` naming `memory_limit`.
    static func limit(in r: SpecReader) throws -> Double? {
        guard r.has("memory_limit") else { return nil }
        let text = try r.object["memory_limit"] as? String ?? String(r.number("memory_limit"))
        guard let bytes = parseSize(text) else {
            throw r.fail("memory_limit", "must be a decimal size of at least one byte, optionally with K, M, G or T (16G, 16GB, 16GiB; powers of 1024), got \(text)")
        }
        return bytes
    }

    /// `12.3 GiB`, `512 MiB`, ... for messages.
    public static func format(_ bytes: Double) -> String {
        let units = ["bytes", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"]
        var value = bytes, unit = 0
        while value >= 1024 && unit < units.count - 1 {
            value /= 1024
            unit += 1
        }
        if !value.isFinite { return "\(bytes) bytes" }
        return unit == 0 ? "\(Int(clampingCount: value, limit: 1024)) bytes" : String(format: "%.3g %@", value, units[unit])
    }
}

extension ExperimentSpec {
    /// The limit the memory checks use: ``memoryLimit`` or the machine's physical memory.
    public var effectiveMemoryLimit: Double { memoryLimit ?? MemoryEstimate.physicalMemory }

    /// Refuses a run whose estimate exceeds ``effectiveMemoryLimit``.
    ///
    /// - Throws: ``ExperimentError/invalidSpec(key:reason:)`` naming the key of the largest
    ///   term (``ExperimentError/invalidList(option:reason:)`` when it is a command-line option),
    ///   with the estimate and the limit.
    public func checkMemory(_ estimate: MemoryEstimate) throws {
        try estimate.check(limit: memoryLimit)
    }

    /// The particle dynamics (`sgd`) with `particles` particles, step `eta` and records every
    /// `recordEvery` (keyed `recordKey`); `recordParticles` keeps the particles of every record.
    public func sgdMemory(particles: Int? = nil, eta: Double? = nil, recordEvery: Double? = nil,
                          recordKey: String = "record_every", recordParticles: Bool = false,
                          particlesKey: String = "particles") -> MemoryEstimate {
        let m = Double(particles ?? self.particles), d = Double(parameterDimension)
        let step = eta ?? sgd?.eta ?? horizon
        let steps = max(1, (horizon / step).rounded())
        let stride = min(steps, max(1, ((recordEvery ?? self.recordEvery) / step).rounded()))
        let records = (steps / stride).rounded(.down) + 2
        // State, gradient, initial and final particles, the recorder's copy; the entropy
        // estimator's standardised copy and scratch when beta is finite.
        let copies = energy.beta == nil ? 5.0 : 7.0
        var terms = [MemoryEstimate.Term(key: particlesKey, bytes: 8 * m * d * copies,
                                         what: "\(Self.count(m)) particles x \(Self.count(d)) coordinates x \(Int(clampingCount: copies, limit: 7)) working copies")]
        let perRecord = 300 + (recordParticles ? 8 * m * d : 0)
        terms.append(.init(key: recordKey, bytes: records * perRecord,
                           what: "\(Self.count(records)) records of \(MemoryEstimate.format(perRecord))"))
        if let samples = sgd?.samples, sgd?.kind == .multipass, let model {
            terms.append(.init(key: "sgd.samples", bytes: 8 * Double(samples) * Double(model.inputDimension + 1),
                               what: "a training set of \(samples) samples"))
        }
        return MemoryEstimate(terms: terms)
    }

    /// The JKO scheme of the spec (or `scheme`), with `particles` particles for the particle
    /// scheme; `keepStates` keeps the particles of every step (`compare`).
    public func jkoMemory(scheme: JKOSpec.Scheme? = nil, particles: Int? = nil, keepStates: Bool = false,
                          particlesKey: String = "particles") -> MemoryEstimate {
        guard let j = jko else { return MemoryEstimate(terms: []) }
        let d = Double(parameterDimension)
        let steps = max(1, (horizon / j.tau).rounded())
        // A step report (moments, timings) and its CSV row.
        var perStep = 600 + 16 * d
        var terms = [MemoryEstimate.Term]()
        switch scheme ?? j.scheme {
        case .particle:
            let m = Double(particles ?? self.particles)
            // L-BFGS keeps 10 pairs of M x D vectors; the step keeps about a dozen more.
            terms.append(.init(key: particlesKey, bytes: 8 * m * d * 32,
                               what: "\(Self.count(m)) particles x \(Self.count(d)) coordinates x 32 working copies (L-BFGS)"))
            let cells = m * m
            switch j.transport {
            case .sinkhorn(_, let options):
                // The geometry the transport term will choose (SinkhornTransportTerm): the stored
                // kernel while it fits half the limit, else the online one, O(M D).
                let geometry = options.geometry ?? SinkhornGeometryKind.automatic(
                    sourceCount: Int(m), targetCount: Int(m), dimension: parameterDimension,
                    byteBudget: options.memoryLimit ?? effectiveMemoryLimit, divergence: true)
                if geometry == .dense {
                    terms.append(.init(key: particlesKey, bytes: 8 * cells + 200 * m,
                                       what: "the \(Self.count(m)) x \(Self.count(m)) Sinkhorn kernel"))
                } else {
                    terms.append(.init(key: particlesKey, bytes: 8 * m * d * 4 + 200 * m,
                                       what: "the online Sinkhorn geometry of \(Self.count(m)) particles"))
                }
            default:
                let matrixLimit = Double(parameterDimension == 2 ? NetworkSimplexSolver.cachedMatrixCellLimit : NetworkSimplexSolver.matrixCellLimit)
                let matrix = cells <= matrixLimit ? 8 * cells : 0
                terms.append(.init(key: particlesKey, bytes: matrix + 300 * m,
                                   what: matrix > 0 ? "the \(Self.count(m)) x \(Self.count(m)) cost matrix of the exact transport" : "the network simplex of the exact transport"))
            }
            if energy.beta != nil && m <= 4096 {
                terms.append(.init(key: particlesKey, bytes: 8 * cells, what: "the entropy estimator's \(Self.count(m)) x \(Self.count(m)) kernel"))
            }
            if keepStates { perStep += 8 * m * d }
        case .grid:
            let n = Double(j.pointsPerAxis ?? 0)
            let points = pow(n, d)
            // Densities, potentials, scalings, kernels and the stationary solve: about 40 grids.
            terms.append(.init(key: "jko.points_per_axis", bytes: 8 * points * 40,
                               what: "\(Self.count(points)) grid points x 40 working arrays"))
        }
        terms.append(.init(key: "jko.tau", bytes: steps * perStep,
                           what: "\(Self.count(steps)) steps (horizon / tau) of \(MemoryEstimate.format(perStep))"))
        return MemoryEstimate(terms: terms)
    }

    /// `compare`: the dynamics recorded at every JKO time, the particle scheme with every state
    /// kept, and the grid scheme when the spec has a grid (all alive together).
    public func compareMemory() -> MemoryEstimate {
        let tau = jko?.tau ?? recordEvery
        var total = sgdMemory(recordEvery: tau, recordKey: "jko.tau", recordParticles: true)
            + jkoMemory(scheme: .particle, keepStates: true)
        if parameterDimension <= 2, jko?.bounds != nil { total = total + jkoMemory(scheme: .grid) }
        return total
    }

    /// `compare --sweep-*`: the reference run (kept) and the largest of the SGD runs. The
    /// reference is the particle JKO run of `referenceParticles` particles, or with
    /// `--reference reduced` the reduced flow (``reducedReferenceMemory(nodes:)``), whose size
    /// `--reference-particles` and the widths do not set.
    public func sweepMemory(particles: [Int], etas: [Double], referenceParticles: Int,
                            reference kind: SweepRun.Reference = .jko) -> MemoryEstimate {
        let reference: MemoryEstimate
        switch kind {
        case .jko:
            reference = jkoMemory(scheme: .particle, particles: referenceParticles, particlesKey: "--reference-particles")
        case .reduced(_, let nodes):
            reference = reducedReferenceMemory(nodes: nodes)
        }
        let tau = jko?.tau ?? recordEvery
        var largest = MemoryEstimate(terms: [])
        for m in particles {
            for eta in etas {
                let cell = sgdMemory(particles: m, eta: eta, recordEvery: tau, recordKey: "--sweep-eta",
                                     particlesKey: "--sweep-particles")
                if cell.bytes > largest.bytes { largest = cell }
            }
        }
        return reference + largest
    }

    /// `compare --reference reduced`: the SGD with the particles of every common time kept
    /// (`interval`, keyed `intervalKey`), and the reduced reference from `nodes`.
    public func compareReducedMemory(interval: Double, intervalKey: String, nodes: ReducedNodesSpec) -> MemoryEstimate {
        sgdMemory(recordEvery: interval, recordKey: intervalKey, recordParticles: true)
            + reducedReferenceMemory(nodes: nodes)
    }

    /// The reduced reference of `compare --reference reduced` (single or sweep) from `nodes`
    /// (RK4: five laws, four velocities and the engine's pair buffers, about 200 values per
    /// point), keyed `--reference-nodes`.
    public func reducedReferenceMemory(nodes: ReducedNodesSpec) -> MemoryEstimate {
        let points = Double(nodes.a) * Double(nodes.s) * Double(nodes.r)
        return MemoryEstimate(terms: [.init(key: "--reference-nodes", bytes: 8 * points * 200,
                                            what: "the reduced reference's \(Self.count(points)) points x 200 working values")])
    }

    /// `1000`, `1e+07`: counts in messages.
    static func count(_ value: Double) -> String {
        value < 1e6 && value == value.rounded() ? String(Int(clampingCount: value, limit: 1_000_000)) : String(format: "%.3g", value)
    }
}

extension ReducedSpec {
    /// The limit the memory checks use: ``memoryLimit`` or the machine's physical memory.
    public var effectiveMemoryLimit: Double { memoryLimit ?? MemoryEstimate.physicalMemory }

    /// Refuses a run whose estimate exceeds ``effectiveMemoryLimit`` (see
    /// ``MemoryEstimate/check(limit:)``).
    public func checkMemory(_ estimate: MemoryEstimate) throws {
        try estimate.check(limit: memoryLimit)
    }

    /// The points of the particle scheme's initial law: `particles`, or the product of the
    /// `nodes` counts (an upper bound at `d = infinity`, where `s` and `r` are single nodes).
    public var particleCount: Int {
        if let m = sampledParticles { return m }
        let aNodes = secondLayer == .trained && (secondLayerInitialization?.std ?? 0) > 0 ? nodes.a : 1
        return Int(clampingCount: Double(aNodes) * pow(Double(nodes.s), Double(teacher.spanDimension)) * Double(nodes.r), limit: 1 << 53)
    }

    /// `wasserstein reduced` with the spec's scheme (or `scheme`).
    ///
    /// Particles: per point, the law and the copies kept for the files, the engine's prepared
    /// columns, `Psi`, `V` and the gradient, and the symmetric engine's padded columns and pair
    /// buffers (five per block of rows, at most 32 blocks). The `Q` nodes of the rule for
    /// `t = <u, u'>` cost time, not memory: the engine sums over them in registers. Records:
    /// one row of a few hundred bytes each (`record_every`). Grid: about 40 arrays over the
    /// grid's nodes (densities, potentials, scalings, kernels, the Gibbs point), the dense
    /// interaction matrix over the `(s, r)` plane, and one report per step (`grid.tau`).
    public func reducedMemory(scheme: Scheme? = nil) -> MemoryEstimate {
        let dz = Double(coordinateCount)
        var terms = [MemoryEstimate.Term]()
        switch scheme ?? self.scheme {
        case .particles:
            let m = Double(particleCount)
            let padded = (m / 4).rounded(.up) * 4
            let blocks = min(32, max(1, (padded / 64).rounded(.down)))
            let perPoint = 4 * (dz + 1) + 7 + 2 + dz + 9 + 5 + 5 * blocks
            terms.append(.init(key: sampledParticles != nil ? "particles" : "nodes", bytes: 8 * m * perPoint,
                               what: "\(ExperimentSpec.count(m)) points x \(Int(clampingCount: perPoint, limit: Int.max)) working values"))
            let steps = max(1, (horizon / eta).rounded())
            let stride = min(steps, max(1, (recordEvery / eta).rounded()))
            let records = (steps / stride).rounded(.down) + 2
            terms.append(.init(key: "record_every", bytes: records * 300,
                               what: "\(ExperimentSpec.count(records)) records (horizon / record_every) of 300 bytes"))
        case .grid:
            guard let g = grid else { return MemoryEstimate(terms: []) }
            let counts = g.pointsPerAxis.map(Double.init)
            let nodes = counts.reduce(1, *)
            let plane = counts.suffix(2).reduce(1, *)
            terms.append(.init(key: "grid.points_per_axis", bytes: 8 * nodes * 40,
                               what: "\(ExperimentSpec.count(nodes)) grid points x 40 working arrays"))
            terms.append(.init(key: "grid.points_per_axis", bytes: 8 * plane * plane,
                               what: "the \(ExperimentSpec.count(plane)) x \(ExperimentSpec.count(plane)) interaction matrix over the (s, r) plane"))
            let steps = max(1, (horizon / g.tau).rounded())
            let perStep = 700 + 16 * dz
            terms.append(.init(key: "grid.tau", bytes: steps * perStep,
                               what: "\(ExperimentSpec.count(steps)) steps (horizon / tau) of \(MemoryEstimate.format(perStep))"))
        }
        return MemoryEstimate(terms: terms)
    }

    /// Online SGD in full `d` for `dimensions --sgd`: `sgd.particles` particles of `d (+ 1)`
    /// coordinates in five working copies (state, gradient, initial and final particles, the
    /// recorder's copy), and one risk record per `sgd.record_every`.
    public func onlineSGDMemory(dimension d: Int) -> MemoryEstimate {
        guard let s = sgd else { return MemoryEstimate(terms: []) }
        let m = Double(s.particles), coordinates = Double(d + (secondLayer == .trained ? 1 : 0))
        let eta = s.eta0 / Double(d)
        let steps = max(1, (horizon / eta).rounded())
        let stride = min(steps, max(1, (s.recordEvery / eta).rounded()))
        let records = (steps / stride).rounded(.down) + 2
        return MemoryEstimate(terms: [
            .init(key: "sgd.particles", bytes: 8 * m * coordinates * 5,
                  what: "online SGD at d = \(d): \(ExperimentSpec.count(m)) particles x \(ExperimentSpec.count(coordinates)) coordinates x 5 working copies (sgd.max_dimension skips the larger d)"),
            .init(key: "sgd.record_every", bytes: records * 300, what: "\(ExperimentSpec.count(records)) SGD records of 300 bytes"),
        ])
    }

    /// `wasserstein dimensions`: the runs (one reduced flow per `d`, and with `sgd` one online
    /// SGD per finite `d` up to `sgd.max_dimension`) go `concurrent` at a time, so the estimate
    /// is the sum of the `concurrent` largest.
    public func dimensionsMemory(dimensions: [ReducedDimension], sgd withSGD: Bool,
                                 concurrent: Int = Parallel.coreCount) -> MemoryEstimate {
        var runs = [MemoryEstimate]()
        for d in dimensions {
            var s = self
            s.inputDimension = d
            runs.append(s.reducedMemory(scheme: .particles))
            if withSGD, let value = d.value, value <= (sgd?.maxDimension ?? Int.max) {
                runs.append(s.onlineSGDMemory(dimension: value))
            }
        }
        let largest = runs.sorted { $0.bytes > $1.bytes }.prefix(max(1, concurrent))
        return largest.reduce(MemoryEstimate(terms: []), +)
    }
}
