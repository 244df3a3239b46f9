import Foundation
import Testing
@testable import Wasserstein

@Suite("Exact partial transport")
struct PartialTransportTests {
    /// Row sums <= a, column sums <= b, total = mass, all entries >= 0, and the reported cost is the plan's.
    static func expectFeasible(_ r: PartialTransportResult, costs: CostMatrix, _ a: [Double], _ b: [Double], mass: Double,
                               sourceLocation: SourceLocation = #_sourceLocation) {
        let rows = r.plan.sourceMarginal, columns = r.plan.targetMarginal
        for (i, v) in rows.enumerated() { #expect(v <= a[i] + 1e-12, sourceLocation: sourceLocation) }
        for (j, v) in columns.enumerated() { #expect(v <= b[j] + 1e-12, sourceLocation: sourceLocation) }
        for e in r.plan.entries { #expect(e.mass > 0, sourceLocation: sourceLocation) }
        #expect(abs(r.transportedMass - mass) <= 1e-12 * max(1, mass), sourceLocation: sourceLocation)
        let total = r.plan.entries.map { $0.mass * costs[$0.source, $0.target] }.reduce(0, +)
        #expect(abs(total - r.cost) <= 1e-12 * max(1, abs(r.cost)), sourceLocation: sourceLocation)
    }

    @Test("POT's documented example: a = [0.1, 0.2], b = [0.1, 0.1], M = [[0, 1], [2, 3]]: cost 0.3 at m = 0.2, 0 at m = 0.1")
    func potDocumentedValues() throws {
        let costs = try CostMatrix(rows: 2, columns: 2, values: [0, 1, 2, 3])
        let a = [0.1, 0.2], b = [0.1, 0.1]
        let full = try PartialTransport().solve(costs: costs, sourceWeights: a, targetWeights: b, mass: 0.2)
        #expect(abs(full.cost - 0.3) < 1e-15)
        Self.expectFeasible(full, costs: costs, a, b, mass: 0.2)
        // Every column is full at m = |b|; [[0.1, 0], [0, 0.1]] (POT's plan) and [[0, 0.1], [0.1, 0]] both cost 0.3.
        #expect(full.plan.targetMarginal.allSatisfy { abs($0 - 0.1) < 1e-15 })
        let half = try PartialTransport().solve(costs: costs, sourceWeights: a, targetWeights: b, mass: 0.1)
        #expect(half.cost == 0)
        #expect(half.plan.dense == [0.1, 0, 0, 0])
        Self.expectFeasible(half, costs: costs, a, b, mass: 0.1)
        let none = try PartialTransport().solve(costs: costs, sourceWeights: a, targetWeights: b, mass: 0)
        #expect(none.cost == 0 && none.plan.entries.isEmpty)
    }

    @Test("negative costs move exactly m (POT 0.9.7 moves the whole mass here: plan [[0, 0.5], [0.5, 0]], cost -2.5)")
    func negativeCosts() throws {
        let costs = try CostMatrix(rows: 2, columns: 2, values: [-1, -2, -3, -1])
        let r = try PartialTransport().solve(costs: costs, sourceWeights: [0.5, 0.5], targetWeights: [0.5, 0.5], mass: 0.5)
        #expect(abs(r.cost + 1.5) < 1e-15 && abs(r.transportedMass - 0.5) < 1e-15)
        #expect(r.plan.dense == [0, 0, 0.5, 0])
    }

    @Test("agrees with GLPK on the direct LP (inequalities, no dummy points) on random problems, negative costs included")
    func againstLinearProgram() throws {
        var g = Xoshiro256StarStar(seed: 77)
        for trial in 0 ..< 12 {
            let n = 2 + Int(g.next() % 7), m = 2 + Int(g.next() % 7)
            let a = (0 ..< n).map { _ in g.nextUniform() + (trial % 3 == 0 ? 0 : 0.05) }
            let b = (0 ..< m).map { _ in 2 * g.nextUniform() }
            let shift = trial % 4 == 1 ? -0.7 : 0
            let costs = try CostMatrix(rows: n, columns: m, values: (0 ..< n * m).map { _ in g.nextUniform() + shift })
            let limit = min(a.reduce(0, +), b.reduce(0, +))
            for fraction in [0.2, 0.5, 0.9, 1.0] {
                let mass = fraction * limit
                let r = try PartialTransport().solve(costs: costs, sourceWeights: a, targetWeights: b, mass: mass)
                let lp = try LinearProgramSolver().solvePartial(costs: costs, sourceWeights: a, targetWeights: b, mass: mass)
                #expect(abs(r.cost - lp.cost) <= 1e-9 * max(1, abs(lp.cost)), "trial \(trial), m = \(mass): \(r.cost) vs \(lp.cost)")
                Self.expectFeasible(r, costs: costs, a, b, mass: mass)
                #expect(r.converged)
            }
        }
    }

    @Test("point clouds: squared Euclidean costs, unequal masses; at m = |a| = |b| it is W2^2")
    func pointClouds() throws {
        let mu = try ExactTestSupport.gaussianCloud(25, dimension: 2, seed: 3, randomWeights: true)
        let nu = try ExactTestSupport.gaussianCloud(18, dimension: 2, seed: 4, shift: 2, randomWeights: true)
        let costs = try SquaredEuclideanCost.matrix(source: mu, target: nu)
        let mass = 0.6 * min(mu.mass, nu.mass)
        let r = try PartialTransport().solve(source: mu, target: nu, mass: mass)
        let lp = try LinearProgramSolver().solvePartial(costs: costs, sourceWeights: mu.weights, targetWeights: nu.weights, mass: mass)
        #expect(abs(r.cost - lp.cost) <= 1e-9 * lp.cost)
        Self.expectFeasible(r, costs: costs, mu.weights, nu.weights, mass: mass)
        // Moving more mass costs more (the cost is convex and increasing in m for costs >= 0).
        let more = try PartialTransport().solve(source: mu, target: nu, mass: 0.8 * min(mu.mass, nu.mass))
        #expect(more.cost > r.cost)
        // Balanced and full: the ordinary W2^2.
        let balanced = try PointCloud(coordinates: nu.coordinates, dimension: 2)
        let unit = mu.normalized()
        let full = try PartialTransport().solve(source: unit, target: balanced, mass: 1)
        let exact = try wasserstein2(TransportProblem(source: unit, target: balanced)).cost
        #expect(abs(full.cost - exact) <= 1e-10 * exact)
    }

    @Test("a mass out of range, bad weights and dimension mismatches are typed errors")
    func errors() throws {
        let costs = try CostMatrix(rows: 2, columns: 2, values: [0, 1, 2, 3])
        for mass in [-0.1, 0.21, .nan, .infinity] {
            #expect(throws: WassersteinError.self) {
                try PartialTransport().solve(costs: costs, sourceWeights: [0.1, 0.2], targetWeights: [0.1, 0.1], mass: mass)
            }
        }
        #expect(throws: WassersteinError.self) {
            try PartialTransport().solve(costs: costs, sourceWeights: [0.1, -0.2], targetWeights: [0.1, 0.1], mass: 0.1)
        }
        #expect(throws: WassersteinError.self) {
            try PartialTransport().solve(costs: costs, sourceWeights: [0.1], targetWeights: [0.1, 0.1], mass: 0.1)
        }
        let a = try PointCloud(points: [[0, 0]]), b = try PointCloud(values: [1])
        #expect(throws: WassersteinError.self) { try PartialTransport().solve(source: a, target: b, mass: 0.5) }
        // Too large for a dense matrix: refused before anything is allocated.
        let big = try PointCloud(values: [Double](repeating: 0, count: 20_000))
        #expect(throws: WassersteinError.self) { try PartialTransport().solve(source: big, target: big, mass: 0.5) }
        // Round-off above the minimum mass is the minimum.
        let r = try PartialTransport().solve(costs: costs, sourceWeights: [0.1, 0.2], targetWeights: [0.1, 0.1], mass: 0.2 * (1 + 1e-12))
        #expect(abs(r.transportedMass - 0.2) < 1e-15)
    }
}
