import Foundation
import Testing
@testable import Wasserstein

/// Unbalanced (KL-penalised) and entropic partial transport on the engine (issue 18, items 1-2).
/// Reference values: POT 0.9.7 where it is right, and where it is not (POT issues 711, 723)
/// POT's plain solver run to 10^5-10^6 iterations or an independent NumPy log-domain solve,
/// all from Benchmarks/python/unbalanced_partial_reference.py; closed forms; the exact partial LP.
@Suite("Entropic engine: unbalanced and partial transport")
struct UnbalancedPartialTests {
    static func relative(_ x: Double, _ y: Double) -> Double { abs(x - y) / Swift.max(abs(x), abs(y), 1e-300) }

    /// The deterministic clouds of the reference script:
    /// `x_i = (3 sin(1.3 i), 3 cos(0.7 i))`, `y_j = (3 sin(0.9 j + 0.5) + 1, 3 cos(1.1 j) + 1)`.
    static func formulaCosts(_ n: Int, _ m: Int, normalised: Bool) -> [Double] {
        var c = [Double]()
        for i in 0 ..< n {
            let x0 = 3 * sin(1.3 * Double(i)), x1 = 3 * cos(0.7 * Double(i))
            for j in 0 ..< m {
                let y0 = 3 * sin(0.9 * Double(j) + 0.5) + 1, y1 = 3 * cos(1.1 * Double(j)) + 1
                c.append((x0 - y0) * (x0 - y0) + (x1 - y1) * (x1 - y1))
            }
        }
        if normalised, let top = c.max() { c = c.map { $0 / top } }
        return c
    }

    static func plan<G: SinkhornGeometry>(_ driver: EntropicSinkhorn<G>) -> [Double] {
        (0 ..< driver.geometry.sourceCount).flatMap { driver.planRow($0) }
    }

    static func tight(_ eps: Double) throws -> EntropicParameters {
        try EntropicParameters(epsilon: eps, tolerance: 1e-11, maxIterations: 100_000)
    }

    @Test("POT's documented unbalanced plan: a = b = [0.5, 0.5], M = [[0, 1], [1, 0]], reg = reg_m = 1")
    func potDocumentedPlan() throws {
        let geometry = try DenseCostGeometry(costs: [0, 1, 1, 0], sourceCount: 2, targetCount: 2)
        let problem = try EntropicProblem.unbalanced(a: [0.5, 0.5], b: [0.5, 0.5], sourcePenalty: 1, targetPenalty: 1)
        var driver = try EntropicSinkhorn(geometry: geometry, problem: problem, parameters: Self.tight(1))
        let out = try driver.solve()
        #expect(out.converged)
        // POT stops at its default tolerance (a relative change of 1e-6 in the scalings), so its
        // plan is right to about 4e-8: the documented 7 digits.
        let expected = [0.3220536, 0.1184769, 0.1184769, 0.3220536]
        for (p, q) in zip(Self.plan(driver), expected) { #expect(abs(p - q) <= 5e-8) }
        #expect(abs(out.transportedMass - expected.reduce(0, +)) <= 2e-7)
        // Primal (with the KL penalties) and dual values agree at the optimum.
        #expect(abs(out.regularizedCost - out.dualCost!) <= 1e-12)
    }

    @Test("POT issue 711's case (reg 0.01, reg_m 100): POT's plain solver after 10^6 iterations, not its stabilised one")
    func issue711TwoPoints() throws {
        let geometry = try DenseCostGeometry(costs: [0, 1, 1, 0], sourceCount: 2, targetCount: 2)
        let problem = try EntropicProblem.unbalanced(a: [0.3, 0.7], b: [0.7, 0.3], sourcePenalty: 100, targetPenalty: 100)
        var driver = try EntropicSinkhorn(geometry: geometry, problem: problem, parameters: Self.tight(0.01))
        let out = try driver.solve()
        #expect(out.converged)
        // The translation step: ~10^2 iterations where plain updates need ~10^5.
        #expect(out.iterations < 1000)
        let plan = Self.plan(driver)
        #expect(abs(plan[0] - 0.30148960538720215) <= 1e-10 && abs(plan[3] - 0.30148960538720215) <= 1e-10)
        #expect(abs(plan[2] - 0.39502663330514148) <= 1e-10 && plan[1] < 1e-80)
        #expect(Self.relative(out.regularizedCost, 0.3988511256500627) <= 1e-9)
        // POT's stabilised solver (absorption) returns value 33.64 here.
        #expect(Self.relative(out.dualCost!, out.regularizedCost) <= 1e-9)
    }

    @Test("issue 711 on 12 x 9 clouds: equal masses (POT plain, 122,327 iterations) and unequal (NumPy plain, 10^6)",
          arguments: [true, false])
    func issue711Clouds(equalMasses: Bool) throws {
        let geometry = try DenseCostGeometry(costs: Self.formulaCosts(12, 9, normalised: true), sourceCount: 12, targetCount: 9)
        var a: [Double], b: [Double]
        if equalMasses {
            a = (0 ..< 12).map { 1 + 0.5 * sin(Double($0)) }
            b = (0 ..< 9).map { 1 + 0.5 * cos(2 * Double($0)) }
            let sa = a.reduce(0, +), sb = b.reduce(0, +)
            a = a.map { $0 / sa }
            b = b.map { $0 / sb }
        } else {
            a = [Double](repeating: 1.0 / 12, count: 12)
            b = [Double](repeating: 1.0 / 6, count: 9)
        }
        let out = try EntropicEngine.unbalanced(geometry, a: a, b: b, sourcePenalty: 100, targetPenalty: 100,
                                                parameters: Self.tight(0.01))
        #expect(out.converged)
        let (value, mass, cost) = equalMasses ? (0.070753687077074, 0.999646249252157, 0.055996446674281)
                                              : (5.13343104920345, 1.22434662742248, 0.0617246815869605)
        #expect(Self.relative(out.regularizedCost, value) <= 1e-9)
        #expect(Self.relative(out.transportedMass, mass) <= 1e-9)
        #expect(Self.relative(out.transportCost, cost) <= 1e-9)
        #expect(Self.relative(out.dualCost!, value) <= 1e-9)
    }

    @Test("one point each, zero cost: the closed form t = (m_a m_b)^((eps + rho) / (eps + 2 rho)) and its value")
    func singlePointClosedForm() throws {
        let geometry = try DenseCostGeometry(costs: [0], sourceCount: 1, targetCount: 1)
        let (eps, rho) = (0.3, 2.0)
        func kl(_ p: Double, _ q: Double) -> Double { p * log(p / q) - p + q }
        for (ma, mb) in [(1.0, 1.0), (2.0, 0.5), (0.1, 3.0)] {
            let out = try EntropicEngine.unbalanced(geometry, a: [ma], b: [mb], sourcePenalty: rho, targetPenalty: rho,
                                                    parameters: Self.tight(eps))
            let t = pow(ma * mb, (eps + rho) / (eps + 2 * rho))
            #expect(Self.relative(out.transportedMass, t) <= 1e-10)
            #expect(abs(out.regularizedCost - (eps * kl(t, ma * mb) + rho * kl(t, ma) + rho * kl(t, mb))) <= 1e-12)
        }
    }

    @Test("as the penalties grow the values approach the balanced entropic ones; rho = infinity is balanced")
    func balancedLimit() throws {
        let x = try EntropicTestClouds.gaussian(15, seed: 41, randomWeights: true)
        let y = try EntropicTestClouds.gaussian(11, seed: 42, shift: 0.5)
        let parameters = try Self.tight(0.1)
        let balanced = try EntropicEngine.solve(TransportProblem(source: x, target: y), parameters: parameters,
                                                geometry: EntropicEngine.dense())
        var previous = Double.infinity
        for rho in [1.0, 100, 10_000, 1_000_000] {
            let out = try EntropicEngine.unbalanced(source: x, target: y, sourcePenalty: rho, targetPenalty: rho,
                                                    parameters: parameters, geometry: EntropicEngine.dense())
            #expect(out.converged)
            let gap = abs(out.regularizedCost - balanced.regularizedCost)
            #expect(gap < previous)
            previous = gap
        }
        #expect(previous <= 1e-5 * balanced.regularizedCost)
        let infinite = try EntropicEngine.unbalanced(source: x, target: y, sourcePenalty: .infinity, targetPenalty: .infinity,
                                                     parameters: parameters, geometry: EntropicEngine.dense())
        #expect(Self.relative(infinite.regularizedCost, balanced.regularizedCost) <= 1e-12)
        // One side enforced: the plan's source marginal is a, its mass |a|.
        let oneSided = try EntropicEngine.unbalanced(source: x, target: y.reweighted(y.weights.map { 2 * $0 }),
                                                     sourcePenalty: .infinity, targetPenalty: 0.5,
                                                     parameters: parameters, geometry: EntropicEngine.dense())
        #expect(oneSided.converged && abs(oneSided.transportedMass - x.mass) <= 1e-11)
    }

    @Test("unbalanced divergence: S(a, a) = 0, S >= 0 with unequal masses, symmetric, online equals dense")
    func divergence() throws {
        let x = try EntropicTestClouds.gaussian(14, dimension: 3, seed: 51, randomWeights: true)
        let y0 = try EntropicTestClouds.gaussian(10, dimension: 3, seed: 52, shift: 0.3)
        let y = try y0.reweighted(y0.weights.map { 1.7 * $0 })
        let parameters = try Self.tight(0.2)
        let same = try EntropicEngine.unbalancedDivergence(source: x, target: x, penalty: 1, parameters: parameters,
                                                           geometry: EntropicEngine.dense())
        #expect(same.converged && abs(same.divergence) <= 1e-12)
        let d = try EntropicEngine.unbalancedDivergence(source: x, target: y, penalty: 1, parameters: parameters,
                                                        geometry: EntropicEngine.dense())
        let r = try EntropicEngine.unbalancedDivergence(source: y, target: x, penalty: 1, parameters: parameters,
                                                        geometry: EntropicEngine.online())
        #expect(d.converged && r.converged)
        #expect(d.divergence > 0 && abs(d.massTerm - 0.5 * 0.2 * 0.49) <= 1e-12)
        #expect(abs(d.divergence - r.divergence) <= 1e-9 * d.divergence)
        // Only the mass differs: still positive (the mass term is what makes it so).
        let heavier = try x.reweighted(x.weights.map { 1.5 * $0 })
        let m = try EntropicEngine.unbalancedDivergence(source: x, target: heavier, penalty: 1, parameters: parameters,
                                                        geometry: EntropicEngine.dense())
        #expect(m.converged && m.divergence > 0)
    }

    @Test("bad penalties are typed errors, never NaN")
    func badPenalties() throws {
        for rho in [0.0, -1, .nan, -Double.infinity] {
            #expect(throws: WassersteinError.self) {
                _ = try EntropicProblem.unbalanced(a: [1], b: [2], sourcePenalty: rho, targetPenalty: 1)
            }
            #expect(throws: WassersteinError.self) { _ = try EntropicProblem.unbalancedSymmetric(a: [1], penalty: rho) }
        }
        // Both infinite: the balanced problem, with its equal-mass check.
        #expect(throws: WassersteinError.self) {
            _ = try EntropicProblem.unbalanced(a: [1], b: [2], sourcePenalty: .infinity, targetPenalty: .infinity)
        }
    }

    // MARK: - Partial

    @Test("POT's documented partial example: cost 0.3 at m = 0.2 (eps 0.02), near 0 at m = 0.1 (eps 0.1, NumPy's value)")
    func partialDocumented() throws {
        let geometry = try DenseCostGeometry(costs: [0, 1, 2, 3], sourceCount: 2, targetCount: 2)
        // At m = 0.1 the cell (0, 0) saturates both a_0 and b_0 and the iteration slows down as
        // eps falls (plain NumPy updates: 174,558 iterations at eps = 0.1), hence the larger eps.
        for (mass, eps, cost) in [(0.2, 0.02, 0.3), (0.1, 0.1, 0.0006821255133844686)] {
            let out = try EntropicEngine.partial(geometry, a: [0.1, 0.2], b: [0.1, 0.1], mass: mass, parameters: Self.tight(eps))
            #expect(out.converged)
            #expect(abs(out.transportedMass - mass) <= 1e-11)
            #expect(abs(out.transportCost - cost) <= 1e-9)
        }
    }

    @Test("approaches the exact partial LP as eps -> 0, from above (its plan is feasible for the LP)")
    func partialExactLimit() throws {
        let x = try EntropicTestClouds.gaussian(20, seed: 61, randomWeights: true)
        let y0 = try EntropicTestClouds.gaussian(16, seed: 62, shift: 0.8)
        let y = try y0.reweighted(y0.weights.map { 1.4 * $0 })
        let mass = 0.6
        let exact = try PartialTransport().solve(source: x, target: y, mass: mass).cost
        var previous = Double.infinity
        for eps in [0.1, 0.01, 0.001] {
            let out = try EntropicEngine.partial(source: x, target: y, mass: mass, parameters: Self.tight(eps),
                                                 geometry: EntropicEngine.online())
            #expect(out.converged && abs(out.transportedMass - mass) <= 1e-11)
            let gap = out.transportCost - exact
            #expect(gap > -1e-12 && gap < previous)
            previous = gap
        }
        #expect(previous <= 2e-3 * exact)
    }

    @Test("POT issue 723 (n = m = 40, m = 0.01, POT NaN at reg 0.1): finite, the NumPy dummy solve's value, a second route",
          arguments: [(10.0, 0.0698148886315051), (1.0, 0.00958967067045959), (0.1, 0.00124378125506394)])
    func issue723(eps: Double, reference: Double) throws {
        let costs = Self.formulaCosts(40, 40, normalised: false)
        let a = [Double](repeating: 1 / (40 * 0.35), count: 40), b = [Double](repeating: 1.0 / 40, count: 40)
        let geometry = try DenseCostGeometry(costs: costs, sourceCount: 40, targetCount: 40)
        let out = try EntropicEngine.partial(geometry, a: a, b: b, mass: 0.01, parameters: Self.tight(eps))
        #expect(out.converged && out.transportCost.isFinite)
        #expect(Self.relative(out.transportCost, reference) <= 1e-8)
        #expect(abs(out.transportedMass - 0.01) <= 1e-10)
        // Second route: the extended cost matrix stored, the dummy-dummy cell at a large finite
        // cost (its mass ~ exp(-A / eps) is below the tolerance), on the balanced driver.
        let top = costs.max()!
        let big = 2 * top + 60 * eps
        var extended = [Double](repeating: 0, count: 41 * 41)
        for i in 0 ..< 40 { for j in 0 ..< 40 { extended[i * 41 + j] = costs[i * 40 + j] } }
        extended[41 * 41 - 1] = big
        let ma = a.reduce(0, +), mb = b.reduce(0, +)
        let stored = try DenseCostGeometry(costs: extended, sourceCount: 41, targetCount: 41)
        var driver = try EntropicSinkhorn(geometry: stored, problem: .balanced(a: a + [mb - 0.01], b: b + [ma - 0.01]),
                                          parameters: Self.tight(eps))
        let second = try driver.solve()
        #expect(second.converged)
        #expect(Self.relative(second.transportCost, out.transportCost) <= 1e-8)
        #expect(Self.relative(second.regularizedCost, out.extended.regularizedCost) <= 1e-8)
    }

    @Test("a partial mass out of range or zero is a typed error")
    func partialErrors() throws {
        let geometry = try DenseCostGeometry(costs: [0, 1, 2, 3], sourceCount: 2, targetCount: 2)
        for mass in [0.0, -0.1, 0.25, .nan, .infinity] {
            #expect(throws: WassersteinError.self) {
                _ = try EntropicEngine.partial(geometry, a: [0.1, 0.2], b: [0.1, 0.1], mass: mass, parameters: Self.tight(0.1))
            }
        }
    }
}
