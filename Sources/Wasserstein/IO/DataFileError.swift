/// Errors of the file readers and writers. The ``description`` is one line that names the file;
/// control characters from a path or a file's content are escaped (``MessageText``).
public enum DataFileError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The file does not exist.
    case missing(path: String)
    /// The file exists but could not be read (permissions, a directory, ...).
    case unreadable(path: String, reason: String)
    /// The file was read but its content is not what the format requires.
    case malformed(path: String, reason: String)
    /// The file could not be written.
    case unwritable(path: String, reason: String)

    public var description: String { MessageText.escaped(text) }

    /// The same error with the side and role of the file after its path (`x.csv (source
    /// points)`, `w.csv (target weights)`), for readers of a pair of clouds.
    func naming(side: String, pointsPath: String) -> DataFileError {
        func named(_ path: String) -> String { "\(path) (\(side) \(path == pointsPath ? "points" : "weights"))" }
        switch self {
        case .missing(let path): return .missing(path: named(path))
        case .unreadable(let path, let reason): return .unreadable(path: named(path), reason: reason)
        case .malformed(let path, let reason): return .malformed(path: named(path), reason: reason)
        case .unwritable(let path, let reason): return .unwritable(path: named(path), reason: reason)
        }
    }

    private var text: String {
        switch self {
        case .missing(let path): return "\(path): no such file"
        case .unreadable(let path, let reason): return "\(path): cannot read (\(reason))"
        case .malformed(let path, let reason): return "\(path): \(reason)"
        case .unwritable(let path, let reason): return "\(path): cannot write (\(reason))"
        }
    }
}
