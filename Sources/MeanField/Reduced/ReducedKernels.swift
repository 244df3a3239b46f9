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
/// Largest error of `U` over 200 random pairs (`s ~ N(0,1)`, `r ~ |N(0,1)|`) plus nearly
/// parallel pairs, against 512 nodes; measured by `ReducedKernelTests` (which keep them). The
/// arc-cosine kernel of relu has a `(1 - cos)^(3/2)` singularity when `w` and `w'` are
/// parallel, which only `t = +-1` can reach, where the weight vanishes like
/// `(1 - t^2)^((n-3)/2)`: the error decays algebraically in `Q` for small `n` and faster for
/// larger `n`; erf's kernel is analytic and converges geometrically.
///
/// See ``defaultSphereNodes(orthogonalDimension:)`` for the table.
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
    ///   - sphereNodes: `Q`, the nodes of the rule for `t` (`nil`: the default for `n`, see
    ///     ``defaultSphereNodes(orthogonalDimension:)``). Ignored for `n = 1` and `d = infinity`,
    ///     whose rules are exact.
    ///   - quadratureNodes: per axis, for kernels without a closed form (default 48).
    /// - Throws: ``MeanFieldError`` naming `sphere_nodes` or `quadrature_nodes` (outside
    ///   `1 ... 256`).
    public init(setting: ReducedSetting, sphereNodes: Int? = nil, quadratureNodes: Int? = nil) throws {
        let q = quadratureNodes ?? 48
        try require((1 ... 256).contains(q), "quadrature_nodes", "\(q)", "must be in 1 ... 256")
        if let sphereNodes { try require((1 ... 512).contains(sphereNodes), "sphere_nodes", "\(sphereNodes)", "must be in 1 ... 512") }
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

    /// The default `Q` for the orthogonal dimension `n`: the smallest of the tabulated values
    /// whose measured worst error for relu (the harder case) is below about `1e-9`; see the
    /// type's notes for the table. `n = 1` needs 2 (exact).
    public static func defaultSphereNodes(orthogonalDimension n: Int) -> Int {
        switch n {
        case ...1: return 2
        case 2: return 64
        case 3: return 48
        case 4 ... 5: return 32
        case 6 ... 9: return 24
        case 10 ... 19: return 16
        case 20 ... 49: return 12
        case 50 ... 199: return 8
        default: return 6
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
            throw MeanFieldError.lengthMismatch(key: "points", expected: max(1, points.count / Dz) * Dz, actual: points.count)
        }
        try requireFinite(points, "points")
        let m = points.count / Dz
        var psi = [Double](repeating: 0, count: m)
        var grad: [Double]? = gradient ? [Double](repeating: 0, count: m * Dz) : nil
        let prepared = PreparedLaw(law: law, setting: setting)
        points.withUnsafeBufferPointer { pp in
            psi.withUnsafeMutableBufferPointer { ps in
                if grad != nil {
                    grad!.withUnsafeMutableBufferPointer { gs in
                        evaluate(points: pp.baseAddress!, count: m, law: prepared, psi: ps.baseAddress!, potential: nil,
                                 gradient: gs.baseAddress!, parallel: true)
                    }
                } else {
                    evaluate(points: pp.baseAddress!, count: m, law: prepared, psi: ps.baseAddress!, potential: nil,
                             gradient: nil, parallel: true)
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
                             gradient: nil, parallel: true)
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
            throw MeanFieldError.lengthMismatch(key: "law", expected: coordinateCount, actual: law.coordinateCount)
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
    func evaluate(points: UnsafePointer<Double>, count m: Int, law: PreparedLaw,
                  psi: UnsafeMutablePointer<Double>?, potential: UnsafeMutablePointer<Double>?,
                  gradient: UnsafeMutablePointer<Double>?, parallel: Bool) {
        switch interactionKernel {
        case .relu(let k): evaluate(kernel: k, points, m, law, psi, potential, gradient, parallel)
        case .erf(let k): evaluate(kernel: k, points, m, law, psi, potential, gradient, parallel)
        case .linear(let k): evaluate(kernel: k, points, m, law, psi, potential, gradient, parallel)
        case .linearTeacher(let k): evaluate(kernel: k, points, m, law, psi, potential, gradient, parallel)
        case .hermiteTwo(let k): evaluate(kernel: k, points, m, law, psi, potential, gradient, parallel)
        case .quadrature(let k): evaluate(kernel: k, points, m, law, psi, potential, gradient, parallel)
        }
    }

    private func evaluate<K: PairKernel>(kernel: K, _ points: UnsafePointer<Double>, _ m: Int, _ law: PreparedLaw,
                                         _ psiOut: UnsafeMutablePointer<Double>?,
                                         _ potentialOut: UnsafeMutablePointer<Double>?,
                                         _ gradientOut: UnsafeMutablePointer<Double>?, _ parallel: Bool) {
        let Dz = coordinateCount, o = setting.overlapOffset, k = setting.spanDimension
        let trained = o == 1
        let n = law.count
        let nodes = sphereRule.nodes, nodeWeights = sphereRule.weights
        let wantGradient = gradientOut != nil
        // A row costs Q kernel rows of n entries; chunks of >= ~4096 kernel calls pay for a hand-off.
        let minimumChunk = parallel ? max(1, 4096 / max(1, n * nodes.count)) : m
        law.overlaps.withUnsafeBufferPointer { sp in
        law.radii.withUnsafeBufferPointer { rp in
        law.squares.withUnsafeBufferPointer { sqp in
        law.norms.withUnsafeBufferPointer { np in
        law.inverses.withUnsafeBufferPointer { invp in
        law.coefficients.withUnsafeBufferPointer { cp in
            let sb = sp.baseAddress!, rb = rp.baseAddress!, cb = cp.baseAddress!
            let columns = NormColumns(squared: sqp.baseAddress!, norm: np.baseAddress!, inverse: invp.baseAddress!)
            nonisolated(unsafe) let psiOut = psiOut, potentialOut = potentialOut, gradientOut = gradientOut
            Parallel.forEachChunk(count: m, minimumChunk: minimumChunk) { range in
                let sDots = UnsafeMutablePointer<Double>.allocate(capacity: n)
                let rProducts = UnsafeMutablePointer<Double>.allocate(capacity: n)
                let dots = UnsafeMutablePointer<Double>.allocate(capacity: n)
                let values = UnsafeMutablePointer<Double>.allocate(capacity: n)
                let alphas = UnsafeMutablePointer<Double>.allocate(capacity: n)
                let betas = UnsafeMutablePointer<Double>.allocate(capacity: n)
                let teacherGrad = UnsafeMutablePointer<Double>.allocate(capacity: k + 1)
                defer {
                    sDots.deallocate(); rProducts.deallocate(); dots.deallocate(); values.deallocate()
                    alphas.deallocate(); betas.deallocate(); teacherGrad.deallocate()
                }
                var betaOverlap = [Double](repeating: 0, count: k)
                for i in range {
                    let row = points + i * Dz
                    let s = row + o, r = row[Dz - 1]
                    let infoI = NormInfo(squared: squaredNorm(s, k) + r * r)
                    // <s_i, s_j> and r_i r_j, shared by every node t.
                    for j in 0 ..< n { rProducts[j] = r * rb[j] }
                    if k == 1 {
                        let s0 = s[0]
                        for j in 0 ..< n { sDots[j] = s0 * sb[j] }
                    } else {
                        for j in 0 ..< n { sDots[j] = 0 }
                        for l in 0 ..< k {
                            let sl = s[l], col = sb + l * n
                            for j in 0 ..< n { sDots[j] += sl * col[j] }
                        }
                    }
                    var sumK = 0.0, sumAlpha = 0.0, sumBetaR = 0.0
                    for l in 0 ..< k { betaOverlap[l] = 0 }
                    for q in 0 ..< nodes.count {
                        let t = nodes[q], wq = nodeWeights[q]
                        for j in 0 ..< n { dots[j] = sDots[j] + t * rProducts[j] }
                        kernel.evaluateRow(infoI, dots: dots, norms: columns, coefficients: cb, count: n, values: values,
                                           alphas: wantGradient ? alphas : nil, betas: wantGradient ? betas : nil)
                        sumK += wq * fixedOrderSum(values, n)
                        if wantGradient {
                            sumAlpha += wq * fixedOrderSum(alphas, n)
                            // <w_j, u_i> = r_j t, so the r-component of sum_j beta_j w_j is t sum_j beta_j r_j.
                            sumBetaR += wq * t * dot(betas, rb, n)
                            for l in 0 ..< k { betaOverlap[l] += wq * dot(betas, sb + l * n, n) }
                        }
                    }
                    let ai = trained ? row[0] : 1
                    let tc = teacherCorrelation(s, r, infoI, gradient: wantGradient ? teacherGrad : nil)
                    let v = -ai * tc
                    potentialOut?[i] = v
                    psiOut?[i] = v + ai * sumK
                    if let gradientOut {
                        let g = gradientOut + i * Dz
                        if trained { g[0] = -tc + sumK }
                        for l in 0 ..< k { g[o + l] = ai * (sumAlpha * s[l] + betaOverlap[l] - teacherGrad[l]) }
                        g[Dz - 1] = ai * (sumAlpha * r + sumBetaR - teacherGrad[k])
                    }
                }
            }
        }}}}}}
    }
}
