/// Errors of the experiment layer. Each ``description`` is one line; spec errors name the key.
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

    public var description: String {
        switch self {
        case .unreadableSpec(let path, let reason): return "\(path): \(reason)"
        case .invalidSpec(let key, let reason): return "spec key '\(key)': \(reason)"
        case .output(let path, let reason): return "\(path): cannot write (\(reason))"
        case .invalidList(let option, let reason): return "\(option): \(reason)"
        case .invalidSetting(let name, let reason): return "\(name): \(reason)"
        }
    }
}
