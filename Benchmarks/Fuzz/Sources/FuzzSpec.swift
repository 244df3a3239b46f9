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
