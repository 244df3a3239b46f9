import Wasserstein

/// The errors of the mean-field layer.
///
/// Every case names the setting at fault by its experiment-spec key (`sgd.eta`,
/// `initialization.w.mean`, `teacher.directions`, ...), so that a command-line front end can
/// print ``description`` as a single line that points at the offending key.
public enum MeanFieldError: Error, Equatable, Sendable, CustomStringConvertible {
    /// A setting outside its domain: `key` is the spec key, `value` the rejected value as text,
    /// `requirement` what it must satisfy.
    case invalidSetting(key: String, value: String, requirement: String)
    /// A vector setting of the wrong length (a teacher direction, `initialization.w.mean`, a
    /// particle array).
    case lengthMismatch(key: String, expected: Int, actual: Int)

    /// The spec key this error refers to.
    public var key: String {
        switch self {
        case .invalidSetting(let key, _, _), .lengthMismatch(let key, _, _): return key
        }
    }

    public var description: String { MessageText.escaped(text) }

    private var text: String {
        switch self {
        case .invalidSetting(let key, let value, let requirement):
            return "invalid \(key) = \(value): \(requirement)"
        case .lengthMismatch(let key, let expected, let actual):
            return "invalid \(key): expected \(expected) values, got \(actual)"
        }
    }
}

@inline(__always)
func require(_ condition: Bool, _ key: String, _ value: @autoclosure () -> String, _ requirement: String) throws {
    if !condition { throw MeanFieldError.invalidSetting(key: key, value: value(), requirement: requirement) }
}

@inline(__always)
func requireFinite(_ values: [Double], _ key: String) throws {
    for (i, v) in values.enumerated() where !v.isFinite {
        throw MeanFieldError.invalidSetting(key: key, value: "\(v) (entry \(i))", requirement: "must be finite")
    }
}
