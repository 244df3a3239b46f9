import Wasserstein

/// One-pass and multi-pass SGD, specialised on the activation.
///
/// Storage for speed: the weights are kept column-major (`d x M`, row `k` holds coordinate `k`
/// of every particle), so both the outputs `u_j = <w_j, x>` and the rank-one update
/// `w_j += c_j x` are axpys over `j` that vectorise. Each step makes one pass over the weights:
/// it applies the previous step's update and accumulates the new `u` in the same sweep. The
/// pass runs over blocks of 64 particles, each with its own noise stream.
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
    /// Weights, column-major `d x M`.
    let wt: UnsafeMutablePointer<Double>
    let a: UnsafeMutablePointer<Double>
    let sv: UnsafeMutablePointer<Double>
    let sd: UnsafeMutablePointer<Double>
    let u: UnsafeMutablePointer<Double>
    let partial: UnsafeMutablePointer<Double>
    /// Per-block scratch: the update coefficients (`blockSize` per block) and the block's
    /// noise (`blockSize * max(1, d)` per block), allocated once.
    let scratchCoefficients: UnsafeMutablePointer<Double>
    let scratchNoise: UnsafeMutablePointer<Double>
    let noise: UnsafeMutablePointer<Xoshiro256StarStar>
    var samples: Xoshiro256StarStar

    init(runner: SGDRunner, activation: F) {
        self.runner = runner
        self.activation = activation
        let e = runner.experiment
        m = e.particles
        d = e.model.inputDimension
        D = e.model.parameterDimension
        trained = e.model.secondLayer == .trained
        blocks = (m + SGDRunner.blockSize - 1) / SGDRunner.blockSize
        wt = .allocate(capacity: d * m)
        a = .allocate(capacity: m)
        sv = .allocate(capacity: m)
        sd = .allocate(capacity: m)
        u = .allocate(capacity: m)
        partial = .allocate(capacity: blocks)
        scratchCoefficients = .allocate(capacity: blocks * SGDRunner.blockSize)
        scratchNoise = .allocate(capacity: blocks * SGDRunner.blockSize * max(1, d))
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
            u[j] = 0
            for k in 0 ..< d { wt[k * m + j] = p[j * D + o + k] }
        }
    }

    deinit {
        wt.deallocate(); a.deallocate(); sv.deallocate(); sd.deallocate(); u.deallocate()
        partial.deallocate()
        scratchCoefficients.deallocate()
        scratchNoise.deallocate()
        noise.deinitialize(count: blocks)
        noise.deallocate()
    }

    /// The particles, row-major `M x D`.
    func particles() -> [Double] {
        var p = [Double](repeating: 0, count: m * D)
        let o = trained ? 1 : 0
        for j in 0 ..< m {
            if trained { p[j * D] = a[j] }
            for k in 0 ..< d { p[j * D + o + k] = wt[k * m + j] }
        }
        return p
    }

    func run(_ recorder: inout Recorder) {
        let e = runner.experiment
        let eta = e.sgd.eta
        let decay = 1 - eta * e.energy.lambda
        let sigma = runner.noiseScale
        let steps = e.stepCount, stride = e.recordStride
        let labelNoise = e.teacher.noise
        // Splitting one step's sweep over the cores did not pay at M d = 2e4, measured on the
        // 2-core machine: 35k steps/s split against 177k serial without noise (the sweep takes
        // ~5 us, the hand-off to a sleeping worker far more), 8.0k against 8.6k with noise
        // (M D normals per step). Steps run serially unless very wide.
        let parallel = e.parallel && blocks >= 2 && m * d >= e.onlineParallelThreshold

        // The training set of multipass SGD, drawn once from the sample stream.
        var trainX: [Double] = []
        var trainY: [Double] = []
        if case .multipass(let n) = e.sgd.kind {
            (trainX, trainY) = SGDRunner.drawTrainingSet(count: n, experiment: e, using: &samples)
        }
        var x = [Double](repeating: 0, count: d)
        var xPrevious = [Double](repeating: 0, count: d)
        var pendingGain = 0.0   // eta * (y - f) of the previous step
        for k in 0 ... steps {
            let last = k == steps
            var y = 0.0
            if last {
                // Flush: apply the last update without a new sample.
                for t in 0 ..< d { x[t] = 0 }
            } else if case .multipass(let n) = e.sgd.kind {
                let i = samples.nextIndex(below: n)
                for t in 0 ..< d { x[t] = trainX[i * d + t] }
                y = trainY[i]
            } else {
                x.withUnsafeMutableBufferPointer { e.model.inputs.sample(into: $0.baseAddress!, dimension: d, using: &samples) }
                y = teacherMean(x)
                if labelNoise > 0 { y += labelNoise * samples.nextGaussianPair().0 }
            }
            let output = x.withUnsafeBufferPointer { xp in
                xPrevious.withUnsafeBufferPointer { xq in
                    pass(x: xp.baseAddress!, xPrevious: xq.baseAddress!, gain: pendingGain, update: k > 0,
                         decay: decay, sigma: sigma, parallel: parallel)
                }
            }
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
            swap(&x, &xPrevious)
        }
    }

    func teacherMean(_ x: [Double]) -> Double {
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

    /// Applies the pending update `a_j <- decay a_j + gain s(u_j) (+ noise)`,
    /// `w_j <- decay w_j + gain a_j s'(u_j) x_prev (+ noise)` (old `a_j`), then computes
    /// `u_j = <w_j, x>`, `s(u_j)`, `s'(u_j)` and returns `f(x) = (1/M) sum_j a_j s(u_j)`.
    func pass(x: UnsafePointer<Double>, xPrevious xPrev: UnsafePointer<Double>, gain: Double, update: Bool,
              decay: Double, sigma: Double, parallel: Bool) -> Double {
        let m = m, d = d, trained = trained, activation = activation
        let blockSize = SGDRunner.blockSize
        nonisolated(unsafe) let w = wt, a = a, sv = sv, sd = sd, u = u, partial = partial, streams = noise
        nonisolated(unsafe) let scratchCoefficients = scratchCoefficients, scratchNoise = scratchNoise
        nonisolated(unsafe) let x = x, xPrev = xPrev
        let hasDecay = decay != 1
        let body = { (range: Range<Int>) in
            for b in range {
                let cw = scratchCoefficients + b * blockSize
                let nz = scratchNoise + b * blockSize * max(1, d)
                let j0 = b * blockSize, n = min(m, j0 + blockSize) - j0
                let ab = a + j0, svb = sv + j0, sdb = sd + j0, ub = u + j0
                if update {
                    var j = 0
                    while j + 4 <= n {
                        store4(gain * load4(ab + j) * load4(sdb + j), cw + j)
                        j += 4
                    }
                    while j < n { cw[j] = gain * ab[j] * sdb[j]; j += 1 }
                    if trained {
                        if sigma > 0 {
                            streams[b].fillStandardNormal(nz, count: n)
                            for j in 0 ..< n { ab[j] = decay * ab[j] + gain * svb[j] + sigma * nz[j] }
                        } else {
                            var j = 0
                            while j + 4 <= n {
                                store4(decay * load4(ab + j) + gain * load4(svb + j), ab + j)
                                j += 4
                            }
                            while j < n { ab[j] = decay * ab[j] + gain * svb[j]; j += 1 }
                        }
                    }
                    if sigma > 0 {
                        // The weight noise of the block, coordinate-major (k, then j).
                        for k in 0 ..< d { streams[b].fillStandardNormal(nz + k * n, count: n) }
                    }
                }
                let wb = w + j0
                switch (update, sigma > 0, hasDecay) {
                case (false, _, _):
                    onlineTiles(wb, m: m, d: d, n: n, x: x, xPrev: xPrev, cw: cw, noise: nz, sigma: sigma, decay: decay,
                                u: ub, update: false, noisy: false, decays: false)
                case (true, false, false):
                    onlineTiles(wb, m: m, d: d, n: n, x: x, xPrev: xPrev, cw: cw, noise: nz, sigma: sigma, decay: decay,
                                u: ub, update: true, noisy: false, decays: false)
                case (true, false, true):
                    onlineTiles(wb, m: m, d: d, n: n, x: x, xPrev: xPrev, cw: cw, noise: nz, sigma: sigma, decay: decay,
                                u: ub, update: true, noisy: false, decays: true)
                case (true, true, _):
                    onlineTiles(wb, m: m, d: d, n: n, x: x, xPrev: xPrev, cw: cw, noise: nz, sigma: sigma, decay: decay,
                                u: ub, update: true, noisy: true, decays: true)
                }
                var j = 0
                while j + 4 <= n {
                    let (v, dv) = activation.valueAndDerivative4(load4(ub + j))
                    store4(v, svb + j)
                    store4(dv, sdb + j)
                    j += 4
                }
                while j < n {
                    let (v, dv) = activation.valueAndDerivative(ub[j])
                    svb[j] = v
                    sdb[j] = dv
                    j += 1
                }
                partial[b] = dot(ab, svb, n)
            }
        }
        if parallel {
            Parallel.forEachChunk(count: blocks, minimumChunk: 1, body)
        } else {
            body(0 ..< blocks)
        }
        var f = 0.0
        for b in 0 ..< blocks { f += partial[b] }
        return f / Double(m)
    }
}

/// The sweep over one block of `n` particles (columns `j0 ..< j0 + n` of the column-major
/// weights `w`, passed already offset): optionally `w_kj <- decay w_kj + xPrev_k cw_j
/// (+ sigma noise_kj)`, then `u_j = sum_k x_k w_kj`. Eight particles at a time with the `u`
/// accumulators in registers; every element sees the same operations in the same order as in
/// the scalar tail (multiplying by a decay of exactly 1 is skipped, which changes nothing).
@inline(__always)
func onlineTiles(_ w: UnsafeMutablePointer<Double>, m: Int, d: Int, n: Int, x: UnsafePointer<Double>,
                 xPrev: UnsafePointer<Double>, cw: UnsafePointer<Double>, noise: UnsafePointer<Double>,
                 sigma: Double, decay: Double, u: UnsafeMutablePointer<Double>,
                 update: Bool, noisy: Bool, decays: Bool) {
    var j = 0
    while j + 8 <= n {
        var acc0 = D4(), acc1 = D4()
        let c0 = load4(cw + j), c1 = load4(cw + j + 4)
        for k in 0 ..< d {
            let row = w + (k &* m &+ j)
            var v0 = load4(row), v1 = load4(row + 4)
            if update {
                if decays { v0 = decay * v0; v1 = decay * v1 }
                let xo = xPrev[k]
                v0 = v0 + xo * c0
                v1 = v1 + xo * c1
                if noisy {
                    let z = noise + (k &* n &+ j)
                    v0 = v0 + sigma * load4(z)
                    v1 = v1 + sigma * load4(z + 4)
                }
                store4(v0, row)
                store4(v1, row + 4)
            }
            let xk = x[k]
            acc0 = acc0 + xk * v0
            acc1 = acc1 + xk * v1
        }
        store4(acc0, u + j)
        store4(acc1, u + j + 4)
        j += 8
    }
    while j < n {
        var acc = 0.0
        let c = cw[j]
        for k in 0 ..< d {
            let row = w + k * m + j
            var v = row[0]
            if update {
                if decays { v = decay * v }
                v = v + xPrev[k] * c
                if noisy { v = v + sigma * noise[k * n + j] }
                row[0] = v
            }
            acc = acc + x[k] * v
        }
        u[j] = acc
        j += 1
    }
}
