// The online geometry of the entropic engine (issue 19): soft-min throughput and full solves.
//
//   swift build -c release --package-path Benchmarks --product bench-engine
//   bench-engine --n 10000 [--d 3] [--eps 0.0025] [--reps 3]      # soft-min rate only
//   bench-engine --n 10000 --divergence [--geometry online|dense]  # the debiased divergence
//   bench-engine --n 2000 --pairs [--eps 0.05] [--tol 1e-9] [--cap 3000] [--solvers dense,online,online-newton,dense-newton]
//   bench-engine --n 2000 --tune [--factor F --per-stage K | --no-scaling] [--omega W]  # driver settings
//
// Clouds: n points uniform in the unit cube [0, 1]^D on each side (seeded xoshiro), uniform
// weights, cost |x - y|^2. Output: one JSON line. The rate is pairs (cost, exp, sum) per second
// of wall time and per second of CPU time (user + system, getrusage), so that a shared, loaded
// machine still gives a per-core figure.
import Foundation
import Wasserstein

let args = CommandLine.arguments
func arg(_ name: String) -> String? {
    guard let i = args.firstIndex(of: name), i + 1 < args.count else { return nil }
    return args[i + 1]
}

func cpuSeconds() -> Double {
    var usage = rusage()
    #if os(Linux)
    getrusage(__rusage_who_t(RUSAGE_SELF.rawValue), &usage)
    #else
    getrusage(RUSAGE_SELF, &usage)
    #endif
    return Double(usage.ru_utime.tv_sec) + Double(usage.ru_utime.tv_usec) * 1e-6
        + Double(usage.ru_stime.tv_sec) + Double(usage.ru_stime.tv_usec) * 1e-6
}

let n = Int(arg("--n") ?? "10000") ?? 10000
let d = Int(arg("--d") ?? "3") ?? 3
let eps = Double(arg("--eps") ?? "0.0025") ?? 0.0025
let reps = Int(arg("--reps") ?? "3") ?? 3
var rng = Xoshiro256StarStar(seed: 19)
let x = try PointCloud(coordinates: (0 ..< n * d).map { _ in rng.nextUniform() }, dimension: d)
let y = try PointCloud(coordinates: (0 ..< n * d).map { _ in rng.nextUniform() }, dimension: d)
let problem = try TransportProblem(source: x, target: y)
let clock = ContinuousClock()
func seconds(_ duration: Duration) -> Double {
    Double(duration.components.seconds) + Double(duration.components.attoseconds) * 1e-18
}

if args.contains("--pairs") {
    // Isolated pairs (Benchmarks 4.3, `bench-jko --only sinkhorndiag`): n points in D = 21 and
    // a copy moved by 0.01 per coordinate, one cross solve at eps = 0.05 (default) by
    // SinkhornSolver, the engine's plain driver (capped) and the driver with Newton-CG steps.
    let d = 21, pairsEps = Double(arg("--eps") ?? "0.05") ?? 0.05, tol = Double(arg("--tol") ?? "1e-9") ?? 1e-9
    var rng = Xoshiro256StarStar(seed: 1)
    var xs = [Double](repeating: 0, count: n * d)
    for i in 0 ..< n {
        xs[i * d] = rng.nextGaussian()
        for k in 1 ..< d { xs[i * d + k] = rng.nextGaussian() / Double(d - 1).squareRoot() }
    }
    let ys = xs.map { $0 + 0.01 * rng.nextGaussian() }
    let pairs = try TransportProblem(source: PointCloud(coordinates: xs, dimension: d), target: PointCloud(coordinates: ys, dimension: d))
    func line(_ name: String, _ iterations: Int, _ converged: Bool, _ error: Double, _ value: Double, _ newton: Int,
              _ wall: Double, _ cpu: Double) {
        print("{\"bench\":\"pairs\",\"n\":\(n),\"eps\":\(pairsEps),\"tol\":\(tol),\"solver\":\"\(name)\",\"iterations\":\(iterations),\"converged\":\(converged),\"error\":\(error),\"ot_eps\":\(value),\"newton_steps\":\(newton),\"seconds\":\(wall),\"cpu_seconds\":\(cpu)}")
        fflush(nil)
    }
    let selected = (arg("--solvers") ?? "dense,online,online-newton,dense-newton").split(separator: ",").map(String.init)
    for name in selected {
        let cpu0 = cpuSeconds()
        let start = clock.now
        if name == "dense" {
            let r = try SinkhornSolver(epsilon: pairsEps, tolerance: tol).solve(pairs)
            line("SinkhornSolver", r.iterations, r.converged, r.entropic!.marginalError, r.entropic!.regularizedCost, 0,
                 seconds(clock.now - start), cpuSeconds() - cpu0)
        } else {
            var parameters = try EntropicParameters(epsilon: pairsEps, tolerance: tol, maxIterations: Int(arg("--cap") ?? "3000") ?? 3000)
            parameters.usesNewtonSteps = name.hasSuffix("-newton")
            let out = name.hasPrefix("online") ? try EntropicEngine.solve(pairs, parameters: parameters, geometry: EntropicEngine.online())
                : try EntropicEngine.solve(pairs, parameters: parameters, geometry: EntropicEngine.dense())
            line("engine " + name, out.iterations, out.converged, out.marginalError, out.regularizedCost, out.newtonSteps,
                 seconds(clock.now - start), cpuSeconds() - cpu0)
        }
    }
} else if args.contains("--tune") {
    // Schedules and relaxation of the engine's driver on the online geometry (divergence).
    var scaling = EntropicParameters.EpsilonSchedule.geometric(factor: Double(arg("--factor") ?? "0.5") ?? 0.5,
                                                               iterationsPerStage: Int(arg("--per-stage") ?? "1") ?? 1)
    if args.contains("--no-scaling") { scaling = .none }
    var relaxation = EntropicParameters.Relaxation.adaptive
    if let w = arg("--omega").flatMap(Double.init) { relaxation = w == 1 ? .none : .fixed(w) }
    let parameters = try EntropicParameters(epsilon: eps, scaling: scaling, overRelaxation: relaxation)
    let cpu0 = cpuSeconds()
    let start = clock.now
    let r = try EntropicEngine.divergence(problem, parameters: parameters, geometry: EntropicEngine.online())
    let wall = seconds(clock.now - start)
    print("{\"bench\":\"tune\",\"n\":\(n),\"scaling\":\"\(scaling)\",\"relaxation\":\"\(relaxation)\",\"seconds\":\(wall),\"cpu_seconds\":\(cpuSeconds() - cpu0),\"iterations\":[\(r.cross.iterations),\(r.sourceSelf.iterations),\(r.targetSelf.iterations)],\"divergence\":\(r.divergence),\"converged\":\(r.converged)}")
} else if args.contains("--divergence") {
    let kind = SinkhornGeometryKind(rawValue: arg("--geometry") ?? "online") ?? .online
    let cpu0 = cpuSeconds()
    let start = clock.now
    let result = try EntropicDistance(problem, epsilon: eps, divergence: true, geometry: kind, byteBudget: 64e9)
    let wall = seconds(clock.now - start)
    let cpu = cpuSeconds() - cpu0
    print("{\"bench\":\"divergence\",\"geometry\":\"\(kind.rawValue)\",\"n\":\(n),\"d\":\(d),\"eps\":\(eps),\"seconds\":\(wall),\"cpu_seconds\":\(cpu),\"divergence\":\(result.divergence ?? .nan),\"transport_cost\":\(result.result.cost),\"iterations\":\(result.result.iterations),\"converged\":\(result.result.converged),\"marginal_error\":\(result.result.entropic?.marginalError ?? .nan)}")
} else {
    // Soft-min of g = 0: the first call (no estimate) takes the exact two-pass route; the timed
    // calls start from its result, the one-pass route of a running iteration.
    let geometry = try OnlinePointCloudGeometry(source: x, target: y)
    let g = [Double](repeating: 0, count: n)
    let logB = y.weights.map { log($0) }
    var out = [Double](repeating: .nan, count: n)
    func softMin() {
        var output = out.mutableSpan
        geometry.softMin(g.span, logWeights: logB.span, epsilon: eps, transposed: false, into: &output)
    }
    softMin()
    var best = Double.infinity, bestCPU = Double.infinity
    for _ in 0 ..< reps {
        let cpu0 = cpuSeconds()
        let start = clock.now
        softMin()
        best = min(best, seconds(clock.now - start))
        bestCPU = min(bestCPU, cpuSeconds() - cpu0)
    }
    let pairs = Double(n) * Double(n)
    print("{\"bench\":\"softmin\",\"n\":\(n),\"d\":\(d),\"eps\":\(eps),\"cores\":\(Parallel.coreCount),\"seconds\":\(best),\"cpu_seconds\":\(bestCPU),\"pairs_per_second\":\(pairs / best),\"pairs_per_cpu_second\":\(pairs / bestCPU)}")
}
