import Foundation
import Testing
import Wasserstein

/// The plan `P_ij = a_i b_j exp((f_i + g_j - C_ij) / eps)` of a result's potentials, rebuilt
/// independently of the solver (plain loops, Foundation's `exp`, costs from the coordinates).
private struct RebuiltPlan {
    var rowError = 0.0
    var columnError = 0.0
    var mass = 0.0
    var transport = 0.0
    var regularized = 0.0
    var maxCost = 0.0
    var maxPotential = 0.0
    /// What double precision can resolve in a marginal of this plan:
    /// `8 ulp(1) / eps * sum_ij P_ij (|f_i| + |g_j| + C_ij)`. Each exponent
    /// `(f_i + g_j - C_ij) / eps` carries a rounding error of a few ulp of its largest term
    /// divided by eps, which is the relative error of that plan entry; 8 ulp covers the solver's
    /// log-sum-exp, its gauge shift and this rebuild. (At eps = 1e-4 this is ~1e-10 on these
    /// clouds, so "exact to 1e-12" is only meaningful at the larger eps.)
    var roundingBound = 0.0

    var marginalError: Double { rowError + columnError }

    init(_ problem: TransportProblem, potentials: DualPotentials, epsilon eps: Double) {
        let x = problem.source, y = problem.target, d = problem.dimension
        let f = potentials.f, g = potentials.g
        var rows = [Double](repeating: 0, count: x.count), columns = [Double](repeating: 0, count: y.count)
        var kl = 0.0, weightedMagnitude = 0.0
        for i in 0 ..< x.count {
            for j in 0 ..< y.count {
                var c = 0.0
                for k in 0 ..< d {
                    let t = x.coordinates[i * d + k] - y.coordinates[j * d + k]
                    c += t * t
                }
                maxCost = max(maxCost, c)
                let exponent = (f[i] + g[j] - c) / eps
                let p = x.weights[i] * y.weights[j] * exp(exponent)
                rows[i] += p
                columns[j] += p
                mass += p
                transport += p * c
                if p > 0 { kl += p * exponent }
                weightedMagnitude += p * (abs(f[i]) + abs(g[j]) + c)
            }
        }
        for i in 0 ..< x.count { rowError += abs(rows[i] - x.weights[i]) }
        for j in 0 ..< y.count { columnError += abs(columns[j] - y.weights[j]) }
        // <P, C> + eps KL(P | a (x) b), KL the generalised one (sum P log(P / Q) - sum P + sum Q).
        regularized = transport + eps * (kl - mass + x.mass * y.mass)
        maxPotential = (f + g).map { abs($0) }.max() ?? 0
        roundingBound = 8 * Double.ulpOfOne / eps * weightedMagnitude + 1e-15
    }
}

/// Checks what an early stop must deliver (the iteration cap ran out, or the solver stalled):
/// potentials of the target eps whose plan has one exact marginal, and numbers that describe
/// that plan. Unit-mass problems only (the KL bound below uses it).
private func checkEarlyStop(_ problem: TransportProblem, _ result: TransportResult, epsilon eps: Double,
                            tolerance: Double, cap: Int, _ label: String) {
    let x = problem.source, y = problem.target
    guard let potentials = result.potentials, let entropic = result.entropic else {
        Issue.record("\(label): no potentials or diagnostics")
        return
    }
    #expect(potentials.f.allSatisfy(\.isFinite) && potentials.g.allSatisfy(\.isFinite), "\(label)")
    #expect(result.cost.isFinite && entropic.regularizedCost.isFinite && entropic.marginalError.isFinite, "\(label)")
    #expect(result.iterations <= cap, "\(label): \(result.iterations) iterations")
    let plan = RebuiltPlan(problem, potentials: potentials, epsilon: eps)
    let slack = plan.roundingBound
    // The status is the honest verdict on the returned plan.
    if result.status == .converged {
        #expect(entropic.marginalError <= tolerance, "\(label)")
    } else {
        #expect(result.status == .iterationLimit, "\(label): \(result.status)")
        #expect(entropic.marginalError > tolerance, "\(label)")
        // One marginal exact (to rounding), hence the plan's mass is the common mass.
        #expect(min(plan.rowError, plan.columnError) <= slack,
                "\(label): rows \(plan.rowError), columns \(plan.columnError), bound \(slack)")
        #expect(abs(plan.mass - x.mass) <= slack, "\(label): mass \(plan.mass)")
    }
    // The reported error is that of the returned potentials' plan: the two computations
    // differ only by the rounding of each plan entry.
    #expect(abs(entropic.marginalError - plan.marginalError) <= 2 * slack,
            "\(label): reported \(entropic.marginalError), rebuilt \(plan.marginalError)")
    // A coupling of mass |a| costs between 0 and |a| max C.
    #expect(result.cost >= 0 && result.cost <= plan.maxCost * (x.mass + slack), "\(label): cost \(result.cost)")
    #expect(abs(result.cost - plan.transport) <= slack * plan.maxCost + 1e-12, "\(label)")
    // Regularized cost: <P, C> + eps KL(P | a (x) b) >= 0, and for a plan with exact rows
    // (or columns) and unit masses KL = sum_i a_i KL(P_i. / a_i | b) <= log(1 / min b).
    let logBound = -log(min(x.weights.min()!, y.weights.min()!))
    let valueSlack = slack * (plan.maxCost + plan.maxPotential) + 1e-12
    #expect(abs(entropic.regularizedCost - plan.regularized) <= valueSlack,
            "\(label): reported \(entropic.regularizedCost), rebuilt \(plan.regularized)")
    #expect(entropic.regularizedCost >= -valueSlack, "\(label)")
    if result.status != .converged {
        #expect(entropic.regularizedCost <= plan.maxCost * x.mass + eps * logBound + valueSlack,
                "\(label): regularized \(entropic.regularizedCost)")
    }
}

@Suite("Sinkhorn early stops")
struct SinkhornEarlyStopTests {
    /// The clouds of the bug report: x ~ N(0, I) (50 points), y ~ N((1, 1), I) (40 points).
    static func problem() throws -> TransportProblem {
        try TransportProblem(source: EntropicTestClouds.gaussian(50, seed: 7001),
                             target: EntropicTestClouds.gaussian(40, seed: 7002, shift: 1))
    }

    static let caps = [1, 2, 5, 10, 30]

    @Test("A capped balanced solve returns potentials of the target eps with one exact marginal",
          arguments: [1e-4, 1e-3, 1e-2])
    func balanced(eps: Double) throws {
        // Before the fix, caps that ran out during the epsilon-scaling stages returned the
        // potentials of a stage eps: plan mass and transport cost ~1e73 at eps = 1e-4.
        let problem = try Self.problem()
        for cap in Self.caps {
            let solver = try SinkhornSolver(epsilon: eps, tolerance: 1e-9, maxIterations: cap)
            let result = try solver.solve(problem)
            checkEarlyStop(problem, result, epsilon: eps, tolerance: 1e-9, cap: cap, "eps \(eps) cap \(cap)")
        }
    }

    @Test("Capped solves without epsilon scaling and with plain Sinkhorn behave the same", arguments: [1e-4, 1e-2])
    func otherSchedules(eps: Double) throws {
        let problem = try Self.problem()
        for cap in Self.caps {
            var solver = try SinkhornSolver(epsilon: eps, tolerance: 1e-9, maxIterations: cap, epsilonScaling: .none)
            checkEarlyStop(problem, try solver.solve(problem), epsilon: eps, tolerance: 1e-9, cap: cap, "no scaling, eps \(eps) cap \(cap)")
            solver.epsilonScaling = .automatic
            solver.overRelaxation = .none
            solver.newtonSteps = false
            checkEarlyStop(problem, try solver.solve(problem), epsilon: eps, tolerance: 1e-9, cap: cap, "plain, eps \(eps) cap \(cap)")
        }
    }

    @Test("A capped symmetric self solve has one exact marginal", arguments: [1e-4, 1e-3, 1e-2])
    func selfSolve(eps: Double) throws {
        let problem = try Self.problem()
        for (name, cloud) in [("source", problem.source), ("target", problem.target)] {
            let selfProblem = try TransportProblem(source: cloud, target: cloud)
            for cap in Self.caps {
                let solver = try SinkhornSolver(epsilon: eps, tolerance: 1e-9, maxIterations: cap)
                let result = try solver.solveSelf(cloud)
                checkEarlyStop(selfProblem, result, epsilon: eps, tolerance: 1e-9, cap: cap, "self \(name), eps \(eps) cap \(cap)")
            }
        }
    }

    @Test("A capped divergence is assembled from three honest terms", arguments: [1e-4, 1e-3, 1e-2])
    func divergence(eps: Double) throws {
        let problem = try Self.problem()
        let sourceProblem = try TransportProblem(source: problem.source, target: problem.source)
        let targetProblem = try TransportProblem(source: problem.target, target: problem.target)
        for cap in Self.caps {
            let solver = try SinkhornSolver(epsilon: eps, tolerance: 1e-9, maxIterations: cap)
            let result = try SinkhornDivergence(solver: solver).evaluate(problem, gradient: true)
            let label = "divergence eps \(eps) cap \(cap)"
            checkEarlyStop(problem, result.cross, epsilon: eps, tolerance: 1e-9, cap: cap, label + " cross")
            checkEarlyStop(sourceProblem, result.sourceSelf, epsilon: eps, tolerance: 1e-9, cap: cap, label + " source self")
            checkEarlyStop(targetProblem, result.targetSelf, epsilon: eps, tolerance: 1e-9, cap: cap, label + " target self")
            let assembled = result.cross.entropic!.regularizedCost
                - (result.sourceSelf.entropic!.regularizedCost + result.targetSelf.entropic!.regularizedCost) / 2
            #expect(result.divergence == assembled, "\(label)")
            #expect(result.converged == (result.cross.converged && result.sourceSelf.converged && result.targetSelf.converged))
            #expect(result.sourceGradient?.allSatisfy(\.isFinite) == true, "\(label)")
        }
    }

    @Test("The potentials of a capped solve are a good warm start at the target eps")
    func warmStartAfterCap() throws {
        // The closed potentials belong to the target eps, so the warm-started solve (which
        // skips the epsilon stages) must reach the cold solve's answer. Tolerance 1e-10 on the
        // marginals moves the costs by at most ~1e-10 * max C, so 1e-8 relative is ample.
        let problem = try Self.problem()
        let eps = 1e-3
        let cold = try SinkhornSolver(epsilon: eps, tolerance: 1e-10, maxIterations: 100_000).solve(problem)
        #expect(cold.converged)
        let capped = try SinkhornSolver(epsilon: eps, tolerance: 1e-10, maxIterations: 5).solve(problem)
        #expect(capped.status == .iterationLimit)
        let warm = try SinkhornSolver(epsilon: eps, tolerance: 1e-10, maxIterations: 100_000)
            .solve(problem, warmStart: capped.potentials, workspace: SinkhornWorkspace())
        #expect(warm.converged)
        #expect(abs(warm.cost - cold.cost) <= 1e-8 * cold.cost)
        #expect(abs(warm.entropic!.regularizedCost - cold.entropic!.regularizedCost) <= 1e-8 * cold.entropic!.regularizedCost)
    }
}
