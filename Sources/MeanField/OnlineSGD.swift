import Wasserstein

/// One-pass and multi-pass SGD, specialised on the activation.
///
/// ## Storage
/// The particles are cut into blocks of ``SGDRunner/blockSize`` (64; each block has its own
/// noise stream and is the unit of work shared between threads), and each block into panels of
/// 8 particles plus one narrower tail panel when the block size is not a multiple of 8. A panel
/// of width `p` starting at particle `s` stores its weights contiguously at `s * d`, coordinate
/// by coordinate: `w[s * d + k * p + (j - s)]` is coordinate `k` of particle `j`. One step then
/// streams through the weights once, front to back, and each panel's 8 outputs
/// `u_j = <w_j, x>` stay in registers.
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
/// one more group of 4, the lanes pairwise, then the rest in order; the same as ``dot(_:_:_:)``).
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
/// exclusivity bookkeeping).
final class OnlineEngine<F: ScalarFunction> {
    let runner: SGDRunner
    let activation: F
    let m: Int, d: Int, D: Int, trained: Bool
    let blocks: Int
    /// Weights in panels (see ``OnlineVisitor``).
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
    /// The step's inputs as the sweep reads them, four copies of each coordinate:
    /// `[xPrev_k x 4, x_k x 4]` for `k = 0 ..< d` (the previous input for the pending update, the
    /// new one for the outputs). 64-byte aligned: one cache line per coordinate.
    let inputs: UnsafeMutablePointer<Double>
    /// The step's parameters for the sweep: the pending gain `eta (y - f)` and whether an update
    /// is pending (1) or not (0).
    let stepParameters: UnsafeMutablePointer<Double>
    let decay: Double
    let sigma: Double
    var samples: Xoshiro256StarStar

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
        w = .allocate(capacity: d * m)
        a = .allocate(capacity: m)
        sv = .allocate(capacity: m)
        sd = .allocate(capacity: m)
        partial = .allocate(capacity: blocks)
        partial.initialize(repeating: 0, count: blocks)
        noiseScratch = .allocate(capacity: blocks * blockSize * (d + 1))
        tailScratch = .allocate(capacity: blocks * 8)
        inputs = UnsafeMutableRawPointer.allocate(byteCount: 64 * d, alignment: 64)
            .bindMemory(to: Double.self, capacity: 8 * d)
        inputs.initialize(repeating: 0, count: 8 * d)
        stepParameters = .allocate(capacity: 2)
        stepParameters.initialize(repeating: 0, count: 2)
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
        w.deallocate(); a.deallocate(); sv.deallocate(); sd.deallocate()
        partial.deallocate()
        noiseScratch.deallocate()
        tailScratch.deallocate()
        UnsafeMutableRawPointer(inputs).deallocate()
        stepParameters.deallocate()
        noise.deinitialize(count: blocks)
        noise.deallocate()
    }

    /// Where coordinate `k` of particle `j` is stored in ``w``.
    func weightIndex(particle j: Int, coordinate k: Int) -> Int {
        let blockSize = SGDRunner.blockSize
        let j0 = j / blockSize * blockSize
        let n = min(m, j0 + blockSize) - j0
        let full = n & ~7
        let i = j - j0
        let start = i < full ? j0 + (i & ~7) : j0 + full
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
        // step is wide enough to pay for the exchange (see StepPartner; measurements in
        // Docs/Benchmarks.md). Results are the same either way.
        var partner: StepPartner? = nil
        let split = blocks / 2
        if e.parallel && Parallel.coreCount > 1 && blocks >= 2 && m * d >= e.onlineParallelThreshold {
            partner = StepPartner(share: split ..< blocks) { [unowned self] range in self.sweep(range) }
        }
        defer { partner?.stop() }
        let ownShare = partner == nil ? 0 ..< blocks : 0 ..< split

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
        for k in 0 ... steps {
            let last = k == steps
            var y = 0.0
            if last {
                // Flush: apply the last update without a new sample.
                setInputs(nil)
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
                batchX.withUnsafeBufferPointer { setInputs($0.baseAddress! + batchNext * d) }
                y = batchY[batchNext]
                batchNext += 1
            }
            stepParameters[0] = pendingGain
            stepParameters[1] = k > 0 ? 1 : 0
            if let partner {
                partner.post()
                sweep(ownShare)
                partner.finish()
            } else {
                sweep(ownShare)
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
        for s in 0 ..< count {
            let xs = x + s * d
            if trainingCount > 0 {
                let i = samples.nextIndex(below: trainingCount)
                for t in 0 ..< d { xs[t] = trainX[i * d + t] }
                y[s] = trainY[i]
            } else {
                e.model.inputs.sample(into: xs, dimension: d, using: &samples)
                var v = teacherMean(xs)
                if labelNoise > 0 { v += labelNoise * samples.nextGaussianPair().0 }
                y[s] = v
            }
        }
    }

    /// Moves the current input into the `xPrev` lanes of ``inputs`` and writes `x` (zero when
    /// `nil`) into the `x` lanes.
    func setInputs(_ x: UnsafePointer<Double>?) {
        for k in 0 ..< d {
            let r = inputs + 8 * k
            let previous = r[4]
            let v = x?[k] ?? 0
            r[0] = previous; r[1] = previous; r[2] = previous; r[3] = previous
            r[4] = v; r[5] = v; r[6] = v; r[7] = v
        }
    }

    func teacherMean(_ x: UnsafePointer<Double>) -> Double {
        switch runner.experiment.teacher {
        case .neurons(let directions, let coefficients, _):
            var y = 0.0
            for (dir, c) in zip(directions, coefficients) {
                var s = 0.0
                for t in 0 ..< d { s += dir[t] * x[t] }
                y += c * activation.value(s)
            }
            return y
        case .linear(let b, _):
            var y = 0.0
            for t in 0 ..< d { y += b[t] * x[t] }
            return y
        }
    }

    /// Runs the step described by ``inputs`` and ``stepParameters`` on the blocks in `range`:
    /// applies the pending update `a_j <- decay a_j + gain s(u_j) (+ noise)`,
    /// `w_j <- decay w_j + gain a_j s'(u_j) x_prev (+ noise)` (old `a_j`), then computes
    /// `u_j = <w_j, x>`, `s(u_j)`, `s'(u_j)` and each block's `partial_b = sum_j a_j s(u_j)`.
    /// Touches only the blocks' own particles, scratch and noise streams.
    func sweep(_ range: Range<Int>) {
        let gain = stepParameters[0]
        let update = stepParameters[1] != 0
        let noisy = sigma > 0, decays = decay != 1
        for b in range {
            switch (update, noisy, decays, trained) {
            case (false, _, _, _):
                sweepBlock(b, gain: gain, update: false, noisy: false, decays: false, trained: false)
            case (true, false, false, false):
                sweepBlock(b, gain: gain, update: true, noisy: false, decays: false, trained: false)
            case (true, false, false, true):
                sweepBlock(b, gain: gain, update: true, noisy: false, decays: false, trained: true)
            case (true, false, true, false):
                sweepBlock(b, gain: gain, update: true, noisy: false, decays: true, trained: false)
            case (true, false, true, true):
                sweepBlock(b, gain: gain, update: true, noisy: false, decays: true, trained: true)
            case (true, true, false, false):
                sweepBlock(b, gain: gain, update: true, noisy: true, decays: false, trained: false)
            case (true, true, false, true):
                sweepBlock(b, gain: gain, update: true, noisy: true, decays: false, trained: true)
            case (true, true, true, false):
                sweepBlock(b, gain: gain, update: true, noisy: true, decays: true, trained: false)
            case (true, true, true, true):
                sweepBlock(b, gain: gain, update: true, noisy: true, decays: true, trained: true)
            }
        }
    }

    /// One block; the flags are literals at every call, so each combination compiles to its own
    /// loop.
    @inline(__always)
    func sweepBlock(_ b: Int, gain: Double, update: Bool, noisy: Bool, decays: Bool, trained: Bool) {
        let blockSize = SGDRunner.blockSize
        let d = d, decay = decay, sigma = sigma, activation = activation
        let j0 = b * blockSize, n = min(m, j0 + blockSize) - j0
        let full = n & ~7
        // The block's noise, drawn as the serial code always has: a's n draws (trained second
        // layer), then the weights', coordinate by coordinate (k * n + i).
        let aNoise = noiseScratch + b * blockSize * (d + 1)
        let wNoise = trained ? aNoise + n : aNoise
        if update && noisy {
            noise[b].fillStandardNormal(aNoise, count: (trained ? n : 0) + d * n)
        }
        let x = UnsafePointer(inputs)
        var acc0 = D4(), acc1 = D4()
        var i = 0
        while i < full {
            let j = j0 + i
            let wp = w + j * d
            let aj = a + j, svj = sv + j, sdj = sd + j
            var a0 = load4(aj), a1 = load4(aj + 4)
            var c0 = D4(), c1 = D4()
            if update {
                c0 = gain * a0 * load4(sdj)
                c1 = gain * a1 * load4(sdj + 4)
                if trained {
                    a0 = decay * a0 + gain * load4(svj)
                    a1 = decay * a1 + gain * load4(svj + 4)
                    if noisy {
                        a0 = a0 + sigma * load4(aNoise + i)
                        a1 = a1 + sigma * load4(aNoise + i + 4)
                    }
                    store4(a0, aj)
                    store4(a1, aj + 4)
                }
            }
            var u0 = D4(), u1 = D4()
            for k in 0 ..< d {
                let row = wp + 8 &* k
                var v0 = load4(row), v1 = load4(row + 4)
                let xk = x + 8 &* k
                if update {
                    if decays { v0 = decay * v0; v1 = decay * v1 }
                    let xo = load4(xk)
                    v0 = v0 + xo * c0
                    v1 = v1 + xo * c1
                    if noisy {
                        let z = wNoise + (k &* n &+ i)
                        v0 = v0 + sigma * load4(z)
                        v1 = v1 + sigma * load4(z + 4)
                    }
                    store4(v0, row)
                    store4(v1, row + 4)
                }
                let xn = load4(xk + 4)
                u0 = u0 + xn * v0
                u1 = u1 + xn * v1
            }
            let (s0, ds0) = activation.valueAndDerivative4(u0)
            let (s1, ds1) = activation.valueAndDerivative4(u1)
            store4(s0, svj); store4(s1, svj + 4)
            store4(ds0, sdj); store4(ds1, sdj + 4)
            acc0 += a0 * s0
            acc1 += a1 * s1
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
}
