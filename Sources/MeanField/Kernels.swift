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
}

private let inverseTwoPi = 1 / (2 * Double.pi)

/// The arc-cosine kernel of relu for Gaussian inputs (MATH.md), times `scale`
/// (`1` for Gaussian inputs, `1/d` on the sphere by positive homogeneity).
struct ReLUKernel: PairKernel {
    var scale: Double

    @inline(__always)
    func evaluate(_ i: NormInfo, _ j: NormInfo, _ dot: Double) -> KernelValue {
        let nn = i.norm * j.norm
        // At w = 0 (or w' = 0) the kernel is 0; its gradient is taken with relu'(0) = 0, the
        // same convention as the particle updates.
        if nn == 0 { return KernelValue(value: 0, alpha: 0, beta: 0) }
        var c = dot * i.inverse * j.inverse
        c = min(1, max(-1, c))
        let phi = acos(c)
        let sinPhi = max(0, 1 - c * c).squareRoot()
        let piMinusPhi = Double.pi - phi
        let s = scale * inverseTwoPi
        return KernelValue(value: s * (nn * sinPhi + piMinusPhi * dot),
                           alpha: s * j.norm * sinPhi * i.inverse,
                           beta: s * piMinusPhi)
    }

    @inline(__always)
    func value(_ i: NormInfo, _ j: NormInfo, _ dot: Double) -> Double { evaluate(i, j, dot).value }
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
        let g = (2 / Double.pi) / max(1e-300, 1 - z * z).squareRoot()
        return KernelValue(value: (2 / Double.pi) * asin(z), alpha: -g * z * 2 / pi1, beta: g * 2 * rs)
    }

    @inline(__always)
    func value(_ i: NormInfo, _ j: NormInfo, _ dot: Double) -> Double {
        (2 / Double.pi) * asin(2 * dot / ((1 + 2 * i.squared) * (1 + 2 * j.squared)).squareRoot())
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

/// `E[s(<w,x>) r(<w',x>)]` by a product Gauss rule on the law of the projection of `x` onto
/// span(w, w') (``ProjectedRule``): `n^2` evaluations of `r` and `n` of `s` per pair.
///
/// Gradient: `grad_w K = E[s'(<w,x>) r(<w',x>) x]`; only the part of `x` in span(w, w')
/// survives the expectation. With `e1 = w/|w|`, `w' = b1 e1 + b2 e2`:
/// `grad = A e1 + (B/b2) (w' - b1 e1)`, `A = E[s' r t1]`, `B = E[s' r t2]`. When `b2` is tiny
/// (nearly parallel pair) `B/b2` is replaced by its limit `E[s'(|w| t1) r'(b1 t1) t2^2]`
/// (error `O(b2^2)`, the odd term vanishing by symmetry).
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

    @inline(__always)
    func integrate<S: ScalarFunction, R: ScalarFunction>(_ s: S, _ r: R, _ i: NormInfo, _ j: NormInfo,
                                                         _ dot: Double, _ gradient: Bool) -> KernelValue {
        let n1 = i.norm
        let b1 = n1 > 0 ? dot * i.inverse : 0
        let b2 = max(0, j.squared - b1 * b1).squareRoot()
        var k = 0.0, a = 0.0, b = 0.0
        rule.t1.withUnsafeBufferPointer { t1 in
        rule.w1.withUnsafeBufferPointer { w1 in
        rule.scale.withUnsafeBufferPointer { sc in
        rule.v.withUnsafeBufferPointer { v in
        rule.wv.withUnsafeBufferPointer { wv in
            for p in 0 ..< t1.count {
                let u1 = n1 * t1[p]
                let base = b1 * t1[p]
                let step = b2 * sc[p]
                var kp = 0.0, bp = 0.0
                for q in 0 ..< v.count {
                    let rv = wv[q] * r.value(base + step * v[q])
                    kp += rv
                    bp += rv * v[q]
                }
                k += w1[p] * s.value(u1) * kp
                if gradient {
                    let sd = w1[p] * s.derivative(u1)
                    a += sd * kp * t1[p]
                    b += sd * bp * sc[p]
                }
            }
        }}}}}
        if !gradient { return KernelValue(value: k, alpha: 0, beta: 0) }
        var c: Double
        if j.squared == 0 {
            c = 0
        } else if b2 > 1e-7 * j.norm {
            c = b / b2
        } else {
            c = 0
            for p in 0 ..< rule.t1.count {
                let t1 = rule.t1[p]
                let sd = rule.w1[p] * s.derivative(n1 * t1) * r.derivative(b1 * t1)
                var m2 = 0.0
                for q in 0 ..< rule.v.count { m2 += rule.wv[q] * rule.v[q] * rule.v[q] }
                c += sd * m2 * rule.scale[p] * rule.scale[p]
            }
        }
        let alpha = n1 > 0 ? (a - c * b1) * i.inverse : 0
        return KernelValue(value: k, alpha: alpha, beta: c)
    }
}

/// The kernels a ``PopulationRisk`` uses, as one enum so that the `O(M^2)` loops switch once and
/// then run specialised code.
enum KernelChoice: Sendable {
    case relu(ReLUKernel)
    case erf(ErfKernel)
    case linear(LinearKernel)
    case linearTeacher(LinearTeacherKernel)
    case quadrature(QuadratureKernel)

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
        case .quadrature(let k): return k.value(i, j, dot)
        }
    }
}
