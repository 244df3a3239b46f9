/// Quantities rebuilt from entropic dual potentials: the plan and the envelope gradient.
///
/// Everything here uses `P_ij = a_i b_j exp((f_i + g_j - C_ij) / eps)` recomputed row by row
/// (`n * m` exponentials, no `n x m` storage), so it applies to potentials from any source:
/// this solver, a warm start, or another library using the same convention.
internal enum EntropicPlan {
    /// Calls `body(i, row)` with `row[j] = P_ij` for every source index, rows split over cores.
    /// `body` must only write memory owned by row `i`.
    static func forEachRow(_ problem: TransportProblem, potentials: DualPotentials, epsilon: Double,
                           _ body: (Int, UnsafeMutablePointer<Double>) -> Void) {
        // Rows of a problem whose costs approach the Double range are formed on the exactly
        // rescaled problem, where f + g - C cannot overflow (see EntropicScale).
        let scale = EntropicScale(unchecked: problem)
        let potentials = scale.scaledDown(potentials), epsilon = epsilon / scale.costUnit
        let problem = scale.scaled(problem)
        let source = problem.source, target = problem.target
        let n = source.count, m = target.count
        let invEps = 1 / epsilon
        source.coordinates.withUnsafeBufferPointer { xp in
            target.coordinates.withUnsafeBufferPointer { yp in
                potentials.g.withUnsafeBufferPointer { gp in
                    let geo = EntropicGeometry(x: xp.baseAddress!, y: yp.baseAddress!, n: n, m: m, d: source.dimension)
                    Parallel.forEachChunk(count: n, minimumChunk: Swift.max(1, 8_192 / Swift.max(1, m))) { range in
                        let row = UnsafeMutablePointer<Double>.allocate(capacity: m)
                        defer { row.deallocate() }
                        for i in range {
                            geo.kernelRow(i, alpha: potentials.f[i], beta: gp.baseAddress!, invEps: invEps, out: row, columns: 0 ..< m)
                            let ai = source.weights[i]
                            for j in 0 ..< m { row[j] *= ai * target.weights[j] }
                            body(i, row)
                        }
                    }
                }
            }
        }
    }

    /// The plan as sparse entries; `minimumMass == nil` keeps every entry.
    static func plan(_ problem: TransportProblem, potentials: DualPotentials, epsilon: Double, minimumMass: Double?) -> TransportPlan {
        let n = problem.source.count, m = problem.target.count
        // Rows are produced in parallel; each row writes its own slot, merged in order after.
        var rows = [[TransportPlan.Entry]](repeating: [], count: n)
        rows.withUnsafeMutableBufferPointer { out in
            let base = out.baseAddress!
            forEachRow(problem, potentials: potentials, epsilon: epsilon) { i, row in
                var entries = [TransportPlan.Entry]()
                if let threshold = minimumMass {
                    for j in 0 ..< m where row[j] >= threshold && row[j] > 0 {
                        entries.append(TransportPlan.Entry(source: i, target: j, mass: row[j]))
                    }
                } else {
                    entries.reserveCapacity(m)
                    for j in 0 ..< m { entries.append(TransportPlan.Entry(source: i, target: j, mass: row[j])) }
                }
                (base + i).pointee = entries
            }
        }
        return TransportPlan(sourceCount: n, targetCount: m, entries: rows.flatMap { $0 })
    }

    /// `out[i * D + k] += scale * 2 sum_j P_ij (x_i - y_j)_k`.
    static func accumulateSourceGradient(_ problem: TransportProblem, potentials: DualPotentials, epsilon: Double,
                                         scale: Double, into out: inout [Double]) {
        let d = problem.dimension, m = problem.target.count
        out.withUnsafeMutableBufferPointer { gp in
            let grad = gp.baseAddress!
            problem.target.coordinates.withUnsafeBufferPointer { yp in
                let y = yp.baseAddress!
                forEachRow(problem, potentials: potentials, epsilon: epsilon) { i, row in
                    var mass = 0.0
                    var moment = [Double](repeating: 0, count: d)
                    for j in 0 ..< m {
                        let p = row[j]
                        if p == 0 { continue }
                        mass += p
                        for k in 0 ..< d { moment[k] += p * y[j * d + k] }
                    }
                    for k in 0 ..< d {
                        let xik = problem.source.coordinates[i * d + k]
                        grad[i * d + k] += scale * 2 * (xik * mass - moment[k])
                    }
                }
            }
        }
    }
}

extension SinkhornSolver {
    /// The plan of given potentials, `P_ij = a_i b_j exp((f_i + g_j - C_ij) / eps)`, as a dense
    /// row-major `n x m` array.
    ///
    /// - Throws: ``WassersteinError/dimensionMismatch(expected:actual:)`` when the potentials
    ///   do not fit the problem.
    public func densePlan(_ problem: TransportProblem, potentials: DualPotentials) throws -> [Double] {
        try validate()
        try EntropicPlan.check(potentials, problem)
        _ = try EntropicScale(source: problem.source, target: problem.target, epsilon: epsilon)
        let m = problem.target.count
        var dense = [Double](repeating: 0, count: problem.source.count * m)
        dense.withUnsafeMutableBufferPointer { out in
            let base = out.baseAddress!
            EntropicPlan.forEachRow(problem, potentials: potentials, epsilon: epsilon) { i, row in
                (base + i * m).update(from: row, count: m)
            }
        }
        return dense
    }
}

extension EntropicPlan {
    static func check(_ potentials: DualPotentials, _ problem: TransportProblem) throws {
        guard potentials.f.count == problem.source.count else {
            throw WassersteinError.dimensionMismatch(expected: problem.source.count, actual: potentials.f.count)
        }
        guard potentials.g.count == problem.target.count else {
            throw WassersteinError.dimensionMismatch(expected: problem.target.count, actual: potentials.g.count)
        }
    }
}
