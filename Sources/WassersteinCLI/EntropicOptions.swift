import ArgumentParser
import Experiments
import Wasserstein

/// The options of `--method sinkhorn`.
struct EntropicOptions: ParsableArguments {
    @Option(help: "Entropic regularisation (absolute, in units of |x - y|^2); required by sinkhorn.")
    var epsilon: Double?

    @Option(help: "Sinkhorn stops when the L1 marginal error is below this times the mass (default 1e-9).")
    var tolerance: Double?

    @Option(name: .customLong("max-iterations"), help: "Sinkhorn iteration cap (default 10000).")
    var maxIterations: Int?

    @Flag(help: "Also compute the debiased Sinkhorn divergence.")
    var divergence = false

    @Option(help: "dense (stored n x m kernel) | online (costs recomputed, O(n + m) memory) | multiscale (D <= 3: only the pairs that can carry mass, checked, online fallback). Default: dense when the kernel fits in half of --memory-limit, else multiscale for D <= 3, else online.")
    var geometry: String?

    @OptionGroup var memory: MemoryLimitOption

    /// Checks the options against the `--method` value `method`.
    func validate(for method: String) throws {
        guard MethodNames.isEntropic(method) else {
            if epsilon != nil || tolerance != nil || maxIterations != nil || divergence || geometry != nil || memory.memoryLimit != nil {
                throw CommandError("--epsilon, --tolerance, --max-iterations, --divergence, --geometry and --memory-limit only apply to --method sinkhorn")
            }
            return
        }
        _ = try geometryKind()
        _ = try memory.bytes()
        guard let epsilon else { throw CommandError("--method sinkhorn needs --epsilon E (E > 0)") }
        guard epsilon > 0, epsilon.isFinite else { throw CommandError("--epsilon must be > 0 and finite, got \(epsilon)") }
        if let tolerance, !(tolerance > 0 && tolerance < 1) {
            throw CommandError("--tolerance must be in (0, 1), got \(tolerance)")
        }
        if let maxIterations, maxIterations < 1 {
            throw CommandError("--max-iterations must be >= 1, got \(maxIterations)")
        }
    }

    /// `--geometry`, `nil` when not given (the library then chooses).
    func geometryKind() throws -> SinkhornGeometryKind? {
        guard let geometry else { return nil }
        guard let kind = SinkhornGeometryKind(rawValue: geometry) else {
            throw CommandError("unknown geometry '\(MessageText.excerpt(geometry))' (expected dense, online or multiscale)")
        }
        return kind
    }

    /// The options of `TransportMethod.sinkhorn(epsilon:options:)`: `--geometry`, or the
    /// library's choice under `--memory-limit` (default: the machine's physical memory).
    func sinkhornOptions() throws -> SinkhornOptions {
        SinkhornOptions(tolerance: tolerance ?? 1e-9, maxIterations: maxIterations ?? 10_000, divergence: divergence,
                        geometry: try geometryKind(), memoryLimit: try memory.bytes() ?? MemoryEstimate.physicalMemory)
    }
}
