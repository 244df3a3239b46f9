#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Wasserstein

/// Options of the damped fixed-point iteration for the self-consistent Gibbs measure.
public struct GibbsOptions: Sendable, Equatable {
    /// The damping `alpha in (0, 1]`: `rho <- (1 - alpha) rho + alpha Gibbs(rho)`.
    public var damping: Double
    /// Stop when `||Gibbs(rho) - rho||_1` is at most this.
    public var tolerance: Double
    /// The iteration cap (reported, not thrown, when hit).
    public var maxIterations: Int

    public init(damping: Double = 0.5, tolerance: Double = 1e-12, maxIterations: Int = 10_000) {
        self.damping = damping
        self.tolerance = tolerance
        self.maxIterations = maxIterations
    }
}

/// The outcome of ``GibbsFixedPoint/solve(energy:grid:options:initial:)``.
public struct GibbsResult: Sendable, Equatable {
    /// The stationary density `rho*` (the last iterate).
    public var density: GridDensity
    /// Iterations made.
    public var iterations: Int
    /// `||Gibbs(rho) - rho||_1` at the last iterate.
    public var residual: Double
    /// Whether the residual met the tolerance.
    public var converged: Bool
    /// `F(rho*)`, with the exact discrete entropy.
    public var freeEnergy: Double
}

/// The stationary point of `F_{lambda,beta} = G + (1/beta) int rho log rho` on a grid: the
/// self-consistent Gibbs measure `rho* = exp(-beta Psi_lambda(theta; rho*)) / Z`, `Psi_lambda` the
/// first variation of the smooth part `G` (which includes the weight decay when `G` does).
///
/// The map `rho -> Gibbs(rho)` is a contraction when `beta` times the Lipschitz constant of
/// `rho -> Psi(.; rho)` is small; the damping enlarges the range where the iteration converges
/// (it then finds the minimiser of `F` among the fixed points when `F` is convex, as for the
/// mean-field risk, whose interaction kernel is positive semi-definite).
public enum GibbsFixedPoint {
    /// - Parameters:
    ///   - energy: `F`; it must have an entropy term.
    ///   - grid: the grid (`rho*` lives on it; mass outside the bounds is cut off).
    ///   - options: damping, tolerance, cap.
    ///   - initial: the starting density (default: the Gibbs measure of `Psi(.; uniform)`).
    /// - Throws: ``GradientFlowsError/invalidParameter(name:value:requirement:)`` without an entropy
    ///   term (`beta = infinity` has no Gibbs measure) or for options out of range;
    ///   ``GradientFlowsError/dimensionMismatch(what:expected:actual:)`` for a grid of another
    ///   dimension; ``GradientFlowsError/unsupported(_:)`` for an initial density on another grid;
    ///   ``GradientFlowsError/solverFailure(_:)`` if the iteration leaves the finite numbers.
    public static func solve(energy: FreeEnergy, grid: RegularGrid, options: GibbsOptions = GibbsOptions(),
                             initial: GridDensity? = nil) throws -> GibbsResult {
        guard let beta = energy.inverseTemperature else {
            throw GradientFlowsError.invalidParameter(name: "beta", value: .infinity,
                                                      requirement: "the Gibbs measure needs a finite beta (an entropy term)")
        }
        guard grid.dimension == energy.dimension else {
            throw GradientFlowsError.dimensionMismatch(what: "dimension of the grid against the energy", expected: energy.dimension, actual: grid.dimension)
        }
        guard options.damping > 0, options.damping <= 1 else {
            throw GradientFlowsError.invalidParameter(name: "damping", value: options.damping, requirement: "must be in (0, 1]")
        }
        guard options.tolerance > 0 else {
            throw GradientFlowsError.invalidParameter(name: "tolerance", value: options.tolerance, requirement: "must be > 0")
        }
        guard options.maxIterations >= 1 else {
            throw GradientFlowsError.invalidParameter(name: "maxIterations", value: Double(options.maxIterations), requirement: "must be >= 1")
        }
        if let initial, initial.grid != grid { throw GradientFlowsError.unsupported("the initial density lives on another grid") }
        let n = grid.count
        let points = grid.points
        var rho = initial?.masses ?? [Double](repeating: 1 / Double(n), count: n)
        var psi = [Double](repeating: 0, count: n)
        var gibbs = [Double](repeating: 0, count: n)
        func gibbsMap() {
            do {
                var potential: MutableSpan<Double>? = psi.mutableSpan, none: MutableSpan<Double>? = nil
                energy.smooth.firstVariation(points: points.span, weights: rho.span, potential: &potential, gradient: &none)
            }
            let minimum = psi.min()!
            var total = 0.0
            for i in 0 ..< n {
                gibbs[i] = exp(-beta * (psi[i] - minimum))
                total += gibbs[i]
            }
            for i in 0 ..< n { gibbs[i] /= total }
        }
        if initial == nil {
            gibbsMap()
            rho = gibbs
        }
        var iterations = 0
        var residual = Double.infinity
        var previous = Double.infinity
        // The damping adapts: halved whenever the residual grows (the undamped map overshoots
        // when beta times the interaction's Lipschitz constant is large: its Jacobian has
        // eigenvalues far below -1), and let grow back slowly while the residual falls.
        var a = options.damping
        while iterations < options.maxIterations {
            gibbsMap()
            residual = 0
            for i in 0 ..< n { residual += abs(gibbs[i] - rho[i]) }
            guard residual.isFinite else { throw GradientFlowsError.solverFailure("the Gibbs iteration produced a non-finite density") }
            if residual <= options.tolerance { break }
            if residual > previous {
                a = max(a / 2, 1e-6)
            } else {
                a = min(options.damping, a * 1.1)
            }
            previous = residual
            iterations += 1
            for i in 0 ..< n { rho[i] = (1 - a) * rho[i] + a * gibbs[i] }
        }
        let density = try GridDensity(grid: grid, masses: rho)
        let g = energy.smooth.value(points: points.span, weights: density.masses.span)
        return GibbsResult(density: density, iterations: iterations, residual: residual,
                           converged: residual <= options.tolerance, freeEnergy: g + density.negativeEntropy / beta)
    }
}
