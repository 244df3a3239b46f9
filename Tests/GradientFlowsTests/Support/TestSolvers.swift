import Wasserstein

/// Exact W2 between two uniform clouds of equal size by the Hungarian algorithm (shortest
/// augmenting paths with potentials, O(n^3)). A test-only second solver: the optimal plan of
/// such a problem is a permutation (Birkhoff), so the assignment optimum is the exact W2^2.
struct AssignmentSolver: TransportSolver {
    func solve(_ problem: TransportProblem) throws -> TransportResult {
        let x = problem.source, y = problem.target
        let n = x.count
        guard y.count == n else { throw WassersteinError.unsupported("assignment solver: equal sizes only") }
        let w = x.weights[0]
        for v in x.weights + y.weights where abs(v - w) > 1e-12 * w {
            throw WassersteinError.unsupported("assignment solver: uniform weights only")
        }
        let cost = try SquaredEuclideanCost.matrix(source: x, target: y).values
        let assignment = hungarian(cost, n)
        var total = 0.0
        var entries = [TransportPlan.Entry]()
        for i in 0 ..< n {
            total += w * cost[i * n + assignment[i]]
            entries.append(.init(source: i, target: assignment[i], mass: w))
        }
        return TransportResult(method: .exact, status: .optimal, cost: total,
                               plan: TransportPlan(sourceCount: n, targetCount: n, entries: entries))
    }

    /// Row i -> column assignment[i] minimising the sum of costs (e-maxx formulation, 1-based).
    func hungarian(_ c: [Double], _ n: Int) -> [Int] {
        var u = [Double](repeating: 0, count: n + 1), v = [Double](repeating: 0, count: n + 1)
        var p = [Int](repeating: 0, count: n + 1), way = [Int](repeating: 0, count: n + 1)
        for i in 1 ... n {
            p[0] = i
            var j0 = 0
            var minv = [Double](repeating: .infinity, count: n + 1)
            var used = [Bool](repeating: false, count: n + 1)
            repeat {
                used[j0] = true
                let i0 = p[j0]
                var delta = Double.infinity
                var j1 = 0
                for j in 1 ... n where !used[j] {
                    let cur = c[(i0 - 1) * n + (j - 1)] - u[i0] - v[j]
                    if cur < minv[j] { minv[j] = cur; way[j] = j0 }
                    if minv[j] < delta { delta = minv[j]; j1 = j }
                }
                for j in 0 ... n {
                    if used[j] { u[p[j]] += delta; v[j] -= delta } else { minv[j] -= delta }
                }
                j0 = j1
            } while p[j0] != 0
            repeat {
                let j1 = way[j0]
                p[j0] = p[j1]
                j0 = j1
            } while j0 != 0
        }
        var assignment = [Int](repeating: 0, count: n)
        for j in 1 ... n where p[j] != 0 { assignment[p[j] - 1] = j - 1 }
        return assignment
    }
}

/// Exact W2 in one dimension between uniform clouds of equal size: match sorted orders
/// (Docs/Theory.md 1.3). A test-only solver.
struct SortedMatchingSolver: TransportSolver {
    func solve(_ problem: TransportProblem) throws -> TransportResult {
        let x = problem.source, y = problem.target
        guard x.dimension == 1, x.count == y.count else { throw WassersteinError.unsupported("sorted matching: 1-D, equal sizes") }
        let n = x.count
        let w = x.weights[0]
        let ix = (0 ..< n).sorted { x.coordinates[$0] < x.coordinates[$1] }
        let iy = (0 ..< n).sorted { y.coordinates[$0] < y.coordinates[$1] }
        var total = 0.0
        var entries = [TransportPlan.Entry]()
        for r in 0 ..< n {
            let t = x.coordinates[ix[r]] - y.coordinates[iy[r]]
            total += w * t * t
            entries.append(.init(source: ix[r], target: iy[r], mass: w))
        }
        return TransportResult(method: .sorted, status: .optimal, cost: total,
                               plan: TransportPlan(sourceCount: n, targetCount: n, entries: entries))
    }
}

/// Deterministic samples: standard-normal quantiles at (i + 1/2)/n (Acklam-free: by bisection on erf).
enum Samples {
    static func normalQuantiles(_ n: Int) -> [Double] {
        (0 ..< n).map { i in inverseNormal((Double(i) + 0.5) / Double(n)) }
    }

    static func inverseNormal(_ p: Double) -> Double {
        var lo = -40.0, hi = 40.0
        for _ in 0 ..< 200 {
            let mid = 0.5 * (lo + hi)
            if 0.5 * erfc(-mid / 2.0.squareRoot()) < p { lo = mid } else { hi = mid }
        }
        return 0.5 * (lo + hi)
    }

    /// `n` points of N(mean, diag(std^2)) from a seeded generator, row-major.
    static func gaussian(count n: Int, mean: [Double], standardDeviation: [Double], seed: UInt64) -> [Double] {
        var rng = Xoshiro256StarStar(seed: seed)
        let d = mean.count
        var out = [Double](repeating: 0, count: n * d)
        for i in 0 ..< n { for k in 0 ..< d { out[i * d + k] = mean[k] + standardDeviation[k] * rng.nextGaussian() } }
        return out
    }
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
