import Wasserstein

/// One-pass and multi-pass SGD, specialised on the activation.
///
/// ## Storage
/// The particles are cut into blocks of ``SGDRunner/blockSize`` (64; each block has its own
/// noise stream and is the unit of work shared between threads), and each block into panels of 8
/// particles plus one narrower tail panel when the block size is not a multiple of 8. A panel
/// of width `p` starting at particle `s` stores its weights contiguously at `s * d`, coordinate
/// by coordinate: `w[s * d + k * p + (j - s)]` is coordinate `k` of particle `j`. One step then
/// streams through the weights once, front to back, and a panel's 8 outputs `u_j = <w_j, x>`
/// stay in registers. The buffers are 64-byte aligned and panels start at multiples of 8
/// particles, so the loads are aligned and SSE2 folds them into the arithmetic.
///
/// ## One step, fused
/// A step makes one pass over each panel: it applies the update of the previous step (whose
/// residual is known only once the previous output has been summed), accumulates the new `u`
/// in the same sweep, evaluates `s(u)` and `s'(u)` and adds `a_j s(u_j)` into the block's share
/// of the network output, all before leaving the panel.
///
/// ## Same arithmetic, whatever the split
/// Every particle sees the same IEEE operations in the same order on every path (panel lanes,
/// tail, one thread or two): `c = (gain a) s'`, `a <- (decay a + gain s(u)) (+ sigma z)`,
/// `w_k <- (decay w_k) + xPrev_k c (+ sigma z_k)` (the decay product skipped when the decay is
/// exactly 1, which changes nothing), `u = ((0 + x_0 w_0) + x_1 w_1) + ...`. The network output
/// is `f = (sum_b partial_b) / M` summed over blocks in order, and `partial_b` sums
/// `a_j s(u_j)` over the block in a fixed pattern (two 4-lane accumulators over groups of 8,
/// one more group of 4, the lanes pairwise, then the rest in order; the same as `dot(_:_:_:)`).
/// The activation uses the 4-lane form on the groups of 4 from the start of each block and the
/// scalar form on the rest, as the serial code always has. Threads split the work at block
/// boundaries only, so runs are bitwise identical on one core or two.
struct OnlineVisitor: ScalarFunctionVisitor {
    let runner: SGDRunner
    var recorder: Recorder

    func visit<F: ScalarFunction>(_ f: F) -> Recorder {
        let engine = OnlineEngine(runner: runner, activation: f)
        var rec = recorder
        engine.run(&rec)
        return rec
    }
}

/// The state lives in buffers allocated once per run (a class, so a step touches them without
/// The state lives in buffers allocated once per run (a class, so a step touches them without
/// exclusivity bookkeeping).
final class OnlineEngine<F: ScalarFunction> {
    let runner: SGDRunner
    let activation: F
    let m: Int, d: Int, D: Int, trained: Bool
    let blocks: Int
    /// Weights in panels (see ``OnlineVisitor``), 64-byte aligned.
    let w: UnsafeMutablePointer<Double>
    let a: UnsafeMutablePointer<Double>
    /// `s(u_j)` and `s'(u_j)` of the last forward pass.
    let sv: UnsafeMutablePointer<Double>
    let sd: UnsafeMutablePointer<Double>
    /// Each block's share of `sum_j a_j s(u_j)`.
    let partial: UnsafeMutablePointer<Double>
    /// Per-block scratch, allocated once: the block's noise (`blockSize * (d + 1)`: the draws of
    /// `a`, then the weights' coordinate by coordinate) and the tail panel's outputs (8).
    let noiseScratch: UnsafeMutablePointer<Double>
    let tailScratch: UnsafeMutablePointer<Double>
    let noise: UnsafeMutablePointer<Xoshiro256StarStar>
    /// What a step needs besides the particles, written by the owner thread before the step
    /// (the only data that crosses between threads each step, so kept compact): the pending
    /// gain `eta (y - f)` at 0, whether an update is pending (1) or not (0) at 1, the previous
    /// input at `8 ..< 8 + d` and the new one at `8 + d ..< 8 + 2d`.
    let step: UnsafeMutablePointer<Double>
    /// Each thread's copy of the step's inputs as the sweep reads them, four copies of each
    /// coordinate: `[xPrev_k x 4, x_k x 4]` for `k = 0 ..< d` (0: the owner's, 1: the partner's;
    /// `8 d` values each, one cache line per coordinate).
    let lanes: (UnsafeMutablePointer<Double>, UnsafeMutablePointer<Double>)
    let decay: Double
    let sigma: Double
    var samples: Xoshiro256StarStar
    /// Who ran the partner's share of the steps of the last run (for tests and diagnostics): the
    /// partner, the owner (taken back), the partner late (a stall); and the serial steps of a run
    /// with a partner.
    private(set) var partnerCounts = (partner: 0, owner: 0, stalled: 0, serial: 0)

    static func allocateAligned(_ count: Int) -> UnsafeMutablePointer<Double> {
        UnsafeMutableRawPointer.allocate(byteCount: max(1, count) * 8, alignment: 64)
            .bindMemory(to: Double.self, capacity: count)
    }

    init(runner: SGDRunner, activation: F) {
        self.runner = runner
        self.activation = activation
        let e = runner.experiment
        m = e.particles
        d = e.model.inputDimension
        D = e.model.parameterDimension
        trained = e.model.secondLayer == .trained
        decay = 1 - e.sgd.eta * e.energy.lambda
        sigma = runner.noiseScale
        let blockSize = SGDRunner.blockSize
        blocks = (m + blockSize - 1) / blockSize
        w = Self.allocateAligned(d * m)
        a = Self.allocateAligned(m)
        sv = Self.allocateAligned(m)
        sd = Self.allocateAligned(m)
        partial = Self.allocateAligned(blocks)
        partial.initialize(repeating: 0, count: blocks)
        noiseScratch = Self.allocateAligned(blocks * blockSize * (d + 1))
        tailScratch = Self.allocateAligned(blocks * 8)
        step = Self.allocateAligned(8 + 2 * d)
        step.initialize(repeating: 0, count: 8 + 2 * d)
        let laneStride = 8 * d
        let both = Self.allocateAligned(2 * laneStride)
        both.initialize(repeating: 0, count: 2 * laneStride)
        lanes = (both, both + laneStride)
        let (sampleStream, noiseStreams) = runner.streams()
        samples = sampleStream
        noise = .allocate(capacity: blocks)
        noise.initialize(from: noiseStreams, count: blocks)
        let p = runner.initialParticles()
        let o = trained ? 1 : 0
        for j in 0 ..< m {
            a[j] = trained ? p[j * D] : 1
            sv[j] = 0
            sd[j] = 0
            for k in 0 ..< d { w[weightIndex(particle: j, coordinate: k)] = p[j * D + o + k] }
        }
    }

    deinit {
        for p in [w, a, sv, sd, partial, noiseScratch, tailScratch, step, lanes.0] {
            UnsafeMutableRawPointer(p).deallocate()
        }
        noise.deinitialize(count: blocks)
        noise.deallocate()
    }

    /// Where coordinate `k` of particle `j` is stored in ``w``.
    func weightIndex(particle j: Int, coordinate k: Int) -> Int {
        let blockSize = SGDRunner.blockSize
        let j0 = j / blockSize * blockSize
        let n = min(m, j0 + blockSize) - j0
        let full = n / 8 * 8
        let i = j - j0
        let start = i < full ? j0 + i / 8 * 8 : j0 + full
        let width = i < full ? 8 : n - full
        return start * d + k * width + (j - start)
    }

    /// The particles, row-major `M x D`.
    func particles() -> [Double] {
        var p = [Double](repeating: 0, count: m * D)
        let o = trained ? 1 : 0
        for j in 0 ..< m {
            if trained { p[j * D] = a[j] }
            for k in 0 ..< d { p[j * D + o + k] = w[weightIndex(particle: j, coordinate: k)] }
        }
        return p
    }

    /// Inputs are drawn this many steps ahead (the same draws, in the same order, as one step at
    /// a time).
    static var inputBatch: Int { 256 }

    func run(_ recorder: inout Recorder) {
        let e = runner.experiment
        let eta = e.sgd.eta
        let steps = e.stepCount, stride = e.recordStride
        let labelNoise = e.teacher.noise
        let d = d

        // A spinning partner thread takes the second half of the blocks of every step when the
        // step is wide enough to pay for the exchange (StepPartner; threshold measured with
        // `bench-meanfield --only online-split`, see `onlineParallelThreshold`). Results are the
        // same either way.
        var partner: StepPartner? = nil
        let split = blocks / 2
        if e.parallel && StepPartner.coresAvailable > 1 && blocks >= 2 && m * d >= e.onlineParallelThreshold {
            let partnerLanes = lanes.1
            // unowned(unsafe): no reference counting on the engine (whose header shares a cache
            // line with fields the owner reads) at every step; the partner stops before the
            // engine can go away.
            partner = StepPartner(share: split ..< blocks, declineEvery: e.onlinePartner.declineEvery) { [unowned(unsafe) self] range in
                self.sweep(range, lanes: partnerLanes)
            }
        }
        defer { partner?.stop() }
        // The partner pays only with a core of its own. When the machine is busy it misses steps
        // (the owner then takes its share back, pulling that half of the weights over from the
        // other core's cache, slower than serial) or is descheduled in the middle of one; more
        // than a few such steps in a window of 256 switch to serial steps for a pause that
        // doubles at each repeat and resets after a clean window. Steps right after the partner
        // was woken from parking (after a record, after a pause) do not count.
        let policy = e.onlinePartner
        var serialUntil = 0
        var pause = policy.firstPause
        var windowSteps = 0, windowMisses = 0, grace = 0

        // The training set of multipass SGD, drawn once from the sample stream.
        var trainX: [Double] = []
        var trainY: [Double] = []
        var multipassCount = 0
        if case .multipass(let n) = e.sgd.kind {
            multipassCount = n
            (trainX, trainY) = SGDRunner.drawTrainingSet(count: n, experiment: e, using: &samples)
        }
        // Inputs and labels of the next `inputBatch` steps.
        let batch = Self.inputBatch
        var batchX = [Double](repeating: 0, count: batch * d)
        var batchY = [Double](repeating: 0, count: batch)
        var batchNext = batch, batchCount = batch
        var pendingGain = 0.0   // eta * (y - f) of the previous step
        let xPrevious = step + 8, xCurrent = step + 8 + d
        for k in 0 ... steps {
            let last = k == steps
            var y = 0.0
            xPrevious.update(from: xCurrent, count: d)
            if last {
                // Flush: apply the last update without a new sample.
                xCurrent.update(repeating: 0, count: d)
            } else {
                if batchNext == batchCount {
                    batchCount = min(batch, steps - k)
                    batchX.withUnsafeMutableBufferPointer { xs in
                        batchY.withUnsafeMutableBufferPointer { ys in
                            drawSamples(count: batchCount, x: xs.baseAddress!, y: ys.baseAddress!,
                                        trainX: trainX, trainY: trainY, trainingCount: multipassCount,
                                        labelNoise: labelNoise)
                        }
                    }
                    batchNext = 0
                }
                batchX.withUnsafeBufferPointer { xCurrent.update(from: $0.baseAddress! + batchNext * d, count: d) }
                y = batchY[batchNext]
                batchNext += 1
            }
            step[0] = pendingGain
            step[1] = k > 0 ? 1 : 0
            if let partner, k >= serialUntil {
                if partner.post() { grace = policy.wakeGrace }
                sweep(0 ..< split, lanes: lanes.0)
                let outcome = partner.finish()
                switch outcome {
                case .partner: partnerCounts.partner += 1
                case .owner: partnerCounts.owner += 1
                case .stalled: partnerCounts.stalled += 1
                }
                if grace > 0 {
                    grace -= 1
                } else {
                    windowSteps += 1
                    if outcome != .partner { windowMisses += 1 }
                    if outcome == .stalled || windowMisses > policy.toleratedMisses {
                        serialUntil = k + 1 + pause
                        pause = min(2 * pause, policy.longestPause)
                        windowSteps = 0; windowMisses = 0
                    } else if windowSteps == policy.window {
                        if windowMisses == 0 { pause = policy.firstPause }
                        windowSteps = 0; windowMisses = 0
                    }
                }
            } else {
                if partner != nil { partnerCounts.serial += 1 }
                sweep(0 ..< blocks, lanes: lanes.0)
            }
            var f = 0.0
            for b in 0 ..< blocks { f += partial[b] }
            let output = f / Double(m)
            if k % stride == 0 || last {
                recorder.record(step: k, particles: particles())
                if case .diverged = recorder.status { return }
            }
            if last { break }
            recorder.tick(step: k)
            if !output.isFinite {
                recorder.diverged(step: k)
                return
            }
            pendingGain = eta * (y - output)
        }
    }

    /// Draws the inputs and labels of the next `count` steps, in the order the steps use them:
    /// for each step `x` (or a training index), then the label noise.
    func drawSamples(count: Int, x: UnsafeMutablePointer<Double>, y: UnsafeMutablePointer<Double>,
                     trainX: [Double], trainY: [Double], trainingCount: Int, labelNoise: Double) {
        let e = runner.experiment
        var g = samples
        defer { samples = g }
        for s in 0 ..< count {
            let xs = x + s * d
            if trainingCount > 0 {
                let i = g.nextIndex(below: trainingCount)
                for t in 0 ..< d { xs[t] = trainX[i * d + t] }
                y[s] = trainY[i]
            } else {
                e.model.inputs.sample(into: xs, dimension: d, using: &g)
                var v = teacherMean(xs)
                if labelNoise > 0 { v += labelNoise * g.nextGaussianPair().0 }
                y[s] = v
            }
        }
    }

    func teacherMean(_ x: UnsafePointer<Double>) -> Double {
        switch runner.experiment.teacher {
        case .neurons(let directions, let coefficients, _, let own):
            var y = 0.0
            for (dir, c) in zip(directions, coefficients) {
                var s = 0.0
                for t in 0 ..< d { s += dir[t] * x[t] }
                y += c * (own?.value(s) ?? activation.value(s))
            }
            return y
        case .linear(let b, _):
            var y = 0.0
            for t in 0 ..< d { y += b[t] * x[t] }
            return y
        }
    }

    /// Runs the step described by ``step`` on the blocks in `range`, with `lanes` as this
    /// thread's copy of the inputs: applies the pending update
    /// `a_j <- decay a_j + gain s(u_j) (+ noise)`, `w_j <- decay w_j + gain a_j s'(u_j) x_prev
    /// (+ noise)` (old `a_j`), then computes `u_j = <w_j, x>`, `s(u_j)`, `s'(u_j)` and each
    /// block's `partial_b = sum_j a_j s(u_j)`. Touches only the blocks' own particles, scratch
    /// and noise streams.
    func sweep(_ range: Range<Int>, lanes x: UnsafeMutablePointer<Double>) {
        let gain = step[0]
        let update = step[1] != 0
        let xPrevious = step + 8, xCurrent = step + 8 + d
        for k in 0 ..< d {
            let o = xPrevious[k], v = xCurrent[k]
            let r = x + 8 * k
            r[0] = o; r[1] = o; r[2] = o; r[3] = o
            r[4] = v; r[5] = v; r[6] = v; r[7] = v
        }
        let noisy = sigma > 0, decays = decay != 1
        for b in range {
            switch (update, noisy, decays, trained) {
            case (false, _, _, _):
                sweepBlock(b, x, gain: gain, update: No.self, noisy: No.self, decays: No.self, trained: No.self)
            case (true, false, false, false):
                sweepBlock(b, x, gain: gain, update: Yes.self, noisy: No.self, decays: No.self, trained: No.self)
            case (true, false, false, true):
                sweepBlock(b, x, gain: gain, update: Yes.self, noisy: No.self, decays: No.self, trained: Yes.self)
            case (true, false, true, false):
                sweepBlock(b, x, gain: gain, update: Yes.self, noisy: No.self, decays: Yes.self, trained: No.self)
            case (true, false, true, true):
                sweepBlock(b, x, gain: gain, update: Yes.self, noisy: No.self, decays: Yes.self, trained: Yes.self)
            case (true, true, false, false):
                sweepBlock(b, x, gain: gain, update: Yes.self, noisy: Yes.self, decays: No.self, trained: No.self)
            case (true, true, false, true):
                sweepBlock(b, x, gain: gain, update: Yes.self, noisy: Yes.self, decays: No.self, trained: Yes.self)
            case (true, true, true, false):
                sweepBlock(b, x, gain: gain, update: Yes.self, noisy: Yes.self, decays: Yes.self, trained: No.self)
            case (true, true, true, true):
                sweepBlock(b, x, gain: gain, update: Yes.self, noisy: Yes.self, decays: Yes.self, trained: Yes.self)
            }
        }
    }

    /// One block. The variant is given by types, so that each combination is specialised into
    /// loops of its own, without tests inside (Bool arguments were not reliably folded).
    func sweepBlock<Update: StaticFlag, Noisy: StaticFlag, Decays: StaticFlag, Trained: StaticFlag>(
        _ b: Int, _ x: UnsafePointer<Double>, gain: Double,
        update _: Update.Type, noisy _: Noisy.Type, decays _: Decays.Type, trained _: Trained.Type
    ) {
        let update = Update.value, noisy = Noisy.value, decays = Decays.value, trained = Trained.value
        let blockSize = SGDRunner.blockSize
        let d = d
        let j0 = b * blockSize, n = min(m, j0 + blockSize) - j0
        // The block's noise, drawn as the serial code always has: a's n draws (trained second
        // layer), then the weights', coordinate by coordinate (k * n + i).
        let aNoise = noiseScratch + b * blockSize * (d + 1)
        let wNoise = trained ? aNoise + n : aNoise
        if update && noisy {
            noise[b].fillStandardNormal(aNoise, count: (trained ? n : 0) + d * n)
        }
        var acc0 = D4(), acc1 = D4()
        var i = 0
        while i + 8 <= n {
            panel(j0 + i, i, x, wNoise: wNoise, aNoise: aNoise, n: n, gain: gain, acc0: &acc0, acc1: &acc1,
                  update: Update.self, noisy: Noisy.self, decays: Decays.self, trained: Trained.self)
            i += 8
        }
        var acc = acc0 + acc1
        var scalarFrom = j0 + n
        if i < n {
            // The tail panel, width r < 8, one particle at a time.
            let r = n - i
            let j = j0 + i
            let wp = w + j * d
            let u = tailScratch + b * 8
            for lane in 0 ..< r {
                let jl = j + lane
                var c = 0.0
                if update {
                    c = gain * a[jl] * sd[jl]
                    if trained {
                        var v = decay * a[jl] + gain * sv[jl]
                        if noisy { v = v + sigma * aNoise[i + lane] }
                        a[jl] = v
                    }
                }
                var s = 0.0
                for k in 0 ..< d {
                    let p = wp + (k &* r &+ lane)
                    var v = p[0]
                    if update {
                        if decays { v = decay * v }
                        v = v + x[8 &* k] * c
                        if noisy { v = v + sigma * wNoise[k &* n &+ i &+ lane] }
                        p[0] = v
                    }
                    s = s + x[8 &* k &+ 4] * v
                }
                u[lane] = s
            }
            var lane = 0
            if r >= 4 {
                let (s4, ds4) = activation.valueAndDerivative4(load4(u))
                store4(s4, sv + j)
                store4(ds4, sd + j)
                acc += load4(a + j) * s4
                lane = 4
            }
            scalarFrom = j + lane
            while lane < r {
                let (v, dv) = activation.valueAndDerivative(u[lane])
                sv[j + lane] = v
                sd[j + lane] = dv
                lane += 1
            }
        }
        var s = (acc[0] + acc[1]) + (acc[2] + acc[3])
        for jl in scalarFrom ..< j0 + n { s += a[jl] * sv[jl] }
        partial[b] = s
    }

    /// One panel of 8 particles starting at particle `j` (`i` within its block): the update, the
    /// sweep and the activation, with the block sum's accumulators carried through (`acc0` takes
    /// lanes 0-3, `acc1` lanes 4-7, as in `dot`). Eight lanes keep the outputs, the update
    /// coefficients and the temporaries in the 16 SSE2 registers; 16 lanes spilled (measured
    /// slower). Kept out of line: inlined into the block loop, the register allocation was worse.
    @inline(never)
    func panel<Update: StaticFlag, Noisy: StaticFlag, Decays: StaticFlag, Trained: StaticFlag>(
        _ j: Int, _ i: Int, _ x: UnsafePointer<Double>, wNoise: UnsafePointer<Double>, aNoise: UnsafePointer<Double>,
        n: Int, gain: Double, acc0: inout D4, acc1: inout D4,
        update _: Update.Type, noisy _: Noisy.Type, decays _: Decays.Type, trained _: Trained.Type
    ) {
        let update = Update.value, noisy = Noisy.value, decays = Decays.value, trained = Trained.value
        let d = d, decay = decay, sigma = sigma, activation = activation
        let wp = w + j * d
        let aj = a + j, svj = sv + j, sdj = sd + j
        var a0 = loadAligned4(aj), a1 = loadAligned4(aj + 4)
        var c0 = D4(), c1 = D4()
        if update {
            c0 = gain * a0 * loadAligned4(sdj)
            c1 = gain * a1 * loadAligned4(sdj + 4)
            if trained {
                a0 = decay * a0 + gain * loadAligned4(svj)
                a1 = decay * a1 + gain * loadAligned4(svj + 4)
                if noisy {
                    a0 = a0 + sigma * loadAligned4(aNoise + i)
                    a1 = a1 + sigma * loadAligned4(aNoise + i + 4)
                }
                storeAligned4(a0, aj)
                storeAligned4(a1, aj + 4)
            }
        }
        var u0 = D4(), u1 = D4()
        for k in 0 ..< d {
            let row = wp + 8 &* k
            var v0 = loadAligned4(row), v1 = loadAligned4(row + 4)
            let xk = x + 8 &* k
            if update {
                if decays { v0 = decay * v0; v1 = decay * v1 }
                let xo = loadAligned4(xk)
                v0 = v0 + xo * c0
                v1 = v1 + xo * c1
                if noisy {
                    let z = wNoise + (k &* n &+ i)
                    v0 = v0 + sigma * load4(z)
                    v1 = v1 + sigma * load4(z + 4)
                }
                storeAligned4(v0, row)
                storeAligned4(v1, row + 4)
            }
            let xn = loadAligned4(xk + 4)
            u0 = u0 + xn * v0
            u1 = u1 + xn * v1
        }
        let (s0, ds0) = activation.valueAndDerivative4(u0)
        let (s1, ds1) = activation.valueAndDerivative4(u1)
        storeAligned4(s0, svj); storeAligned4(s1, svj + 4)
        storeAligned4(ds0, sdj); storeAligned4(ds1, sdj + 4)
        acc0 += a0 * s0
        acc1 += a1 * s1
    }
}

/// A compile-time Boolean (see `OnlineEngine.sweepBlock`).
protocol StaticFlag { static var value: Bool { get } }
enum Yes: StaticFlag { @inline(__always) static var value: Bool { true } }
enum No: StaticFlag { @inline(__always) static var value: Bool { false } }

/// How the online engine manages its partner thread (see `OnlineEngine.run`): the window of
/// counted steps, the misses tolerated in a window, the first and longest serial pauses (in
/// steps), the steps not counted after waking the partner, and (tests only) a partner that
/// declines every `declineEvery`-th step so that the owner takes its share back.
struct OnlinePartnerPolicy: Sendable {
    var window = 256
    var toleratedMisses = 4
    var firstPause = 4096
    var longestPause = 1 << 20
    var wakeGrace = 64
    var declineEvery = 0
}

/// Four values from a 16-byte aligned address (SSE2 can then fold the load into the arithmetic;
/// `load4` must assume no alignment).
@inline(__always)
func loadAligned4(_ p: UnsafePointer<Double>) -> D4 {
    UnsafeRawPointer(p).load(as: D4.self)
}

@inline(__always)
func storeAligned4(_ v: D4, _ p: UnsafeMutablePointer<Double>) {
    UnsafeMutableRawPointer(p).storeBytes(of: v, as: D4.self)
}

