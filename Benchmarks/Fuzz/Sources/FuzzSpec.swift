// libFuzzer target: the experiment spec parsers (ExperimentSpec.parse and ReducedSpec.parse,
// the text behind `load(path:)`) and what the commands compute from a spec before they run:
// the memory estimates and their check against the limit.
import Foundation
import Experiments

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzSpec(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    let text = Data(inputBytes(data, size))
    if let spec = try? ExperimentSpec.parse(data: text, file: "fuzz.json") {
        for estimate in [spec.sgdMemory(), spec.jkoMemory(), spec.compareMemory()] {
            require(!estimate.bytes.isNaN, "NaN memory estimate")
            _ = try? spec.checkMemory(estimate)
        }
    }
    for requireDimension in [true, false] {
        if let spec = try? ReducedSpec.parse(data: text, file: "fuzz.json", requireDimension: requireDimension) {
            require(spec.particleCount > 0, "particle count \(spec.particleCount)")
            for scheme in [ReducedSpec.Scheme.particles, .grid] {
                let estimate = spec.reducedMemory(scheme: scheme)
                require(!estimate.bytes.isNaN, "NaN memory estimate")
                _ = try? spec.checkMemory(estimate)
            }
            if let d = spec.inputDimension?.value {
                _ = try? spec.checkMemory(spec.onlineSGDMemory(dimension: d))
            }
        }
    }
    return 0
}

// MARK: - A structure-aware mutator

/// libFuzzer's own byte-level mutation (with the dictionary).
@_silgen_name("LLVMFuzzerMutate")
func LLVMFuzzerMutate(_ data: UnsafeMutablePointer<UInt8>, _ size: Int, _ maxSize: Int) -> Int

/// Byte mutations rarely keep a spec valid JSON, let alone valid up to its deep keys. Three times
/// in four this mutator parses the input and changes one value of the tree instead: replaced by
/// an extreme or special value, scaled by a power of ten, removed, or a spec key added. The
/// result is written back as JSON; anything that does not parse goes to the byte mutations.
@_cdecl("LLVMFuzzerCustomMutator")
public func mutateSpec(_ data: UnsafeMutablePointer<UInt8>, _ size: Int, _ maxSize: Int, _ seed: UInt32) -> Int {
    var g = SplitMix64(state: UInt64(seed) &* 0x9E37_79B9_7F4A_7C15)
    guard g.below(4) != 0,
          let tree = try? JSONSerialization.jsonObject(with: Data(bytes: data, count: size), options: [.fragmentsAllowed]),
          let out = try? JSONSerialization.data(withJSONObject: mutate(tree, &g), options: [.fragmentsAllowed]),
          out.count <= maxSize
    else { return LLVMFuzzerMutate(data, size, maxSize) }
    out.copyBytes(to: data, count: out.count)
    return out.count
}

struct SplitMix64 {
    var state: UInt64
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
    mutating func below(_ n: Int) -> Int { Int(next() % UInt64(n)) }
}

/// Values at the edges of what the specs accept: counts around the limits, step ratios around
/// 1e9 and 1e12, overflow and underflow, integers beyond 2^53, the wrong types.
nonisolated(unsafe) let extremes: [Any] = [  // never mutated
    0, -1, 1, 2, 3, 7, 8, 255, 256, 257, 512, 513, 100_000, 100_001, 200_000, 1_000_000, 1_000_001, 10_000_000,
    1_000_000_000, 4_294_967_297, 99_999_999_999_999, 1e15, 9_007_199_254_740_993.0, 1e300, -1e300, 1e-300, Double.leastNonzeroMagnitude,
    -Double.leastNonzeroMagnitude, 0.5, -0.5, 1e-9, 1e-12, 1e-13, Double.greatestFiniteMagnitude, NSNull(), true, false, "", "infinity",
    "16G", "1 KB", "0", "1e400 T", [Any](), [String: Any](), [1.0, 2.0], [[0.0, 1.0]], [[-3.0, 3.0], [-3.0, 3.0]],
    [[0.0, 1.0], [-2.0, 2.0], [0.0, 2.0]],
]

let words = ["relu", "erf", "tanh", "sigmoid", "linear", "he2", "neurons", "quadratic", "risk", "grid", "particle",
             "particles", "sinkhorn", "exact", "online", "multipass", "population", "noisy", "trained", "fixed",
             "gaussian", "sphere"]

let keys = ["a", "activation", "beta", "bounds", "coefficients", "description", "dimension", "directions", "dynamics",
            "energy", "epsilon", "eta", "eta0", "gamma", "grid", "horizon", "initialization", "input_dimension", "inputs",
            "jko", "kernels", "kind", "lambda", "max_dimension", "mean", "memory_limit", "model", "name", "nodes", "noise",
            "particles", "points_per_axis", "potential", "quadrature_nodes", "r", "record_every", "s", "samples", "scheme",
            "second_layer", "seed", "sgd", "sphere_nodes", "std", "tau", "teacher", "track_stationary", "transport", "w"]

func randomValue(_ g: inout SplitMix64, replacing old: Any?) -> Any {
    if let n = old as? Double, !(old is Bool), g.below(2) == 0 {
        switch g.below(3) {
        case 0: return n * pow(10, Double(g.below(41) - 20))
        case 1: return -n
        default: return n + Double(g.below(3) - 1)
        }
    }
    return g.below(4) == 0 ? words[g.below(words.count)] : extremes[g.below(extremes.count)]
}

/// One change somewhere in the tree: at this level, or in a random child container.
func mutate(_ node: Any, _ g: inout SplitMix64) -> Any {
    if var object = node as? [String: Any] {
        let containers = object.keys.filter { object[$0] is [String: Any] || object[$0] is [Any] }.sorted()
        if !containers.isEmpty && g.below(2) == 0 {
            let k = containers[g.below(containers.count)]
            object[k] = mutate(object[k]!, &g)
            return object
        }
        let existing = object.keys.sorted()
        switch g.below(6) {
        case 0 where !existing.isEmpty: object[existing[g.below(existing.count)]] = nil
        case 1: object[keys[g.below(keys.count)]] = randomValue(&g, replacing: nil)
        default:
            guard !existing.isEmpty else { break }
            let k = existing[g.below(existing.count)]
            object[k] = randomValue(&g, replacing: object[k])
        }
        return object
    }
    if var array = node as? [Any] {
        guard !array.isEmpty else { return [randomValue(&g, replacing: nil)] }
        let i = g.below(array.count)
        switch g.below(5) {
        case 0: array.remove(at: i)
        case 1: array.append(array[i])
        case 2 where array[i] is [String: Any] || array[i] is [Any]: array[i] = mutate(array[i], &g)
        default: array[i] = randomValue(&g, replacing: array[i])
        }
        return array
    }
    return randomValue(&g, replacing: node)
}
