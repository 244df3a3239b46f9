import ArgumentParser
import Experiments
import Foundation
import GradientFlows
import MeanField
import Wasserstein

/// The `wasserstein` command: W2 distances, JKO steps, particle dynamics and their comparison.
@main
struct WassersteinCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "wasserstein",
        abstract: "Optimal transport and Wasserstein gradient flows.",
        discussion: """
        Examples:
          wasserstein distance x.csv y.npy --json
          wasserstein distance x.csv y.csv --partial 0.5
          wasserstein sliced x.npy y.npy --directions 100 --seed 1
          wasserstein barycenter a.csv b.csv c.csv --out runs/barycenter
          wasserstein sgd spec.json --out runs/sgd
          wasserstein jko spec.json --out runs/jko
          wasserstein compare spec.json --out runs/compare
          wasserstein reduced reduced.json --out runs/reduced
          wasserstein dimensions reduced.json --dimensions 10,20,40,80,160,infinity --risk-threshold 0.05 --out runs/dims
          wasserstein demo --out demo
        """,
        version: ToolkitVersion.current,
        subcommands: [DistanceCommand.self, SlicedCommand.self, BarycenterCommand.self, SGDCommand.self, JKOCommand.self, CompareCommand.self, ReducedCommand.self,
                      DimensionsCommand.self, DemoCommand.self]
    )

    /// Runs the command. The toolkit's own errors become one line on standard error and exit
    /// code 1; usage errors (ArgumentParser's, bad option combinations, list options that do not
    /// parse, an output that would replace an input) are one line too, with exit code 64.
    static func main() {
        InterruptCleanup.install()
        do {
            var command = try parseAsRoot()
            try command.run()
        } catch {
            // Help and version requests are not errors: print them the usual way.
            if CommandLineFailure.message(for: error) == nil, WassersteinCommand.exitCode(for: error) == .success {
                exit(withError: error)
            }
            // Everything else, usage errors included, is one line on standard error.
            let message = CommandLineFailure.message(for: error)
                ?? WassersteinCommand.message(for: error).split(whereSeparator: \.isNewline).map { MessageText.escaped(String($0)) }.joined(separator: " ")
            FileHandle.standardError.write(Data("wasserstein: error: \(message)\n".utf8))
            let code: Int32
            if CommandLineFailure.isUsageError(error) {
                code = 64  // EX_USAGE, as ArgumentParser's own usage errors
            } else {
                code = CommandLineFailure.message(for: error) != nil ? 1 : WassersteinCommand.exitCode(for: error).rawValue
            }
            Foundation.exit(code == 0 ? 1 : code)
        }
    }
}

/// Turns the toolkit's errors into one-line messages.
enum CommandLineFailure {
    static func message(for error: Error) -> String? {
        let text: String
        switch error {
        case let e as WassersteinError: text = SpecKeys.message(for: e)
        case let e as DataFileError: text = e.description
        case let e as ExperimentError: text = e.description
        case let e as CommandError: text = e.description
        case let e as MeanFieldError: text = SpecKeys.message(for: e)
        case let e as GradientFlowsError: text = e.description
        default: return nil
        }
        // One line, always: whatever a message echoes (a path, an option value) is escaped.
        return MessageText.escaped(text)
    }

    /// Errors in the command line rather than in the data (exit code 64).
    static func isUsageError(_ error: Error) -> Bool {
        if error is CommandError { return true }
        if let e = error as? ExperimentError { return e.isUsageError }
        return false
    }
}

/// Prints `wasserstein: warning: <text>` on standard error: every warning of the command has
/// this form, in text and JSON modes alike, so that standard output holds only results.
func warn(_ text: String) {
    FileHandle.standardError.write(Data("wasserstein: warning: \(MessageText.escaped(text))\n".utf8))
}

/// Errors of the command layer itself (bad option combinations).
struct CommandError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}
