#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// `|w|^2`, `|w|` and `1/|w|` (0 when `w = 0`) of one weight vector, computed once per
/// particle so that pair kernels need no square roots of their own.
struct NormInfo: Sendable {
    var squared: Double
    var norm: Double
    var inverse: Double

    @inline(__always)
    init(squared q: Double) {
        squared = q
        norm = q.squareRoot()
        inverse = norm > 0 ? 1 / norm : 0
    }

    @inline(__always)
    init(squared: Double, norm: Double, inverse: Double) {
        self.squared = squared
        self.norm = norm
        self.inverse = inverse
    }
}

/// A kernel value `K(w, w') = E[s(<w, x>) r(<w', x>)]` with its gradient in the first
/// argument written as `grad_w K = alpha * w + beta * w'` (every kernel here has that form: by
/// rotation invariance of the input law the gradient lies in span(w, w')).
struct KernelValue: Sendable {
    var value: Double
    var alpha: Double
    var beta: Double
}

/// A kernel of a pair of weight vectors that depends on them only through `|w|`, `|w'|` and
/// `<w, w'>` (true for Gaussian and for spherical inputs).
protocol PairKernel: Sendable {
    func evaluate(_ i: NormInfo, _ j: NormInfo, _ dot: Double) -> KernelValue
    func value(_ i: NormInfo, _ j: NormInfo, _ dot: Double) -> Double
    /// Four pairs `(w_i, w_j)` at once, the `w_j` given by their norm columns: `(K, alpha, beta)`
    /// per lane (lane by lane through ``evaluate(_:_:_:)`` unless a kernel packs it).
    func evaluate4(_ i: NormInfo, dot: SIMD4<Double>, squared: SIMD4<Double>, norm: SIMD4<Double>,
                   inverse: SIMD4<Double>) -> (value: SIMD4<Double>, alpha: SIMD4<Double>, beta: SIMD4<Double>)
    /// For one row `i`: `values[j] = c_j K(w_i, w_j)`, `alphas[j] = c_j alpha_ij`,
    /// `betas[j] = c_j beta_ij` (`alphas`, `betas` nil: values only).
    func evaluateRow(_ i: NormInfo, dots: UnsafePointer<Double>, norms: NormColumns, coefficients c: UnsafePointer<Double>,
                     count m: Int, values kOut: UnsafeMutablePointer<Double>,
                     alphas aOut: UnsafeMutablePointer<Double>?, betas bOut: UnsafeMutablePointer<Double>?)
}

/// A kernel symmetric in its two arguments, `K(w, w') = K(w', w)`, that also returns the
/// gradient in the second argument, `grad_w' K = alphaReverse w' + beta w` (the `beta` of a
/// symmetric kernel is symmetric), so that a sum over pairs can visit each unordered pair once.
protocol SymmetricPairKernel: PairKernel {
    func evaluate4Both(_ i: NormInfo, dot: SIMD4<Double>, squared: SIMD4<Double>, norm: SIMD4<Double>, inverse: SIMD4<Double>)
        -> (value: SIMD4<Double>, alpha: SIMD4<Double>, alphaReverse: SIMD4<Double>, beta: SIMD4<Double>)
}

extension ReLUKernel: SymmetricPairKernel {}
extension ErfKernel: SymmetricPairKernel {}
extension LinearKernel: SymmetricPairKernel {
    @inline(__always)
    func evaluate4Both(_ i: NormInfo, dot: SIMD4<Double>, squared: SIMD4<Double>, norm: SIMD4<Double>, inverse: SIMD4<Double>)
        -> (value: SIMD4<Double>, alpha: SIMD4<Double>, alphaReverse: SIMD4<Double>, beta: SIMD4<Double>) {
        (scale * dot, SIMD4(), SIMD4(), SIMD4(repeating: scale))
    }
}

/// Per-particle norms in struct-of-arrays form, so that row loops load them contiguously.
struct NormColumns {
    let squared: UnsafePointer<Double>
    let norm: UnsafePointer<Double>
    let inverse: UnsafePointer<Double>

    @inline(__always)
    subscript(j: Int) -> NormInfo { NormInfo(squared: squared[j], norm: norm[j], inverse: inverse[j]) }
}

extension PairKernel {
    @inline(__always)
    func evaluate4(_ i: NormInfo, dot: SIMD4<Double>, squared: SIMD4<Double>, norm: SIMD4<Double>,
                   inverse: SIMD4<Double>) -> (value: SIMD4<Double>, alpha: SIMD4<Double>, beta: SIMD4<Double>) {
        var v = SIMD4<Double>(), a = SIMD4<Double>(), b = SIMD4<Double>()
        for lane in 0 ..< 4 {
            let kv = evaluate(i, NormInfo(squared: squared[lane], norm: norm[lane], inverse: inverse[lane]), dot[lane])
            v[lane] = kv.value
            a[lane] = kv.alpha
            b[lane] = kv.beta
        }
        return (v, a, b)
    }

    /// The scalar row loop (kernels with a SIMD version override it).
    @inline(__always)
    func evaluateRow(_ i: NormInfo, dots: UnsafePointer<Double>, norms: NormColumns, coefficients c: UnsafePointer<Double>,
                     count m: Int, values kOut: UnsafeMutablePointer<Double>,
                     alphas aOut: UnsafeMutablePointer<Double>?, betas bOut: UnsafeMutablePointer<Double>?) {
        if let aOut, let bOut {
            for j in 0 ..< m {
                let kv = evaluate(i, norms[j], dots[j])
                let cj = c[j]
                kOut[j] = cj * kv.value
                aOut[j] = cj * kv.alpha
                bOut[j] = cj * kv.beta
            }
        } else {
            for j in 0 ..< m { kOut[j] = c[j] * value(i, norms[j], dots[j]) }
        }
    }
}

private let inverseTwoPi = 1 / (2 * Double.pi)

/// The arc-cosine kernel of relu for Gaussian inputs (Docs/Theory.md 3.3), times `scale`
/// (`1` for Gaussian inputs, `1/d` on the sphere by positive homogeneity).
struct ReLUKernel: PairKernel {
    var scale: Double

    @inline(__always)
    func evaluate(_ i: NormInfo, _ j: NormInfo, _ dot: Double) -> KernelValue {
        let nn = i.norm * j.norm
        // At w = 0 (or w' = 0) the kernel is 0; its gradient is taken with relu'(0) = 0, the
        // same convention as the particle updates.
        // (Written without early exits or libm calls so that loops over j vectorise.)
        var c = dot * i.inverse * j.inverse
        c = c > 1 ? 1 : (c < -1 ? -1 : c)
        let (phi, sinPhi) = arccosAndSine(c)
        let piMinusPhi = Double.pi - phi
        let s = nn == 0 ? 0 : scale * inverseTwoPi
        return KernelValue(value: s * (nn * sinPhi + piMinusPhi * dot),
                           alpha: s * j.norm * sinPhi * i.inverse,
                           beta: s * piMinusPhi)
    }

    @inline(__always)
    func value(_ i: NormInfo, _ j: NormInfo, _ dot: Double) -> Double { evaluate(i, j, dot).value }

    @inline(__always)
    func evaluateRow(_ i: NormInfo, dots: UnsafePointer<Double>, norms: NormColumns, coefficients c: UnsafePointer<Double>,
                     count m: Int, values kOut: UnsafeMutablePointer<Double>,
                     alphas aOut: UnsafeMutablePointer<Double>?, betas bOut: UnsafeMutablePointer<Double>?) {
        evaluateRowSIMD(i, dots: dots, norms: norms, coefficients: c, count: m, values: kOut, alphas: aOut, betas: bOut)
    }
}

/// `E[erf(<w,x>) erf(<w',x>)] = (2/pi) asin(2<w,w'> / sqrt((1 + 2|w|^2)(1 + 2|w'|^2)))` for
/// Gaussian inputs.
struct ErfKernel: PairKernel {
    @inline(__always)
    func evaluate(_ i: NormInfo, _ j: NormInfo, _ dot: Double) -> KernelValue {
        let pi1 = 1 + 2 * i.squared
        let rs = 1 / (pi1 * (1 + 2 * j.squared)).squareRoot()
        let z = 2 * dot * rs
        // |z| < 1 strictly because (1 + 2|w|^2)(1 + 2|w'|^2) > 4 |w|^2 |w'|^2 >= 4 <w,w'>^2.
        let oneMinus = 1 - z * z
        let g = (2 / Double.pi) / (oneMinus > 1e-300 ? oneMinus : 1e-300).squareRoot()
        return KernelValue(value: (2 / Double.pi) * arcsin(z), alpha: -g * z * 2 / pi1, beta: g * 2 * rs)
    }

    @inline(__always)
    func value(_ i: NormInfo, _ j: NormInfo, _ dot: Double) -> Double { evaluate(i, j, dot).value }

    @inline(__always)
    func evaluateRow(_ i: NormInfo, dots: UnsafePointer<Double>, norms: NormColumns, coefficients c: UnsafePointer<Double>,
                     count m: Int, values kOut: UnsafeMutablePointer<Double>,
                     alphas aOut: UnsafeMutablePointer<Double>?, betas bOut: UnsafeMutablePointer<Double>?) {
        evaluateRowSIMD(i, dots: dots, norms: norms, coefficients: c, count: m, values: kOut, alphas: aOut, betas: bOut)
    }
}

/// `E[<w,x><w',x>] = scale * <w, w'>` (`scale = 1` Gaussian, `1/d` sphere).
struct LinearKernel: PairKernel {
    var scale: Double
    @inline(__always)
    func evaluate(_ i: NormInfo, _ j: NormInfo, _ dot: Double) -> KernelValue {
        KernelValue(value: scale * dot, alpha: 0, beta: scale)
    }
    @inline(__always)
    func value(_ i: NormInfo, _ j: NormInfo, _ dot: Double) -> Double { scale * dot }
    @inline(__always)
    func evaluate4(_ i: NormInfo, dot: SIMD4<Double>, squared: SIMD4<Double>, norm: SIMD4<Double>,
                   inverse: SIMD4<Double>) -> (value: SIMD4<Double>, alpha: SIMD4<Double>, beta: SIMD4<Double>) {
        (scale * dot, SIMD4(), SIMD4(repeating: scale))
    }
}

/// The cross kernel `E[s(<w,x>) <b,x>]` of a student activation `s` against a linear teacher,
/// Gaussian inputs: by Stein's lemma it is `<w, b> E[s'(|w| g)]`. Closed form for relu
/// (`E[s'] = 1/2`, also on the sphere with `scale = 1/d`) and erf
/// (`E[s'] = (2/sqrt(pi)) / sqrt(1 + 2|w|^2)`).
struct LinearTeacherKernel: PairKernel {
    enum Student: Sendable { case relu, erf }
    var student: Student
    var scale: Double

    @inline(__always)
    func evaluate(_ i: NormInfo, _ j: NormInfo, _ dot: Double) -> KernelValue {
        switch student {
        case .relu:
            return KernelValue(value: scale * 0.5 * dot, alpha: 0, beta: scale * 0.5)
        case .erf:
            let p = 1 + 2 * i.squared
            let h = 1.1283791670955126 / p.squareRoot()
            // d/dw of h(|w|): -(4/sqrt(pi)) (1 + 2|w|^2)^(-3/2) w.
            return KernelValue(value: dot * h, alpha: -dot * 2 * h / p, beta: h)
        }
    }
    @inline(__always)
    func value(_ i: NormInfo, _ j: NormInfo, _ dot: Double) -> Double { evaluate(i, j, dot).value }
}

/// `E[s(<w,x>) He_2(<w',x>)]`, `He_2(u) = u^2 - 1`, for Gaussian inputs, in closed form.
///
/// With `X = <w,x>`, `<w',x> = b X + Z` (`b = <w,w'>/|w|^2`, `Z` independent of `X`, of
/// variance `|w'|^2 - b^2 |w|^2`): `K = b^2 E[s(X) X^2] + (|w'|^2 - b^2 |w|^2 - 1) E[s(X)]`, so
/// only the even part of `s` matters:
/// - relu: `E[relu(X)] = |w| / sqrt(2 pi)`, `E[relu(X) X^2] = 2 |w|^3 / sqrt(2 pi)`, so
///   `K = (<w,w'>^2 / |w| + (|w'|^2 - 1) |w|) / sqrt(2 pi)`;
/// - odd activations (erf, tanh, linear): `K = 0` (a target of information exponent 2 is
///   invisible to them);
/// - sigmoid `= 1/2 + tanh(u/2)/2`: `K = (|w'|^2 - 1) / 2`, constant in `w`;
/// - he2: `E[He_2(X) He_2(Y)] = (|w|^2 - 1)(|w'|^2 - 1) + 2 <w,w'>^2`.
struct HermiteTwoPartnerKernel: PairKernel {
    enum Student: Sendable { case relu, odd, sigmoid, he2 }
    var student: Student

    /// The student activations with a closed form against `He_2` (others use quadrature).
    static func student(_ s: Activation) -> Student? {
        switch s {
        case .relu: return .relu
        case .erf, .tanh, .linear: return .odd
        case .sigmoid: return .sigmoid
        case .he2: return .he2
        case .custom: return nil
        }
    }

    @inline(__always)
    func evaluate(_ i: NormInfo, _ j: NormInfo, _ dot: Double) -> KernelValue {
        switch student {
        case .relu:
            // At w = 0 the kernel is 0 (|<w,w'>|^2/|w| <= |w| |w'|^2) and the gradient is taken
            // as 0, relu's convention at 0.
            let c = 1 / (2 * Double.pi).squareRoot()
            let inv = i.inverse
            let q1 = j.squared - 1
            return KernelValue(value: c * (dot * dot * inv + q1 * i.norm),
                               alpha: c * (q1 * inv - dot * dot * inv * inv * inv),
                               beta: c * 2 * dot * inv)
        case .odd:
            return KernelValue(value: 0, alpha: 0, beta: 0)
        case .sigmoid:
            return KernelValue(value: 0.5 * (j.squared - 1), alpha: 0, beta: 0)
        case .he2:
            return KernelValue(value: (i.squared - 1) * (j.squared - 1) + 2 * dot * dot,
                               alpha: 2 * (j.squared - 1), beta: 4 * dot)
        }
    }

    @inline(__always)
    func value(_ i: NormInfo, _ j: NormInfo, _ dot: Double) -> Double { evaluate(i, j, dot).value }
}

/// `E[s(<w,x>) r(<w',x>)]` by a product Gauss rule on the law of the projection of `x` onto
/// span(w, w') (``ProjectedRule``): `n^2` evaluations of `r` and `n` of `s` per pair.
///
/// With `e1 = w/|w|` and `w' = b1 e1 + b2 e2` (`b1 = <w,w'>/|w|`, `b2 >= 0`) the rule gives
/// `K_n(n1, b1, b2) = sum W_pq s(n1 t_p) r(b1 t_p + b2 tau_pq)`, a smooth function of
/// `(n1, b1, b2)` and so of `w`. The gradient returned is the exact gradient of this
/// approximation in `w` (chain rule through `n1 = |w|`, `b1`, `b2`), not a separate
/// quadrature of `E[s' r x]`, so its error is of the same order as the value's. (The rule's
/// frame follows the first argument, so `K_n(w, w')` and `K_n(w', w)` differ by the quadrature
/// error; `grad Psi` matches finite differences of the recorded `R_M` to that error.)
struct QuadratureKernel: PairKernel {
    var student: Activation
    var partner: Activation
    var rule: ProjectedRule

    func evaluate(_ i: NormInfo, _ j: NormInfo, _ dot: Double) -> KernelValue {
        student.accept(StudentVisitor(kernel: self, i: i, j: j, dot: dot, gradient: true))
    }

    func value(_ i: NormInfo, _ j: NormInfo, _ dot: Double) -> Double {
        student.accept(StudentVisitor(kernel: self, i: i, j: j, dot: dot, gradient: false)).value
    }

    private struct StudentVisitor: ScalarFunctionVisitor {
        let kernel: QuadratureKernel
        let i: NormInfo, j: NormInfo, dot: Double, gradient: Bool
        func visit<S: ScalarFunction>(_ s: S) -> KernelValue {
            kernel.partner.accept(PartnerVisitor(s: s, kernel: kernel, i: i, j: j, dot: dot, gradient: gradient))
        }
    }

    private struct PartnerVisitor<S: ScalarFunction>: ScalarFunctionVisitor {
        let s: S
        let kernel: QuadratureKernel
        let i: NormInfo, j: NormInfo, dot: Double, gradient: Bool
        func visit<R: ScalarFunction>(_ r: R) -> KernelValue {
            kernel.integrate(s, r, i, j, dot, gradient)
        }
    }

    /// Sums `K`, `A = dK/dn1`, `P = dK/db1`, `Q = dK/db2` over the rule.
    @inline(__always)
    private func sums<S: ScalarFunction, R: ScalarFunction>(_ s: S, _ r: R, _ n1: Double, _ b1: Double, _ b2: Double,
                                                            _ gradient: Bool) -> (k: Double, a: Double, p: Double, q: Double) {
        var k = 0.0, a = 0.0, p = 0.0, q = 0.0
        rule.t1.withUnsafeBufferPointer { t1 in
        rule.w1.withUnsafeBufferPointer { w1 in
        rule.scale.withUnsafeBufferPointer { sc in
        rule.v.withUnsafeBufferPointer { v in
        rule.wv.withUnsafeBufferPointer { wv in
            let vp = v.baseAddress!, wvp = wv.baseAddress!
            let nv = v.count
            for m in 0 ..< t1.count {
                let t = t1[m]
                let base = b1 * t
                let step = b2 * sc[m]
                var kr = 0.0, kd = 0.0, kq = 0.0
                if gradient {
                    // Four nodes at a time (packed activations), then the tail.
                    var kr4 = D4(), kd4 = D4(), kq4 = D4()
                    var n = 0
                    while n + 4 <= nv {
                        let vv = load4(vp + n), ww = load4(wvp + n)
                        let (rv, rd) = r.valueAndDerivative4(base + step * vv)
                        kr4 = kr4 + ww * rv
                        let wd = ww * rd
                        kd4 = kd4 + wd
                        kq4 = kq4 + wd * vv
                        n += 4
                    }
                    kr = (kr4[0] + kr4[1]) + (kr4[2] + kr4[3])
                    kd = (kd4[0] + kd4[1]) + (kd4[2] + kd4[3])
                    kq = (kq4[0] + kq4[1]) + (kq4[2] + kq4[3])
                    while n < nv {
                        let (rv, rd) = r.valueAndDerivative(base + step * v[n])
                        kr += wv[n] * rv
                        let wd = wv[n] * rd
                        kd += wd
                        kq += wd * v[n]
                        n += 1
                    }
                    let (sv, sd) = s.valueAndDerivative(n1 * t)
                    k += w1[m] * sv * kr
                    a += w1[m] * sd * t * kr
                    p += w1[m] * sv * t * kd
                    q += w1[m] * sv * sc[m] * kq
                } else {
                    var kr4 = D4()
                    var n = 0
                    while n + 4 <= nv {
                        kr4 = kr4 + load4(wvp + n) * r.valueAndDerivative4(base + step * load4(vp + n)).0
                        n += 4
                    }
                    kr = (kr4[0] + kr4[1]) + (kr4[2] + kr4[3])
                    while n < nv { kr += wv[n] * r.value(base + step * v[n]); n += 1 }
                    k += w1[m] * s.value(n1 * t) * kr
                }
            }
        }}}}}
        return (k, a, p, q)
    }

    @inline(__always)
    func integrate<S: ScalarFunction, R: ScalarFunction>(_ s: S, _ r: R, _ i: NormInfo, _ j: NormInfo,
                                                         _ dot: Double, _ gradient: Bool) -> KernelValue {
        let n1 = i.norm
        if n1 == 0 {
            // K = s(0) E[r(|w'| t)]; grad_w K = s'(0) E[r(<w', x>) x] = s'(0) E[t r(|w'| t)] w'/|w'|.
            var k = 0.0, m1 = 0.0
            for m in 0 ..< rule.t1.count {
                let rv = rule.w1[m] * r.value(j.norm * rule.t1[m])
                k += rv
                m1 += rv * rule.t1[m]
            }
            return KernelValue(value: s.value(0) * k, alpha: 0, beta: gradient ? s.derivative(0) * m1 * j.inverse : 0)
        }
        let b1 = dot * i.inverse
        let b2 = max(0, j.squared - b1 * b1).squareRoot()
        let (k, a, p, q) = sums(s, r, n1, b1, b2, gradient)
        if !gradient { return KernelValue(value: k, alpha: 0, beta: 0) }
        // Q is odd in b2 (the rule is symmetric), so Q/b2 is smooth and even in b2; below a
        // threshold it is evaluated at the threshold instead (error O(threshold^2)).
        let threshold = 1e-6 * j.norm
        var qOverB2 = 0.0
        if j.squared > 0 {
            if b2 >= threshold {
                qOverB2 = q / b2
            } else {
                qOverB2 = sums(s, r, n1, b1, threshold, true).q / threshold
            }
        }
        // grad n1 = w/n1; grad b1 = w'/n1 - b1 w/n1^2; grad b2 = -(b1/b2) grad b1.
        let c = p - qOverB2 * b1
        let inv = i.inverse
        return KernelValue(value: k, alpha: a * inv - c * b1 * inv * inv, beta: c * inv)
    }
}

/// The kernels a ``PopulationRisk`` uses, as one enum so that the `O(M^2)` loops switch once and
/// then run specialised code.
enum KernelChoice: Sendable {
    case relu(ReLUKernel)
    case erf(ErfKernel)
    case linear(LinearKernel)
    case linearTeacher(LinearTeacherKernel)
    case hermiteTwo(HermiteTwoPartnerKernel)
    case quadrature(QuadratureKernel)

    /// The kernel `E[s(<w,x>) r(<w',x>)]` of a student activation `s` against a partner
    /// activation `r` (the student itself, or a teacher's): a closed form where one exists
    /// (Gaussian inputs: relu, erf, linear against themselves; relu, erf, linear against a linear
    /// partner; anything but a custom activation against `he2`; sphere inputs: relu and linear
    /// against themselves or a linear partner), else the product rule `rule`.
    static func pair(student s: Activation, partner r: Activation, inputs: InputDistribution, dimension d: Int,
                     rule: ProjectedRule, alwaysUseQuadrature: Bool) -> KernelChoice {
        let quadrature = KernelChoice.quadrature(QuadratureKernel(student: s, partner: r, rule: rule))
        if alwaysUseQuadrature { return quadrature }
        let sphereScale = inputs == .sphere ? 1 / Double(d) : 1
        switch (s, r, inputs) {
        case (.relu, .relu, _): return .relu(ReLUKernel(scale: sphereScale))
        case (.linear, .linear, _): return .linear(LinearKernel(scale: sphereScale))
        case (.erf, .erf, .gaussian): return .erf(ErfKernel())
        case (.relu, .linear, _): return .linearTeacher(LinearTeacherKernel(student: .relu, scale: sphereScale))
        case (.erf, .linear, .gaussian): return .linearTeacher(LinearTeacherKernel(student: .erf, scale: 1))
        case (_, .he2, .gaussian):
            if let student = HermiteTwoPartnerKernel.student(s) { return .hermiteTwo(HermiteTwoPartnerKernel(student: student)) }
            return quadrature
        default: return quadrature
        }
    }

    var isClosedForm: Bool {
        if case .quadrature = self { return false }
        return true
    }

    @inline(__always)
    func evaluate(_ i: NormInfo, _ j: NormInfo, _ dot: Double) -> KernelValue {
        switch self {
        case .relu(let k): return k.evaluate(i, j, dot)
        case .erf(let k): return k.evaluate(i, j, dot)
        case .linear(let k): return k.evaluate(i, j, dot)
        case .linearTeacher(let k): return k.evaluate(i, j, dot)
        case .hermiteTwo(let k): return k.evaluate(i, j, dot)
        case .quadrature(let k): return k.evaluate(i, j, dot)
        }
    }

    @inline(__always)
    func value(_ i: NormInfo, _ j: NormInfo, _ dot: Double) -> Double {
        switch self {
        case .relu(let k): return k.value(i, j, dot)
        case .erf(let k): return k.value(i, j, dot)
        case .linear(let k): return k.value(i, j, dot)
        case .linearTeacher(let k): return k.value(i, j, dot)
        case .hermiteTwo(let k): return k.value(i, j, dot)
        case .quadrature(let k): return k.value(i, j, dot)
        }
    }
}
