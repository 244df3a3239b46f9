/// Hand-vectorised loops. The default x86-64 target has SSE2 only and LLVM does not vectorise
/// the pair loops on its own (libm calls, possible aliasing, floating-point reductions), so the
/// hot loops are written on `SIMD4<Double>` lanes. Every lane performs the same IEEE operations
/// as the scalar code, so results do not depend on where a row is split into lanes and tail.

typealias D4 = SIMD4<Double>

@inline(__always)
func load4(_ p: UnsafePointer<Double>) -> D4 {
    UnsafeRawPointer(p).loadUnaligned(as: D4.self)
}

@inline(__always)
func store4(_ v: D4, _ p: UnsafeMutablePointer<Double>) {
    UnsafeMutableRawPointer(p).storeBytes(of: v, as: D4.self)
}

/// Lane-wise square root through `Double.squareRoot()`. (Swift lowers `squareRoot()`, scalar or
/// SIMD, to libm's `sqrt`, which LLVM keeps scalar: `sqrtsd` plus an errno branch per lane. A
/// packed Newton iteration from the bit-pattern guess of `1/sqrt` was tried and measured slower:
/// 36 ms against 31 ms for one M = 2000 first variation.)
@inline(__always)
func sqrt4(_ v: D4) -> D4 {
    D4(v[0].squareRoot(), v[1].squareRoot(), v[2].squareRoot(), v[3].squareRoot())
}

/// Lane-wise ``arcsinCore(_:)`` (same operations in the same order).
@inline(__always)
func arcsinCore4(_ y: D4) -> D4 {
    let t = y * y
    let t2 = t * t, t4 = t2 * t2, t8 = t4 * t4
    let q0 = 0.16666666666666669 + 0.07499999999998433 * t
    let q1 = 0.04464285714635543 + 0.030381944138531247 * t
    let q2 = 0.02237217294214989 + 0.017352392720869973 * t
    let q3 = 0.013971212973552933 + 0.011479177415184906 * t
    let q4 = 0.01032281435018578 + 0.005457506718640358 * t
    let q5 = 0.01740087944269402 - 0.014851887071247204 * t
    let r0 = q0 + q1 * t2, r1 = q2 + q3 * t2, r2 = q4 + q5 * t2 + 0.028757851367421566 * t4
    let p = (r0 + r1 * t4) + r2 * t8
    return y + y * t * p
}

/// Lane-wise ``arccos(_:)`` (same operations, same results).
@inline(__always)
func arccos4(_ c: D4) -> D4 {
    let negative = c .< 0
    let z = c.replacing(with: -c, where: negative)
    let big = z .> 0.5
    let y = z.replacing(with: sqrt4((1 - z) * 0.5), where: big)
    let s = arcsinCore4(y)
    let halfPi = 1.5707963267948966
    let small = (halfPi - s).replacing(with: halfPi + s, where: negative)
    let large = (2 * s).replacing(with: 2 * halfPi - 2 * s, where: negative)
    return small.replacing(with: large, where: big)
}

/// Lane-wise ``sqrtOneMinus(_:)``.
@inline(__always)
func sqrtOneMinus4(_ t: D4) -> D4 {
    let t2 = t * t, t4 = t2 * t2, t8 = t4 * t4
    let q0 = 1.0 - 0.4999999999999815 * t
    let q1 = -0.1250000000041244 - 0.06249999963931342 * t
    let q2 = -0.0390625163329017 - 0.02734331164089207 * t
    let q3 = -0.020515325325567758 - 0.016027596302914372 * t
    let q4 = -0.01375441009387522 - 0.007446828865423663 * t
    let q5 = -0.021194963521473254 + 0.017190548009281534 * t
    let r0 = q0 + q1 * t2, r1 = q2 + q3 * t2, r2 = q4 + q5 * t2 - 0.034308838583332474 * t4
    return (r0 + r1 * t4) + r2 * t8
}

/// Lane-wise ``arccosAndSine(_:)``.
@inline(__always)
func arccosAndSine4(_ c: D4) -> (angle: D4, sine: D4) {
    let negative = c .< 0
    let z = c.replacing(with: -c, where: negative)
    let big = z .> 0.5
    let y = z.replacing(with: sqrt4((1 - z) * 0.5), where: big)
    let s = arcsinCore4(y)
    let halfPi = 1.5707963267948966
    let small = (halfPi - s).replacing(with: halfPi + s, where: negative)
    let large = (2 * s).replacing(with: 2 * halfPi - 2 * s, where: negative)
    let q = sqrtOneMinus4(y * y)
    return (small.replacing(with: large, where: big), q.replacing(with: 2 * y * q, where: big))
}

/// Lane-wise ``arcsin(_:)``.
@inline(__always)
func arcsin4(_ z: D4) -> D4 {
    let negative = z .< 0
    let a = z.replacing(with: -z, where: negative)
    let big = a .> 0.5
    let y = a.replacing(with: sqrt4((1 - a) * 0.5), where: big)
    let s = arcsinCore4(y)
    let r = s.replacing(with: 1.5707963267948966 - 2 * s, where: big)
    return r.replacing(with: -r, where: negative)
}

/// `sum_j a[j] b[j]` with four lanes of partial sums, combined in a fixed order.
@inline(__always)
func dot(_ a: UnsafePointer<Double>, _ b: UnsafePointer<Double>, _ n: Int) -> Double {
    var acc0 = D4(), acc1 = D4()
    var j = 0
    while j + 8 <= n {
        acc0 += load4(a + j) * load4(b + j)
        acc1 += load4(a + j + 4) * load4(b + j + 4)
        j += 8
    }
    var acc = acc0 + acc1
    if j + 4 <= n {
        acc += load4(a + j) * load4(b + j)
        j += 4
    }
    var s = (acc[0] + acc[1]) + (acc[2] + acc[3])
    while j < n {
        s += a[j] * b[j]
        j += 1
    }
    return s
}

extension ReLUKernel {
    /// ``PairKernel/evaluate4(_:dot:squared:norm:inverse:)``: the lanes of ``evaluateRowSIMD``
    /// (``evaluate4Both`` without `alpha_ji`, which inlining drops).
    @inline(__always)
    func evaluate4(_ i: NormInfo, dot: D4, squared: D4, norm: D4, inverse: D4) -> (value: D4, alpha: D4, beta: D4) {
        let both = evaluate4Both(i, dot: dot, squared: squared, norm: norm, inverse: inverse)
        return (both.value, both.alpha, both.beta)
    }

    /// ``SymmetricPairKernel/evaluate4Both(_:dot:squared:norm:inverse:)``: `alpha_ji` swaps the norms.
    @inline(__always)
    func evaluate4Both(_ i: NormInfo, dot: D4, squared: D4, norm nj: D4, inverse: D4)
        -> (value: D4, alpha: D4, alphaReverse: D4, beta: D4) {
        let s = scale * (1 / (2 * Double.pi))
        var cos = dot * i.inverse * inverse
        cos = cos.replacing(with: 1, where: cos .> 1)
        cos = cos.replacing(with: -1, where: cos .< -1)
        let (phi, sinPhi) = arccosAndSine4(cos)
        let piMinusPhi = Double.pi - phi
        let nn = i.norm * nj
        let sv = D4(repeating: s).replacing(with: 0, where: nn .== 0)
        return (sv * (nn * sinPhi + piMinusPhi * dot), sv * nj * sinPhi * i.inverse, sv * i.norm * sinPhi * inverse, sv * piMinusPhi)
    }

    /// ``PairKernel/evaluateRow`` on four lanes at a time.
    @inline(__always)
    func evaluateRowSIMD(_ i: NormInfo, dots: UnsafePointer<Double>, norms: NormColumns, coefficients c: UnsafePointer<Double>,
                         count m: Int, values kOut: UnsafeMutablePointer<Double>,
                         alphas aOut: UnsafeMutablePointer<Double>?, betas bOut: UnsafeMutablePointer<Double>?) {
        let s = scale * (1 / (2 * Double.pi))
        let ni = i.norm, invI = i.inverse
        var j = 0
        while j + 4 <= m {
            let dot = load4(dots + j)
            let nj = load4(norms.norm + j)
            var cos = dot * invI * load4(norms.inverse + j)
            cos = cos.replacing(with: 1, where: cos .> 1)
            cos = cos.replacing(with: -1, where: cos .< -1)
            let (phi, sinPhi) = arccosAndSine4(cos)
            let piMinusPhi = Double.pi - phi
            let nn = ni * nj
            let sv = D4(repeating: s).replacing(with: 0, where: nn .== 0)
            let cj = load4(c + j)
            store4(cj * (sv * (nn * sinPhi + piMinusPhi * dot)), kOut + j)
            if let aOut, let bOut {
                store4(cj * (sv * nj * sinPhi * invI), aOut + j)
                store4(cj * (sv * piMinusPhi), bOut + j)
            }
            j += 4
        }
        while j < m {
            let kv = evaluate(i, norms[j], dots[j])
            kOut[j] = c[j] * kv.value
            if let aOut, let bOut {
                aOut[j] = c[j] * kv.alpha
                bOut[j] = c[j] * kv.beta
            }
            j += 1
        }
    }
}

extension ErfKernel {
    /// ``PairKernel/evaluate4(_:dot:squared:norm:inverse:)``: the lanes of ``evaluateRowSIMD``
    /// (``evaluate4Both`` without `alpha_ji`, which inlining drops).
    @inline(__always)
    func evaluate4(_ i: NormInfo, dot: D4, squared: D4, norm: D4, inverse: D4) -> (value: D4, alpha: D4, beta: D4) {
        let both = evaluate4Both(i, dot: dot, squared: squared, norm: norm, inverse: inverse)
        return (both.value, both.alpha, both.beta)
    }

    /// ``SymmetricPairKernel/evaluate4Both(_:dot:squared:norm:inverse:)``: `alpha_ji` has `1 + 2|w_j|^2`.
    @inline(__always)
    func evaluate4Both(_ i: NormInfo, dot: D4, squared: D4, norm: D4, inverse: D4)
        -> (value: D4, alpha: D4, alphaReverse: D4, beta: D4) {
        let pi1 = 1 + 2 * i.squared
        let pj = 1 + 2 * squared
        let twoOverPi = 2 / Double.pi
        let rs = 1 / sqrt4(pi1 * pj)
        let z = 2 * dot * rs
        var oneMinus = 1 - z * z
        oneMinus = oneMinus.replacing(with: 1e-300, where: oneMinus .< 1e-300)
        let g = twoOverPi / sqrt4(oneMinus)
        return (twoOverPi * arcsin4(z), -g * z * 2 / pi1, -g * z * 2 / pj, g * 2 * rs)
    }

    /// ``PairKernel/evaluateRow`` on four lanes at a time.
    @inline(__always)
    func evaluateRowSIMD(_ i: NormInfo, dots: UnsafePointer<Double>, norms: NormColumns, coefficients c: UnsafePointer<Double>,
                         count m: Int, values kOut: UnsafeMutablePointer<Double>,
                         alphas aOut: UnsafeMutablePointer<Double>?, betas bOut: UnsafeMutablePointer<Double>?) {
        let pi1 = 1 + 2 * i.squared
        let twoOverPi = 2 / Double.pi
        var j = 0
        while j + 4 <= m {
            let dot = load4(dots + j)
            let rs = 1 / sqrt4(pi1 * (1 + 2 * load4(norms.squared + j)))
            let z = 2 * dot * rs
            let cj = load4(c + j)
            store4(cj * (twoOverPi * arcsin4(z)), kOut + j)
            if let aOut, let bOut {
                var oneMinus = 1 - z * z
                oneMinus = oneMinus.replacing(with: 1e-300, where: oneMinus .< 1e-300)
                let g = twoOverPi / sqrt4(oneMinus)
                store4(cj * (-g * z * 2 / pi1), aOut + j)
                store4(cj * (g * 2 * rs), bOut + j)
            }
            j += 4
        }
        while j < m {
            let kv = evaluate(i, norms[j], dots[j])
            kOut[j] = c[j] * kv.value
            if let aOut, let bOut {
                aOut[j] = c[j] * kv.alpha
                bOut[j] = c[j] * kv.beta
            }
            j += 1
        }
    }
}

// MARK: - Packed exponential and the activations built on it

/// Lane-wise `exp(x)`, relative error below 5e-16 (2-3 ulps) for `|x| <= 700` (tested against libm);
/// arguments are clamped to `[-700, 700]`.
///
/// `x = k ln 2 + r` with `k = round(x / ln 2)` (by the 1.5 * 2^52 shifter) and `|r| <= ln 2 / 2`
/// (`ln 2` split in two parts so that `r` is nearly exact); `exp(r)` by its Taylor polynomial of degree
/// 13 (remainder below `0.35^14 / 14! ~ 4e-18`), evaluated by Estrin's scheme; `2^k` by writing
/// `k + 1023` into the exponent bits.
@inline(__always)
func exp4(_ v: D4) -> D4 {
    var x = v.replacing(with: 700, where: v .> 700)
    x = x.replacing(with: -700, where: x .< -700)
    let shifter = 6755399441055744.0   // 1.5 * 2^52: adding it rounds to an integer in the low bits
    let y = x * 1.4426950408889634 + shifter
    let kf = y - shifter
    // ln 2 = hi + lo with hi of 32 significant bits, so kf * hi is exact for |k| < 2^20.
    let r = (x - kf * 0.6931471803691238) - kf * 1.9082149292705877e-10
    let r2 = r * r, r4 = r2 * r2, r8 = r4 * r4
    let p01 = 1 + r
    let p23 = 0.5 + r * 0.16666666666666666
    let p45 = 0.041666666666666664 + r * 0.008333333333333333
    let p67 = 0.001388888888888889 + r * 0.0001984126984126984
    let p89 = 2.48015873015873e-05 + r * 2.7557319223985893e-06
    let p1011 = 2.755731922398589e-07 + r * 2.505210838544172e-08
    let p1213 = 2.08767569878681e-09 + r * 1.6059043836821613e-10
    let q0 = p01 + p23 * r2, q1 = p45 + p67 * r2, q2 = p89 + p1011 * r2
    let e = (q0 + q1 * r4) + (q2 + p1213 * r4) * r8
    let k = unsafeBitCast(y, to: SIMD4<Int64>.self) &- Int64(bitPattern: shifter.bitPattern)
    let scale = unsafeBitCast((k &+ 1023) &<< 52, to: D4.self)
    return e * scale
}

extension TanhFunction {
    /// `tanh u = sign(u) (1 - 2 / (exp(2|u|) + 1))` (absolute error ~2e-16) and `1 - tanh^2`.
    @inline(__always)
    func valueAndDerivative4(_ u: D4) -> (D4, D4) {
        let negative = u .< 0
        let a = u.replacing(with: -u, where: negative)
        let t = 1 - 2 / (exp4(2 * a) + 1)
        let value = t.replacing(with: -t, where: negative)
        return (value, 1 - t * t)
    }
}

extension SigmoidFunction {
    /// `1 / (1 + exp(-u))` and `s (1 - s)`.
    @inline(__always)
    func valueAndDerivative4(_ u: D4) -> (D4, D4) {
        let s = 1 / (1 + exp4(-u))
        return (s, s * (1 - s))
    }
}
