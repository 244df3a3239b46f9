// Fokker-Planck / Ornstein-Uhlenbeck in D = 1: the grid and particle JKO schemes against the exact
// Gaussian solution (Docs/Theory.md 5.4, oracle 1), and their first-order convergence in tau.
//
//     swift run -c release example-fokker-planck [--out DIR] [--particles M] [--tau TAU] ...
//
// The energy F(rho) = (lambda/2) int x^2 d rho + (1/beta) int rho log rho has the Wasserstein
// gradient flow d rho/dt = d/dx(lambda x rho) + (1/beta) d^2 rho/dx^2; from N(m0, s0^2) the law stays
// N(m(t), S(t)) with m(t) = exp(-lambda t) m0, S(t) = exp(-2 lambda t) s0^2 + (1 - exp(-2 lambda t))/(lambda beta).
import ArgumentParser
import Experiments
import Foundation
import GradientFlows
import Wasserstein

@main
struct FokkerPlanckExample: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "example-fokker-planck",
        abstract: "Grid and particle JKO for the Ornstein-Uhlenbeck flow against the exact Gaussian solution.",
        discussion: """
        Writes DIR/error_vs_time.csv, DIR/error_vs_tau.csv, DIR/density.csv, DIR/summary.json and the \
        pictures error_vs_time.svg, error_vs_tau.svg, density.svg, particles_final.svg.
        """
    )

    @Option(help: "Output folder (created if needed).")
    var out = "example-output/fokker-planck"

    @Option(help: "Stiffness lambda of the quadratic potential.")
    var lambda = 1.0

    @Option(help: "Inverse temperature beta.")
    var beta = 2.0

    @Option(name: .customLong("initial-mean"), help: "Mean m0 of the initial normal law.")
    var initialMean = 2.0

    @Option(name: .customLong("initial-std"), help: "Standard deviation s0 of the initial normal law.")
    var initialStd = 0.3

    @Option(help: "JKO step of the main run.")
    var tau = 0.05

    @Option(help: "Final time of the main run.")
    var horizon = 2.0

    @Option(help: "Grid points on [-5, 6].")
    var points = 441

    @Option(help: "Particles of the particle scheme.")
    var particles = 400

    @Option(name: .customLong("taus"), help: "Comma-separated steps of the tau study (errors at t = 1).")
    var taus = "0.2,0.1,0.05,0.025,0.0125"

    @Option(help: "Seed of the particle sample.")
    var seed: UInt64 = 1

    func run() throws {
        let clock = ContinuousClock()
        let start = clock.now
        try OutputDirectory.writing(to: out) { directory in
            let oracle = try OrnsteinUhlenbeckOracle(lambda: lambda, beta: beta)
            let energy = try FreeEnergy.ornsteinUhlenbeck(dimension: 1, lambda: lambda, beta: beta)
            let grid = try RegularGrid(dimension: 1, lower: -5, upper: 6, pointsPerAxis: points)
            let law = try NormalLaw(mean: [initialMean], standardDeviation: [initialStd])
            let startDensity = try law.discretized(on: grid)
            let startParticles = try law.sample(count: particles, seed: seed)
            let tauList = try SweepRun.parseList(taus, option: "--taus")
            let steps = max(1, Int((horizon / tau).rounded()))
            let progress = ProgressReporter(label: "fokker-planck")

            func exact(_ t: Double) -> (mean: Double, std: Double) {
                (oracle.mean(at: t, initial: initialMean), oracle.standardDeviation(at: t, initial: initialStd))
            }

            // Main runs, every state kept.
            var gridStates = [GridDensity]()
            let gridRun = try JKORunner(energy: energy, settings: JKORunSettings(tau: tau, steps: steps, scheme: .grid(grid, GridJKOOptions()), oracle: oracle))
                .run(from: .density(startDensity)) { report, state in
                    if case .density(let g) = state { gridStates.append(g) }
                    progress.update(fraction: 0.1 * Double(report.step) / Double(steps), detail: "grid step \(report.step)/\(steps)")
                }
            var particleStates = [[Double]]()
            let particleRun = try JKORunner(energy: energy, settings: JKORunSettings(tau: tau, steps: steps, scheme: .particle(ParticleJKOOptions(transport: .exact)), oracle: oracle))
                .run(from: .particles(startParticles)) { report, state in
                    if case .particles(let p) = state { particleStates.append(p.coordinates) }
                    progress.update(fraction: 0.1 + 0.4 * Double(report.step) / Double(steps), detail: "particles step \(report.step)/\(steps)")
                }

            // Errors against the exact flow from N(m0, s0^2), along the run.
            var rows = [[Double]]()
            var recursion = (mean: initialMean, standardDeviation: initialStd)
            for k in 0 ... steps {
                let t = Double(k) * tau
                if k > 0 { recursion = oracle.jkoStep(mean: recursion.mean, standardDeviation: recursion.standardDeviation, tau: tau) }
                let e = exact(t)
                let g = gridRun.reports[k], p = particleRun.reports[k]
                let gridStd = g.variance[0].squareRoot(), particleStd = p.variance[0].squareRoot()
                rows.append([
                    CSVFormat.cleanTime(t),
                    gaussianW2Diagonal(mean1: g.mean, standardDeviation1: [gridStd], mean2: [e.mean], standardDeviation2: [e.std]),
                    gaussianW2Diagonal(mean1: p.mean, standardDeviation1: [particleStd], mean2: [e.mean], standardDeviation2: [e.std]),
                    gaussianW2Diagonal(mean1: [recursion.mean], standardDeviation1: [recursion.standardDeviation], mean2: [e.mean], standardDeviation2: [e.std]),
                    p.gaussianW2ToExactFlow ?? .nan,
                    try w2ToNormal(points: grid.axes[0], masses: gridStates[k].masses, mean: e.mean, std: e.std),
                    try w2ToNormal(points: particleStates[k], masses: nil, mean: e.mean, std: e.std),
                    g.mean[0], gridStd, p.mean[0], particleStd, e.mean, e.std, g.freeEnergy, p.freeEnergy,
                    oracle.freeEnergy(mean: [e.mean], standardDeviation: [e.std]),
                ])
            }
            try directory.writeCSV("error_vs_time.csv", header: [
                "t", "w2_moments_grid", "w2_moments_particles", "w2_moments_jko_recursion", "w2_moments_particles_own_start", "w2_grid", "w2_particles",
                "mean_grid", "std_grid", "mean_particles", "std_particles", "mean_exact", "std_exact",
                "free_energy_grid", "free_energy_particles", "free_energy_exact",
            ], rows: rows)
            let times = rows.map { $0[0] }
            let column = { (c: Int) in rows.map { $0[c] } }
            try LineChart(title: "Error against the exact OU flow (tau = \(tau), M = \(particles), \(points) grid points)",
                          xLabel: "t", yLabel: "W2 to the exact law", series: [
                            ChartSeries(name: "grid (moments)", x: times, y: column(1)),
                            ChartSeries(name: "particles (moments)", x: times, y: column(4)),
                            ChartSeries(name: "exact JKO steps", x: times, y: column(3), dashed: true),
                            ChartSeries(name: "grid (full W2)", x: times, y: column(5), dashed: true),
                            ChartSeries(name: "particles (full W2)", x: times, y: column(6), dashed: true),
                          ]).write(to: directory.file("error_vs_time.svg"))

            // The density on the grid against the exact Gaussian density at a few times.
            let picks = [0.0, 0.25, 0.5, 1.0, horizon].filter { $0 <= horizon }.reduce(into: [Double]()) { if !$0.contains($1) { $0.append($1) } }
            var densityHeader = ["x"]
            var densityColumns = [grid.axes[0]]
            var densitySeries = [ChartSeries]()
            for (n, t) in picks.enumerated() {
                let k = min(steps, Int((t / tau).rounded()))
                let e = exact(Double(k) * tau)
                let label = String(format: "%.2f", Double(k) * tau)
                let values = gridStates[k].densityValues
                let exactValues = grid.axes[0].map { x in exp(-0.5 * (x - e.mean) * (x - e.mean) / (e.std * e.std)) / (e.std * (2 * Double.pi).squareRoot()) }
                densityHeader += ["grid_t\(label)", "exact_t\(label)"]
                densityColumns += [values, exactValues]
                let color = ChartSeries.paletteColor(n)
                densitySeries.append(ChartSeries(name: "t = \(label)", x: grid.axes[0], y: values, color: color))
                densitySeries.append(ChartSeries(name: "exact t = \(label)", x: grid.axes[0], y: exactValues, dashed: true, color: color, inLegend: false))
            }
            try directory.writeCSV("density.csv", header: densityHeader,
                                   rows: (0 ..< grid.count).map { i in densityColumns.map { $0[i] } })
            // Only the part of the axis that carries mass is drawn.
            let window = { (s: ChartSeries) -> ChartSeries in
                var c = s
                let keep = zip(s.x, s.y).filter { $0.0 >= -3.5 && $0.0 <= 6 }
                c.x = keep.map(\.0)
                c.y = keep.map(\.1)
                return c
            }
            try LineChart(title: "Density: grid JKO (solid) and exact OU law (dashed), tau = \(tau)", xLabel: "x", yLabel: "density",
                          series: densitySeries.map(window)).write(to: directory.file("density.svg"))
            try HistogramChart(title: "Particles at t = \(String(format: "%.2f", Double(steps) * tau)) against a sample of the exact law",
                               xLabel: "x", samples: [("particle JKO", particleStates[steps]),
                                                      ("exact law (fresh sample)", try NormalLaw(mean: [exact(Double(steps) * tau).mean], standardDeviation: [exact(Double(steps) * tau).std]).sample(count: 20_000, seed: seed &+ 1).coordinates)],
                               binCount: 30).write(to: directory.file("particles_final.svg"))

            // The error at t = 1 against tau: first order.
            var tauRows = [[Double]]()
            for (n, h) in tauList.enumerated() {
                let k = max(1, Int((1 / h).rounded()))
                let e = exact(Double(k) * h)
                let g = try JKORunner(energy: energy, settings: JKORunSettings(tau: h, steps: k, scheme: .grid(grid, GridJKOOptions())))
                    .run(from: .density(startDensity)).reports.last!
                let p = try JKORunner(energy: energy, settings: JKORunSettings(tau: h, steps: k, scheme: .particle(ParticleJKOOptions(transport: .exact)), oracle: oracle))
                    .run(from: .particles(startParticles)) { report, _ in
                        progress.update(fraction: 0.5 + 0.5 * (Double(n) + Double(report.step) / Double(k)) / Double(tauList.count),
                                        detail: "tau = \(h) step \(report.step)/\(k)")
                    }.reports.last!
                var r = (mean: initialMean, standardDeviation: initialStd)
                for _ in 0 ..< k { r = oracle.jkoStep(mean: r.mean, standardDeviation: r.standardDeviation, tau: h) }
                tauRows.append([
                    h,
                    gaussianW2Diagonal(mean1: g.mean, standardDeviation1: [g.variance[0].squareRoot()], mean2: [e.mean], standardDeviation2: [e.std]),
                    gaussianW2Diagonal(mean1: p.mean, standardDeviation1: [p.variance[0].squareRoot()], mean2: [e.mean], standardDeviation2: [e.std]),
                    p.gaussianW2ToExactFlow ?? .nan,
                    gaussianW2Diagonal(mean1: [r.mean], standardDeviation1: [r.standardDeviation], mean2: [e.mean], standardDeviation2: [e.std]),
                ])
            }
            progress.finish()
            try directory.writeCSV("error_vs_tau.csv", header: ["tau", "w2_moments_grid", "w2_moments_particles",
                                                                "w2_moments_particles_own_start", "w2_moments_jko_recursion"], rows: tauRows)
            let tauAxis = tauRows.map { $0[0] }
            let slopes = (1 ... 4).map { c in SweepRun.logLogSlope(x: tauAxis, y: tauRows.map { $0[c] }) }
            func slopeText(_ s: Double?) -> String { s.map { String(format: "slope %.2f", $0) } ?? "no slope" }
            try LineChart(title: "Error at t = 1 against tau (log-log; first order = slope 1)", xLabel: "tau", yLabel: "W2 (moments) to the exact law",
                          xScale: .logarithmic, yScale: .logarithmic, series: [
                            ChartSeries(name: "grid, \(slopeText(slopes[0]))", x: tauAxis, y: tauRows.map { $0[1] }, markers: true),
                            ChartSeries(name: "particles, \(slopeText(slopes[2]))", x: tauAxis, y: tauRows.map { $0[3] }, markers: true),
                            ChartSeries(name: "exact JKO steps, \(slopeText(slopes[3]))", x: tauAxis, y: tauRows.map { $0[4] }, dashed: true),
                          ]).write(to: directory.file("error_vs_tau.svg"))

            let seconds = (clock.now - start).timeInSeconds
            let last = rows.last!
            try directory.writeJSON("summary.json", .object([
                ("example", .string("fokker-planck")),
                ("settings", .object([
                    ("lambda", .number(lambda)), ("beta", .number(beta)), ("initial_mean", .number(initialMean)),
                    ("initial_std", .number(initialStd)), ("tau", .number(tau)), ("horizon", .number(Double(steps) * tau)),
                    ("grid_points", .integer(points)), ("grid_bounds", .numbers([-5, 6])), ("particles", .integer(particles)),
                    ("seed", .integer(Int(truncatingIfNeeded: seed))), ("grid_blur", .finite(gridRun.gridBlur?.gamma)),
                ])),
                ("final", .object([
                    ("w2_moments_grid", .finite(last[1])), ("w2_moments_particles", .finite(last[2])),
                    ("w2_moments_particles_own_start", .finite(last[4])),
                    ("w2_moments_jko_recursion", .finite(last[3])), ("w2_grid", .finite(last[5])), ("w2_particles", .finite(last[6])),
                ])),
                ("max_over_t", .object([
                    ("w2_moments_grid", .finite(column(1).max())), ("w2_moments_particles", .finite(column(2).max())),
                    ("w2_moments_jko_recursion", .finite(column(3).max())), ("w2_moments_particles_own_start", .finite(column(4).max())),
                ])),
                ("tau_study", .object([
                    ("time", .number(1)),
                    ("taus", .numbers(tauAxis)),
                    ("w2_moments_grid", .numbers(tauRows.map { $0[1] })),
                    ("w2_moments_particles", .numbers(tauRows.map { $0[2] })),
                    ("w2_moments_particles_own_start", .numbers(tauRows.map { $0[3] })),
                    ("w2_moments_jko_recursion", .numbers(tauRows.map { $0[4] })),
                    ("slope_grid", .finite(slopes[0])), ("slope_particles", .finite(slopes[1])),
                    ("slope_particles_own_start", .finite(slopes[2])), ("slope_jko_recursion", .finite(slopes[3])),
                ])),
                ("all_steps_converged", .bool(gridRun.allConverged && particleRun.allConverged)),
                ("seconds", .number(seconds)),
            ]))

            print("fokker-planck: OU flow, lambda = \(lambda), beta = \(beta), from N(\(initialMean), \(initialStd)^2), tau = \(tau), T = \(Double(steps) * tau)")
            print(String(format: "  W2 to the exact law at T (moments): grid %.2e, particles (M = %d) %.2e, exact JKO recursion %.2e", last[1], particles, last[4], last[3]))
            print(String(format: "  full W2 at T: grid %.2e (lattice floor), particles %.2e (sampling floor)", last[5], last[6]))
            print("  error at t = 1 against tau (moments):")
            for r in tauRows { print(String(format: "    tau = %-7g grid %.3e   particles %.3e   exact recursion %.3e", r[0], r[1], r[3], r[4])) }
            print("  log-log slopes: grid \(slopeText(slopes[0])), particles \(slopeText(slopes[2])), exact recursion \(slopeText(slopes[3]))")
            print(String(format: "  %.1f s -> %@", seconds, directory.path))
        }
    }
}

/// The exact `W2` between a weighted point set on the line (`masses = nil`: equal weights) and
/// `N(mean, std^2)`: with the quantile functions, `W2^2 = sum_i int_{z_{i-1}}^{z_i} (x_i - mean - std z)^2 phi(z) dz`,
/// `z_i = Phi^{-1}(cumulative mass up to x_i)` for the sorted points, each integral in closed form.
func w2ToNormal(points: [Double], masses: [Double]?, mean: Double, std: Double) throws -> Double {
    let order = points.indices.sorted { points[$0] < points[$1] }
    let total = masses.map { $0.reduce(0, +) } ?? Double(points.count)
    func Phi(_ z: Double) -> Double { 0.5 * erfc(-z / 2.0.squareRoot()) }
    func phi(_ z: Double) -> Double { z.isInfinite ? 0 : exp(-0.5 * z * z) / (2 * Double.pi).squareRoot() }
    // Antiderivatives against phi of 1, z and z^2 (z phi -> 0 at the infinities).
    func m0(_ z: Double) -> Double { z == -.infinity ? 0 : (z == .infinity ? 1 : Phi(z)) }
    func m1(_ z: Double) -> Double { -phi(z) }
    func m2(_ z: Double) -> Double { z.isInfinite ? m0(z) : Phi(z) - z * phi(z) }
    var cumulative = 0.0
    var lower = -Double.infinity
    var sum = 0.0
    for (n, i) in order.enumerated() {
        let w = (masses?[i] ?? 1) / total
        cumulative += w
        let upper = n == order.count - 1 ? Double.infinity : normalQuantile(min(cumulative, 1))
        let a = points[i] - mean
        sum += a * a * (m0(upper) - m0(lower)) - 2 * a * std * (m1(upper) - m1(lower)) + std * std * (m2(upper) - m2(lower))
        lower = upper
    }
    return max(0, sum).squareRoot()
}

/// `Phi^{-1}(p)`: bisection to a bracket, then Newton steps on `Phi(z) - p` (accurate to ~1e-14 in
/// the body, returning -inf / +inf at 0 / 1).
func normalQuantile(_ p: Double) -> Double {
    if p <= 0 { return -.infinity }
    if p >= 1 { return .infinity }
    func Phi(_ z: Double) -> Double { 0.5 * erfc(-z / 2.0.squareRoot()) }
    var lo = -40.0, hi = 40.0
    for _ in 0 ..< 60 {
        let mid = 0.5 * (lo + hi)
        if Phi(mid) < p { lo = mid } else { hi = mid }
        if hi - lo < 1e-3 { break }
    }
    var z = 0.5 * (lo + hi)
    for _ in 0 ..< 8 {
        let density = exp(-0.5 * z * z) / (2 * Double.pi).squareRoot()
        guard density > 1e-300 else { break }
        let next = z - (Phi(z) - p) / density
        guard next.isFinite, next > lo - 1e-3, next < hi + 1e-3 else { break }
        if abs(next - z) < 1e-15 * max(1, abs(z)) { z = next; break }
        z = next
    }
    return z
}
