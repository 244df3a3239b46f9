/// `acos(c)` for `c` in `[-1, 1]`, branch-free so that loops over pairs vectorise (the libm call
/// does not). Relative error ~1e-16 (tests compare with libm to a few ulps).
///
/// Reduction: `acos(c) = pi/2 - asin(c)` for `|c| <= 1/2`, and `2 asin(sqrt((1 - |c|)/2))`
/// (mirrored for `c < 0`) otherwise, so `asin` is only needed on `[0, 1/2]`. There
/// `asin(y) = y + y^3 p(y^2)`, with `p` the degree-12 interpolant of `(asin(y) - y)/y^3` at the
/// Chebyshev points of `t = y^2` in `[0, 1/4]` (coefficients computed for this file in 50-digit
/// arithmetic; the interpolation error is below 1.2e-16 relative to `asin`).
@inline(__always)
func arccos(_ c: Double) -> Double {
    let z = c < 0 ? -c : c
    let big = z > 0.5
    let y = big ? ((1 - z) * 0.5).squareRoot() : z
    let s = arcsinCore(y)
    let halfPi = 1.5707963267948966
    let small = c < 0 ? halfPi + s : halfPi - s
    let large = c < 0 ? 2 * halfPi - 2 * s : 2 * s
    return big ? large : small
}

/// `asin(z)` for `z` in `[-1, 1]`, branch-free; same reduction and accuracy as ``arccos(_:)``.
@inline(__always)
func arcsin(_ z: Double) -> Double {
    let a = z < 0 ? -z : z
    let big = a > 0.5
    let y = big ? ((1 - a) * 0.5).squareRoot() : a
    let s = arcsinCore(y)
    let r = big ? 1.5707963267948966 - 2 * s : s
    return z < 0 ? -r : r
}

/// `asin(y)` for `y` in `[0, 1/2]`: `y + y^3 p(y^2)`, `p` evaluated by Estrin's scheme (depth 4
/// instead of Horner's 12, so that loop iterations overlap).
@inline(__always)
func arcsinCore(_ y: Double) -> Double {
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

/// `sqrt(1 - t)` for `t` in `[0, 1/4]`: the degree-12 interpolant at the Chebyshev points
/// (computed for this file in 50-digit arithmetic; relative error below 1.3e-16), by Estrin's
/// scheme.
@inline(__always)
func sqrtOneMinus(_ t: Double) -> Double {
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

/// `(acos(c), sin(acos(c)))` for `c` in `[-1, 1]` with one square root: with the reduction of
/// ``arccos(_:)``, `sin(acos c) = sqrt(1 - c^2)` when `|c| <= 1/2` and `2 y sqrt(1 - y^2)`,
/// `y = sqrt((1 - |c|)/2)`, otherwise; both square roots are ``sqrtOneMinus(_:)`` of an
/// argument in `[0, 1/4]`. (This is also accurate for nearly parallel vectors, where
/// `sqrt(1 - c^2)` would lose half the digits.)
@inline(__always)
func arccosAndSine(_ c: Double) -> (angle: Double, sine: Double) {
    let z = c < 0 ? -c : c
    let big = z > 0.5
    let y = big ? ((1 - z) * 0.5).squareRoot() : z
    let s = arcsinCore(y)
    let halfPi = 1.5707963267948966
    let small = c < 0 ? halfPi + s : halfPi - s
    let large = c < 0 ? 2 * halfPi - 2 * s : 2 * s
    let q = sqrtOneMinus(y * y)
    return (big ? large : small, big ? 2 * y * q : q)
}
