import Foundation
import Testing
import MeanField
import Wasserstein
@testable import Experiments

@Suite("Single-neuron example: mean-field vs lazy scaling")
struct ScalingComparisonTests {
    /// Small enough for a debug build (two networks of 100 neurons, 2000 SGD steps, 11 exact
    /// risk evaluations each): d = 10, n = 6d = 60, M = 100, alpha = 100, eta = 0.02, T = 40.
    /// (The example itself uses d = 20 and n = 4d; with d = 10, n = 4d the training sets of some
    /// seeds are too poor for either network, see the measurements below.)
    static func small(seed: UInt64, horizon: Double = 40, recordEvery: Double = 4) -> ScalingComparison.Settings {
        var s = ScalingComparison.Settings()
        s.inputDimension = 10
        s.trainingSamples = 60
        s.width = 100
        s.lazyMultiplier = 100
        s.eta = 0.02
        s.horizon = horizon
        s.recordEvery = recordEvery
        s.seed = seed
        return s
    }

    /// The lecture's claim on fixed seeds. Measured final test risks (mean field / lazy) on seeds
    /// 1 ... 8: 0.0052/0.0330, 0.0066/0.0404, 0.0050/0.0326, 0.0080/0.0486, 0.0047/0.0302,
    /// 0.0035/0.0291, 0.0055/0.0377, 0.0045/0.0347: ratios 6.1 to 8.4. The best affine fit is
    /// 0.0454. Margins asserted on seeds 1, 2, 3: the lazy risk is more than twice the mean-field
    /// one (smallest measured ratio 6.1), the mean-field risk is below 0.6 times the best affine
    /// risk (largest measured 0.18 times), and the lazy risk above 0.6 times it (smallest measured
    /// 0.64 times, 0.72 on the seeds asserted: with n of order d samples the tangent-kernel
    /// regression that the lazy network approximates fits little beyond the degree-one part of the
    /// teacher).
    @Test("The single-neuron example's mean-field network reaches a lower test risk than its lazy twin",
          arguments: [UInt64(1), 2, 3])
    func meanFieldBeatsLazy(seed: UInt64) throws {
        let r = try ScalingComparison.run(Self.small(seed: seed))
        #expect(r.meanField.divergedAt == nil && r.lazy.divergedAt == nil)
        let mf = r.meanField.finalTestRisk, lazy = r.lazy.finalTestRisk
        #expect(2 * mf < lazy, "mean field \(mf), lazy \(lazy)")
        #expect(mf < 0.6 * r.bestAffineRisk, "mean field \(mf)")
        #expect(lazy > 0.6 * r.bestAffineRisk, "lazy \(lazy)")
        // Both (nearly) fit the training set, so the gap is one of generalisation, not of
        // optimisation: training risks below 5% of the zero predictor's (measured: at most 2.3%).
        #expect(r.meanField.finalTrainRisk < 0.05 * r.zeroPredictorRisk)
        #expect(r.lazy.finalTrainRisk < 0.05 * r.zeroPredictorRisk)
        // Lazy means lazy: the parameters move by O(1/alpha), the mean-field ones by O(1).
        #expect(r.lazy.relativeMovement < 0.01)
        #expect(r.meanField.relativeMovement > 0.1)
    }

    /// The plain sequential SGD loop in each network's own variables (output scale `c`, step
    /// `(eta / (M c)) (y - f) grad sigma_j`), on the training set and index sequence the engine
    /// draws from the seed (MeanField's multi-pass streams: the seed's stream jumped once, the
    /// inputs, then the indices). Returns the final particles, row-major `M x (d + 1)`.
    static func referenceLoop(_ s: ScalingComparison.Settings, scaling: ScalingComparison.Scaling, initial: [Double]) -> [Double] {
        let d = s.inputDimension, n = s.trainingSamples, m = s.width, D = d + 1
        var g = Xoshiro256StarStar(seed: s.seed)
        g.jump()
        let x = InputDistribution.gaussian.sample(count: n, dimension: d, using: &g)
        let y = (0 ..< n).map { max(0, x[$0 * d]) }
        let c = scaling.outputScale(width: m), gain = s.eta / (Double(m) * c)
        var p = initial
        var u = [Double](repeating: 0, count: m)
        for _ in 0 ..< s.steps {
            let i = g.nextIndex(below: n)
            var f = 0.0
            for j in 0 ..< m {
                var v = 0.0
                for k in 0 ..< d { v += p[j * D + 1 + k] * x[i * d + k] }
                u[j] = v
                if v > 0 { f += p[j * D] * v }
            }
            let step = gain * (y[i] - c * f)
            for j in 0 ..< m where u[j] > 0 {
                let a = p[j * D]
                p[j * D] = a + step * u[j]
                for k in 0 ..< d { p[j * D + 1 + k] += step * a * x[i * d + k] }
            }
        }
        return p
    }

    /// The comparison runs both networks on MeanField's SGD engine (the lazy one through the
    /// rescaling `theta' = sqrt(c M) theta`, exact for relu); the reference is the sequential
    /// loop in the networks' own variables. They differ only by rounding (the engine's block sums,
    /// the rescaling), amplified along 400 steps.
    @Test("Both networks on the SGD engine follow the plain SGD loop in their own variables")
    func engineMatchesPlainLoop() throws {
        let s = Self.small(seed: 2, horizon: 8, recordEvery: 8)
        let r = try ScalingComparison.run(s)
        for curve in [r.meanField, r.lazy] {
            let reference = Self.referenceLoop(s, scaling: curve.scaling, initial: r.initialParticles)
            var largest = 0.0, scale = 0.0
            for (a, b) in zip(curve.finalParticles, reference) {
                largest = max(largest, abs(a - b))
                scale = max(scale, abs(b))
            }
            #expect(curve.finalParticles.count == reference.count)
            #expect(largest <= 1e-12 * scale, "\(curve.scaling.name): largest difference \(largest), scale \(scale)")
        }
    }

    @Test("Both networks start from the zero function: test risk R#/2 = 1/4 at t = 0")
    func symmetricStart() throws {
        let r = try ScalingComparison.run(Self.small(seed: 7, horizon: 0.1, recordEvery: 0.1))
        // E[relu(u)^2] = 1/2 for u ~ N(0, 1); the paired start cancels exactly up to rounding of
        // the O(M^2) kernel sums (c^2 = 100 for the lazy network).
        #expect(abs(r.meanField.testRisk[0] - 0.25) < 1e-12)
        #expect(abs(r.lazy.testRisk[0] - 0.25) < 1e-9)
        #expect(abs(r.zeroPredictorRisk - 0.25) < 1e-15)
    }

    /// The exact risk with weights `c` against a Monte-Carlo estimate on fresh inputs, for the
    /// trained lazy network (c = alpha/sqrt(M) = 10) and the mean-field one (c = 1/M).
    @Test("The closed-form test risk agrees with a Monte-Carlo estimate for both output scales")
    func testRiskAgainstMonteCarlo() throws {
        let s = Self.small(seed: 2)
        let r = try ScalingComparison.run(s)
        let d = s.inputDimension, D = d + 1, m = s.width
        var g = Xoshiro256StarStar(seed: 99)
        let samples = 40_000
        for curve in [r.meanField, r.lazy] {
            var sum = 0.0, sumSq = 0.0
            var x = [Double](repeating: 0, count: d)
            for _ in 0 ..< samples {
                var draws = x.mutableSpan
                g.fillStandardNormal(&draws)
                var f = 0.0
                for j in 0 ..< m {
                    var u = 0.0
                    for k in 0 ..< d { u += curve.finalParticles[j * D + 1 + k] * x[k] }
                    f += curve.finalParticles[j * D] * max(0, u)
                }
                let e = max(0, x[0]) - curve.outputScale * f
                let loss = 0.5 * e * e
                sum += loss
                sumSq += loss * loss
            }
            let mean = sum / Double(samples)
            let standardError = ((sumSq / Double(samples) - mean * mean) / Double(samples)).squareRoot()
            // Five standard errors: a failure is a formula error, not bad luck (p ~ 6e-7).
            #expect(abs(mean - curve.finalTestRisk) < 5 * standardError,
                    "\(curve.scaling.name): Monte Carlo \(mean) +- \(standardError), exact \(curve.finalTestRisk)")
        }
    }

    @Test("The best affine risk matches a numerical Hermite projection of relu")
    func bestAffineRisk() {
        // E[relu], E[relu * u], E[relu^2] by the midpoint rule on [-12, 12] against the N(0, 1) density.
        let steps = 200_000, lo = -12.0, h = 24.0 / Double(steps)
        var m0 = 0.0, m1 = 0.0, m2 = 0.0
        for i in 0 ..< steps {
            let u = lo + (Double(i) + 0.5) * h
            let w = exp(-u * u / 2) / (2 * Double.pi).squareRoot() * h
            let r = max(0, u)
            m0 += r * w; m1 += r * u * w; m2 += r * r * w
        }
        // Residual of the L2 projection on span{1, u}: E[r^2] - E[r]^2 - E[r u]^2; risk = half.
        let numeric = 0.5 * (m2 - m0 * m0 - m1 * m1)
        #expect(abs(ScalingComparison.bestAffineRisk() - numeric) < 1e-8)
        #expect(abs(ScalingComparison.bestAffineRisk(labelNoise: 0.3) - numeric - 0.045) < 1e-8)
    }

    @Test("Bad settings give one-line errors naming the setting")
    func badSettings() {
        var s = Self.small(seed: 1)
        s.width = 101
        #expect(throws: ExperimentError.self) { try ScalingComparison.run(s) }
        do { _ = try ScalingComparison.run(s) } catch {
            #expect("\(error)".hasPrefix("width:"))
            #expect(!"\(error)".contains("\n"))
        }
        s = Self.small(seed: 1)
        s.lazyMultiplier = .nan
        #expect(throws: ExperimentError.self) { try ScalingComparison.run(s) }
        s = Self.small(seed: 1)
        s.eta = 0
        #expect(throws: ExperimentError.self) { try ScalingComparison.run(s) }
    }

    @Test("The written files carry the curves: CSV rows and SVG point counts")
    func outputFiles() throws {
        let r = try ScalingComparison.run(Self.small(seed: 3, horizon: 1, recordEvery: 0.2))
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("scaling-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try OutputDirectory.writing(to: dir) { try ScalingComparison.write(r, to: $0) }
        let table = try CSVFormat.read(path: dir + "/test_risk.csv")
        #expect(table.header?.first == "t")
        #expect(table.array.shape == [6, 6])
        let svg = try #require(SVGInspector.inspect(String(contentsOfFile: dir + "/test_risk.svg", encoding: .utf8)))
        let lines = svg.series("polyline")
        #expect(lines["mean field (1/M)"]?["data-points"] == "6")
        #expect(lines["lazy (100/sqrt(M))"]?["data-points"] == "6")
        #expect(lines["best affine fit"]?["data-points"] == "2")
        let histogram = try #require(SVGInspector.inspect(String(contentsOfFile: dir + "/alignment.svg", encoding: .utf8)))
        #expect(histogram.series("path")["lazy"]?["data-count"] == "100")
        #expect(FileManager.default.fileExists(atPath: dir + "/summary.json"))
    }
}
