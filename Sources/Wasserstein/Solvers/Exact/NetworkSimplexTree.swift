/// The spanning-tree basis of the network simplex and the pivots that move it.
///
/// The transportation problem is a minimum-cost flow on the complete bipartite graph with arcs
/// `i -> j` (source `i` in `0 ..< n`, target `n + j`), plus one root node `r = n + m` and one
/// artificial arc per node joining it to `r`. A basis is a spanning tree of these `n + m + 1`
/// nodes. It is kept *strongly feasible*: every tree arc that carries zero flow points towards
/// the root. Choosing the leaving arc by the "last blocking arc on the cycle, walked from the
/// apex in the direction of flow" rule keeps that property, and with it no sequence of
/// degenerate pivots can repeat a basis, so the method terminates whatever the ties
/// (Cunningham 1976; Ahuja, Magnanti & Orlin, ch. 11).
///
/// Storage is per node (the arc to the parent, its flow and direction), never per arc: a
/// non-tree arc always carries zero flow because no arc has an upper bound. Memory is
/// therefore `O(n + m)`; only the optional cost matrix is `O(nm)`.
///
/// Conventions: node potentials `pi` with reduced costs `C_ij + pi_i - pi_{n+j}`, so the dual
/// potentials of the transport problem are `f_i = -pi_i` and `g_j = pi_{n+j}`. Artificial arcs
/// are never priced, so once out of the tree they stay out. Arcs pointing up carry cost 0,
/// arcs pointing down (from the root, only needed when the masses differ by round-off) a cost
/// larger than any path through real arcs, so that routing through the root never pays.
final class NetworkSimplexTree {
    let n: Int
    let m: Int
    let nodeCount: Int
    let root: Int
    /// Number of real arcs `n * m`; artificial arc of node `u` has id `realArcCount + u`.
    let realArcCount: Int

    let parent: UnsafeMutablePointer<Int>
    /// The id of the arc between a node and its parent.
    let pred: UnsafeMutablePointer<Int>
    /// True when the arc to the parent is oriented from the node to the parent.
    let up: UnsafeMutablePointer<Bool>
    /// Flow on the arc to the parent.
    let flow: UnsafeMutablePointer<Double>
    /// Preorder successor (a circular list through the root) and predecessor.
    let thread: UnsafeMutablePointer<Int>
    let revThread: UnsafeMutablePointer<Int>
    let depth: UnsafeMutablePointer<Int>
    let pi: UnsafeMutablePointer<Double>
    /// Scratch buffers, one slot per node.
    let order: UnsafeMutablePointer<Int>
    let stem: UnsafeMutablePointer<Int>

    /// Cost of an artificial arc that points away from the root.
    var downwardArcCost = 1.0
    /// Where the next block search starts (row, column).
    var nextRow = 0
    var nextColumn = 0

    init(sourceCount n: Int, targetCount m: Int) {
        self.n = n
        self.m = m
        nodeCount = n + m + 1
        root = n + m
        realArcCount = n * m
        parent = .allocate(capacity: nodeCount)
        pred = .allocate(capacity: nodeCount)
        up = .allocate(capacity: nodeCount)
        flow = .allocate(capacity: nodeCount)
        thread = .allocate(capacity: nodeCount)
        revThread = .allocate(capacity: nodeCount)
        depth = .allocate(capacity: nodeCount)
        pi = .allocate(capacity: nodeCount)
        order = .allocate(capacity: nodeCount)
        stem = .allocate(capacity: nodeCount)
        parent.initialize(repeating: -1, count: nodeCount)
        pred.initialize(repeating: -1, count: nodeCount)
        up.initialize(repeating: true, count: nodeCount)
        flow.initialize(repeating: 0, count: nodeCount)
        thread.initialize(repeating: 0, count: nodeCount)
        revThread.initialize(repeating: 0, count: nodeCount)
        depth.initialize(repeating: 0, count: nodeCount)
        pi.initialize(repeating: 0, count: nodeCount)
        order.initialize(repeating: 0, count: nodeCount)
        stem.initialize(repeating: 0, count: nodeCount)
    }

    deinit {
        parent.deallocate(); pred.deallocate(); up.deallocate(); flow.deallocate()
        thread.deallocate(); revThread.deallocate(); depth.deallocate(); pi.deallocate()
        order.deallocate(); stem.deallocate()
    }

    // MARK: - Initial bases

    /// The textbook start: every source sends its mass to the root, the root sends every
    /// target its demand, all through artificial arcs. Always strongly feasible.
    func initializeArtificial(sourceWeights a: UnsafePointer<Double>, targetWeights b: UnsafePointer<Double>) {
        parent[root] = -1
        pred[root] = -1
        depth[root] = 0
        var previous = root
        for u in 0 ..< root {
            parent[u] = root
            pred[u] = realArcCount + u
            if u < n {
                up[u] = true
                flow[u] = a[u]
            } else if b[u - n] > 0 {
                up[u] = false
                flow[u] = b[u - n]
            } else {
                up[u] = true
                flow[u] = 0
            }
            depth[u] = 1
            thread[previous] = u
            revThread[u] = previous
            previous = u
        }
        thread[previous] = root
        revThread[root] = previous
        nextRow = 0
        nextColumn = 0
    }

    /// A greedy start: each source in turn ships to its nearest targets that still have room.
    ///
    /// The support of such a plan has no cycle (a target saturated by one source receives
    /// nothing later, so the earliest source on any cycle would contradict it), hence it is a
    /// forest of positive-flow arcs. Each of its trees hangs from the root by the artificial arc
    /// of one node: the node left with unshipped supply or unmet demand if there is one (that
    /// arc carries the round-off imbalance of the masses), otherwise any node through an upward
    /// arc with zero flow. Zero-flow arcs then all point up, so the basis is strongly feasible.
    ///
    /// Cost: `O((n + m) m)` cost evaluations, about one pricing sweep.
    func initializeGreedy<Costs: ArcCosts>(costs: Costs, sourceWeights a: UnsafePointer<Double>,
                                           targetWeights b: UnsafePointer<Double>) {
        let remaining = UnsafeMutablePointer<Double>.allocate(capacity: m)
        defer { remaining.deallocate() }
        remaining.initialize(from: b, count: m)
        // Targets with room left, kept compact so that scans skip the full ones.
        let open = UnsafeMutablePointer<Int>.allocate(capacity: m)
        defer { open.deallocate() }
        var openCount = 0
        for j in 0 ..< m where b[j] > 0 {
            open[openCount] = j
            openCount += 1
        }
        var edgeSource = [Int](), edgeTarget = [Int](), edgeFlow = [Double]()
        edgeSource.reserveCapacity(n + m)
        edgeTarget.reserveCapacity(n + m)
        edgeFlow.reserveCapacity(n + m)
        // Unshipped supply (sources) or unmet demand (targets) after the greedy pass.
        let residual = UnsafeMutablePointer<Double>.allocate(capacity: root)
        defer { residual.deallocate() }
        residual.initialize(repeating: 0, count: root)

        for i in 0 ..< n {
            var supply = a[i]
            while supply > 0 && openCount > 0 {
                var bestK = 0
                var bestCost = Double.infinity
                for k in 0 ..< openCount {
                    let c = costs.cost(i, open[k])
                    if c < bestCost { bestCost = c; bestK = k }
                }
                let j = open[bestK]
                let q = min(supply, remaining[j])
                edgeSource.append(i)
                edgeTarget.append(j)
                edgeFlow.append(q)
                supply -= q
                remaining[j] -= q
                if remaining[j] <= 0 {
                    remaining[j] = 0
                    openCount -= 1
                    open[bestK] = open[openCount]
                }
            }
            if supply > 0 { residual[i] = supply }
        }
        for k in 0 ..< openCount { residual[n + open[k]] = remaining[open[k]] }
        buildTree(edgeSource: edgeSource, edgeTarget: edgeTarget, edgeFlow: edgeFlow, residual: residual)
    }

    /// Hangs a forest of positive-flow arcs from the root (see ``initializeGreedy``).
    private func buildTree(edgeSource: [Int], edgeTarget: [Int], edgeFlow: [Double], residual: UnsafePointer<Double>) {
        let edgeCount = edgeSource.count
        // Compressed adjacency of the forest.
        var start = [Int](repeating: 0, count: root + 1)
        for e in 0 ..< edgeCount {
            start[edgeSource[e] + 1] += 1
            start[n + edgeTarget[e] + 1] += 1
        }
        for u in 0 ..< root { start[u + 1] += start[u] }
        var fill = start
        var adjacent = [Int](repeating: 0, count: 2 * edgeCount)
        for e in 0 ..< edgeCount {
            adjacent[fill[edgeSource[e]]] = e
            fill[edgeSource[e]] += 1
            adjacent[fill[n + edgeTarget[e]]] = e
            fill[n + edgeTarget[e]] += 1
        }
        var visited = [Bool](repeating: false, count: root)
        parent[root] = -1
        pred[root] = -1
        depth[root] = 0
        var last = root
        var stackCount = 0
        let stack = order

        func hang(_ h: Int) {
            visited[h] = true
            parent[h] = root
            pred[h] = realArcCount + h
            let r = residual[h]
            if r > 0 {
                // Leftover supply drains up into the root; unmet demand comes down from it.
                up[h] = h < n
                flow[h] = r
            } else {
                up[h] = true
                flow[h] = 0
            }
            depth[h] = 1
            stack[0] = h
            stackCount = 1
            while stackCount > 0 {
                stackCount -= 1
                let x = stack[stackCount]
                thread[last] = x
                revThread[x] = last
                last = x
                for k in start[x] ..< start[x + 1] {
                    let e = adjacent[k]
                    let s = edgeSource[e], t = n + edgeTarget[e]
                    let child = x == s ? t : s
                    if visited[child] { continue }
                    visited[child] = true
                    parent[child] = x
                    pred[child] = s * m + edgeTarget[e]
                    up[child] = child == s
                    flow[child] = edgeFlow[e]
                    depth[child] = depth[x] + 1
                    stack[stackCount] = child
                    stackCount += 1
                }
            }
        }
        for u in 0 ..< root where residual[u] > 0 && !visited[u] { hang(u) }
        for u in 0 ..< root where !visited[u] { hang(u) }
        thread[last] = root
        revThread[root] = last
        nextRow = 0
        nextColumn = 0
    }

    // MARK: - Potentials

    /// The cost of tree arc `pred[u]`.
    @inline(__always)
    func treeArcCost<Costs: ArcCosts>(_ u: Int, _ costs: Costs) -> Double {
        let e = pred[u]
        if e >= realArcCount { return up[u] ? 0 : downwardArcCost }
        // A real arc joins source i and target j; one of them is u.
        if u < n { return costs.cost(u, parent[u] - n) }
        return costs.cost(parent[u], u - n)
    }

    /// Recomputes every potential and depth from the tree, in preorder, so that tree arcs have
    /// reduced cost exactly zero. Removes the drift that incremental updates accumulate.
    func computePotentials<Costs: ArcCosts>(_ costs: Costs) {
        pi[root] = 0
        depth[root] = 0
        var x = thread[root]
        while x != root {
            let p = parent[x]
            let c = treeArcCost(x, costs)
            // Tree arc s -> t has c + pi_s - pi_t = 0.
            pi[x] = up[x] ? pi[p] - c : pi[p] + c
            depth[x] = depth[p] &+ 1
            x = thread[x]
        }
    }

    // MARK: - Pricing

    /// Block search (Grigoriadis 1986): scan arcs in blocks of `blockSize`, from where the last
    /// search stopped, and return the most negative reduced cost of the first block that has one
    /// below `-tolerance`; `nil` when no arc does, that is at optimality.
    @inline(__always)
    func findEnteringArc<Costs: ArcCosts>(_ costs: Costs, blockSize: Int, tolerance: Double)
        -> (row: Int, column: Int, reducedCost: Double)?
    {
        let v = UnsafePointer(pi + n)
        var best = -tolerance
        var bestRow = -1, bestColumn = -1
        var i = nextRow, j = nextColumn
        var scanned = 0
        var blockLeft = blockSize
        let total = realArcCount
        while scanned < total {
            let length = min(m - j, blockLeft)
            // Reduced cost C_ij - v_j + pi_i below best, i.e. C_ij - v_j below best - pi_i.
            let u = pi[i]
            let r = costs.rowScan(i, j, j + length, v, below: best - u)
            if r.index >= 0 {
                best = r.value + u
                bestRow = i
                bestColumn = r.index
            }
            scanned &+= length
            blockLeft &-= length
            j &+= length
            if j == m {
                j = 0
                i &+= 1
                if i == n { i = 0 }
            }
            if blockLeft == 0 {
                if bestRow >= 0 { break }
                blockLeft = blockSize
            }
        }
        nextRow = i
        nextColumn = j
        if bestRow < 0 { return nil }
        // Recompute from scratch: rounding of (value - pi_i) + pi_i can differ in the last bit.
        let reducedCost = costs.cost(bestRow, bestColumn) - v[bestColumn] + pi[bestRow]
        if !(reducedCost < 0) { return nil }
        return (bestRow, bestColumn, reducedCost)
    }

    /// Whether arc `i -> j` is a tree arc.
    @inline(__always)
    func isTreeArc(_ i: Int, _ j: Int) -> Bool {
        let e = i * m + j
        return pred[i] == e || pred[n + j] == e
    }

    // MARK: - Pivot

    /// Brings arc `i -> j` (reduced cost `reducedCost < 0`) into the tree.
    ///
    /// Returns false only if the cycle has no blocking arc, which cannot happen for a
    /// transportation problem (the bipartite graph has no directed cycle).
    func pivot(row i: Int, column j: Int, reducedCost: Double) -> Bool {
        let s = i, t = n + j
        // The apex of the cycle: the nearest common ancestor of s and t.
        var a = s, b = t
        while a != b {
            let da = depth[a], db = depth[b]
            if da >= db { a = parent[a] }
            if db >= da { b = parent[b] }
        }
        let join = a

        // Flow goes s -> t on the entering arc, then t up to the apex and down to s.
        // Leaving arc: the last blocking arc met when walking the cycle from the apex in the
        // direction of flow (down the s side, then up the t side); this keeps the tree strongly
        // feasible. On the s side, upward arcs lose flow; on the t side, downward arcs do.
        var delta = Double.infinity
        var leaving = -1
        var onSourceSide = true
        var u = s
        while u != join {
            if up[u] {
                let d = flow[u]
                if d < delta { delta = d; leaving = u }
            }
            u = parent[u]
        }
        u = t
        while u != join {
            if !up[u] {
                let d = flow[u]
                if d <= delta { delta = d; leaving = u; onSourceSide = false }
            }
            u = parent[u]
        }
        if leaving < 0 { return false }

        if delta > 0 {
            u = s
            while u != join {
                flow[u] += up[u] ? -delta : delta
                u = parent[u]
            }
            u = t
            while u != join {
                flow[u] += up[u] ? delta : -delta
                u = parent[u]
            }
            // The blocking arc ends exactly at zero; guard against a subtraction of equal
            // values rounding to -0 or a tiny negative on other arcs of equal flow.
            flow[leaving] = 0
        }

        // The subtree below the leaving arc is re-hung from the entering arc: u_in is the
        // entering arc's end inside that subtree, v_in the other end.
        let uIn = onSourceSide ? s : t
        let vIn = onSourceSide ? t : s
        // Potential shift that makes the entering arc's reduced cost zero.
        let sigma = onSourceSide ? -reducedCost : reducedCost

        // Stem: the path u_in = w_0, w_1, ..., w_k = leaving (old parent pointers).
        var k = 0
        stem[0] = uIn
        u = uIn
        while u != leaving {
            u = parent[u]
            k &+= 1
            stem[k] = u
        }

        // New preorder of the moved subtree: sub(w_0), then for each i >= 1 the part of
        // sub(w_i) outside sub(w_{i-1}) (w_i up to just before w_{i-1}, then what follows
        // the end of sub(w_{i-1}) while still deeper than w_i).
        var count = 0
        var x = uIn
        let d0 = depth[uIn]
        repeat {
            order[count] = x
            count &+= 1
            x = thread[x]
        } while depth[x] > d0
        var tail = x
        var level = 1
        while level <= k {
            let w = stem[level], previous = stem[level - 1]
            let dw = depth[w]
            x = w
            while x != previous {
                order[count] = x
                count &+= 1
                x = thread[x]
            }
            x = tail
            while depth[x] > dw {
                order[count] = x
                count &+= 1
                x = thread[x]
            }
            tail = x
            level &+= 1
        }
        let after = tail
        let before = revThread[leaving]

        // Cut the old subtree out of the thread and splice the new order in right after v_in.
        thread[before] = after
        revThread[after] = before
        let next = thread[vIn]
        thread[vIn] = order[0]
        revThread[order[0]] = vIn
        var c = 0
        while c < count - 1 {
            thread[order[c]] = order[c + 1]
            revThread[order[c + 1]] = order[c]
            c &+= 1
        }
        thread[order[count - 1]] = next
        revThread[next] = order[count - 1]

        // Reverse the stem: each w_i becomes the child of w_{i-1} through w_{i-1}'s old arc.
        level = k
        while level >= 1 {
            let w = stem[level], child = stem[level - 1]
            parent[w] = child
            pred[w] = pred[child]
            up[w] = !up[child]
            flow[w] = flow[child]
            level &-= 1
        }
        parent[uIn] = vIn
        pred[uIn] = i * m + j
        up[uIn] = onSourceSide
        flow[uIn] = delta

        // Depths and potentials of the moved subtree (parents come before children).
        c = 0
        while c < count {
            let y = order[c]
            depth[y] = depth[parent[y]] &+ 1
            pi[y] += sigma
            c &+= 1
        }
        return true
    }

    // MARK: - Driver

    /// Pivots until no arc prices out or `maximumPivots` pivots were made.
    ///
    /// - Returns: the number of pivots and whether optimality was proven.
    func optimize<Costs: ArcCosts>(_ costs: Costs, blockSize: Int, tolerance: Double, maximumPivots: Int)
        -> (pivots: Int, optimal: Bool, failed: Bool)
    {
        computePotentials(costs)
        var tolerance = tolerance
        // Exact recomputation at this interval bounds the drift of incremental updates.
        let refreshInterval = max(1000, nodeCount)
        var pivots = 0
        var sinceRefresh = 0
        while true {
            guard let entering = findEnteringArc(costs, blockSize: blockSize, tolerance: tolerance) else {
                if sinceRefresh == 0 { return (pivots, true, false) }
                // Confirm optimality against exact potentials.
                computePotentials(costs)
                sinceRefresh = 0
                continue
            }
            if isTreeArc(entering.row, entering.column) {
                // A tree arc has reduced cost zero up to round-off; it can price out only through
                // drift (then fresh potentials fix it) or when round-off on large potentials
                // exceeds the tolerance (then the tolerance must rise to the noise it reveals).
                if sinceRefresh == 0 {
                    let raised = max(2 * tolerance, -2 * entering.reducedCost)
                    guard raised.isFinite, raised > tolerance else { return (pivots, false, true) }
                    tolerance = raised
                }
                computePotentials(costs)
                sinceRefresh = 0
                continue
            }
            if pivots >= maximumPivots { return (pivots, false, false) }
            guard pivot(row: entering.row, column: entering.column, reducedCost: entering.reducedCost) else {
                return (pivots, false, true)
            }
            pivots &+= 1
            sinceRefresh &+= 1
            if sinceRefresh >= refreshInterval {
                computePotentials(costs)
                sinceRefresh = 0
            }
        }
    }

    /// The positive-flow real arcs of the tree and their total cost `sum flow * C`.
    func plan<Costs: ArcCosts>(_ costs: Costs) -> (entries: [TransportPlan.Entry], cost: Double) {
        var entries = [TransportPlan.Entry]()
        entries.reserveCapacity(n + m)
        var total = 0.0
        for u in 0 ..< root where pred[u] < realArcCount && flow[u] > 0 {
            let i = u < n ? u : parent[u]
            let j = u < n ? parent[u] - n : u - n
            entries.append(TransportPlan.Entry(source: i, target: j, mass: flow[u]))
            total += flow[u] * costs.cost(i, j)
        }
        return (entries, total)
    }

    /// The dual potentials `f_i = -pi_i`, `g_j = pi_{n+j}` (the tree's own normalisation,
    /// `pi_root = 0`; any constant moved from `f` to `g` is equally optimal).
    func potentials() -> DualPotentials {
        var f = [Double](repeating: 0, count: n)
        var g = [Double](repeating: 0, count: m)
        for i in 0 ..< n { f[i] = -pi[i] }
        for j in 0 ..< m { g[j] = pi[n + j] }
        return DualPotentials(f: f, g: g)
    }
}
