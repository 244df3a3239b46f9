import Foundation
import Testing
@testable import Experiments
import GradientFlows
import Wasserstein

@Suite("Progress lines and durations")
struct ProgressTests {
    @Test("durations read as people read them, and a fast run never reads 0.00 s")
    func durationText() {
        #expect(DurationText.precise(0.0000962) == "96 us")
        #expect(DurationText.precise(0.0000001) == "1 us")
        #expect(DurationText.precise(0.0034) == "3.4 ms")
        #expect(DurationText.precise(0.12) == "0.12 s")
        #expect(DurationText.precise(19.07) == "19.1 s")
        #expect(DurationText.precise(125) == "2 min 05 s")
        #expect(DurationText.precise(3725) == "1 h 02 min")
        #expect(DurationText.coarse(0.04) == "<0.1 s" && DurationText.coarse(4.24) == "4.2 s" && DurationText.coarse(42.4) == "42 s")
        #expect(DurationText.precise(.nan) == "? s")
        // An absurd estimate (a rate near zero) prints, it does not trap converting to Int.
        #expect(DurationText.coarse(1e300).hasSuffix("min"))
        // Over thirteen decades, every positive duration prints a positive number.
        for k in 0 ... 130 {
            let seconds = pow(10, -9 + Double(k) / 10)
            let text = DurationText.precise(seconds)
            let leading = Double(text.prefix { $0.isNumber || $0 == "." }) ?? 0
            #expect(leading > 0, "\(seconds) s printed as \(text)")
        }
    }

    @Test("the time left extrapolates the clock, and is withheld while the rate means nothing")
    func remaining() {
        // A quarter done in 10 s: 30 s to go.
        #expect(ProgressReporter.remaining(fraction: 0.25, elapsed: 10) == 30)
        #expect(ProgressReporter.line(label: "jko", fraction: 0.25, elapsed: 10, detail: "JKO step 3/12")
                == "jko  25% 10 s, about 30 s left  JKO step 3/12")
        #expect(ProgressReporter.remaining(fraction: 0.01, elapsed: 10) == nil)   // under 2%
        #expect(ProgressReporter.remaining(fraction: 0.5, elapsed: 0.2) == nil)   // under half a second
        #expect(ProgressReporter.remaining(fraction: 1, elapsed: 3) == nil)
        #expect(ProgressReporter.line(label: "sgd", fraction: 0.005, elapsed: 0.01, detail: "") == "sgd   0% <0.1 s")
    }

    @Test("the JKO work estimate counts distances to rho* by their own duration")
    func workEstimate() throws {
        let grid = try RegularGrid(dimension: 1, lower: -3, upper: 3, pointsPerAxis: 16)
        let settings = JKORunSettings(tau: 0.1, steps: 10, scheme: .grid(grid, GridJKOOptions()),
                                      trackStationaryDistance: true, stationaryDistanceEvery: 2)
        var w = JKORun.WorkEstimate(settings: settings)
        #expect(w.distanceCount == 6)   // steps 0, 2, 4, 6, 8, 10
        #expect(w.fraction == 0)
        // Pretend one distance took 0.9 s and one step 0.1 s: 1 s spent, 9 steps and 5 distances
        // (5.4 s) to go, so 1/6.4 done, not the 2 work units out of 16 a count would say.
        w.distancesDone = 1; w.distanceSeconds = 0.9
        w.stepsDone = 1; w.stepSeconds = 0.1
        #expect(abs(w.fraction - 1 / 6.4) < 1e-12)
    }

    @Test("a grid run announces the Gibbs measure, each step and each distance to rho*, in order")
    func runnerPhases() throws {
        let energy = try FreeEnergy.ornsteinUhlenbeck(dimension: 1, lambda: 1, beta: 2)
        let grid = try RegularGrid(dimension: 1, lower: -4, upper: 4, pointsPerAxis: 41)
        let settings = JKORunSettings(tau: 0.1, steps: 5, scheme: .grid(grid, GridJKOOptions()),
                                      trackStationaryDistance: true, stationaryDistanceEvery: 2)
        let start = try NormalLaw(mean: [1], standardDeviation: [0.5]).discretized(on: grid)
        var phases = [JKORunPhase]()
        let result = try JKORunner(energy: energy, settings: settings).run(from: .density(start), phase: { phases.append($0) })
        #expect(phases == [.stationaryMeasure, .distanceToStationary(0), .step(1), .step(2), .distanceToStationary(2),
                           .step(3), .step(4), .distanceToStationary(4), .step(5), .distanceToStationary(5)])
        // Distances exactly where they were announced.
        #expect(result.reports.filter { $0.distanceToStationary != nil }.map(\.step) == [0, 2, 4, 5])
    }

    /// On an error that decays exactly geometrically, `e_k = 10 * 2^-k`, the estimate is exact:
    /// `log2(e_k / 1e-9)` iterations left. Before the target stage there is none.
    @Test("the iterative-solve estimate is exact on a geometric error sequence")
    func iterativeEstimate() {
        var estimate = IterativeSolveEstimate()
        func report(_ k: Int, stage: Int) -> EntropicProgress {
            EntropicProgress(iteration: k, marginalError: 10 * pow(2, -Double(k)), targetError: 1e-9, epsilon: 0.01,
                             stage: stage, stageCount: 4, iterationsPerStage: 1, maxIterations: 10_000)
        }
        for k in 1 ... 3 { #expect(estimate.remainingIterations(after: report(k, stage: k - 1)) == nil) }
        #expect(estimate.remainingIterations(after: report(4, stage: 3)) == nil)   // fewer than three points
        #expect(estimate.remainingIterations(after: report(5, stage: 3)) == nil)
        for k in 6 ... 40 {
            let left = estimate.remainingIterations(after: report(k, stage: 3))
            let exact = log2(1e10) - Double(k)
            #expect(left.map { abs($0 - max(0, exact)) <= 1e-9 } == true, "k = \(k): \(String(describing: left)) vs \(exact)")
        }
        // A new solve (iteration counts restart) starts over.
        #expect(estimate.remainingIterations(after: report(1, stage: 3)) == nil)
        // The cap bounds the estimate; a fraction is done / (done + left).
        var capped = IterativeSolveEstimate()
        for k in 1 ... 3 {
            _ = capped.remainingIterations(after: EntropicProgress(iteration: k, marginalError: pow(0.999, Double(k)), targetError: 1e-12,
                                                                 epsilon: 1, stage: 0, stageCount: 1, iterationsPerStage: 1, maxIterations: 100))
        }
        #expect(capped.remainingIterations(after: EntropicProgress(iteration: 4, marginalError: pow(0.999, 4), targetError: 1e-12, epsilon: 1,
                                                                   stage: 0, stageCount: 1, iterationsPerStage: 1, maxIterations: 100)) == 96)
        #expect(capped.fraction(after: EntropicProgress(iteration: 5, marginalError: pow(0.999, 5), targetError: 1e-12, epsilon: 1,
                                                        stage: 0, stageCount: 1, iterationsPerStage: 1, maxIterations: 100)) == 0.05)
    }

    /// The driver reports every iteration of every stage, in order; the last report is the
    /// returned iterate (its error is the output's).
    @Test("the entropic driver reports each iteration, the last one being the result")
    func driverReports() throws {
        final class Log: @unchecked Sendable { var reports: [EntropicProgress] = [] }
        let log = Log()
        let x = try PointCloud(coordinates: (0 ..< 30).map { sin(Double($0)) }, dimension: 1)
        let y = try PointCloud(coordinates: (0 ..< 20).map { 0.5 + cos(Double($0)) }, dimension: 1)
        let parameters = try EntropicParameters(epsilon: 0.01, tolerance: 1e-10)
        let output = try EntropicEngine.solve(TransportProblem(source: x, target: y), parameters: parameters,
                                              geometry: EntropicEngine.online(), progress: { log.reports.append($0) })
        let reports = log.reports
        #expect(output.converged && reports.count == output.iterations)
        #expect(reports.map(\.iteration) == Array(1 ... output.iterations))
        #expect(reports.last?.marginalError == output.marginalError && reports.last?.stage == (reports.last?.stageCount ?? 0) - 1)
        #expect((reports.first?.stageCount ?? 0) > 1 && reports.allSatisfy { $0.targetError == 1e-10 * x.weights.reduce(0, +) })
    }

    /// `--unbalanced`, `--partial` and the multiscale geometry report through the same driver:
    /// every iteration once, in order, the last report being the returned iterate.
    @Test("unbalanced, partial and multiscale solves report each iteration")
    func variantsReport() throws {
        final class Log: @unchecked Sendable { var reports: [EntropicProgress] = [] }
        let x = try PointCloud(coordinates: (0 ..< 60).map { sin(Double($0)) }, dimension: 2)
        let y = try PointCloud(coordinates: (0 ..< 40).map { 0.5 + cos(Double($0)) }, dimension: 2,
                               weights: [Double](repeating: 1.5 / 20, count: 20))
        let parameters = try EntropicParameters(epsilon: 0.01, tolerance: 1e-10)
        func check(_ name: String, _ solve: (@escaping EntropicProgressObserver) throws -> EntropicOutput) throws {
            let log = Log()
            let output = try solve { log.reports.append($0) }
            #expect(output.converged, "\(name)")
            #expect(log.reports.map(\.iteration) == Array(1 ... output.iterations), "\(name)")
            #expect(log.reports.last?.marginalError == output.marginalError, "\(name)")
        }
        try check("unbalanced") {
            try EntropicEngine.unbalanced(source: x, target: y, sourcePenalty: 1, targetPenalty: 2, parameters: parameters,
                                          geometry: EntropicEngine.dense(), progress: $0)
        }
        try check("partial") {
            try EntropicEngine.partial(source: x, target: y, mass: 0.7, parameters: parameters, geometry: EntropicEngine.online(),
                                       progress: $0).extended
        }
        let balanced = try PointCloud(coordinates: y.coordinates, dimension: 2)
        try check("multiscale") {
            let solved = try EntropicEngine.solveMultiscale(TransportProblem(source: x, target: balanced), parameters: parameters,
                                                            progress: $0)
            #expect(!solved.fellBack)
            return solved.output
        }
    }

    /// The dense solver's own loop (stored kernel, cluster shifts, Newton) reports in the driver's
    /// form: increasing iteration counts, the last at most the result's count, the error of the
    /// last report at the tolerance.
    @Test("the dense solver reports its iterations")
    func denseSolverReports() throws {
        final class Log: @unchecked Sendable { var reports: [EntropicProgress] = [] }
        let log = Log()
        let x = try PointCloud(coordinates: (0 ..< 80).map { sin(Double($0)) }, dimension: 2)
        let y = try PointCloud(coordinates: (0 ..< 80).map { 0.5 + cos(Double($0)) }, dimension: 2)
        var solver = try SinkhornSolver(epsilon: 0.001, tolerance: 1e-10)
        solver.progress = { log.reports.append($0) }
        let result = try solver.solve(TransportProblem(source: x, target: y))
        let reports = log.reports
        #expect(result.converged && !reports.isEmpty)
        #expect(zip(reports, reports.dropFirst()).allSatisfy { $0.iteration < $1.iteration })
        #expect((reports.last?.iteration ?? .max) <= result.iterations)
        #expect((reports.last?.marginalError ?? .infinity) <= 1e-10 * x.mass)
        #expect((reports.first?.stageCount ?? 0) > 1 && reports.last?.stage == (reports.last?.stageCount ?? 0) - 1)
        // In the caller's units: the last stage runs at the epsilon asked for, whatever the
        // solver's internal cost scaling (costs near 1e20, above its threshold of 2^64, are scaled
        // down by a power of 2 inside).
        let far = try PointCloud(coordinates: x.coordinates.map { 1e10 * $0 }, dimension: 2)
        let farTarget = try PointCloud(coordinates: y.coordinates.map { 1e10 * $0 }, dimension: 2)
        log.reports = []
        var scaled = try SinkhornSolver(epsilon: 1e19, tolerance: 1e-9)
        scaled.progress = { log.reports.append($0) }
        let farResult = try scaled.solve(TransportProblem(source: far, target: farTarget))
        #expect(farResult.converged && !log.reports.isEmpty && log.reports.last?.epsilon == 1e19)
    }
}
