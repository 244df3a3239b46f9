/// Raw views of the two point clouds, for cost evaluation inside the entropic hot loops.
///
/// The squared Euclidean cost is recomputed from the coordinates wherever it is needed instead
/// of being stored: the Sinkhorn workspace then holds a single `n x m` matrix (the stabilised
/// kernel), which halves the memory at large `n` (512 MB instead of 1 GB at n = m = 8000).
/// In two dimensions a cost entry is four flops, far cheaper than the `exp` next to it.
@usableFromInline
internal struct EntropicGeometry {
    let x: UnsafePointer<Double>
    let y: UnsafePointer<Double>
    let n: Int
    let m: Int
    let d: Int

    /// `C_ij = |x_i - y_j|^2`, formed from differences so that it is exactly 0 for equal points.
    @inline(__always)
    func cost(_ i: Int, _ j: Int) -> Double {
        let xi = x + i * d, yj = y + j * d
        var s = 0.0
        for k in 0 ..< d {
            let t = xi[k] - yj[k]
            s += t * t
        }
        return s
    }

    /// Writes `out[j] = exp((alpha + beta[j] - C_ij) * invEps)` for `j` in `columns`
    /// (`out` is indexed by `j`). The loops are specialised per dimension so that they vectorise.
    @inline(__always)
    func kernelRow(_ i: Int, alpha: Double, beta: UnsafePointer<Double>, invEps: Double,
                   out: UnsafeMutablePointer<Double>, columns: Range<Int>) {
        switch d {
        case 1:
            let x0 = x[i]
            for j in columns {
                let t = x0 - y[j]
                out[j] = entropicExp((alpha + beta[j] - t * t) * invEps)
            }
        case 2:
            let x0 = x[2 * i], x1 = x[2 * i + 1]
            for j in columns {
                let t0 = x0 - y[2 * j], t1 = x1 - y[2 * j + 1]
                out[j] = entropicExp((alpha + beta[j] - (t0 * t0 + t1 * t1)) * invEps)
            }
        case 3:
            let x0 = x[3 * i], x1 = x[3 * i + 1], x2 = x[3 * i + 2]
            for j in columns {
                let t0 = x0 - y[3 * j], t1 = x1 - y[3 * j + 1], t2 = x2 - y[3 * j + 2]
                out[j] = entropicExp((alpha + beta[j] - (t0 * t0 + t1 * t1 + t2 * t2)) * invEps)
            }
        default:
            // Costs first (the inner loop over k does not vectorise across j), then exps.
            for j in columns { out[j] = cost(i, j) }
            for j in columns { out[j] = entropicExp((alpha + beta[j] - out[j]) * invEps) }
        }
    }

    /// `sum_j plan[j] * C_ij` for one row of a plan.
    @inline(__always)
    func planCostRow(_ i: Int, plan: UnsafePointer<Double>) -> Double {
        var s0 = 0.0, s1 = 0.0
        switch d {
        case 2:
            let x0 = x[2 * i], x1 = x[2 * i + 1]
            var j = 0
            while j + 2 <= m {
                let a0 = x0 - y[2 * j], a1 = x1 - y[2 * j + 1]
                let b0 = x0 - y[2 * j + 2], b1 = x1 - y[2 * j + 3]
                s0 += plan[j] * (a0 * a0 + a1 * a1)
                s1 += plan[j + 1] * (b0 * b0 + b1 * b1)
                j += 2
            }
            if j < m {
                let a0 = x0 - y[2 * j], a1 = x1 - y[2 * j + 1]
                s0 += plan[j] * (a0 * a0 + a1 * a1)
            }
        default:
            for j in 0 ..< m { s0 += plan[j] * cost(i, j) }
        }
        return s0 + s1
    }
}

/// `sum_j p[j] * q[j]` with four independent accumulators (a fixed association order, so the
/// result does not depend on how rows are split over threads).
@inline(__always)
internal func entropicDot(_ p: UnsafePointer<Double>, _ q: UnsafePointer<Double>, _ count: Int) -> Double {
    var s0 = 0.0, s1 = 0.0, s2 = 0.0, s3 = 0.0
    var j = 0
    while j + 4 <= count {
        s0 += p[j] * q[j]
        s1 += p[j + 1] * q[j + 1]
        s2 += p[j + 2] * q[j + 2]
        s3 += p[j + 3] * q[j + 3]
        j += 4
    }
    while j < count {
        s0 += p[j] * q[j]
        j += 1
    }
    return (s0 + s1) + (s2 + s3)
}
