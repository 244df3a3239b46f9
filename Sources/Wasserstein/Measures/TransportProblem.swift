/// What to do when the two measures do not carry the same total mass.
public enum MassPolicy: Sendable, Equatable {
    /// Masses must agree to a relative `1e-9`; otherwise ``WassersteinError/massMismatch(source:target:)``.
    case requireEqual
    /// Both measures are rescaled to mass one.
    case normalize
}

/// A transport problem between two weighted point clouds under the squared Euclidean cost
/// `c(x, y) = |x - y|^2` (no factor 1/2).
///
/// The geometry (the two clouds) is separate from the solver that is applied to it, as in
/// OTT-JAX: build a problem once, hand it to any ``TransportSolver``.
public struct TransportProblem: Sendable {
    /// The first measure (`n` points, weights `a`).
    public let source: PointCloud
    /// The second measure (`m` points, weights `b`).
    public let target: PointCloud

    /// Relative tolerance on the mass balance `|sum a - sum b| / max(sum a, sum b)`.
    public static let massTolerance = 1e-9

    /// Creates a problem, checking that both clouds live in the same space and carry the
    /// same mass (or normalising them when `massPolicy` is `.normalize`).
    public init(source: PointCloud, target: PointCloud, massPolicy: MassPolicy = .requireEqual) throws {
        guard source.dimension == target.dimension else {
            throw WassersteinError.dimensionMismatch(expected: source.dimension, actual: target.dimension)
        }
        switch massPolicy {
        case .normalize:
            self.source = source.normalized()
            self.target = target.normalized()
        case .requireEqual:
            let scale = max(source.mass, target.mass)
            guard abs(source.mass - target.mass) <= TransportProblem.massTolerance * scale else {
                throw WassersteinError.massMismatch(source: source.mass, target: target.mass)
            }
            self.source = source
            self.target = target
        }
    }

    /// Trusted initialiser for clouds already checked to match (same dimension, masses agreed).
    init(unchecked source: PointCloud, _ target: PointCloud) {
        self.source = source
        self.target = target
    }

    /// The dimension `D` shared by both clouds.
    public var dimension: Int { source.dimension }
}
