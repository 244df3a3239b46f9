import GradientFlows
import Wasserstein

/// Errors of the experiment layer. Each ``description`` is one line (control characters echoed
/// from a spec or a path are escaped); spec errors name the key.
public enum ExperimentError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The spec file is not valid JSON, or not an object.
    case unreadableSpec(path: String, reason: String)
    /// A key of the spec is missing, of the wrong type, or out of range.
    case invalidSpec(key: String, reason: String)
    /// An output file or folder could not be written.
    case output(path: String, reason: String)
    /// A command-line list (such as a sweep) that does not parse.
    case invalidList(option: String, reason: String)
    /// A setting of a built-in experiment (an example's option) is out of range.
    case invalidSetting(name: String, reason: String)
    /// Writing the output folder would replace a file the run reads (its spec): refused before
    /// anything is changed.
    case outputReplacesInput(input: String, output: String)

    /// Whether the error is in the command line rather than in the data: a list option that does
    /// not parse or does not fit the spec, an output folder that would replace an input. A
    /// command-line front end reports these as usage errors (exit code 64).
    public var isUsageError: Bool {
        switch self {
        case .invalidList, .outputReplacesInput: return true
        case .unreadableSpec, .invalidSpec, .output, .invalidSetting: return false
        }
    }

    public var description: String { MessageText.escaped(text) }

    /// Runs `body` (which builds or runs a grid JKO scheme) with the library's complaint about
    /// the grid scheme's `epsilon` (its entropic blur) turned into a spec error naming `key`, the
    /// key that sets it: the library names its parameter, the user wrote a spec.
    static func namingBlur<T>(key: String, _ body: () throws -> T) throws -> T {
        do {
            return try body()
        } catch let error as GradientFlowsError {
            guard case .invalidParameter(let name, _, _) = error, name == "epsilon" else { throw error }
            throw ExperimentError.invalidSpec(key: key, reason: error.description)
        }
    }

    private var text: String {
        switch self {
        case .unreadableSpec(let path, let reason): return "\(path): \(reason)"
        case .invalidSpec(let key, let reason): return "spec key '\(key)': \(reason)"
        case .output(let path, let reason): return "\(path): cannot write (\(reason))"
        case .invalidList(let option, let reason): return "\(option): \(reason)"
        case .invalidSetting(let name, let reason): return "\(name): \(reason)"
        case .outputReplacesInput(let input, let output):
            return "\(output): refusing to write there: it would replace the input \(input); choose another output path"
        }
    }
}
