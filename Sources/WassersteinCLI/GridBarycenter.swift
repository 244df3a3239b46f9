import Experiments
import Foundation
import Wasserstein

/// `wasserstein barycenter --grid`: the fixed-support entropic barycenter of densities on a grid.
extension BarycenterCommand {
    func runGrid(_ lambda: [Double]?) throws {
        if support != nil { throw CommandError("--support does not apply with --grid (the barycenter lives on the inputs' grid)") }
        if seed != nil { throw CommandError("--seed does not apply with --grid (nothing is drawn)") }
        guard let epsilon else { throw CommandError("--grid needs --epsilon") }
        guard epsilon > 0, epsilon.isFinite else { throw CommandError("--epsilon must be > 0 and finite, got \(epsilon)") }
        let maxIterations = self.maxIterations ?? 5000
        let tolerance = self.tolerance ?? 1e-7
        guard maxIterations >= 1 else { throw CommandError("--max-iterations must be >= 1 with --grid, got \(maxIterations)") }
        guard tolerance.isFinite, tolerance >= 0 else { throw CommandError("--tolerance must be >= 0 and finite, got \(tolerance)") }

        var shape: [Int]?
        var densities = [[Double]]()
        for path in inputs {
            let array = try NPYFormat.read(path: path)
            guard (1 ... 3).contains(array.shape.count) else {
                throw DataFileError.malformed(path: path, reason: "a grid density has 1, 2 or 3 axes, this array has shape \(array.shape)")
            }
            if let shape, shape != array.shape {
                throw DataFileError.malformed(path: path, reason: "shape \(array.shape) differs from the first input's \(shape) (\(inputs[0]))")
            }
            shape = array.shape
            var total = 0.0
            for (i, v) in array.values.enumerated() {
                guard v.isFinite, v >= 0 else {
                    throw DataFileError.malformed(path: path, reason: "value \(v) at flat index \(i): masses must be finite and >= 0")
                }
                total += v
            }
            guard total > 0, total.isFinite else {
                throw DataFileError.malformed(path: path, reason: "total mass \(total): it must be positive and finite")
            }
            densities.append(array.values)
        }
        let pointsPerAxis = shape!
        let extent = try Self.parseExtent(gridExtent, axes: pointsPerAxis.count)
        let spacing = zip(pointsPerAxis, extent).map { n, l in n > 1 ? l / Double(n - 1) : l }
        let geometry = try SeparableGridGeometry(pointsPerAxis: pointsPerAxis, spacing: spacing)
        let weights = lambda.map { w in w.map { $0 / w.reduce(0, +) } }

        let clock = ContinuousClock()
        let start = clock.now
        let result = try EntropicGridBarycenter(epsilon: epsilon, debiased: debiased, maximumIterations: maxIterations,
                                                tolerance: tolerance).solve(densities, on: geometry, weights: weights)
        let seconds = (clock.now - start).seconds
        let mass = result.masses.reduce(0, +)
        let kind = debiased ? "debiased entropic" : "entropic"
        try OutputDirectory.writing(to: out, protecting: inputs) { directory in
            try NPYFormat.write(NumericArray(shape: pointsPerAxis, values: result.masses), path: directory.file("barycenter.npy"))
            let names = inputs.map { FolderPath.lastComponent(of: $0) } + ["barycenter"]
            let units = densities.map { d in d.map { $0 / d.reduce(0, +) } }
            try MeasurePicture.writeGrid(title: "\(kind) W2 barycenter (eps \(epsilon)) of \(inputs.count) input\(inputs.count == 1 ? "" : "s")",
                                         densities: units + [result.masses], names: names, pointsPerAxis: pointsPerAxis,
                                         spacing: spacing, to: directory.file("barycenter.svg"))
            try directory.writeJSON("summary.json", .object([
                ("command", .string("barycenter")),
                ("grid", .bool(true)),
                ("inputs", .array(inputs.map { .string($0) })),
                ("weights", .numbers(result.weights)),
                ("shape", .array(pointsPerAxis.map { .integer($0) })),
                ("spacing", .numbers(spacing)),
                ("epsilon", .number(epsilon)),
                ("debiased", .bool(debiased)),
                ("mass", .finite(mass)),
                ("iterations", .integer(result.iterations)),
                ("converged", .bool(result.converged)),
                ("marginal_error", .finite(result.marginalError)),
                ("tolerance", .number(tolerance)),
                ("kernel_mode_applications", .integer(result.kernelModeApplications)),
                ("log_domain_applications", .integer(result.logDomainApplications)),
                ("line_stabilized_applications", .integer(result.lineStabilizedApplications)),
                ("seconds", .number(seconds)),
            ]))
        }
        let state = result.converged ? "converged" : "not converged"
        print("\(kind) barycenter of \(inputs.count) input\(inputs.count == 1 ? "" : "s") on the grid \(pointsPerAxis.map(String.init).joined(separator: " x ")): eps = \(String(format: "%.6g", epsilon)), \(result.iterations) iteration\(result.iterations == 1 ? "" : "s"), marginal error \(String(format: "%.3g", result.marginalError)), \(state), \(String(format: "%.3g", seconds)) s -> \(out)")
        if !result.converged {
            warn("the grid barycenter stopped at --max-iterations with marginal error \(String(format: "%.3g", result.marginalError)) above --tolerance \(tolerance)")
        }
    }

    /// `L` or `L1,L2[,L3]`: one finite positive side length for every axis or one per axis (default 1).
    static func parseExtent(_ text: String?, axes: Int) throws -> [Double] {
        guard let text else { return [Double](repeating: 1, count: axes) }
        let parts = text.split(separator: ",", omittingEmptySubsequences: false).map { $0.trimmingCharacters(in: .whitespaces) }
        var values = [Double]()
        for p in parts {
            guard let v = Double(p), v.isFinite, v > 0 else {
                throw CommandError("--grid-extent: '\(MessageText.excerpt(p))' is not a finite number > 0")
            }
            values.append(v)
        }
        if values.count == 1 { return [Double](repeating: values[0], count: axes) }
        guard values.count == axes else {
            throw CommandError("--grid-extent has \(values.count) values for a grid of \(axes) axes (give one, or one per axis)")
        }
        return values
    }
}
