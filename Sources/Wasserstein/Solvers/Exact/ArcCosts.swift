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
    /// The minimum of `C_ij - v_j` over `j in lo ..< hi` (non-empty) and the first `j` attaining it.
    func rowMinimum(_ i: Int, _ lo: Int, _ hi: Int, _ v: UnsafePointer<Double>) -> (value: Double, index: Int)
}

/// Scans `count` values `value(k)` for the minimum and its first index, two lanes at a time so
/// that the compare chain is not one long dependency.
@inline(__always)
func scanMinimum(count: Int, _ value: (Int) -> Double) -> (value: Double, index: Int) {
    var best0 = Double.infinity, best1 = Double.infinity
    var index0 = 0, index1 = 1
    var k = 0
    while k + 1 < count {
        let v0 = value(k), v1 = value(k + 1)
        if v0 < best0 { best0 = v0; index0 = k }
        if v1 < best1 { best1 = v1; index1 = k + 1 }
        k += 2
    }
    if k < count {
        let v0 = value(k)
        if v0 < best0 { best0 = v0; index0 = k }
    }
    if best1 < best0 || (best1 == best0 && index1 < index0) { return (best1, index1) }
    return (best0, index0)
}

/// Costs read from a dense row-major `n x m` matrix.
struct MatrixArcCosts: ArcCosts {
    let values: UnsafePointer<Double>
    let rows: Int
    let columns: Int

    @inline(__always)
    func cost(_ i: Int, _ j: Int) -> Double { values[i &* columns &+ j] }

    @inline(__always)
    func rowMinimum(_ i: Int, _ lo: Int, _ hi: Int, _ v: UnsafePointer<Double>) -> (value: Double, index: Int) {
        let row = values + (i &* columns &+ lo)
        let vv = v + lo
        let r = scanMinimum(count: hi - lo) { k in row[k] - vv[k] }
        return (r.value, r.index + lo)
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
    func rowMinimum(_ i: Int, _ lo: Int, _ hi: Int, _ v: UnsafePointer<Double>) -> (value: Double, index: Int) {
        let p = x0[i], q = x1[i]
        let a = y0 + lo, b = y1 + lo, vv = v + lo
        let r = scanMinimum(count: hi - lo) { k in
            let s = p - a[k], t = q - b[k]
            return (s * s + t * t) - vv[k]
        }
        return (r.value, r.index + lo)
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
    func rowMinimum(_ i: Int, _ lo: Int, _ hi: Int, _ v: UnsafePointer<Double>) -> (value: Double, index: Int) {
        let r = scanMinimum(count: hi - lo) { k in cost(i, lo + k) - v[lo + k] }
        return (r.value, r.index + lo)
    }
}
