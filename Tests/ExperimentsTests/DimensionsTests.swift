import Foundation
import MeanField
import Testing
@testable import Experiments

/// `dimensions` and the reduced reference on the linear network, whose reduced flow has a closed
/// form: with `s(u) = u`, a fixed second layer and the teacher `<e_1, x>`, `V = -s`,
/// `U = s s' + r r' t` and `E_t[t] = 0`, so `ds/dt = 1 - m` with `m = E[s]`, `dr/dt = 0`, and
/// `R = (1 - m)^2 / 2`. From `m_0 = 0` (the symmetric initial law) the flow gives
/// `R(t) = e^{-2t} / 2` and its Euler steps `R_k = (1 - eta)^{2k} / 2`, in every `d`.
@Suite("dimensions and the reduced reference")
struct DimensionsTests {
    static let linear = """
    {
      "model": {"activation": "linear", "second_layer": "fixed"},
      "teacher": {"directions": [[1]]},
      "initialization": {"w": {"gamma": 0.8}},
      "eta": 0.1, "horizon": 3, "record_every": 0.5,
      "nodes": {"s": 4, "r": 3}, "kernels": {"sphere_nodes": 4},
      "sgd": {"eta0": 0.1, "particles": 8, "seed": 3, "record_every": 0.05}
    }
    """

    func spec() throws -> ReducedSpec { try ReducedSpec.parse(data: Data(Self.linear.utf8), requireDimension: false) }

    /// The crossing of the Euler risks `(1 - eta)^{2k} / 2`, linear in `t` between steps: computed
    /// here from the formula, independently of the flow.
    func eulerCrossing(eta: Double, threshold e: Double) -> Double {
        var k = 0
        func risk(_ k: Int) -> Double { 0.5 * pow(1 - eta, 2 * Double(k)) }
        while risk(k + 1) > e { k += 1 }
        let r0 = risk(k), r1 = risk(k + 1)
        return (Double(k) + (r0 - e) / (r0 - r1)) * eta
    }

    @Test("The threshold time of the linear network's reduced flow is the Euler crossing, in every d")
    func linearCrossing() throws {
        let e = 0.05
        let out = try DimensionsRun.run(spec: spec(), dimensions: [.finite(3), .finite(40), .infinity], riskThreshold: e, sgd: false,
                                        directory: nil)
        let expected = eulerCrossing(eta: 0.1, threshold: e)
        // And near the flow's own crossing log(1/(2e))/2 = 1.151 (Euler's O(eta) lag: 1.15 vs 1.2).
        #expect(abs(expected - 0.5 * log(1 / (2 * e))) < 0.1)
        for r in out.rows {
            #expect(r.reducedStatus == .reached)
            #expect(abs(r.reducedTime - expected) < 1e-9, "d = \(r.dimension): \(r.reducedTime) against \(expected)")
            #expect(r.reducedFinalRisk <= e)
        }
    }

    @Test("A threshold below the horizon's risk is reported as not reached, with an infinite time")
    func notReached() throws {
        // R(3) = (0.9)^60 / 2 = 9e-4 > 1e-4.
        let out = try DimensionsRun.run(spec: spec(), dimensions: [.finite(5)], riskThreshold: 1e-4, sgd: false, directory: nil)
        #expect(out.rows[0].reducedStatus == .notReached)
        #expect(out.rows[0].reducedTime == .infinity)
        #expect(abs(out.rows[0].reducedFinalRisk - 0.5 * pow(0.9, 60)) < 1e-12)
    }

    @Test("Online SGD in full d with eta = eta0 / d reaches the threshold near the flow's time")
    func onlineSGD() throws {
        let e = 0.05
        let out = try DimensionsRun.run(spec: spec(), dimensions: [.finite(4), .finite(16), .infinity], riskThreshold: e, sgd: true,
                                        directory: nil)
        let flowTime = 0.5 * log(1 / (2 * e))
        for r in out.rows {
            guard let d = r.dimension.value else {
                #expect(r.sgdStatus == .notApplicable && r.sgdSteps == nil)
                continue
            }
            #expect(r.sgdEta == 0.1 / Double(d))
            #expect(r.sgdStatus == .reached)
            let steps = try #require(r.sgdSteps), t = try #require(r.sgdTime)
            #expect(steps == steps.rounded() && abs(t - steps * 0.1 / Double(d)) < 1e-12)
            // The mean of a linear network follows m' = w* - m plus noise whose Ito term slows the
            // decay of E|w* - m|^2 from rate 2 to 2 - eta0 (5% here): within 25%.
            #expect(abs(t - flowTime) < 0.25 * flowTime, "d = \(d): t_sgd = \(t)")
        }
    }

    @Test("sgd.max_dimension skips SGD above it")
    func sgdMaxDimension() throws {
        var s = try spec()
        s.sgd!.maxDimension = 8
        let out = try DimensionsRun.run(spec: s, dimensions: [.finite(4), .finite(16)], riskThreshold: 0.05, sgd: true, directory: nil)
        #expect(out.rows[0].sgdStatus == .reached)
        #expect(out.rows[1].sgdStatus == .notApplicable && out.rows[1].sgdSteps == nil)
        #expect(out.rows[1].reducedStatus == .reached)
    }

    @Test("firstCrossing interpolates linearly and reports nil when the curve stays above")
    func firstCrossing() {
        #expect(DimensionsRun.firstCrossing(steps: [0, 10, 20], risks: [1, 0.6, 0.2], threshold: 0.4) == 15)
        #expect(DimensionsRun.firstCrossing(steps: [0, 10], risks: [0.3, 0.1], threshold: 0.4) == 0)
        #expect(DimensionsRun.firstCrossing(steps: [0, 10], risks: [1, 0.5], threshold: 0.4) == nil)
    }

    @Test("--dimensions lists parse and bad ones are refused", arguments: ["10,abc", "1,5", "", "10,10", "5,-3"])
    func badDimensionLists(_ text: String) {
        #expect(throws: ExperimentError.self) { _ = try DimensionsRun.parseDimensions(text) }
    }

    @Test("--dimensions accepts infinity and inf")
    func dimensionList() throws {
        #expect(try DimensionsRun.parseDimensions("10, 20,infinity") == [.finite(10), .finite(20), .infinity])
        #expect(try DimensionsRun.parseDimensions("inf") == [.infinity])
    }

    @Test("The RK4 reference follows R(t) = exp(-2t)/2 of the linear network with fourth-order error")
    func referenceOrder() throws {
        let s = try spec().at(dimension: .finite(6))
        let setting = try s.reducedSetting()
        let law = try s.initialReducedLaw(setting: setting)
        func error(step: Double) throws -> Double {
            let flow = try ReducedReferenceFlow(kernels: s.reducedKernels(), lambda: 0, step: step)
            let records = try flow.run(from: law, interval: 0.4, count: 6)
            return records.map { abs($0.risk - 0.5 * exp(-2 * $0.time)) }.max()!
        }
        let coarse = try error(step: 0.4), fine = try error(step: 0.2)
        #expect(coarse < 1e-4)
        // Halving h divides an O(h^4) error by 16.
        #expect(coarse / fine > 12 && coarse / fine < 20, "\(coarse) / \(fine)")
    }

    static let full = """
    {
      "model": {"activation": "linear", "input_dimension": 5, "second_layer": "fixed", "inputs": "gaussian"},
      "teacher": {"kind": "neurons", "directions": [[0, 0.6, 0.8, 0, 0]]},
      "initialization": {"w": {"mean": 0, "std": 0.4}},
      "energy": {"lambda": 0},
      "particles": 16, "horizon": 1, "seed": 2,
      "sgd": {"eta": 0.05, "kind": "population"},
      "record_every": 0.25
    }
    """

    /// `|w* - m_0|^2`, `m_0` the mean of the initial particles of the spec's SGD (unit `w*`), and
    /// the overlap `<m_0, w*>`.
    func initialError(_ spec: ExperimentSpec) throws -> (squared: Double, overlap: Double) {
        let p = try SGDRunner(experiment: spec.sgdExperiment()).initialParticles()
        let d = 5, m = p.count / d
        let star = spec.teacherDirection!
        var mean = [Double](repeating: 0, count: d)
        for j in 0 ..< m { for c in 0 ..< d { mean[c] += p[j * d + c] / Double(m) } }
        let overlap = zip(mean, star).reduce(0) { $0 + $1.0 * $1.1 }
        return (zip(mean, star).reduce(0) { $0 + ($1.0 - $1.1) * ($1.0 - $1.1) }, overlap)
    }

    @Test("compare --reference reduced: the reference and the common start follow their closed forms")
    func compareReduced() throws {
        let spec = try ExperimentSpec.parse(data: Data(Self.full.utf8))
        let out = try CompareReducedRun.run(spec: spec, directory: nil, referenceStep: 0.05, nodes: ReducedNodesSpec(a: 1, s: 4, r: 3))
        #expect(out.rows.map(\.time) == [0, 0.25, 0.5, 0.75, 1])
        let start = try initialError(spec)
        for (k, r) in out.rows.enumerated() {
            // The quantised law has E[s] = 0: R(t) = exp(-2t)/2 (the teacher is not e_1: the basis maps it).
            #expect(abs(r.riskReduced - 0.5 * exp(-2 * r.time)) < 1e-7)
            // The common start has E[s] = <m_0, w*> and no orthogonal mean (symmetrised away).
            #expect(abs(r.riskCommonStart - 0.5 * (1 - start.overlap) * (1 - start.overlap) * exp(-2 * r.time)) < 1e-7)
            // Population SGD of a linear network: w* - m shrinks by (1 - eta) per step (5 steps per record).
            #expect(abs(r.riskSGD - 0.5 * start.squared * pow(0.95, 10 * Double(k))) < 1e-12)
        }
        #expect(out.rows[0].w2Reduced < 1e-12)
        #expect(abs(out.maxRiskGap - out.rows.map(\.riskGap).max()!) == 0)
    }

    @Test("compare --reference reduced refuses settings that are not rotation-symmetric", arguments: [
        ("\"inputs\": \"gaussian\"", "\"inputs\": \"sphere\"", "model.inputs"),
        ("\"mean\": 0, \"std\": 0.4", "\"mean\": 0.1, \"std\": 0.4", "initialization.w.mean"),
        ("\"directions\": [[0, 0.6, 0.8, 0, 0]]", "\"directions\": [[1, 0, 0, 0, 0], [0, 1, 0, 0, 0], [0, 0, 1, 0, 0]]",
         "teacher.directions"),
        ("\"lambda\": 0", "\"lambda\": 0, \"beta\": 10", "energy.beta"),
    ])
    func refusesAsymmetric(old: String, new: String, key: String) throws {
        precondition(Self.full.contains(old))
        let spec = try ExperimentSpec.parse(data: Data(Self.full.replacingOccurrences(of: old, with: new).utf8))
        do {
            _ = try CompareReducedRun.run(spec: spec, directory: nil)
            Issue.record("accepted a spec with \(key) breaking the symmetry")
        } catch ExperimentError.invalidSpec(let k, _) {
            #expect(k == key)
        }
    }

    @Test("The sweep with the reduced reference: every cell's gap is the closed-form gap")
    func sweepReduced() throws {
        let spec = try ExperimentSpec.parse(data: Data(Self.full.utf8))
        let out = try SweepRun.run(spec: spec, particles: [4, 16], etas: [0.05], seeds: 1,
                                   reference: .reduced(step: 0.05, nodes: ReducedNodesSpec(a: 1, s: 4, r: 3)), directory: nil)
        #expect(out.cells.count == 2)
        for c in out.cells {
            var run = spec
            run.particles = c.particles
            let e0 = try initialError(run).squared
            var expected = 0.0
            for k in 0 ... 4 {
                let sgd = 0.5 * e0 * pow(0.95, 10 * Double(k))
                let flow = 0.5 * exp(-0.5 * Double(k))
                expected = max(expected, abs(sgd - flow))
            }
            #expect(abs(c.mean - expected) < 1e-7, "M = \(c.particles): \(c.mean) against \(expected)")
        }
    }

    @Test("The reduced grid scheme's seconds cover the whole run, the (s, r) plane matrix included (issue 17: 0.48 s reported for a 42 s tanh run)")
    func reducedGridSecondsCoverTheRun() throws {
        let text = """
        {"model": {"activation": "erf", "input_dimension": 6, "second_layer": "fixed"}, "teacher": {"directions": [[1]]},
         "initialization": {"w": {"gamma": 1}}, "energy": {"lambda": 0.5, "beta": 12}, "scheme": "grid",
         "grid": {"tau": 0.2, "bounds": [[-1.5, 2], [0, 2.5]], "points_per_axis": [16, 12]}, "horizon": 0.4, "record_every": 0.2,
         "kernels": {"sphere_nodes": 4}}
        """
        let spec = try ReducedSpec.parse(data: Data(text.utf8), requireDimension: true)
        let clock = ContinuousClock(), start = clock.now
        let out = try ReducedRun.run(spec: spec, directory: nil)
        let wall = (clock.now - start).timeInSeconds
        #expect(out.seconds <= wall && out.seconds >= 0.9 * wall, "reported \(out.seconds) s of \(wall) s")
    }
}
