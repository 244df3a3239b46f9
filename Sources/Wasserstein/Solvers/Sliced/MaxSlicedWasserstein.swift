#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The result of a ``MaxSlicedWasserstein`` solve.
public struct MaxSlicedResult: Sendable {
    /// The unit direction `theta*` found, `D` values.
    public let direction: [Double]
    /// `W2^2(theta* # mu, theta* # nu)`: the largest projected value found.
    public let w2Squared: Double
    /// The sliced estimate over the sampled directions the ascent started from (with every
    /// direction's value): ``w2Squared`` is at least each of them.
    public let sampled: SlicedResult
    /// Accepted ascent steps, summed over the restarts.
    public let iterations: Int
    /// Projected problems solved by the ascent (trial steps and gradients), summed over the restarts.
    public let evaluations: Int
    /// True when every restart stopped because its value stalled (or it sat at a stationary
    /// point) rather than at the step cap.
    public let converged: Bool

    /// `max-SW2 = sqrt(w2Squared)`.
    public var w2: Double { max(w2Squared, 0).squareRoot() }
}

/// The max-sliced 2-Wasserstein distance `max_theta W2(theta # mu, theta # nu)` over unit
/// directions `theta`, by projected gradient ascent on the sphere.
///
/// Why this way: the projected value is a minimum over couplings of quadratics in `theta`, not
/// concave, so the ascent finds a local maximum; starting it from the best of many random
/// directions (and a few of the next best, ``restarts``) makes that local maximum the global one
/// in practice, and the answer is never below the best sampled direction (only improving steps
/// are taken). It is never above `W2`, since projection onto a unit vector is 1-Lipschitz.
///
/// For a fixed coupling `P` (the sorted one, optimal for `theta`), the gradient of the projected
/// cost is
///
///     grad W2^2(theta) = 2 sum_ij P_ij <theta, x_i - y_j> (x_i - y_j),
///
/// the gradient of `W2^2(theta)` wherever the optimal coupling is unique. The step follows the
/// great circle through `theta` along the tangent part of the gradient, with an angle that grows
/// by half after a success and halves after a failure; a restart stops when an accepted step
/// gains less than ``relativeTolerance`` of the value, when the angle falls below `1e-12`, or
/// after ``maximumIterations`` accepted steps.
public struct MaxSlicedWasserstein: Sendable {
    /// The sampled directions the ascent starts from.
    public var directions: SlicedDirections
    /// How many of the best sampled directions start an ascent (at least 1).
    public var restarts: Int
    /// The cap on accepted steps per restart.
    public var maximumIterations: Int
    /// A restart stops when an accepted step raises the value by less than this fraction.
    public var relativeTolerance: Double
    /// Threads for the sampled directions (see ``SlicedWasserstein/maximumThreads``).
    public var maximumThreads: Int?

    /// Creates a solver.
    public init(directions: SlicedDirections = .random(count: SlicedWasserstein.defaultDirectionCount, seed: 0),
                restarts: Int = 3, maximumIterations: Int = 100, relativeTolerance: Double = 1e-9,
                maximumThreads: Int? = nil) {
        self.directions = directions
        self.restarts = restarts
        self.maximumIterations = maximumIterations
        self.relativeTolerance = relativeTolerance
        self.maximumThreads = maximumThreads
    }

    /// Finds the max-sliced direction and value.
    ///
    /// - Throws: ``WassersteinError/invalidParameter(name:value:requirement:)`` for options out of
    ///   range, and the errors of ``SlicedWasserstein/solve(_:)``.
    public func solve(_ problem: TransportProblem) throws -> MaxSlicedResult {
        guard restarts >= 1 else {
            throw WassersteinError.invalidParameter(name: "restarts", value: Double(restarts), requirement: "must be >= 1")
        }
        guard maximumIterations >= 0 else {
            throw WassersteinError.invalidParameter(name: "maximumIterations", value: Double(maximumIterations), requirement: "must be >= 0")
        }
        guard relativeTolerance.isFinite, relativeTolerance >= 0, relativeTolerance < 1 else {
            throw WassersteinError.invalidParameter(name: "relativeTolerance", value: relativeTolerance, requirement: "must be in [0, 1)")
        }
        let sampled = try SlicedWasserstein(directions: directions, keepsPerDirection: true,
                                            maximumThreads: maximumThreads).solve(problem)
        let values = sampled.perDirection!
        let d = problem.dimension
        // The best sampled directions, best first (ties by index, so the order is reproducible).
        let order = values.indices.sorted { values[$0] != values[$1] ? values[$0] > values[$1] : $0 < $1 }
        var best = (direction: Array(sampled.directions[order[0] * d ..< (order[0] + 1) * d]), value: values[order[0]])
        var iterations = 0, evaluations = 0, converged = true
        for start in order.prefix(restarts) {
            let theta = Array(sampled.directions[start * d ..< (start + 1) * d])
            let run = try ascend(problem, from: theta, value: values[start])
            iterations += run.iterations
            evaluations += run.evaluations
            converged = converged && run.converged
            if run.value > best.value { best = (run.direction, run.value) }
        }
        return MaxSlicedResult(direction: best.direction, w2Squared: best.value, sampled: sampled,
                               iterations: iterations, evaluations: evaluations, converged: converged)
    }

    /// One projected gradient ascent from the unit direction `theta` (whose value is `value`).
    func ascend(_ problem: TransportProblem, from start: [Double], value startValue: Double)
        throws -> (direction: [Double], value: Double, iterations: Int, evaluations: Int, converged: Bool) {
        let d = problem.dimension
        var theta = start, f = startValue
        var (_, g) = try Self.valueAndGradient(problem, theta)
        var evaluations = 1, iterations = 0
        var angle = 0.25
        while iterations < maximumIterations {
            // The tangent part of the gradient; none (a stationary point, or D = 1) ends the ascent.
            var dot = 0.0, gradientNorm = 0.0
            for l in 0 ..< d { dot += g[l] * theta[l]; gradientNorm += g[l] * g[l] }
            var u = [Double](repeating: 0, count: d)
            var tangentNorm = 0.0
            for l in 0 ..< d { u[l] = g[l] - dot * theta[l]; tangentNorm += u[l] * u[l] }
            tangentNorm = tangentNorm.squareRoot()
            if !(tangentNorm > 1e-12 * gradientNorm.squareRoot()) || !tangentNorm.isFinite {
                return (theta, f, iterations, evaluations, true)
            }
            for l in 0 ..< d { u[l] /= tangentNorm }
            // Backtrack along the great circle until the value rises.
            var accepted: (direction: [Double], value: Double)? = nil
            while angle >= 1e-12 {
                var candidate = [Double](repeating: 0, count: d)
                let c = cos(angle), s = sin(angle)
                var norm = 0.0
                for l in 0 ..< d { candidate[l] = c * theta[l] + s * u[l]; norm += candidate[l] * candidate[l] }
                norm = norm.squareRoot()
                for l in 0 ..< d { candidate[l] /= norm }
                let trial = try SlicedWasserstein.projectedW2Squared(problem.source, problem.target, direction: candidate, at: 0)
                evaluations += 1
                if trial > f {
                    accepted = (candidate, trial)
                    angle = min(angle * 1.5, 1.0)
                    break
                }
                angle /= 2
            }
            guard let step = accepted else { return (theta, f, iterations, evaluations, true) }
            iterations += 1
            let gain = step.value - f
            theta = step.direction
            f = step.value
            if gain <= relativeTolerance * f { return (theta, f, iterations, evaluations, true) }
            (_, g) = try Self.valueAndGradient(problem, theta)
            evaluations += 1
        }
        return (theta, f, iterations, evaluations, false)
    }

    /// `W2^2` of the projections on the unit direction `theta` and its gradient
    /// `2 sum_ij P_ij <theta, x_i - y_j> (x_i - y_j)` from the sorted coupling `P`.
    static func valueAndGradient(_ problem: TransportProblem, _ theta: [Double]) throws -> (Double, [Double]) {
        let x = problem.source, y = problem.target, d = problem.dimension
        let px = try SlicedWasserstein.project(x, theta, 0)
        let py = try SlicedWasserstein.project(y, theta, 0)
        let projected = TransportProblem(unchecked: PointCloud(unchecked: px, dimension: 1, weights: x.weights, mass: x.mass),
                                         PointCloud(unchecked: py, dimension: 1, weights: y.weights, mass: y.mass))
        let result = try SortedSolver(planOutput: .full).solve(projected)
        var g = [Double](repeating: 0, count: d)
        if let plan = result.plan {
            x.coordinates.withUnsafeBufferPointer { xp in
                y.coordinates.withUnsafeBufferPointer { yp in
                    for e in plan.entries {
                        let i = e.source, j = e.target
                        let w = 2 * e.mass * (px[i] - py[j])
                        for l in 0 ..< d { g[l] += w * (xp[i * d + l] - yp[j * d + l]) }
                    }
                }
            }
        }
        return (result.cost, g)
    }
}
