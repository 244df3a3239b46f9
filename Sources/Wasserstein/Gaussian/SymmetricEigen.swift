/// The eigen-decomposition of a small real symmetric matrix by the cyclic Jacobi method.
///
/// Jacobi rotations annihilate one off-diagonal pair at a time; sweeping over all pairs
/// converges quadratically and gives eigenvalues to high relative accuracy, which suits the
/// Bures formula (square roots of possibly tiny eigenvalues). Cost `O(D^3)` per sweep, a
/// handful of sweeps: meant for covariance matrices of dimension up to a few hundred.
struct SymmetricEigen {
    /// The eigenvalues, in no particular order.
    let values: [Double]
    /// Row-major `D x D`; column `l` is the unit eigenvector of `values[l]`.
    let vectors: [Double]
    let dimension: Int

    /// Decomposes the symmetric row-major `d x d` matrix `a` (only its symmetric part is used).
    init(_ a: [Double], dimension d: Int) {
        var m = a
        // Symmetrise so that round-off asymmetry does not bias the rotations.
        for k in 0 ..< d {
            for l in k + 1 ..< d {
                let s = 0.5 * (m[k * d + l] + m[l * d + k])
                m[k * d + l] = s
                m[l * d + k] = s
            }
        }
        var v = [Double](repeating: 0, count: d * d)
        for k in 0 ..< d { v[k * d + k] = 1 }
        var total = 0.0
        for x in m { total += x * x }
        for _ in 0 ..< 100 {
            var off = 0.0
            for k in 0 ..< d { for l in k + 1 ..< d { off += m[k * d + l] * m[k * d + l] } }
            // Off-diagonal mass negligible against the whole matrix: the diagonal is exact
            // to working precision.
            if off <= 1e-32 * total || off == 0 { break }
            for p in 0 ..< d {
                for q in p + 1 ..< d {
                    let apq = m[p * d + q]
                    if apq == 0 { continue }
                    let app = m[p * d + p], aqq = m[q * d + q]
                    let theta = (aqq - app) / (2 * apq)
                    // Smaller root of t^2 + 2 theta t - 1 = 0, written to avoid cancellation.
                    let t: Double
                    if abs(theta) > 1e150 {
                        t = 1 / (2 * theta)
                    } else {
                        t = (theta >= 0 ? 1.0 : -1.0) / (abs(theta) + (theta * theta + 1).squareRoot())
                    }
                    let c = 1 / (t * t + 1).squareRoot()
                    let s = t * c
                    m[p * d + p] = app - t * apq
                    m[q * d + q] = aqq + t * apq
                    m[p * d + q] = 0
                    m[q * d + p] = 0
                    for k in 0 ..< d where k != p && k != q {
                        let akp = m[k * d + p], akq = m[k * d + q]
                        let newP = c * akp - s * akq
                        let newQ = s * akp + c * akq
                        m[k * d + p] = newP
                        m[p * d + k] = newP
                        m[k * d + q] = newQ
                        m[q * d + k] = newQ
                    }
                    for k in 0 ..< d {
                        let vkp = v[k * d + p], vkq = v[k * d + q]
                        v[k * d + p] = c * vkp - s * vkq
                        v[k * d + q] = s * vkp + c * vkq
                    }
                }
            }
        }
        values = (0 ..< d).map { m[$0 * d + $0] }
        vectors = v
        dimension = d
    }

    /// `V diag(h(lambda)) V^T`, row-major.
    func applying(_ h: (Double) -> Double) -> [Double] {
        let d = dimension
        let hv = values.map(h)
        var r = [Double](repeating: 0, count: d * d)
        for k in 0 ..< d {
            for l in k ..< d {
                var s = 0.0
                for e in 0 ..< d { s += vectors[k * d + e] * hv[e] * vectors[l * d + e] }
                r[k * d + l] = s
                r[l * d + k] = s
            }
        }
        return r
    }
}
