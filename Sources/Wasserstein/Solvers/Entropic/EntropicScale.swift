/// The checks and the exact rescaling that every entropic solve goes through before its core.
///
/// Why: the core works with costs, potentials and `cost / eps` in double precision. With
/// finite coordinates whose squared distances overflow (a point at `1e155`), the epsilon
/// schedule started at an infinite cost bound and never ended; with squared distances near the
/// top of the Double range (around `1e300`), sums of potentials overflowed. So:
///
/// - the squared diameter `B` of both clouds must be finite
///   (``SquaredEuclideanCost/upperBound(source:target:)``), and `B / eps` at most
///   ``maximumRangeOverEpsilon``: costs and potentials of size `B` carry a rounding error of
///   about `1e-16 B`, which enters the plan's exponents divided by `eps`; at `B / eps = 1e20`
///   (measured) exponents are off by thousands, the plan overflows and the result is NaN or
///   meaningless. (Double precision resolves the plan only for `B / eps` well below `1e15`;
///   the solver then reports the precision floor as non-convergence.)
/// - each cloud's total mass must lie in ``massRange``: the core's safeguards are relative to
///   the mass, but its tolerance is absolute and its row-sum range is fixed, so a mass of `1e-200`
///   "converged" at once to a zero cost;
/// - when `B` exceeds `2^64`, coordinates are multiplied by `2^-h` and `eps` by `2^-2h`
///   (`B * 2^-2h` in `[1, 4)`). Powers of two scale exactly, so the core computes the same plan
///   as on the original problem, without coming near overflow; potentials and costs are
///   multiplied back by `2^2h`. Below `2^64` nothing is copied or changed.
struct EntropicScale {
    /// `2^2h`: original costs, potentials and epsilon are this times the scaled ones.
    let costUnit: Double
    /// `2^-h`: the factor applied to coordinates.
    let coordinateFactor: Double

    /// The total masses the entropic solvers accept (normalise the weights otherwise).
    static let massRange = 1e-100 ... 1e100

    /// The largest squared diameter over epsilon accepted (see the type's notes).
    static let maximumRangeOverEpsilon = 1e15

    /// Cost bounds above this are scaled down.
    static let scalingThreshold = 0x1p64

    /// Checks the problem and chooses the scale.
    ///
    /// - Throws: ``WassersteinError/invalidParameter(name:value:requirement:)`` for a squared
    ///   coordinate range that overflows, a range so large against `epsilon` that `range / eps`
    ///   overflows, or a total mass outside ``massRange``.
    init(source: PointCloud, target: PointCloud, epsilon: Double) throws {
        for cloud in [source, target] where !Self.massRange.contains(cloud.mass) {
            throw WassersteinError.invalidParameter(
                name: "total mass", value: cloud.mass,
                requirement: "the Sinkhorn solver needs masses between 1e-100 and 1e100; normalise the weights (MassPolicy.normalize)")
        }
        let bound = try SquaredEuclideanCost.upperBound(source: source, target: target)
        guard bound / epsilon <= Self.maximumRangeOverEpsilon else {
            throw WassersteinError.invalidParameter(
                name: "epsilon", value: epsilon,
                requirement: "too small for the squared coordinate range \(bound) of the points: range / epsilon must be at most 1e15, since double precision resolves costs to about 1e-16 of the range; raise epsilon or rescale the coordinates")
        }
        self.init(bound: bound)
    }

    /// The scale for a squared diameter `bound` (no checks): the identity up to ``scalingThreshold``.
    init(bound: Double) {
        if bound > Self.scalingThreshold && bound.isFinite {
            let half = bound.exponent / 2
            costUnit = Double(sign: .plus, exponent: 2 * half, significand: 1)
            coordinateFactor = Double(sign: .plus, exponent: -half, significand: 1)
        } else {
            costUnit = 1
            coordinateFactor = 1
        }
    }

    /// The scale of a problem whose checks already passed (or whose plan is rebuilt from given
    /// potentials): the identity when the bound cannot be formed.
    init(unchecked problem: TransportProblem) {
        self.init(bound: (try? SquaredEuclideanCost.upperBound(source: problem.source, target: problem.target)) ?? 0)
    }

    /// Whether the problem is solved as given.
    var isIdentity: Bool { costUnit == 1 }

    /// The cloud with coordinates multiplied by ``coordinateFactor`` (exact).
    func scaled(_ cloud: PointCloud) -> PointCloud {
        if isIdentity { return cloud }
        let factor = coordinateFactor
        return PointCloud(unchecked: cloud.coordinates.map { $0 * factor }, dimension: cloud.dimension,
                          weights: cloud.weights, mass: cloud.mass)
    }

    /// The problem with both clouds scaled.
    func scaled(_ problem: TransportProblem) -> TransportProblem {
        if isIdentity { return problem }
        return TransportProblem(unchecked: scaled(problem.source), scaled(problem.target))
    }

    /// Potentials in the units of the scaled problem.
    func scaledDown(_ potentials: DualPotentials) -> DualPotentials {
        if isIdentity { return potentials }
        return DualPotentials(f: scaledDown(potentials.f), g: scaledDown(potentials.g))
    }

    /// Values in cost units (a potential) in the units of the scaled problem.
    func scaledDown(_ values: [Double]) -> [Double] {
        if isIdentity { return values }
        let inverse = 1 / costUnit
        return values.map { $0 * inverse }
    }

    /// An outcome of the scaled problem in the units of the original one.
    func scaledUp(_ outcome: SinkhornOutcome) -> SinkhornOutcome {
        if isIdentity { return outcome }
        var result = outcome
        let unit = costUnit
        result.f = outcome.f.map { $0 * unit }
        result.g = outcome.g.map { $0 * unit }
        result.transportCost *= unit
        result.regularizedCost *= unit
        return result
    }

    /// An observer of the scaled solve's reports that passes them on in the original units (the
    /// epsilon; marginal errors do not depend on the cost unit).
    func reportingUnits(_ observer: EntropicProgressObserver?) -> EntropicProgressObserver? {
        guard let observer, !isIdentity else { return observer }
        let unit = costUnit
        return { report in
            var original = report
            original.epsilon *= unit
            observer(original)
        }
    }
}
