import Testing
import Wasserstein
@testable import GradientFlows

@Suite("L-BFGS")
struct LBFGSTests {
    /// The extended Rosenbrock function, minimum 0 at (1, ..., 1): a curved valley that steepest
    /// descent crawls through and that tests the line search and the curvature pairs.
    @Test("Rosenbrock in 2 and 10 dimensions reaches (1, ..., 1)", arguments: [2, 10])
    func rosenbrock(n: Int) throws {
        var x0 = [Double](repeating: -1.2, count: n)
        for i in stride(from: 1, to: n, by: 2) { x0[i] = 1 }
        let r = try LBFGS.minimize(initial: x0, options: LBFGSOptions(gradientTolerance: 1e-9, maxIterations: 2000)) { x, g in
            var f = 0.0
            for i in 0 ..< n { g[i] = 0 }
            for i in stride(from: 0, to: n - 1, by: 2) {
                let a = x[i + 1] - x[i] * x[i], b = 1 - x[i]
                f += 100 * a * a + b * b
                g[i] += -400 * x[i] * a - 2 * b
                g[i + 1] += 200 * a
            }
            return f
        }
        #expect(r.converged)
        // |grad| <= 1e-9 near a minimum with Hessian eigenvalues in [0.4, 1000] pins x to ~1e-8.
        for v in r.x { #expect(abs(v - 1) < 1e-6) }
        #expect(r.value < 1e-14)
    }

    /// An ill-conditioned convex quadratic with a diagonal preconditioner equal to the inverse
    /// Hessian: the first step lands on the minimiser exactly.
    @Test("exact diagonal preconditioner solves a quadratic in one step")
    func preconditioned() throws {
        let h: [Double] = [1, 10, 100, 1000, 1e4]
        let c: [Double] = [1, -2, 3, -4, 5]
        let r = try LBFGS.minimize(initial: [Double](repeating: 0, count: 5),
                                   options: LBFGSOptions(gradientTolerance: 1e-10),
                                   preconditioner: h.map { 1 / $0 }) { x, g in
            var f = 0.0
            for i in 0 ..< 5 { g[i] = h[i] * (x[i] - c[i]); f += 0.5 * h[i] * (x[i] - c[i]) * (x[i] - c[i]) }
            return f
        }
        #expect(r.converged)
        #expect(r.iterations == 1)
        for i in 0 ..< 5 { #expect(abs(r.x[i] - c[i]) < 1e-12) }
    }

    @Test("iteration cap is reported, not thrown")
    func cap() throws {
        let r = try LBFGS.minimize(initial: [-1.2, 1], options: LBFGSOptions(gradientTolerance: 1e-12, maxIterations: 3)) { x, g in
            let a = x[1] - x[0] * x[0], b = 1 - x[0]
            g[0] = -400 * x[0] * a - 2 * b
            g[1] = 200 * a
            return 100 * a * a + b * b
        }
        #expect(r.status == .iterationLimit)
        #expect(!r.converged)
        #expect(r.iterations == 3)
    }

    @Test("invalid options and non-finite starts throw")
    func invalid() throws {
        let f: LBFGS.Objective = { x, g in g[0] = 2 * x[0]; return x[0] * x[0] }
        #expect(throws: GradientFlowsError.self) { try LBFGS.minimize(initial: [1], options: LBFGSOptions(memory: 0), objective: f) }
        #expect(throws: GradientFlowsError.self) { try LBFGS.minimize(initial: [1], options: LBFGSOptions(gradientTolerance: -1), objective: f) }
        #expect(throws: GradientFlowsError.self) { try LBFGS.minimize(initial: [1], preconditioner: [0], objective: f) }
        #expect(throws: GradientFlowsError.self) { try LBFGS.minimize(initial: [.nan], objective: f) }
    }
}
