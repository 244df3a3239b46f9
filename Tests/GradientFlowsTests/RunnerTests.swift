import Testing
import Wasserstein
@testable import GradientFlows

@Suite("JKO runner and grid distance")
struct RunnerTests {
    /// The runner's contract: one report per state (step 0 included), the progress callback sees
    /// exactly those reports and states in order, times are k tau, and the oracle column is the
    /// Bures distance between the state's moments and the exact flow's (recomputed here).
    @Test("runner reports every step, calls progress in order, and fills the oracle column", arguments: ["particle", "grid"])
    func contract(scheme: String) throws {
        let lambda = 1.0, beta = 2.0, tau = 0.1, steps = 4
        let energy = try FreeEnergy.ornsteinUhlenbeck(dimension: 2, lambda: lambda, beta: beta)
        let oracle = try OrnsteinUhlenbeckOracle(lambda: lambda, beta: beta)
        let law = try NormalLaw(mean: [1, -0.5], standardDeviation: [0.5, 0.7])
        let grid = try RegularGrid(lowerBounds: [-4, -5], upperBounds: [5, 4], pointsPerAxis: [46, 46])
        let settings = JKORunSettings(tau: tau, steps: steps,
                                      scheme: scheme == "grid" ? .grid(grid, GridJKOOptions())
                                                               : .particle(ParticleJKOOptions(transportTerm: { PlanTransportTerm(solver: AssignmentSolver()) })),
                                      oracle: oracle)
        let runner = try JKORunner(energy: energy, settings: settings)
        let initial: JKOState = scheme == "grid" ? .density(try law.discretized(on: grid)) : .particles(try law.sample(count: 60, seed: 11))
        var seen: [(JKOStepReport, JKOState)] = []
        let result = try runner.run(from: initial) { seen.append(($0, $1)) }
        #expect(result.reports.count == steps + 1)
        #expect(seen.count == steps + 1)
        #expect(seen.last!.1 == result.final)
        #expect(seen.first!.1 == initial)
        let (m0, v0) = initial.moments
        for (k, report) in result.reports.enumerated() {
            #expect(report == seen[k].0)
            #expect(report.step == k)
            #expect(abs(report.time - Double(k) * tau) < 1e-15)
            #expect(report.converged)
            let expected = gaussianW2Diagonal(mean1: report.mean, standardDeviation1: report.variance.map { $0.squareRoot() },
                                              mean2: m0.map { oracle.mean(at: report.time, initial: $0) },
                                              standardDeviation2: v0.map { oracle.standardDeviation(at: report.time, initial: $0.squareRoot()) })
            #expect(abs(report.gaussianW2ToExactFlow! - expected) < 1e-14)
            if k > 0 { #expect(report.w2Step > 0 && report.innerIterations > 0 && report.transportSolves > 0) }
        }
        #expect(result.reports[0].gaussianW2ToExactFlow! < 1e-14)
        #expect((scheme == "grid") == (result.gridBlur != nil))
        // Mismatched initial states are refused.
        let wrong: JKOState = scheme == "grid" ? .particles(try law.sample(count: 10, seed: 1)) : .density(try law.discretized(on: grid))
        #expect(throws: GradientFlowsError.self) { try runner.run(from: wrong) }
    }

    /// W2 between grid densities: 1-D exact (quantile merge) against W2 of the Gaussians with the
    /// same discrete moments: equal up to the lattice (bound 1% here, spacing 0.05); 2-D Sinkhorn
    /// divergence against the Bures value: S_gamma = W2^2 + O(gamma^2) (bound 1%); and a density
    /// against itself gives 0 (1e-6, the divergence's residual at tolerance 1e-9).
    @Test("grid distance agrees with the Gaussian W2", arguments: [1, 2])
    func gridDistance(d: Int) throws {
        let grid = try RegularGrid(dimension: d, lower: -5, upper: 6, pointsPerAxis: d == 1 ? 221 : 56)
        let a = try NormalLaw(mean: [Double](repeating: 0, count: d), standardDeviation: [Double](repeating: 0.8, count: d)).discretized(on: grid)
        let b = try NormalLaw(mean: [Double](repeating: 1, count: d), standardDeviation: [Double](repeating: 0.6, count: d)).discretized(on: grid)
        var distance = try GridWassersteinDistance(grid: grid)
        let r = try distance.distance(a, b)
        #expect(r.converged)
        #expect(r.method == (d == 1 ? .exact : .sinkhorn(epsilon: GridWassersteinDistance.defaultEpsilon(for: grid),
                                                          options: SinkhornOptions(maxIterations: 20_000, divergence: true))))
        let (ma, va) = a.moments, (mb, vb) = b.moments
        let bures = gaussianW2Diagonal(mean1: ma, standardDeviation1: va.map { $0.squareRoot() }, mean2: mb, standardDeviation2: vb.map { $0.squareRoot() })
        #expect(abs(r.w2 - bures) < 0.01 * bures, "grid \(r.w2) vs Bures \(bures)")
        #expect(try distance.distance(a, a).w2 < 1e-6)
        let symmetric = try distance.distance(b, a)
        #expect(abs(symmetric.w2 - r.w2) < 1e-6)
    }

    /// The grid distance speaks TransportMethod: in 1-D the Sinkhorn divergence at a small
    /// epsilon against the exact quantile merge (S_eps = W2^2 + O(eps^2): bound 1e-3 relative),
    /// the plain entropic cost above it (its plan is feasible up to the marginal tolerance);
    /// exact in 2-D, lp, gaussian and a geometry of its own are refused by case.
    @Test("grid distance methods: exact and Sinkhorn agree in 1-D, the rest is refused")
    func gridDistanceMethods() throws {
        let grid = try RegularGrid(dimension: 1, lower: -4, upper: 5, pointsPerAxis: 181)
        let a = try NormalLaw(mean: [0], standardDeviation: [0.8]).discretized(on: grid)
        let b = try NormalLaw(mean: [1], standardDeviation: [0.6]).discretized(on: grid)
        var exact = try GridWassersteinDistance(grid: grid, method: .sorted)
        let e = try exact.distance(a, b)
        #expect(e.method == .exact && exact.method == .exact && e.iterations == 0)
        let divergenceMethod = TransportMethod.sinkhorn(epsilon: 0.01, options: SinkhornOptions(divergence: true))
        var divergence = try GridWassersteinDistance(grid: grid, method: divergenceMethod)
        let d = try divergence.distance(a, b)
        #expect(d.method == divergenceMethod && d.converged && d.iterations > 0)
        #expect(abs(d.w2 * d.w2 - e.w2 * e.w2) < 1e-3 * e.w2 * e.w2, "divergence \(d.w2) vs exact \(e.w2)")
        var plain = try GridWassersteinDistance(grid: grid, method: .sinkhorn(epsilon: 0.01))
        let p = try plain.distance(a, b)
        #expect(p.converged && p.w2 > e.w2 && p.w2 < 1.05 * e.w2, "entropic cost \(p.w2) vs exact \(e.w2)")

        let plane = try RegularGrid(dimension: 2, lower: -1, upper: 1, pointsPerAxis: 16)
        for method in [TransportMethod.exact, .sorted, .lp, .gaussian,
                       .sinkhorn(epsilon: 0.1, options: SinkhornOptions(geometry: .dense))] {
            #expect { try GridWassersteinDistance(grid: plane, method: method) } throws: { flowsErrorCase($0) == "unsupported" }
        }
        #expect(throws: WassersteinError.invalidParameter(name: "epsilon", value: -1, requirement: "must be finite and > 0")) {
            try GridWassersteinDistance(grid: plane, method: .sinkhorn(epsilon: -1))
        }
        let elsewhere = try NormalLaw(mean: [0, 0], standardDeviation: [0.5, 0.5]).discretized(on: plane)
        #expect { try divergence.distance(a, elsewhere) } throws: { flowsErrorCase($0) == "unsupported" }
    }

    /// Narrow densities far apart (tails far below 1e-300 of the kernel's reach): the kernel-mode
    /// scalings overflow and the distance falls back to the log domain. Against the Bures value
    /// of the discrete moments, same 1% bound as above.
    @Test("grid distance survives densities whose scalings overflow")
    func gridDistanceLogDomainFallback() throws {
        let grid = try RegularGrid(dimension: 2, lower: -3, upper: 3, pointsPerAxis: 40)
        let a = try NormalLaw(mean: [-1.2, 0.6], standardDeviation: [0.3, 0.3]).discretized(on: grid)
        let b = try NormalLaw(mean: [0.0, 0.0], standardDeviation: [0.5, 0.5]).discretized(on: grid)
        var distance = try GridWassersteinDistance(grid: grid)
        let r = try distance.distance(a, b)
        #expect(r.w2.isFinite && r.converged)
        let (ma, va) = a.moments, (mb, vb) = b.moments
        let bures = gaussianW2Diagonal(mean1: ma, standardDeviation1: va.map { $0.squareRoot() }, mean2: mb, standardDeviation2: vb.map { $0.squareRoot() })
        #expect(abs(r.w2 - bures) < 0.01 * bures, "grid \(r.w2) vs Bures \(bures)")
        #expect(try distance.distance(a, a).w2 < 1e-6)
    }
}
