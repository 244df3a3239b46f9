import Foundation
import Testing
import Wasserstein

/// The marginals and costs of the plan `P_ij = a_i b_j exp((f_i + g_j - C_ij) / eps)` rebuilt
/// independently of the solver (plain loops and Foundation's `exp`), to check what it reports.
private func audit(_ problem: TransportProblem, _ result: TransportResult, epsilon: Double)
    -> (marginalError: Double, transport: Double, regularized: Double, finite: Bool) {
    let x = problem.source, y = problem.target
    let f = result.potentials!.f, g = result.potentials!.g
    var rows = [Double](repeating: 0, count: x.count), cols = [Double](repeating: 0, count: y.count)
    var transport = 0.0, kl = 0.0, mass = 0.0
    for i in 0 ..< x.count {
        for j in 0 ..< y.count {
            var c = 0.0
            for k in 0 ..< x.dimension {
                let t = x.coordinates[i * x.dimension + k] - y.coordinates[j * y.dimension + k]
                c += t * t
            }
            let exponent = (f[i] + g[j] - c) / epsilon
            let p = x.weights[i] * y.weights[j] * exp(exponent)
            rows[i] += p
            cols[j] += p
            transport += p * c
            if p > 0 { kl += p * exponent }
            mass += p
        }
    }
    var err = 0.0
    for i in 0 ..< x.count { err += abs(rows[i] - x.weights[i]) }
    for j in 0 ..< y.count { err += abs(cols[j] - y.weights[j]) }
    let regularized = transport + epsilon * (kl - mass + x.mass * y.mass)
    let finite = f.allSatisfy(\.isFinite) && g.allSatisfy(\.isFinite) && result.cost.isFinite
        && (result.entropic?.regularizedCost.isFinite ?? false) && (result.entropic?.marginalError.isFinite ?? false)
    return (err, transport, regularized, finite)
}

@Suite("Sinkhorn solver")
struct SinkhornSolverTests {
    @Test("Matches POT 0.9.7 at eps = 1, 0.1, 0.01 on all reference cases")
    func potReference() throws {
        let cases = POTCase.all
        #expect(cases.count == 6)
        for c in cases {
            let problem = try c.problem()
            for (eps, reference) in c.sinkhorn {
                // Tolerance 1e-12 on the L1 marginal error: the values are then accurate to
                // about 1e-12 * max|potential| / mass, far inside the required 1e-8 relative.
                // POT's values come from its log-domain solver at stopThr 1e-13 (and, for the
                // slow 8-point case, a Newton solve), so they carry ~1e-12 errors themselves.
                let solver = try SinkhornSolver(epsilon: eps, tolerance: 1e-12, maxIterations: 100_000)
                let result = try solver.solve(problem)
                #expect(result.method.epsilon == eps && result.method.name == "sinkhorn")
                #expect(result.status == .converged, "case \(c.index) eps \(eps)")
                #expect(result.entropic!.marginalError <= 1e-12)
                #expect(abs(result.cost - reference.transport) <= 1e-8 * reference.transport,
                        "case \(c.index) eps \(eps): transport \(result.cost) vs POT \(reference.transport)")
                #expect(abs(result.entropic!.regularizedCost - reference.regularized) <= 1e-8 * reference.regularized,
                        "case \(c.index) eps \(eps): regularized \(result.entropic!.regularizedCost) vs POT \(reference.regularized)")
                #expect(result.entropic!.epsilon == eps)
            }
        }
    }

    @Test("Reported marginal error, costs and potentials agree with an independent rebuild of the plan")
    func honestReporting() throws {
        let x = try EntropicTestClouds.gaussian(25, seed: 11, randomWeights: true)
        let y = try EntropicTestClouds.gaussian(18, seed: 12, shift: 0.7, randomWeights: true)
        let problem = try TransportProblem(source: x, target: y)
        for eps in [1.0, 0.05, 0.003] {
            for tol in [1e-3, 1e-11] {
                let solver = try SinkhornSolver(epsilon: eps, tolerance: tol, maxIterations: 20_000)
                let result = try solver.solve(problem)
                let check = audit(problem, result, epsilon: eps)
                // The rebuild uses libm exp and another summation order: agreement to 1e-12 absolute
                // on quantities of order 1 is what double precision allows.
                #expect(abs(check.marginalError - result.entropic!.marginalError) <= 1e-12 + 1e-9 * check.marginalError)
                #expect(abs(check.transport - result.cost) <= 1e-11 * check.transport)
                #expect(abs(check.regularized - result.entropic!.regularizedCost) <= 1e-11 * abs(check.regularized))
                if result.status == .converged { #expect(check.marginalError <= tol * (1 + 1e-6) + 1e-14) }
            }
        }
    }

    @Test("Finite results for every eps from 10 down to 1e-4 on unit-scale clouds")
    func finiteForAllEpsilon() throws {
        let x = try EntropicTestClouds.gaussian(30, seed: 21)
        let y = try EntropicTestClouds.gaussian(24, seed: 22, shift: 1)
        let problem = try TransportProblem(source: x, target: y)
        for eps in [10, 3, 1, 0.3, 0.1, 0.03, 0.01, 3e-3, 1e-3, 3e-4, 1e-4] {
            // A small iteration cap: the point is finiteness and honest status, not convergence.
            let solver = try SinkhornSolver(epsilon: eps, tolerance: 1e-9, maxIterations: 400)
            let result = try solver.solve(problem)
            let check = audit(problem, result, epsilon: eps)
            #expect(check.finite, "eps \(eps)")
            #expect(result.status == .converged || result.status == .iterationLimit)
            #expect(result.converged == (result.entropic!.marginalError <= 1e-9), "eps \(eps)")
            #expect(abs(check.marginalError - result.entropic!.marginalError) <= 1e-10 + 1e-8 * check.marginalError, "eps \(eps)")
            #expect(result.iterations <= 400)
        }
    }

    @Test("A hard case (eps = 1e-4, far-apart clouds of scale 100) stays finite and is reported honestly")
    func hardCase() throws {
        let x = try EntropicTestClouds.gaussian(30, seed: 31, scale: 100)
        let y = try EntropicTestClouds.gaussian(30, seed: 32, shift: 1000, scale: 100)
        let problem = try TransportProblem(source: x, target: y)
        let solver = try SinkhornSolver(epsilon: 1e-4, tolerance: 1e-9, maxIterations: 300)
        let result = try solver.solve(problem)
        let check = audit(problem, result, epsilon: 1e-4)
        #expect(check.finite)
        // Costs are ~2e6 and eps/C ~ 5e-11: whatever the status, it must describe the plan returned.
        #expect(result.converged == (result.entropic!.marginalError <= 1e-9))
        #expect(abs(check.marginalError - result.entropic!.marginalError) <= 1e-8 + 1e-6 * check.marginalError)
        // A coupling's transport cost lies between the cheapest and the dearest pairing.
        let costs = try SquaredEuclideanCost.matrix(source: x, target: y).values
        #expect(result.cost >= costs.min()! * (1 - 1e-6) && result.cost <= costs.max()! * (1 + 1e-6))
    }

    @Test("Problems whose kernel exceeds maximumKernelCells are refused before any allocation")
    func kernelSizeLimit() throws {
        let x = try EntropicTestClouds.gaussian(30, seed: 41, scale: 1)
        let y = try EntropicTestClouds.gaussian(20, seed: 42, scale: 1)
        let problem = try TransportProblem(source: x, target: y)
        var solver = try SinkhornSolver(epsilon: 0.1)
        solver.maximumKernelCells = 599  // 30 * 20 = 600 cells: one too many
        #expect { try solver.solve(problem) } throws: { error in
            guard case WassersteinError.tooLarge(let reason) = error else { return false }
            return reason.contains("30 * 20") && reason.contains("exact")
        }
        #expect(throws: WassersteinError.self) { try solver.solveSelf(x) }  // 900 cells
        solver.maximumKernelCells = 600
        #expect(try solver.solve(problem).converged)
        // The divergence's three solves obey the same limit.
        var divergence = try SinkhornDivergence(epsilon: 0.1)
        divergence.solver.maximumKernelCells = 599
        #expect(throws: WassersteinError.self) { try divergence.evaluate(problem) }
    }

    @Test("Invalid parameters throw invalidParameter")
    func invalidParameters() throws {
        for eps in [0.0, -1, .nan, .infinity] {
            #expect(throws: WassersteinError.self) { try SinkhornSolver(epsilon: eps) }
        }
        for tol in [0.0, -1e-9, .nan, .infinity] {
            #expect(throws: WassersteinError.self) { try SinkhornSolver(epsilon: 0.1, tolerance: tol) }
        }
        #expect(throws: WassersteinError.self) { try SinkhornSolver(epsilon: 0.1, maxIterations: 0) }
        #expect(throws: WassersteinError.self) { try SinkhornSolver(epsilon: 0.1, epsilonScaling: .geometric(factor: 1, iterationsPerStage: 2)) }
        #expect(throws: WassersteinError.self) { try SinkhornSolver(epsilon: 0.1, epsilonScaling: .geometric(factor: 0.5, iterationsPerStage: 0)) }
        #expect(throws: WassersteinError.self) { try SinkhornSolver(epsilon: 0.1, overRelaxation: .fixed(2)) }
        #expect(throws: WassersteinError.self) { try SinkhornSolver(epsilon: 0.1, planOutput: .sparse(minimumMass: -1)) }
        do {
            _ = try SinkhornSolver(epsilon: -0.5)
            Issue.record("expected a throw")
        } catch let error as WassersteinError {
            guard case .invalidParameter(let name, _, _) = error else { Issue.record("wrong case \(error)"); return }
            #expect(name == "epsilon")
        }
        // Parameters mutated after construction are checked again by solve.
        var solver = try SinkhornSolver(epsilon: 0.1)
        solver.epsilon = 0
        let problem = try TransportProblem(source: EntropicTestClouds.gaussian(5, seed: 1), target: EntropicTestClouds.gaussian(5, seed: 2))
        #expect(throws: WassersteinError.self) { try solver.solve(problem) }
        // Warm starts of the wrong shape or with non-finite values.
        let good = try SinkhornSolver(epsilon: 0.1)
        let ws = SinkhornWorkspace()
        #expect(throws: WassersteinError.self) {
            try good.solve(problem, warmStart: DualPotentials(f: [0, 0], g: [0, 0, 0, 0, 0]), workspace: ws)
        }
        #expect(throws: WassersteinError.self) {
            try good.solve(problem, warmStart: DualPotentials(f: [0, 0, .nan, 0, 0], g: [0, 0, 0, 0, 0]), workspace: ws)
        }
    }

    @Test("Running out of iterations is reported, with the last iterate's honest numbers")
    func iterationLimit() throws {
        let problem = try TransportProblem(source: EntropicTestClouds.gaussian(20, seed: 41),
                                           target: EntropicTestClouds.gaussian(20, seed: 42, shift: 2))
        let solver = try SinkhornSolver(epsilon: 0.01, tolerance: 1e-12, maxIterations: 3, epsilonScaling: .none)
        let result = try solver.solve(problem)
        #expect(result.status == .iterationLimit)
        #expect(!result.converged)
        #expect(result.iterations == 3)
        #expect(result.entropic!.marginalError > 1e-12)
        let check = audit(problem, result, epsilon: 0.01)
        #expect(abs(check.marginalError - result.entropic!.marginalError) <= 1e-10 + 1e-8 * check.marginalError)
    }

    @Test("As eps -> 0 the costs decrease to W2^2 within eps * log(1 / min weight)")
    func smallEpsilonLimit() throws {
        // For an exact optimal plan P*, KL(P* | a x b) <= log(1 / max(a_i, b_j)) <= L := min(log 1/min a, log 1/min b)
        // because P*_ij <= min(a_i, b_j). Hence W2^2 <= <P_eps, C> <= OT_eps <= W2^2 + eps L, and both
        // values decrease with eps (d OT_eps / d eps = KL(P_eps) >= 0 and KL(P_eps) decreases in eps).
        // A marginal error e moves these by at most e * max C; tolerance 1e-12 makes that negligible.
        for c in POTCase.all {
            let problem = try c.problem()
            let exact = c.w2SquaredExact
            let bound = min(-log(c.a.min()!), -log(c.b.min()!))
            var previousTransport = Double.infinity, previousRegularized = Double.infinity
            for eps in [1.0, 0.3, 0.1, 0.03, 0.01, 0.003, 0.001] {
                let result = try SinkhornSolver(epsilon: eps, tolerance: 1e-12, maxIterations: 200_000).solve(problem)
                guard result.converged else {
                    Issue.record("case \(c.index) eps \(eps) did not converge (error \(result.entropic!.marginalError))")
                    continue
                }
                let transport = result.cost, regularized = result.entropic!.regularizedCost
                let slack = 1e-10 * exact
                #expect(transport >= exact - slack, "case \(c.index) eps \(eps)")
                #expect(transport <= regularized + slack)
                #expect(regularized <= exact + eps * bound + slack, "case \(c.index) eps \(eps): \(regularized - exact) > \(eps * bound)")
                #expect(transport <= previousTransport + slack)
                #expect(regularized <= previousRegularized + slack)
                previousTransport = transport
                previousRegularized = regularized
            }
            // At eps = 0.001 the gap is already below 0.01 * W2^2 on these unit-scale cases.
            #expect(previousTransport - exact <= 0.01 * exact, "case \(c.index)")
        }
    }

    @Test("Warm start from the previous potentials gives the same answer in fewer iterations")
    func warmStart() throws {
        // A JKO-like sequence: the source moves a little between solves.
        let y = try EntropicTestClouds.gaussian(40, seed: 51, shift: 0.5)
        var x = try EntropicTestClouds.gaussian(40, seed: 52)
        for eps in [0.1, 0.01] {
            let solver = try SinkhornSolver(epsilon: eps, tolerance: 1e-11, maxIterations: 50_000)
            let ws = SinkhornWorkspace()
            let first = try solver.solve(TransportProblem(source: x, target: y), warmStart: nil, workspace: ws)
            x = try x.translated(by: [0.01, -0.005])
            let problem = try TransportProblem(source: x, target: y)
            let cold = try solver.solve(problem)
            let warm = try solver.solve(problem, warmStart: first.potentials, workspace: ws)
            #expect(cold.converged && warm.converged)
            #expect(warm.iterations < cold.iterations, "eps \(eps): warm \(warm.iterations) vs cold \(cold.iterations)")
            #expect(abs(warm.cost - cold.cost) <= 1e-9 * cold.cost)
            #expect(abs(warm.entropic!.regularizedCost - cold.entropic!.regularizedCost) <= 1e-9 * cold.cost)
            // Compare plans, not potentials: the potential of a point that is coupled to the rest
            // only through plan entries of relative size delta is determined by the marginals
            // only to (marginal error) * eps / delta, which can be large at small eps, while the
            // plan itself is pinned down by the marginals.
            let pw = try solver.densePlan(problem, potentials: warm.potentials!)
            let pc = try solver.densePlan(problem, potentials: cold.potentials!)
            let l1 = zip(pw, pc).reduce(0.0) { $0 + abs($1.0 - $1.1) }
            #expect(l1 <= 1e-8, "eps \(eps): plans differ by \(l1)")
        }
    }

    @Test("A reused workspace gives bit-identical cold solves across problem sizes")
    func workspaceReuse() throws {
        let ws = SinkhornWorkspace()
        let solver = try SinkhornSolver(epsilon: 0.05, tolerance: 1e-10)
        for (n, m) in [(30, 20), (8, 50), (30, 20)] {
            let problem = try TransportProblem(source: EntropicTestClouds.gaussian(n, seed: UInt64(n)),
                                               target: EntropicTestClouds.gaussian(m, seed: UInt64(m + 100), shift: 0.3))
            let reused = try solver.solve(problem, warmStart: nil, workspace: ws)
            let fresh = try solver.solve(problem)
            #expect(reused.cost == fresh.cost)
            #expect(reused.potentials == fresh.potentials)
            #expect(reused.iterations == fresh.iterations)
        }
        #expect(ws.allocatedBytes >= 50 * 8 * 8)
        ws.releaseMemory()
        #expect(ws.allocatedBytes < 1000)
    }

    @Test("Plans on request: full, sparse and dense agree with the reported costs and marginals")
    func planOutput() throws {
        let x = try EntropicTestClouds.gaussian(15, seed: 61)
        let y = try EntropicTestClouds.gaussian(12, seed: 62, shift: 0.4)
        let problem = try TransportProblem(source: x, target: y)
        let full = try SinkhornSolver(epsilon: 0.02, tolerance: 1e-12, planOutput: .full).solve(problem)
        let sparse = try SinkhornSolver(epsilon: 0.02, tolerance: 1e-12, planOutput: .sparse(minimumMass: 1e-6)).solve(problem)
        let none = try SinkhornSolver(epsilon: 0.02, tolerance: 1e-12).solve(problem)
        #expect(none.plan == nil)
        let plan = try #require(full.plan)
        #expect(plan.entries.count == 15 * 12)
        for (row, w) in zip(plan.sourceMarginal, x.weights) { #expect(abs(row - w) <= 1e-12) }
        for (col, w) in zip(plan.targetMarginal, y.weights) { #expect(abs(col - w) <= 1e-12) }
        let costs = try SquaredEuclideanCost.matrix(source: x, target: y)
        let planCost = plan.entries.reduce(0.0) { $0 + $1.mass * costs[$1.source, $1.target] }
        #expect(abs(planCost - full.cost) <= 1e-12 * full.cost)
        let sparsePlan = try #require(sparse.plan)
        #expect(sparsePlan.entries.count < plan.entries.count)
        #expect(sparsePlan.entries.allSatisfy { $0.mass >= 1e-6 })
        let dropped = 1 - sparsePlan.entries.reduce(0.0) { $0 + $1.mass }
        #expect(dropped >= -1e-12 && dropped <= Double(15 * 12) * 1e-6)
        let dense = try SinkhornSolver(epsilon: 0.02).densePlan(problem, potentials: full.potentials!)
        #expect(zip(dense, plan.dense).allSatisfy { abs($0 - $1) <= 1e-15 })
    }

    @Test("Transport cost scales with the common mass; zero weights act as absent points")
    func massAndZeroWeights() throws {
        let x = try EntropicTestClouds.gaussian(12, seed: 71)
        let y = try EntropicTestClouds.gaussian(10, seed: 72, shift: 0.5)
        let solver = try SinkhornSolver(epsilon: 0.05, tolerance: 1e-12)
        let unit = try solver.solve(TransportProblem(source: x, target: y))
        // With a and b both scaled by M the minimiser is M times the unit one (the extra
        // -eps log M * sum P term is linear in the mass), so <P, C> scales by M.
        let doubled = try solver.solve(TransportProblem(source: x.reweighted(x.weights.map { 2 * $0 }),
                                                        target: y.reweighted(y.weights.map { 2 * $0 })))
        #expect(abs(doubled.cost - 2 * unit.cost) <= 1e-10 * unit.cost)
        // Adding far-away points of zero weight changes nothing.
        var coordinates = x.coordinates
        coordinates += [50, 50, -40, 7]
        let padded = try PointCloud(coordinates: coordinates, dimension: 2, weights: x.weights + [0, 0])
        let withZeros = try solver.solve(TransportProblem(source: padded, target: y))
        #expect(withZeros.converged)
        #expect(abs(withZeros.cost - unit.cost) <= 1e-10 * unit.cost)
        #expect(abs(withZeros.entropic!.regularizedCost - unit.entropic!.regularizedCost) <= 1e-10 * unit.cost)
    }

    @Test("Self transport by the symmetric iteration matches the general solver")
    func selfTransport() throws {
        let x = try EntropicTestClouds.gaussian(30, seed: 81, randomWeights: true)
        for eps in [1.0, 0.1, 0.01, 0.001] {
            let solver = try SinkhornSolver(epsilon: eps, tolerance: 1e-12, maxIterations: 100_000)
            let symmetric = try solver.solveSelf(x)
            let general = try solver.solve(TransportProblem(source: x, target: x))
            #expect(symmetric.converged && general.converged)
            #expect(abs(symmetric.entropic!.regularizedCost - general.entropic!.regularizedCost) <= 1e-10)
            #expect(abs(symmetric.cost - general.cost) <= 1e-10)
            // The symmetric iteration contracts at rate <= 1/2: 1e-12 in well under 100 iterations.
            #expect(symmetric.iterations <= 100, "eps \(eps): \(symmetric.iterations)")
        }
    }
}
