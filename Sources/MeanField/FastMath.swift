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

/// `asin(y)` for `y` in `[0, 1/2]`.
@inline(__always)
func arcsinCore(_ y: Double) -> Double {
    let t = y * y
    var p = 0.028757851367421566
    p = p * t - 0.014851887071247204
    p = p * t + 0.01740087944269402
    p = p * t + 0.005457506718640358
    p = p * t + 0.01032281435018578
    p = p * t + 0.011479177415184906
    p = p * t + 0.013971212973552933
    p = p * t + 0.017352392720869973
    p = p * t + 0.02237217294214989
    p = p * t + 0.030381944138531247
    p = p * t + 0.04464285714635543
    p = p * t + 0.07499999999998433
    p = p * t + 0.16666666666666669
    return y + y * t * p
}
