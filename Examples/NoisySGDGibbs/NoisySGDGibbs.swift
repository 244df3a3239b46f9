// Noisy SGD against the grid JKO scheme of F_{lambda,beta} in D = 2, and both against the Gibbs
// fixed point rho* = exp(-beta Psi_lambda(.; rho*)) / Z.
//
//     swift run -c release example-noisy-sgd-gibbs [--out DIR] [--spec FILE] [--particles M]
//
// The experiment is Examples/NoisySGDGibbs/spec.json: a ReLU network with a fixed second layer in
// d = 2 (a particle is w in R^2), teacher relu(<e_1, x>), weight decay lambda and temperature 1/beta.
// Its parts also run alone: `wasserstein sgd SPEC --out DIR` (noisy SGD), `wasserstein jko SPEC
// --out DIR` (the grid scheme, with the distance to rho*).
import ArgumentParser
import Experiments
import Foundation
import GradientFlows
import MeanField
import Wasserstein

@main
struct NoisySGDGibbsExample: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "example-noisy-sgd-gibbs",
        abstract: "Noisy SGD against the grid JKO of F_{lambda,beta} (D = 2) and the Gibbs fixed point rho*.",
        discussion: """
        Writes DIR/comparison.csv (risk, free energy and W2 distances at common times), DIR/densities.csv \
        (grid JKO, SGD histogram and rho* on the grid), DIR/summary.json, DIR/spec.json and the pictures \
        risk.svg, free_energy.svg, w2.svg and the heat maps density_*.svg.
        """
    )

    /// The bundled spec, next to this file in the source tree.
    static let bundledSpec = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("spec.json").path

    @Option(help: "Output folder (created if needed).")
    var out = "example-output/noisy-sgd-gibbs"

    @Option(help: "The experiment spec (default: the bundled Examples/NoisySGDGibbs/spec.json).")
    var spec: String?

    @Option(help: "Override the spec's number of SGD particles M.")
    var particles: Int?

    @Option(help: "Override the spec's seed.")
    var seed: UInt64?

    @Option(name: .customLong("distance-every"), help: "Time between the exact W2 computations of the SGD particles.")
    var distanceEvery = 1.0

    func run() throws {
        let clock = ContinuousClock()
        let start = clock.now
        let path = spec ?? Self.bundledSpec
        guard FileManager.default.fileExists(atPath: path) else {
            throw ValidationError("no spec at \(path) (the bundled spec is read from the source tree; pass --spec FILE)")
        }
        var experiment = try ExperimentSpec.load(path: path)
        if let particles {
            guard particles >= 2 else { throw ValidationError("--particles must be >= 2, got \(particles)") }
            experiment.particles = particles
        }
        if let seed { experiment.seed = seed }
        guard experiment.parameterDimension == 2, experiment.energy.beta != nil, experiment.sgd?.noise == true,
              experiment.jko?.bounds != nil else {
            throw ValidationError("this example needs D = 2, a finite beta, sgd.noise = true and a grid (jko.bounds, jko.points_per_axis)")
        }
        try OutputDirectory.writing(to: out, protecting: [path]) { directory in
            var text = try String(contentsOfFile: path, encoding: .utf8)
            if particles != nil || seed != nil {
                text = text.replacingOccurrences(of: #""particles": *[0-9]+"#, with: "\"particles\": \(experiment.particles)", options: .regularExpression)
                text = text.replacingOccurrences(of: #""seed": *[0-9]+"#, with: "\"seed\": \(experiment.seed)", options: .regularExpression)
            }
            try text.write(toFile: directory.file("spec.json"), atomically: true, encoding: .utf8)
            let progress = ProgressReporter(label: "noisy-sgd-gibbs")

            // The energy F_{lambda,beta}, tabulated on the grid (same values as MeanFieldEnergy, see
            // TabulatedMeanFieldEnergy), the Gibbs fixed point and the grid JKO run.
            let lambda = experiment.energy.lambda, beta = experiment.energy.beta!
            let risk = try experiment.populationRisk()
            let grid = try JKORun.grid(spec: experiment)
            let gridPoints = grid.points
            let tableStart = clock.now
            let smooth = try TabulatedMeanFieldEnergy(energy: MeanFieldEnergy(risk: risk, weightDecay: lambda), points: gridPoints)
            let tableSeconds = (clock.now - tableStart).timeInSeconds
            let energy = try FreeEnergy(smooth: smooth, inverseTemperature: beta)
            let tau = experiment.jko!.tau
            let steps = max(1, Int((experiment.horizon / tau).rounded()))
            let recordStride = max(1, Int((experiment.recordEvery / tau).rounded()))
            let settings = JKORunSettings(tau: tau, steps: steps, scheme: .grid(grid, GridJKOOptions(epsilon: experiment.jko!.epsilon)),
                                          trackStationaryDistance: true, stationaryDistanceEvery: recordStride)
            var gridStates = [Int: GridDensity]()
            let jkoStart = clock.now
            let gridRun = try JKORunner(energy: energy, settings: settings)
                .run(from: .density(JKORun.initialDensity(spec: experiment, grid: grid))) { report, state in
                    if report.step % recordStride == 0 || report.step == steps, case .density(let g) = state { gridStates[report.step] = g }
                    progress.update(fraction: 0.4 * Double(report.step) / Double(steps), detail: "grid JKO step \(report.step)/\(steps)")
                }
            let jkoSeconds = (clock.now - jkoStart).timeInSeconds
            let gibbs = gridRun.stationary!
            let gibbsRisk = risk.risk(points: gridPoints, weights: gibbs.density.masses)

            // Noisy SGD from the spec, recorded at the JKO record times.
            var sgdSpec = experiment
            sgdSpec.recordEvery = Double(recordStride) * tau
            let sgd = try SGDRun.run(spec: sgdSpec, directory: nil, recordParticles: true) { f, text in
                progress.update(fraction: 0.4 + 0.3 * f, detail: "noisy SGD " + text)
            }
            if case .diverged(_, let t) = sgd.trajectory.status {
                throw ValidationError("noisy SGD diverged at t = \(t); lower sgd.eta")
            }

            // Exact W2 (network simplex) between the SGD particles and the grid measures (rho* and the
            // grid JKO state at the same time), restricted to the cells that carry mass; and its floor,
            // the W2 between an i.i.d. sample of rho* of the same size (cell centre plus a uniform
            // offset within the cell) and rho* itself. The grid state's distance to rho* is the
            // runner's (debiased Sinkhorn divergence at a small blur, smooth densities).
            let exact = NetworkSimplexWorkspace()
            let gibbsCloud = try support(of: gibbs.density)
            var floors = [Double]()
            var g = Xoshiro256StarStar(seed: experiment.seed &+ 17)
            for _ in 0 ..< 3 {
                let sample = try PointCloud(coordinates: sampleContinuous(gibbs.density, count: experiment.particles, using: &g), dimension: 2)
                floors.append(try exact.solve(TransportProblem(source: sample, target: gibbsCloud)).w2)
            }
            let floor = floors.reduce(0, +) / Double(floors.count)
            let distanceStride = max(1, Int((distanceEvery / (Double(recordStride) * tau)).rounded()))
            var rows = [[Double]]()
            let records = sgd.trajectory.records
            for (n, record) in records.enumerated() {
                let k = Int((record.time / tau).rounded())
                guard k <= steps, let state = gridStates[k], let particles = record.particles else { continue }
                let report = gridRun.reports[k]
                var toGibbs = Double.nan, toGrid = Double.nan
                if n % distanceStride == 0 || n == records.count - 1 {
                    let cloud = try PointCloud(coordinates: particles, dimension: 2)
                    toGibbs = try exact.solve(TransportProblem(source: cloud, target: gibbsCloud)).w2
                    toGrid = try exact.solve(TransportProblem(source: cloud, target: support(of: state))).w2
                }
                rows.append([
                    CSVFormat.cleanTime(record.time),
                    JKORun.risk(of: report, lambda: lambda), record.risk,
                    report.freeEnergy, record.freeEnergy ?? .nan,
                    report.distanceToStationary ?? .nan, toGibbs, toGrid,
                ])
                progress.update(fraction: 0.7 + 0.3 * Double(n + 1) / Double(records.count), detail: "distances t=\(String(format: "%.2f", record.time))")
            }
            progress.finish()
            try directory.writeCSV("comparison.csv", header: ["t", "risk_grid", "risk_sgd", "free_energy_grid", "free_energy_sgd",
                                                              "w2_grid_to_gibbs", "w2_sgd_to_gibbs", "w2_sgd_to_grid"], rows: rows)

            // Pictures: curves.
            let t = rows.map { $0[0] }
            let column = { (c: Int) in rows.map { $0[c] } }
            let ends = [t.first ?? 0, t.last ?? 1]
            let setting = "lambda = \(lambda), beta = \(beta), M = \(experiment.particles)"
            try LineChart(title: "Risk (\(setting))", xLabel: "t", yLabel: "risk R", series: [
                ChartSeries(name: "grid JKO", x: t, y: column(1)),
                ChartSeries(name: "noisy SGD", x: t, y: column(2), dashed: true),
                ChartSeries(name: "R(rho*)", x: ends, y: [gibbsRisk, gibbsRisk], dashed: true),
            ]).write(to: directory.file("risk.svg"))
            try LineChart(title: "Free energy (\(setting))", xLabel: "t", yLabel: "F", series: [
                ChartSeries(name: "grid JKO (exact entropy)", x: t, y: column(3)),
                ChartSeries(name: "noisy SGD (kernel entropy)", x: t, y: column(4), dashed: true),
                ChartSeries(name: "F(rho*)", x: ends, y: [gibbs.freeEnergy, gibbs.freeEnergy], dashed: true),
            ]).write(to: directory.file("free_energy.svg"))
            try LineChart(title: "W2 distances (\(setting))", xLabel: "t", yLabel: "W2", yScale: .logarithmic, series: [
                ChartSeries(name: "grid JKO to rho*", x: t, y: column(5)),
                ChartSeries(name: "SGD to rho*", x: t, y: column(6), markers: true),
                ChartSeries(name: "SGD to grid JKO", x: t, y: column(7), markers: true),
                ChartSeries(name: "floor: sample of rho*", x: ends, y: [floor, floor], dashed: true),
            ]).write(to: directory.file("w2.svg"))

            // Pictures: densities on one colour scale.
            let finalGrid = gridStates[steps]!
            let finalHistogram = try binned(sgd.trajectory.finalParticles, on: grid)
            let initialGrid = gridStates[0]!
            let maps = [("density_gibbs.svg", "Gibbs fixed point rho*", gibbs.density),
                        ("density_grid_final.svg", "Grid JKO at t = \(String(format: "%.2f", Double(steps) * tau))", finalGrid),
                        ("density_sgd_final.svg", "Noisy SGD at t = \(String(format: "%.2f", sgd.trajectory.records.last!.time)), \(experiment.particles) particles (histogram)", finalHistogram),
                        ("density_initial.svg", "Initial law on the grid", initialGrid)]
            let top = maps.prefix(3).map { $0.2.densityValues.max()! }.max()!
            let direction = experiment.teacherDirection ?? [1, 0]
            for (file, title, density) in maps {
                try HeatmapChart(title: title, xLabel: "w_1", yLabel: "w_2", xCenters: grid.axes[0], yCenters: grid.axes[1],
                                 values: density.densityValues, valueRange: file == "density_initial.svg" ? nil : (0, top),
                                 markers: [(direction[0], direction[1], "w*")]).write(to: directory.file(file))
            }
            let gridValues: [Double] = finalGrid.densityValues
            let sgdValues: [Double] = finalHistogram.densityValues
            let gibbsValues: [Double] = gibbs.density.densityValues
            var densityRows = [[Double]]()
            for i in 0 ..< grid.count {
                let row: [Double] = [gridPoints[2 * i], gridPoints[2 * i + 1], gridValues[i], sgdValues[i], gibbsValues[i]]
                densityRows.append(row)
            }
            try directory.writeCSV("densities.csv", header: ["w_1", "w_2", "grid_final", "sgd_final_histogram", "gibbs"], rows: densityRows)

            let last = rows.last!
            let seconds = (clock.now - start).timeInSeconds
            try directory.writeJSON("summary.json", .object([
                ("example", .string("noisy-sgd-gibbs")),
                ("settings", .object([
                    ("lambda", .number(lambda)), ("beta", .number(beta)), ("particles", .integer(experiment.particles)),
                    ("eta", .number(experiment.sgd!.eta)), ("tau", .number(tau)), ("horizon", .number(Double(steps) * tau)),
                    ("grid_points_per_axis", .integer(grid.pointsPerAxis[0])),
                    ("grid_bounds", .array(zip(grid.lowerBounds, grid.upperBounds).map { .numbers([$0.0, $0.1]) })),
                    ("grid_blur", .finite(gridRun.gridBlur?.gamma)), ("seed", .integer(Int(truncatingIfNeeded: experiment.seed))),
                    ("w2_method", .string("SGD: exact W2 (network simplex) between the particles and the grid cells with mass > 1e-12; grid to rho*: square root of the debiased Sinkhorn divergence at blur \(gridRun.gridBlur.map { String($0.gamma) } ?? "default")")),
                ])),
                ("gibbs", .object([
                    ("iterations", .integer(gibbs.iterations)), ("converged", .bool(gibbs.converged)), ("residual", .finite(gibbs.residual)),
                    ("free_energy", .finite(gibbs.freeEnergy)), ("risk", .finite(gibbsRisk)),
                    ("mean", .numbers(gibbs.density.mean)), ("variance", .numbers(gibbs.density.variance)),
                ])),
                ("final", .object([
                    ("risk_grid", .finite(last[1])), ("risk_sgd", .finite(last[2])),
                    ("free_energy_grid", .finite(last[3])), ("free_energy_sgd", .finite(last[4])),
                    ("w2_grid_to_gibbs", .finite(last[5])), ("w2_sgd_to_gibbs", .finite(last[6])), ("w2_sgd_to_grid", .finite(last[7])),
                ])),
                ("w2_floor_sample_of_gibbs", .finite(floor)),
                ("max_risk_gap", .finite(rows.map { abs($0[1] - $0[2]) }.max())),
                ("grid_all_steps_converged", .bool(gridRun.allConverged)),
                ("grid_free_energy_nonincreasing", .bool(zip(gridRun.reports, gridRun.reports.dropFirst()).allSatisfy { $1.freeEnergy <= $0.freeEnergy + 1e-12 })),
                ("seconds", .object([("table", .number(tableSeconds)), ("grid_jko_and_gibbs", .number(jkoSeconds)),
                                     ("sgd", .number(sgd.seconds)), ("total", .number(seconds))])),
            ]))

            print("noisy-sgd-gibbs: D = 2, \(setting), eta = \(experiment.sgd!.eta), tau = \(tau), T = \(Double(steps) * tau), grid \(grid.pointsPerAxis[0])^2")
            print(String(format: "  Gibbs fixed point: %d iterations, F(rho*) = %.5f, R(rho*) = %.5f, mean (%.3f, %.3f)",
                         gibbs.iterations, gibbs.freeEnergy, gibbsRisk, gibbs.density.mean[0], gibbs.density.mean[1]))
            print(String(format: "  at T: risk grid %.5f / SGD %.5f, free energy grid %.5f / SGD %.5f (kernel entropy estimate)", last[1], last[2], last[3], last[4]))
            print(String(format: "  W2 at T: grid -> rho* %.4f, SGD -> rho* %.4f, SGD -> grid %.4f (floor of a %d-sample of rho*: %.4f)",
                         last[5], last[6], last[7], experiment.particles, floor))
            print(String(format: "  %.1f s (table %.1f s, grid JKO + Gibbs %.1f s, SGD %.1f s) -> %@", seconds, tableSeconds, jkoSeconds, sgd.seconds, directory.path))
        }
    }
}

/// The empirical measure of particles (row-major `M x 2`), each moved to its nearest grid point
/// (particles outside the bounds go to the nearest boundary point).
func binned(_ particles: [Double], on grid: RegularGrid) throws -> GridDensity {
    let n0 = grid.pointsPerAxis[0], n1 = grid.pointsPerAxis[1]
    let h = grid.spacing
    var masses = [Double](repeating: 0, count: grid.count)
    for j in 0 ..< particles.count / 2 {
        let i0 = min(n0 - 1, max(0, Int(((particles[2 * j] - grid.lowerBounds[0]) / h[0]).rounded())))
        let i1 = min(n1 - 1, max(0, Int(((particles[2 * j + 1] - grid.lowerBounds[1]) / h[1]).rounded())))
        masses[i0 * n1 + i1] += 1
    }
    return try GridDensity(grid: grid, masses: masses)
}

/// The grid measure as a weighted point cloud on the cells with mass above `1e-12` (what is cut
/// off is below `1e-12 N` in total), for the exact solver.
func support(of density: GridDensity) throws -> PointCloud {
    let points = density.grid.points
    var coordinates = [Double](), weights = [Double]()
    for (i, m) in density.masses.enumerated() where m > 1e-12 {
        coordinates += [points[2 * i], points[2 * i + 1]]
        weights.append(m)
    }
    return try PointCloud(coordinates: coordinates, dimension: 2, weights: weights)
}

/// `count` independent draws from the piecewise-constant density of the grid measure: a cell by
/// its mass, then a uniform point in the cell (row-major `count x 2`).
func sampleContinuous(_ density: GridDensity, count: Int, using g: inout Xoshiro256StarStar) -> [Double] {
    var cumulative = [Double]()
    cumulative.reserveCapacity(density.masses.count)
    var s = 0.0
    for m in density.masses { s += m; cumulative.append(s) }
    let points = density.grid.points, h = density.grid.spacing
    var out = [Double](repeating: 0, count: 2 * count)
    for j in 0 ..< count {
        let u = g.nextUniform() * s
        var lo = 0, hi = cumulative.count - 1
        while lo < hi {
            let mid = (lo + hi) / 2
            if cumulative[mid] < u { lo = mid + 1 } else { hi = mid }
        }
        out[2 * j] = points[2 * lo] + (g.nextUniform() - 0.5) * h[0]
        out[2 * j + 1] = points[2 * lo + 1] + (g.nextUniform() - 0.5) * h[1]
    }
    return out
}
