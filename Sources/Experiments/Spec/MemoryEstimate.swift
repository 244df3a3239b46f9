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
    /// - Returns: the size, or `nil` when the text is not such a size or not positive and finite.
    public static func parseSize(_ text: String) -> Double? {
        var s = text.trimmingCharacters(in: .whitespaces).uppercased()
        if s.hasSuffix("IB") { s.removeLast(2) } else if s.hasSuffix("B") { s.removeLast() }
        var factor = 1.0
        if let unit = s.last, let scale = ["K": 0x1p10, "M": 0x1p20, "G": 0x1p30, "T": 0x1p40][String(unit)] {
            factor = scale
            s.removeLast()
        }
        guard let value = Double(s.trimmingCharacters(in: .whitespaces)), value.isFinite, value > 0 else { return nil }
        let bytes = value * factor
        return bytes.isFinite ? bytes : nil
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
        let limit = effectiveMemoryLimit
        guard estimate.bytes > limit, let largest = estimate.largest else { return }
        let source = memoryLimit == nil ? "the machine's physical memory" : "memory_limit / --memory-limit"
        let reason = "the run needs about \(MemoryEstimate.format(estimate.bytes)) (largest part: \(largest.what), \(MemoryEstimate.format(largest.bytes))), above the limit of \(MemoryEstimate.format(limit)) (\(source)); make it smaller, or raise the limit with --memory-limit or the spec key memory_limit"
        if largest.key.hasPrefix("--") { throw ExperimentError.invalidList(option: largest.key, reason: reason) }
        throw ExperimentError.invalidSpec(key: largest.key, reason: reason)
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
                                         what: "\(Self.count(m)) particles x \(Self.count(d)) coordinates x \(Int(copies)) working copies")]
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
            case .exact:
                let matrixLimit = Double(parameterDimension == 2 ? NetworkSimplexSolver.cachedMatrixCellLimit : NetworkSimplexSolver.matrixCellLimit)
                let matrix = cells <= matrixLimit ? 8 * cells : 0
                terms.append(.init(key: particlesKey, bytes: matrix + 300 * m,
                                   what: matrix > 0 ? "the \(Self.count(m)) x \(Self.count(m)) cost matrix of the exact transport" : "the network simplex of the exact transport"))
            case .sinkhorn:
                terms.append(.init(key: particlesKey, bytes: 8 * cells + 200 * m,
                                   what: "the \(Self.count(m)) x \(Self.count(m)) Sinkhorn kernel"))
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

    /// `compare --sweep-*`: the reference JKO run (kept) and the largest of the SGD runs.
    public func sweepMemory(particles: [Int], etas: [Double], referenceParticles: Int) -> MemoryEstimate {
        let reference = jkoMemory(scheme: .particle, particles: referenceParticles, particlesKey: "--reference-particles")
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

    /// `1000`, `1e+07`: counts in messages.
    static func count(_ value: Double) -> String {
        value < 1e6 && value == value.rounded() ? String(Int(clampingCount: value, limit: 1_000_000)) : String(format: "%.3g", value)
    }
}
