import Foundation
import GradientFlows
import MeanField
import Wasserstein

/// The grid scheme of a reduced spec: the JKO scheme of `R + (lambda/2) E|z|^2` (population
/// dynamics) or of the full free energy `F_{lambda,beta}` (noisy dynamics) on an `(s, r)` grid
/// (fixed second layer) or an `(a, s, r)` grid (trained), with the reduced energy
/// ``ReducedGridEnergy`` (radial potential `-((n - 1)/beta) log r`, Docs/Theory.md 7.3). The
/// transport cost is the Euclidean cost in `z`, which for symmetric laws is the full `W2`
/// (Theory.md 7.4), so this is a JKO scheme of the full `d`-dimensional flow.
///
/// The `r` axis has its nodes at cell centres of `[low, high]` (``ReducedGridEnergy/grid(secondLayer:a:s:r:)``),
/// so `r = 0`, where the radial potential is infinite, is a wall and not a node. With noise and
/// `grid.track_stationary`, the Gibbs point `rho_bar* ~ r^(n-1) exp(-beta Psi_lambda)` is computed
/// first and `W2(rho_t, rho*)` reported.
enum ReducedGridRun {
    static func run(spec: ReducedSpec, directory: OutputDirectory?,
                    progress: (@Sendable (Double, String) -> Void)?) throws -> ReducedRun.Output {
        // The whole command's time: building the (s, r) plane matrix can outlast the steps.
        let clock = ContinuousClock()
        let start = clock.now
        guard let g = spec.grid else { throw ExperimentError.invalidSpec(key: "grid", reason: "missing (the grid scheme needs tau, bounds and points_per_axis)") }
        let setting = try spec.reducedSetting()
        guard setting.inputDimension != .infinity else {
            throw ExperimentError.invalidSpec(key: "scheme", reason: "the grid scheme needs a finite model.input_dimension (at d = infinity r is a point mass, which has no density: use particles)")
        }
        let kernels = try spec.reducedKernels()
        let n = g.pointsPerAxis
        let b = g.bounds
        let grid: RegularGrid
        if spec.secondLayer == .trained {
            grid = try ReducedGridEnergy.grid(secondLayer: .trained, a: (b[0][0], b[0][1], n[0]), s: (b[1][0], b[1][1], n[1]),
                                              r: (b[2][0], b[2][1], n[2]))
        } else {
            grid = try ReducedGridEnergy.grid(secondLayer: .fixed, s: (b[0][0], b[0][1], n[0]), r: (b[1][0], b[1][1], n[1]))
        }
        let beta = spec.dynamics == .noisy ? spec.beta : nil
        let energy = try ReducedGridEnergy.freeEnergy(kernels: kernels, grid: grid, weightDecay: spec.lambda, inverseTemperature: beta)
        let reduced = energy.smooth as! ReducedGridEnergy
        let initial = try ReducedGridEnergy.initialDensity(spec.reducedInitialLaw, setting: setting, grid: grid)
        let steps = max(1, Int(clampingCount: (spec.horizon / g.tau).rounded(), limit: 1_000_000_000))
        let track = beta != nil && g.trackStationary
        let settings = JKORunSettings(tau: g.tau, steps: steps, scheme: .grid(grid, GridJKOOptions(epsilon: g.epsilon)),
                                      trackStationaryDistance: track, stationaryDistanceEvery: max(1, steps / 10))
        let runner = try ExperimentError.namingBlur(key: "grid.epsilon") { try JKORunner(energy: energy, settings: settings) }
        let risks = RiskLog()
        let result = try runner.run(from: .density(initial)) { report, state in
            if case .density(let rho) = state { risks.append(reduced.risk(of: rho)) }
            progress?(Double(report.step) / Double(steps), "t=\(String(format: "%.3f", report.time)) F=\(String(format: "%.5g", report.freeEnergy))")
        }
        let seconds = (clock.now - start).timeInSeconds
        let riskValues = risks.values
        let records = result.reports.enumerated().map { k, r -> ReducedRun.Record in
            let second = zip(r.mean, r.variance).reduce(0) { $0 + $1.0 * $1.0 + $1.1 }
            let risk = riskValues[k]
            return ReducedRun.Record(time: r.time, step: r.step, risk: risk, penalizedRisk: risk + 0.5 * spec.lambda * second,
                                     freeEnergy: beta != nil ? r.freeEnergy : nil)
        }
        let last = result.reports.last!
        var summary = ReducedRun.Summary(scheme: "grid", spec: spec, kernels: kernels, steps: steps, status: .completed, seconds: seconds)
        summary.gridPoints = grid.pointsPerAxis
        summary.tau = g.tau
        summary.riskInitial = records.first?.risk
        summary.riskFinal = records.last?.risk
        summary.penalizedRiskFinal = records.last?.penalizedRisk
        summary.freeEnergyFinal = beta != nil ? last.freeEnergy : nil
        summary.freeEnergyNote = beta != nil
            ? "F of the full d-dimensional law: reduced energy, exact grid entropy, and -(1/beta) log|S^(n-1)|" : "no entropy (population flow)"
        summary.entropyConstant = reduced.entropyConstant
        summary.allStepsConverged = result.allConverged
        (summary.gridBlur, summary.stationary) = JKORun.gridSummary(result) { reduced.risk(of: $0.density) }
        let output = ReducedRun.Output(records: records, status: .completed, thresholdTime: nil, finalLaw: nil, seconds: seconds,
                                       summary: summary)
        if let directory {
            try ReducedRun.write(output, spec: spec, directory: directory)
            if track {
                // The distance to rho* beside the trajectory (every tenth of the run).
                let rows = result.reports.compactMap { r in r.distanceToStationary.map { [CSVFormat.cleanTime(r.time), $0] } }
                try directory.writeCSV("w2_to_stationary.csv", header: ["t", "w2_to_stationary"], rows: rows)
            }
            if case .density(let rho) = result.final {
                try JKORun.writeDensity(rho, name: "density_final.npy", directory: directory)
                try directory.writeSummary(JKORun.gridDescription(grid), name: "grid.json")
            }
            if let st = result.stationary { try JKORun.writeDensity(st.density, name: "density_stationary.npy", directory: directory) }
        }
        return output
    }

    /// The risks the progress callback collects, one per state.
    final class RiskLog: @unchecked Sendable {
        private let lock = NSLock()
        private(set) var values = [Double]()
        func append(_ v: Double) {
            lock.lock()
            values.append(v)
            lock.unlock()
        }
    }
}
