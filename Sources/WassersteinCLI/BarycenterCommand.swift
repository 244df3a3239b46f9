import ArgumentParser
import Experiments
import Foundation
import Wasserstein

/// `wasserstein barycenter INPUTS... --out DIR`: the free-support W2 barycenter of point clouds,
/// or with `--grid` the fixed-support entropic barycenter of densities on a grid.
struct BarycenterCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "barycenter",
        abstract: "W2 barycenter: free support for point clouds (CSV or .npy files), or entropic on a grid (--grid).",
        discussion: """
        Point clouds: N points with uniform weights minimising sum_k w_k W2^2(X, mu_k), each input at mass one with \
        uniform weights, by the fixed-point iteration X <- sum_k w_k T_k(X) on exact plans (T_k the \
        barycentric projection onto input k). Stops when no point moves by more than the tolerance times \
        the diameter of the inputs' bounding box. Writes DIR/barycenter.npy (N x D), DIR/summary.json and, \
        for D = 1 or 2, DIR/barycenter.svg (histograms or a scatter plot of the inputs and the barycenter).

        With --grid: every input is an .npy array of masses >= 0 of one common shape (n), (n1, n2) or \
        (n1, n2, n3), the values at the points of a regular grid (axis a from 0 to its --grid-extent L_a in \
        n_a points, spacing L_a / (n_a - 1); default L = 1, the unit square of POT's convolutional \
        barycenters, so that --epsilon is POT's reg), each taken at mass one. The barycenter minimises \
        sum_k w_k OT_eps(a_k, b) for the cost |x - y|^2, or with --debiased sum_k w_k S_eps(a_k, b) for the \
        Sinkhorn divergence S_eps (Janati et al. 2020; much closer to the W2 barycenter), by iterative \
        Bregman projections; stops when the L1 marginal error is at most the tolerance. Writes \
        DIR/barycenter.npy (the masses, in the inputs' shape), DIR/summary.json and, in 1-D or 2-D, \
        DIR/barycenter.svg (the densities as curves, or a heat map of the barycenter with the inputs' means).
        """
    )

    @Argument(help: "Point files of the measures (CSV or .npy), or with --grid density arrays (.npy); at least one.")
    var inputs: [String]

    @Flag(help: "The inputs are densities on a common regular grid: the fixed-support entropic barycenter.")
    var grid = false

    @Option(name: .customLong("grid-extent"),
            help: "With --grid: the side length of the grid, one value or one per axis, comma-separated (default 1).")
    var gridExtent: String?

    @Option(help: "With --grid (required): the entropic regularisation epsilon, in squared coordinate units.")
    var epsilon: Double?

    @Flag(help: "With --grid: the debiased (Sinkhorn-divergence) barycenter.")
    var debiased = false

    @Option(help: "Comma-separated weights of the inputs, one each (default uniform; normalised to sum one).")
    var weights: String?

    @Option(help: "Number of barycenter points N (default: the largest input's count).")
    var support: Int?

    @Option(name: .customLong("max-iterations"), help: "Cap on fixed-point updates (default 100; with --grid, iterations, default 5000).")
    var maxIterations: Int?

    @Option(help: "Relative tolerance on the largest move (default 1e-9; with --grid, on the L1 marginal error, default 1e-7).")
    var tolerance: Double?

    @Option(help: "Seed of the initial support, drawn from the weighted mixture of the inputs (default 0).")
    var seed: UInt64?

    @Option(help: "Output folder (created if needed; written only when the run succeeds).")
    var out: String

    func run() throws {
        guard !inputs.isEmpty else { throw CommandError("barycenter needs at least one input file") }
        let lambda = try weights.map { try Self.parseWeights($0, count: inputs.count) }
        if grid { return try runGrid(lambda) }
        for (given, name) in [(gridExtent != nil, "--grid-extent"), (epsilon != nil, "--epsilon"), (debiased, "--debiased")] where given {
            throw CommandError("\(name) needs --grid")
        }
        let maxIterations = self.maxIterations ?? 100
        let seed = self.seed ?? 0
        let tolerance = self.tolerance ?? 1e-9
        if let support, support < 1 { throw CommandError("--support must be >= 1, got \(support)") }
        guard maxIterations >= 0 else { throw CommandError("--max-iterations must be >= 0, got \(maxIterations)") }
        guard tolerance.isFinite, tolerance >= 0 else { throw CommandError("--tolerance must be >= 0 and finite, got \(tolerance)") }
        let clouds = try inputs.map { try PointCloudFile.read(points: $0) }
        let clock = ContinuousClock()
        let start = clock.now
        let result = try FreeSupportBarycenter(supportSize: support, maximumIterations: maxIterations, tolerance: tolerance,
                                               seed: seed).solve(clouds, weights: lambda)
        let seconds = (clock.now - start).seconds
        let x = result.support
        try OutputDirectory.writing(to: out, protecting: inputs) { directory in
            try directory.writeMatrix("barycenter.npy", rows: x.count, columns: x.dimension, values: x.coordinates)
            let names = inputs.map { FolderPath.lastComponent(of: $0) } + ["barycenter"]
            try MeasurePicture.write(title: "W2 barycenter of \(inputs.count) input\(inputs.count == 1 ? "" : "s")",
                                     clouds: clouds + [x], names: names, to: directory.file("barycenter.svg"))
            try directory.writeJSON("summary.json", .object([
                ("command", .string("barycenter")),
                ("inputs", .array(inputs.map { .string($0) })),
                ("weights", .numbers(result.weights)),
                ("support", .integer(x.count)),
                ("dimension", .integer(x.dimension)),
                ("cost", .finite(result.cost)),
                ("iterations", .integer(result.iterations)),
                ("converged", .bool(result.converged)),
                ("last_displacement", .finite(result.lastDisplacement)),
                ("tolerance", .number(tolerance)),
                ("seed", Int(exactly: seed).map { .integer($0) } ?? .string("\(seed)")),
                ("seconds", .number(seconds)),
            ]))
        }
        let state = result.converged ? "converged" : "not converged"
        print("barycenter of \(inputs.count) input\(inputs.count == 1 ? "" : "s"): N = \(x.count), D = \(x.dimension), cost = \(String(format: "%.10g", result.cost)), \(result.iterations) iteration\(result.iterations == 1 ? "" : "s"), \(state), \(String(format: "%.3g", seconds)) s -> \(out)")
        if !result.converged {
            warn("the barycenter stopped at --max-iterations before its points settled (last move \(String(format: "%.3g", result.lastDisplacement)))")
        }
    }

    /// `w1,w2,...`: one finite non-negative number per input, positive sum (usage errors otherwise).
    static func parseWeights(_ text: String, count: Int) throws -> [Double] {
        let parts = text.split(separator: ",", omittingEmptySubsequences: false).map { $0.trimmingCharacters(in: .whitespaces) }
        var values = [Double]()
        for p in parts {
            guard let v = Double(p), v.isFinite, v >= 0 else {
                throw CommandError("--weights: '\(MessageText.excerpt(p))' is not a finite number >= 0")
            }
            values.append(v)
        }
        guard values.count == count else {
            throw CommandError("--weights has \(values.count) values for \(count) inputs")
        }
        guard values.contains(where: { $0 > 0 }), values.reduce(0, +).isFinite else {
            throw CommandError("--weights must have a positive, finite sum")
        }
        return values
    }
}
