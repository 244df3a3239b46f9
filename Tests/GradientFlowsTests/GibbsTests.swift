import Testing
import Wasserstein
@testable import GradientFlows

@Suite("Stationary Gibbs measure")
struct GibbsTests {
    /// For the linear network Psi_lambda(theta; rho) = -<b*, theta> + <theta, m(rho)> + (lambda/2)|theta|^2,
    /// so rho* = N(b* / (1 + lambda), 1 / (lambda beta)) per axis (closed form). On a grid with
    /// spacing well below the deviation the discrete moments of the point-sampled Gaussian match to
    /// spectral accuracy; the fixed point stops at L1 residual 1e-12, hence bound 1e-9.
    @Test("damped fixed point reproduces the closed-form Gibbs measure of the linear network", arguments: [1, 2])
    func linearNetwork(d: Int) throws {
        let b: [Double] = d == 1 ? [1.5] : [1.5, -0.5]
        let lambda = 0.5, beta = 2.0
        let energy = try linearNetworkEnergy(teacher: b, lambda: lambda, beta: beta, fastInteraction: true)
        let grid = try RegularGrid(dimension: d, lower: -7.5, upper: 8.5, pointsPerAxis: d == 1 ? 321 : 81)
        let result = try GibbsFixedPoint.solve(energy: energy, grid: grid)
        #expect(result.converged)
        #expect(result.residual <= 1e-12)
        let (mean, variance) = result.density.moments
        for a in 0 ..< d {
            #expect(abs(mean[a] - b[a] / (1 + lambda)) < 1e-9)
            #expect(abs(variance[a] - 1 / (lambda * beta)) < 1e-9)
        }
        #expect(abs(result.density.masses.reduce(0, +) - 1) < 1e-12)
    }

    /// rho* minimises F (convex here: positive definite interaction kernel), so every perturbation
    /// rho* + t (nu - rho*) along a few directions must raise F; and the damped iteration must reach
    /// the same point from two different starts.
    @Test("the Gibbs measure of a nonlinear interaction minimises F and does not depend on the start")
    func nonlinear() throws {
        let energy = try gaussianInteractionEnergy(dimension: 1, tilt: 1, lambda: 1, beta: 3)
        let grid = try RegularGrid(dimension: 1, lower: -5, upper: 6, pointsPerAxis: 221)
        let a = try GibbsFixedPoint.solve(energy: energy, grid: grid)
        let start = try NormalLaw(mean: [-2], standardDeviation: [0.3]).discretized(on: grid)
        let b = try GibbsFixedPoint.solve(energy: energy, grid: grid, options: GibbsOptions(damping: 0.3), initial: start)
        #expect(a.converged && b.converged)
        var l1 = 0.0
        for i in 0 ..< grid.count { l1 += abs(a.density.masses[i] - b.density.masses[i]) }
        #expect(l1 < 1e-10)
        let jko = try GridJKO(energy: energy, tau: 0.1, grid: grid)
        let f0 = jko.freeEnergy(of: a.density).total
        #expect(abs(f0 - a.freeEnergy) < 1e-12)
        for (mu, s) in [(0.0, 1.0), (2.0, 0.5), (-1.0, 2.0)] {
            let nu = try NormalLaw(mean: [mu], standardDeviation: [s]).discretized(on: grid)
            for t in [0.01, 0.1] {
                let mixed = try GridDensity(grid: grid, masses: (0 ..< grid.count).map { (1 - t) * a.density.masses[$0] + t * nu.masses[$0] })
                #expect(jko.freeEnergy(of: mixed).total > f0)
            }
        }
    }

    /// A grid JKO run of F_{lambda,beta} with a nonlinear interaction ends near rho*: W2(rho_t, rho*)
    /// (exact in 1-D) falls from 2.0 to a plateau of 5.9e-3 by t = 12 (tau = 0.2), and decreases
    /// monotonically on the way (measured every 5 steps). The plateau is the stationary bias of the
    /// scheme: with the compensated blur gamma = tau/beta the fixed point of a step solves
    /// Psi + (1/beta) log rho = const up to O(gamma^2 / tau) = O(tau / beta^2) (on Gaussians the
    /// variance is off by tau / (32 beta)). Bound 0.01.
    @Test("grid JKO of F ends near the Gibbs measure")
    func jkoReachesGibbs() throws {
        let energy = try gaussianInteractionEnergy(dimension: 1, tilt: 1, lambda: 1, beta: 3)
        let grid = try RegularGrid(dimension: 1, lower: -5, upper: 6, pointsPerAxis: 221)
        let runner = try JKORunner(energy: energy, settings: JKORunSettings(
            tau: 0.2, steps: 60, scheme: .grid(grid, GridJKOOptions()), trackStationaryDistance: true, stationaryDistanceEvery: 5))
        let start = try NormalLaw(mean: [-1], standardDeviation: [0.4]).discretized(on: grid)
        let result = try runner.run(from: .density(start))
        #expect(result.allConverged)
        #expect(energyIsNonIncreasing(result.reports))
        let distances = result.reports.compactMap(\.distanceToStationary)
        #expect(distances.count == 13)
        #expect(distances.first! > 1)
        #expect(distances.last! < 0.01, "distances \(distances)")
        for k in 1 ..< distances.count { #expect(distances[k] < distances[k - 1]) }
    }

    @Test("bad Gibbs parameters throw typed errors")
    func badParameters() throws {
        let grid = try RegularGrid(dimension: 1, lower: -3, upper: 3, pointsPerAxis: 31)
        let noEntropy = try FreeEnergy(smooth: QuadraticPotential(dimension: 1, lambda: 1))
        #expect { try GibbsFixedPoint.solve(energy: noEntropy, grid: grid) } throws: { flowsErrorCase($0) == "invalidParameter(beta)" }
        let energy = try FreeEnergy.ornsteinUhlenbeck(dimension: 1, lambda: 1, beta: 1)
        #expect { try GibbsFixedPoint.solve(energy: energy, grid: grid, options: GibbsOptions(damping: 0)) } throws: { flowsErrorCase($0) == "invalidParameter(damping)" }
        #expect { try GibbsFixedPoint.solve(energy: energy, grid: grid, options: GibbsOptions(damping: 1.5)) } throws: { flowsErrorCase($0) == "invalidParameter(damping)" }
        let grid2 = try RegularGrid(dimension: 2, lower: -3, upper: 3, pointsPerAxis: 31)
        #expect { try GibbsFixedPoint.solve(energy: energy, grid: grid2) } throws: { flowsErrorCase($0) == "dimensionMismatch" }
        #expect(throws: GradientFlowsError.self) {
            try JKORunner(energy: noEntropy, settings: JKORunSettings(tau: 0.1, steps: 1, scheme: .grid(grid, GridJKOOptions()), trackStationaryDistance: true))
        }
    }
}
