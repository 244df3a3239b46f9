// Mean-field benchmarks. Run:
//   swift run -c release --package-path Benchmarks bench-meanfield [--quick] [--only PART]
//   (PART: online, online-scaling, online-split, population, evaluate, extras, reduced,
//    reduced-accuracy)
// NumPy peers: python3 Benchmarks/python/bench_meanfield.py
// The default x86-64 target has SSE2 only; for the host's full instruction set add
//   -Xswiftc -target-cpu -Xswiftc native
// (results are bitwise the same: Swift does not contract a * b + c into FMA).
//
// 1. Online SGD, relu, d = 20, M = 1000, trained second layer, single-neuron teacher, no noise,
//    10^5 steps: steps per second (same update as the NumPy script), on all cores and on one
//    (at this width both run serially: the partner thread starts at M d = 4e5).
// 2. Population gradient flow, relu (closed-form kernel), d = 20, M = 2000: time per step on all
//    cores and on one.
// 3. Extras: noisy online SGD (M*D normals per step), the population flow with a quadrature
//    kernel (tanh) at M = 200.
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import MeanField
import Wasserstein

let quick = CommandLine.arguments.contains("--quick")
/// `--only online|population|extras` runs one part.
let only: String? = CommandLine.arguments.firstIndex(of: "--only").map { CommandLine.arguments[$0 + 1] }
func part(_ name: String) -> Bool { only == nil || only == name }

func seconds(_ d: Duration) -> Double {
    Double(d.components.seconds) + Double(d.components.attoseconds) * 1e-18
}

func experiment(kind: SGDKind, activation: Activation = .relu, d: Int, m: Int, eta: Double, steps: Int,
                noise: Bool = false) throws -> SGDExperiment {
    let model = try NetworkModel(activation: activation, inputDimension: d, secondLayer: .trained)
    var wStar = [Double](repeating: 0, count: d)
    wStar[0] = 1
    let horizon = eta * Double(steps)
    var e = SGDExperiment(model: model, teacher: .singleNeuron(wStar),
                          initialization: InitialLaw(aMean: 1, aStd: 0.1, wMean: 0, wStd: 1 / Double(d).squareRoot()),
                          energy: EnergyParameters(lambda: noise ? 0.01 : 0, beta: noise ? 1e4 : nil),
                          particles: m, horizon: horizon, seed: 1, sgd: SGDSettings(eta: eta, kind: kind, noise: noise),
                          recordEvery: horizon)
    e.recordParticles = false
    return e
}

func timeRun(_ e: SGDExperiment) throws -> (Double, Trajectory) {
    let runner = try SGDRunner(experiment: e)
    let clock = ContinuousClock()
    var traj: Trajectory?
    let elapsed = clock.measure { traj = runner.run() }
    return (seconds(elapsed), traj!)
}

/// The time of a run without its two records (t = 0 and t = T), each one O(M^2 d) risk
/// evaluation: the run's time minus twice the best of three separate evaluations.
func loopTime(_ e: SGDExperiment) throws -> (Double, Trajectory) {
    let (t, traj) = try timeRun(e)
    let runner = try SGDRunner(experiment: e)
    let clock = ContinuousClock()
    var recordCost = Double.infinity
    for _ in 0 ..< 3 {
        recordCost = min(recordCost, seconds(clock.measure { _ = try? runner.risk.risk(particles: traj.finalParticles) }))
    }
    return (t - 2 * recordCost, traj)
}

/// `x` with `digits` decimals (no Foundation).
func fmt(_ x: Double, _ digits: Int) -> String {
    var scale = 1.0
    for _ in 0 ..< digits { scale *= 10 }
    let r = (abs(x) * scale).rounded()
    let whole = Int(r / scale)
    var frac = String(Int(r - Double(whole) * scale))
    while frac.count < digits { frac = "0" + frac }
    return (x < 0 ? "-" : "") + String(whole) + (digits > 0 ? "." + frac : "")
}

print("cores: \(Parallel.coreCount)")

// 1. Online SGD, on all cores (a spinning partner thread takes half of each step) and on one.
if part("online") {
    let steps = quick ? 20_000 : 100_000
    for parallel in [true, false] {
        var e = try experiment(kind: .online, d: 20, m: 1000, eta: 0.01, steps: steps)
        e.parallel = parallel
        let (loop, traj) = try loopTime(e)
        let rate = Int(Double(steps) / loop)
        let r0 = fmt(traj.records.first!.risk, 4), r1 = fmt(traj.records.last!.risk, 4)
        let cores = parallel ? "all cores" : "one core"
        print("online-sgd relu d=20 M=1000 steps=\(steps) (\(cores)): \(rate) steps/s (\(fmt(loop, 2)) s; risk \(r0) -> \(r1))")
    }
}

// 1b. Online SGD cost split, one core: time per step at d = 10, 20, 40 (M = 1000) separates the
// per-particle overhead from the per-(particle, coordinate) sweep.
if only == "online-scaling" {
    for d in [10, 20, 40] {
        var e = try experiment(kind: .online, d: d, m: 1000, eta: 0.01, steps: 50_000)
        e.parallel = false
        let (loop, _) = try loopTime(e)
        print("online-sgd relu d=\(d) M=1000 (one core): \(fmt(loop / 50_000 * 1e6, 2)) us/step")
    }
}

// 1c. Where the partner thread starts to pay: steps/s on all cores and on one for growing M d
// (d = 20), to choose the engine's threshold (SGDExperiment.onlineParallelThreshold, M d = 4e5).
if only == "online-split" {
    for m in [400, 1000, 5000, 20000, 50000] {
        let steps = max(20_000, 20_000_000 / (m * 20))
        var line = "online-sgd relu d=20 M=\(m) (M d = \(m * 20)):"
        for parallel in [true, false] {
            var e = try experiment(kind: .online, d: 20, m: m, eta: 0.01, steps: steps)
            e.parallel = parallel
            let (loop, _) = try loopTime(e)
            line += " \(parallel ? "all cores" : "one core") \(Int(Double(steps) / loop)) steps/s"
        }
        print(line)
    }
}

// 2. Population flow.
if part("population") {
    let steps = quick ? 3 : 10
    for parallel in [true, false] {
        var e = try experiment(kind: .population, d: 20, m: 2000, eta: 0.01, steps: steps)
        e.parallel = parallel
        let (t, _) = try timeRun(e)
        // steps + 1 evaluations (the last one for the final record, without gradient).
        let perStep = fmt(t / Double(steps + 1) * 1e3, 1)
        let cores = parallel ? "all cores" : "one core"
        print("population-flow relu d=20 M=2000 (\(cores)): \(perStep) ms/step")
    }
}

// 2b. One first-variation evaluation (Psi and grad Psi, M = 2000, d = 20): the minimum over
// repetitions, which is robust to other load on the machine.
if part("population") || part("evaluate") {
    let e = try experiment(kind: .population, d: 20, m: 2000, eta: 0.01, steps: 1)
    let runner = try SGDRunner(experiment: e)
    let p = runner.initialParticles()
    let clock = ContinuousClock()
    var best = Double.infinity
    for _ in 0 ..< (quick ? 3 : 10) {
        best = min(best, seconds(clock.measure { _ = try? runner.risk.firstVariation(points: p) }))
    }
    print("first variation relu d=20 M=2000 (all cores), best of runs: \(fmt(best * 1e3, 1)) ms")
    // The same evaluation on one core (a population run with parallel = false, one step).
    var serial = e
    serial.parallel = false
    serial.horizon = 0
    let serialRunner = try SGDRunner(experiment: serial)
    var bestSerial = Double.infinity
    for _ in 0 ..< (quick ? 3 : 10) {
        bestSerial = min(bestSerial, seconds(clock.measure { _ = serialRunner.run() }))
    }
    print("risk-only evaluation (Psi, no gradient) relu d=20 M=2000 (one core), best of runs: \(fmt(bestSerial * 1e3, 1)) ms")
}

// 3. Extras.
if part("extras") {
    let steps = quick ? 2_000 : 10_000
    let e = try experiment(kind: .online, d: 20, m: 1000, eta: 0.01, steps: steps, noise: true)
    let (t, _) = try timeRun(e)
    print("noisy online-sgd relu d=20 M=1000 steps=\(steps): \(Int(Double(steps) / t)) steps/s")
    let q = try experiment(kind: .population, activation: .tanh, d: 20, m: 200, eta: 0.01, steps: quick ? 1 : 3)
    let (tq, _) = try timeRun(q)
    let perStep = fmt(tq / Double(q.stepCount + 1) * 1e3, 0)
    print("population-flow tanh (48x48 Gauss-Hermite) d=20 M=200: \(perStep) ms/step")
}

// 4. The reduced flow (z = (a, s, r), single-neuron relu teacher, trained second layer): time per
//    step with M reduced points, d = 20 (default t-rule) and d = infinity (Q = 1), on all cores
//    and on one. A step costs M^2 Q kernel evaluations whatever d.
if part("reduced") {
    for d in [ReducedDimension.finite(20), .infinity] {
        let teacher = try ReducedTeacher(directions: [[1]])
        let setting = try ReducedSetting(activation: .relu, inputDimension: d, teacher: teacher)
        let kernels = try ReducedKernels(setting: setting)
        for m in [500, 2000] {
            let law = try ReducedInitialLaw(aMean: 1, aStd: 0.1, gamma: 1).sampled(setting: setting, count: m, seed: 1)
            for parallel in [true, false] {
                let steps = quick ? 2 : (m == 500 ? 20 : 5)
                var settings = ReducedFlowSettings(eta: 0.01, horizon: 0.01 * Double(steps), recordEvery: 1)
                settings.parallel = parallel
                let flow = try ReducedPopulationFlow(kernels: kernels, settings: settings)
                let clock = ContinuousClock()
                var best = Double.infinity
                for _ in 0 ..< 3 {
                    // steps + 1 evaluations (the last one without the update).
                    best = min(best, seconds(clock.measure { _ = try? flow.run(from: law) }) / Double(steps + 1))
                }
                print("reduced flow relu d=\(d) Q=\(kernels.sphereRule.nodes.count) M=\(m) \(parallel ? "all cores" : "one core"): \(fmt(best * 1e3, 2)) ms/step")
            }
        }
    }
}

// 5. Accuracy of the reduced t-rule: the largest |U_Q - U_512| over random pairs, relu and erf,
//    for n = 1 ... 1000 and several Q (the table in ReducedKernels' notes).
if part("reduced-accuracy") {
    var g = Xoshiro256StarStar(seed: 11)
    var pairs = [([Double], [Double])]()
    for _ in 0 ..< 200 {
        pairs.append(([1, g.nextGaussian(), abs(g.nextGaussian()) + 0.01], [1, g.nextGaussian(), abs(g.nextGaussian()) + 0.01]))
    }
    pairs += [([1, 0.5, 1], [1, 0.5001, 1]), ([1, 1, 1], [1, 1, 1]), ([1, 0.1, 1], [1, 0.1, 1]), ([1, 2, 0.01], [1, 2, 0.01])]
    let qs = [1, 2, 4, 6, 8, 12, 16, 24, 32, 48, 64]
    for act in [Activation.relu, .erf] {
        print("\(act): n, default Q, error at default Q, then error for Q = \(qs)")
        for n in [1, 2, 3, 4, 5, 7, 10, 15, 19, 30, 50, 100, 200, 1000] {
            let setting = try ReducedSetting(activation: act, inputDimension: .finite(n + 1), teacher: ReducedTeacher(directions: [[1]]))
            let reference = try ReducedKernels(setting: setting, sphereNodes: 512)
            func worst(_ k: ReducedKernels) -> Double {
                pairs.map { abs(k.interaction($0.0, $0.1) - reference.interaction($0.0, $0.1)) }.max()!
            }
            let dflt = try ReducedKernels(setting: setting)
            let row = try qs.map { q -> String in
                let e = worst(try ReducedKernels(setting: setting, sphereNodes: q))
                return e == 0 ? "0" : "1e\(Int((log10(e)).rounded(.up)))"
            }
            print("n=\(n) Q=\(dflt.sphereRule.nodes.count) err=\(worst(dflt)) | \(row.joined(separator: " "))")
        }
    }
}
