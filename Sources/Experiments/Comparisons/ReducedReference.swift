import Foundation
import GradientFlows
import MeanField
import Wasserstein

/// The mean-field flow without sampling error, as the reference of `compare --reference reduced`:
/// the reduced flow of the spec's symmetric setting from a deterministic quantisation of the
/// initial law, integrated in time by the classical fourth-order Runge-Kutta method.
///
/// **Why Runge-Kutta.** The explicit Euler step of `ReducedPopulationFlow` (MeanField) is, step for step,
/// the full population flow at the same `eta`, with its `O(eta)` time error. A reference for a
/// sweep over `eta` must not carry that error, and Euler would need steps far below the swept ones:
/// RK4's error is `O(h^4)` (the tests check the order by halving `h`), so the default `h = 0.05`
/// is exact to plotting accuracy and the reference costs a few hundred evaluations of `grad_z Psi`.
/// The noiseless flow only: the noisy flow has no deterministic reference in particles.
///
/// Near `r = 0` a stage may carry a radius through zero; like the Euler step, the state takes
/// `|r|` (the full particle crossing the axis is the reflected particle of the same symmetric law).
public struct ReducedReferenceFlow: Sendable {
    public let kernels: ReducedKernels
    /// Weight decay `lambda`: the velocity is `-(grad_z Psi + lambda z)`.
    public let lambda: Double
    /// The Runge-Kutta step.
    public let step: Double

    /// - Throws: ``ExperimentError/invalidSetting(name:reason:)`` naming the Runge-Kutta step when
    ///   it is not positive and finite (the command line checks its `--reference-eta` before).
    public init(kernels: ReducedKernels, lambda: Double, step: Double) throws {
        guard step.isFinite, step > 0 else {
            throw ExperimentError.invalidSetting(name: "Runge-Kutta step", reason: "must be > 0 and finite, got \(step)")
        }
        self.kernels = kernels
        self.lambda = lambda
        self.step = step
    }

    /// One record of the reference.
    public struct Record: Sendable {
        public var time: Double
        public var risk: Double
        /// `R + (lambda/2) E|z|^2`, the penalized risk (what SGD's `penalized_risk` is).
        public var penalizedRisk: Double
        public var law: ReducedLaw
    }

    /// The law and its risk at `t = k interval`, `k = 0 ... count - 1`; each interval is split
    /// into `ceil(interval / step)` equal Runge-Kutta steps.
    public func run(from law: ReducedLaw, interval: Double, count: Int,
                    progress: ((Double) -> Void)? = nil) throws -> [Record] {
        precondition(interval > 0 && count >= 1)
        let substeps = max(1, Int(clampingCount: (interval / step - 1e-9).rounded(.up), limit: 1 << 40))
        let h = interval / Double(substeps)
        var current = law
        var records = [try record(current, time: 0)]
        for k in 1 ..< max(1, count) {
            for _ in 0 ..< substeps { current = try rungeKutta(current, h: h) }
            records.append(try record(current, time: Double(k) * interval))
            progress?(Double(k) / Double(count - 1))
        }
        return records
    }

    func record(_ law: ReducedLaw, time: Double) throws -> Record {
        let risk = try kernels.risk(law)
        let second = law.expectation { z in z.reduce(0) { $0 + $1 * $1 } }
        return Record(time: time, risk: risk, penalizedRisk: risk + 0.5 * lambda * second, law: law)
    }

    /// `-(grad_z Psi(z_i; law) + lambda z_i)` for every point.
    func velocity(_ law: ReducedLaw) throws -> [Double] {
        let g = try kernels.firstVariation(at: law.points, law: law, gradient: true).gradient!
        var v = g
        for i in 0 ..< v.count { v[i] = -(g[i] + lambda * law.points[i]) }
        return v
    }

    /// The law whose points are `law.points + c v`, radii reflected to `|r|`.
    func shifted(_ law: ReducedLaw, by v: [Double], times c: Double) throws -> ReducedLaw {
        let Dz = law.coordinateCount
        var p = law.points
        for i in 0 ..< p.count { p[i] += c * v[i] }
        for j in 0 ..< law.count { p[j * Dz + Dz - 1] = abs(p[j * Dz + Dz - 1]) }
        return try ReducedLaw(points: p, weights: law.weights, coordinateCount: Dz)
    }

    func rungeKutta(_ law: ReducedLaw, h: Double) throws -> ReducedLaw {
        let k1 = try velocity(law)
        let k2 = try velocity(shifted(law, by: k1, times: h / 2))
        let k3 = try velocity(shifted(law, by: k2, times: h / 2))
        let k4 = try velocity(shifted(law, by: k3, times: h))
        var v = k1
        for i in 0 ..< v.count { v[i] = (k1[i] + 2 * k2[i] + 2 * k3[i] + k4[i]) / 6 }
        return try shifted(law, by: v, times: h)
    }
}

/// The symmetry reduction of a full experiment spec: whether `compare --reference reduced`
/// applies, and the reduced setting, kernels and initial law when it does.
public struct ReducedReference: Sendable {
    public let setting: ReducedSetting
    public let kernels: ReducedKernels
    public let initialLaw: ReducedInitialLaw
    /// The orthonormal basis of the teacher's span in `R^d` (maps SGD particles to `z`).
    public let basis: [[Double]]

    /// Checks that the spec's setting is rotation-symmetric (Gaussian inputs; a teacher of
    /// neurons, or linear, spanning `k = 1` or `2` directions; `w.mean = 0`, so that the initial
    /// law of `w` is `N(0, std^2 I)`) and builds its reduction.
    ///
    /// - Throws: ``ExperimentError/invalidSpec(key:reason:)`` naming the key that breaks the
    ///   symmetry.
    public init(spec: ExperimentSpec, sphereNodes: Int? = nil) throws {
        let why = "--reference reduced needs a setting invariant under the rotations that fix the teacher's span"
        guard let model = spec.model else {
            throw ExperimentError.invalidSpec(key: "model", reason: "\(why): this spec has no model")
        }
        guard model.inputs == .gaussian else {
            throw ExperimentError.invalidSpec(key: "model.inputs", reason: "\(why): Gaussian inputs, got \(model.inputs.rawValue) (use the JKO reference)")
        }
        if let bad = spec.initialization.w.mean.firstIndex(where: { $0 != 0 }) {
            throw ExperimentError.invalidSpec(key: "initialization.w.mean",
                                              reason: "\(why): w.mean = 0 (entry \(bad) is \(spec.initialization.w.mean[bad]); a non-zero mean picks a direction)")
        }
        let d = model.inputDimension
        let teacher: ReducedTeacher
        do {
            teacher = try ReducedTeacher(teacher: spec.teacherModel(), inputDimension: d)
        } catch let e as MeanFieldError {
            throw ExperimentError.invalidSpec(key: "teacher.directions", reason: "\(why): \(SpecKeys.message(for: e))")
        }
        setting = try ReducedSetting(activation: Activation(specName: model.activation),
                                     secondLayer: model.secondLayer == .trained ? .trained : .fixed,
                                     inputDimension: .finite(d), teacher: teacher)
        kernels = try ReducedKernels(setting: setting, sphereNodes: sphereNodes)
        initialLaw = try ReducedInitialLaw(aMean: spec.initialization.a?.mean ?? 1, aStd: spec.initialization.a?.std ?? 0,
                                           gamma: spec.initialization.w.std * Double(d).squareRoot())
        basis = teacher.basis!
    }

    /// The deterministic quantisation of the initial law (no sampling error).
    public func quantisedInitialLaw(nodes: ReducedNodesSpec = ReducedNodesSpec()) throws -> ReducedLaw {
        try initialLaw.quantised(setting: setting, nodes: nodes)
    }

    /// The default Runge-Kutta step. On the ReLU spec of Docs/CrossCheck.md (`d = 20`, horizon 2)
    /// halving it moves the final risk by `1e-9`, against `3e-4` for an Euler step of the same size.
    public static let defaultStep = 0.05

    /// The reference step: `requested` or ``defaultStep``, never more than `interval`.
    public static func step(requested: Double?, interval: Double) -> Double {
        min(requested ?? defaultStep, interval)
    }

    /// The reference risks at `t = k interval`, `k = 0 ... count - 1` (noiseless flow only).
    ///
    /// - Throws: ``ExperimentError`` naming `sgd.noise` for a noisy spec.
    public func risks(spec: ExperimentSpec, interval: Double, count: Int, step: Double, nodes: ReducedNodesSpec = ReducedNodesSpec(),
                      progress: ((Double) -> Void)? = nil) throws -> [ReducedReferenceFlow.Record] {
        if spec.sgd?.noise == true || spec.energy.beta != nil {
            throw ExperimentError.invalidSpec(key: "energy.beta",
                                              reason: "--reference reduced integrates the noiseless flow; a finite beta (noisy dynamics) has no deterministic particle reference")
        }
        let flow = try ReducedReferenceFlow(kernels: kernels, lambda: spec.energy.lambda, step: step)
        return try flow.run(from: quantisedInitialLaw(nodes: nodes), interval: interval, count: count, progress: progress)
    }
}
