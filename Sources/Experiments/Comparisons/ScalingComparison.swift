import Foundation
import MeanField
import Wasserstein

/// The lecture's single-neuron example: the same two-layer ReLU network, trained by multi-pass
/// SGD on the same small training set, under the mean-field scaling and under the lazy (NTK)
/// scaling.
///
/// The teacher is `y = relu(<w*, x>) + noise`, `x ~ N(0, I_d)`, `|w*| = 1` (`w* = e_1`). Both
/// students have `M` neurons `theta_j = (a_j, w_j)` and output
///
///     f(x) = c * sum_j a_j relu(<w_j, x>),   c = 1/M (mean field)  or  c = alpha/sqrt(M) (lazy).
///
/// **Initialisation** (shared): `M/2` draws `a = a0`, `w ~ N(0, s^2 I_d)` (`s = 1/sqrt(d)` by
/// default, so `|w| ~ 1`), each paired with its mirror `(-a0, w)`. The network output is then
/// exactly zero at `t = 0` for every `c`, which the lazy network needs: with `c = alpha/sqrt(M)`
/// an unpaired start would output `alpha` times an order-one random function.
///
/// **Steps.** One step draws a training pair `(x, y)` uniformly with replacement (the same index
/// sequence for both networks) and moves every neuron by
///
///     theta_j <- theta_j + (eta / (M c)) (y - f(x)) grad_theta [a_j relu(<w_j, x>)] ,
///
/// i.e. a plain SGD step on `(y - f)^2 / 2` with learning rate `eta / (M c^2)`. For the mean field
/// (`c = 1/M`) this is the particle step of Docs/Theory.md 4.1 with time `t = k eta`. For the lazy network the
/// learning rate is `eta / alpha^2`, the usual `1/alpha^2` rescaling (Chizat, Oyallon and Bach):
/// the tangent kernel `sum_j grad f grad f^T` is then `(1/M) sum_j grad sigma_j grad sigma_j^T`
/// for both scalings, so both outputs start moving at the same speed in `t`, while the lazy
/// parameters move only `O(1/alpha)`: the lazy network is, up to `O(1/alpha)`, kernel regression
/// with its tangent kernel at initialisation.
///
/// **Test risk** is exact: for any output scale `c`,
/// `R = R#/2 + c sum_j V(theta_j) + (c^2/2) sum_ij U(theta_i, theta_j)`, the closed-form ReLU
/// kernels of `PopulationRisk` with weights `c` (`PopulationRisk.risk(points:weights:)`).
///
/// **Reference.** The best affine predictor of `relu(<w*, x>)` has risk
/// `(1/2)(1/2 - 1/(2 pi) - 1/4) |w*|^2 ~ 0.0454` (``bestAffineRisk(labelNoise:)``). With `n` of
/// order `d` samples, a rotation-invariant kernel method cannot fit more than the degree-one part
/// of the target, so the lazy network stays near this value; the mean-field network moves its
/// first-layer weights towards `w*` and goes well below it.
public enum ScalingComparison {
    /// The settings of one comparison. The defaults are the example's (`swift run -c release
    /// example-single-neuron`): `d = 20`, `n = 80`, `M = 1000`, `alpha = 100`, `eta = 0.02`, `T = 100`.
    public struct Settings: Sendable, Equatable {
        /// The input dimension `d >= 1`.
        public var inputDimension = 20
        /// The training-set size `n >= 1` (shared by both networks).
        public var trainingSamples = 80
        /// The width `M` (even, >= 2: the initialisation is symmetric).
        public var width = 1000
        /// The lazy network's output multiplier `alpha > 0`.
        public var lazyMultiplier = 100.0
        /// The time per step `eta > 0` (see the type's notes for the learning rates it gives).
        public var eta = 0.02
        /// The final time `T > 0`; `round(T / eta)` steps.
        public var horizon = 100.0
        /// The time between records of the risks (> 0).
        public var recordEvery = 1.0
        /// Seeds the training set, the initial neurons and the sample order.
        public var seed: UInt64 = 1
        /// The standard deviation of the label noise (>= 0).
        public var labelNoise = 0.0
        /// `|a_j|` at initialisation (> 0).
        public var initialSecondLayer = 1.0
        /// The standard deviation of each coordinate of `w_j` at initialisation; `nil` is `1/sqrt(d)`.
        public var initialWeightStd: Double? = nil

        public init() {}

        /// The standard deviation of `w_j`'s coordinates in force.
        public var weightStd: Double { initialWeightStd ?? 1 / Double(inputDimension).squareRoot() }
        /// The number of SGD steps, `round(T / eta)`.
        public var steps: Int { Int(clampingCount: (horizon / eta).rounded(), limit: 1_000_000_000) }
        /// Steps between records, `max(1, round(recordEvery / eta))`, at most ``steps``.
        public var recordStride: Int { max(1, Int(clampingCount: (recordEvery / eta).rounded(), limit: max(1, steps))) }

        /// Checks every setting.
        /// - Throws: ``ExperimentError/invalidSetting(name:reason:)`` naming the setting.
        public func validate() throws {
            func check(_ ok: Bool, _ name: String, _ reason: String) throws {
                if !ok { throw ExperimentError.invalidSetting(name: name, reason: reason) }
            }
            try check(inputDimension >= 1 && inputDimension <= 100_000, "input dimension", "must be in 1 ... 100000, got \(inputDimension)")
            try check(trainingSamples >= 1, "training samples", "must be >= 1, got \(trainingSamples)")
            try check(width >= 2 && width % 2 == 0 && width <= 1_000_000, "width", "must be even, >= 2 and <= 10^6 (the start pairs every neuron with its mirror), got \(width)")
            try check(lazyMultiplier.isFinite && lazyMultiplier > 0, "lazy multiplier", "must be > 0 and finite, got \(lazyMultiplier)")
            try check(eta.isFinite && eta > 0, "eta", "must be > 0 and finite, got \(eta)")
            try check(horizon.isFinite && horizon > 0, "horizon", "must be > 0 and finite, got \(horizon)")
            try check(horizon / eta <= 1e9, "horizon", "horizon / eta must be at most 1e9 steps")
            try check(recordEvery.isFinite && recordEvery > 0, "record every", "must be > 0 and finite, got \(recordEvery)")
            try check(labelNoise.isFinite && labelNoise >= 0, "label noise", "must be >= 0 and finite, got \(labelNoise)")
            try check(initialSecondLayer.isFinite && initialSecondLayer > 0, "initial second layer", "must be > 0 and finite, got \(initialSecondLayer)")
            try check(weightStd.isFinite && weightStd > 0, "initial weight std", "must be > 0 and finite, got \(weightStd)")
        }
    }

    /// The output scaling of a network.
    public enum Scaling: Sendable, Equatable {
        /// `c = 1/M`.
        case meanField
        /// `c = alpha/sqrt(M)`.
        case lazy(multiplier: Double)

        /// The output scale `c` for width `M`.
        public func outputScale(width m: Int) -> Double {
            switch self {
            case .meanField: return 1 / Double(m)
            case .lazy(let alpha): return alpha / Double(m).squareRoot()
            }
        }

        /// A short name for tables and legends.
        public var name: String {
            switch self {
            case .meanField: return "mean field (1/M)"
            case .lazy(let alpha): return "lazy (\(Self.format(alpha))/sqrt(M))"
            }
        }

        static func format(_ v: Double) -> String { v == v.rounded() && abs(v) < 1e9 ? String(Int(clamping: v, to: -1_000_000_000 ... 1_000_000_000)) : String(v) }
    }

    /// One network's run.
    public struct Curve: Sendable {
        public var scaling: Scaling
        /// The output scale `c`.
        public var outputScale: Double
        /// The record times `t = k eta`.
        public var times: [Double]
        /// The exact population (test) risk at each record.
        public var testRisk: [Double]
        /// The training risk `(1/2n) sum_i (y_i - f(x_i))^2` at each record.
        public var trainRisk: [Double]
        /// The neurons at the end, row-major `M x (d + 1)`, a row `[a, w_1, ..., w_d]`.
        public var finalParticles: [Double]
        /// `|Theta_T - Theta_0| / |Theta_0|` (Euclidean norms of all parameters).
        public var relativeMovement: Double
        /// The time at which the run produced a non-finite output, if it did (the records stop there).
        public var divergedAt: Double?

        /// The final test risk.
        public var finalTestRisk: Double { testRisk.last ?? .nan }
        /// The final training risk.
        public var finalTrainRisk: Double { trainRisk.last ?? .nan }
    }

    /// What a comparison produced.
    public struct Result: Sendable {
        public var settings: Settings
        public var meanField: Curve
        public var lazy: Curve
        /// The initial neurons (shared), row-major `M x (d + 1)`.
        public var initialParticles: [Double]
        /// The teacher direction `w*` (`e_1`).
        public var teacherDirection: [Double]
        /// The risk of the best affine predictor, ``ScalingComparison/bestAffineRisk(labelNoise:)``.
        public var bestAffineRisk: Double
        /// The risk of the zero predictor, `R#/2`.
        public var zeroPredictorRisk: Double
        /// Wall-clock seconds of the whole comparison.
        public var seconds: Double

        /// `lazy.finalTestRisk / meanField.finalTestRisk`.
        public var finalRiskRatio: Double { lazy.finalTestRisk / meanField.finalTestRisk }
    }

    /// The risk `(1/2) E[(y - g(x))^2]` of the best affine predictor `g(x) = b + <v, x>` of
    /// `y = relu(<w*, x>) + noise`, `|w*| = 1`, `x ~ N(0, I_d)`.
    ///
    /// The Hermite expansion `relu(u) = 1/sqrt(2 pi) + u/2 + (terms of degree >= 2)` gives the
    /// affine part `1/sqrt(2 pi) + <w*, x>/2` (Stein: `E[relu(u) x] = P(u > 0) w* = w*/2`); its
    /// residual has second moment `E[relu^2] - 1/(2 pi) - 1/4 = 1/2 - 1/(2 pi) - 1/4 ~ 0.0908`,
    /// and the risk is half of that plus half the noise variance: `~ 0.0454` without noise.
    public static func bestAffineRisk(labelNoise s: Double = 0) -> Double {
        0.5 * (0.5 - 1 / (2 * Double.pi) - 0.25) + 0.5 * s * s
    }

    /// The shared initial neurons from `seed`'s stream: `M/2` draws and their mirrors
    /// (`a -> -a`, same `w`), row-major `M x (d + 1)`.
    static func initialParticles(_ s: Settings) -> [Double] {
        let d = s.inputDimension, m = s.width, D = d + 1
        var g = Xoshiro256StarStar(seed: s.seed)
        var initial = [Double](repeating: 0, count: m * D)
        let half = m / 2
        var w = [Double](repeating: 0, count: d)
        for j in 0 ..< half {
            var draws = w.mutableSpan
            g.fillStandardNormal(&draws)
            initial[j * D] = s.initialSecondLayer
            initial[(j + half) * D] = -s.initialSecondLayer
            for k in 0 ..< d {
                initial[j * D + 1 + k] = s.weightStd * w[k]
                initial[(j + half) * D + 1 + k] = s.weightStd * w[k]
            }
        }
        return initial
    }

    /// Runs both networks.
    ///
    /// - Parameters:
    ///   - settings: the experiment's sizes, steps and seed.
    ///   - progress: called now and then with the fraction done and a status text.
    /// - Returns: both curves, the shared start and the references.
    /// - Throws: ``ExperimentError/invalidSetting(name:reason:)`` for bad settings.
    /// - Complexity: `O(steps M d)` for the training and `O(records M^2 d)` for the exact test
    ///   risks, per network.
    public static func run(_ settings: Settings, progress: (@Sendable (Double, String) -> Void)? = nil) throws -> Result {
        try settings.validate()
        let clock = ContinuousClock()
        let start = clock.now
        let d = settings.inputDimension
        let initial = initialParticles(settings)
        var direction = [Double](repeating: 0, count: d)
        direction[0] = 1
        let model = try NetworkModel(activation: .relu, inputDimension: d, secondLayer: .trained, inputs: .gaussian)
        let teacher = Teacher.singleNeuron(direction, noise: settings.labelNoise)
        let risk = try PopulationRisk(model: model, teacher: teacher)
        let meanField = try train(.meanField, settings: settings, initial: initial, model: model, teacher: teacher) { f, text in
            progress?(0.5 * f, "mean field " + text)
        }
        let lazy = try train(.lazy(multiplier: settings.lazyMultiplier), settings: settings, initial: initial, model: model, teacher: teacher) { f, text in
            progress?(0.5 + 0.5 * f, "lazy " + text)
        }
        progress?(1, "done")
        return Result(settings: settings, meanField: meanField, lazy: lazy, initialParticles: initial,
                      teacherDirection: direction, bestAffineRisk: bestAffineRisk(labelNoise: settings.labelNoise),
                      zeroPredictorRisk: risk.teacherSecondMoment / 2, seconds: (clock.now - start).timeInSeconds)
    }

    /// Multi-pass SGD of one network from the shared start on MeanField's SGD engine; records the
    /// exact test risk and the training risk every ``Settings/recordStride`` steps.
    ///
    /// The engine runs the mean-field network `f = (1/M) sum_j a_j relu(<w_j, x>)` with the step
    /// `theta_j <- theta_j + eta' (y - f) grad sigma_j`. A network of output scale `c` maps onto it
    /// exactly because relu is positively 1-homogeneous: with `theta' = lambda theta`,
    /// `lambda^2 = c M`, the output is `(1/M) sum_j a'_j relu(<w'_j, x>) = f`, and the step
    /// `(eta / (M c)) (y - f) grad sigma_j` on `theta` is the step `eta' = eta / (c M)` on
    /// `theta'` (both components scale by `lambda`). The engine's time `k eta'` is reported as
    /// `k eta`. The mean-field network has `lambda = 1`, `eta' = eta`.
    ///
    /// The training set and the index sequence are the engine's multi-pass draws from `seed`, the
    /// same for both networks.
    static func train(_ scaling: Scaling, settings s: Settings, initial: [Double], model: NetworkModel, teacher: Teacher,
                      progress: @escaping (Double, String) -> Void) throws -> Curve {
        let d = s.inputDimension, n = s.trainingSamples, m = s.width
        let c = scaling.outputScale(width: m)
        let lambdaSquared = c * Double(m), lambda = lambdaSquared.squareRoot()
        // The law is the start's marginal; the start itself (paired mirrors) is given below.
        let law = InitialLaw(aMean: s.initialSecondLayer, wMean: [Double](repeating: 0, count: d), wStd: s.weightStd)
        var experiment = SGDExperiment(model: model, teacher: teacher, initialization: law, particles: m,
                                       horizon: s.horizon / lambdaSquared, seed: s.seed,
                                       sgd: SGDSettings(eta: s.eta / lambdaSquared, kind: .multipass(samples: n)),
                                       recordEvery: s.recordEvery / lambdaSquared)
        experiment.initialParticles = initial.map { lambda * $0 }
        let runner = try SGDRunner(experiment: experiment)
        let trajectory = runner.run { p in
            let t = Double(p.step) * s.eta
            progress(p.fractionDone, "t=\(String(format: "%.2f", t)) test risk=\(String(format: "%.4g", p.risk ?? .nan))")
        }
        let training = runner.trainingSet() ?? (inputs: [], labels: [])
        var times = [Double](), test = [Double](), train = [Double]()
        for record in trajectory.records {
            guard let p = record.particles else { continue }
            times.append(CSVFormat.cleanTime(Double(record.step) * s.eta))
            test.append(record.risk)
            train.append(trainingRisk(particles: p, inputs: training.inputs, labels: training.labels, dimension: d))
        }
        var divergedAt: Double? = nil
        if case .diverged(let step, _) = trajectory.status { divergedAt = Double(step) * s.eta }
        let final = trajectory.finalParticles.map { $0 / lambda }
        var moved = 0.0, size = 0.0
        for i in 0 ..< final.count {
            let delta = final[i] - initial[i]
            moved += delta * delta
            size += initial[i] * initial[i]
        }
        return Curve(scaling: scaling, outputScale: c, times: times, testRisk: test, trainRisk: train, finalParticles: final,
                     relativeMovement: (moved / size).squareRoot(), divergedAt: divergedAt)
    }

    /// `(1/2n) sum_i (y_i - f(x_i))^2` for the engine's network `f = (1/M) sum_j a_j relu(<w_j, x>)`
    /// (particles row-major `M x (d + 1)`, inputs row-major `n x d`).
    static func trainingRisk(particles p: [Double], inputs x: [Double], labels y: [Double], dimension d: Int) -> Double {
        let D = d + 1, m = p.count / D, n = y.count
        var total = 0.0
        for i in 0 ..< n {
            var f = 0.0
            for j in 0 ..< m {
                var u = 0.0
                for k in 0 ..< d { u += p[j * D + 1 + k] * x[i * d + k] }
                if u > 0 { f += p[j * D] * u }
            }
            let e = y[i] - f / Double(m)
            total += e * e
        }
        return total / (2 * Double(n))
    }

    /// `cos(w_j, w*)` for every neuron of a particle array (row-major `M x (d + 1)`); 0 for `w_j = 0`.
    public static func alignments(particles: [Double], direction: [Double]) -> [Double] {
        let d = direction.count, D = d + 1
        let norm = direction.reduce(0) { $0 + $1 * $1 }.squareRoot()
        return (0 ..< particles.count / D).map { j in
            var dot = 0.0, q = 0.0
            for k in 0 ..< d {
                let v = particles[j * D + 1 + k]
                dot += v * direction[k]
                q += v * v
            }
            return q > 0 ? dot / (q.squareRoot() * norm) : 0
        }
    }

    /// `summary.json` of a scaling comparison.
    public struct Summary: RunSummary {
        public let example = "single-neuron"
        public var settings: SettingsSummary
        public var bestAffineRisk: Double
        public var zeroPredictorRisk: Double
        public var meanField: CurveSummary
        public var lazy: CurveSummary
        public var finalRiskRatioLazyOverMeanField: Double
        public var seconds: Double

        /// The settings, with the teacher and the learning rates they give.
        public struct SettingsSummary: RunSummary {
            public var inputDimension: Int
            public var trainingSamples: Int
            public var width: Int
            public var lazyMultiplier: Double
            public var eta: Double
            public var horizon: Double
            public var steps: Int
            public var recordEvery: Double
            public var seed: Int
            public var labelNoise: Double
            public var initialSecondLayer: Double
            public var initialWeightStd: Double
            public let teacher = "relu(<e_1, x>), x ~ N(0, I_d)"
            /// `eta * M`.
            public var learningRateMeanField: Double
            /// `eta / multiplier^2`.
            public var learningRateLazy: Double
        }

        /// One scaling's run.
        public struct CurveSummary: RunSummary {
            public var scaling: String
            public var outputScale: Double
            @NullIfAbsent public var testRiskInitial: Double?
            @NullIfAbsent public var testRiskFinal: Double?
            @NullIfAbsent public var testRiskMin: Double?
            @NullIfAbsent public var trainRiskFinal: Double?
            public var relativeParameterMovement: Double
            /// The mean `|cos(w_j, w*)|` at the end.
            public var meanAbsAlignmentFinal: Double
            /// The time the run diverged, if it did.
            @NullIfAbsent public var divergedAt: Double?
        }
    }

    /// The summary of a comparison (settings, final risks, references, movements).
    public static func summary(_ r: Result) -> Summary {
        let s = r.settings
        func curve(_ c: Curve) -> Summary.CurveSummary {
            Summary.CurveSummary(
                scaling: c.scaling.name, outputScale: c.outputScale, testRiskInitial: c.testRisk.first, testRiskFinal: c.testRisk.last,
                testRiskMin: c.testRisk.min(), trainRiskFinal: c.trainRisk.last, relativeParameterMovement: c.relativeMovement,
                meanAbsAlignmentFinal: meanAbs(alignments(particles: c.finalParticles, direction: r.teacherDirection)),
                divergedAt: c.divergedAt)
        }
        return Summary(
            settings: Summary.SettingsSummary(
                inputDimension: s.inputDimension, trainingSamples: s.trainingSamples, width: s.width, lazyMultiplier: s.lazyMultiplier,
                eta: s.eta, horizon: s.horizon, steps: s.steps, recordEvery: s.recordEvery, seed: Int(truncatingIfNeeded: s.seed),
                labelNoise: s.labelNoise, initialSecondLayer: s.initialSecondLayer, initialWeightStd: s.weightStd,
                learningRateMeanField: s.eta * Double(s.width), learningRateLazy: s.eta / (s.lazyMultiplier * s.lazyMultiplier)),
            bestAffineRisk: r.bestAffineRisk,
            zeroPredictorRisk: r.zeroPredictorRisk,
            meanField: curve(r.meanField),
            lazy: curve(r.lazy),
            finalRiskRatioLazyOverMeanField: r.finalRiskRatio,
            seconds: r.seconds)
    }

    static func meanAbs(_ v: [Double]) -> Double { v.isEmpty ? .nan : v.reduce(0) { $0 + abs($1) } / Double(v.count) }

    /// Writes `test_risk.csv`, `summary.json`, `test_risk.svg`, `train_risk.svg` and
    /// `alignment.svg` (histogram of `cos(w_j, w*)` at the end, both networks).
    public static func write(_ r: Result, to directory: OutputDirectory) throws {
        // The two runs record at the same times unless one diverged; the table stops at the shorter.
        let rows = min(r.meanField.times.count, r.lazy.times.count)
        let header = ["t", "test_risk_mean_field", "test_risk_lazy", "train_risk_mean_field", "train_risk_lazy", "best_affine_risk"]
        let body = (0 ..< rows).map { k in
            [r.meanField.times[k], r.meanField.testRisk[k], r.lazy.testRisk[k], r.meanField.trainRisk[k], r.lazy.trainRisk[k], r.bestAffineRisk]
        }
        try directory.writeCSV("test_risk.csv", header: header, rows: body)
        try directory.writeSummary(summary(r))
        let s = r.settings
        let setting = "d = \(s.inputDimension), n = \(s.trainingSamples), M = \(s.width)"
        let t = Array(r.meanField.times.prefix(rows))
        let reference = ChartSeries(name: "best affine fit", x: [t.first ?? 0, t.last ?? 1], y: [r.bestAffineRisk, r.bestAffineRisk], dashed: true)
        try LineChart(title: "Test risk, single ReLU teacher (\(setting))", xLabel: "t", yLabel: "test risk R (exact)",
                      yScale: .logarithmic, series: [
                        ChartSeries(name: r.meanField.scaling.name, x: t, y: Array(r.meanField.testRisk.prefix(rows))),
                        ChartSeries(name: r.lazy.scaling.name, x: t, y: Array(r.lazy.testRisk.prefix(rows))),
                        reference,
                      ]).write(to: directory.file("test_risk.svg"))
        try LineChart(title: "Training risk (\(setting))", xLabel: "t", yLabel: "training risk", yScale: .logarithmic, series: [
            ChartSeries(name: r.meanField.scaling.name, x: t, y: Array(r.meanField.trainRisk.prefix(rows))),
            ChartSeries(name: r.lazy.scaling.name, x: t, y: Array(r.lazy.trainRisk.prefix(rows))),
        ]).write(to: directory.file("train_risk.svg"))
        try HistogramChart(title: "cos(w_j, w*) at t = \(String(format: "%.4g", t.last ?? 0)) (\(setting))", xLabel: "cos(w_j, w*)",
                           samples: [("mean field", alignments(particles: r.meanField.finalParticles, direction: r.teacherDirection)),
                                     ("lazy", alignments(particles: r.lazy.finalParticles, direction: r.teacherDirection)),
                                     ("initial", alignments(particles: r.initialParticles, direction: r.teacherDirection))],
                           binCount: 40).write(to: directory.file("alignment.svg"))
    }
}
