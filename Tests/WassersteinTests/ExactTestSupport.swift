import Foundation
import Testing
@testable import Wasserstein

/// Helpers shared by the exact-solver test suites.
enum ExactTestSupport {
    /// `n` points in `R^d` with independent standard normal coordinates (shifted by `shift` on
    /// the first axis) and either uniform or random positive weights.
    static func gaussianCloud(_ n: Int, dimension d: Int, seed: UInt64, shift: Double = 0,
                              randomWeights: Bool = false) throws -> PointCloud {
        var g = Xoshiro256StarStar(seed: seed)
        var c = [Double](repeating: 0, count: n * d)
        g.fillGaussian(&c)
        for i in 0 ..< n { c[i * d] += shift }
        let w: [Double]? = randomWeights ? (0 ..< n).map { _ in 0.1 + g.nextUniform() } : nil
        return try PointCloud(coordinates: c, dimension: d, weights: w)
    }

    /// Points with integer coordinates in `0 ..< side` (many equal costs, many ties).
    static func gridCloud(_ n: Int, dimension d: Int, side: UInt64, seed: UInt64, weights: [Double]? = nil) throws -> PointCloud {
        var g = Xoshiro256StarStar(seed: seed)
        let c = (0 ..< n * d).map { _ in Double(g.next() % side) }
        return try PointCloud(coordinates: c, dimension: d, weights: weights)
    }

    /// Checks that a result's plan is a coupling of the problem's weights: non-negative entries,
    /// row sums `a`, column sums `b`, to `tolerance` times the mass.
    static func expectCoupling(_ result: TransportResult, _ problem: TransportProblem, tolerance: Double,
                               sourceLocation: SourceLocation = #_sourceLocation) {
        guard let plan = result.plan else {
            Issue.record("no plan", sourceLocation: sourceLocation)
            return
        }
        let mass = problem.source.mass
        for e in plan.entries { #expect(e.mass > 0, sourceLocation: sourceLocation) }
        let rows = plan.sourceMarginal, columns = plan.targetMarginal
        var worst = 0.0
        for i in 0 ..< problem.source.count { worst = max(worst, abs(rows[i] - problem.source.weights[i])) }
        for j in 0 ..< problem.target.count { worst = max(worst, abs(columns[j] - problem.target.weights[j])) }
        #expect(worst <= tolerance * mass, "marginal error \(worst)", sourceLocation: sourceLocation)
        // The reported cost is the cost of the reported plan.
        let c = try! SquaredEuclideanCost.matrix(source: problem.source, target: problem.target)
        var total = 0.0
        for e in plan.entries { total += e.mass * c[e.source, e.target] }
        #expect(abs(total - result.cost) <= 1e-12 * max(1, abs(result.cost)), sourceLocation: sourceLocation)
    }

    /// Checks dual feasibility `f_i + g_j <= C_ij + slack` and strong duality
    /// `sum a f + sum b g = cost`, both to `tolerance` relative to the largest cost.
    static func expectOptimalDuals(_ result: TransportResult, _ problem: TransportProblem, tolerance: Double,
                                   gapTolerance: Double? = nil, sourceLocation: SourceLocation = #_sourceLocation) {
        guard let p = result.potentials else {
            Issue.record("no potentials", sourceLocation: sourceLocation)
            return
        }
        let c = try! SquaredEuclideanCost.matrix(source: problem.source, target: problem.target)
        let scale = max(c.maximum, 1e-300)
        var violation = -Double.infinity
        for i in 0 ..< c.rows {
            for j in 0 ..< c.columns { violation = max(violation, p.f[i] + p.g[j] - c[i, j]) }
        }
        #expect(violation <= tolerance * scale, "dual violation \(violation)", sourceLocation: sourceLocation)
        var dual = 0.0
        for i in 0 ..< c.rows { dual += problem.source.weights[i] * p.f[i] }
        for j in 0 ..< c.columns { dual += problem.target.weights[j] * p.g[j] }
        #expect(abs(dual - result.cost) <= (gapTolerance ?? tolerance) * scale * problem.source.mass,
                "duality gap \(dual - result.cost)", sourceLocation: sourceLocation)
    }

    /// `|a - b| <= relative * max(|a|, |b|) + absolute`.
    static func close(_ a: Double, _ b: Double, relative: Double, absolute: Double = 0) -> Bool {
        abs(a - b) <= relative * max(abs(a), abs(b)) + absolute
    }
}

/// POT's reference values (Tests/WassersteinTests/Fixtures/pot-cases.json).
struct POTFixture: Decodable {
    struct Case: Decodable {
        var x: [[Double]]
        var y: [[Double]]
        var a: [Double]
        var b: [Double]
        var w2_squared_exact: Double
        var w2_squared_1d: Double?
    }
    struct Gaussian: Decodable {
        var m1: [Double]
        var S1: [[Double]]
        var m2: [Double]
        var S2: [[Double]]
        var w2_squared: Double
    }
    var cases: [Case]
    var gaussian: Gaussian

    static func load() throws -> POTFixture {
        let url = try #require(Bundle.module.url(forResource: "pot-cases", withExtension: "json", subdirectory: "Fixtures"))
        return try JSONDecoder().decode(POTFixture.self, from: Data(contentsOf: url))
    }

    static func problem(_ c: Case) throws -> TransportProblem {
        try TransportProblem(source: try PointCloud(points: c.x, weights: c.a, name: "x"),
                             target: try PointCloud(points: c.y, weights: c.b, name: "y"))
    }
}
