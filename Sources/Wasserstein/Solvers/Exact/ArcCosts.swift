/// Where the network simplex reads arc costs `C_ij` from.
///
/// The pricing step scans row segments `C[i, lo..<hi] - v[lo..<hi]` for their minimum, and the
/// tree updates read single entries. A dense matrix answers both with loads; for small `D` it
/// is often cheaper to recompute `|x_i - y_j|^2` from the coordinates than to stream an `n x m`
/// matrix from memory, and it needs no `O(nm)` storage at all. The solver is generic over this
/// protocol so that each kind is specialised into its own tight loop.
///
/// Implementations hold raw pointers that are only valid inside the `withUnsafe...` scope in
/// which they are created; they never escape a solve.
protocol ArcCosts {
    /// Number of source points `n`.
    var rows: Int { get }
    /// Number of target points `m`.
    var columns: Int { get }
    /// The cost `C_ij`.
    func cost(_ i: Int, _ j: Int) -> Double
    /// The smallest `C_ij - v_j` below `threshold` over `j in lo ..< hi`, and the first `j`
    /// attaining it; `(threshold, -1)` when no value is below. This is the hot loop of pricing.
    func rowScan(_ i: Int, _ lo: Int, _ hi: Int, _ v: UnsafePointer<Double>, below threshold: Double) -> (value: Double, index: Int)
}

/// The smallest of `value(k)`, `k in 0 ..< count`, that is below `threshold`, with its index
/// (`-1` if none). `vector(k)` returns lanes `k ..< k + 4` of the same values.
///
/// Eight values per step are compared against the running best broadcast to all lanes; only
/// when a lane beats it (rare: most arcs have a non-negative reduced cost, and improvements
/// within a block are few) does the scalar bookkeeping run. No index vectors, no blends.
@inline(__always)
func thresholdScan(count: Int, threshold: Double, _ vector: (Int) -> SIMD4<Double>,
                   _ value: (Int) -> Double) -> (value: Double, index: Int) {
    var best = threshold
    var index = -1
    var bound = SIMD2<Double>(repeating: best)
    var k = 0
    while k &+ 8 <= count {
        let v0 = vector(k), v1 = vector(k &+ 4)
        // Lane-wise minimum of the eight values in two-lane registers (minpd on SSE2).
        let m = lanewiseMinimum(lanewiseMinimum(v0.lowHalf, v0.highHalf), lanewiseMinimum(v1.lowHalf, v1.highHalf))
        if any(m .< bound) {
            for l in 0 ..< 4 where v0[l] < best { best = v0[l]; index = k &+ l }
            for l in 0 ..< 4 where v1[l] < best { best = v1[l]; index = k &+ 4 &+ l }
            bound = SIMD2<Double>(repeating: best)
        }
        k &+= 8
    }
    while k < count {
        let r = value(k)
        if r < best { best = r; index = k }
        k &+= 1
    }
    return (best, index)
}

/// `b < a ? b : a` per lane; written as a select so that it lowers to `minpd` (the standard
/// library's `pointwiseMin` is not inlined into a single instruction).
@inline(__always)
func lanewiseMinimum(_ a: SIMD2<Double>, _ b: SIMD2<Double>) -> SIMD2<Double> {
    a.replacing(with: b, where: b .< a)
}

@inline(__always)
func load4(_ p: UnsafePointer<Double>, _ k: Int) -> SIMD4<Double> {
    UnsafeRawPointer(p + k).loadUnaligned(as: SIMD4<Double>.self)
}

/// Costs read from a dense row-major `n x m` matrix.
struct MatrixArcCosts: ArcCosts {
    let values: UnsafePointer<Double>
    let rows: Int
    let columns: Int

    @inline(__always)
    func cost(_ i: Int, _ j: Int) -> Double { values[i &* columns &+ j] }

    @inline(__always)
    func rowScan(_ i: Int, _ lo: Int, _ hi: Int, _ v: UnsafePointer<Double>, below threshold: Double) -> (value: Double, index: Int) {
        let row = values + (i &* columns &+ lo)
        let vv = v + lo
        let r = thresholdScan(count: hi - lo, threshold: threshold, { k in load4(row, k) - load4(vv, k) }, { k in row[k] - vv[k] })
        return (r.value, r.index < 0 ? -1 : r.index + lo)
    }
}

/// Squared Euclidean costs in the plane, recomputed from coordinates kept as separate axis
/// arrays (structure of arrays) so that the scan vectorises.
struct PlanarArcCosts: ArcCosts {
    let x0: UnsafePointer<Double>, x1: UnsafePointer<Double>
    let y0: UnsafePointer<Double>, y1: UnsafePointer<Double>
    let rows: Int
    let columns: Int

    @inline(__always)
    func cost(_ i: Int, _ j: Int) -> Double {
        let a = x0[i] - y0[j], b = x1[i] - y1[j]
        return a * a + b * b
    }

    @inline(__always)
    func rowScan(_ i: Int, _ lo: Int, _ hi: Int, _ v: UnsafePointer<Double>, below threshold: Double) -> (value: Double, index: Int) {
        let p = x0[i], q = x1[i]
        let p4 = SIMD4<Double>(repeating: p), q4 = SIMD4<Double>(repeating: q)
        let a = y0 + lo, b = y1 + lo, vv = v + lo
        let r = thresholdScan(count: hi - lo, threshold: threshold, { k in
            let s = p4 - load4(a, k), t = q4 - load4(b, k)
            return (s * s + t * t) - load4(vv, k)
        }, { k in
            let s = p - a[k], t = q - b[k]
            return (s * s + t * t) - vv[k]
        })
        return (r.value, r.index < 0 ? -1 : r.index + lo)
    }
}

/// Squared Euclidean costs in any dimension, recomputed from row-major coordinates.
struct PointArcCosts: ArcCosts {
    let x: UnsafePointer<Double>
    let y: UnsafePointer<Double>
    let dimension: Int
    let rows: Int
    let columns: Int

    @inline(__always)
    func cost(_ i: Int, _ j: Int) -> Double {
        let d = dimension
        let xi = x + i &* d, yj = y + j &* d
        var s = 0.0
        for k in 0 ..< d {
            let t = xi[k] - yj[k]
            s += t * t
        }
        return s
    }

    @inline(__always)
    func rowScan(_ i: Int, _ lo: Int, _ hi: Int, _ v: UnsafePointer<Double>, below threshold: Double) -> (value: Double, index: Int) {
        var best = threshold, index = -1
        for j in lo ..< hi {
            let r = cost(i, j) - v[j]
            if r < best { best = r; index = j }
        }
        return (best, index)
    }
}
