#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A Gauss quadrature rule for a probability law on R: `E[g(t)] ~ sum_i weights[i] g(nodes[i])`.
///
/// Built by the Golub-Welsch method: the nodes are the eigenvalues of the Jacobi matrix of the
/// law's monic orthogonal polynomials, the weights the squared first components of its
/// normalised eigenvectors. An `n`-node rule integrates polynomials of degree `<= 2n - 1`
/// exactly; for analytic integrands the error decays geometrically in `n`.
public struct GaussRule: Sendable, Equatable {
    /// The nodes, increasing.
    public let nodes: [Double]
    /// The weights, positive, summing to 1.
    public let weights: [Double]

    /// `n`-node Gauss-Hermite rule for the standard normal law `N(0, 1)` (probabilists' Hermite
    /// polynomials; weights already divided by `sqrt(2 pi)`).
    public static func hermite(_ n: Int) -> GaussRule {
        precondition(n >= 1)
        let off = (0 ..< max(0, n - 1)).map { Double($0 + 1).squareRoot() }
        return GaussRule(jacobiMatrixDiagonal: [Double](repeating: 0, count: n), offDiagonal: off)
    }

    /// `n`-node Gauss rule for the symmetric Jacobi (Gegenbauer) law on `[-1, 1]` with density
    /// proportional to `(1 - t^2)^gamma`, `gamma > -1` (`gamma = 0`: Legendre, `-1/2`: Chebyshev).
    public static func symmetricJacobi(_ n: Int, gamma: Double) -> GaussRule {
        precondition(n >= 1 && gamma > -1)
        var off = [Double]()
        for k in 1 ..< max(1, n) {
            let kd = Double(k)
            // Monic three-term recurrence p_{k+1} = t p_k - b_k p_{k-1}; b_1 written separately
            // because the general expression is 0/0 there when gamma = -1/2.
            let b = k == 1 ? 1 / (2 * gamma + 3)
                : kd * (kd + 2 * gamma) / ((2 * kd + 2 * gamma + 1) * (2 * kd + 2 * gamma - 1))
            off.append(b.squareRoot())
        }
        return GaussRule(jacobiMatrixDiagonal: [Double](repeating: 0, count: n), offDiagonal: off)
    }

    /// `n`-node Gauss rule for the Gamma law of shape `alpha + 1` (density proportional to
    /// `x^alpha e^-x` on `x > 0`, `alpha > -1`): generalised Gauss-Laguerre, monic recurrence
    /// `p_{k+1} = (x - (2k + alpha + 1)) p_k - k (k + alpha) p_{k-1}`. With `x = r^2/2` this is
    /// the rule for `r ~ chi_{2 alpha + 2}`.
    public static func generalizedLaguerre(_ n: Int, alpha: Double) -> GaussRule {
        precondition(n >= 1 && alpha > -1)
        let diagonal = (0 ..< n).map { 2 * Double($0) + alpha + 1 }
        let off = (0 ..< max(0, n - 1)).map { k in (Double(k + 1) * (Double(k + 1) + alpha)).squareRoot() }
        return GaussRule(jacobiMatrixDiagonal: diagonal, offDiagonal: off, symmetric: false)
    }

    /// A rule given directly (used for the two-point laws of the sphere in d = 1, 2).
    init(nodes: [Double], weights: [Double]) {
        self.nodes = nodes
        self.weights = weights
    }

    /// Golub-Welsch on the symmetric tridiagonal Jacobi matrix (implicit QL with Wilkinson
    /// shifts, tracking only the first row of the eigenvector matrix). `symmetric`: the law is
    /// symmetric about 0, and the nodes and weights are symmetrised to match.
    init(jacobiMatrixDiagonal diagonal: [Double], offDiagonal: [Double], symmetric: Bool = true) {
        let n = diagonal.count
        var d = diagonal
        var e = offDiagonal + [Double](repeating: 0, count: n - offDiagonal.count)
        var z = [Double](repeating: 0, count: n)
        z[0] = 1
        for l in 0 ..< n {
            var iterations = 0
            while true {
                var m = l
                while m < n - 1 {
                    let dd = abs(d[m]) + abs(d[m + 1])
                    if abs(e[m]) <= 0x1p-53 * dd { break }
                    m += 1
                }
                if m == l { break }
                iterations += 1
                if iterations > 60 { break }
                var g = (d[l + 1] - d[l]) / (2 * e[l])
                var r = hypot(g, 1)
                g = d[m] - d[l] + e[l] / (g + (g >= 0 ? r : -r))
                var s = 1.0, c = 1.0, p = 0.0
                var i = m - 1
                var deflated = false
                while i >= l {
                    let f = s * e[i]
                    let b = c * e[i]
                    r = hypot(f, g)
                    e[i + 1] = r
                    if r == 0 {
                        d[i + 1] -= p
                        e[m] = 0
                        deflated = true
                        break
                    }
                    s = f / r
                    c = g / r
                    g = d[i + 1] - p
                    r = (d[i] - g) * s + 2 * c * b
                    p = s * r
                    d[i + 1] = g + p
                    g = c * r - b
                    let zf = z[i + 1]
                    z[i + 1] = s * z[i] + c * zf
                    z[i] = c * z[i] - s * zf
                    i -= 1
                }
                if deflated { continue }
                d[l] -= p
                e[l] = g
                e[m] = 0
            }
        }
        let order = (0 ..< n).sorted { d[$0] < d[$1] }
        var nodes = order.map { d[$0] }
        var weights = order.map { z[$0] * z[$0] }
        // For a symmetric law, symmetrise to remove the last-bit asymmetry of QL.
        for i in 0 ..< (symmetric ? n / 2 : 0) {
            let j = n - 1 - i
            let t = (nodes[j] - nodes[i]) / 2
            nodes[i] = -t
            nodes[j] = t
            let w = (weights[i] + weights[j]) / 2
            weights[i] = w
            weights[j] = w
        }
        if symmetric && n % 2 == 1 { nodes[n / 2] = 0 }
        let total = weights.reduce(0, +)
        self.nodes = nodes
        self.weights = weights.map { $0 / total }
    }
}

/// A product rule for the law of the projection `(t1, t2) = (<e1, x>, <e2, x>)` of the input
/// onto two orthonormal directions: `t1` from the marginal, then `t2 = scale(t1) * v` with `v`
/// independent of `t1`.
///
/// - Gaussian inputs: `t1`, `t2` independent `N(0, 1)` (Gauss-Hermite in each, `scale = 1`).
/// - Sphere inputs, `d >= 3`: the pair has density `~ (1 - t1^2 - t2^2)^((d-4)/2)` on the unit
///   disc, so `t1 ~ (1 - t^2)^((d-3)/2)`, `t2 = sqrt(1 - t1^2) v` with `v ~ (1 - v^2)^((d-4)/2)`
///   (Gauss-Jacobi in each). `d = 2`: `v = +-1`. `d = 1`: `t1 = +-1`, `t2 = 0`.
///
/// Every kernel `E[s(<w, x>) r(<w', x>)]` depends on `x` only through such a pair, so one
/// two-dimensional rule serves all of them.
struct ProjectedRule: Sendable {
    let t1: [Double]
    let w1: [Double]
    let scale: [Double]
    let v: [Double]
    let wv: [Double]

    init(inputs: InputDistribution, dimension d: Int, nodes n: Int) {
        switch inputs {
        case .gaussian:
            let h = GaussRule.hermite(n)
            t1 = h.nodes; w1 = h.weights; v = h.nodes; wv = h.weights
            scale = [Double](repeating: 1, count: n)
        case .sphere:
            let first: GaussRule
            let second: GaussRule
            if d == 1 {
                first = GaussRule(nodes: [-1, 1], weights: [0.5, 0.5])
                second = GaussRule(nodes: [0], weights: [1])
            } else if d == 2 {
                first = GaussRule.symmetricJacobi(n, gamma: -0.5)
                second = GaussRule(nodes: [-1, 1], weights: [0.5, 0.5])
            } else {
                first = GaussRule.symmetricJacobi(n, gamma: Double(d - 3) / 2)
                second = GaussRule.symmetricJacobi(n, gamma: Double(d - 4) / 2)
            }
            t1 = first.nodes; w1 = first.weights; v = second.nodes; wv = second.weights
            scale = t1.map { (max(0, 1 - $0 * $0)).squareRoot() }
        }
    }
}
