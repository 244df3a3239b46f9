import Foundation
import GradientFlows
import MeanField
import Wasserstein

/// The grid scheme of a reduced spec: the JKO scheme of `R` or `F_{lambda,beta}` on an `(s, r)`
/// or `(a, s, r)` grid.
enum ReducedGridRun {
    static func run(spec: ReducedSpec, directory: OutputDirectory?,
                    progress: (@Sendable (Double, String) -> Void)?) throws -> ReducedRun.Output {
        throw ExperimentError.invalidSpec(key: "scheme", reason: "the reduced grid scheme is not available yet (use particles)")
    }
}
