// JKO benchmarks and oracle figures (GradientFlows).
//
//     swift run -c release --package-path Benchmarks bench-jko                 # everything
//     swift run -c release --package-path Benchmarks bench-jko --only grid     # one section
//
// Sections (--only NAME, repeatable):
//   entropy   bias of the kernel entropy estimators on N(0, I_D) samples (M, D table) and time per call
//   oracle    Ornstein-Uhlenbeck oracle: error at t = 1 against the exact flow for tau = 0.2 ... 0.025,
//             both schemes, D = 1 and 2 (the error-vs-tau table of Docs)
//   grid      grid JKO on a 128 x 128 grid: time per step (OU, and the linear-network energy with
//             its interaction treated implicitly); the mean-field ReLU risk (d = 1) on 48^2 and 64^2
//   grid3d    grid JKO in D = 3 (OU on 48^3 and 64^3): time per step and Sinkhorn iterations
//   reduced   reduced grid JKO of F (relu, d = 40): (s, r) 64 x 64 with a fixed second layer,
//             (a, s, r) 24 x 48 x 48 with a trained one; building the plane matrix, time per step
//   particle  particle JKO for the mean-field ReLU risk, D = 21, M = 500, tau = 0.05, 40 steps:
//             total and per step, split into transport solves and energy gradients (MeanFieldEnergy,
//             and the same energy from generic closures)
//   particlesinkhorn  the same energy and start with Sinkhorn transport (S_eps, eps = 0.05), 2 steps,
//             at M = --particles (default 2000; a comma list runs several), geometry --geometry
//             dense|online (default automatic): wall and CPU seconds, solves, Sinkhorn iterations,
//             a line per transport evaluation (not in the default set: run it with --only)
// Options: --threads are whatever the machine has; figures are wall-clock seconds, release build.
import Foundation
import GradientFlows
import MeanField
import Wasserstein

var sections = Set<String>()
var sinkhornParticles = [2000]
var sinkhornGeometry: SinkhornGeometryKind? = nil
var sinkhornSteps = 2
var arguments = CommandLine.arguments.dropFirst().makeIterator()
while let a = arguments.next() {
    switch a {
    case "--only": if let s = arguments.next() { sections.insert(s) }
    case "--particles": if let s = arguments.next() { sinkhornParticles = s.split(separator: ",").compactMap { Int($0) } }
    case "--geometry": if let s = arguments.next() { sinkhornGeometry = SinkhornGeometryKind(rawValue: s) }
    case "--steps": if let s = arguments.next(), let k = Int(s) { sinkhornSteps = k }
    default:
        FileHandle.standardError.write("unknown option \(a)\n".data(using: .utf8)!)
        exit(2)
    }
}
@MainActor func enabled(_ s: String) -> Bool { sections.isEmpty ? s != "particlesinkhorn" : sections.contains(s) }

func now() -> Double {
    var t = timespec()
    clock_gettime(CLOCK_MONOTONIC, &t)
    return Double(t.tv_sec) + Double(t.tv_nsec) * 1e-9
}

/// CPU seconds of the whole process, all threads (on a shared machine, the cost that wall time hides).
func cpuSeconds() -> Double {
    var t = timespec()
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t)
    return Double(t.tv_sec) + Double(t.tv_nsec) * 1e-9
}

func format(_ x: Double, _ digits: Int = 4) -> String { String(format: "%.\(digits)g", x) }

/// Per-step means of ten grid JKO steps over steps 2-10 (the first pays for the setup): wall and
/// process CPU seconds, Sinkhorn iterations, transport and energy seconds; and whether every
/// step converged.
struct GridStepMeans {
    var seconds = 0.0, cpu = 0.0, transport = 0.0, energy = 0.0
    var iterations = 0
    var converged = true
}

func meanOfTenGridSteps(_ jko: inout GridJKO, from start: GridDensity) throws -> GridStepMeans {
    var rho = start
    var sum = GridStepMeans()
    for k in 1 ... 10 {
        let w0 = now(), c0 = cpuSeconds()
        let step = try jko.step(from: rho, index: k)
        let dt = now() - w0, dc = cpuSeconds() - c0
        rho = step.density
        sum.converged = sum.converged && step.report.converged
        if k > 1 {
            sum.seconds += dt
            sum.cpu += dc
            sum.iterations += step.report.innerIterations
            sum.transport += step.report.transportSeconds
            sum.energy += step.report.energySeconds
        }
    }
    return GridStepMeans(seconds: sum.seconds / 9, cpu: sum.cpu / 9, transport: sum.transport / 9, energy: sum.energy / 9,
                         iterations: sum.iterations / 9, converged: sum.converged)
}

func gaussianSample(count m: Int, dimension d: Int, seed: UInt64) -> [Double] {
    var rng = Xoshiro256StarStar(seed: seed)
    return (0 ..< m * d).map { _ in rng.nextGaussian() }
}

// MARK: - Entropy estimator bias

if enabled("entropy") {
    print("## Entropy estimator bias on N(0, I_D) samples")
    print("")
    print("Estimate minus the exact `int rho log rho = -(D/2) log(2 pi e)`, mean (sd) over 5 seeds; `limit` is the")
    print("large-M limit of the smoothing bias alone, `-(D/2)(log(1 + c^2) - c^2/(1 + c^2))`, with Silverman's c.")
    print("")
    for (name, estimator) in [("Silverman", GaussianKernelEntropy.silverman), ("Scott", GaussianKernelEntropy.scott)] {
        print("### \(name) bandwidth (covariance-adapted)")
        print("")
        print("| D | M | bias mean | bias sd | limit | ms per value+gradient |")
        print("|---|---|---|---|---|---|")
        for d in [1, 2, 5, 10, 20] {
            for m in [100, 200, 500, 1000, 2000] {
                var biases = [Double]()
                var seconds = 0.0
                for seed in 1 ... 5 as ClosedRange<UInt64> {
                    let x = gaussianSample(count: m, dimension: d, seed: seed)
                    var g = [Double](repeating: 0, count: m * d)
                    let t0 = now()
                    var output = g.mutableSpan
                    let e = estimator.negativeEntropyAndGradient(points: x.span, count: m, dimension: d, gradient: &output)
                    seconds += now() - t0
                    biases.append(e + 0.5 * Double(d) * log(2 * Double.pi * M_E))
                }
                let mean = biases.reduce(0, +) / 5
                let sd = (biases.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / 4).squareRoot()
                let c2 = estimator.covarianceFactorSquared(count: m, dimension: d)!
                let limit = -0.5 * Double(d) * (log(1 + c2) - c2 / (1 + c2))
                print("| \(d) | \(m) | \(format(mean, 3)) | \(format(sd, 2)) | \(format(limit, 3)) | \(format(seconds / 5 * 1000, 3)) |")
            }
        }
        print("")
    }
    print("### Blob method (fixed width h), D = 1 and 2, M = 500")
    print("")
    print("| D | h | bias mean |")
    print("|---|---|---|")
    for d in [1, 2] {
        for h in [0.05, 0.1, 0.2, 0.4] {
            let e = try GaussianKernelEntropy(bandwidth: .fixed(h))
            var total = 0.0
            for seed in 1 ... 5 as ClosedRange<UInt64> {
                let x = gaussianSample(count: 500, dimension: d, seed: seed)
                total += e.negativeEntropy(points: x.span, count: 500, dimension: d) + 0.5 * Double(d) * log(2 * Double.pi * M_E)
            }
            print("| \(d) | \(h) | \(format(total / 5, 3)) |")
        }
    }
    print("")
}

// MARK: - Oracle error against tau (grid scheme; the particle rows need the transport solvers)

func oracleRows(scheme: String, dimension d: Int, lambda: Double, beta: Double, taus: [Double], horizon: Double,
                run: (Double) throws -> JKORunResult) throws -> [String] {
    let oracle = try OrnsteinUhlenbeckOracle(lambda: lambda, beta: beta)
    var rows = [String]()
    var previous: Double?
    for tau in taus {
        let t0 = now()
        let result = try run(tau)
        let seconds = now() - t0
        let last = result.reports.last!
        let first = result.reports.first!
        var error = 0.0, recursionError = 0.0
        for a in 0 ..< d {
            let m0 = first.mean[a], s0 = first.variance[a].squareRoot()
            var rec = (m0, s0)
            for _ in 0 ..< (result.reports.count - 1) { rec = oracle.jkoStep(mean: rec.0, standardDeviation: rec.1, tau: tau) }
            error = max(error, abs(last.mean[a] - oracle.mean(at: horizon, initial: m0)) + abs(last.variance[a].squareRoot() - oracle.standardDeviation(at: horizon, initial: s0)))
            recursionError = max(recursionError, abs(last.mean[a] - rec.0) + abs(last.variance[a].squareRoot() - rec.1))
        }
        let ratio = previous.map { format($0 / error, 3) } ?? "-"
        previous = error
        rows.append("| \(scheme) | \(d) | \(lambda) | \(beta) | \(tau) | \(format(error, 3)) | \(ratio) | \(format(recursionError, 2)) | \(result.allConverged) | \(format(seconds, 3)) |")
    }
    return rows
}

if enabled("oracle") {
    print("## Ornstein-Uhlenbeck oracle: error at t = 1 against the exact flow")
    print("")
    print("From N(1, 0.5^2) per axis; error = max over axes of |mean - exact| + |deviation - exact| (exact flow")
    print("started from the state's own initial moments); `ratio` = error(2 tau) / error(tau), 2 for first order;")
    print("`vs JKO recursion` = distance to the exact discrete JKO recursion (Docs/Theory.md 5.4, oracle 2), the scheme's own error.")
    print("Grid: [-5, 7]^D with spacing 0.05 (1-D) or 0.12 (2-D), default blur tau/beta (compensated). Particles: M = 500")
    print("samples (seed 1), exact transport, Silverman kernel entropy.")
    print("")
    print("| scheme | D | lambda | beta | tau | error | ratio | vs JKO recursion | converged | seconds |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    let taus = [0.2, 0.1, 0.05, 0.025]
    for d in [1, 2] {
        for (lambda, beta) in [(1.0, 2.0), (0.0, 1.0)] {
            let energy = try FreeEnergy.ornsteinUhlenbeck(dimension: d, lambda: lambda, beta: beta)
            let grid = try RegularGrid(dimension: d, lower: -5, upper: 7, pointsPerAxis: d == 1 ? 241 : 101)
            let start = try NormalLaw(mean: [Double](repeating: 1, count: d), standardDeviation: [Double](repeating: 0.5, count: d)).discretized(on: grid)
            for row in try oracleRows(scheme: "grid", dimension: d, lambda: lambda, beta: beta, taus: taus, horizon: 1, run: { tau in
                try JKORunner(energy: energy, settings: JKORunSettings(tau: tau, steps: Int((1 / tau).rounded()), scheme: .grid(grid, GridJKOOptions())))
                    .run(from: .density(start))
            }) { print(row) }
            let particles = try NormalLaw(mean: [Double](repeating: 1, count: d), standardDeviation: [Double](repeating: 0.5, count: d))
                .sample(count: 500, seed: 1)
            for row in try oracleRows(scheme: "particle M=500", dimension: d, lambda: lambda, beta: beta, taus: taus, horizon: 1, run: { tau in
                try JKORunner(energy: energy, settings: JKORunSettings(tau: tau, steps: Int((1 / tau).rounded()), scheme: .particle(ParticleJKOOptions(transport: .exact))))
                    .run(from: .particles(particles))
            }) { print(row) }
        }
    }
    print("")
}

// MARK: - Grid JKO, 128 x 128

if enabled("grid") {
    print("## Grid JKO on a 128 x 128 grid")
    print("")
    print("[-4, 4]^2, tau = 0.05, 20 steps from N((1, 0), 0.5^2 I); mean seconds per step (first step excluded: cold start).")
    print("")
    print("| energy | beta | blur | Sinkhorn iterations per step | solves per step | seconds per step | transport s | energy s |")
    print("|---|---|---|---|---|---|---|---|")
    let grid = try RegularGrid(dimension: 2, lower: -4, upper: 4, pointsPerAxis: 128)
    let start = try NormalLaw(mean: [1, 0], standardDeviation: [0.5, 0.5]).discretized(on: grid)
    let b: [Double] = [1, -0.5]
    let tilt = try PotentialEnergy(dimension: 2) { theta, g in
        g?[0] = -b[0]
        g?[1] = -b[1]
        return -(b[0] * theta[0] + b[1] * theta[1])
    }
    struct MeanInteraction: Energy {
        let dimension = 2
        func mean(_ x: Span<Double>, _ w: Span<Double>) -> (Double, Double) {
            var m0 = 0.0, m1 = 0.0
            for i in 0 ..< w.count { m0 += w[i] * x[2 * i]; m1 += w[i] * x[2 * i + 1] }
            return (m0, m1)
        }
        func value(points: Span<Double>, weights: Span<Double>) -> Double {
            let m = mean(points, weights)
            return 0.5 * (m.0 * m.0 + m.1 * m.1)
        }
        func firstVariation(points: Span<Double>, weights: Span<Double>,
                            potential: inout MutableSpan<Double>?, gradient: inout MutableSpan<Double>?) {
            let m = mean(points, weights)
            for i in 0 ..< weights.count {
                potential?[i] = points[2 * i] * m.0 + points[2 * i + 1] * m.1
                gradient?[2 * i] = m.0
                gradient?[2 * i + 1] = m.1
            }
        }
    }
    let cases: [(String, FreeEnergy)] = [
        ("Ornstein-Uhlenbeck, lambda = 1", try FreeEnergy.ornsteinUhlenbeck(dimension: 2, lambda: 1, beta: 1)),
        ("linear network (implicit interaction), lambda = 0.1", try FreeEnergy(smooth: EnergySum([tilt, MeanInteraction(), QuadraticPotential(dimension: 2, lambda: 0.1)]), inverseTemperature: 1)),
        ("Ornstein-Uhlenbeck, lambda = 1, beta = 10", try FreeEnergy.ornsteinUhlenbeck(dimension: 2, lambda: 1, beta: 10)),
    ]
    for (name, energy) in cases {
        var jko = try GridJKO(energy: energy, tau: 0.05, grid: grid)
        var rho = start
        var seconds = 0.0, iterations = 0, solves = 0, transport = 0.0, energyTime = 0.0
        var converged = true
        for k in 1 ... 20 {
            let t0 = now()
            let step = try jko.step(from: rho, index: k)
            let dt = now() - t0
            rho = step.density
            converged = converged && step.report.converged
            if k > 1 {
                seconds += dt
                iterations += step.report.innerIterations
                solves += step.report.transportSolves
                transport += step.report.transportSeconds
                energyTime += step.report.energySeconds
            }
        }
        print("| \(name) | \(energy.inverseTemperature!) | \(format(jko.epsilon, 3)) | \(iterations / 19) | \(format(Double(solves) / 19, 3)) | \(format(seconds / 19, 3)) | \(format(transport / 19, 3)) | \(format(energyTime / 19, 3)) |\(converged ? "" : " (not converged)")")
    }
    print("")
    // The mean-field ReLU risk with d = 1 and a trained second layer, theta = (a, w) in R^2: its
    // first variation on N grid points costs N^2 kernel evaluations, which dominates.
    print("Mean-field ReLU risk, theta = (a, w), d = 1, teacher relu(x), lambda = 0.1, beta = 5, on [-3, 3]^2, tau = 0.05, 10 steps from N((0.5, 0.5), 0.3^2 I):")
    print("")
    print("| grid | interaction | Sinkhorn iterations per step | first variations per step | seconds per step | energy s |")
    print("|---|---|---|---|---|---|")
    let reluModel = try NetworkModel(activation: .relu, inputDimension: 1)
    let reluRisk = try PopulationRisk(model: reluModel, teacher: .singleNeuron([1]))
    let reluEnergy = try FreeEnergy(smooth: MeanFieldEnergy(risk: reluRisk, weightDecay: 0.1), inverseTemperature: 5)
    for n in [48, 64] {
        let g = try RegularGrid(dimension: 2, lower: -3, upper: 3, pointsPerAxis: n)
        for treatment in [InteractionTreatment.semiImplicit, .implicit] {
            var jko = try GridJKO(energy: reluEnergy, tau: 0.05, grid: g, options: GridJKOOptions(interaction: treatment))
            var rho = try NormalLaw(mean: [0.5, 0.5], standardDeviation: [0.3, 0.3]).discretized(on: g)
            var seconds = 0.0, iterations = 0, solves = 0, energyTime = 0.0
            for k in 1 ... 10 {
                let t0 = now()
                let step = try jko.step(from: rho, index: k)
                seconds += now() - t0
                rho = step.density
                iterations += step.report.innerIterations
                solves += step.report.transportSolves
                energyTime += step.report.energySeconds
            }
            let calls = treatment == .semiImplicit ? 2.0 : Double(solves) / 10 + 1
            print("| \(n) x \(n) | \(treatment == .semiImplicit ? "semi-implicit" : "implicit") | \(iterations / 10) | \(format(calls, 3)) | \(format(seconds / 10, 3)) | \(format(energyTime / 10, 3)) |")
        }
    }
    print("")
}

// MARK: - Grid JKO in 3-D

if enabled("grid3d") {
    print("## Grid JKO in 3-D")
    print("")
    print("Ornstein-Uhlenbeck F (lambda = 1, beta = 1) on [-4, 4]^3, tau = 0.05 (blur tau/beta = 0.05), 10 steps from N((1, 0, 0), 0.5^2 I); mean over steps 2-10.")
    print("")
    print("| grid | points | Sinkhorn iterations per step | seconds per step | CPU seconds per step (all threads) | transport s (proximal solve and step distance) |")
    print("|---|---|---|---|---|---|")
    let energy = try FreeEnergy.ornsteinUhlenbeck(dimension: 3, lambda: 1, beta: 1)
    for n in [48, 64] {
        let grid = try RegularGrid(dimension: 3, lower: -4, upper: 4, pointsPerAxis: n)
        let rho = try NormalLaw(mean: [1, 0, 0], standardDeviation: [0.5, 0.5, 0.5]).discretized(on: grid)
        var jko = try GridJKO(energy: energy, tau: 0.05, grid: grid)
        let t = try meanOfTenGridSteps(&jko, from: rho)
        print("| \(n)^3 | \(grid.count) | \(t.iterations) | \(format(t.seconds, 3)) | \(format(t.cpu, 3)) | \(format(t.transport, 3)) |\(t.converged ? "" : " (not converged)")")
    }
    print("")
}

// MARK: - Reduced grid JKO

if enabled("reduced") {
    print("## Reduced grid JKO (ReducedGridEnergy)")
    print("")
    print("relu student and teacher, d = 40, lambda = 0.01, beta = 50, tau = 0.05, semi-implicit interaction, 10 steps from the symmetric law (gamma = 1, a ~ N(1, 0.2^2)); mean over steps 2-10.")
    print("")
    print("| grid | points | (s, r) plane | plane matrix build s (wall) | build CPU s | Sinkhorn iterations per step | s per step (wall) | CPU s per step | energy s per step |")
    print("|---|---|---|---|---|---|---|---|---|")
    let law = try ReducedInitialLaw(aMean: 1, aStd: 0.2, gamma: 1)
    for trained in [false, true] {
        let setting = try ReducedSetting(activation: .relu, secondLayer: trained ? .trained : .fixed, inputDimension: .finite(40),
                                         teacher: ReducedTeacher(directions: [[1]]))
        let kernels = try ReducedKernels(setting: setting)
        let grid = trained
            ? try ReducedGridEnergy.grid(secondLayer: .trained, a: (0.4, 1.6, 24), s: (-0.6, 1.4, 48), r: (0, 2, 48))
            : try ReducedGridEnergy.grid(secondLayer: .fixed, s: (-0.6, 1.4, 64), r: (0, 2, 64))
        let t0 = now(), cpu0 = cpuSeconds()
        let energy = try ReducedGridEnergy.freeEnergy(kernels: kernels, grid: grid, weightDecay: 0.01, inverseTemperature: 50)
        let build = now() - t0, buildCPU = cpuSeconds() - cpu0
        var jko = try GridJKO(energy: energy, tau: 0.05, grid: grid, options: GridJKOOptions(interaction: .semiImplicit))
        let t = try meanOfTenGridSteps(&jko, from: ReducedGridEnergy.initialDensity(law, setting: setting, grid: grid))
        let plane = grid.pointsPerAxis.suffix(2).map(String.init).joined(separator: " x ")
        print("| \(grid.pointsPerAxis.map(String.init).joined(separator: " x ")) | \(grid.count) | \(plane) | \(format(build, 3)) | \(format(buildCPU, 3)) | \(t.iterations) | \(format(t.seconds, 3)) | \(format(t.cpu, 3)) | \(format(t.energy, 3)) |\(t.converged ? "" : " (not converged)")")
    }
    print("")
}

// MARK: - Particle JKO, D = 21, M = 500

/// The mean-field ReLU risk with N(0, I_d) inputs and teacher y = relu(<e1, x>), theta = (a, w):
/// V(theta) = -a k(w, e1), U(theta, theta') = a a' k(w, w'), k the closed-form ReLU kernel
/// (Docs/Theory.md 3.3), built from the generic GradientFlows energies (PotentialEnergy + PairwiseInteraction):
/// the same R as MeanFieldEnergy up to the constant R#/2 (checked below), and the energy of the
/// NumPy peer Benchmarks/python/bench_jko.py.
func reluTeacherEnergy(inputDimension d: Int) throws -> FreeEnergy {
    @Sendable func kernel(_ w: Span<Double>, _ wOffset: Int, _ v: Span<Double>, _ vOffset: Int,
                          _ gradient: inout MutableSpan<Double>?, _ gOffset: Int, _ scale: Double) -> Double {
        // One range check per call, then unchecked reads: checked subscripts in this d-loop cost
        // 28% more instructions per energy evaluation (Docs/Benchmarks.md, safe energy signatures).
        precondition(w.count >= wOffset + d && v.count >= vOffset + d)
        var ww = 0.0, vv = 0.0, wv = 0.0
        for k in 0 ..< d {
            let a = w[unchecked: wOffset + k], b = v[unchecked: vOffset + k]
            ww += a * a; vv += b * b; wv += a * b
        }
        let nw = ww.squareRoot(), nv = vv.squareRoot()
        let c = max(-1, min(1, wv / (nw * nv)))
        let phi = acos(c)
        let s = (max(0, 1 - c * c)).squareRoot()
        if var g = gradient.take() {
            precondition(g.count >= gOffset + d)
            let f1 = scale * (Double.pi - phi) / (2 * Double.pi), f2 = scale * nv * s / (nw * 2 * Double.pi)
            for k in 0 ..< d { g[unchecked: gOffset + k] = f1 * v[unchecked: vOffset + k] + f2 * w[unchecked: wOffset + k] }
            gradient = consume g
        }
        return (nw * nv * s + (Double.pi - phi) * wv) / (2 * Double.pi)
    }
    let teacher = [1.0] + [Double](repeating: 0, count: d - 1)
    let potential = try PotentialEnergy(dimension: d + 1) { theta, gradient in
        let a = theta[0]
        let k = kernel(theta, 1, teacher.span, 0, &gradient, 1, -a)
        gradient?[0] = -k
        return -a * k
    }
    let interaction = try PairwiseInteraction(dimension: d + 1) { theta, other, gradient in
        let a = theta[0], b = other[0]
        let k = kernel(theta, 1, other, 1, &gradient, 1, a * b)
        gradient?[0] = b * k
        return a * b * k
    }
    return try FreeEnergy(smooth: EnergySum([potential, interaction]))
}

func particleBenchmark(transport: ParticleJKOOptions, name: String, energy: FreeEnergy) throws {
    let d = 20, m = 500, tau = 0.05, steps = 40
    var rng = Xoshiro256StarStar(seed: 1)
    var x = [Double](repeating: 0, count: m * (d + 1))
    for i in 0 ..< m {
        x[i * (d + 1)] = rng.nextGaussian()
        for k in 1 ... d { x[i * (d + 1) + k] = rng.nextGaussian() / Double(d).squareRoot() }
    }
    let start = try PointCloud(coordinates: x, dimension: d + 1)
    let runner = try JKORunner(energy: energy, settings: JKORunSettings(tau: tau, steps: steps, scheme: .particle(transport)))
    let t0 = now()
    let result = try runner.run(from: .particles(start))
    let total = now() - t0
    let reports = result.reports.dropFirst()
    let transportSeconds = reports.map(\.transportSeconds).reduce(0, +)
    let energySeconds = reports.map(\.energySeconds).reduce(0, +)
    let iterations = reports.map(\.innerIterations).reduce(0, +)
    let solves = reports.map(\.transportSolves).reduce(0, +)
    print("| \(name) | \(format(total, 3)) | \(format(total / Double(steps), 3)) | \(format(transportSeconds, 3)) | \(format(energySeconds, 3)) | \(iterations) | \(solves) | \(result.allConverged) | \(format(result.reports.last!.smoothEnergy, 6)) |")
}

if enabled("particle") {
    print("## Particle JKO, ReLU risk, D = 21 (d = 20, a trained), M = 500, tau = 0.05, 40 steps")
    print("")
    print("Energy R (no entropy, lambda = 0), teacher relu(<e1, x>), a ~ N(0, 1), w ~ N(0, I/d); inner L-BFGS to")
    print("velocity residual 1e-6. Seconds, wall clock; transport = OT solves + plan gradients, energy = R and grad Psi.")
    print("")
    print("| transport, energy | total s | s per step | transport s | energy s | L-BFGS iterations | OT solves | converged | final G (MeanFieldEnergy: R; generic: R - R#/2) |")
    print("|---|---|---|---|---|---|---|---|---|")
    let model = try NetworkModel(activation: .relu, inputDimension: 20)
    let risk = try PopulationRisk(model: model, teacher: .singleNeuron([1] + [Double](repeating: 0, count: 19)))
    let meanField = try FreeEnergy(smooth: MeanFieldEnergy(risk: risk))
    let generic = try reluTeacherEnergy(inputDimension: 20)
    try particleBenchmark(transport: ParticleJKOOptions(transport: .exact), name: "exact, MeanFieldEnergy", energy: meanField)
    try particleBenchmark(transport: ParticleJKOOptions(transport: .exact), name: "exact, generic closures (PairwiseInteraction)", energy: generic)
    try particleBenchmark(transport: ParticleJKOOptions(transport: .sinkhorn(epsilon: 0.05, options: SinkhornOptions(tolerance: 1e-11))), name: "Sinkhorn divergence eps = 0.05, MeanFieldEnergy", energy: meanField)
    try particleBenchmark(transport: ParticleJKOOptions(transportTerm: { try SinkhornTransportTerm(epsilon: 0.05, debiased: false) }), name: "Sinkhorn OT_eps eps = 0.05, MeanFieldEnergy", energy: meanField)
    print("")
    // Cross-check of the two energies: R = R#/2 + (int V + (1/2) int int U), R# = E[relu(x_1)^2] = 1/2.
    var rng = Xoshiro256StarStar(seed: 5)
    let probe = (0 ..< 50 * 21).map { _ in rng.nextGaussian() * 0.5 }
    let w = [Double](repeating: 1.0 / 50, count: 50)
    let a = meanField.smooth.value(points: probe.span, weights: w.span)
    let b = generic.smooth.value(points: probe.span, weights: w.span)
    print("Energy cross-check on 50 random particles: MeanFieldEnergy - generic = \(format(a - b, 12)) (expected R#/2 = 0.25)")
    print("")
}

// MARK: - Particle JKO with Sinkhorn transport at large M (issue 19)

/// Times every evaluation of the wrapped term and prints it (solves, Sinkhorn iterations, seconds).
final class LoggedTransportTerm: ParticleTransportTerm {
    let inner: SinkhornTransportTerm
    var evaluations = 0
    init(_ inner: SinkhornTransportTerm) { self.inner = inner }
    func setTarget(_ target: PointCloud) throws {
        try inner.setTarget(target)
        print("  step target set: geometry \(inner.geometry?.rawValue ?? "?")")
    }
    func evaluate(source: PointCloud, gradient: inout MutableSpan<Double>) throws -> TransportTermEvaluation {
        let t0 = now(), c0 = cpuSeconds()
        let r = try inner.evaluate(source: source, gradient: &gradient)
        evaluations += 1
        print("  evaluation \(evaluations): \(r.solves) solves, \(r.solverIterations) iterations, converged \(r.converged), \(format(now() - t0, 4)) s wall, \(format(cpuSeconds() - c0, 4)) s CPU, S_eps = \(format(r.value, 8))")
        fflush(nil)
        return r
    }
}

if enabled("particlesinkhorn") {
    let model = try NetworkModel(activation: .relu, inputDimension: 20)
    let risk = try PopulationRisk(model: model, teacher: .singleNeuron([1] + [Double](repeating: 0, count: 19)))
    let energy = try FreeEnergy(smooth: MeanFieldEnergy(risk: risk))
    for m in sinkhornParticles {
        let d = 20, tau = 0.05, epsilon = 0.05
        print("## Particle JKO with Sinkhorn transport, ReLU risk, D = 21, M = \(m), tau = \(tau), eps = \(epsilon), \(sinkhornSteps) steps, geometry \(sinkhornGeometry?.rawValue ?? "automatic")")
        var rng = Xoshiro256StarStar(seed: 1)
        var x = [Double](repeating: 0, count: m * (d + 1))
        for i in 0 ..< m {
            x[i * (d + 1)] = rng.nextGaussian()
            for k in 1 ... d { x[i * (d + 1) + k] = rng.nextGaussian() / Double(d).squareRoot() }
        }
        var particles = try PointCloud(coordinates: x, dimension: d + 1)
        nonisolated(unsafe) let term = LoggedTransportTerm(try SinkhornTransportTerm(epsilon: epsilon, tolerance: 1e-11,
                                                                                      geometry: sinkhornGeometry))
        var jko = try ParticleJKO(energy: energy, tau: tau, options: ParticleJKOOptions(transportTerm: { term }))
        let t0 = now(), c0 = cpuSeconds()
        var transport = 0.0, energySeconds = 0.0, solves = 0, inner = 0, converged = true
        for k in 1 ... sinkhornSteps {
            let (next, report) = try jko.step(from: particles, index: k)
            particles = next
            transport += report.transportSeconds
            energySeconds += report.energySeconds
            solves += report.transportSolves
            inner += report.innerIterations
            converged = converged && report.converged
            print("step \(k): \(format(report.totalSeconds, 4)) s, transport \(format(report.transportSeconds, 4)) s, energy \(format(report.energySeconds, 4)) s, L-BFGS iterations \(report.innerIterations), solves \(report.transportSolves), converged \(report.converged), F = \(format(report.freeEnergy, 8)), W2 step \(format(report.w2Step, 6))")
            fflush(nil)
        }
        let wall = now() - t0, cpu = cpuSeconds() - c0
        print("| M | geometry | wall s | CPU s | transport s | energy s | L-BFGS iterations | solves | Sinkhorn iterations | converged |")
        print("|---|---|---|---|---|---|---|---|---|---|")
        print("| \(m) | \(term.inner.geometry?.rawValue ?? "?") | \(format(wall, 4)) | \(format(cpu, 4)) | \(format(transport, 4)) | \(format(energySeconds, 4)) | \(inner) | \(solves) | \(term.inner.totalIterations) | \(converged) |")
        print("")
        fflush(nil)
    }
}

if sections.contains("sinkhorndiag") {
    // One cross solve between the start and a perturbed copy, D = 21, per geometry and driver.
    for m in sinkhornParticles {
        let d = 21
        var rng = Xoshiro256StarStar(seed: 1)
        var x = [Double](repeating: 0, count: m * d)
        for i in 0 ..< m {
            x[i * d] = rng.nextGaussian()
            for k in 1 ..< d { x[i * d + k] = rng.nextGaussian() / Double(d - 1).squareRoot() }
        }
        let y = x.map { $0 + 0.01 * rng.nextGaussian() }
        let problem = try TransportProblem(source: PointCloud(coordinates: x, dimension: d), target: PointCloud(coordinates: y, dimension: d))
        for tolerance in [1e-9, 1e-11] {
            var t0 = now(), c0 = cpuSeconds()
            let dense = try SinkhornSolver(epsilon: 0.05, tolerance: tolerance).solve(problem)
            print("M = \(m) tol \(tolerance) dense solver: \(dense.iterations) iterations, converged \(dense.converged), \(format(now() - t0)) s wall, \(format(cpuSeconds() - c0)) s CPU, OT_eps \(format(dense.entropic!.regularizedCost, 12))")
            for (name, useDense) in [("engine dense geometry", true), ("engine online geometry", false)] {
                t0 = now(); c0 = cpuSeconds()
                let parameters = try EntropicParameters(epsilon: 0.05, tolerance: tolerance, maxIterations: 3000)
                let out = useDense ? try EntropicEngine.solve(problem, parameters: parameters, geometry: EntropicEngine.dense())
                    : try EntropicEngine.solve(problem, parameters: parameters, geometry: EntropicEngine.online())
                print("M = \(m) tol \(tolerance) \(name): \(out.iterations) iterations, converged \(out.converged), error \(out.marginalError), \(format(now() - t0)) s wall, \(format(cpuSeconds() - c0)) s CPU, OT_eps \(format(out.regularizedCost, 12))")
                fflush(nil)
            }
        }
    }
}

// MARK: - Grid transport on the engine (issue 19): per-step minimum and median

if enabled("gridengine") {
    func stats(_ xs: [Double]) -> (min: Double, median: Double) {
        let s = xs.sorted()
        return (s[0], s.count % 2 == 1 ? s[s.count / 2] : 0.5 * (s[s.count / 2 - 1] + s[s.count / 2]))
    }
    print("## Grid transport: JKO step, reduced grid step, grid W2 (min / median)")
    print("")
    print("| case | iterations per call | min ms | median ms |")
    print("|---|---|---|---|")
    let grid = try RegularGrid(dimension: 2, lower: -4, upper: 4, pointsPerAxis: 128)
    let start = try NormalLaw(mean: [1, 0], standardDeviation: [0.5, 0.5]).discretized(on: grid)
    for beta in [1.0, 10.0] {
        let energy = try FreeEnergy.ornsteinUhlenbeck(dimension: 2, lambda: 1, beta: beta)
        var jko = try GridJKO(energy: energy, tau: 0.05, grid: grid)
        var rho = start
        var times = [Double](), iterations = 0
        for k in 1 ... 20 {
            let t0 = now()
            let step = try jko.step(from: rho, index: k)
            let dt = now() - t0
            rho = step.density
            if k > 1 { times.append(dt); iterations += step.report.innerIterations }
        }
        let s = stats(times)
        print("| grid JKO step 128 x 128, OU beta = \(beta) | \(iterations / 19) | \(format(1000 * s.min, 3)) | \(format(1000 * s.median, 3)) |")
    }
    do {
        let setting = try ReducedSetting(activation: .relu, secondLayer: .fixed, inputDimension: .finite(40), teacher: ReducedTeacher(directions: [[1]]))
        let kernels = try ReducedKernels(setting: setting)
        let rgrid = try ReducedGridEnergy.grid(secondLayer: .fixed, s: (-0.6, 1.4, 64), r: (0, 2, 64))
        let energy = try ReducedGridEnergy.freeEnergy(kernels: kernels, grid: rgrid, weightDecay: 0.01, inverseTemperature: 50)
        var jko = try GridJKO(energy: energy, tau: 0.05, grid: rgrid, options: GridJKOOptions(interaction: .semiImplicit))
        var rho = try ReducedGridEnergy.initialDensity(ReducedInitialLaw(aMean: 1, aStd: 0.2, gamma: 1), setting: setting, grid: rgrid)
        var times = [Double](), transport = [Double](), iterations = 0
        for k in 1 ... 10 {
            let t0 = now()
            let step = try jko.step(from: rho, index: k)
            let dt = now() - t0
            rho = step.density
            if k > 1 { times.append(dt); transport.append(step.report.transportSeconds); iterations += step.report.innerIterations }
        }
        let s = stats(times), t = stats(transport)
        print("| reduced grid step 64 x 64 (relu, d = 40, beta = 50) | \(iterations / 9) | \(format(1000 * s.min, 3)) | \(format(1000 * s.median, 3)) |")
        print("| of which transport | | \(format(1000 * t.min, 3)) | \(format(1000 * t.median, 3)) |")
    }
    do {
        let a = try NormalLaw(mean: [1, 0], standardDeviation: [0.5, 0.5]).discretized(on: grid)
        let b = try NormalLaw(mean: [-0.5, 0.5], standardDeviation: [0.7, 0.6]).discretized(on: grid)
        var times = [Double](), iterations = 0, value = 0.0
        for _ in 0 ..< 5 {
            var distance = try GridWassersteinDistance(grid: grid)
            let t0 = now()
            let r = try distance.distance(a, b)
            times.append(now() - t0)
            iterations = r.iterations
            value = r.w2
        }
        let s = stats(times)
        print("| grid W2 128 x 128, cold (W2 = \(format(value, 8))) | \(iterations) | \(format(1000 * s.min, 3)) | \(format(1000 * s.median, 3)) |")
    }
    print("")
}
