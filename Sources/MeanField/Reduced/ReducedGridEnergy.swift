#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import GradientFlows
import Wasserstein

/// The reduced mean-field free energy on a grid of reduced coordinates, for the grid JKO scheme
/// and the Gibbs fixed point: `(s, r)` with a fixed second layer (`D = 2`), `(a, s, r)` with a
/// trained one (`D = 3`); a teacher spanning `k = 1` direction.
///
/// ## The energy
/// For a rotation-invariant law of full parameters with reduced law `rho_bar`,
///
///     F(rho) = R(rho_bar) + (lambda/2) E[a^2 + s^2 + r^2]
///              + (1/beta) (int rho_bar log rho_bar - (n - 1) E[log r] - log|S^(n-1)|),
///
/// `n = d - 1`, `|S^(n-1)| = 2 pi^(n/2) / Gamma(n/2)`: the full law is
/// `rho_bar(z) / (|S^(n-1)| r^(n-1))` times the uniform direction, whose entropy gives the last
/// two terms. So the reduced flow is the grid JKO flow of `R` plus the linear potential
/// `P(z) = (lambda/2)|z|^2 - ((n - 1)/beta) log r` and the grid's exact discrete entropy, and
/// the value this type reports (the smooth part, `G`) includes `E[P]` and the constant
/// `-(1/beta) log|S^(n-1)|`, so that `G + (1/beta) int rho_bar log rho_bar` is the free energy of
/// the full `d`-dimensional law (comparable with noisy SGD estimates; ``entropyConstant`` is that
/// constant). The drift of `P` in `r` is the radial drift `(n - 1)/(beta r)` of the reduced SDE.
///
/// ## Near r = 0
/// `P` is `+infinity` at `r = 0` when `n > 1` (the Gibbs factor `r^(n-1)` vanishes there). The
/// grid builder ``grid(secondLayer:a:s:r:)`` puts the `r` nodes at cell centres,
/// `r_j = r_min + (j + 1/2) h_r`, so with `r_min = 0` no node sits at 0. A grid with a node at
/// `r = 0` is accepted: the node gets `P = +infinity`, which the grid scheme turns into a zero
/// scaling (the node holds no mass after the first step), and `value(points:weights:)` skips
/// mass-free nodes (a law with mass at `r = 0` has `F = +infinity`).
///
/// ## The interaction
/// `U(z, z') = a a' K(s, r; s', r')`, so the interaction needs only the matrix `K` over the
/// `N_sr = n_s n_r` nodes of the `(s, r)` plane, applied to the `a`-moment
/// `m1(s', r') = sum_a' a' rho(a', s', r')`: `Psi(a, s, r) = a (V_1(s, r) + (K m1)(s, r)) + P`,
/// `V_1 = V(a = 1)`. Building `K` costs `N_sr^2 Q` kernel evaluations once (`Q` the nodes of the
/// rule for `t = <u, u'>`, see ``ReducedKernels``), memory `8 N_sr^2` bytes (``maximumPlaneNodes``);
/// each first variation or value is then one `N_sr x N_sr` product plus `O(N)`. No matrix over
/// the 3-D nodes is ever formed.
public struct ReducedGridEnergy: Energy, RawBufferEnergy {
    /// The reduced kernels (setting, teacher, rule for `t`).
    public let kernels: ReducedKernels
    /// The grid: axes `(s, r)` or `(a, s, r)`.
    public let grid: RegularGrid
    /// `lambda >= 0`.
    public let weightDecay: Double
    /// The inverse temperature of the free energy the potential belongs to (`nil`: the risk, no
    /// radial term).
    public let inverseTemperature: Double?
    /// `(n - 1) / beta`, the coefficient of `-log r` in `P` (0 without `beta` or for `n = 1`).
    public let radialCoefficient: Double
    /// `-(1/beta) log|S^(n-1)|`, added to the value so that it is the full-dimensional free
    /// energy (0 without `beta`).
    public let entropyConstant: Double

    /// The largest `(s, r)` plane accepted: `K` is a dense `N_sr x N_sr` matrix
    /// (`8192` nodes, about `90 x 90`: 512 MiB).
    public static let maximumPlaneNodes = 8192

    /// `V(a = 1)` on the `(s, r)` nodes.
    let planePotential: [Double]
    /// `K` over the `(s, r)` nodes, row-major `N_sr x N_sr`, symmetric.
    let planeKernel: [Double]
    /// `P` on every grid node.
    let nodePotential: [Double]
    /// The `a` coordinate of each `a` layer (3-D), or `[1]` (2-D).
    let aValues: [Double]
    let planeCount: Int

    /// - Parameters:
    ///   - kernels: the reduced kernels; their setting must have `k = 1` and the grid's layout.
    ///   - grid: `(s, r)` for a fixed second layer, `(a, s, r)` for a trained one; `r >= 0`
    ///     (see ``grid(secondLayer:a:s:r:)``).
    ///   - weightDecay: `lambda >= 0`.
    ///   - inverseTemperature: `beta` of the free energy (gives the radial potential and the
    ///     constant); `nil` for the risk with weight decay only.
    /// - Throws: ``MeanFieldError`` naming ``MeanFieldParameter/teacherDirections`` (`k != 1`), ``MeanFieldParameter/grid`` (dimension
    ///   not matching the second layer, `r` below 0, an `(s, r)` plane above
    ///   ``maximumPlaneNodes``), ``MeanFieldParameter/weightDecay``, ``MeanFieldParameter/inverseTemperature``, or ``MeanFieldParameter/inputDimension``
    ///   (`d = infinity` with a temperature: the entropy of the full law is not defined).
    public init(kernels: ReducedKernels, grid: RegularGrid, weightDecay: Double = 0, inverseTemperature: Double? = nil) throws {
        let setting = kernels.setting
        try require(setting.spanDimension == 1, .teacherDirections, "a span of dimension \(setting.spanDimension)",
                    "the reduced grid handles a teacher spanning k = 1 direction")
        let D = setting.coordinateCount
        try require(grid.dimension == D, .grid, "\(grid.dimension) axes",
                    "a \(setting.secondLayer == .trained ? "trained second layer needs the axes (a, s, r)" : "fixed second layer needs the axes (s, r)")")
        try require(grid.lowerBounds[D - 1] >= 0, .grid, "r from \(grid.lowerBounds[D - 1])", "the radial axis must start at r >= 0")
        let ns = grid.pointsPerAxis[D - 2], nr = grid.pointsPerAxis[D - 1]
        let planeCount = ns * nr
        try require(planeCount <= Self.maximumPlaneNodes, .grid, "\(ns) x \(nr) (s, r) nodes",
                    "at most \(Self.maximumPlaneNodes): the interaction matrix over the (s, r) plane is dense")
        try require(weightDecay.isFinite && weightDecay >= 0, .weightDecay, "\(weightDecay)", "must be finite and >= 0")
        var radial = 0.0, constant = 0.0
        if let beta = inverseTemperature {
            try require(beta.isFinite && beta > 0, .inverseTemperature, "\(beta)", "must be finite and > 0")
            guard let n = setting.orthogonalDimension else {
                throw MeanFieldError.invalidSetting(parameter: .inputDimension, value: "infinity",
                                                    requirement: "a finite beta needs a finite d (the entropy of the full law grows with d)")
            }
            radial = Double(n - 1) / beta
            constant = -Self.logSphereArea(dimension: n) / beta
        }
        self.kernels = kernels
        self.grid = grid
        self.weightDecay = weightDecay
        self.inverseTemperature = inverseTemperature
        self.radialCoefficient = radial
        self.entropyConstant = constant
        self.planeCount = planeCount

        let axes = grid.axes
        let sAxis = axes[D - 2], rAxis = axes[D - 1]
        var planePoints = [Double](repeating: 0, count: 2 * planeCount)
        for i in 0 ..< ns { for j in 0 ..< nr { planePoints[2 * (i * nr + j)] = sAxis[i]; planePoints[2 * (i * nr + j) + 1] = rAxis[j] } }
        var v1 = [Double](repeating: 0, count: planeCount)
        for j in 0 ..< planeCount {
            let sr: [Double] = [planePoints[2 * j], planePoints[2 * j + 1]]
            v1[j] = kernels.potential(D == 3 ? [1.0] + sr : sr)
        }
        planePotential = v1
        planeKernel = kernels.planeInteractionMatrix(overlaps: sAxis, radii: rAxis)
        aValues = D == 3 ? axes[0] : [1]
        var p = [Double](repeating: 0, count: grid.count)
        for (layer, a) in aValues.enumerated() {
            for j in 0 ..< planeCount {
                let s = planePoints[2 * j], r = planePoints[2 * j + 1]
                var v = 0.5 * weightDecay * ((D == 3 ? a * a : 0) + s * s + r * r)
                if radial > 0 { v -= radial * log(r) }   // +infinity at r = 0
                p[layer * planeCount + j] = v
            }
        }
        nodePotential = p
    }

    public var dimension: Int { grid.dimension }

    /// `log|S^(n-1)| = log 2 + (n/2) log pi - log Gamma(n/2)`, the log-area of the unit sphere
    /// of `R^n` (`|S^0| = 2`).
    public static func logSphereArea(dimension n: Int) -> Double {
        log(2) + 0.5 * Double(n) * log(Double.pi) - lgamma(0.5 * Double(n))
    }

    // MARK: - Grids and densities

    /// A grid for the reduced flow: `a` and `s` with nodes on both bounds (as `RegularGrid` (GradientFlows)),
    /// `r` at the centres of `points` cells of `[lower, upper]`, so that `r = 0` (where the
    /// radial potential is infinite) is a wall, not a node, when `lower = 0`.
    ///
    /// - Parameters:
    ///   - secondLayer: `.trained` gives `(a, s, r)`, `.fixed` gives `(s, r)` (`a` ignored).
    ///   - a: bounds and number of points of the `a` axis (trained second layer only).
    ///   - s: bounds and number of points of the `s` axis.
    ///   - r: bounds and number of points of the `r` axis.
    /// - Throws: ``MeanFieldError`` naming ``MeanFieldParameter/grid`` for `r.lower < 0` or a missing `a` axis;
    ///   `WassersteinError` for bounds or counts `RegularGrid` (GradientFlows) rejects.
    public static func grid(secondLayer: SecondLayer, a: (lower: Double, upper: Double, points: Int)? = nil,
                            s: (lower: Double, upper: Double, points: Int),
                            r: (lower: Double, upper: Double, points: Int)) throws -> RegularGrid {
        try require(r.lower >= 0 && r.lower < r.upper, .grid, "r in [\(r.lower), \(r.upper)]", "needs 0 <= r.lower < r.upper")
        try require(r.points >= 1, .grid, "\(r.points) r points", "must be >= 1")
        let h = (r.upper - r.lower) / Double(r.points)
        var lower = [s.lower, r.lower + h / 2], upper = [s.upper, r.upper - h / 2], points = [s.points, r.points]
        if secondLayer == .trained {
            guard let a else { throw MeanFieldError.invalidSetting(parameter: .grid, value: "no a axis", requirement: "a trained second layer needs bounds for a") }
            lower.insert(a.lower, at: 0); upper.insert(a.upper, at: 0); points.insert(a.points, at: 0)
        }
        return try RegularGrid(lowerBounds: lower, upperBounds: upper, pointsPerAxis: points)
    }

    /// The symmetric initial law on the grid, as cell masses: a product of the laws of `a`
    /// (`N(a.mean, a.std^2)`), `s ~ N(0, gamma^2/d)` and `r ~ (gamma/sqrt(d)) chi_{d-1}`.
    ///
    /// Each axis factor is the mass of each cell (`[x - h/2, x + h/2]`, cut at `r = 0`) by a
    /// 32-point midpoint rule on the log-density, so laws narrower than the spacing (`r` at large
    /// `d` has deviation `gamma / sqrt(2d)`) keep their mass and nearly their mean; a point mass
    /// (`a.std = 0`, or `s` and `r` at `d = infinity`) is split between its two neighbouring nodes
    /// so that the mean is exact. Mass beyond the bounds is cut off and the rest renormalised.
    ///
    /// - Throws: ``MeanFieldError`` naming ``MeanFieldParameter/grid`` when the law has no mass on the grid.
    public static func initialDensity(_ law: ReducedInitialLaw, setting: ReducedSetting, grid: RegularGrid) throws -> GridDensity {
        let D = grid.dimension
        let axes = grid.axes, h = grid.spacing
        var factors = [[Double]]()
        if setting.secondLayer == .trained {
            factors.append(axisMasses(axes[0], spacing: h[0], lower: -.infinity, pointMass: law.aStd > 0 ? nil : law.aMean) { x in
                let t = (x - law.aMean) / law.aStd
                return -0.5 * t * t
            })
        }
        switch setting.inputDimension {
        case .infinity:
            factors.append(axisMasses(axes[D - 2], spacing: h[D - 2], lower: -.infinity, pointMass: 0) { _ in 0 })
            factors.append(axisMasses(axes[D - 1], spacing: h[D - 1], lower: 0, pointMass: law.gamma) { _ in 0 })
        case .finite(let d):
            let sigma = law.gamma / Double(d).squareRoot(), n = Double(d - 1)
            factors.append(axisMasses(axes[D - 2], spacing: h[D - 2], lower: -.infinity, pointMass: sigma > 0 ? nil : 0) { x in
                -0.5 * (x / sigma) * (x / sigma)
            })
            factors.append(axisMasses(axes[D - 1], spacing: h[D - 1], lower: 0, pointMass: sigma > 0 ? nil : 0) { x in
                x > 0 ? (n - 1) * log(x / sigma) - 0.5 * (x / sigma) * (x / sigma) : -.infinity
            })
        }
        for f in factors where !(f.reduce(0, +) > 0) {
            throw MeanFieldError.invalidSetting(parameter: .grid, value: "bounds \(grid.lowerBounds) ... \(grid.upperBounds)",
                                                requirement: "the initial law has no mass on the grid; widen the bounds")
        }
        return try GridDensity(grid: grid, masses: grid.tensorProduct(factors))
    }

    /// Cell masses along one axis of a law given by its log-density (up to a constant), or the
    /// linear split of a point mass.
    static func axisMasses(_ x: [Double], spacing h: Double, lower: Double, pointMass: Double?,
                           logDensity: (Double) -> Double) -> [Double] {
        var out = [Double](repeating: 0, count: x.count)
        if let p = pointMass {
            let u = (p - x[0]) / h
            if u <= 0 { out[0] = 1; return out }
            if u >= Double(x.count - 1) { out[x.count - 1] = 1; return out }
            let i = Int(clampingCount: u, limit: x.count - 2), f = u - Double(i)
            out[i] = 1 - f
            out[i + 1] = f
            return out
        }
        let sub = 32
        var logs = [Double](repeating: -.infinity, count: x.count * sub)
        var top = -Double.infinity
        for (i, xi) in x.enumerated() {
            for k in 0 ..< sub {
                let y = xi - h / 2 + (Double(k) + 0.5) * h / Double(sub)
                let l = y > lower ? logDensity(y) : -.infinity
                logs[i * sub + k] = l
                top = max(top, l)
            }
        }
        guard top.isFinite else { return out }
        for i in 0 ..< x.count {
            var m = 0.0
            for k in 0 ..< sub { m += exp(logs[i * sub + k] - top) }
            out[i] = m
        }
        return out
    }

    // MARK: - Energy

    /// The `a`-moment `m1(s, r) = sum_a a rho(a, s, r)` (3-D), or the masses themselves (2-D).
    func planeMoment(_ w: UnsafeBufferPointer<Double>) -> [Double] {
        if grid.dimension == 2 { return Array(w) }
        var m = [Double](repeating: 0, count: planeCount)
        for (layer, a) in aValues.enumerated() {
            let base = layer * planeCount
            for j in 0 ..< planeCount { m[j] += a * w[base + j] }
        }
        return m
    }

    /// `K m` for a vector over the `(s, r)` nodes; rows split over the cores, each summed in order.
    func applyPlaneKernel(_ m: [Double]) -> [Double] {
        let n = planeCount
        var out = [Double](repeating: 0, count: n)
        planeKernel.withUnsafeBufferPointer { kp in m.withUnsafeBufferPointer { mp in out.withUnsafeMutableBufferPointer { op in
            let kb = kp.baseAddress!, mb = mp.baseAddress!
            nonisolated(unsafe) let ob = op.baseAddress!
            Parallel.forEachChunk(count: n, minimumChunk: max(1, 65_536 / max(1, n))) { range in
                for i in range { ob[i] = dot(kb + i * n, mb, n) }
            }
        } } }
        return out
    }

    /// The population risk `R(rho_bar)` alone (no weight decay, radial term or constant): what a
    /// trajectory's `risk` column reports.
    public func risk(of density: GridDensity) -> Double {
        density.masses.withUnsafeBufferPointer { w in risk(moment: planeMoment(w)).value }
    }

    func risk(moment m: [Double]) -> (value: Double, km: [Double]) {
        let km = applyPlaneKernel(m)
        var s = 0.0
        for j in 0 ..< planeCount { s += m[j] * (planePotential[j] + 0.5 * km[j]) }
        return (0.5 * kernels.teacherSecondMoment + s, km)
    }

    /// `G(rho_bar) = R + E[P] + entropyConstant` for cell masses `weights` on the grid (`points`
    /// must be the grid's points: the energy is built for one grid). Nodes without mass are
    /// skipped, so a node at `r = 0` costs nothing unless it holds mass (then `+infinity`).
    package func value(points: UnsafeBufferPointer<Double>, weights: UnsafeBufferPointer<Double>) -> Double {
        precondition(weights.count == grid.count && points.count == grid.count * grid.dimension,
                     "ReducedGridEnergy is evaluated on the nodes of its grid")
        var total = risk(moment: planeMoment(weights)).value + entropyConstant
        for i in 0 ..< grid.count where weights[i] > 0 { total += weights[i] * nodePotential[i] }
        return total
    }

    /// `Psi(z_i) + P(z_i)` on every node; with `gradient`, its gradient in `z` by the pairwise
    /// engine of ``ReducedKernels`` (`O(N x N_massive x Q)`: the grid schemes never ask for it).
    package func firstVariation(points: UnsafeBufferPointer<Double>, weights: UnsafeBufferPointer<Double>,
                                potential: UnsafeMutableBufferPointer<Double>?, gradient: UnsafeMutableBufferPointer<Double>?) {
        precondition(weights.count == grid.count && points.count == grid.count * grid.dimension,
                     "ReducedGridEnergy is evaluated on the nodes of its grid")
        if let potential {
            let km = applyPlaneKernel(planeMoment(weights))
            for (layer, a) in aValues.enumerated() {
                let base = layer * planeCount
                for j in 0 ..< planeCount { potential[base + j] = a * (planePotential[j] + km[j]) + nodePotential[base + j] }
            }
        }
        if let gradient {
            let D = grid.dimension
            var lawPoints = [Double](), lawWeights = [Double]()
            for i in 0 ..< grid.count where weights[i] > 0 {
                lawPoints.append(contentsOf: points[(i * D) ..< ((i + 1) * D)])
                lawWeights.append(weights[i])
            }
            let law = ReducedKernels.PreparedLaw(points: lawPoints, weights: lawWeights, setting: kernels.setting)
            kernels.evaluate(points: points.baseAddress!, count: grid.count, law: law, psi: nil, potential: nil,
                             gradient: gradient.baseAddress!, parallel: true)
            for i in 0 ..< grid.count {
                for c in 0 ..< D { gradient[i * D + c] += weightDecay * points[i * D + c] }
                if radialCoefficient > 0 { gradient[i * D + D - 1] -= radialCoefficient / points[i * D + D - 1] }
            }
        }
    }

    // MARK: - Free energy

    /// `F = G + (1/beta) int rho_bar log rho_bar` for the grid JKO scheme and the Gibbs fixed
    /// point (`beta = nil`: `R + (lambda/2) E|z|^2`, the flow of the risk when `lambda = 0`).
    /// The Gibbs point of the reduced `F` is `rho_bar* ~ r^(n-1) exp(-beta (Psi + lambda |z|^2 / 2))`.
    public static func freeEnergy(kernels: ReducedKernels, grid: RegularGrid, weightDecay: Double = 0,
                                  inverseTemperature: Double? = nil) throws -> FreeEnergy {
        let smooth = try ReducedGridEnergy(kernels: kernels, grid: grid, weightDecay: weightDecay, inverseTemperature: inverseTemperature)
        return try FreeEnergy(smooth: smooth, inverseTemperature: inverseTemperature)
    }
}

extension ReducedKernels {
    /// `K(s_i, r_i; s_j, r_j) = E_t[k(|w_i|, |w_j|, s_i s_j + r_i r_j t)]` (the student kernel
    /// averaged over `t = <u, u'>`, with `a = a' = 1`) for every pair of nodes of the plane
    /// `overlaps x radii` (node `i = i_s n_r + i_r`), row-major and exactly symmetric. `k = 1` only.
    ///
    /// `K` is symmetric, so only the upper triangle is evaluated (row `i` from column `i` on, `Q`
    /// vectorised kernel rows) and mirrored: half the `N_sr^2 Q` kernel calls, which are the
    /// build's whole cost. Rows `p` and `N_sr - 1 - p` go to the same task (equal work).
    func planeInteractionMatrix(overlaps: [Double], radii: [Double]) -> [Double] {
        switch interactionKernel {
        case .relu(let k): return planeInteractionMatrix(kernel: k, overlaps, radii)
        case .erf(let k): return planeInteractionMatrix(kernel: k, overlaps, radii)
        case .linear(let k): return planeInteractionMatrix(kernel: k, overlaps, radii)
        case .linearTeacher(let k): return planeInteractionMatrix(kernel: k, overlaps, radii)
        case .hermiteTwo(let k): return planeInteractionMatrix(kernel: k, overlaps, radii)
        case .quadrature(let k): return planeInteractionMatrix(kernel: k, overlaps, radii)
        }
    }

    private func planeInteractionMatrix<K: PairKernel>(kernel: K, _ overlaps: [Double], _ radii: [Double]) -> [Double] {
        let nr = radii.count, n = overlaps.count * nr
        var s = [Double](repeating: 0, count: n), r = [Double](repeating: 0, count: n)
        for i in 0 ..< overlaps.count { for j in 0 ..< nr { s[i * nr + j] = overlaps[i]; r[i * nr + j] = radii[j] } }
        let squares = (0 ..< n).map { s[$0] * s[$0] + r[$0] * r[$0] }
        let infos = squares.map { NormInfo(squared: $0) }
        let norms = infos.map(\.norm), inverses = infos.map(\.inverse)
        let ones = [Double](repeating: 1, count: n)
        let nodes = sphereRule.nodes, nodeWeights = sphereRule.weights
        var matrix = [Double](repeating: 0, count: n * n)
        squares.withUnsafeBufferPointer { sqp in norms.withUnsafeBufferPointer { np in inverses.withUnsafeBufferPointer { ip in
        ones.withUnsafeBufferPointer { op in matrix.withUnsafeMutableBufferPointer { mp in
            let columns = NormColumns(squared: sqp.baseAddress!, norm: np.baseAddress!, inverse: ip.baseAddress!)
            nonisolated(unsafe) let out = mp.baseAddress!
            let c = op.baseAddress!
            let tasks = (n + 1) / 2
            Parallel.forEachChunk(count: tasks, minimumChunk: max(1, 4096 / max(1, n * nodes.count))) { range in
                let dots = UnsafeMutablePointer<Double>.allocate(capacity: n)
                let values = UnsafeMutablePointer<Double>.allocate(capacity: n)
                defer { dots.deallocate(); values.deallocate() }
                for task in range {
                    for i in Set([task, n - 1 - task]).sorted() {
                        // Columns i ..< n of row i.
                        let row = out + i * n + i, count = n - i
                        let tail = NormColumns(squared: columns.squared + i, norm: columns.norm + i, inverse: columns.inverse + i)
                        for j in 0 ..< count { row[j] = 0 }
                        for q in 0 ..< nodes.count {
                            let t = nodes[q], wq = nodeWeights[q]
                            for j in 0 ..< count { dots[j] = s[i] * s[i + j] + t * r[i] * r[i + j] }
                            kernel.evaluateRow(infos[i], dots: dots, norms: tail, coefficients: c, count: count, values: values,
                                               alphas: nil, betas: nil)
                            for j in 0 ..< count { row[j] += wq * values[j] }
                        }
                    }
                }
            }
            // The lower triangle from the upper.
            for i in 1 ..< max(1, n) {
                for j in 0 ..< i { out[i * n + j] = out[j * n + i] }
            }
        } } } } }
        return matrix
    }
}
