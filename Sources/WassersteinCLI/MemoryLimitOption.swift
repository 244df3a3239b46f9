import ArgumentParser
import Experiments

/// `--memory-limit SIZE` of `sgd`, `jko`, `compare`, `reduced`, `dimensions` and `demo`: runs
/// estimated to need more memory are refused before they allocate it (see `MemoryEstimate`).
/// `distance --method sinkhorn` uses it as the budget of its geometry choice.
struct MemoryLimitOption: ParsableArguments {
    @Option(name: .customLong("memory-limit"),
            help: "Refuse runs estimated to need more memory than this: bytes, or with K, M, G or T (16G). Default: the spec's memory_limit, else the machine's physical memory.")
    var memoryLimit: String?

    /// The option's limit in bytes, `nil` when not given.
    func bytes() throws -> Double? {
        guard let text = memoryLimit else { return nil }
        guard let bytes = MemoryEstimate.parseSize(text) else {
            throw CommandError("--memory-limit must be a decimal size of at least one byte, optionally with K, M, G or T (16G, 16GB, 16GiB; powers of 1024), got '\(text)'")
        }
        return bytes
    }

    /// The spec with the option's limit in force (the option overrides the spec key).
    func apply(to spec: ExperimentSpec) throws -> ExperimentSpec {
        var spec = spec
        if let bytes = try bytes() { spec.memoryLimit = bytes }
        return spec
    }

    /// The reduced spec with the option's limit in force (the option overrides the spec key).
    func apply(to spec: ReducedSpec) throws -> ReducedSpec {
        var spec = spec
        if let bytes = try bytes() { spec.memoryLimit = bytes }
        return spec
    }
}
