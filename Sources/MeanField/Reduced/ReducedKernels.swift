import Wasserstein

/// `V`, `U`, `Psi`, their gradients in `z`, and the risk, for laws of reduced coordinates
/// `z = (a, s_1 ... s_k, r)` (see ``ReducedSetting``). Costs do not depend on `d`.
///
/// ## The kernels
/// With `w = sum_l s_l e_l + r u` (`u` a unit vector orthogonal to the span),
/// `|w|^2 = |s|^2 + r^2` and `<w, w'> = <s, s'> + r r' t`, `t = <u, u'>`. The full kernels of
/// ``PopulationRisk`` depend on `w, w'` only through `|w|`, `|w'|`, `<w, w'>`, so
///
///     V(z)     = -a sum_j c_j K*(|w|, |w*_j|, <s, w*_j>)          exact (no u involved)
///     U(z, z') = a a' E_t[ K(|w|, |w'|, <s, s'> + r r' t) ]
///
/// where `K*` is the student-teacher kernel, `K` the student-student kernel, and `t` is the
/// overlap of two independent uniform directions on `S^(n-1)`, of density proportional to
/// `(1 - t^2)^((n-3)/2)` on `[-1, 1]`. `E_t` is a Gauss rule for that law (``sphereRule``):
///
/// - `n = 1`: `t = +-1` with probability 1/2 each, exact;
/// - `n >= 2`: Gauss-Jacobi with `alpha = beta = (n-3)/2` (Chebyshev at `n = 2`) by
///   Golub-Welsch, `Q` nodes, exact for polynomials in `t` of degree `2Q - 1`;
/// - `d = infinity`: `t = 0` (the law of `t` is `N(0, 1/n)` in the limit), exact.
///
/// Gradients in `z` follow from the full gradient `grad_w K = alpha w + beta w'` by the chain
/// rule (`dw/ds_l = e_l`, `dw/dr = u`, `<w', u> = r' t`):
/// `dK/ds_l = alpha s_l + beta s'_l`, `dK/dr = alpha r + beta r' t`; they are the exact
/// gradients of the quadrature approximation.
///
/// ## Accuracy of `E_t` (default nodes)
/// Largest error of `U` over 200 random pairs (`a = 1`, `s ~ N(0,1)`, `r ~ |N(0,1)| + 0.01`)
/// plus four nearly parallel pairs, against 512 nodes (`bench-meanfield --only
/// reduced-accuracy`; `ReducedKernelTests` keeps the bound `2e-9`):
///
/// | n | 1 | 2 | 3 | 4 | 5 | 7 | 10 | 15 | 19 | 30 | 50 | 100 | 200 | 1000 |
/// |---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|
/// | default Q | 2 (exact) | 64 | 48 | 32 | 32 | 24 | 12 | 8 | 8 | 6 | 6 | 4 | 4 | 4 |
/// | relu | 0 | 7e-10 | 1e-10 | 1e-10 | 2e-11 | 5e-12 | 1e-10 | 4e-10 | 1e-10 | 3e-10 | 1e-11 | 4e-10 | 2e-11 | 4e-14 |
/// | erf | 0 | 8e-16 | 6e-16 | 1e-15 | 1e-15 | 9e-16 | 2e-12 | 2e-10 | 4e-11 | 2e-10 | 1e-11 | 3e-10 | 2e-11 | 4e-14 |
///
/// The arc-cosine kernel of relu has a `(1 - cos)^(3/2)` singularity when `w` and `w'` are
/// parallel, which only `t = +-1` can reach, where the weight vanishes like
/// `(1 - t^2)^((n-3)/2)`: for small `n` its error decays algebraically in `Q` (at `n = 2`:
/// 1e-5 at `Q = 8`, 1e-7 at 32, 7e-10 at 64). erf's kernel is analytic and converges
/// geometrically (1e-15 from `Q = 24` at `n = 2`). For large `n` the law of `t` is nearly
/// `N(0, 1/n)` and a few nodes suffice (`n = 1000`, relu: 1e-7 with 2 nodes, 4e-14 with 4).
///
/// ## Teacher activations
/// The student-teacher kernel `K*` is a closed form for relu/erf/linear against themselves,
/// relu/erf against a linear teacher, and every built-in student against `he2`; otherwise a
/// product Gauss-Hermite rule (``quadratureNodes`` per axis, as in ``PopulationRisk``).
public struct ReducedKernels: Sendable {
    public let setting: ReducedSetting
    /// The rule for `t = <u, u'>` (see the type's notes).
    public let sphereRule: GaussRule
    /// `R# = E[y^2]`, including the label-noise variance.
    public let teacherSecondMoment: Double
    /// Nodes per axis of the Gauss-Hermite rule for kernels without a closed form.
    public let quadratureNodes: Int
    /// Whether `K` and `K*` are closed forms (else Gauss-Hermite; `E_t` is a quadrature in
    /// every finite `d >= 3`).
    public let isClosedForm: Bool

    let interactionKernel: KernelChoice
    let teacherKernel: KernelChoice
    /// Teacher directions in span coordinates, row-major `J x k`.
    let teacherCoordinates: [Double]
    let teacherNorms: [NormInfo]

    /// - Parameters:
    ///   - setting: the activation, teacher, second layer and input dimension.
    ///   - sphereNodes: `Q`, the nodes of the rule for `t` (`nil`: the default for `n`, see
    ///     ``defaultSphereNodes(orthogonalDimension:)``). Ignored for `n = 1` and `d = infinity`,
    ///     whose rules are exact.
    ///   - quadratureNodes: per axis, for kernels without a closed form (default 48).
    /// - Throws: ``MeanFieldError`` naming `sphere_nodes` or `quadrature_nodes` (outside
    ///   `1 ... 256`).
    public init(setting: ReducedSetting, sphereNodes: Int? = nil, quadratureNodes: Int? = nil) throws {
        let q = quadratureNodes ?? 48
        try require((1 ... 256).contains(q), .quadratureNodes, "\(q)", "must be in 1 ... 256")
        if let sphereNodes { try require((1 ... 512).contains(sphereNodes), .sphereNodes, "\(sphereNodes)", "must be in 1 ... 512") }
        self.setting = setting
        self.quadratureNodes = q
        self.sphereRule = Self.sphereRule(orthogonalDimension: setting.orthogonalDimension, nodes: sphereNodes)
        // Gaussian inputs: the projected rule does not depend on d (1 is a placeholder).
        let rule = ProjectedRule(inputs: .gaussian, dimension: 1, nodes: q)
        let student = setting.activation, teacherActivation = setting.teacherActivation
        interactionKernel = KernelChoice.pair(student: student, partner: student, inputs: .gaussian, dimension: 1, rule: rule,
                                              alwaysUseQuadrature: false)
        teacherKernel = KernelChoice.pair(student: student, partner: teacherActivation, inputs: .gaussian, dimension: 1, rule: rule,
                                          alwaysUseQuadrature: false)
        let teacherSelf = KernelChoice.pair(student: teacherActivation, partner: teacherActivation, inputs: .gaussian, dimension: 1,
                                            rule: rule, alwaysUseQuadrature: false)
        let t = setting.teacher
        teacherCoordinates = t.directions.flatMap { $0 }
        teacherNorms = t.directions.map { NormInfo(squared: $0.reduce(0) { $0 + $1 * $1 }) }
        var r2 = 0.0
        for j in 0 ..< t.directions.count {
            for l in 0 ..< t.directions.count {
                let dot = zip(t.directions[j], t.directions[l]).reduce(0) { $0 + $1.0 * $1.1 }
                r2 += t.coefficients[j] * t.coefficients[l] * teacherSelf.value(teacherNorms[j], teacherNorms[l], dot)
            }
        }
        teacherSecondMoment = r2 + t.noise * t.noise
        isClosedForm = interactionKernel.isClosedForm && teacherKernel.isClosedForm && teacherSelf.isClosedForm
    }

    /// The rule for `t = <u, u'>`, `u, u'` independent and uniform on `S^(n-1)`: two points
    /// `+-1` for `n = 1`, `Q`-node Gauss-Jacobi (`alpha = beta = (n-3)/2`) for `n >= 2`, the
    /// point `t = 0` for `n = nil` (infinity).
    public static func sphereRule(orthogonalDimension n: Int?, nodes: Int? = nil) -> GaussRule {
        guard let n else { return GaussRule(nodes: [0], weights: [1]) }
        precondition(n >= 1)
        if n == 1 { return GaussRule(nodes: [-1, 1], weights: [0.5, 0.5]) }
        let q = nodes ?? defaultSphereNodes(orthogonalDimension: n)
        return GaussRule.symmetricJacobi(q, gamma: Double(n - 3) / 2)
    }

    /// The default `Q` for the orthogonal dimension `n`: from a ladder of node counts, the
    /// smallest whose measured worst error of `U` for relu and erf is below `1e-9` (the type's
    /// notes give the table). `n = 1` needs 2 (exact).
    public static func defaultSphereNodes(orthogonalDimension n: Int) -> Int {
        switch n {
        case ...1: return 2
        case 2: return 64
        case 3: return 48
        case 4 ... 5: return 32
        case 6 ... 9: return 24
        case 10 ... 14: return 12
        case 15 ... 29: return 8
        case 30 ... 99: return 6
        default: return 4
        }
    }

    /// Values per point `z`.
    public var coordinateCount: Int { setting.coordinateCount }

    /// One line for run summaries, e.g. `closed form (relu), Gauss-Jacobi t-rule, 16 nodes (n = 19)`.
    public var kernelDescription: String {
        let teacherActivation = setting.teacherActivation
        let pair = teacherActivation.description == setting.activation.description
            ? "\(setting.activation)" : "\(setting.activation) student, \(teacherActivation) teacher"
        let kernels = isClosedForm ? "closed form" : "Gauss-Hermite \(quadratureNodes) x \(quadratureNodes)"
        let tRule: String
        switch setting.orthogonalDimension {
        case nil: tRule = "t = 0 (d = infinity)"
        case 1?: tRule = "t = +-1 (n = 1, exact)"
        case let n?: tRule = "Gauss-Jacobi t-rule, \(sphereRule.nodes.count) nodes (n = \(n))"
        }
        return "\(kernels) (\(pair)), \(tRule)"
    }

    // MARK: - Single points

    /// `T(z) = E[y s(<w, x>)]` and, when `gradient` is given, `dT/ds_l` (`k` values) then
    /// `dT/dr` written to it.
    func teacherCorrelation(_ s: UnsafePointer<Double>, _ r: Double, _ info: NormInfo,
                            gradient: UnsafeMutablePointer<Double>?) -> Double {
        let k = setting.spanDimension
        let c = setting.teacher.coefficients
        var total = 0.0
        if let gradient { for l in 0 ... k { gradient[l] = 0 } }
        for j in 0 ..< c.count {
            var dot = 0.0
            for l in 0 ..< k { dot += s[l] * teacherCoordinates[j * k + l] }
            if let gradient {
                let kv = teacherKernel.evaluate(info, teacherNorms[j], dot)
                total += c[j] * kv.value
                for l in 0 ..< k { gradient[l] += c[j] * (kv.alpha * s[l] + kv.beta * teacherCoordinates[j * k + l]) }
                gradient[k] += c[j] * kv.alpha * r
            } else {
                total += c[j] * teacherKernel.value(info, teacherNorms[j], dot)
            }
        }
        return total
    }

    /// `V(z) = -E[y sigma_*(x; theta)]`.
    public func potential(_ z: [Double]) -> Double {
        precondition(z.count == coordinateCount)
        let o = setting.overlapOffset, k = setting.spanDimension
        let a = o == 1 ? z[0] : 1, r = z[coordinateCount - 1]
        return z.withUnsafeBufferPointer { p in
            let s = p.baseAddress! + o
            let info = NormInfo(squared: squaredNorm(s, k) + r * r)
            return -a * teacherCorrelation(s, r, info, gradient: nil)
        }
    }

    /// `grad_z V(z)`.
    public func potentialGradient(_ z: [Double]) -> [Double] {
        precondition(z.count == coordinateCount)
        let o = setting.overlapOffset, k = setting.spanDimension
        let a = o == 1 ? z[0] : 1, r = z[coordinateCount - 1]
        var g = [Double](repeating: 0, count: coordinateCount)
        z.withUnsafeBufferPointer { p in
            g.withUnsafeMutableBufferPointer { gp in
                let s = p.baseAddress! + o
                let info = NormInfo(squared: squaredNorm(s, k) + r * r)
                let t = teacherCorrelation(s, r, info, gradient: gp.baseAddress! + o)
                for l in 0 ... k { gp[o + l] *= -a }
                if o == 1 { gp[0] = -t }
            }
        }
        return g
    }

    /// `U(z, z')`.
    public func interaction(_ z: [Double], _ other: [Double]) -> Double { interactionAndGradient(z, other).value }

    /// `U(z, z')` and its gradient in the first argument `z`.
    public func interactionAndGradient(_ z: [Double], _ other: [Double]) -> (value: Double, gradient: [Double]) {
        precondition(z.count == coordinateCount && other.count == coordinateCount)
        let o = setting.overlapOffset, k = setting.spanDimension, last = coordinateCount - 1
        let a = o == 1 ? z[0] : 1, b = o == 1 ? other[0] : 1
        let r = z[last], r2 = other[last]
        var sDot = 0.0, q1 = r * r, q2 = r2 * r2
        for l in 0 ..< k {
            sDot += z[o + l] * other[o + l]
            q1 += z[o + l] * z[o + l]
            q2 += other[o + l] * other[o + l]
        }
        let i = NormInfo(squared: q1), j = NormInfo(squared: q2)
        var value = 0.0, alpha = 0.0, beta = 0.0, betaT = 0.0
        for (t, w) in zip(sphereRule.nodes, sphereRule.weights) {
            let kv = interactionKernel.evaluate(i, j, sDot + r * r2 * t)
            value += w * kv.value
            alpha += w * kv.alpha
            beta += w * kv.beta
            betaT += w * kv.beta * t
        }
        var g = [Double](repeating: 0, count: coordinateCount)
        if o == 1 { g[0] = b * value }
        for l in 0 ..< k { g[o + l] = a * b * (alpha * z[o + l] + beta * other[o + l]) }
        g[last] = a * b * (alpha * r + betaT * r2)
        return (a * b * value, g)
    }

    // MARK: - Laws

    /// `Psi(z_i; rho_bar)` at every point of `points` (row-major, `coordinateCount` values
    /// each) and, when `gradient` is true, `grad_z Psi(z_i; rho_bar)` (row-major like `points`).
    /// Cost `O(count x law.count x Q)`, split over the cores.
    ///
    /// - Throws: ``MeanFieldError`` naming `points` (wrong length, not finite) or `law`
    ///   (coordinates that do not match the setting).
    public func firstVariation(at points: [Double], law: ReducedLaw, gradient: Bool = true) throws
        -> (potential: [Double], gradient: [Double]?) {
        try checkLaw(law)
        let Dz = coordinateCount
        if points.isEmpty || points.count % Dz != 0 {
            throw MeanFieldError.lengthMismatch(parameter: .points, expected: max(1, points.count / Dz) * Dz, actual: points.count)
        }
        try requireFinite(points, .points)
        let m = points.count / Dz
        var psi = [Double](repeating: 0, count: m)
        var grad: [Double]? = gradient ? [Double](repeating: 0, count: m * Dz) : nil
        let prepared = PreparedLaw(law: law, setting: setting)
        let own = points == law.points
        points.withUnsafeBufferPointer { pp in
            psi.withUnsafeMutableBufferPointer { ps in
                if grad != nil {
                    grad!.withUnsafeMutableBufferPointer { gs in
                        evaluate(points: pp.baseAddress!, count: m, law: prepared, psi: ps.baseAddress!, potential: nil,
                                 gradient: gs.baseAddress!, parallel: true, pointsAreLaw: own)
                    }
                } else {
                    evaluate(points: pp.baseAddress!, count: m, law: prepared, psi: ps.baseAddress!, potential: nil,
                             gradient: nil, parallel: true, pointsAreLaw: own)
                }
            }
        }
        return (psi, grad)
    }

    /// `R(rho_bar) = R#/2 + sum_i w_i V(z_i) + (1/2) sum_ij w_i w_j U(z_i, z_j)`, which is the
    /// full population risk of the rotation-invariant law `rho_bar` stands for.
    public func risk(_ law: ReducedLaw) throws -> Double {
        try checkLaw(law)
        let m = law.count
        var psi = [Double](repeating: 0, count: m), v = [Double](repeating: 0, count: m)
        let prepared = PreparedLaw(law: law, setting: setting)
        law.points.withUnsafeBufferPointer { pp in
            psi.withUnsafeMutableBufferPointer { ps in
                v.withUnsafeMutableBufferPointer { vs in
                    evaluate(points: pp.baseAddress!, count: m, law: prepared, psi: ps.baseAddress!, potential: vs.baseAddress!,
                             gradient: nil, parallel: true, pointsAreLaw: true)
                }
            }
        }
        return riskFrom(psi: psi, potential: v, weights: law.weights)
    }

    /// `R = R#/2 + (1/2) sum_i w_i (V_i + Psi_i)`.
    func riskFrom(psi: [Double], potential: [Double], weights: [Double]) -> Double {
        var s = 0.0
        for i in 0 ..< weights.count { s += weights[i] * (potential[i] + psi[i]) }
        return 0.5 * (teacherSecondMoment + s)
    }

    func checkLaw(_ law: ReducedLaw) throws {
        if law.coordinateCount != coordinateCount {
            throw MeanFieldError.lengthMismatch(parameter: .law, expected: coordinateCount, actual: law.coordinateCount)
        }
    }

    // MARK: - The O(M^2 Q) engine

    /// The law's points in the form the engine reads: column-major overlaps (`k x m`), radii,
    /// norms, and `c_j = weight_j a_j`.
    struct PreparedLaw {
        var count: Int
        var overlaps: [Double]
        var radii: [Double]
        var squares: [Double]
        var norms: [Double]
        var inverses: [Double]
        var coefficients: [Double]

        init(law: ReducedLaw, setting: ReducedSetting) {
            self.init(points: law.points, weights: law.weights, setting: setting)
        }

        init(points: [Double], weights: [Double], setting: ReducedSetting) {
            let m = weights.count, Dz = setting.coordinateCount, o = setting.overlapOffset, k = setting.spanDimension
            count = m
            overlaps = [Double](repeating: 0, count: k * m)
            radii = [Double](repeating: 0, count: m)
            squares = [Double](repeating: 0, count: m)
            norms = [Double](repeating: 0, count: m)
            inverses = [Double](repeating: 0, count: m)
            coefficients = [Double](repeating: 0, count: m)
            for j in 0 ..< m {
                let row = j * Dz
                var q = 0.0
                for l in 0 ..< k {
                    let v = points[row + o + l]
                    overlaps[l * m + j] = v
                    q += v * v
                }
                let r = points[row + Dz - 1]
                radii[j] = r
                q += r * r
                let info = NormInfo(squared: q)
                squares[j] = q
                norms[j] = info.norm
                inverses[j] = info.inverse
                coefficients[j] = weights[j] * (o == 1 ? points[row] : 1)
            }
        }
    }

    /// Fills `psi[i] = Psi(z_i)`, `potential[i] = V(z_i)` and `gradient[i]` (rows of
    /// `coordinateCount`) for the points `z_i` against the prepared law. Rows are split over
    /// the cores; each row's sums run in a fixed order, so results do not depend on the split.
    /// `pointsAreLaw`: the points are the law's own support, in order; closed-form kernels then
    /// evaluate each unordered pair once (``evaluateSymmetric(kernel:_:_:_:_:_:_:)``).
    func evaluate(points: UnsafePointer<Double>, count m: Int, law: PreparedLaw,
                  psi: UnsafeMutablePointer<Double>?, potential: UnsafeMutablePointer<Double>?,
                  gradient: UnsafeMutablePointer<Double>?, parallel: Bool, pointsAreLaw: Bool = false) {
        let symmetric = pointsAreLaw && m == law.count && m >= 8
        switch interactionKernel {
        case .relu(let k) where symmetric: evaluateSymmetric(kernel: k, points, law, psi, potential, gradient, parallel)
        case .erf(let k) where symmetric: evaluateSymmetric(kernel: k, points, law, psi, potential, gradient, parallel)
        case .linear(let k) where symmetric: evaluateSymmetric(kernel: k, points, law, psi, potential, gradient, parallel)
        case .relu(let k): evaluate(kernel: k, points, m, law, psi, potential, gradient, parallel)
        case .erf(let k): evaluate(kernel: k, points, m, law, psi, potential, gradient, parallel)
        case .linear(let k): evaluate(kernel: k, points, m, law, psi, potential, gradient, parallel)
        case .linearTeacher(let k): evaluate(kernel: k, points, m, law, psi, potential, gradient, parallel)
        case .hermiteTwo(let k): evaluate(kernel: k, points, m, law, psi, potential, gradient, parallel)
        case .quadrature(let k): evaluate(kernel: k, points, m, law, psi, potential, gradient, parallel)
        }
    }

    /// The interaction sums of one row, `sum_j c_j <K>`, `sum_j c_j <alpha>`,
    /// `sum_j c_j <beta> s_j` (two overlap columns), `sum_j c_j <beta t> r_j` (`<.>` the t-rule
    /// average), turned into `V`, `Psi` and `grad_z Psi` at row `i`.
    @inline(__always)
    private func finishRow(_ i: Int, _ row: UnsafePointer<Double>, sumK: Double, sumAlpha: Double, sumS0: Double, sumS1: Double,
                           sumR: Double, teacherGrad: UnsafeMutablePointer<Double>,
                           _ psiOut: UnsafeMutablePointer<Double>?, _ potentialOut: UnsafeMutablePointer<Double>?,
                           _ gradientOut: UnsafeMutablePointer<Double>?) {
        let Dz = coordinateCount, o = setting.overlapOffset, k = setting.spanDimension
        let s = row + o, r = row[Dz - 1]
        let s0 = s[0], s1 = k == 2 ? s[1] : 0
        let infoI = NormInfo(squared: squaredNorm(s, k) + r * r)
        let ai = o == 1 ? row[0] : 1
        let tc = teacherCorrelation(s, r, infoI, gradient: gradientOut != nil ? teacherGrad : nil)
        let v = -ai * tc
        potentialOut?[i] = v
        psiOut?[i] = v + ai * sumK
        if let gradientOut {
            let g = gradientOut + i * Dz
            if o == 1 { g[0] = -tc + sumK }
            g[o] = ai * (sumAlpha * s0 + sumS0 - teacherGrad[0])
            if k == 2 { g[o + 1] = ai * (sumAlpha * s1 + sumS1 - teacherGrad[1]) }
            g[Dz - 1] = ai * (sumAlpha * r + sumR - teacherGrad[k])
        }
    }

    private func evaluate<K: PairKernel>(kernel: K, _ points: UnsafePointer<Double>, _ m: Int, _ law: PreparedLaw,
                                         _ psiOut: UnsafeMutablePointer<Double>?,
                                         _ potentialOut: UnsafeMutablePointer<Double>?,
                                         _ gradientOut: UnsafeMutablePointer<Double>?, _ parallel: Bool) {
        let Dz = coordinateCount, o = setting.overlapOffset, k = setting.spanDimension
        let n = law.count
        let nodeCount = sphereRule.nodes.count
        let wantGradient = gradientOut != nil
        // A row costs Q n kernel calls; chunks of >= ~4096 calls pay for a hand-off.
        let minimumChunk = parallel ? max(1, 4096 / max(1, n * nodeCount)) : m
        sphereRule.nodes.withUnsafeBufferPointer { tp in
        sphereRule.weights.withUnsafeBufferPointer { wp in
        law.overlaps.withUnsafeBufferPointer { sp in
        law.radii.withUnsafeBufferPointer { rp in
        law.squares.withUnsafeBufferPointer { sqp in
        law.norms.withUnsafeBufferPointer { np in
        law.inverses.withUnsafeBufferPointer { invp in
        law.coefficients.withUnsafeBufferPointer { cp in
            let nodes = tp.baseAddress!, nodeWeights = wp.baseAddress!
            let sb = sp.baseAddress!, rb = rp.baseAddress!, cb = cp.baseAddress!
            let sqb = sqp.baseAddress!, nb = np.baseAddress!, invb = invp.baseAddress!
            // The second overlap column (k = 2) or the first again (k = 1, unused).
            let sb2 = k == 2 ? sb + n : sb
            nonisolated(unsafe) let psiOut = psiOut, potentialOut = potentialOut, gradientOut = gradientOut
            Parallel.forEachChunk(count: m, minimumChunk: minimumChunk) { range in
                let teacherGrad = UnsafeMutablePointer<Double>.allocate(capacity: k + 1)
                defer { teacherGrad.deallocate() }
                for i in range {
                    let row = points + i * Dz
                    let s = row + o, r = row[Dz - 1]
                    let s0 = s[0], s1 = k == 2 ? s[1] : 0
                    let infoI = NormInfo(squared: squaredNorm(s, k) + r * r)
                    // One pass over j, four at a time, the Q nodes of the t-rule inside: for each
                    // pair the rule's averages of K, alpha, beta and beta t, weighted by
                    // c_j = weight_j a_j and folded into the row sums
                    //   sum_j c_j K,  sum_j c_j alpha,  sum_j c_j beta s_j,  sum_j c_j beta t r_j
                    // (<w_j, u_i> = r_j t, so the r-part of sum_j beta_j w_j carries the t).
                    var accK = D4(), accAlpha = D4(), accS0 = D4(), accS1 = D4(), accR = D4()
                    var j = 0
                    while j + 4 <= n {
                        let sj0 = load4(sb + j), rj = load4(rb + j)
                        let sDot = k == 2 ? s0 * sj0 + s1 * load4(sb2 + j) : s0 * sj0
                        let rr = r * rj
                        let sq = load4(sqb + j), nj = load4(nb + j), invj = load4(invb + j)
                        var v = D4(), a = D4(), b = D4(), bt = D4()
                        for q in 0 ..< nodeCount {
                            let t = nodes[q], wq = nodeWeights[q]
                            let kv = kernel.evaluate4(infoI, dot: sDot + t * rr, squared: sq, norm: nj, inverse: invj)
                            v += wq * kv.value
                            a += wq * kv.alpha
                            b += wq * kv.beta
                            bt += (wq * t) * kv.beta
                        }
                        let cj = load4(cb + j)
                        accK += cj * v
                        if wantGradient {
                            accAlpha += cj * a
                            accS0 += cj * b * sj0
                            if k == 2 { accS1 += cj * b * load4(sb2 + j) }
                            accR += cj * bt * rj
                        }
                        j += 4
                    }
                    var sumK = (accK[0] + accK[1]) + (accK[2] + accK[3])
                    var sumAlpha = (accAlpha[0] + accAlpha[1]) + (accAlpha[2] + accAlpha[3])
                    var sumS0 = (accS0[0] + accS0[1]) + (accS0[2] + accS0[3])
                    var sumS1 = (accS1[0] + accS1[1]) + (accS1[2] + accS1[3])
                    var sumR = (accR[0] + accR[1]) + (accR[2] + accR[3])
                    while j < n {
                        let sj0 = sb[j], sj1 = k == 2 ? sb2[j] : 0, rj = rb[j]
                        let sDot = s0 * sj0 + s1 * sj1
                        let infoJ = NormInfo(squared: sqb[j], norm: nb[j], inverse: invb[j])
                        var v = 0.0, a = 0.0, b = 0.0, bt = 0.0
                        for q in 0 ..< nodeCount {
                            let t = nodes[q], wq = nodeWeights[q]
                            let kv = kernel.evaluate(infoI, infoJ, sDot + t * r * rj)
                            v += wq * kv.value
                            a += wq * kv.alpha
                            b += wq * kv.beta
                            bt += (wq * t) * kv.beta
                        }
                        let cj = cb[j]
                        sumK += cj * v
                        sumAlpha += cj * a
                        sumS0 += cj * b * sj0
                        sumS1 += cj * b * sj1
                        sumR += cj * bt * rj
                        j += 1
                    }
                    finishRow(i, row, sumK: sumK, sumAlpha: sumAlpha, sumS0: sumS0, sumS1: sumS1, sumR: sumR,
                              teacherGrad: teacherGrad, psiOut, potentialOut, gradientOut)
                }
            }
        }}}}}}}}
    }

    /// The engine for `Psi` at the law's own points with a symmetric kernel: each unordered pair
    /// `{i, j}` is evaluated once and feeds both rows (`U(z_i, z_j) = U(z_j, z_i)`, `<beta>` is
    /// symmetric and `alpha_ji` comes with the same kernel call), half the work of ``evaluate``.
    ///
    /// The points are cut into `B <= 32` blocks of a multiple of 4 (the columns are padded with
    /// zero-weight points to a multiple of 4). Block-row `I` takes its diagonal block one-sided
    /// (row `i` against every `j` of the block) and the blocks `J > I` both ways: row `i`'s sums
    /// stay in registers, the contributions to rows `j` go to the buffer of block-row `I`.
    /// Block-rows `p` and `B - 1 - p` go to the same task (equal work). A row's total is its own
    /// sums plus the buffers of the block-rows above it, added in block order: every sum has an
    /// order fixed by `M` alone, so results do not depend on the cores.
    private func evaluateSymmetric<K: SymmetricPairKernel>(kernel: K, _ points: UnsafePointer<Double>, _ law: PreparedLaw,
                                                           _ psiOut: UnsafeMutablePointer<Double>?,
                                                           _ potentialOut: UnsafeMutablePointer<Double>?,
                                                           _ gradientOut: UnsafeMutablePointer<Double>?, _ parallel: Bool) {
        let m = law.count, k = setting.spanDimension, Dz = coordinateCount
        let padded = (m + 3) / 4 * 4
        func pad(_ a: [Double], from offset: Int = 0) -> [Double] {
            var p = [Double](repeating: 0, count: padded)
            for j in 0 ..< m { p[j] = a[offset + j] }
            return p
        }
        let s0c = pad(law.overlaps), s1c = k == 2 ? pad(law.overlaps, from: m) : [Double](repeating: 0, count: padded)
        let rc = pad(law.radii), sqc = pad(law.squares), nc = pad(law.norms), invc = pad(law.inverses), cc = pad(law.coefficients)
        let blockCount0 = min(32, max(1, padded / 64))
        let blockSize = ((padded + blockCount0 - 1) / blockCount0 + 3) / 4 * 4
        let blocks = (padded + blockSize - 1) / blockSize
        // Own sums, five per row ([quantity][row]), and the block-rows' column buffers ([quantity][I][j]).
        var own = [Double](repeating: 0, count: 5 * m)
        var columns = [Double](repeating: 0, count: 5 * blocks * padded)
        let nodeCount = sphereRule.nodes.count
        let pairs = Double(m) * Double(m) * Double(nodeCount) / 2
        let tasks = (blocks + 1) / 2
        own.withUnsafeMutableBufferPointer { ownp in
        columns.withUnsafeMutableBufferPointer { colp in
        sphereRule.nodes.withUnsafeBufferPointer { tp in
        sphereRule.weights.withUnsafeBufferPointer { wp in
        s0c.withUnsafeBufferPointer { s0p in s1c.withUnsafeBufferPointer { s1p in rc.withUnsafeBufferPointer { rp in
        sqc.withUnsafeBufferPointer { sqp in nc.withUnsafeBufferPointer { np in invc.withUnsafeBufferPointer { invp in
        cc.withUnsafeBufferPointer { cp in
            let nodes = tp.baseAddress!, nodeWeights = wp.baseAddress!
            let sb0 = s0p.baseAddress!, sb1 = s1p.baseAddress!, rb = rp.baseAddress!
            let sqb = sqp.baseAddress!, nb = np.baseAddress!, invb = invp.baseAddress!, cb = cp.baseAddress!
            nonisolated(unsafe) let ownb = ownp.baseAddress!, colb = colp.baseAddress!
            let stride = blocks * padded
            Parallel.forEachChunk(count: tasks, minimumChunk: parallel && pairs > 8192 ? 1 : tasks) { range in
                for task in range {
                    for blockRow in Set([task, blocks - 1 - task]).sorted() {
                        let i0 = blockRow * blockSize
                        let i1 = min(m, i0 + blockSize)
                        let diagonalEnd = min(padded, i0 + blockSize)
                        let column = colb + blockRow * padded
                        var i = i0
                        while i < i1 {
                            let si0 = sb0[i], si1 = sb1[i], ri = rb[i], ci = cb[i]
                            let infoI = NormInfo(squared: sqb[i], norm: nb[i], inverse: invb[i])
                            var accK = D4(), accAlpha = D4(), accS0 = D4(), accS1 = D4(), accR = D4()
                            var j = i0
                            while j < padded {
                                let sj0 = load4(sb0 + j), sj1 = load4(sb1 + j), rj = load4(rb + j)
                                let sDot = k == 2 ? si0 * sj0 + si1 * sj1 : si0 * sj0
                                let rr = ri * rj
                                let sq = load4(sqb + j), nj = load4(nb + j), invj = load4(invb + j)
                                var v = D4(), a = D4(), aRev = D4(), b = D4(), bt = D4()
                                for q in 0 ..< nodeCount {
                                    let t = nodes[q], wq = nodeWeights[q]
                                    let kv = kernel.evaluate4Both(infoI, dot: sDot + t * rr, squared: sq, norm: nj, inverse: invj)
                                    v += wq * kv.value
                                    a += wq * kv.alpha
                                    aRev += wq * kv.alphaReverse
                                    b += wq * kv.beta
                                    bt += (wq * t) * kv.beta
                                }
                                let cj = load4(cb + j)
                                accK += cj * v
                                accAlpha += cj * a
                                accS0 += cj * b * sj0
                                accS1 += cj * b * sj1
                                accR += cj * bt * rj
                                if j >= diagonalEnd {
                                    // Row j's share of the pair, from row i.
                                    store4(load4(column + j) + ci * v, column + j)
                                    store4(load4(column + stride + j) + ci * aRev, column + stride + j)
                                    store4(load4(column + 2 * stride + j) + ci * b * si0, column + 2 * stride + j)
                                    store4(load4(column + 3 * stride + j) + ci * b * si1, column + 3 * stride + j)
                                    store4(load4(column + 4 * stride + j) + ci * bt * ri, column + 4 * stride + j)
                                }
                                j += 4
                            }
                            ownb[i] = (accK[0] + accK[1]) + (accK[2] + accK[3])
                            ownb[m + i] = (accAlpha[0] + accAlpha[1]) + (accAlpha[2] + accAlpha[3])
                            ownb[2 * m + i] = (accS0[0] + accS0[1]) + (accS0[2] + accS0[3])
                            ownb[3 * m + i] = (accS1[0] + accS1[1]) + (accS1[2] + accS1[3])
                            ownb[4 * m + i] = (accR[0] + accR[1]) + (accR[2] + accR[3])
                            i += 1
                        }
                    }
                }
            }
        }}}}}}}}}}}
        // Rows: own sums plus the buffers of the block-rows above, in block order.
        own.withUnsafeBufferPointer { ownp in
        columns.withUnsafeBufferPointer { colp in
            let ownb = ownp.baseAddress!, colb = colp.baseAddress!
            let stride = blocks * padded
            nonisolated(unsafe) let psiOut = psiOut, potentialOut = potentialOut, gradientOut = gradientOut
            Parallel.forEachChunk(count: m, minimumChunk: parallel ? 256 : m) { range in
                let teacherGrad = UnsafeMutablePointer<Double>.allocate(capacity: k + 1)
                defer { teacherGrad.deallocate() }
                for i in range {
                    var sums = (ownb[i], ownb[m + i], ownb[2 * m + i], ownb[3 * m + i], ownb[4 * m + i])
                    for blockRow in 0 ..< (i / blockSize) {
                        let column = colb + blockRow * padded + i
                        sums.0 += column[0]
                        sums.1 += column[stride]
                        sums.2 += column[2 * stride]
                        sums.3 += column[3 * stride]
                        sums.4 += column[4 * stride]
                    }
                    finishRow(i, points + i * Dz, sumK: sums.0, sumAlpha: sums.1, sumS0: sums.2, sumS1: sums.3, sumR: sums.4,
                              teacherGrad: teacherGrad, psiOut, potentialOut, gradientOut)
                }
            }
        }}
    }
}
