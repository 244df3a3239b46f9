#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

extension MarginalUpdate {
    /// Whether one potential serves both sides (a cloud against itself).
    var isSymmetric: Bool {
        switch self {
        case .symmetric, .unbalancedSymmetric: return true
        default: return false
        }
    }

    /// The KL penalties `(rho_a, rho_b)` of an unbalanced update, `nil` otherwise.
    var penalties: (source: Double, target: Double)? {
        switch self {
        case .unbalanced(let ra, let rb): return (ra, rb)
        case .unbalancedSymmetric(let rho): return (rho, rho)
        default: return nil
        }
    }
}

extension EntropicProblem {
    /// Unbalanced `OT_eps^rho(a, b) = min_P <P, C> + eps KL(P | a (x) b) + rho_a KL(P 1 | a)
    /// + rho_b KL(P^T 1 | b)` (`KL(p | q) = sum p log(p / q) - sum p + sum q`): the masses of
    /// `a` and `b` may differ.
    ///
    /// A penalty of `+infinity` makes that marginal a constraint; with both infinite this is
    /// ``balanced(a:b:)`` (and its equal-mass check).
    ///
    /// - Throws: as ``balanced(a:b:)`` for the weights, and
    ///   ``WassersteinError/invalidParameter(name:value:requirement:)`` for a penalty that is not
    ///   `> 0` (NaN included).
    public static func unbalanced(a: [Double], b: [Double], sourcePenalty: Double,
                                  targetPenalty: Double) throws -> EntropicProblem {
        try checkPenalty(sourcePenalty, name: "source KL penalty")
        try checkPenalty(targetPenalty, name: "target KL penalty")
        if sourcePenalty == .infinity && targetPenalty == .infinity { return try balanced(a: a, b: b) }
        _ = try checkedMass(a, name: "source weights")
        _ = try checkedMass(b, name: "target weights")
        return EntropicProblem(a: a, b: b, update: .unbalanced(sourcePenalty: sourcePenalty, targetPenalty: targetPenalty))
    }

    /// `OT_eps^rho(a, a)`, the self term of the unbalanced divergence (one penalty on both sides).
    ///
    /// - Throws: as ``unbalanced(a:b:sourcePenalty:targetPenalty:)``.
    public static func unbalancedSymmetric(a: [Double], penalty: Double) throws -> EntropicProblem {
        try checkPenalty(penalty, name: "KL penalty")
        if penalty == .infinity { return try symmetric(a: a) }
        _ = try checkedMass(a, name: "weights")
        return EntropicProblem(a: a, b: a, update: .unbalancedSymmetric(penalty: penalty))
    }

    static func checkPenalty(_ rho: Double, name: String) throws {
        guard rho > 0 else {
            throw WassersteinError.invalidParameter(name: name, value: rho, requirement: "must be > 0 (+infinity enforces the marginal)")
        }
    }
}

/// The debiased unbalanced Sinkhorn divergence and the three solves behind it.
public struct UnbalancedDivergenceOutput: Sendable {
    /// `S_eps^rho(a, b) = OT(a, b) - OT(a, a) / 2 - OT(b, b) / 2 + (eps / 2) (|a| - |b|)^2`.
    public var divergence: Double
    /// `(eps / 2) (|a| - |b|)^2`, the mass term of ``divergence``.
    public var massTerm: Double
    /// `OT_eps^rho(a, b)`.
    public var cross: EntropicOutput
    /// `OT_eps^rho(a, a)`.
    public var sourceSelf: EntropicOutput
    /// `OT_eps^rho(b, b)`.
    public var targetSelf: EntropicOutput
    /// True when all three solves met the tolerance.
    public var converged: Bool { cross.converged && sourceSelf.converged && targetSelf.converged }
}

extension EntropicEngine {
    /// Unbalanced entropic OT on a geometry (``EntropicProblem/unbalanced(a:b:sourcePenalty:targetPenalty:)``).
    ///
    /// - Parameters:
    ///   - geometry: the costs between the `n` sources and the `m` targets.
    ///   - a: `n` source weights.
    ///   - b: `m` target weights (any mass).
    ///   - sourcePenalty: `rho_a > 0` (`+infinity` enforces the source marginal).
    ///   - targetPenalty: `rho_b > 0` (`+infinity` enforces the target marginal).
    ///   - parameters: epsilon, tolerance (on the relaxed marginals) and the iteration budget.
    ///   - progress: receives the driver's reports.
    /// - Throws: the problem's and the driver's errors.
    public static func unbalanced<G: SinkhornGeometry>(_ geometry: G, a: [Double], b: [Double], sourcePenalty: Double,
                                                       targetPenalty: Double, parameters: EntropicParameters,
                                                       progress: EntropicProgressObserver? = nil) throws -> EntropicOutput {
        let problem = try EntropicProblem.unbalanced(a: a, b: b, sourcePenalty: sourcePenalty, targetPenalty: targetPenalty)
        var driver = try EntropicSinkhorn(geometry: geometry, problem: problem, parameters: parameters)
        driver.progress = progress
        return try driver.solve()
    }

    /// Unbalanced entropic OT between two clouds of any masses.
    ///
    /// When the clouds are the same (coordinates and weights) with one penalty, the optimal
    /// potentials are equal and the averaged symmetric update solves it (the alternating one
    /// crawls there, see ``EntropicEngine/solve(_:parameters:geometry:progress:)``).
    ///
    /// - Throws: ``WassersteinError/dimensionMismatch(expected:actual:)``, the geometry's, the
    ///   problem's and the driver's errors.
    public static func unbalanced<G: SinkhornGeometry>(source: PointCloud, target: PointCloud, sourcePenalty: Double,
                                                       targetPenalty: Double, parameters: EntropicParameters,
                                                       geometry: (PointCloud, PointCloud) throws -> G,
                                                       progress: EntropicProgressObserver? = nil) throws -> EntropicOutput {
        guard source.dimension == target.dimension else {
            throw WassersteinError.dimensionMismatch(expected: source.dimension, actual: target.dimension)
        }
        if source == target && sourcePenalty == targetPenalty {
            return try unbalancedSelf(source, penalty: sourcePenalty, parameters: parameters, geometry: geometry, progress: progress)
        }
        return try unbalanced(geometry(source, target), a: source.weights, b: target.weights, sourcePenalty: sourcePenalty,
                              targetPenalty: targetPenalty, parameters: parameters, progress: progress)
    }

    /// `OT_eps^rho(a, a)`, the self term.
    public static func unbalancedSelf<G: SinkhornGeometry>(_ cloud: PointCloud, penalty: Double, parameters: EntropicParameters,
                                                           geometry: (PointCloud, PointCloud) throws -> G,
                                                           progress: EntropicProgressObserver? = nil) throws -> EntropicOutput {
        var driver = try EntropicSinkhorn(geometry: geometry(cloud, cloud),
                                          problem: .unbalancedSymmetric(a: cloud.weights, penalty: penalty),
                                          parameters: parameters)
        driver.progress = progress
        return try driver.solve()
    }

    /// The debiased unbalanced Sinkhorn divergence (Séjourné et al. 2019, Def. 6 and Th. 1):
    ///
    ///     S(a, b) = OT(a, b) - OT(a, a) / 2 - OT(b, b) / 2 + (eps / 2) (|a| - |b|)^2,
    ///
    /// `OT = OT_eps^rho` with one penalty on both sides. Why the mass term: the entropy
    /// `eps KL(P | a (x) b)` carries the constant `eps |a| |b|`, and the three constants leave
    /// `-(eps / 2) (|a| - |b|)^2` in the difference; with the term `S(a, b) >= 0` with equality
    /// iff `a = b`. At `rho = infinity` (equal masses) it is ``EntropicEngine/divergence(_:parameters:geometry:progress:)``.
    ///
    /// - Throws: as ``unbalanced(source:target:sourcePenalty:targetPenalty:parameters:geometry:progress:)``.
    public static func unbalancedDivergence<G: SinkhornGeometry>(source: PointCloud, target: PointCloud, penalty: Double,
                                                                 parameters: EntropicParameters,
                                                                 geometry: (PointCloud, PointCloud) throws -> G,
                                                                 progress: EntropicProgressObserver? = nil) throws -> UnbalancedDivergenceOutput {
        let cross = try unbalanced(source: source, target: target, sourcePenalty: penalty, targetPenalty: penalty,
                                   parameters: parameters, geometry: geometry, progress: progress)
        let sourceSelf = try unbalancedSelf(source, penalty: penalty, parameters: parameters, geometry: geometry, progress: progress)
        let targetSelf = try unbalancedSelf(target, penalty: penalty, parameters: parameters, geometry: geometry, progress: progress)
        let gap = source.mass - target.mass
        let massTerm = penalty == .infinity ? 0 : 0.5 * parameters.epsilon * gap * gap
        return UnbalancedDivergenceOutput(
            divergence: cross.regularizedCost - (sourceSelf.regularizedCost + targetSelf.regularizedCost) / 2 + massTerm,
            massTerm: massTerm, cross: cross, sourceSelf: sourceSelf, targetSelf: targetSelf)
    }
}
