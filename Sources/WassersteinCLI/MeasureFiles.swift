import ArgumentParser
import Experiments
import Wasserstein

/// The two measures of `distance` and `sliced`: two point files and their optional weight files.
struct MeasureFiles: ParsableArguments {
    @Argument(help: "Points of the first measure (CSV or .npy).")
    var x: String

    @Argument(help: "Points of the second measure (CSV or .npy).")
    var y: String

    @Option(name: .customLong("x-weights"), help: "Weights of the first measure (one column).")
    var xWeights: String?

    @Option(name: .customLong("y-weights"), help: "Weights of the second measure (one column).")
    var yWeights: String?

    /// Every file the measures are read from.
    var paths: [String] { [x, y] + [xWeights, yWeights].compactMap { $0 } }

    /// A usage error (exit 64) when writing `output` would replace one of the inputs (`extra`
    /// names more of them, such as a directions file).
    func refuseReplacing(with output: String, extra: [String] = []) throws {
        do {
            try FileIdentity.refuseReplacing(paths + extra, with: output)
        } catch let error as ExperimentError {
            throw CommandError(error.description)
        }
    }

    /// Reads both clouds (on two cores), rescaled to mass one as they are read when
    /// `normalizing`; points of different dimensions name both files and their sides.
    func read(normalizing: Bool) throws -> (source: PointCloud, target: PointCloud) {
        let (source, target) = try PointCloudFile.readPair(x, y, firstWeights: xWeights, secondWeights: yWeights,
                                                           normalizing: normalizing)
        guard source.dimension == target.dimension else {
            // "dimension mismatch: expected 2, got 1" named neither file.
            throw DataFileError.malformed(path: y, reason: "the target's points have dimension \(target.dimension), the source's (\(x)) \(source.dimension)")
        }
        return (source, target)
    }
}
