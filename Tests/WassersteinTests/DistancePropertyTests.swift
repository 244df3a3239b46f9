import Testing
@testable import Wasserstein

/// Properties that every exact W2 must have, checked for each method that applies.
@Suite("W2 metric properties")
struct DistancePropertyTests {
    static let methods: [TransportMethod] = [.exact, .lp]

    static func clouds(dimension d: Int) throws -> [PointCloud] {
        [try ExactTestSupport.gaussianCloud(20, dimension: d, seed: 70, randomWeights: true).normalized(),
         try ExactTestSupport.gaussianCloud(13, dimension: d, seed: 71, shift: 1.5).normalized(),
         try ExactTestSupport.gridCloud(16, dimension: d, side: 3, seed: 72).normalized()]
    }

    // Exact methods: round-off only, 1e-10 relative.
    @Test("Symmetry: W2(mu, nu) = W2(nu, mu)", arguments: [1, 2, 3])
    func symmetry(dimension: Int) throws {
        let c = try Self.clouds(dimension: dimension)
        for method in Self.methods + (dimension == 1 ? [.sorted] : []) {
            let forward = try wasserstein2(try TransportProblem(source: c[0], target: c[1]), method: method)
            let backward = try wasserstein2(try TransportProblem(source: c[1], target: c[0]), method: method)
            #expect(ExactTestSupport.close(forward.cost, backward.cost, relative: 1e-10), "\(method)")
            // exact runs the sorted solver in 1-D (exact there); the result says so.
            #expect(forward.method == (method == .exact && dimension == 1 ? .sorted : method))
        }
    }

    @Test("Identity: W2(mu, mu) = 0, with duplicate points and zero weights", arguments: [1, 2])
    func identity(dimension: Int) throws {
        var c = try Self.clouds(dimension: dimension)
        c.append(try c[2].reweighted((0 ..< 16).map { $0 % 4 == 0 ? 0 : 1 }))
        for cloud in c {
            for method in Self.methods + (dimension == 1 ? [.sorted] : []) {
                let r = try wasserstein2(try TransportProblem(source: cloud, target: cloud), method: method)
                // Zero up to round-off of the costs of the pairs used (all exactly zero here).
                #expect(abs(r.cost) <= 1e-14, "\(method): \(r.cost)")
            }
        }
    }

    // W2 (not W2^2) satisfies the triangle inequality; 1e-12 slack for round-off.
    @Test("Triangle inequality", arguments: [1, 2, 3])
    func triangle(dimension: Int) throws {
        let c = try Self.clouds(dimension: dimension)
        func w(_ a: Int, _ b: Int) throws -> Double {
            try wasserstein2(try TransportProblem(source: c[a], target: c[b]), method: .exact).w2
        }
        for (a, b, m) in [(0, 1, 2), (1, 2, 0), (0, 2, 1)] {
            #expect(try w(a, b) <= w(a, m) + w(m, b) + 1e-12)
        }
    }

    // W2^2(mu + v, nu + v) = W2^2(mu, nu), and W2^2(mu + v, mu) = |v|^2 exactly (the identity
    // coupling is optimal). Round-off: 1e-10 relative.
    @Test("Translations: common shifts cancel, a shift of one side costs |v|^2", arguments: [1, 2, 3])
    func translation(dimension: Int) throws {
        let c = try Self.clouds(dimension: dimension)
        let v = (0 ..< dimension).map { 0.5 - 0.75 * Double($0) }
        let norm2 = v.reduce(0) { $0 + $1 * $1 }
        for method in Self.methods + (dimension == 1 ? [.sorted] : []) {
            let base = try wasserstein2(try TransportProblem(source: c[0], target: c[1]), method: method).cost
            let moved = try wasserstein2(try TransportProblem(source: try c[0].translated(by: v),
                                                             target: try c[1].translated(by: v)), method: method).cost
            #expect(ExactTestSupport.close(base, moved, relative: 1e-10), "\(method)")
            let shift = try wasserstein2(try TransportProblem(source: try c[0].translated(by: v), target: c[0]), method: method).cost
            #expect(ExactTestSupport.close(shift, norm2, relative: 1e-10), "\(method): \(shift) vs \(norm2)")
        }
    }

    // Scaling all points by s multiplies W2^2 by s^2; scaling the masses by t multiplies it by t.
    @Test("Homogeneity in space and in mass")
    func homogeneity() throws {
        let c = try Self.clouds(dimension: 2)
        let base = try wasserstein2(try TransportProblem(source: c[0], target: c[1])).cost
        func scaled(_ p: PointCloud, _ s: Double, _ t: Double) throws -> PointCloud {
            try PointCloud(coordinates: p.coordinates.map { $0 * s }, dimension: p.dimension, weights: p.weights.map { $0 * t })
        }
        let r = try wasserstein2(try TransportProblem(source: try scaled(c[0], 3, 2), target: try scaled(c[1], 3, 2))).cost
        #expect(ExactTestSupport.close(r, base * 18, relative: 1e-10))
    }

    @Test("auto resolves to sorted in 1-D and exact otherwise")
    func autoMethod() throws {
        #expect(TransportMethod.auto.resolved(dimension: 1) == .sorted)
        #expect(TransportMethod.auto.resolved(dimension: 2) == .exact)
        #expect(TransportMethod.lp.resolved(dimension: 1) == .lp)
        let c1 = try Self.clouds(dimension: 1), c2 = try Self.clouds(dimension: 2)
        #expect(try wasserstein2(try TransportProblem(source: c1[0], target: c1[1])).method == .sorted)
        #expect(try wasserstein2(try TransportProblem(source: c2[0], target: c2[1])).method == .exact)
        // Without the plan the sorted method returns the same cost and no plan.
        let p1 = try TransportProblem(source: c1[0], target: c1[1])
        let bare = try wasserstein2(p1, planOutput: .none)
        #expect(bare.plan == nil && bare.potentials == nil)
        #expect(ExactTestSupport.close(bare.cost, try wasserstein2(p1, planOutput: .full).cost, relative: 1e-12))
    }
}
