#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Wasserstein

/// A distance between two densities on the same grid, with its provenance.
public struct GridDistance: Sendable, Equatable {
    /// The `W2` value (or its entropic estimate).
    public var w2: Double
    /// The method that ran: `TransportMethod.exact` (1-D quantile merge) or
    /// `TransportMethod.sinkhorn(epsilon:options:)` (with `SinkhornOptions.divergence`: the
    /// debiased divergence).
    public var method: TransportMethod
    /// Whether the iterative solves (if any) converged.
    public var converged: Bool
    /// Sinkhorn iterations spent (0 for the exact 1-D method).
    public var iterations: Int
}

/// `W2` between densities on one ``RegularGrid``, by one of two methods of `TransportMethod`:
///
/// - `TransportMethod.exact` (1-D only): the quantile functions of the two discrete measures
///   merged, `O(n)`.
/// - `TransportMethod.sinkhorn(epsilon:options:)` (1-D, 2-D, 3-D): solves of the entropic
///   engine (`EntropicSinkhorn`) on the grid's separable geometry (`SeparableGridGeometry`).
///   With `SinkhornOptions.divergence` the value is `sqrt(max(S_eps, 0))`, the debiased
///   divergence `S_eps(a, b) = OT_eps(a, b) - (OT_eps(a, a) + OT_eps(b, b)) / 2` (three solves);
///   without it, `sqrt(<P, C>)` of the entropic plan (one solve), biased upwards by
///   `O(eps log(1 / eps))`. `SinkhornOptions.geometry` must be `nil` (the grid has its own) and
///   `SinkhornOptions.memoryLimit` does not apply.
///
/// `TransportMethod.auto` (the default) is `exact` in 1-D and in 2-D and 3-D the divergence at
/// ``defaultEpsilon(for:)`` (``automaticMethod(for:tolerance:maxIterations:)``).
///
/// `S_eps = W2^2 + O(eps^2)` for smooth densities: for 1-D Gaussians of deviations 0.55 and
/// 0.5 at `eps = 0.05` the relative error of `S_eps` is 1e-3, at `eps = 0.01` 4e-5 (closed
/// form of entropic OT between Gaussians); translations are exact for every `eps`.
///
/// The value keeps the last solutions as warm starts: calling it every step of a run against a
/// fixed reference (the Gibbs measure) costs few iterations after the first call.
public struct GridWassersteinDistance {
    /// The grid.
    public let grid: RegularGrid
    /// The method, with `TransportMethod.auto` resolved: `TransportMethod.exact` or
    /// `TransportMethod.sinkhorn(epsilon:options:)`.
    public let method: TransportMethod

    private let geometry: SeparableGridGeometry?
    private var selfCache: [(masses: [Double], value: Double, potential: [Double])] = []
    private var crossWarm: (f: [Double], g: [Double])?
    // Once kernel mode has left the range of doubles, later solves start in the log domain
    // (one flag for the cross terms, one for the self terms).
    private var kernelMode = true
    private var selfKernelMode = true

    /// The epsilon of the automatic method in 2-D and 3-D: `max(h_max^2, (L_max / 40)^2)`,
    /// `h_max` the largest spacing and `L_max` the longest side of the grid.
    public static func defaultEpsilon(for grid: RegularGrid) -> Double {
        let side = (0 ..< grid.dimension).map { grid.upperBounds[$0] - grid.lowerBounds[$0] }.max()!
        let h2 = grid.spacing.map { $0 * $0 }.max()!
        return max(h2, (side / 40) * (side / 40))
    }

    /// What `TransportMethod.auto` means on `grid`: `TransportMethod.exact` in 1-D, otherwise
    /// the debiased Sinkhorn divergence at ``defaultEpsilon(for:)`` with these solve settings.
    public static func automaticMethod(for grid: RegularGrid, tolerance: Double = 1e-9,
                                       maxIterations: Int = 20_000) -> TransportMethod {
        if grid.dimension == 1 { return .exact }
        return .sinkhorn(epsilon: defaultEpsilon(for: grid),
                         options: SinkhornOptions(tolerance: tolerance, maxIterations: maxIterations, divergence: true))
    }

    /// - Parameters:
    ///   - grid: the grid both densities live on.
    ///   - method: `TransportMethod.auto` (default), `TransportMethod.exact` (or
    ///     `TransportMethod.sorted`, the same quantile merge) in 1-D, or
    ///     `TransportMethod.sinkhorn(epsilon:options:)`.
    /// - Throws: ``GradientFlowsError/unsupported(_:)`` for an exact method in 2-D or 3-D, for
    ///   `lp` and `gaussian`, and for a Sinkhorn geometry other than the grid's;
    ///   `WassersteinError.invalidParameter(name:value:requirement:)` from the engine for a
    ///   non-positive epsilon, tolerance or iteration cap.
    public init(grid: RegularGrid, method: TransportMethod = .auto) throws {
        self.grid = grid
        switch method {
        case .auto:
            self.method = Self.automaticMethod(for: grid)
        case .exact, .sorted:
            guard grid.dimension == 1 else {
                throw GradientFlowsError.unsupported("the exact grid distance is one-dimensional (the grid has dimension \(grid.dimension)); use the Sinkhorn method")
            }
            self.method = .exact
        case .lp, .gaussian:
            throw GradientFlowsError.unsupported("the grid distance is exact (1-D) or Sinkhorn, not \(method.name)")
        case .sinkhorn(_, let options):
            guard options.geometry == nil else {
                throw GradientFlowsError.unsupported("the grid distance uses the grid's separable geometry: the Sinkhorn options' geometry must be nil")
            }
            self.method = method
        }
        if case .sinkhorn = self.method {
            // Checks epsilon, tolerance and the cap with the engine's wording.
            _ = try Self.parameters(self.method)
            self.geometry = try grid.sinkhornGeometry()
        } else {
            self.geometry = nil
        }
    }

    /// The engine's parameters of a Sinkhorn method (`nil` for the exact one).
    private static func parameters(_ method: TransportMethod) throws -> EntropicParameters? {
        guard case .sinkhorn(let epsilon, let options) = method else { return nil }
        return try EntropicParameters(epsilon: epsilon, tolerance: options.tolerance, maxIterations: options.maxIterations)
    }

    /// `W2(a, b)`.
    ///
    /// - Throws: ``GradientFlowsError/unsupported(_:)`` if a density lives on another grid; the
    ///   engine's errors (`EntropicSinkhorn.solve()`). Non-convergence is reported in the result.
    public mutating func distance(_ a: GridDensity, _ b: GridDensity) throws -> GridDistance {
        guard a.grid == grid, b.grid == grid else {
            throw GradientFlowsError.unsupported("the densities live on another grid than the distance's")
        }
        guard let parameters = try Self.parameters(method), let geometry else {
            let w2 = GridTransport.exactW2OneDimensional(a.masses, b.masses, coordinates: grid.axes[0])
            return GridDistance(w2: w2, method: method, converged: true, iterations: 0)
        }
        let divergence = method.sinkhornOptions?.divergence ?? false
        var selfA = (value: 0.0, iterations: 0, converged: true), selfB = selfA
        if divergence {
            selfA = try selfTransport(a.masses, geometry: geometry, parameters: parameters)
            selfB = try selfTransport(b.masses, geometry: geometry, parameters: parameters)
            if a.masses == b.masses {
                // One density against itself: the optimal potentials are equal and the symmetric
                // update solves the cross term (the balanced one crawls there, see EntropicEngine.solve).
                return GridDistance(w2: 0, method: method, converged: selfA.converged, iterations: selfA.iterations)
            }
        }
        var driver = try EntropicSinkhorn(geometry: geometry, problem: .balanced(a: a.masses, b: b.masses), parameters: parameters)
        driver.usesKernelMode = kernelMode
        if let warm = crossWarm { try driver.warmStart(f: warm.f, g: warm.g) }
        let cross = try driver.solve()
        kernelMode = driver.usesKernelMode
        crossWarm = (cross.f, cross.g)
        let squared = divergence ? cross.regularizedCost - 0.5 * (selfA.value + selfB.value) : cross.transportCost
        return GridDistance(w2: max(squared, 0).squareRoot(), method: method,
                            converged: cross.converged && selfA.converged && selfB.converged,
                            iterations: cross.iterations + selfA.iterations + selfB.iterations)
    }

    private mutating func selfTransport(_ masses: [Double], geometry: SeparableGridGeometry, parameters: EntropicParameters) throws
        -> (value: Double, iterations: Int, converged: Bool) {
        if let hit = selfCache.first(where: { $0.masses == masses }) { return (hit.value, 0, true) }
        let r = try GridTransport.selfTransport(masses, geometry: geometry, parameters: parameters,
                                                warm: selfCache.last?.potential, kernelMode: &selfKernelMode)
        if selfCache.count == 2 { selfCache.removeFirst() }
        selfCache.append((masses, r.output.regularizedCost, r.output.f))
        return (r.output.regularizedCost, r.output.iterations, r.output.converged)
    }
}

extension RegularGrid {
    /// The grid as a `SeparableGridGeometry` (cost `|x - y|^2`) for the entropic engine.
    ///
    /// - Parameter kernelTruncation: see `SeparableGridGeometry.kernelTruncation`.
    public func sinkhornGeometry(kernelTruncation: Double = 1e-300) throws -> SeparableGridGeometry {
        try SeparableGridGeometry(pointsPerAxis: pointsPerAxis, spacing: spacing, kernelTruncation: kernelTruncation)
    }
}

/// Transport on a grid shared by the JKO scheme and the distance.
enum GridTransport {
    /// Exact `W2` between two discrete measures on the same sorted 1-D support, by merging their
    /// cumulative distribution functions: `W2^2 = int_0^1 |F^-1(t) - G^-1(t)|^2 dt`.
    static func exactW2OneDimensional(_ a: [Double], _ b: [Double], coordinates x: [Double]) -> Double {
        let n = a.count
        var i = 0, j = 0
        var ra = a.isEmpty ? 0 : a[0], rb = b.isEmpty ? 0 : b[0]   // mass left in the current atoms
        var total = 0.0
        while i < n && j < n {
            if ra <= 0 { i += 1; if i < n { ra = a[i] }; continue }
            if rb <= 0 { j += 1; if j < n { rb = b[j] }; continue }
            let m = min(ra, rb)
            let d = x[i] - x[j]
            total += m * d * d
            ra -= m
            rb -= m
            if ra <= 1e-300 { ra = 0 }
            if rb <= 1e-300 { rb = 0 }
        }
        return max(total, 0).squareRoot()
    }

    /// `OT_eps(a, a)` on the grid by the engine's symmetric update, warm-started from the
    /// potential of a previous self term when it has the right length.
    static func selfTransport(_ masses: [Double], geometry: SeparableGridGeometry, parameters: EntropicParameters,
                              warm: [Double]?, kernelMode: inout Bool) throws -> (output: EntropicOutput, potential: [Double]) {
        var driver = try EntropicSinkhorn(geometry: geometry, problem: .symmetric(a: masses), parameters: parameters)
        driver.usesKernelMode = kernelMode
        if let warm, warm.count == masses.count, warm.allSatisfy({ $0.isFinite }) { try driver.warmStart(f: warm, g: warm) }
        let output = try driver.solve()
        kernelMode = driver.usesKernelMode
        return (output, output.f)
    }
}
