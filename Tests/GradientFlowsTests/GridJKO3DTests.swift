import Testing
import Wasserstein
@testable import GradientFlows

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The grid scheme in `D = 3` (the three-pass kernel is tested in SeparableGridGeometryTests): the Gaussian one-step oracle, the product
/// structure (a separable problem on a 3-D grid is the product of its 2-D and 1-D solutions) and
/// the Gibbs point. Grids are small (debug builds run the kernel unoptimised).
@Suite("Grid JKO in 3-D")
struct GridJKO3DTests {
    /// The OU oracle of the 1-D and 2-D tests (GridJKOTests.oneStep) on a 3-D grid, two steps:
    /// per axis and step, the mean follows the exact JKO recursion (entropic OT separates the
    /// means), the deviation the entropic Gaussian step in closed form, and the exact JKO step to
    /// O(gamma^2) (measured 4.2e-4 at gamma = 0.05 in 1-D; the larger blur 0.2 here, which lets
    /// a coarse grid resolve the kernel, gives 4.6e-3: bound 1e-2). The first two hold to the
    /// Sinkhorn tolerance and lattice effects exp(-pi^2 gamma / h^2) = 1.4e-8 (gamma / h^2 =
    /// 1.84), but the debug-sized grid puts its walls 4.8 final deviations out, which moves the
    /// moments (measured: 6e-8 on the mean and 2.7e-7 on the deviation after one step, 6e-7 and
    /// 2.8e-6 after two): bound 3e-5. GridJKOTests.oneStep checks the
    /// same formulas to 1e-7 in 1-D and 2-D, productOfLowerDimensions ties 3-D to them to 1e-9.
    @Test("each 3-D step matches the exact one-step Gaussian JKO formula")
    func oneStep() throws {
        let lambda = 1.0, beta = 2.0, tau = 0.25, gamma = 0.2, h = 0.33
        let energy = try FreeEnergy.ornsteinUhlenbeck(dimension: 3, lambda: lambda, beta: beta)
        let oracle = try OrnsteinUhlenbeckOracle(lambda: lambda, beta: beta)
        let mean = [0.5, 0.3, 0.7]
        // 19 points per axis centred on where the mean is after the two steps (0.64 m).
        let lower = mean.map { 0.8 * $0 - 9 * h }
        let grid = try RegularGrid(lowerBounds: lower, upperBounds: lower.map { $0 + 18 * h }, pointsPerAxis: [19, 19, 19])
        var jko = try GridJKO(energy: energy, tau: tau, grid: grid, options: GridJKOOptions(epsilon: gamma))
        #expect(jko.entropicDiffusionIsCompensated)
        var rho = try NormalLaw(mean: mean, standardDeviation: [0.5, 0.5, 0.5]).discretized(on: grid)
        var reports = [jko.initialReport(rho)]
        for k in 1 ... 2 {
            let (m0, v0) = rho.moments
            let (next, report) = try jko.step(from: rho, index: k)
            #expect(report.converged)
            for a in 0 ..< 3 {
                let s = v0[a].squareRoot()
                let exact = oracle.jkoStep(mean: m0[a], standardDeviation: s, tau: tau)
                let entropic = OrnsteinUhlenbeckOracle.entropicJKOStep(lambda: lambda, betaEffective: jko.effectiveInverseTemperature!,
                                                                       gamma: jko.epsilon, tau: tau, mean: m0[a], standardDeviation: s)
                #expect(abs(report.mean[a] - exact.mean) < 3e-5)
                #expect(abs(report.variance[a].squareRoot() - entropic.standardDeviation) < 3e-5)
                #expect(abs(report.variance[a].squareRoot() - exact.standardDeviation) < 1e-2)
            }
            #expect(abs(next.masses.reduce(0, +) - 1) < 1e-12)
            reports.append(report)
            rho = next
        }
        #expect(energyIsNonIncreasing(reports))
    }

    /// A separable problem (quadratic potential, product start, one blur) is solved on the
    /// `n0 x n1 x n2` grid and, separately, on the `n0 x n1` and `n2` grids: the discrete entropic
    /// step has a unique solution, and the product of the 2-D and 1-D solutions is one (kernel,
    /// potential, entropy and start all factor), so the 3-D masses must equal the outer product
    /// up to the Sinkhorn tolerances (L1 1e-9 after two steps). The start is not Gaussian along
    /// axis 2 (two bumps), and the axes have different bounds and lengths.
    @Test("a separable 3-D problem equals the product of its 2-D and 1-D solutions")
    func productOfLowerDimensions() throws {
        let lambda = 1.0, beta = 2.0, tau = 0.2, gamma = 0.2
        let lower = [-2.0, -3.0, -2.5], upper = [3.0, 2.0, 3.5], n = [13, 12, 14]
        let grid3 = try RegularGrid(lowerBounds: lower, upperBounds: upper, pointsPerAxis: n)
        let grid2 = try RegularGrid(lowerBounds: Array(lower[0 ..< 2]), upperBounds: Array(upper[0 ..< 2]), pointsPerAxis: Array(n[0 ..< 2]))
        let grid1 = try RegularGrid(lowerBounds: [lower[2]], upperBounds: [upper[2]], pointsPerAxis: [n[2]])
        let start2 = try NormalLaw(mean: [0.5, -0.5], standardDeviation: [0.6, 0.5]).discretized(on: grid2)
        let start1 = try GridDensity(grid: grid1, masses: grid1.axes[0].map { exp(-8 * ($0 + 0.8) * ($0 + 0.8)) + 0.6 * exp(-6 * ($0 - 1.2) * ($0 - 1.2)) })
        let start3 = try GridDensity(grid: grid3, masses: grid3.tensorProduct([grid2.marginals(start2.masses)[0], grid2.marginals(start2.masses)[1], start1.masses]))
        let options = GridJKOOptions(epsilon: gamma, tolerance: 1e-12)
        var jko3 = try GridJKO(energy: FreeEnergy.ornsteinUhlenbeck(dimension: 3, lambda: lambda, beta: beta), tau: tau, grid: grid3, options: options)
        var jko2 = try GridJKO(energy: FreeEnergy.ornsteinUhlenbeck(dimension: 2, lambda: lambda, beta: beta), tau: tau, grid: grid2, options: options)
        var jko1 = try GridJKO(energy: FreeEnergy.ornsteinUhlenbeck(dimension: 1, lambda: lambda, beta: beta), tau: tau, grid: grid1, options: options)
        var rho3 = start3, rho2 = start2, rho1 = start1
        for k in 1 ... 2 {
            let s3 = try jko3.step(from: rho3, index: k), s2 = try jko2.step(from: rho2, index: k), s1 = try jko1.step(from: rho1, index: k)
            #expect(s3.report.converged && s2.report.converged && s1.report.converged)
            rho3 = s3.density; rho2 = s2.density; rho1 = s1.density
            var product = [Double]()
            for p in rho2.masses { for q in rho1.masses { product.append(p * q) } }
            var l1 = 0.0
            for i in 0 ..< grid3.count { l1 += abs(rho3.masses[i] - product[i]) }
            #expect(l1 < 1e-9, "step \(k): L1 = \(l1)")
            // The free energies add up too (entropy of a product is the sum).
            let f3 = s3.report.freeEnergy, f21 = s2.report.freeEnergy + s1.report.freeEnergy
            #expect(abs(f3 - f21) < 1e-8)
        }
    }

    /// The Gibbs point of the linear network in 3-D (closed form N(b* / (1 + lambda),
    /// 1 / (lambda beta)) per axis, as in GibbsTests) by the damped fixed point, to 1e-9; and a
    /// grid JKO run from far away on a coarser grid, against the fixed point on that grid. The run
    /// stops short of rho* by the stationary bias of the scheme (GibbsTests.jkoReachesGibbs): its
    /// variance sits about tau / (32 beta) = 7.8e-3 above (measured 7.6e-3 at tau = 0.5), the
    /// means agree to 1e-3 (measured 8e-6 after 16 steps). F falls at every step of the
    /// transient (the first 6); then it overshoots min F by 4e-5 and rises by O(gamma^2 / tau)
    /// towards the scheme's own fixed point, which lies above min F by less than 1e-3 (measured 8.7e-5).
    @Test("3-D Gibbs point of the linear network, and the grid JKO run reaching it")
    func gibbsPoint() throws {
        let b = [1.0, -0.5, 0.5]
        let lambda = 1.0, beta = 2.0, tau = 0.5
        let energy = try linearNetworkEnergy(teacher: b, lambda: lambda, beta: beta, fastInteraction: true)
        let fine = try RegularGrid(dimension: 3, lower: -5.5, upper: 5.7, pointsPerAxis: 29)
        let exact = try GibbsFixedPoint.solve(energy: energy, grid: fine)
        #expect(exact.converged)
        let (mean, variance) = exact.density.moments
        for a in 0 ..< 3 {
            #expect(abs(mean[a] - b[a] / (1 + lambda)) < 1e-9)
            #expect(abs(variance[a] - 1 / (lambda * beta)) < 1e-9)
        }
        let grid = try RegularGrid(dimension: 3, lower: -3.2, upper: 3.2, pointsPerAxis: 17)
        let gibbs = try GibbsFixedPoint.solve(energy: energy, grid: grid)
        #expect(gibbs.converged)
        let (gm, gv) = gibbs.density.moments
        let runner = try JKORunner(energy: energy, settings: JKORunSettings(
            tau: tau, steps: 16, scheme: .grid(grid, GridJKOOptions(interaction: .semiImplicit))))
        let start = try NormalLaw(mean: [-1, 1, 0], standardDeviation: [0.5, 0.5, 0.5]).discretized(on: grid)
        let result = try runner.run(from: .density(start))
        #expect(result.allConverged)
        #expect(energyIsNonIncreasing(Array(result.reports.prefix(7))))
        let (mk, vk) = result.final.moments
        for a in 0 ..< 3 {
            #expect(abs(mk[a] - gm[a]) < 1e-3, "axis \(a): mean \(mk[a]) vs \(gm[a])")
            let bias = vk[a] - gv[a]
            #expect(bias > 0 && abs(bias - tau / (32 * beta)) < 1e-3, "axis \(a): variance \(vk[a]) vs \(gv[a])")
        }
        let fk = result.reports.last!.freeEnergy
        #expect(fk >= gibbs.freeEnergy - 1e-12 && fk < gibbs.freeEnergy + 1e-3, "F \(fk) vs min \(gibbs.freeEnergy)")
    }
}
