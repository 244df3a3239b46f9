import Wasserstein

/// The errors of the gradient-flow layer (energies, JKO schemes, the optimizer, transport terms).
///
/// Each case names what is at fault in library words (the Swift parameter or type), never a
/// spec key or a command-line option: a front end that knows where the value came from adds
/// that. Errors of the transport solvers the flows call (the entropic engine behind the grid
/// scheme and the grid distance, the particle transport terms) pass through as `WassersteinError`.
public enum GradientFlowsError: Error, Equatable, Sendable, CustomStringConvertible {
    /// A parameter outside its domain: its name, the rejected value and what it must satisfy.
    case invalidParameter(name: String, value: Double, requirement: String)
    /// Two objects that should have the same dimension or length do not (`what` names them).
    case dimensionMismatch(what: String, expected: Int, actual: Int)
    /// The scheme or term cannot handle this input.
    case unsupported(String)
    /// A solver inside a flow returned less than the flow needs.
    case solverFailure(String)
    /// The input is larger than the scheme accepts (its memory would not fit).
    case tooLarge(String)

    public var description: String { MessageText.escaped(text) }

    private var text: String {
        switch self {
        case .invalidParameter(let name, let value, let requirement):
            return "invalid \(name) = \(value): \(requirement)"
        case .dimensionMismatch(let what, let expected, let actual):
            return "\(what): expected \(expected), got \(actual)"
        case .unsupported(let reason):
            return "unsupported: \(reason)"
        case .solverFailure(let reason):
            return "solver failure: \(reason)"
        case .tooLarge(let reason):
            return "too large: \(reason)"
        }
    }
}
