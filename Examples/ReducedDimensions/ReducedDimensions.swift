// T(eps) against the input dimension d, infinity included: the time the mean-field flow of a ReLU
// network takes to bring the risk down to eps, for a teacher of information exponent 1 (relu) and
// one of information exponent 2 (He_2), from the reduced flow in z = (a, s, r), whose cost does not
// depend on d; and the number of online-SGD steps (samples) a width-256 network needs in full d with
// eta = 0.1/d (`DimensionsRun`, the library behind `wasserstein dimensions`).
//
//     swift run -c release example-reduced-dimensions [--out DIR] [--dimensions LIST]
//
// The two experiments are the reduced specs relu-teacher.json and he2-teacher.json next to this
// file; each part is also `wasserstein dimensions SPEC --dimensions ... --risk-threshold E --sgd --out DIR`.
import ArgumentParser
import Experiments
import Foundation
import MeanField

@main
struct ReducedDimensionsExample: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "example-reduced-dimensions",
        abstract: "T(eps) against d up to infinity for a relu and a He_2 teacher, with the online-SGD sample count.",
        discussion: """
        Writes DIR/relu and DIR/he2 (the files of `wasserstein dimensions`: dimensions.csv, dimensions.svg, \
        samples.svg, summary.json), and the two teachers side by side: DIR/t_vs_d.svg and DIR/samples_vs_d.svg.
        """
    )

    static let folder = URL(fileURLWithPath: #filePath).deletingLastPathComponent()

    @Option(help: "Output folder (created if needed).")
    var out = "example-output/reduced-dimensions"

    @Option(help: "Comma-separated input dimensions (SGD runs up to sgd.max_dimension = 160).")
    var dimensions = "10,20,40,80,160,320,640,1280,10000,100000,1000000,infinity"

    @Option(name: .customLong("relu-threshold"), help: "eps for the relu teacher (its risk starts at 0.27).")
    var reluThreshold = 0.01

    @Option(name: .customLong("he2-threshold"), help: "eps for the He_2 teacher (its risk starts at 1.02).")
    var he2Threshold = 0.3

    @Flag(name: .customLong("no-sgd"), help: "Only the reduced flow.")
    var noSGD = false

    func run() throws {
        let list = try DimensionsRun.parseDimensions(dimensions)
        let seconds = try OutputDirectory.writing(to: out) { directory -> Double in
            let clock = ContinuousClock()
            let start = clock.now
            var outputs = [(name: String, spec: ReducedSpec, threshold: Double, output: DimensionsRun.Output)]()
            for (name, file, threshold) in [("relu", "relu-teacher.json", reluThreshold), ("he2", "he2-teacher.json", he2Threshold)] {
                let spec = try ReducedSpec.load(path: Self.folder.appendingPathComponent(file).path, requireDimension: false)
                let progress = ProgressReporter(label: name)
                let output = try DimensionsRun.run(spec: spec, dimensions: list, riskThreshold: threshold, sgd: !noSGD,
                                                   directory: try directory.subdirectory(name), progress: progress.callback)
                progress.finish()
                outputs.append((name, spec, threshold, output))
            }
            let seconds = (clock.now - start).timeInSeconds

            // The two teachers side by side.
            var series = [DimensionChart.Series]()
            for o in outputs {
                let teacher = o.name == "relu" ? "relu teacher (exponent 1)" : "He_2 teacher (exponent 2)"
                series.append(DimensionChart.Series(name: "\(teacher), eps = \(o.threshold): reduced flow",
                                                    points: o.output.rows.map { ($0.dimension, $0.reducedTime) }))
                if !noSGD {
                    series.append(DimensionChart.Series(name: "\(teacher): online SGD, M = \(o.spec.sgd!.particles)",
                                                        points: o.output.rows.filter { $0.sgdStatus != .notApplicable }.map { ($0.dimension, $0.sgdTime ?? .nan) },
                                                        dashed: true))
                }
            }
            try DimensionChart(title: "Time to reach risk eps against the input dimension (ReLU student)", yLabel: "T(eps)", series: series)
                .write(to: directory.file("t_vs_d.svg"))
            if !noSGD {
                var sample = [ChartSeries]()
                for (k, o) in outputs.enumerated() {
                    let finite = o.output.rows.filter { $0.dimension.value != nil && $0.reducedTime.isFinite }
                    let ran = o.output.rows.filter { $0.sgdStatus == .reached }
                    let color = ChartSeries.paletteColor(2 * k)
                    sample.append(ChartSeries(name: "\(o.name): T_reduced d / eta0", x: finite.map { Double($0.dimension.value!) },
                                              y: finite.map { $0.reducedTime * Double($0.dimension.value!) / o.spec.sgd!.eta0 }, markers: true, color: color))
                    sample.append(ChartSeries(name: "\(o.name): online SGD steps", x: ran.map { Double($0.dimension.value!) },
                                              y: ran.map { $0.sgdSteps! }, dashed: true, markers: true, color: color))
                }
                try LineChart(title: "Samples to reach eps with eta = 0.1/d", xLabel: "input dimension d", yLabel: "samples T / eta",
                              xScale: .logarithmic, yScale: .logarithmic, series: sample)
                    .write(to: directory.file("samples_vs_d.svg"))
            }

            for o in outputs {
                print("\(o.name) teacher, eps = \(o.threshold) (reduced flow, eta = \(o.spec.eta)\(noSGD ? "" : "; online SGD, M = \(o.spec.sgd!.particles), eta = \(o.spec.sgd!.eta0)/d")):")
                for r in o.output.rows {
                    var line = "  d = \(r.dimension.description.padding(toLength: 9, withPad: " ", startingAt: 0))"
                    line += r.reducedTime.isFinite ? String(format: "T = %7.3f", r.reducedTime) : "T =     inf (not reached)"
                    if let steps = r.sgdSteps, let t = r.sgdTime, r.sgdStatus == .reached {
                        line += String(format: "   SGD: t = %7.3f, %8.0f samples", t, steps)
                    } else if r.sgdStatus == .notReached {
                        line += "   SGD: not reached"
                    }
                    print(line)
                }
            }
            return seconds
        }
        print(String(format: "%.1f s in all on %d cores -> %@ (t_vs_d.svg, samples_vs_d.svg)", seconds, ProcessInfo.processInfo.activeProcessorCount, out))
    }
}
