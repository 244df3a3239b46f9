/// A k-d tree over a point cloud of dimension 1 to 3, for the truncated soft-mins of
/// ``MultiscalePointCloudGeometry``.
///
/// Why a tree and this layout: a truncated soft-min needs, for a group of rows, the columns that
/// can carry mass; a tree answers that level by level (a node far enough from the rows, given the
/// largest potential below it, is dropped with all its points) and its leaves hold contiguous
/// ranges of points, so the kept columns come out as a few long runs. The points are stored in
/// tree order, by axis, so a run is contiguous memory for the cost loops. Nodes are numbered in
/// pre-order (a parent before its children), so bottom-up passes run over the nodes backwards.
struct PointTree: Sendable {
    /// The number of points.
    let count: Int
    /// `D`, 1 to 3.
    let dimension: Int
    /// `order[p]`: the index in the cloud of the point at tree position `p`.
    let order: [Int]
    /// Coordinates in tree order, by axis: axis `k` of position `p` at `k * count + p`.
    let axes: [Double]
    /// Node `v` holds the positions `start[v] ..< end[v]`.
    let start: [Int]
    let end: [Int]
    /// The children of node `v` (the first holds the lower positions), `-1` for a leaf.
    let firstChild: [Int]
    let secondChild: [Int]
    /// The node's bounding box of its points, axis `k` at `3 * v + k` (unused axes 0).
    let boxLow: [Double]
    let boxHigh: [Double]
    /// The leaves, in tree order (their ranges tile `0 ..< count`).
    let leaves: [Int]

    /// The largest number of points in a leaf.
    static let defaultLeafSize = 16

    /// Builds the tree: each node splits its points at the median of its bounding box's widest axis.
    init(_ cloud: PointCloud, leafSize: Int = PointTree.defaultLeafSize) {
        let n = cloud.count, d = cloud.dimension
        count = n
        dimension = d
        var order = Array(0 ..< n)
        var start = [Int](), end = [Int](), first = [Int](), second = [Int]()
        var low = [Double](), high = [Double](), leaves = [Int]()
        let coordinates = cloud.coordinates
        // Depth-first with an explicit stack; a node's children are pushed after it is numbered.
        var stack: [(lo: Int, hi: Int, parent: Int, isSecond: Bool)] = [(0, n, -1, false)]
        while let (lo, hi, parent, isSecond) = stack.popLast() {
            let v = start.count
            if parent >= 0 {
                if isSecond { second[parent] = v } else { first[parent] = v }
            }
            start.append(lo)
            end.append(hi)
            first.append(-1)
            second.append(-1)
            var lower = [0.0, 0.0, 0.0], upper = [0.0, 0.0, 0.0]
            for k in 0 ..< d {
                var a = Double.infinity, b = -Double.infinity
                for p in lo ..< hi {
                    let c = coordinates[order[p] * d + k]
                    a = Swift.min(a, c)
                    b = Swift.max(b, c)
                }
                lower[k] = a
                upper[k] = b
            }
            low += lower
            high += upper
            var axis = 0
            for k in 1 ..< Swift.max(1, d) where upper[k] - lower[k] > upper[axis] - lower[axis] { axis = k }
            if hi - lo <= leafSize || upper[axis] == lower[axis] {
                leaves.append(v)
                continue
            }
            let mid = lo + (hi - lo) / 2
            Self.select(&order, lo: lo, hi: hi, nth: mid) { coordinates[$0 * d + axis] }
            // Pushed second child first, so the first child is numbered next (pre-order).
            stack.append((mid, hi, v, true))
            stack.append((lo, mid, v, false))
        }
        // Leaves were appended in pre-order, which for this traversal is tree (position) order.
        self.order = order
        self.start = start
        self.end = end
        self.firstChild = first
        self.secondChild = second
        self.boxLow = low
        self.boxHigh = high
        self.leaves = leaves
        var axes = [Double](repeating: 0, count: n * d)
        for p in 0 ..< n {
            for k in 0 ..< d { axes[k * n + p] = coordinates[order[p] * d + k] }
        }
        self.axes = axes
    }

    /// Rearranges `order[lo ..< hi]` so that the element at `nth` has the key it would have
    /// sorted, the ones before it no larger and the ones after no smaller (Hoare's selection).
    private static func select(_ order: inout [Int], lo: Int, hi: Int, nth: Int, key: (Int) -> Double) {
        var lo = lo, hi = hi - 1
        while lo < hi {
            let pivot = key(order[lo + (hi - lo) / 2])
            var i = lo, j = hi
            while i <= j {
                while key(order[i]) < pivot { i += 1 }
                while key(order[j]) > pivot { j -= 1 }
                if i <= j {
                    order.swapAt(i, j)
                    i += 1
                    j -= 1
                }
            }
            if nth <= j { hi = j } else if nth >= i { lo = i } else { return }
        }
    }

    /// The number of nodes.
    var nodeCount: Int { start.count }

    /// The smallest squared distance between the boxes of node `v` of this tree and node `w` of `other`.
    @inline(__always)
    func minimumSquaredDistance(_ v: Int, to other: PointTree, _ w: Int) -> Double {
        var s = 0.0
        for k in 0 ..< dimension {
            let gap = Swift.max(0, Swift.max(boxLow[3 * v + k] - other.boxHigh[3 * w + k],
                                             other.boxLow[3 * w + k] - boxHigh[3 * v + k]))
            s += gap * gap
        }
        return s
    }

    /// The largest squared distance between a point of node `v`'s box and one of node `w`'s of `other`.
    @inline(__always)
    func maximumSquaredDistance(_ v: Int, to other: PointTree, _ w: Int) -> Double {
        var s = 0.0
        for k in 0 ..< dimension {
            let span = Swift.max(boxHigh[3 * v + k] - other.boxLow[3 * w + k], other.boxHigh[3 * w + k] - boxLow[3 * v + k])
            s += span * span
        }
        return s
    }

    /// The largest of `values` (in tree order) under every node, bottom-up.
    func nodeMaxima(_ values: [Double]) -> [Double] {
        var top = [Double](repeating: -Double.infinity, count: nodeCount)
        for v in stride(from: nodeCount - 1, through: 0, by: -1) {
            if firstChild[v] < 0 {
                var m = -Double.infinity
                for p in start[v] ..< end[v] { m = Swift.max(m, values[p]) }
                top[v] = m
            } else {
                top[v] = Swift.max(top[firstChild[v]], top[secondChild[v]])
            }
        }
        return top
    }
}
