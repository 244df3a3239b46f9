import Foundation
import Testing
// The guide's samples assume exactly these imports: the umbrella module and the experiment layer.
import OptimalTransport
import Experiments

/// The Swift samples of `Docs/Guide.md`, section 4, each pasted verbatim as the body of one test
/// (between the `// Sample` and `// End of sample` comments) and followed by checks of what it
/// computes against something independent: a hand-computed value, a closed form, a second
/// solver, a finite difference or the separate runner of the same spec.
///
/// `samplesAreInThisFile` reads the guide and fails when one of its Swift blocks is not found
/// here (compared line by line with indentation stripped), so an edited sample cannot escape
/// compilation.
@Suite("Guide samples")
struct GuideSampleTests {

    // MARK: - 4.1 Exact W2 with plan, potentials and gradient

    @Test("4.1 exact W2: the hand-computed value, duality and the finite-difference gradient")
    func exactDistance() throws {
        // Sample
        let mu = try PointCloud(points: [[0, 0], [1, 0], [0.5, 1]])               // weights 1/3 each
        let nu = try PointCloud(points: [[1, 1], [2, 1]], weights: [0.25, 0.75])
        let problem = try TransportProblem(source: mu, target: nu)
        let result = try wasserstein2(problem, planOutput: .full)  // auto: network simplex for D >= 2
        print(result.method, result.status, result.w2Squared, result.w2)   // exact optimal 2.33333... 1.52752...

        for entry in result.plan!.entries {                       // at most n + m - 1 non-zero entries
            print(entry.source, entry.target, entry.mass)
        }
        let potentials = result.potentials!                       // f_i + g_j <= |x_i - y_j|^2
        let gradient = try result.sourceGradient(problem: problem)  // d W2^2 / d x_i, row-major n x D
        let entropic = try wasserstein2(mu, nu, method: .sinkhorn(epsilon: 0.01))  // same call, entropic
        print(entropic.w2Squared, entropic.converged)             // 2.33333333333 true
        // End of sample

        // The optimal plan by hand: |x - y_1|^2 - |x - y_0|^2 = 3 - 2 x[0] is largest at x_0, so
        // x_0 = (0,0) alone feeds y_0 = (1,1): 1/4 there (cost 2) and 1/12 to (2,1) (cost 5);
        // (1,0) and (0.5,1) send 1/3 each to (2,1) (costs 2 and 2.25): 7/3 in all, and no other
        // plan is optimal. 1e-12: the simplex works in doubles on numbers of order 1.
        #expect(result.method == .exact && result.status == .optimal)
        #expect(abs(result.w2Squared - 7.0 / 3.0) < 1e-12)
        #expect(abs(result.w2 - (7.0 / 3.0).squareRoot()) < 1e-12)
        // The entropic transport cost: POT 0.9.7 (ot.sinkhorn, method sinkhorn_log, stopThr 1e-12)
        // gives <P, C> = 2.3333333333329658 here (the cost gaps are large against eps = 0.01).
        #expect(entropic.converged && entropic.method == .sinkhorn(epsilon: 0.01))
        #expect(abs(entropic.w2Squared - 2.3333333333329658) < 1e-8)
        #expect(entropic.entropic?.epsilon == 0.01)
        #expect(result.plan!.entries.count <= mu.count + nu.count - 1)
        // Strong duality: sum a f + sum b g = <P, C>.
        let dual = zip(mu.weights, potentials.f).reduce(0) { $0 + $1.0 * $1.1 }
            + zip(nu.weights, potentials.g).reduce(0) { $0 + $1.0 * $1.1 }
        #expect(abs(dual - result.w2Squared) < 1e-12)
        // By hand, d W2^2 / d x_0 = 2 (1/4 (x_0 - y_0) + 1/12 (x_0 - y_1)) = (-5/6, -2/3).
        #expect(abs(gradient[0] + 5.0 / 6.0) < 1e-12 && abs(gradient[1] + 2.0 / 3.0) < 1e-12)
        // And against a central difference of W2^2 in x_0 (the optimal plan is unique, so W2^2 is
        // differentiable there); h = 1e-6 gives an O(h^2) truncation and O(1e-16 / h) round-off,
        // far below the 1e-6 tolerance.
        let h = 1e-6
        func cost(shiftingFirstPointBy dx: Double, axis: Int) throws -> Double {
            var c = mu.coordinates
            c[axis] += dx
            return try wasserstein2(TransportProblem(source: PointCloud(coordinates: c, dimension: 2), target: nu)).w2Squared
        }
        for axis in 0 ..< 2 {
            let fd = (try cost(shiftingFirstPointBy: h, axis: axis) - cost(shiftingFirstPointBy: -h, axis: axis)) / (2 * h)
            #expect(abs(gradient[axis] - fd) < 1e-6)
        }
    }

    // MARK: - 4.2 Warm-started network simplex

    @Test("4.2 warm start: later solves start warm, pivot less and agree with cold solves")
    func warmStartedWorkspace() throws {
        // Sample
        var rng = Xoshiro256StarStar(seed: 42)
        var x = [Double](repeating: 0, count: 2 * 60), y = [Double](repeating: 0, count: 2 * 60)
        rng.fillGaussian(&x)
        rng.fillGaussian(&y, mean: 1)
        var source = try PointCloud(coordinates: x, dimension: 2)
        let target = try PointCloud(coordinates: y, dimension: 2)

        let workspace = NetworkSimplexWorkspace()
        var pivots: [Int] = []
        for _ in 0 ..< 5 {
            let result = try workspace.solve(TransportProblem(source: source, target: target))
            pivots.append(result.iterations)                  // pivots: many cold, few warm
            source = try source.translated(by: [0.01, 0])     // same n, m, weights: the next solve is warm
        }
        print(pivots, workspace.lastSolveWasWarmStarted)
        // End of sample

        #expect(workspace.lastSolveWasWarmStarted)
        #expect(pivots.dropFirst().allSatisfy { $0 < pivots[0] })
        // The warm and the cold solve of the same problem reach the same optimum (relative 1e-12:
        // both stop at the simplex's optimality tolerance, 1e-12 of the largest cost).
        let problem = try TransportProblem(source: source, target: target)
        let warm = try workspace.solve(problem)
        let cold = try NetworkSimplexSolver().solve(problem)
        #expect(workspace.lastSolveWasWarmStarted)
        #expect(abs(warm.cost - cold.cost) <= 1e-12 * cold.cost)
    }

    // MARK: - 4.3 One dimension and Gaussians

    @Test("4.3 1-D and Gaussian: quantile value by hand, Bures closed form, Gelbrich bound")
    func oneDimensionalAndGaussian() throws {
        // Sample
        let a = try PointCloud(values: [0, 1, 2, 3])
        let b = try PointCloud(values: [0.5, 1.5, 2.5])
        let oneD = try wasserstein2(TransportProblem(source: a, target: b))     // auto: sorted, O(n log n)
        print(oneD.method, oneD.w2Squared)                                     // sorted 0.25
        let costOnly = try wasserstein2([0, 1, 2, 3], [0.5, 1.5, 2.5])       // arrays (dimension 1), no plan

        let g1 = try GaussianMeasure(mean: [0, 0], covariance: [1, 0, 0, 1])
        let g2 = try GaussianMeasure(mean: [1, 0], covariance: [4, 0, 0, 1])
        let bures = try wasserstein2(g1, g2)                // |m1 - m2|^2 + (2 - 1)^2 = 2
        print(bures.w2Squared)

        // Bures-Wasserstein between the clouds' moment-matched Gaussians: a lower bound on W2^2.
        let moments = try GaussianMomentSolver().solve(TransportProblem(source: a, target: b))
        print(moments.w2Squared)
        // End of sample

        // Quantile functions by hand: every piece of mass moves by exactly 1/2, so W2^2 = 1/4.
        #expect(oneD.method == .sorted)
        #expect(abs(oneD.w2Squared - 0.25) < 1e-14)
        #expect(costOnly.plan == nil && abs(costOnly.w2Squared - oneD.w2Squared) < 1e-14)
        // The exact network simplex on the same data (an independent solver).
        #expect(abs(try NetworkSimplexSolver().solve(TransportProblem(source: a, target: b)).w2Squared - 0.25) < 1e-12)
        #expect(bures.method == .gaussian && abs(bures.w2Squared - 2) < 1e-12)
        // 1-D Bures: (sd_a - sd_b)^2 with equal means 1.5; Gelbrich: below the exact value.
        let expected = (1.25.squareRoot() - (2.0 / 3).squareRoot()) * (1.25.squareRoot() - (2.0 / 3).squareRoot())
        #expect(abs(moments.w2Squared - expected) < 1e-12)
        #expect(moments.w2Squared <= oneD.w2Squared)
    }

    // MARK: - 4.4 Sinkhorn, warm start, divergence

    @Test("4.4 Sinkhorn: converges, warm start saves iterations, values bracket the exact W2^2")
    func sinkhornWarmStartAndDivergence() throws {
        // Sample
        var rng = Xoshiro256StarStar(seed: 7)
        var x = [Double](repeating: 0, count: 2 * 80), y = [Double](repeating: 0, count: 2 * 60)
        rng.fillGaussian(&x)
        rng.fillGaussian(&y, mean: 0.5, standardDeviation: 0.8)
        let problem = try TransportProblem(source: PointCloud(coordinates: x, dimension: 2),
                                           target: PointCloud(coordinates: y, dimension: 2))

        let solver = try SinkhornSolver(epsilon: 0.01, tolerance: 1e-9)   // eps absolute, units of |x - y|^2
        let workspace = SinkhornWorkspace()                                 // reuse its buffers across solves
        let cold = try solver.solve(problem, warmStart: nil, workspace: workspace)
        print(cold.cost, cold.entropic!.regularizedCost, cold.entropic!.marginalError, cold.iterations, cold.converged)

        // A nearby problem (the source moved a little) starts from the previous potentials.
        let moved = try TransportProblem(source: problem.source.translated(by: [0.01, 0]), target: problem.target)
        let warm = try solver.solve(moved, warmStart: cold.potentials, workspace: workspace)
        print(warm.iterations)                                              // fewer than cold.iterations

        let divergence = try SinkhornDivergence(epsilon: 0.01).evaluate(problem, gradient: true)
        print(divergence.divergence, divergence.converged, divergence.sourceGradient!.count)   // S_eps, true, n * D
        // End of sample

        #expect(cold.converged && warm.converged && divergence.converged)
        #expect(cold.entropic!.marginalError <= 1e-9)
        #expect(warm.iterations < cold.iterations)
        let exact = try NetworkSimplexSolver().solve(problem)
        // <P_eps, C> is the cost of a coupling (to the 1e-9 marginal error times max C): it cannot
        // undercut the exact optimum; it exceeds it by at most about eps log(1/eps) = 0.046
        // (measured 1.4e-3 here).
        #expect(cold.cost >= exact.cost - 1e-7)
        #expect(cold.cost - exact.cost < 0.05)
        // The debiased divergence is close to W2^2 (measured 5.4e-3 relative, 0.82 vs 0.8175); the
        // 2% bound leaves room for the discrete O(eps) bias at eps = 0.01 on 80 and 60 points.
        #expect(abs(divergence.divergence - exact.cost) < 0.02 * exact.cost)
        #expect(divergence.sourceGradient!.count == 80 * 2)
    }

    @Test("4.4 the entropic engine: online equals SinkhornSolver, a user cost matrix")
    func entropicEngine() throws {
        var rng = Xoshiro256StarStar(seed: 7)
        var x = [Double](repeating: 0, count: 2 * 80), y = [Double](repeating: 0, count: 2 * 60)
        rng.fillGaussian(&x)
        rng.fillGaussian(&y, mean: 0.5, standardDeviation: 0.8)
        let problem = try TransportProblem(source: PointCloud(coordinates: x, dimension: 2),
                                           target: PointCloud(coordinates: y, dimension: 2))
        // Sample
        let parameters = try EntropicParameters(epsilon: 0.05)                // tolerance 1e-9, as above
        let online = try EntropicEngine.solve(problem, parameters: parameters, geometry: EntropicEngine.online())
        print(online.geometry, online.transportCost, online.regularizedCost, online.iterations, online.converged)
        let s = try EntropicEngine.divergence(problem, parameters: parameters, geometry: EntropicEngine.online())
        print(s.divergence, s.converged)                                      // S_eps from three solves

        // A cost matrix of your own (any finite values), through the same driver:
        let costs = try DenseCostGeometry(costs: [0, 1, 1, 0], sourceCount: 2, targetCount: 2)
        var driver = try EntropicSinkhorn(geometry: costs, problem: .balanced(a: [0.5, 0.5], b: [0.5, 0.5]),
                                          parameters: parameters)
        let diagonal = try driver.solve()
        print(diagonal.transportCost, driver.planRow(0))                      // ~2e-9, [0.49999999, 1e-9]
        // End of sample

        #expect(online.geometry == "online" && online.converged && s.converged && diagonal.converged)
        // The same problem by the dense solver: equal to about the tolerance.
        let reference = try SinkhornDivergence(epsilon: 0.05).evaluate(problem)
        #expect(abs(online.transportCost - reference.cross.cost) <= 1e-7 * reference.cross.cost)
        #expect(abs(s.divergence - reference.divergence) <= 1e-7 * reference.divergence)
        // The 2 x 2 diagonal problem in closed form: P_01 / P_00 = exp(-1 / eps) (both potentials
        // symmetric), so P_01 = 0.5 / (1 + e^20) and <P, C> = 2 P_01.
        let off = 0.5 / (1 + exp(20.0))
        #expect(abs(diagonal.transportCost - 2 * off) <= 1e-6 * 2 * off)
        #expect(abs(driver.planRow(0)[1] - off) <= 1e-6 * off)
    }

    // MARK: - 4.5 Reading and writing files

    @Test("4.5 files: CSV with header and .npy round-trip into the clouds of sample 4.1")
    func readingFiles() throws {
        // Sample
        let folder = NSTemporaryDirectory() + "wasserstein-guide-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        try CSVFormat.write(header: ["x", "y"], rows: [[0, 0], [1, 0], [0.5, 1]], path: folder + "/x.csv")
        try NPYFormat.write(NumericArray(rows: 2, columns: 2, values: [1, 1, 2, 1]), path: folder + "/y.npy")
        try NPYFormat.write(NumericArray(vector: [0.25, 0.75]), path: folder + "/y-weights.npy")

        let x = try PointCloudFile.read(points: folder + "/x.csv")        // header skipped, uniform weights
        let y = try PointCloudFile.read(points: folder + "/y.npy", weights: folder + "/y-weights.npy")
        let table = try CSVFormat.read(path: folder + "/x.csv")          // header ["x", "y"], shape [3, 2]
        print(x.count, x.dimension, y.weights, table.header!, table.array.shape)
        let result = try wasserstein2(TransportProblem(source: x, target: y))
        // End of sample
        defer { try? FileManager.default.removeItem(atPath: folder) }

        #expect(x.count == 3 && x.dimension == 2 && x.coordinates == [0, 0, 1, 0, 0.5, 1])
        #expect(y.coordinates == [1, 1, 2, 1] && y.weights == [0.25, 0.75])
        #expect(table.header == ["x", "y"] && table.array.shape == [3, 2])
        // The same clouds as sample 4.1, hence the same hand-computed value.
        #expect(abs(result.w2Squared - 7.0 / 3.0) < 1e-12)
    }

    // MARK: - 4.6 A particle JKO step with a custom energy

    @Test("4.6 particle JKO step: the exact mean recursion and the energy decrease")
    func particleStepWithCustomEnergy() throws {
        // Sample
        /// G(rho) = (k/2) int |theta - c|^2 d rho, written against the `Energy` protocol.
        struct Spring: Energy {
            let center: [Double]
            let stiffness: Double
            var dimension: Int { center.count }

            func value(points: Span<Double>, weights: Span<Double>) -> Double {
                var total = 0.0
                for i in 0 ..< weights.count {
                    for k in 0 ..< dimension {
                        let t = points[i * dimension + k] - center[k]
                        total += weights[i] * t * t
                    }
                }
                return 0.5 * stiffness * total
            }

            func firstVariation(points: Span<Double>, weights: Span<Double>,
                                potential: inout MutableSpan<Double>?,
                                gradient: inout MutableSpan<Double>?) {
                for i in 0 ..< weights.count {
                    var s = 0.0
                    for k in 0 ..< dimension {
                        let t = points[i * dimension + k] - center[k]
                        s += t * t
                        gradient?[i * dimension + k] = stiffness * t
                    }
                    potential?[i] = 0.5 * stiffness * s
                }
            }
        }

        // A soft repulsion U(theta, theta') = exp(-|theta - theta'|^2), given as a closure.
        let repulsion = try PairwiseInteraction(dimension: 2) { theta, other, gradient in
            let dx = theta[0] - other[0], dy = theta[1] - other[1]
            let u = exp(-(dx * dx + dy * dy))
            gradient?[0] = -2 * dx * u
            gradient?[1] = -2 * dy * u
            return u
        }
        let energy = try FreeEnergy(smooth: EnergySum([Spring(center: [1, -1], stiffness: 2), repulsion]),
                                    inverseTemperature: nil)                // nil: no entropy term
        var scheme = try ParticleJKO(energy: energy, tau: 0.1, options: ParticleJKOOptions(transport: .exact))
        let start = try NormalLaw(mean: [0, 0], standardDeviation: [0.5, 0.5]).sample(count: 100, seed: 1)
        let (next, report) = try scheme.step(from: start)
        print(report.freeEnergy, report.w2Step, report.innerIterations, report.converged, next.mean)
        // End of sample

        #expect(report.converged)
        // Summing the step's optimality conditions over the particles cancels the (odd) interaction
        // gradient and gives the exact mean recursion m' = (m + tau k c) / (1 + tau k); the inner
        // tolerance (1e-6 on the velocity residual) bounds the error by about tau * 1e-6.
        let m = start.mean
        let expected = [(m[0] + 0.2 * 1) / 1.2, (m[1] + 0.2 * -1) / 1.2]
        #expect(abs(next.mean[0] - expected[0]) < 1e-5 && abs(next.mean[1] - expected[1]) < 1e-5)
        // The JKO step decreases F + W2^2 / (2 tau) from the start (L-BFGS descends from X_k).
        let initial = scheme.freeEnergy(of: start).total
        #expect(report.freeEnergy + report.w2Step * report.w2Step / (2 * 0.1) <= initial)
        #expect(report.w2Step > 0)
    }

    // MARK: - 4.7 The Ornstein-Uhlenbeck oracle on a grid

    @Test("4.7 grid JKO of the OU energy: the exact JKO recursion, the exact flow, the Gibbs law")
    func ornsteinUhlenbeckOnAGrid() throws {
        // Sample
        let lambda = 1.0, beta = 2.0, tau = 0.05
        let energy = try FreeEnergy.ornsteinUhlenbeck(dimension: 1, lambda: lambda, beta: beta)
        let grid = try RegularGrid(dimension: 1, lower: -4, upper: 4, pointsPerAxis: 161)
        let oracle = try OrnsteinUhlenbeckOracle(lambda: lambda, beta: beta)
        let settings = JKORunSettings(tau: tau, steps: 20, scheme: .grid(grid, GridJKOOptions()),
                                      trackStationaryDistance: true, oracle: oracle)
        let runner = try JKORunner(energy: energy, settings: settings)
        let start = try NormalLaw(mean: [1], standardDeviation: [0.5]).discretized(on: grid)
        let result = try runner.run(from: .density(start)) { report, _ in
            print(report.step, report.time, report.freeEnergy, report.gaussianW2ToExactFlow!)
        }
        let last = result.reports.last!

        // The exact JKO recursion of Gaussians from the same start.
        var (m, s) = (1.0, 0.5)
        for _ in 0 ..< 20 { (m, s) = oracle.jkoStep(mean: m, standardDeviation: s, tau: tau) }
        print(last.mean[0], m, last.variance[0].squareRoot(), s, last.distanceToStationary!)
        // End of sample

        #expect(result.allConverged)
        // The mean follows the exact JKO recursion m' = m / (1 + lambda tau) (measured 1e-7 off;
        // 1e-5 allows for the grid's discretisation of the initial law and the inner tolerance),
        // well apart from the flow's exp(-t) (9e-3 away at t = 1).
        #expect(abs(last.mean[0] - m) < 1e-5)
        #expect(abs(last.mean[0] - oracle.mean(at: 1, initial: 1)) > 5e-3)
        // The spread follows the continuum limit of the scheme, the entropic JKO step with the
        // default blur gamma and the compensated beta' (measured 4e-7 off); the exact JKO step
        // differs from it by the blur's O(gamma^2) residue (6e-4 here), hence 1e-3 for that one.
        let gamma = GridJKO.defaultEpsilon(grid: grid, tau: tau, beta: beta)
        let betaEffective = 1 / (1 / beta - gamma / (4 * tau))
        var entropic = (mean: 1.0, standardDeviation: 0.5)
        for _ in 0 ..< 20 {
            entropic = OrnsteinUhlenbeckOracle.entropicJKOStep(lambda: lambda, betaEffective: betaEffective, gamma: gamma, tau: tau,
                                                                mean: entropic.mean, standardDeviation: entropic.standardDeviation)
        }
        #expect(abs(last.variance[0].squareRoot() - entropic.standardDeviation) < 1e-5)
        #expect(abs(last.variance[0].squareRoot() - s) < 1e-3)
        // Against the exact flow the error is the scheme's O(tau) (measured 9.3e-3 at t = 1).
        #expect(last.gaussianW2ToExactFlow! < 0.02)
        // The free energy decreases and the law approaches N(0, 1/(lambda beta)).
        #expect(zip(result.reports, result.reports.dropFirst()).allSatisfy { $1.freeEnergy < $0.freeEnergy })
        #expect(last.distanceToStationary! < result.reports[0].distanceToStationary!)
    }

    // MARK: - 4.8 Mean-field SGD

    @Test("4.8 mean-field SGD: records on schedule, risk decreases, recorded risk = R_M of the particles")
    func meanFieldSGD() throws {
        // Sample
        let model = try NetworkModel(activation: .relu, inputDimension: 5)   // trained a, Gaussian inputs
        let teacher = Teacher.singleNeuron([1, 0, 0, 0, 0])
        let experiment = SGDExperiment(model: model, teacher: teacher,
                                       initialization: InitialLaw(aMean: 0, aStd: 0.5, wMean: 0, wStd: 0.4),
                                       energy: EnergyParameters(lambda: 0.001, beta: nil),
                                       particles: 100, horizon: 2, seed: 7,
                                       sgd: SGDSettings(eta: 0.01, kind: .online, noise: false), recordEvery: 0.5)
        let trajectory = try SGDRunner(experiment: experiment).run()
        for record in trajectory.records { print(record.time, record.risk) }    // t = 0, 0.5, ..., 2
        let particles = trajectory.finalParticles                               // M x D, rows [a, w_1 ... w_5]

        let risk = try PopulationRisk(model: model, teacher: teacher)
        print(try risk.risk(particles: particles), risk.kernelDescription)      // closed form (relu, gaussian inputs)
        // End of sample

        #expect(trajectory.status == .completed && trajectory.steps == 200)
        #expect(trajectory.records.map(\.time) == [0, 0.5, 1, 1.5, 2])
        #expect(trajectory.records.last!.risk < trajectory.records.first!.risk)
        // The recorded risk is R_M of the final particles, recomputed here from the kernels.
        #expect(abs(try risk.risk(particles: particles) - trajectory.records.last!.risk) < 1e-12)
        #expect(risk.isClosedForm && particles.count == 100 * 6)
    }

    // MARK: - 4.8 The reduced grid flow

    /// The reduced sample's run: F (of the full 40-dimensional law) and the risk fall from the
    /// symmetric start, the Gibbs iteration converges to a law of lower F than the run reached,
    /// and the Gibbs point's r-mass sits away from r = 0 (the factor r^(n-1), n = 39: the first
    /// cell, r = 0.05, holds below 1e-6).
    @Test("4.8 reduced grid flow: F decreases, the risk falls, the Gibbs point lies below")
    func reducedGridFlow() throws {
        // Sample
        let setting = try ReducedSetting(activation: .relu, secondLayer: .fixed, inputDimension: .finite(40),
                                         teacher: ReducedTeacher(directions: [[1]]))
        let kernels = try ReducedKernels(setting: setting)
        // r at cell centres of [0, 2]: no node at r = 0, where the radial potential is infinite.
        let grid = try ReducedGridEnergy.grid(secondLayer: .fixed, s: (-1, 2, 31), r: (0, 2, 20))
        let energy = try ReducedGridEnergy.freeEnergy(kernels: kernels, grid: grid, weightDecay: 1, inverseTemperature: 40)
        var rho = try ReducedGridEnergy.initialDensity(ReducedInitialLaw(gamma: 1), setting: setting, grid: grid)
        var jko = try GridJKO(energy: energy, tau: 0.2, grid: grid, options: GridJKOOptions(interaction: .semiImplicit))
        let reduced = energy.smooth as! ReducedGridEnergy
        for k in 1 ... 10 {
            let step = try jko.step(from: rho, index: k)
            rho = step.density
            print(step.report.time, reduced.risk(of: rho), step.report.freeEnergy)   // t, R, F of the full law
        }
        let gibbs = try GibbsFixedPoint.solve(energy: energy, grid: grid)           // rho_bar* ~ r^(n-1) exp(-beta Psi_lambda)
        // End of sample
        #expect(gibbs.converged)
        let start = try ReducedGridEnergy.initialDensity(ReducedInitialLaw(gamma: 1), setting: setting, grid: grid)
        let risks = [reduced.risk(of: start), reduced.risk(of: rho)]
        let energies = [jko.freeEnergy(of: start).total, jko.freeEnergy(of: rho).total]
        #expect(risks[1] < risks[0])
        #expect(energies[1] < energies[0])
        #expect(gibbs.freeEnergy < energies[1])
        let rMarginal = grid.marginals(gibbs.density.masses)[1]
        #expect(rMarginal[0] < 1e-6)
    }

    // MARK: - 4.9 JKO against SGD

    @Test("4.9 comparison: common times, equal start, agreement with the separate runners")
    func comparison() throws {
        // Sample
        let specText = """
        {
          "model": {"activation": "relu", "input_dimension": 5},
          "teacher": {"kind": "neurons", "directions": [[1, 0, 0, 0, 0]]},
          "initialization": {"a": {"mean": 0, "std": 0.5}, "w": {"mean": 0, "std": 0.4}},
          "energy": {"lambda": 0.001},
          "particles": 60, "horizon": 1, "seed": 7,
          "sgd": {"eta": 0.01},
          "jko": {"tau": 0.1}
        }
        """
        let spec = try ExperimentSpec.parse(data: Data(specText.utf8))
        let comparison = try CompareRun.run(spec: spec, directory: nil)   // nil: no files (see below)
        for row in comparison.rows {
            print(row.time, row.riskJKO, row.riskSGD, row.w2Clouds, row.w2Norm, row.w2Overlap!, row.w2SecondLayer!)
        }
        print(comparison.maxRiskGap)
        // End of sample

        #expect(comparison.rows.count == 11)
        #expect(comparison.rows[0].riskGap == 0 && comparison.rows[0].w2Clouds == 0)
        // The separate runners of the same spec: SGD records do not change the dynamics, so the
        // final risks agree to the last bit; the JKO run is the same deterministic computation.
        let sgd = try SGDRun.run(spec: spec, directory: nil)
        let jko = try JKORun.run(spec: spec, directory: nil)
        #expect(sgd.trajectory.records.last!.risk == comparison.rows.last!.riskSGD)
        #expect(JKORun.risk(of: jko.result.reports.last!, lambda: 0.001) == comparison.rows.last!.riskJKO)
        #expect(comparison.maxRiskGap == comparison.rows.map(\.riskGap).max())
        #expect(comparison.maxRiskGap < 0.05)
    }

    @Test("4.9 output folder: the files appear together, with the manifest")
    func outputFolder() throws {
        let spec = try ExperimentSpec.parse(data: Data("""
        {"model": {"activation": "relu", "input_dimension": 2}, "teacher": {"kind": "neurons", "directions": [[1, 0]]},
         "initialization": {"a": {"mean": 0, "std": 0.5}, "w": {"mean": 0, "std": 0.4}}, "energy": {"lambda": 0.001},
         "particles": 8, "horizon": 0.2, "seed": 7, "sgd": {"eta": 0.05}, "jko": {"tau": 0.1}}
        """.utf8))
        try? FileManager.default.removeItem(atPath: NSTemporaryDirectory() + "guide-compare")
        defer { try? FileManager.default.removeItem(atPath: NSTemporaryDirectory() + "guide-compare") }
        // Sample
        let folder = NSTemporaryDirectory() + "guide-compare"
        let written = try OutputDirectory.writing(to: folder) { directory in
            try CompareRun.run(spec: spec, directory: directory, pictures: false)
        }
        print(written.maxRiskGap, try FileManager.default.contentsOfDirectory(atPath: folder).sorted())
        // ..., [".wasserstein-output", "comparison.csv", "particles_initial.npy", "particles_jko_final.npy", "particles_sgd_final.npy", "summary.json"]
        // End of sample
        #expect(try FileManager.default.contentsOfDirectory(atPath: folder).sorted() == [".wasserstein-output", "comparison.csv", "particles_initial.npy", "particles_jko_final.npy", "particles_sgd_final.npy", "summary.json"])
    }

    // MARK: - 4.11 Sliced W2, partial transport and barycenters

    /// The sample's values against independent answers: the sliced value of the command line's
    /// example, the max-sliced value of a scan of angles, POT's documented partial value, the
    /// partial cost worked by hand, and the halfway translate.
    @Test("4.11 sliced, max-sliced, partial and barycenter: the printed values")
    func slicedPartialBarycenter() throws {
        // Sample
        let mu = try PointCloud(points: [[0, 0], [1, 0], [0.5, 1]])
        let nu = try PointCloud(points: [[1, 1], [2, 1]], weights: [0.25, 0.75])
        let problem = try TransportProblem(source: mu, target: nu)
        let sliced = try SlicedWasserstein(directions: .random(count: 100, seed: 0)).solve(problem)
        let maxSliced = try MaxSlicedWasserstein(directions: .random(count: 100, seed: 0)).solve(problem)
        print(sliced.w2Squared, sliced.standardError!, maxSliced.w2Squared, maxSliced.direction)
        // 1.2513339... 0.0652955... 2.0680544... [0.8816741..., 0.4718586...]

        let costs = try CostMatrix(rows: 2, columns: 2, values: [0, 1, 2, 3])          // POT's partial example
        let partial = try PartialTransport().solve(costs: costs, sourceWeights: [0.1, 0.2],
                                                   targetWeights: [0.1, 0.1], mass: 0.1)
        let clouds = try PartialTransport().solve(source: mu, target: nu, mass: 0.5)   // masses may differ
        print(partial.cost, partial.plan.dense, clouds.cost)                             // 0.0 [0.1, 0.0, 0.0, 0.0] 0.5625

        let translate = try mu.translated(by: [4, -2])
        let barycenter = try FreeSupportBarycenter().solve([mu, translate], weights: [1, 1])
        print(barycenter.cost, barycenter.converged, barycenter.support.coordinates)
        // 5.0 true, and the points of mu moved by (2, -1), in some order
        // End of sample

        #expect(abs(sliced.w2Squared - 1.2513339) < 1e-7 && abs(sliced.standardError! - 0.0652955) < 1e-7)
        // A scan of 200001 angles in [0, pi) (POT's wasserstein_1d) peaks at 2.06805448549.
        #expect(abs(maxSliced.w2Squared - 2.0680544855) < 1e-9)
        #expect(abs(maxSliced.direction[0] - 0.8816741) < 1e-6 && abs(maxSliced.direction[1] - 0.4718586) < 1e-6)
        #expect(partial.cost == 0 && partial.plan.dense == [0.1, 0, 0, 0])
        // Half the mass: (1, 1) holds only 0.25, which comes from (0.5, 1) at cost 1/4; the other
        // 0.25 goes to (2, 1) from (1, 0) at cost 2: 0.25 / 4 + 0.25 * 2 = 0.5625.
        #expect(abs(clouds.cost - 0.5625) < 1e-12)
        #expect(abs(barycenter.cost - 5) < 1e-12 && barycenter.converged)
        let expected = try mu.translated(by: [2, -1])
        #expect(try wasserstein2(TransportProblem(source: barycenter.support, target: expected)).cost < 1e-24)
    }

    // MARK: - The guide and this file stay in step

    /// The fenced ```swift blocks of a Markdown text.
    static func swiftBlocks(_ markdown: String) -> [String] {
        var blocks = [String](), current: [String]? = nil
        for line in markdown.split(separator: "\n", omittingEmptySubsequences: false) {
            let trimmed = line.trimmingCharacters(in: .whitespaces)
            if current == nil, trimmed == "```swift" {
                current = []
            } else if current != nil, trimmed == "```" {
                blocks.append(current!.joined(separator: "\n"))
                current = nil
            } else if current != nil {
                current!.append(String(line))
            }
        }
        return blocks
    }

    /// Lines without their indentation, blank lines dropped.
    static func normalized(_ text: String) -> String {
        text.split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }.joined(separator: "\n")
    }

    // MARK: - 4.10 The symmetry-reduced flow

    /// The reduced flow's sample: the run stops at the first step below the threshold, with the
    /// crossing time between that step and the one before; its starting risk is the double sum
    /// `R#/2 + sum w V + (1/2) sum sum w w U` written out with the single-point kernels.
    @Test("4.10 reduced flow: the threshold crossing, and the risk as the written-out double sum")
    func reducedFlow() throws {
        // Sample
        let teacher = try ReducedTeacher(directions: [[1]])                       // y = relu(<e_1, x>); activation: .he2 for He_2
        let setting = try ReducedSetting(activation: .relu, secondLayer: .trained,
                                         inputDimension: .finite(40), teacher: teacher)  // or .infinity
        let kernels = try ReducedKernels(setting: setting)                         // t-rule: 6 Gauss-Jacobi nodes at n = 39
        let initial = try ReducedInitialLaw(aMean: 0.5, aStd: 0.1, gamma: 1)     // w ~ N(0, I_d / d)
        let law = try initial.quantised(setting: setting, nodes: .init(a: 4, s: 8, r: 4))   // 128 weighted points
        let flow = try ReducedPopulationFlow(kernels: kernels,
            settings: ReducedFlowSettings(eta: 0.1, horizon: 10, stopBelowRisk: 0.05))
        let run = try flow.run(from: law)
        print(run.thresholdTime ?? "not reached", run.records.last!.risk, kernels.kernelDescription)
        // 3.6858... 0.0496... closed form (relu), Gauss-Jacobi t-rule, 6 nodes (n = 39)
        // End of sample
        #expect(law.count == 128 && kernels.sphereRule.nodes.count == 6)
        let crossing = try #require(run.thresholdTime)
        let last = run.records.last!
        #expect(last.risk <= 0.05 && run.steps == last.step)
        #expect(crossing <= last.time && crossing > last.time - 0.1)
        var direct = kernels.teacherSecondMoment / 2
        let Dz = law.coordinateCount
        func z(_ i: Int) -> [Double] { Array(law.points[(i * Dz) ..< ((i + 1) * Dz)]) }
        for i in 0 ..< law.count {
            direct += law.weights[i] * kernels.potential(z(i))
            for j in 0 ..< law.count { direct += 0.5 * law.weights[i] * law.weights[j] * kernels.interaction(z(i), z(j)) }
        }
        #expect(abs(run.records[0].risk - direct) <= 1e-12)
    }

    @Test("Every Swift sample of Docs/Guide.md is compiled and run by this file")
    func samplesAreInThisFile() throws {
        let here = URL(fileURLWithPath: #filePath)
        let root = here.deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let guide = try String(contentsOf: root.appendingPathComponent("Docs/Guide.md"), encoding: .utf8)
        let source = Self.normalized(try String(contentsOf: here, encoding: .utf8))
        // Package manifests are not library samples.
        let samples = Self.swiftBlocks(guide).filter { !$0.contains("import PackageDescription") }
        #expect(samples.count == 14)
        for sample in samples {
            let found = source.contains(Self.normalized(sample))
            #expect(found, "Guide sample not found verbatim in GuideSampleTests.swift:\n\(sample)")
        }
    }
}
