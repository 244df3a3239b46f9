import Testing
@testable import MeanField
import Wasserstein

/// A plain, one-particle-at-a-time transcription of the online / multi-pass SGD update
/// (Docs/Theory.md 4.1, the operation order documented on `OnlineVisitor`): row-major particles, no
/// panels, no fusion, no threads. Returns the final particles and the output `f` of every step.
///
/// It consumes the random streams exactly as documented on `SGDRunner`: the samples stream draws,
/// step after step, `x_k` (or a training index) then the label noise; block `b`'s noise stream
/// draws, at every update, the block's `a` noise (trained second layer) then its weight noise
/// coordinate by coordinate. The output `f` sums each block's `a_j s(u_j)` with `dot` (the
/// reduction pattern the engine documents), then the blocks in order.
private func referenceRun(_ e: SGDExperiment) throws -> (particles: [Double], outputs: [Double]) {
    let runner = try SGDRunner(experiment: e)
    let m = e.particles, d = e.model.inputDimension, D = e.model.parameterDimension
    let trained = e.model.secondLayer == .trained, o = trained ? 1 : 0
    let eta = e.sgd.eta, decay = 1 - eta * e.energy.lambda, sigma = runner.noiseScale
    let s = e.model.activation
    var p = runner.initialParticles()
    var (samples, streams) = runner.streams()
    var training: (inputs: [Double], labels: [Double])? = nil
    if case .multipass(let n) = e.sgd.kind {
        training = SGDRunner.drawTrainingSet(count: n, experiment: e, using: &samples)
    }
    var a = (0 ..< m).map { trained ? p[$0 * D] : 1.0 }
    var sv = [Double](repeating: 0, count: m), sd = sv
    var xPrev = [Double](repeating: 0, count: d)
    var gain = 0.0
    var outputs: [Double] = []
    let blockSize = SGDRunner.blockSize
    for k in 0 ... e.stepCount {
        var x = [Double](repeating: 0, count: d)
        var y = 0.0
        if k < e.stepCount {
            if let (tx, ty) = training {
                let i = samples.nextIndex(below: ty.count)
                x = Array(tx[i * d ..< (i + 1) * d])
                y = ty[i]
            } else {
                var draw = x.mutableSpan
                e.model.inputs.sample(into: &draw, using: &samples)
                y = e.teacher.mean(at: x, activation: s)
                if e.teacher.noise > 0 { y += e.teacher.noise * samples.nextGaussianPair().0 }
            }
        }
        var f = 0.0
        for b in 0 ..< streams.count {
            let j0 = b * blockSize, n = min(m, j0 + blockSize) - j0
            var z = [Double](repeating: 0, count: (trained ? n : 0) + d * n)
            if k > 0 && sigma > 0 {
                var draws = z.mutableSpan
                streams[b].fillStandardNormal(&draws)
            }
            let zw = trained ? n : 0
            for i in 0 ..< n {
                let j = j0 + i
                if k > 0 {
                    let c = gain * a[j] * sd[j]
                    if trained {
                        a[j] = decay * a[j] + gain * sv[j]
                        if sigma > 0 { a[j] = a[j] + sigma * z[i] }
                        p[j * D] = a[j]
                    }
                    for t in 0 ..< d {
                        var v = p[j * D + o + t]
                        if decay != 1 { v = decay * v }
                        v = v + xPrev[t] * c
                        if sigma > 0 { v = v + sigma * z[zw + t * n + i] }
                        p[j * D + o + t] = v
                    }
                }
                var u = 0.0
                for t in 0 ..< d { u = u + x[t] * p[j * D + o + t] }
                sv[j] = s.value(u)
                sd[j] = s.derivative(u)
            }
            f += a.withUnsafeBufferPointer { ap in sv.withUnsafeBufferPointer { dot(ap.baseAddress! + j0, $0.baseAddress! + j0, n) } }
        }
        if k == e.stepCount { break }
        outputs.append(f / Double(m))
        gain = eta * (y - f / Double(m))
        xPrev = x
    }
    return (p, outputs)
}

@Suite("Online SGD engine: bitwise agreement with a plain reference, serial and two-thread")
struct OnlineEngineTests {
    /// Sizes chosen to cover full blocks of 64 (panels of 8), last blocks of 22, 13, 30 and 6
    /// particles (tail panels of width >= 4, with the 4-lane activation then the scalar one, and
    /// narrower than 4), a single short block, and d = 1.
    static let shapes: [(m: Int, d: Int)] = [(150, 3), (205, 7), (13, 2), (70, 1), (64, 5), (94, 4)]

    func experiment(_ activation: Activation, m: Int, d: Int, kind: SGDKind = .online, trained: Bool = true,
                    lambda: Double = 0, noise: Bool = false) throws -> SGDExperiment {
        let model = try NetworkModel(activation: activation, inputDimension: d, secondLayer: trained ? .trained : .fixed)
        var direction = [Double](repeating: 0, count: d)
        direction[0] = 1
        var e = SGDExperiment(model: model, teacher: .singleNeuron(direction, noise: 0.1),
                              initialization: InitialLaw(aMean: 0.7, aStd: 0.3, wMean: 0.05, wStd: 0.6),
                              energy: EnergyParameters(lambda: lambda, beta: noise ? 50 : nil), particles: m,
                              horizon: 0.25, seed: 5, sgd: SGDSettings(eta: 0.01, kind: kind, noise: noise), recordEvery: 0.25)
        e.recordParticles = false
        return e
    }

    @Test("Serial engine equals the reference bitwise (relu, erf, linear; trained or fixed; decay; noise; multipass)")
    func serialMatchesReference() throws {
        // Exact equality: the engine and the reference perform the same IEEE operations in the
        // same order (no FMA contraction in Swift), so any reordering would show up as a bit
        // difference within a few steps. erf has no packed form (lane by lane = scalar), relu and
        // linear have packed forms equal to their scalar ones, so the reference may use the
        // scalar activation everywhere.
        for (m, d) in Self.shapes {
            for activation in [Activation.relu, .erf, .linear] {
                for (trained, lambda, noise) in [(true, 0.0, false), (false, 0.1, false), (true, 0.1, true), (false, 0.0, true)] {
                    for kind in [SGDKind.online, .multipass(samples: 7)] {
                        var e = try experiment(activation, m: m, d: d, kind: kind, trained: trained, lambda: lambda, noise: noise)
                        e.parallel = false
                        let engine = try SGDRunner(experiment: e).run()
                        let reference = try referenceRun(e)
                        #expect(engine.finalParticles == reference.particles,
                                "\(activation) m=\(m) d=\(d) trained=\(trained) lambda=\(lambda) noise=\(noise) \(kind)")
                    }
                }
            }
        }
    }

    /// Runs the engine directly (as `SGDRunner.run` does for relu) so that the test can see who
    /// ran the partner's shares.
    func runEngine(_ e: SGDExperiment) throws -> (Trajectory, OnlineEngine<ReLUFunction>) {
        let runner = try SGDRunner(experiment: e)
        let engine = OnlineEngine(runner: runner, activation: ReLUFunction())
        var recorder = Recorder(runner: runner, progress: nil)
        engine.run(&recorder)
        return (recorder.finish(), engine)
    }

    @Test("The two-thread path gives bitwise the serial trajectory", arguments: [Activation.relu, .erf, .tanh, .sigmoid])
    func twoThreadsMatchSerial(_ activation: Activation) throws {
        // The partner thread takes the second half of the blocks; results must not depend on
        // that (nor on whether it keeps up: the owner takes back an unclaimed share). Checked on
        // the final particles and both records (with their risks), with noise (per-block
        // streams) and decay. tanh and sigmoid use their packed forms on groups of 4 and libm on
        // the rest, so shapes with tail panels check that the rule follows block positions. (A
        // 4-node quadrature keeps the records of tanh and sigmoid cheap: only equality of the two
        // runs' risks matters here, not their accuracy.)
        for (m, d, noise) in [(130, 7, false), (94, 3, true), (77, 5, true)] {
            var e = try experiment(activation, m: m, d: d, lambda: 0.1, noise: noise)
            e.recordParticles = true
            e.onlineParallelThreshold = 0
            e.kernelOptions = KernelOptions(quadratureNodes: 4)
            let two = try SGDRunner(experiment: e).run()
            e.parallel = false
            let one = try SGDRunner(experiment: e).run()
            #expect(two.finalParticles == one.finalParticles, "m=\(m) d=\(d) noise=\(noise)")
            #expect(two.records.map { $0.particles! } == one.records.map { $0.particles! })
            #expect(two.records.map(\.risk) == one.records.map(\.risk))
        }
    }

    @Test("Steps run by the partner thread give bitwise the serial trajectory (1000 steps, partner kept on)")
    func partnerStepsMatchSerial() throws {
        // Long enough, with the fallback to serial steps disabled, for the partner thread to run
        // shares whatever the load of the machine (checked: a test of the two-thread path that
        // never used the partner would prove nothing).
        var e = try experiment(.relu, m: 205, d: 7, lambda: 0.1, noise: true)
        e.horizon = 10
        e.recordEvery = 2.5
        e.recordParticles = true
        e.onlineParallelThreshold = 0
        e.onlinePartner.toleratedMisses = .max
        let (two, engine) = try runEngine(e)
        e.parallel = false
        let (one, _) = try runEngine(e)
        #expect(engine.partnerCounts.partner + engine.partnerCounts.stalled > 0, "\(engine.partnerCounts)")
        #expect(two.steps == 1000)
        #expect(two.finalParticles == one.finalParticles)
        #expect(two.records.map { $0.particles! } == one.records.map { $0.particles! })
    }

    @Test("Shares taken back by the owner and serial pauses mid-run change nothing")
    func partnerMissesChangeNothing() throws {
        // A partner that declines every third step makes the owner run its share (with the
        // weights of that half in the other core's cache), and a policy shrunk to windows of 8
        // steps, one tolerated miss and pauses of 5 to 20 serial steps switches between serial
        // and two-thread steps many times in 200 steps (and parks and wakes the partner). None of
        // it may change a bit of the trajectory.
        for noise in [false, true] {
            var e = try experiment(.relu, m: 205, d: 5, lambda: 0.1, noise: noise)
            e.horizon = 2
            e.recordEvery = 0.5
            e.recordParticles = true
            e.onlineParallelThreshold = 0
            e.onlinePartner = OnlinePartnerPolicy(window: 8, toleratedMisses: 1, firstPause: 5, longestPause: 20,
                                                  wakeGrace: 2, declineEvery: 3)
            let (mixed, engine) = try runEngine(e)
            e.parallel = false
            let (one, _) = try runEngine(e)
            #expect(engine.partnerCounts.owner > 0 && engine.partnerCounts.serial > 0, "\(engine.partnerCounts)")
            #expect(mixed.steps == 200 && one.steps == 200)
            #expect(mixed.finalParticles == one.finalParticles, "noise=\(noise)")
            #expect(mixed.records.map { $0.particles! } == one.records.map { $0.particles! })
        }
    }
}
