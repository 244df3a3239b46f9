import ArgumentParser
import Experiments

/// `--memory-limit SIZE` of `sgd`, `jko` and `compare`: runs estimated to need more memory are
/// refused before they allocate it (see `MemoryEstimate`).
struct MemoryLimitOption: ParsableArguments {
    @Option(name: .customLong("memory-limit"),
            help: "Refuse runs estimated to need more memory than this: bytes, or with K, M, G or T (16G). Default: the spec's memory_limit, else the machine's physical memory.")
    var memoryLimit: String?

    /// The spec with the option's limit in force (the option overrides the spec key).
    func apply(to spec: ExperimentSpec) throws -> ExperimentSpec {
        guard let text = memoryLimit else { return spec }
        guard let bytes = MemoryEstimate.parseSize(text) else {
            throw CommandError("--memory-limit must be a positive size in bytes, optionally with K, M, G or T (16G), got '\(text)'")
        }
        var spec = spec
        spec.memoryLimit = bytes
        return spec
    }
}
