import Foundation
import Testing
@testable import Wasserstein

/// The driver's Newton-CG stage (``EntropicParameters/usesNewtonSteps``) and the plan products
/// it runs on: the products of the tiled geometries against the plan written out row by row,
/// the stage against ``SinkhornSolver`` (the dense loop with its own Newton steps and cluster
/// shifts) where the plain driver does not converge, and online against dense.
@Suite("Entropic engine: Newton-CG stage")
struct EntropicNewtonTests {
    static func relative(_ x: Double, _ y: Double) -> Double { abs(x - y) / Swift.max(abs(x), abs(y), 1e-300) }

    /// The case of Benchmarks 4.3 (`bench-jko --only sinkhorndiag`), smaller: `n` points in
    /// `D = 21` and a copy moved by 0.01 per coordinate. At `eps = 0.05` the plan is a set of
    /// isolated pairs `(x_i, y_i)`, whose modes the plain balanced iteration barely moves.
    static func isolatedPairs(_ n: Int) throws -> TransportProblem {
        let d = 21
        var rng = Xoshiro256StarStar(seed: 1)
        var x = [Double](repeating: 0, count: n * d)
        for i in 0 ..< n {
            x[i * d] = rng.nextGaussian()
            for k in 1 ..< d { x[i * d + k] = rng.nextGaussian() / Double(d - 1).squareRoot() }
        }
        let y = x.map { $0 + 0.01 * rng.nextGaussian() }
        return try TransportProblem(source: PointCloud(coordinates: x, dimension: d),
                                    target: PointCloud(coordinates: y, dimension: d))
    }

    @Test("isolated pairs, D = 21, eps = 0.05: at a cap the plain driver misses, Newton converges to SinkhornSolver's value")
    func isolatedPairsConverge() throws {
        let problem = try Self.isolatedPairs(150)
        let reference = try SinkhornSolver(epsilon: 0.05, tolerance: 1e-11).solve(problem)
        #expect(reference.converged)
        var parameters = try EntropicParameters(epsilon: 0.05, tolerance: 1e-10, maxIterations: 400)
        let plain = try EntropicEngine.solve(problem, parameters: parameters, geometry: EntropicEngine.online())
        #expect(!plain.converged && plain.newtonSteps == 0)
        parameters.usesNewtonSteps = true
        let online = try EntropicEngine.solve(problem, parameters: parameters, geometry: EntropicEngine.online())
        let dense = try EntropicEngine.solve(problem, parameters: parameters, geometry: EntropicEngine.dense())
        for out in [online, dense] {
            #expect(out.converged)
            #expect(out.marginalError <= 1e-10)
            #expect(out.newtonSteps > 0)
            #expect(Self.relative(out.regularizedCost, reference.entropic!.regularizedCost) <= 1e-9)
            #expect(Self.relative(out.transportCost, reference.cost) <= 1e-9)
        }
        #expect(Self.relative(online.regularizedCost, dense.regularizedCost) <= 1e-9)
        // The potentials of isolated pairs are pinned only through plan entries near e^-200, so
        // two solves that round differently (the stored kernel against the log domain) agree on
        // the plan and the values but can differ by 1e-3 along those near-gauge directions; the
        // online geometry follows the log-domain dense geometry's path to rounding.
        let logDomain = try EntropicEngine.solve(problem, parameters: parameters,
                                                 geometry: { try DenseCostGeometry(source: $0, target: $1, storesKernel: false) })
        #expect(zip(online.f, logDomain.f).allSatisfy { abs($0 - $1) <= 1e-9 })
    }

    @Test("Newton steps on a POT fixture: the driver's value matches POT's at every epsilon of the case")
    func potFixture() throws {
        #expect(POTCase.all.count >= 3)
        for pot in POTCase.all.prefix(3) {
            for (epsilon, expected) in pot.sinkhorn.sorted(by: { $0.key < $1.key }) {
                var parameters = try EntropicParameters(epsilon: epsilon, tolerance: 1e-12, maxIterations: 100_000)
                parameters.usesNewtonSteps = true
                let out = try EntropicEngine.solve(try pot.problem(), parameters: parameters, geometry: EntropicEngine.dense())
                #expect(out.converged)
                #expect(Self.relative(out.regularizedCost, expected.regularized) <= 1e-8,
                        "case \(pot.index), eps \(epsilon): \(out.regularizedCost) against POT \(expected.regularized)")
                #expect(Self.relative(out.transportCost, expected.transport) <= 1e-8)
            }
        }
    }

    /// A geometry that offers only the required operations, so that the protocol's default
    /// `applyPlan` (row by row from `planRow`) runs.
    struct PlanRowsOnly: SinkhornGeometry {
        let inner: OnlinePointCloudGeometry
        var name: String { "rows" }
        var sourceCount: Int { inner.sourceCount }
        var targetCount: Int { inner.targetCount }
        var costRange: Double { inner.costRange }
        func softMin(_ potential: Span<Double>, logWeights: Span<Double>, epsilon: Double, transposed: Bool,
                     into out: inout MutableSpan<Double>) {
            inner.softMin(potential, logWeights: logWeights, epsilon: epsilon, transposed: transposed, into: &out)
        }
        func transportCost(f: Span<Double>, g: Span<Double>, logA: Span<Double>, logB: Span<Double>, epsilon: Double) -> Double {
            inner.transportCost(f: f, g: g, logA: logA, logB: logB, epsilon: epsilon)
        }
        func planRow(_ i: Int, f: Span<Double>, g: Span<Double>, logA: Span<Double>, logB: Span<Double>, epsilon: Double,
                     into out: inout MutableSpan<Double>) {
            inner.planRow(i, f: f, g: g, logA: logA, logB: logB, epsilon: epsilon, into: &out)
        }
    }

    @Test("plan products: online, dense and the row-by-row default equal the plan written out with exp, rows and columns, squared or not")
    func planProducts() throws {
        // m = 300 > the tile width: rows span two tiles; one zero weight on each side.
        let x = try EntropicTestClouds.gaussian(13, dimension: 3, seed: 21)
        let y = try EntropicTestClouds.gaussian(300, dimension: 3, seed: 22, shift: 0.5)
        let n = x.count, m = y.count, epsilon = 0.3
        var rng = Xoshiro256StarStar(seed: 23)
        let f = (0 ..< n).map { _ in rng.nextGaussian() }, g = (0 ..< m).map { _ in 2 + rng.nextGaussian() }
        var a = (0 ..< n).map { _ in 0.5 + rng.nextUniform() }, b = (0 ..< m).map { _ in 0.5 + rng.nextUniform() }
        a[4] = 0
        b[257] = 0
        let logA = a.map { $0 > 0 ? log($0) : -Double.infinity }, logB = b.map { $0 > 0 ? log($0) : -Double.infinity }
        let u = (0 ..< n).map { _ in rng.nextGaussian() }, v = (0 ..< m).map { _ in rng.nextGaussian() }
        // The plan written out: P_ij = a_i b_j exp((f_i + g_j - |x_i - y_j|^2) / eps).
        var plan = [[Double]](repeating: [Double](repeating: 0, count: m), count: n)
        for i in 0 ..< n {
            for j in 0 ..< m {
                var c = 0.0
                for k in 0 ..< 3 { let t = x.coordinates[i * 3 + k] - y.coordinates[j * 3 + k]; c += t * t }
                plan[i][j] = a[i] * b[j] * exp((f[i] + g[j] - c) / epsilon)
            }
        }
        let online = try OnlinePointCloudGeometry(source: x, target: y)
        let dense = try DenseCostGeometry(source: x, target: y)
        let rows = PlanRowsOnly(inner: online)
        func product(_ geometry: some SinkhornGeometry, transposed: Bool, squared: Bool) -> [Double] {
            var out = [Double](repeating: .nan, count: transposed ? m : n)
            var span = out.mutableSpan
            geometry.applyPlan((transposed ? u : v).span, f: f.span, g: g.span, logA: logA.span, logB: logB.span,
                               epsilon: epsilon, transposed: transposed, squared: squared, into: &span)
            return out
        }
        for transposed in [false, true] {
            for squared in [false, true] {
                var expected = [Double](repeating: 0, count: transposed ? m : n)
                var magnitude = 0.0
                for i in 0 ..< n {
                    for j in 0 ..< m {
                        let p = squared ? plan[i][j] * plan[i][j] : plan[i][j]
                        if transposed { expected[j] += p * u[i] } else { expected[i] += p * v[j] }
                        magnitude = Swift.max(magnitude, p)
                    }
                }
                #expect(magnitude > 1e-3)
                for geometry in [product(online, transposed: transposed, squared: squared),
                                 product(dense, transposed: transposed, squared: squared),
                                 product(rows, transposed: transposed, squared: squared)] {
                    let scale = Double(transposed ? n : m) * magnitude
                    let worst = zip(geometry, expected).map { abs($0 - $1) }.max()!
                    #expect(worst <= 1e-12 * scale, "transposed \(transposed), squared \(squared): \(worst) of \(scale)")
                }
                if transposed { #expect(product(online, transposed: true, squared: squared)[257] == 0) }
                else { #expect(product(online, transposed: false, squared: squared)[4] == 0) }
            }
        }
    }
}
