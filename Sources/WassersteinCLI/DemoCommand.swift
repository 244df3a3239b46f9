import ArgumentParser
import Experiments
import Foundation

/// `wasserstein demo --out DIR`: the end-to-end tour on built-in data.
struct DemoCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "demo",
        abstract: "A short tour on built-in data: distances by every method, a JKO run, JKO against SGD.",
        discussion: "Writes DIR/distances, DIR/jko and DIR/compare (CSV, .npy, JSON and SVG). A few seconds in a release build (3 s of CPU time, most of it the GLPK method)."
    )

    @Option(help: "Output folder (created if needed; written only when the tour succeeds).")
    var out: String = "demo-output"

    @OptionGroup var memory: MemoryLimitOption

    func run() throws {
        let limit = try memory.bytes()
        let progress = ProgressReporter(label: "demo")
        let clock = ContinuousClock()
        let start = clock.now
        try OutputDirectory.writing(to: out) { directory in
            try DemoRun.run(directory: directory, memoryLimit: limit, log: { line in
                progress.finish()
                print(line)
            }, progress: progress.callback)
        }
        progress.finish()
        print("demo finished in \(DurationText.precise((clock.now - start).timeInSeconds)); open \(out)/compare/risk.svg and \(out)/compare/risk_gap.svg")
    }
}
