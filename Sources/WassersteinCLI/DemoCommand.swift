import ArgumentParser
import Experiments
import Foundation

/// `wasserstein demo --out DIR`: the end-to-end tour on built-in data.
struct DemoCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "demo",
        abstract: "A short tour on built-in data: distances by every method, a JKO run, JKO against SGD.",
        discussion: "Writes DIR/distances, DIR/jko and DIR/compare (CSV, .npy, JSON and SVG). About half a minute in a release build."
    )

    @Option(help: "Output folder (created if needed; written only when the tour succeeds).")
    var out: String = "demo-output"

    func run() throws {
        let progress = ProgressReporter(label: "demo")
        let clock = ContinuousClock()
        let start = clock.now
        try OutputDirectory.writing(to: out) { directory in
            try DemoRun.run(directory: directory, log: { line in
                progress.finish()
                print(line)
            }, progress: progress.callback)
        }
        progress.finish()
        print(String(format: "demo finished in %.1f s; open %@/compare/risk.svg and %@/compare/gaps.svg", (clock.now - start).timeInSeconds, out, out))
    }
}
