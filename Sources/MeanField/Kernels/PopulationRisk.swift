import Wasserstein

/// How ``PopulationRisk`` evaluates the kernels `V` and `U`.
public struct KernelOptions: Sendable {
    /// Nodes per axis of the product Gauss rule used where no closed form exists (the kernel
    /// costs `nodes^2` activation evaluations per pair). `nil`: 48 for Gaussian inputs, 24 on
    /// the sphere (see ``PopulationRisk`` for the errors these give).
    public var quadratureNodes: Int?
    /// Use the quadrature even where a closed form exists (for cross-checks).
    public var alwaysUseQuadrature: Bool

    public init(quadratureNodes: Int? = nil, alwaysUseQuadrature: Bool = false) {
        self.quadratureNodes = quadratureNodes
        self.alwaysUseQuadrature = alwaysUseQuadrature
    }
}

/// The population risk of a mean-field network against a teacher, with its pieces
/// (Docs/Theory.md, section 3.1):
///
///     R(rho) = R#/2 + int V d rho + (1/2) int int U d rho d rho
///     R#       = E[y^2]
///     V(theta) = -E[y sigma_*(x; theta)]        = -a T(w),  T(w) = E[y s(<w, x>)]
///     U(theta, theta') = E[sigma_* sigma_*']    = a a' K(w, w'),  K(w, w') = E[s(<w,x>) s(<w',x>)]
///     Psi(theta; rho) = V(theta) + int U(theta, theta') rho(d theta')
///
/// and for `M` equally weighted particles the exact finite-`M` risk
/// `R_M = (1/2)[R# + (2/M) sum_j V(theta_j) + (1/M^2) sum_ij U(theta_i, theta_j)]`.
///
/// ## Kernels and their accuracy
/// - Gaussian inputs, relu / erf / linear: closed forms (arc-cosine kernel, the arcsine kernel
///   of erf, `<w, w'>`; a linear teacher through Stein's lemma). Exact to rounding, except that
///   for nearly parallel `w, w'` relu's angle is computed from a cosine, so `K` carries a
///   relative error of order `sqrt(machine epsilon) ~ 1e-8` there.
/// - Sphere inputs, relu / linear: the Gaussian closed forms divided by `d` (both activations
///   are positively homogeneous and `x = |g| (g/|g|)` with `E|g|^2 = d`), equally exact.
/// - Everything else (tanh, sigmoid, custom, erf on the sphere): a product Gauss rule on the
///   law of the projection of `x` onto span(w, w') (`ProjectedRule`): Gauss-Hermite for
///   Gaussian inputs, Gauss-Jacobi for the sphere, ``KernelOptions/quadratureNodes`` per axis
///   (default 48 Gaussian, 24 sphere). The gradient is the exact gradient of the approximate
///   kernel. Errors of `K` and its gradient, measured against 160 nodes (tests keep them):
///
///   | activation, inputs | `|w|, |w'|` | nodes | error |
///   |---|---|---|---|
///   | tanh, Gaussian | 0.5 / 1 / 2 / 3 | 48 | 5e-15 / 5e-8 / 2e-4 / 3e-3 |
///   | sigmoid, Gaussian | 1 / 2 / 3 | 48 | 6e-16 / 6e-9 / 1e-6 |
///   | tanh, sigmoid, erf on the sphere | <= 3 | 24 | < 1e-10 |
///
///   Gauss-Hermite struggles when `|w|` is large because `s(|w| g)` then turns like a step
///   within a fraction of the Gaussian's width (tanh has poles at distance `pi / (2|w|)` from
///   the real axis); raise the nodes for such runs, or check with
///   ``kernelErrorEstimate(particles:)``. A non-smooth custom activation converges only
///   algebraically. Cost: `nodes^2` activation calls per pair.
///
/// ## Storage
/// Particles are row-major `M x D`; with a trained second layer a row is `[a, w_1 ... w_d]`.
public struct PopulationRisk: Sendable {
    /// The network.
    public let model: NetworkModel
    /// The teacher.
    public let teacher: Teacher
    /// The kernel options in force.
    public let options: KernelOptions
    /// The nodes per axis of the quadrature rule (used only where ``isClosedForm`` is false).
    public let quadratureNodes: Int
    /// `R# = E[y^2]` (including the label-noise variance).
    public let teacherSecondMoment: Double
    /// Whether `V` and `U` come from closed forms (else from quadrature, see the type's notes).
    public let isClosedForm: Bool

    let interactionKernel: KernelChoice
    let teacherKernel: KernelChoice
    /// Teacher directions, row-major `K x d` (one row `b*` for a linear teacher).
    let teacherDirections: [Double]
    let teacherCoefficients: [Double]
    let teacherNorms: [NormInfo]

    /// - Throws: ``MeanFieldError`` when the teacher does not fit the model (naming
    ///   `teacher.*`) or `quadratureNodes` is outside `1 ... 256`.
    public init(model: NetworkModel, teacher: Teacher, options: KernelOptions = KernelOptions()) throws {
        try teacher.validate(inputDimension: model.inputDimension)
        let nodes = options.quadratureNodes ?? (model.inputs == .gaussian ? 48 : 24)
        try require((1 ... 256).contains(nodes), .quadratureNodes, "\(nodes)", "must be in 1 ... 256")
        self.quadratureNodes = nodes
        self.model = model
        self.teacher = teacher
        self.options = options
        let d = model.inputDimension
        let s = model.activation
        let rule = ProjectedRule(inputs: model.inputs, dimension: d, nodes: nodes)
        let sphereScale = model.inputs == .sphere ? 1 / Double(d) : 1
        func pair(_ student: Activation, _ partner: Activation) -> KernelChoice {
            KernelChoice.pair(student: student, partner: partner, inputs: model.inputs, dimension: d, rule: rule,
                              alwaysUseQuadrature: options.alwaysUseQuadrature)
        }
        interactionKernel = pair(s, s)

        let teacherIsClosedForm: Bool
        switch teacher {
        case .neurons(let directions, let coefficients, let noise, let own):
            let teacherActivation = own ?? s
            teacherKernel = pair(s, teacherActivation)
            let teacherSelf = pair(teacherActivation, teacherActivation)
            teacherDirections = directions.flatMap { $0 }
            teacherCoefficients = coefficients
            teacherNorms = directions.map { dir in NormInfo(squared: dir.reduce(0) { $0 + $1 * $1 }) }
            var r = 0.0
            for k in 0 ..< directions.count {
                for l in 0 ..< directions.count {
                    var dot = 0.0
                    for t in 0 ..< d { dot += directions[k][t] * directions[l][t] }
                    r += coefficients[k] * coefficients[l] * teacherSelf.value(teacherNorms[k], teacherNorms[l], dot)
                }
            }
            teacherSecondMoment = r + noise * noise
            teacherIsClosedForm = teacherSelf.isClosedForm
        case .linear(let b, let noise):
            teacherKernel = pair(s, .linear)
            teacherDirections = b
            teacherCoefficients = [1]
            let bb = b.reduce(0) { $0 + $1 * $1 }
            teacherNorms = [NormInfo(squared: bb)]
            teacherSecondMoment = sphereScale * bb + noise * noise
            teacherIsClosedForm = true
        }
        isClosedForm = interactionKernel.isClosedForm && teacherKernel.isClosedForm && teacherIsClosedForm
    }

    /// The particle dimension `D`.
    public var parameterDimension: Int { model.parameterDimension }

    /// One line saying how `V` and `U` are computed, for run summaries, e.g.
    /// `closed form (relu, gaussian inputs)` or
    /// `product Gauss-Hermite quadrature, 48 x 48 nodes (tanh, gaussian inputs)`.
    public var kernelDescription: String {
        let teacherActivation = teacher.activation(student: model.activation)
        let pairText = teacherActivation.description == model.activation.description
            ? "\(model.activation)" : "\(model.activation) student, \(teacherActivation) teacher"
        let what = "(\(pairText), \(model.inputs.rawValue) inputs)"
        if isClosedForm { return "closed form \(what)" }
        let rule = model.inputs == .gaussian ? "Gauss-Hermite" : "Gauss-Jacobi"
        return "product \(rule) quadrature, \(quadratureNodes) x \(quadratureNodes) nodes \(what)"
    }

    // MARK: - Single-particle pieces

    /// `T(w) = E[y s(<w, x>)]` and its gradient coefficients for one weight vector.
    func teacherCorrelation(_ w: UnsafePointer<Double>, _ info: NormInfo,
                            gradient: UnsafeMutablePointer<Double>?) -> Double {
        let d = model.inputDimension
        var total = 0.0
        if let gradient { for k in 0 ..< d { gradient[k] = 0 } }
        teacherDirections.withUnsafeBufferPointer { dirs in
            for t in 0 ..< teacherCoefficients.count {
                let c = teacherCoefficients[t]
                let dir = dirs.baseAddress! + t * d
                var dot = 0.0
                for k in 0 ..< d { dot += w[k] * dir[k] }
                if let gradient {
                    let kv = teacherKernel.evaluate(info, teacherNorms[t], dot)
                    total += c * kv.value
                    let ca = c * kv.alpha, cb = c * kv.beta
                    for k in 0 ..< d { gradient[k] += ca * w[k] + cb * dir[k] }
                } else {
                    total += c * teacherKernel.value(info, teacherNorms[t], dot)
                }
            }
        }
        return total
    }

    /// `V(theta) = -E[y sigma_*(x; theta)]` for one particle (length `D`).
    public func potential(_ theta: [Double]) -> Double {
        precondition(theta.count == parameterDimension)
        let o = model.weightOffset
        let a = o == 1 ? theta[0] : 1
        return theta.withUnsafeBufferPointer { p in
            let w = p.baseAddress! + o
            return -a * teacherCorrelation(w, NormInfo(squared: squaredNorm(w, model.inputDimension)), gradient: nil)
        }
    }

    /// `grad V(theta)` (length `D`).
    public func potentialGradient(_ theta: [Double]) -> [Double] {
        precondition(theta.count == parameterDimension)
        let o = model.weightOffset, d = model.inputDimension
        let a = o == 1 ? theta[0] : 1
        var g = [Double](repeating: 0, count: parameterDimension)
        theta.withUnsafeBufferPointer { p in
            g.withUnsafeMutableBufferPointer { gp in
                let w = p.baseAddress! + o
                let t = teacherCorrelation(w, NormInfo(squared: squaredNorm(w, d)), gradient: gp.baseAddress! + o)
                for k in 0 ..< d { gp[o + k] *= -a }
                if o == 1 { gp[0] = -t }
            }
        }
        return g
    }

    /// `U(theta, theta') = E[sigma_*(x; theta) sigma_*(x; theta')]`.
    public func interaction(_ theta: [Double], _ other: [Double]) -> Double {
        interactionAndGradient(theta, other).value
    }

    /// `U(theta, theta')` and its gradient in the first argument `theta` (length `D`).
    public func interactionAndGradient(_ theta: [Double], _ other: [Double]) -> (value: Double, gradient: [Double]) {
        precondition(theta.count == parameterDimension && other.count == parameterDimension)
        let o = model.weightOffset, d = model.inputDimension
        let a = o == 1 ? theta[0] : 1, b = o == 1 ? other[0] : 1
        var dot = 0.0, q1 = 0.0, q2 = 0.0
        for k in 0 ..< d {
            dot += theta[o + k] * other[o + k]
            q1 += theta[o + k] * theta[o + k]
            q2 += other[o + k] * other[o + k]
        }
        let kv = interactionKernel.evaluate(NormInfo(squared: q1), NormInfo(squared: q2), dot)
        var g = [Double](repeating: 0, count: parameterDimension)
        for k in 0 ..< d { g[o + k] = a * b * (kv.alpha * theta[o + k] + kv.beta * other[o + k]) }
        if o == 1 { g[0] = b * kv.value }
        return (a * b * kv.value, g)
    }

    // MARK: - Whole measures

    /// The exact finite-`M` risk `R_M` of equally weighted particles (row-major `M x D`).
    /// Cost `O(M^2 d)` (closed forms) or `O(M^2 n^2)` (quadrature), split over the cores.
    ///
    /// - Throws: ``MeanFieldError/lengthMismatch(key:expected:actual:)`` (key `particles`)
    ///   when the array is empty or not a multiple of `D`.
    public func risk(particles: [Double]) throws -> Double {
        let m = try particleCount(particles)
        let w = [Double](repeating: 1 / Double(m), count: m)
        return risk(points: particles, weights: w)
    }

    /// `R(rho)` for `rho = sum_i weights[i] delta_{points[i]}` (weights need not sum to one: the
    /// formula `R#/2 + sum w V + (1/2) sum sum w w U` is applied as it stands).
    public func risk(points: [Double], weights: [Double]) -> Double {
        precondition(points.count == weights.count * parameterDimension)
        var psi = [Double](repeating: 0, count: weights.count)
        var v = [Double](repeating: 0, count: weights.count)
        points.withUnsafeBufferPointer { p in
            weights.withUnsafeBufferPointer { w in
                psi.withUnsafeMutableBufferPointer { ps in
                    v.withUnsafeMutableBufferPointer { vs in
                        evaluate(points: p.baseAddress!, weights: w.baseAddress!, count: w.count,
                                 psi: ps.baseAddress!, potential: vs.baseAddress!, gradient: nil)
                    }
                }
            }
        }
        return riskFrom(psi: psi, potential: v, weights: weights)
    }

    /// `R = R#/2 + sum_i w_i V_i + (1/2) sum_i w_i (Psi_i - V_i) = R#/2 + (1/2) sum_i w_i (V_i + Psi_i)`.
    func riskFrom(psi: [Double], potential: [Double], weights: [Double]) -> Double {
        var s = 0.0
        for i in 0 ..< weights.count { s += weights[i] * (potential[i] + psi[i]) }
        return 0.5 * (teacherSecondMoment + s)
    }

    /// `Psi(theta_i; rho)` and `grad_theta Psi(theta_i; rho)` at every support point of
    /// `rho = sum_j weights[j] delta_{points[j]}`; `weights = nil` means `1/M` each.
    ///
    /// With uniform weights, `grad Psi(theta_j)` is `M` times the gradient of `R_M` in `theta_j`.
    public func firstVariation(points: [Double], weights: [Double]? = nil) throws -> (potential: [Double], gradient: [Double]) {
        let m = try particleCount(points)
        let w = weights ?? [Double](repeating: 1 / Double(m), count: m)
        if w.count != m { throw MeanFieldError.lengthMismatch(parameter: .weights, expected: m, actual: w.count) }
        var psi = [Double](repeating: 0, count: m)
        var grad = [Double](repeating: 0, count: m * parameterDimension)
        points.withUnsafeBufferPointer { p in
            w.withUnsafeBufferPointer { wp in
                psi.withUnsafeMutableBufferPointer { ps in
                    grad.withUnsafeMutableBufferPointer { g in
                        evaluate(points: p.baseAddress!, weights: wp.baseAddress!, count: m,
                                 psi: ps.baseAddress!, potential: nil, gradient: g.baseAddress!)
                    }
                }
            }
        }
        return (psi, grad)
    }

    /// An a-posteriori estimate of the quadrature error for measures like `particles`: the
    /// largest difference in `Psi` and `grad Psi` between this rule and one with twice the
    /// nodes, over the measure made of (up to) the first 32 particles. Zero for closed forms.
    ///
    /// - Throws: ``MeanFieldError`` (key `particles`) for a malformed particle array.
    public func kernelErrorEstimate(particles: [Double]) throws -> Double {
        let m = try particleCount(particles)
        if isClosedForm { return 0 }
        let n = min(m, 32), D = parameterDimension
        let sample = Array(particles[0 ..< n * D])
        var finer = options
        finer.quadratureNodes = min(256, 2 * quadratureNodes)
        let reference = try PopulationRisk(model: model, teacher: teacher, options: finer)
        let a = try firstVariation(points: sample)
        let b = try reference.firstVariation(points: sample)
        var worst = 0.0
        for i in 0 ..< n { worst = max(worst, abs(a.potential[i] - b.potential[i])) }
        for i in 0 ..< n * D { worst = max(worst, abs(a.gradient[i] - b.gradient[i])) }
        return worst
    }

    func particleCount(_ particles: [Double]) throws -> Int {
        let D = parameterDimension
        if particles.isEmpty || particles.count % D != 0 {
            throw MeanFieldError.lengthMismatch(parameter: .particles, expected: max(D, (particles.count / D + 1) * D), actual: particles.count)
        }
        for (k, v) in particles.enumerated() where !v.isFinite {
            throw MeanFieldError.invalidSetting(parameter: .particles, value: "\(v) (particle \(k / D), coordinate \(k % D))", requirement: "must be finite")
        }
        return particles.count / D
    }

    // MARK: - The O(M^2) engine

    /// Fills `psi[i] = Psi(theta_i; rho)`, `potential[i] = V(theta_i)` and
    /// `gradient[i*D ..< (i+1)*D] = grad Psi(theta_i; rho)` (each optional).
    ///
    /// Rows are split over the cores in chunks; each row's sums run over `j` in a fixed order,
    /// so the results do not depend on the number of cores. Per row: the Gram row
    /// `<w_i, w_j>` by axpys over the transposed weights (four rows at a time, so each column
    /// block is read once for four rows), the kernel row (four lanes at a time for the closed
    /// forms), and the `beta`-weighted sum of the `w_j` as `d` dot products with the rows of
    /// the transposed weights.
    func evaluate(points: UnsafePointer<Double>, weights: UnsafePointer<Double>, count m: Int,
                  psi: UnsafeMutablePointer<Double>?, potential: UnsafeMutablePointer<Double>?,
                  gradient: UnsafeMutablePointer<Double>?, parallel: Bool = true) {
        switch interactionKernel {
        case .relu(let k): evaluate(kernel: k, points, weights, m, psi, potential, gradient, parallel)
        case .erf(let k): evaluate(kernel: k, points, weights, m, psi, potential, gradient, parallel)
        case .linear(let k): evaluate(kernel: k, points, weights, m, psi, potential, gradient, parallel)
        case .linearTeacher(let k): evaluate(kernel: k, points, weights, m, psi, potential, gradient, parallel)
        case .hermiteTwo(let k): evaluate(kernel: k, points, weights, m, psi, potential, gradient, parallel)
        case .quadrature(let k): evaluate(kernel: k, points, weights, m, psi, potential, gradient, parallel)
        }
    }

    private func evaluate<K: PairKernel>(kernel: K, _ points: UnsafePointer<Double>, _ weights: UnsafePointer<Double>,
                                         _ m: Int, _ psiOut: UnsafeMutablePointer<Double>?,
                                         _ potentialOut: UnsafeMutablePointer<Double>?,
                                         _ gradientOut: UnsafeMutablePointer<Double>?, _ parallel: Bool) {
        let D = model.parameterDimension, d = model.inputDimension, o = model.weightOffset
        let trained = o == 1
        // Column-major copy of the weights (d x M) for the Gram rows, row-major (M x d) for the
        // gradient sums, the per-particle coefficients c_j = weight_j * a_j and the norms.
        var wt = [Double](repeating: 0, count: d * m)
        var c = [Double](repeating: 0, count: m)
        var infos = [NormInfo](repeating: NormInfo(squared: 0), count: m)
        var squares = [Double](repeating: 0, count: m)
        var norms = [Double](repeating: 0, count: m)
        var inverses = [Double](repeating: 0, count: m)
        for j in 0 ..< m {
            let row = points + j * D
            var q = 0.0
            for k in 0 ..< d {
                let v = row[o + k]
                wt[k * m + j] = v
                q += v * v
            }
            infos[j] = NormInfo(squared: q)
            squares[j] = q
            norms[j] = infos[j].norm
            inverses[j] = infos[j].inverse
            c[j] = weights[j] * (trained ? row[0] : 1)
        }
        let wantGradient = gradientOut != nil
        let rowGroup = 4
        let groups = (m + rowGroup - 1) / rowGroup
        // Chunk over groups of four rows. A pair costs ~d flops plus a kernel call, so a chunk
        // of 8 groups (32 rows x M pairs) is far above the hand-off cost.
        let minimumChunk = parallel ? max(1, 2048 / max(1, m)) : groups
        wt.withUnsafeBufferPointer { wtp in
        c.withUnsafeBufferPointer { cp in
        infos.withUnsafeBufferPointer { ip in
        squares.withUnsafeBufferPointer { sqp in
        norms.withUnsafeBufferPointer { np in
        inverses.withUnsafeBufferPointer { invp in
            let wtb = wtp.baseAddress!, cb = cp.baseAddress!, ib = ip.baseAddress!
            let columns = NormColumns(squared: sqp.baseAddress!, norm: np.baseAddress!, inverse: invp.baseAddress!)
            nonisolated(unsafe) let psiOut = psiOut, potentialOut = potentialOut, gradientOut = gradientOut
            Parallel.forEachChunk(count: groups, minimumChunk: minimumChunk) { range in
                let gram = UnsafeMutablePointer<Double>.allocate(capacity: rowGroup * m)
                let values = UnsafeMutablePointer<Double>.allocate(capacity: m)
                let alphas = UnsafeMutablePointer<Double>.allocate(capacity: m)
                let betas = UnsafeMutablePointer<Double>.allocate(capacity: m)
                let sumW = UnsafeMutablePointer<Double>.allocate(capacity: d)
                let teacherGrad = UnsafeMutablePointer<Double>.allocate(capacity: d)
                defer {
                    gram.deallocate(); values.deallocate(); alphas.deallocate(); betas.deallocate()
                    sumW.deallocate(); teacherGrad.deallocate()
                }
                for group in range {
                    let i0 = group * rowGroup
                    let rows = min(rowGroup, m - i0)
                    gramRows(wtb, m: m, d: d, first: i0, rows: rows, into: gram)
                    for r in 0 ..< rows {
                        let i = i0 + r
                        let gi = gram + r * m
                        let infoI = ib[i]
                        kernel.evaluateRow(infoI, dots: gi, norms: columns, coefficients: cb, count: m, values: values,
                                           alphas: wantGradient ? alphas : nil, betas: wantGradient ? betas : nil)
                        let sumK = fixedOrderSum(values, m)
                        let sumAlpha = wantGradient ? fixedOrderSum(alphas, m) : 0
                        let row = points + i * D
                        let w = row + o
                        let ai = trained ? row[0] : 1
                        let t = teacherCorrelation(w, infoI, gradient: wantGradient ? teacherGrad : nil)
                        let v = -ai * t
                        potentialOut?[i] = v
                        psiOut?[i] = v + ai * sumK
                        if let gradientOut {
                            for k in 0 ..< d { sumW[k] = dot(betas, wtb + k * m, m) }
                            let g = gradientOut + i * D
                            if trained { g[0] = -t + sumK }
                            for k in 0 ..< d {
                                g[o + k] = ai * (sumAlpha * w[k] + sumW[k] - teacherGrad[k])
                            }
                        }
                    }
                }
            }
        }}}}}}
    }
}

/// `sum_j x[j]` with four interleaved partial sums (throughput- rather than latency-bound), in
/// an order fixed by `n` alone.
@inline(__always)
func fixedOrderSum(_ x: UnsafePointer<Double>, _ n: Int) -> Double {
    var s0 = 0.0, s1 = 0.0, s2 = 0.0, s3 = 0.0
    var j = 0
    while j + 4 <= n {
        s0 += x[j]; s1 += x[j + 1]; s2 += x[j + 2]; s3 += x[j + 3]
        j += 4
    }
    while j < n { s0 += x[j]; j += 1 }
    return (s0 + s1) + (s2 + s3)
}

/// Gram rows `<w_i, w_j>` for `rows` consecutive rows from `first`, all `j`, from the
/// column-major weights `wt` (`d x m`): axpys over `j`, so the inner loops vectorise and each
/// column of `wt` is read once for all the rows.
@inline(__always)
func gramRows(_ wt: UnsafePointer<Double>, m: Int, d: Int, first: Int, rows: Int, into out: UnsafeMutablePointer<Double>) {
    if rows == 4 {
        // Four rows x four columns per tile, the sums over k held in registers.
        let o0 = out, o1 = out + m, o2 = out + 2 * m, o3 = out + 3 * m
        var j = 0
        while j + 4 <= m {
            var a0 = D4(), a1 = D4(), a2 = D4(), a3 = D4()
            for k in 0 ..< d {
                let col = wt + k &* m
                let v = load4(col + j)
                a0 = a0 + col[first] * v
                a1 = a1 + col[first + 1] * v
                a2 = a2 + col[first + 2] * v
                a3 = a3 + col[first + 3] * v
            }
            store4(a0, o0 + j); store4(a1, o1 + j); store4(a2, o2 + j); store4(a3, o3 + j)
            j += 4
        }
        while j < m {
            var s0 = 0.0, s1 = 0.0, s2 = 0.0, s3 = 0.0
            for k in 0 ..< d {
                let col = wt + k &* m
                let v = col[j]
                s0 = s0 + col[first] * v
                s1 = s1 + col[first + 1] * v
                s2 = s2 + col[first + 2] * v
                s3 = s3 + col[first + 3] * v
            }
            o0[j] = s0; o1[j] = s1; o2[j] = s2; o3[j] = s3
            j += 1
        }
    } else {
        for r in 0 ..< rows {
            let o = out + r * m
            for j in 0 ..< m {
                var s = 0.0
                for k in 0 ..< d {
                    let col = wt + k &* m
                    s = s + col[first + r] * col[j]
                }
                o[j] = s
            }
        }
    }
}

@inline(__always)
func squaredNorm(_ p: UnsafePointer<Double>, _ n: Int) -> Double {
    var s = 0.0
    for k in 0 ..< n { s += p[k] * p[k] }
    return s
}
