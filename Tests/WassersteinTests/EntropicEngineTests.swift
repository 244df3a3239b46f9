import Foundation
import Testing
@testable import Wasserstein

/// The entropic engine (issue 19, first slice): the online geometry against the stored one
/// through the same driver, the engine against ``SinkhornSolver``, invariants of the
/// divergence, typed errors for bad costs, and honest non-convergence.
@Suite("Entropic engine: driver and geometries")
struct EntropicEngineTests {
    static func relative(_ x: Double, _ y: Double) -> Double { abs(x - y) / Swift.max(abs(x), abs(y), 1e-300) }

    static func maxRelative(_ x: [Double], _ y: [Double], scale: Double) -> Double {
        zip(x, y).map { abs($0 - $1) }.max()! / scale
    }

    @Test("online equals dense through the driver: balanced and symmetric, D = 1, 2, 3, 5, p = 2, 1, 1.5",
          arguments: [(1, 2.0), (2, 2.0), (3, 2.0), (5, 2.0), (2, 1.0), (3, 1.5)])
    func onlineMatchesDense(dimension: Int, power: Double) throws {
        // m = 300 > the tile width: rows span two tiles, one partial.
        let x = try EntropicTestClouds.gaussian(13, dimension: dimension, seed: 11, randomWeights: true)
        let y = try EntropicTestClouds.gaussian(300, dimension: dimension, seed: 12, shift: 0.5)
        let cost = try PointCloudCost(power: power)
        let parameters = try EntropicParameters(epsilon: 0.2, tolerance: 1e-12)
        let problem = try TransportProblem(source: x, target: y)
        let online = try EntropicEngine.solve(problem, parameters: parameters, geometry: EntropicEngine.online(cost))
        let dense = try EntropicEngine.solve(problem, parameters: parameters, geometry: EntropicEngine.dense(cost))
        #expect(online.converged && dense.converged)
        #expect(online.geometry == "online" && dense.geometry == "dense")
        #expect(Self.relative(online.transportCost, dense.transportCost) <= 1e-9)
        #expect(Self.relative(online.regularizedCost, dense.regularizedCost) <= 1e-9)
        let scale = Swift.max(1, dense.f.map(abs).max()!)
        #expect(Self.maxRelative(online.f, dense.f, scale: scale) <= 1e-9)
        #expect(Self.maxRelative(online.g, dense.g, scale: scale) <= 1e-9)
        let selfOnline = try EntropicEngine.solveSelf(x, parameters: parameters, geometry: EntropicEngine.online(cost))
        let selfDense = try EntropicEngine.solveSelf(x, parameters: parameters, geometry: EntropicEngine.dense(cost))
        #expect(selfOnline.converged && selfDense.converged)
        #expect(Self.relative(selfOnline.regularizedCost, selfDense.regularizedCost) <= 1e-9)
        #expect(Self.maxRelative(selfOnline.f, selfDense.f, scale: Swift.max(1, selfDense.f.map(abs).max()!)) <= 1e-9)
    }

    @Test("the engine agrees with SinkhornSolver (cross term and divergence)", arguments: [0.5, 0.05, 0.01])
    func matchesSinkhornSolver(eps: Double) throws {
        let x = try EntropicTestClouds.gaussian(24, seed: 21, randomWeights: true)
        let y = try EntropicTestClouds.gaussian(18, seed: 22, shift: 0.7)
        let problem = try TransportProblem(source: x, target: y)
        let reference = try SinkhornDivergence(epsilon: eps, tolerance: 1e-12, maxIterations: 100_000).evaluate(problem)
        let parameters = try EntropicParameters(epsilon: eps, tolerance: 1e-12, maxIterations: 100_000)
        let engine = try EntropicEngine.divergence(problem, parameters: parameters, geometry: EntropicEngine.online())
        #expect(reference.converged && engine.converged)
        #expect(Self.relative(engine.cross.transportCost, reference.cross.cost) <= 1e-8)
        #expect(Self.relative(engine.cross.regularizedCost, reference.cross.entropic!.regularizedCost) <= 1e-8)
        #expect(abs(engine.divergence - reference.divergence) <= 1e-8 * Swift.max(1, abs(reference.divergence)))
        // Same gauge (<f, a> = <g, b>), so the potentials agree too.
        let f = reference.cross.potentials!.f
        #expect(Self.maxRelative(engine.cross.f, f, scale: Swift.max(1, f.map(abs).max()!)) <= 1e-7)
    }

    @Test("divergence invariants: S(a, a) = 0, symmetry, translation invariance, positivity")
    func divergenceInvariants() throws {
        let x = try EntropicTestClouds.gaussian(20, dimension: 3, seed: 31, randomWeights: true)
        let y = try EntropicTestClouds.gaussian(25, dimension: 3, seed: 32, shift: 0.3)
        let parameters = try EntropicParameters(epsilon: 0.1, tolerance: 1e-12)
        let s = { (p: PointCloud, q: PointCloud) in
            try EntropicEngine.divergence(TransportProblem(source: p, target: q), parameters: parameters,
                                          geometry: EntropicEngine.online())
        }
        let xy = try s(x, y), yx = try s(y, x), xx = try s(x, x)
        #expect(xy.converged && yx.converged && xx.converged)
        #expect(abs(xx.divergence) <= 1e-10)
        #expect(abs(xy.divergence - yx.divergence) <= 1e-10 * Swift.max(1, xy.divergence))
        #expect(xy.divergence > 1e-3)
        let v = [3.0, -2.0, 0.5]
        let moved = try s(x.translated(by: v), y.translated(by: v))
        #expect(abs(moved.divergence - xy.divergence) <= 1e-9 * Swift.max(1, xy.divergence))
    }

    @Test("the row plan of the returned potentials has the marginals to tolerance")
    func planRows() throws {
        let x = try EntropicTestClouds.gaussian(20, seed: 41, randomWeights: true)
        let y = try EntropicTestClouds.gaussian(25, seed: 42)
        let geometry = try OnlinePointCloudGeometry(source: x, target: y)
        var driver = try EntropicSinkhorn(geometry: geometry, problem: .balanced(a: x.weights, b: y.weights),
                                          parameters: EntropicParameters(epsilon: 0.1, tolerance: 1e-11))
        let out = try driver.solve()
        #expect(out.converged)
        var columns = [Double](repeating: 0, count: y.count)
        var rowError = 0.0, transport = 0.0
        let costs = geometry.costMatrix()
        for i in 0 ..< x.count {
            let row = driver.planRow(i)
            rowError += abs(row.reduce(0, +) - x.weights[i])
            for j in 0 ..< y.count { columns[j] += row[j]; transport += row[j] * costs[i * y.count + j] }
        }
        let columnError = zip(columns, y.weights).map { abs($0 - $1) }.reduce(0, +)
        #expect(rowError + columnError <= 1e-10)
        #expect(abs(rowError + columnError - out.marginalError) <= 1e-12)
        #expect(Self.relative(transport, out.transportCost) <= 1e-12)
    }

    @Test("a user cost matrix: the dense geometry solves it, and NaN or infinite costs are typed errors")
    func userCostMatrix() throws {
        // The 2 x 2 cost [[0, 1], [1, 0]] with uniform weights: at small eps the plan is diagonal.
        let geometry = try DenseCostGeometry(costs: [0, 1, 1, 0], sourceCount: 2, targetCount: 2)
        var driver = try EntropicSinkhorn(geometry: geometry, problem: .balanced(a: [0.5, 0.5], b: [0.5, 0.5]),
                                          parameters: EntropicParameters(epsilon: 0.01))
        let out = try driver.solve()
        #expect(out.converged && out.transportCost < 1e-40)
        for bad in [Double.nan, .infinity, -.infinity] {
            #expect(throws: WassersteinError.self) { try DenseCostGeometry(costs: [0, bad, 1, 0], sourceCount: 2, targetCount: 2) }
        }
        #expect(throws: WassersteinError.self) { try DenseCostGeometry(costs: [0, 1, 1], sourceCount: 2, targetCount: 2) }
    }

    @Test("p < 1, NaN or infinite p, and overflowing costs are typed errors", arguments: [0.5, 0.0, -1.0, Double.nan, Double.infinity])
    func badPower(p: Double) throws {
        #expect(throws: WassersteinError.self) { try PointCloudCost(power: p) }
    }

    @Test("coordinates whose costs overflow and an unresolvable epsilon are refused")
    func overflowingCosts() throws {
        let far = try PointCloud(points: [[0, 0], [1e200, 0]])
        #expect(throws: WassersteinError.self) { try OnlinePointCloudGeometry(source: far, target: far) }
        let x = try EntropicTestClouds.gaussian(5, seed: 51)
        let geometry = try OnlinePointCloudGeometry(source: x, target: x, cost: PointCloudCost(power: 3))
        #expect(throws: WassersteinError.self) {
            try EntropicSinkhorn(geometry: geometry, problem: .balanced(a: x.weights, b: x.weights),
                                 parameters: EntropicParameters(epsilon: 1e-20))
        }
    }

    @Test("running out of iterations is reported with the error of the returned plan, never a hang")
    func iterationCap() throws {
        let x = try EntropicTestClouds.gaussian(30, seed: 61)
        let y = try EntropicTestClouds.gaussian(30, seed: 62, shift: 3)
        for cap in [1, 3, 12] {
            let parameters = try EntropicParameters(epsilon: 1e-3, maxIterations: cap)
            let out = try EntropicEngine.solve(TransportProblem(source: x, target: y), parameters: parameters,
                                               geometry: EntropicEngine.online())
            #expect(!out.converged)
            #expect(out.iterations <= cap)
            #expect(out.marginalError > 1e-9 && out.marginalError.isFinite)
            #expect(out.epsilon == 1e-3)
            // The closing update leaves exact rows: the plan's mass is |a|, its cost is bounded.
            #expect(out.transportCost.isFinite && out.transportCost >= 0)
        }
    }

    @Test("the geometry choice: dense when the kernel fits in half the budget, else multiscale for D <= 3, else online")
    func geometryChoice() {
        #expect(SinkhornGeometryKind.automatic(sourceCount: 2000, targetCount: 2000, dimension: 2, byteBudget: 1e9) == .dense)
        #expect(SinkhornGeometryKind.automatic(sourceCount: 100_000, targetCount: 100_000, dimension: 3, byteBudget: 64e9) == .multiscale)
        #expect(SinkhornGeometryKind.automatic(sourceCount: 100_000, targetCount: 100_000, dimension: 4, byteBudget: 64e9) == .online)
        #expect(SinkhornGeometryKind.automatic(sourceCount: 10, targetCount: 10_000, dimension: 3, byteBudget: 1e9) == .dense)
        // 4e6 cells: 32 MB at 8 bytes a pair fits a 100 MB budget, 64 MB at 16 (DenseCostGeometry) does not.
        #expect(SinkhornGeometryKind.automatic(sourceCount: 2000, targetCount: 2000, dimension: 2, byteBudget: 1e8) == .dense)
        #expect(SinkhornGeometryKind.automatic(sourceCount: 2000, targetCount: 2000, dimension: 2, byteBudget: 1e8,
                                               bytesPerCell: 16) == .multiscale)
        // The divergence's self term m x m = 10^8 cells (800 MB) decides.
        #expect(SinkhornGeometryKind.automatic(sourceCount: 10, targetCount: 10_000, dimension: 3, byteBudget: 1e9,
                                               divergence: true) == .multiscale)
        #expect(SinkhornGeometryKind.automatic(sourceCount: 10, targetCount: 10_000, dimension: 3, byteBudget: 2e9,
                                               divergence: true) == .dense)
    }

    @Test("soft-min results do not depend on the estimate passed in (one pass or the exact fallback)")
    func softMinEstimate() throws {
        let x = try EntropicTestClouds.gaussian(10, dimension: 3, seed: 71)
        let y = try EntropicTestClouds.gaussian(600, dimension: 3, seed: 72)
        let geometry = try OnlinePointCloudGeometry(source: x, target: y)
        let g = (0 ..< y.count).map { sin(Double($0)) }
        let logB = y.weights.map { log($0) }
        var results = [[Double]]()
        for estimate in [Double.nan, 0, 1e6, -1e6] {
            var out = [Double](repeating: estimate, count: x.count)
            g.withUnsafeBufferPointer { gb in
                logB.withUnsafeBufferPointer { wb in
                    out.withUnsafeMutableBufferPointer { geometry.softMin(gb, logWeights: wb, epsilon: 0.01, transposed: false, into: $0) }
                }
            }
            results.append(out)
        }
        for r in results.dropFirst() { #expect(Self.maxRelative(r, results[0], scale: 1) <= 1e-13) }
        // Buffers of the wrong length give NaN, never an out-of-bounds access.
        var out = [Double](repeating: 0, count: x.count)
        let short = Array(g.dropLast())
        short.withUnsafeBufferPointer { gb in
            logB.withUnsafeBufferPointer { wb in
                out.withUnsafeMutableBufferPointer { geometry.softMin(gb, logWeights: wb, epsilon: 0.01, transposed: false, into: $0) }
            }
        }
        #expect(out.allSatisfy { $0.isNaN })
    }

    @Test("entropic OT between two 1-D Gaussians on a fine grid equals its closed form")
    func gaussianClosedForm() throws {
        // For N(m1, A) and N(m2, B) the optimal entropic plan is Gaussian with covariance c:
        // minimising |m1 - m2|^2 + A + B - 2c - (eps / 2) log(1 - c^2 / (A B)) (the KL term is the
        // mutual information) gives 2c^2 + eps c - 2AB = 0 (Janati et al. 2020; Mallasto et al.
        // 2021, here with the cost |x - y|^2 and eps KL). On a grid of step h the discrete problem
        // equals the continuous one up to the trapezoid error exp(-2 pi^2 sd^2 / h^2) of the
        // plan's conditional spread (sd 0.31 at h = 0.1: negligible) and the tails beyond 7 sd.
        let eps = 0.1
        let grid = stride(from: -7.0, through: 8.0 + 1e-9, by: 0.1).map { $0 }
        func gaussian(_ m: Double, _ sd: Double) throws -> PointCloud {
            let w = grid.map { exp(-($0 - m) * ($0 - m) / (2 * sd * sd)) }
            let total = w.reduce(0, +)
            return try PointCloud(values: grid, weights: w.map { $0 / total })
        }
        func closed(_ m1: Double, _ a: Double, _ m2: Double, _ b: Double) -> Double {
            let c = (-eps + (eps * eps + 16 * a * b).squareRoot()) / 4
            return (m1 - m2) * (m1 - m2) + a + b - 2 * c - eps / 2 * log(1 - c * c / (a * b))
        }
        let mu = try gaussian(0, 1), nu = try gaussian(1, 0.5)
        let parameters = try EntropicParameters(epsilon: eps, tolerance: 1e-12)
        let s = try EntropicEngine.divergence(TransportProblem(source: mu, target: nu), parameters: parameters,
                                              geometry: EntropicEngine.online())
        #expect(s.converged)
        let cross = closed(0, 1, 1, 0.25)
        #expect(Self.relative(s.cross.regularizedCost, cross) <= 1e-8, "\(s.cross.regularizedCost) vs \(cross)")
        let divergence = cross - (closed(0, 1, 0, 1) + closed(1, 0.25, 1, 0.25)) / 2
        #expect(Self.relative(s.divergence, divergence) <= 1e-8, "\(s.divergence) vs \(divergence)")
    }

    @Test("each row's soft-min is the same whether rows are split over cores or computed alone")
    func rowsIndependentOfSplit() throws {
        // 64 rows of 600 columns are split over the cores (when there are several); one-point
        // source clouds run inline. The exact (two-pass) route is taken in both: no estimate.
        let x = try EntropicTestClouds.gaussian(64, dimension: 2, seed: 81)
        let y = try EntropicTestClouds.gaussian(600, dimension: 2, seed: 82)
        let g = (0 ..< y.count).map { 0.3 * cos(Double($0)) }
        let logB = y.weights.map { log($0) }
        func softMin(_ source: PointCloud) throws -> [Double] {
            let geometry = try OnlinePointCloudGeometry(source: source, target: y)
            var out = [Double](repeating: .nan, count: source.count)
            g.withUnsafeBufferPointer { gb in
                logB.withUnsafeBufferPointer { wb in
                    out.withUnsafeMutableBufferPointer { geometry.softMin(gb, logWeights: wb, epsilon: 0.05, transposed: false, into: $0) }
                }
            }
            return out
        }
        let all = try softMin(x)
        for i in [0, 17, 31, 32, 63] {
            let alone = try softMin(PointCloud(coordinates: Array(x.point(i)), dimension: 2))
            #expect(alone[0] == all[i], "row \(i)")
        }
    }

    @Test("zero weights: their terms drop out, and the engine still matches SinkhornSolver")
    func zeroWeights() throws {
        var w = [Double](repeating: 1.0 / 12, count: 16)
        for i in [2, 7, 11, 15] { w[i] = 0 }
        let x = try EntropicTestClouds.gaussian(16, seed: 91).reweighted(w)
        let y = try EntropicTestClouds.gaussian(14, seed: 92, shift: 0.4)
        let problem = try TransportProblem(source: x, target: y)
        let parameters = try EntropicParameters(epsilon: 0.1, tolerance: 1e-12)
        let engine = try EntropicEngine.solve(problem, parameters: parameters, geometry: EntropicEngine.online())
        let reference = try SinkhornSolver(epsilon: 0.1, tolerance: 1e-12).solve(problem)
        #expect(engine.converged && reference.converged)
        #expect(Self.relative(engine.transportCost, reference.cost) <= 1e-9)
        #expect(Self.relative(engine.regularizedCost, reference.entropic!.regularizedCost) <= 1e-9)
        #expect(engine.f.allSatisfy { $0.isFinite })
    }
}
