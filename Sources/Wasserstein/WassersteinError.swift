/// The errors of the distance layer.
///
/// Every public initialiser and solver validates its input and throws one of these instead of
/// trapping or returning NaN. The ``description`` is a single line, suitable for a command-line
/// error message (control characters in a cloud's name, a path, are escaped: ``MessageText``).
public enum WassersteinError: Error, Equatable, Sendable, CustomStringConvertible {
    /// A point cloud with no points.
    case emptyCloud(String)
    /// A coordinate that is NaN or infinite.
    case nonFiniteCoordinate(cloud: String, point: Int, axis: Int)
    /// A weight that is NaN, infinite or negative.
    case invalidWeight(cloud: String, index: Int, value: Double)
    /// Weights that sum to zero.
    case zeroMass(String)
    /// A weight vector whose length differs from the number of points.
    case weightCountMismatch(cloud: String, points: Int, weights: Int)
    /// Two objects that should live in the same space do not.
    case dimensionMismatch(expected: Int, actual: Int)
    /// Two measures whose total masses differ (and normalisation was not requested).
    case massMismatch(source: Double, target: Double)
    /// A coordinate array whose length is not a multiple of the dimension, or a zero dimension.
    case malformedShape(String)
    /// A numeric parameter outside its domain (epsilon <= 0, a tolerance that makes no sense, ...).
    case invalidParameter(name: String, value: Double, requirement: String)
    /// The method cannot handle this input (for example the sorted 1-D method with D > 1).
    case unsupported(String)
    /// A problem too large for the chosen method.
    case tooLarge(String)
    /// The underlying solver failed (GLPK error code, no feasible basis, numerical breakdown).
    case solverFailure(String)

    public var description: String { MessageText.escaped(text) }

    private var text: String {
        switch self {
        case .emptyCloud(let name):
            return "\(name) is empty: a measure needs at least one point"
        case .nonFiniteCoordinate(let name, let point, let axis):
            return "\(name) has a non-finite coordinate (NaN or infinity) at point \(point), axis \(axis)"
        case .invalidWeight(let name, let index, let value):
            return "\(name) has an invalid weight \(value) at index \(index): weights must be finite and >= 0"
        case .zeroMass(let name):
            return "\(name) has zero total mass"
        case .weightCountMismatch(let name, let points, let weights):
            return "\(name) has \(points) points but \(weights) weights"
        case .dimensionMismatch(let expected, let actual):
            return "dimension mismatch: expected \(expected), got \(actual)"
        case .massMismatch(let source, let target):
            return "total masses differ (\(source) vs \(target)); normalise the weights, or pass MassPolicy.normalize"
        case .malformedShape(let reason):
            return "malformed shape: \(reason)"
        case .invalidParameter(let name, let value, let requirement):
            return "invalid \(name) = \(value): \(requirement)"
        case .unsupported(let reason):
            return "unsupported: \(reason)"
        case .tooLarge(let reason):
            return "problem too large: \(reason)"
        case .solverFailure(let reason):
            return "solver failure: \(reason)"
        }
    }
}
