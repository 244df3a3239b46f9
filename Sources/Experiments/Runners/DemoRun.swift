import Foundation
import GradientFlows
import MeanField
import Wasserstein

/// `wasserstein demo`: a short tour on built-in data. It computes one distance with every method,
/// runs a JKO scheme against its exact solution, and compares JKO with SGD, writing every result
/// and picture under one folder.
public enum DemoRun {
    /// The LP's agreement with the network simplex: below 1e-12 it is rounding, whose digits
    /// change with the machine and the build, so the line says so instead of printing them.
    static func agreement(_ relative: Double) -> String {
        relative < 1e-12 ? "relative difference to exact < 1e-12" : String(format: "relative difference to exact %.1e", relative)
    }

    /// The built-in spec of the JKO-against-SGD part: a ReLU teacher in d = 10.
    public static let compareSpec = """
    {
      "name": "demo: JKO against SGD, ReLU teacher in d = 10",
      "model": {"activation": "relu", "input_dimension": 10, "second_layer": "trained", "inputs": "gaussian"},
      "teacher": {"kind": "neurons", "directions": [[1, 0, 0, 0, 0, 0, 0, 0, 0, 0]], "coefficients": [1], "noise": 0.0},
      "initialization": {"a": {"mean": 0, "std": 0.5}, "w": {"mean": 0, "std": 0.35}},
      "energy": {"lambda": 0.0, "beta": null},
      "particles": 200, "horizon": 2, "seed": 11,
      "sgd": {"eta": 0.005, "kind": "online", "noise": false},
      "jko": {"tau": 0.1, "scheme": "particle", "transport": "exact"},
      "record_every": 0.1
    }
    """

    /// The built-in spec of the JKO part: the Ornstein-Uhlenbeck oracle on a 2-D grid.
    public static let jkoSpec = """
    {
      "name": "demo: Ornstein-Uhlenbeck flow on a grid, against the exact Gaussian solution",
      "energy": {"potential": "quadratic", "lambda": 1, "beta": 4},
      "initialization": {"w": {"mean": [1.2, -0.6], "std": 0.4}},
      "particles": 300, "horizon": 1, "seed": 3,
      "jko": {"tau": 0.05, "scheme": "grid", "bounds": [[-3, 3], [-3, 3]], "points_per_axis": 64}
    }
    """

    /// One line of the distance table.
    public struct DistanceLine: Sendable {
        public var method: String
        public var w2Squared: Double
        public var seconds: Double
        public var note: String
    }

    /// One entry of `distances.json`: a ``DemoRun/DistanceLine`` with its `W2`.
    public struct DistanceRecord: RunSummary {
        public var method: String
        public var w2Squared: Double
        /// `sqrt(max(0, w2Squared))`.
        public var w2: Double
        public var seconds: Double
        public var note: String

        public init(_ line: DistanceLine) {
            method = line.method
            w2Squared = line.w2Squared
            w2 = max(0, line.w2Squared).squareRoot()
            seconds = line.seconds
            note = line.note
        }
    }

    /// Runs the tour; `log` receives one line per finished part.
    ///
    /// - Parameters:
    ///   - directory: where the three parts write their folders (`distances`, `jko`, `compare`).
    ///   - memoryLimit: refuse the tour, before any part runs, when its JKO or comparison run is
    ///     estimated above this many bytes (`nil`: the machine's physical memory).
    ///   - log: receives one line per finished part.
    ///   - progress: called with the fraction done and a short status text.
    public static func run(directory: OutputDirectory, memoryLimit: Double? = nil, log: (String) -> Void,
                           progress: (@Sendable (Double, String) -> Void)? = nil) throws {
        var jSpec = try ExperimentSpec.parse(data: Data(jkoSpec.utf8), file: "demo jko spec")
        var cSpec = try ExperimentSpec.parse(data: Data(compareSpec.utf8), file: "demo compare spec")
        jSpec.memoryLimit = memoryLimit
        cSpec.memoryLimit = memoryLimit
        try jSpec.checkMemory(jSpec.jkoMemory())
        try cSpec.checkMemory(cSpec.compareMemory())

        // 1. Distances between two built-in clouds, by every method.
        let distances = try directory.subdirectory("distances")
        let lines = try distanceTour(directory: distances)
        log("1. W2^2 between the built-in clouds (\(distances.path)):")
        for l in lines {
            let name = MessageText.padded(l.method, to: 24)
            let time = DurationText.precise(l.seconds)
            log("   " + name + String(format: "%12.6f  ", l.w2Squared) + String(repeating: " ", count: max(0, 8 - time.count)) + time + "  " + l.note)
        }

        // 2. A JKO run against its exact solution.
        let jkoDir = try directory.subdirectory("jko")
        try jkoSpec.write(toFile: jkoDir.file("spec.json"), atomically: true, encoding: .utf8)
        let jko = try JKORun.run(spec: jSpec, directory: jkoDir) { f, text in progress?(0.1 + 0.3 * f, "jko " + text) }
        let reports = jko.result.reports
        let errors = reports.compactMap(\.gaussianW2ToExactFlow)
        try LineChart(title: "Grid JKO of the Ornstein-Uhlenbeck flow: error to the exact Gaussian solution",
                      xLabel: "t", yLabel: "W2 (moments) to the exact flow",
                      series: [ChartSeries(name: "tau = \(try jSpec.jkoSection().tau), 64 x 64 grid", x: reports.map(\.time), y: errors, markers: true)])
            .write(to: jkoDir.file("error.svg"))
        try LineChart(title: "Free energy along the grid JKO run", xLabel: "t", yLabel: "F",
                      series: [ChartSeries(name: "F(rho_k)", x: reports.map(\.time), y: reports.map(\.freeEnergy), markers: true)])
            .write(to: jkoDir.file("energy.svg"))
        log(String(format: "2. JKO (grid, Ornstein-Uhlenbeck): %d steps, F %.4f -> %.4f, max W2 to the exact flow %.2e, %@ (%@)",
                   reports.count - 1, reports.first!.freeEnergy, reports.last!.freeEnergy, errors.max() ?? .nan,
                   DurationText.precise(jko.seconds) as NSString, jkoDir.path as NSString))

        // 3. JKO against SGD, with pictures.
        let cmpDir = try directory.subdirectory("compare")
        try compareSpec.write(toFile: cmpDir.file("spec.json"), atomically: true, encoding: .utf8)
        let cmp = try CompareRun.run(spec: cSpec, directory: cmpDir) { f, text in progress?(0.4 + 0.6 * f, text) }
        let last = cmp.rows.last!
        log(String(format: "3. JKO vs SGD (ReLU teacher, d = 10, M = 200): risk %.4f -> JKO %.4f / SGD %.4f, max |risk gap| %.4f (%@)",
                   cmp.rows.first!.riskJKO, last.riskJKO, last.riskSGD, cmp.maxRiskGap, cmpDir.path as NSString))
    }

    /// Two seeded 2-D clouds (300 and 200 points, the second with non-uniform weights) and their
    /// W2 by every method; writes the clouds, the table and the exact plan.
    static func distanceTour(directory: OutputDirectory) throws -> [DistanceLine] {
        var g = Xoshiro256StarStar(seed: 2024)
        let n = 300, m = 200
        var x = [Double](repeating: 0, count: 2 * n), y = [Double](repeating: 0, count: 2 * m)
        for i in 0 ..< n { x[2 * i] = g.nextGaussian(); x[2 * i + 1] = 0.5 * g.nextGaussian() }
        for j in 0 ..< m { y[2 * j] = 1.5 + 0.7 * g.nextGaussian(); y[2 * j + 1] = 1 + 0.7 * g.nextGaussian() }
        let raw = (0 ..< m).map { _ in 0.5 + g.nextUniform() }
        let total = raw.reduce(0, +)
        let mu = try PointCloud(coordinates: x, dimension: 2, name: "x")
        let nu = try PointCloud(coordinates: y, dimension: 2, weights: raw.map { $0 / total }, name: "y")
        let problem = try TransportProblem(source: mu, target: nu)
        try directory.writeMatrix("x.npy", rows: n, columns: 2, values: x)
        try directory.writeMatrix("y.npy", rows: m, columns: 2, values: y)
        try NPYFormat.write(NumericArray(vector: nu.weights), path: directory.file("y_weights.npy"))

        let clock = ContinuousClock()
        func timed<T>(_ body: () throws -> T) rethrows -> (T, Double) {
            let start = clock.now
            let value = try body()
            return (value, (clock.now - start).timeInSeconds)
        }
        var lines = [DistanceLine]()
        let (exact, te) = try timed { try NetworkSimplexSolver().solve(problem) }
        lines.append(DistanceLine(method: "exact (network simplex)", w2Squared: exact.cost, seconds: te, note: "\(exact.plan?.entries.count ?? 0) plan entries"))
        let (lp, tl) = try timed { try LinearProgramSolver().solve(problem) }
        lines.append(DistanceLine(method: "lp (GLPK)", w2Squared: lp.cost, seconds: tl,
                                  note: Self.agreement(abs(lp.cost - exact.cost) / exact.cost)))
        for eps in [0.1, 0.01] {
            let (d, ts) = try timed { try SinkhornDivergence(epsilon: eps).evaluate(problem) }
            lines.append(DistanceLine(method: "sinkhorn eps=\(eps)", w2Squared: d.cross.cost, seconds: ts,
                                      note: String(format: "entropic; divergence %.6f, %d iterations", d.divergence, d.cross.iterations)))
        }
        let (bures, tb) = try timed { try GaussianMomentSolver().solve(problem) }
        lines.append(DistanceLine(method: "gaussian (Bures)", w2Squared: bures.cost, seconds: tb, note: "closed form between the sample moments (a lower bound)"))
        // The sorted method on the first coordinates, against the exact solver on the same 1-D data.
        let p1 = try TransportProblem(source: PointCloud(values: stride(from: 0, to: 2 * n, by: 2).map { x[$0] }),
                                      target: PointCloud(values: stride(from: 0, to: 2 * m, by: 2).map { y[$0] }, weights: nu.weights))
        let (sorted, t1) = try timed { try SortedSolver().solve(p1) }
        let exact1 = try NetworkSimplexSolver().solve(p1)
        lines.append(DistanceLine(method: "sorted (1-D, axis 0)", w2Squared: sorted.cost, seconds: t1,
                                  note: String(format: "exact on the same 1-D data: %.6f", exact1.cost)))

        try directory.writeSummary(lines.map(DistanceRecord.init), name: "distances.json")
        if let plan = exact.plan {
            try CSVFormat.write(header: ["i", "j", "mass"], rows: plan.entries.map { [Double($0.source), Double($0.target), $0.mass] },
                                path: directory.file("plan_exact.csv"))
        }
        return lines
    }
}
