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
          wasserstein sgd spec.json --out runs/sgd
          wasserstein jko spec.json --out runs/jko
          wasserstein compare spec.json --out runs/compare
          wasserstein demo --out demo
        """,
        version: ToolkitVersion.current,
        subcommands: [DistanceCommand.self, SGDCommand.self, JKOCommand.self, CompareCommand.self, DemoCommand.self]
    )

    /// Runs the command. The toolkit's own errors become one line on standard error and exit
    /// code 1; usage errors (ArgumentParser's and bad option combinations) are one line too,
    /// with exit code 64.
    static func main() {
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
                ?? WassersteinCommand.message(for: error).split(whereSeparator: \.isNewline).joined(separator: " ")
            FileHandle.standardError.write(Data("wasserstein: error: \(message)\n".utf8))
            let code: Int32
            if error is CommandError {
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
        case let e as WassersteinError: text = e.description
        case let e as DataFileError: text = e.description
        case let e as ExperimentError: text = e.description
        case let e as CommandError: text = e.description
        case let e as MeanFieldError: text = e.description
        default: return nil
        }
        // One line, always.
        return text.split(whereSeparator: \.isNewline).joined(separator: " ")
    }
}

/// Errors of the command layer itself (bad option combinations).
struct CommandError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}
