import Testing
@testable import Wasserstein

/// Every solver against POT 0.9.7's values for the same inputs (Fixtures/pot-cases.json).
@Suite("POT reference values")
struct ReferenceValueTests {
    // POT's emd2 is exact up to round-off in a different summation order: 1e-12 relative.
    @Test("Network simplex matches ot.emd2 on every fixture case")
    func networkSimplexMatchesPOT() throws {
        let fixture = try POTFixture.load()
        #expect(fixture.cases.count >= 6)
        for c in fixture.cases {
            let problem = try POTFixture.problem(c)
            for evaluation in [NetworkSimplexSolver.CostEvaluation.matrix, .coordinates] {
                for basis in NetworkSimplexSolver.InitialBasis.allCases {
                    let r = try NetworkSimplexSolver(costEvaluation: evaluation, initialBasis: basis).solve(problem)
                    #expect(r.status == .optimal)
                    #expect(r.method == .exact)
                    #expect(ExactTestSupport.close(r.cost, c.w2_squared_exact, relative: 1e-12),
                            "\(evaluation) \(basis): \(r.cost) vs POT \(c.w2_squared_exact)")
                }
            }
        }
    }

    // GLPK's simplex stops at its own tolerances (1e-7 on reduced costs, scaled), but on these
    // small problems it reaches the optimal vertex: 1e-9 relative.
    @Test("GLPK LP matches ot.emd2 on every fixture case")
    func linearProgramMatchesPOT() throws {
        for c in try POTFixture.load().cases {
            let r = try LinearProgramSolver().solve(try POTFixture.problem(c))
            #expect(r.status == .optimal)
            #expect(r.method == .lp)
            #expect(ExactTestSupport.close(r.cost, c.w2_squared_exact, relative: 1e-9), "\(r.cost) vs POT \(c.w2_squared_exact)")
        }
    }

    @Test("Sorted solver matches ot.wasserstein_1d on the one-dimensional case")
    func sortedMatchesPOT() throws {
        let cases = try POTFixture.load().cases.filter { $0.w2_squared_1d != nil }
        #expect(!cases.isEmpty)
        for c in cases {
            let problem = try POTFixture.problem(c)
            for plan in [true, false] {
                let r = try SortedSolver(planOutput: plan ? .full : .none).solve(problem)
                #expect(ExactTestSupport.close(r.cost, c.w2_squared_1d!, relative: 1e-12))
            }
            let auto = try wasserstein2(problem)
            #expect(auto.method == .sorted)
            #expect(ExactTestSupport.close(auto.cost, c.w2_squared_exact, relative: 1e-12))
        }
    }

    @Test("Bures formula matches ot.gaussian's closed form")
    func gaussianMatchesPOT() throws {
        let g = try POTFixture.load().gaussian
        let mu = try GaussianMeasure(mean: g.m1, covariance: g.S1.flatMap { $0 })
        let nu = try GaussianMeasure(mean: g.m2, covariance: g.S2.flatMap { $0 })
        let r = try wasserstein2(mu, nu)
        #expect(r.method == .gaussian)
        #expect(r.plan == nil)
        // Three 2x2 eigen-decompositions: agreement to round-off.
        #expect(ExactTestSupport.close(r.cost, g.w2_squared, relative: 1e-12), "\(r.cost) vs POT \(g.w2_squared)")
        #expect(ExactTestSupport.close(try nu.squaredDistance(to: mu), g.w2_squared, relative: 1e-12))
    }
}
