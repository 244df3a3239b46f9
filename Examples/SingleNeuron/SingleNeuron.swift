// The lecture's single-neuron example: a mean-field network learns relu(<w*, x>) from n = 4d
// samples, its lazy (NTK-scaled) twin of the same width stays near the best affine fit.
//
//     swift run -c release example-single-neuron [--out DIR] [--width M] ...
//
// The experiment itself is `ScalingComparison` in the Experiments library (tested in
// Tests/ExperimentsTests/ScalingComparisonTests.swift); this file parses options and prints.
import ArgumentParser
import Experiments
import Foundation

@main
struct SingleNeuronExample: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "example-single-neuron",
        abstract: "Mean-field vs lazy scaling of the same two-layer ReLU network on a single-neuron teacher.",
        discussion: """
        Trains f = c sum_j a_j relu(<w_j, x>) with c = 1/M (mean field) and c = alpha/sqrt(M) (lazy) by \
        multi-pass SGD on the same n samples of y = relu(<e_1, x>), x ~ N(0, I_d), and writes the exact \
        test risks (closed-form ReLU kernels) to DIR/test_risk.csv, DIR/summary.json and SVG pictures.
        """
    )

    @Option(help: "Output folder (created if needed).")
    var out = "example-output/single-neuron"

    @Option(name: .customLong("dimension"), help: "Input dimension d.")
    var dimension = 20

    @Option(help: "Training-set size n (default 4d).")
    var samples: Int?

    @Option(help: "Width M (even).")
    var width = 1000

    @Option(help: "Output multiplier alpha of the lazy network.")
    var alpha = 100.0

    @Option(help: "Time per SGD step (learning rate eta*M for the mean field, eta/alpha^2 for the lazy network).")
    var eta = 0.02

    @Option(help: "Final time T (T/eta steps).")
    var horizon = 100.0

    @Option(help: "Seed of the training set, the initial neurons and the sample order.")
    var seed: UInt64 = 1

    @Option(name: .customLong("label-noise"), help: "Standard deviation of the label noise.")
    var labelNoise = 0.0

    func run() throws {
        var settings = ScalingComparison.Settings()
        settings.inputDimension = dimension
        settings.trainingSamples = samples ?? 4 * dimension
        settings.width = width
        settings.lazyMultiplier = alpha
        settings.eta = eta
        settings.horizon = horizon
        settings.recordEvery = horizon / 100
        settings.seed = seed
        settings.labelNoise = labelNoise
        try OutputDirectory.writing(to: out) { directory in
            let progress = ProgressReporter(label: "single-neuron")
            let result = try ScalingComparison.run(settings, progress: progress.callback)
            progress.finish()
            try ScalingComparison.write(result, to: directory)

            let s = result.settings
            print("single neuron: d = \(s.inputDimension), n = \(s.trainingSamples) samples, M = \(s.width), alpha = \(s.lazyMultiplier), eta = \(s.eta), T = \(s.horizon) (\(s.steps) steps)")
            print(String(format: "  zero predictor risk      %.4f", result.zeroPredictorRisk))
            print(String(format: "  best affine fit risk     %.4f", result.bestAffineRisk))
            for c in [result.meanField, result.lazy] {
                let name = c.scaling.name.padding(toLength: 24, withPad: " ", startingAt: 0)
                var line = String(format: " test risk %.4f, train risk %.2e, parameters moved %.3g (relative)", c.finalTestRisk, c.finalTrainRisk, c.relativeMovement)
                if let t = c.divergedAt { line += String(format: ", DIVERGED at t = %.3g", t) }
                print("  \(name)" + line)
            }
            print(String(format: "  lazy / mean-field final test risk: %.2f   (%.1f s) -> %@", result.finalRiskRatio, result.seconds, directory.path))
        }
    }
}
