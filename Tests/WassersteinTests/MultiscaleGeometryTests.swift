import Foundation
import Testing
@testable import Wasserstein

/// The multiscale geometry (issue 19): the truncated soft-mins against the online geometry
/// through the same driver, the a-posteriori bound against the exact marginals, the check that
/// catches a truncation made too tight on purpose (and the online fallback's answer), the
/// divergence's invariants, and the typed errors.
@Suite("Entropic engine: the multiscale geometry")
struct MultiscaleGeometryTests {
    static func relative(_ x: Double, _ y: Double) -> Double { abs(x - y) / Swift.max(abs(x), abs(y), 1e-300) }

    static func maxDifference(_ x: [Double], _ y: [Double]) -> Double { zip(x, y).map { abs($0 - $1) }.max()! }


    /// Tight clusters (width 2e-3) on a grid of spacing 0.1, `perCluster` points each: the tree's
    /// leaves are small, so a small `k` really drops terms that matter at eps = 0.005.
    static func clustered(perCluster: Int, offset: Double, seed: UInt64) throws -> PointCloud {
        var rng = Xoshiro256StarStar(seed: seed)
        var points = [[Double]]()
        for c in 0 ..< 4 {
            for _ in 0 ..< perCluster {
                points.append([0.1 * Double(c % 2) + offset + 2e-3 * rng.nextUniform(),
                               0.1 * Double(c / 2) + 2e-3 * rng.nextUniform(), 2e-3 * rng.nextUniform()])
            }
        }
        return try PointCloud(points: points)
    }

    @Test("multiscale equals online through the driver (balanced), D = 1, 2, 3, and drops pairs",
          arguments: [(1, 0.001, 0.6), (2, 0.002, 0.9), (3, 0.004, 1.0)])
    func matchesOnline(dimension: Int, eps: Double, keptFraction: Double) throws {
        let x = try EntropicTestClouds.uniform(200, dimension: dimension, seed: 1, randomWeights: true)
        let y = try EntropicTestClouds.uniform(160, dimension: dimension, seed: 2, shift: 0.1)
        let problem = try TransportProblem(source: x, target: y)
        let parameters = try EntropicParameters(epsilon: eps, tolerance: 1e-12, scaling: .none)
        let geometry = try MultiscalePointCloudGeometry(source: x, target: y)
        var multiscale = try EntropicSinkhorn(geometry: geometry, problem: .balanced(problem), parameters: parameters)
        var online = try EntropicSinkhorn(geometry: OnlinePointCloudGeometry(source: x, target: y),
                                          problem: .balanced(problem), parameters: parameters)
        let m = try multiscale.solve(), o = try online.solve()
        #expect(m.converged && o.converged)
        #expect(m.geometry == "multiscale")
        #expect(Self.relative(m.transportCost, o.transportCost) <= 1e-9)
        #expect(Self.relative(m.regularizedCost, o.regularizedCost) <= 1e-9)
        #expect(Self.maxDifference(m.f, o.f) <= 1e-9 * Swift.max(1, o.f.map(abs).max()!))
        #expect(Self.maxDifference(m.g, o.g) <= 1e-9 * Swift.max(1, o.g.map(abs).max()!))
        // Something was dropped: at the converged potentials the soft-min evaluates well under n m pairs.
        let logB = problem.target.weights.map { log($0) }
        let pairs = geometry.evaluatedPairs(m.g, logWeights: logB, epsilon: eps, transposed: false, estimates: m.f)
        // (In 3-D, 200 points give leaves almost half of the cube wide: little can be dropped.)
        #expect(pairs > 0 && Double(pairs) < keptFraction * Double(x.count * y.count), "\(pairs) of \(x.count * y.count)")
    }

    @Test("the self term (symmetric update) and the checked front end equal the online geometry")
    func selfTermAndFrontEnd() throws {
        let x = try EntropicTestClouds.uniform(250, dimension: 3, seed: 3, randomWeights: true)
        let y = try EntropicTestClouds.uniform(200, dimension: 3, seed: 4)
        let parameters = try EntropicParameters(epsilon: 0.005, tolerance: 1e-11)
        let ms = try EntropicEngine.solveSelfMultiscale(x, parameters: parameters)
        let on = try EntropicEngine.solveSelf(x, parameters: parameters, geometry: EntropicEngine.online())
        #expect(ms.check.passed && !ms.fellBack && ms.output.geometry == "multiscale")
        #expect(ms.output.converged && on.converged)
        #expect(Self.relative(ms.output.regularizedCost, on.regularizedCost) <= 1e-9)
        #expect(Self.maxDifference(ms.output.f, on.f) <= 1e-9 * Swift.max(1, on.f.map(abs).max()!))
        let problem = try TransportProblem(source: x, target: y)
        let cross = try EntropicEngine.solveMultiscale(problem, parameters: parameters)
        let crossOnline = try EntropicEngine.solve(problem, parameters: parameters, geometry: EntropicEngine.online())
        #expect(cross.check.passed && cross.output.geometry == "multiscale" && cross.output.converged)
        #expect(cross.check.bound <= cross.check.limit && abs(cross.check.limit - 1e-12) <= 1e-24)
        #expect(Self.relative(cross.output.transportCost, crossOnline.transportCost) <= 1e-9)
        #expect(Self.relative(cross.output.regularizedCost, crossOnline.regularizedCost) <= 1e-9)
    }

    @Test("the truncation bound holds: exact minus truncated marginals of the same potentials", arguments: [1.0, 3.0, 32.0])
    func boundHolds(truncation: Double) throws {
        let x = try Self.clustered(perCluster: 40, offset: 0, seed: 5)
        let y = try Self.clustered(perCluster: 30, offset: 0.05, seed: 6)
        let eps = 0.005
        let problem = try TransportProblem(source: x, target: y)
        // Potentials from the online solve, so the bound is measured where a solve ends.
        let reference = try EntropicEngine.solve(problem, parameters: try EntropicParameters(epsilon: eps, tolerance: 1e-10),
                                                 geometry: EntropicEngine.online())
        let geometry = try MultiscalePointCloudGeometry(source: x, target: y, truncation: truncation)
        let logA = x.weights.map { log($0) }, logB = y.weights.map { log($0) }
        func marginals(_ g: any SinkhornGeometry) -> (rows: [Double], columns: [Double]) {
            var fT = reference.f, gT = reference.g   // the potentials as estimates
            reference.g.withUnsafeBufferPointer { gb in
                logB.withUnsafeBufferPointer { bb in fT.withUnsafeMutableBufferPointer { g.softMin(gb, logWeights: bb, epsilon: eps, transposed: false, into: $0) } }
            }
            reference.f.withUnsafeBufferPointer { fb in
                logA.withUnsafeBufferPointer { ab in gT.withUnsafeMutableBufferPointer { g.softMin(fb, logWeights: ab, epsilon: eps, transposed: true, into: $0) } }
            }
            return ((0 ..< x.count).map { x.weights[$0] * exp((reference.f[$0] - fT[$0]) / eps) },
                    (0 ..< y.count).map { y.weights[$0] * exp((reference.g[$0] - gT[$0]) / eps) })
        }
        let exact = marginals(geometry.online), truncated = marginals(geometry)
        let difference = zip(exact.rows, truncated.rows).map { abs($0 - $1) }.reduce(0, +)
            + zip(exact.columns, truncated.columns).map { abs($0 - $1) }.reduce(0, +)
        let bound = reference.f.withUnsafeBufferPointer { fb in
            reference.g.withUnsafeBufferPointer { gb in
                logA.withUnsafeBufferPointer { ab in
                    logB.withUnsafeBufferPointer { bb in geometry.truncationBound(f: fb, g: gb, logA: ab, logB: bb, epsilon: eps) }
                }
            }
        }
        #expect(difference <= bound * (1 + 1e-9) + 1e-15, "difference \(difference) above the bound \(bound)")
        if truncation == 1 {
            #expect(difference > 1e-4, "k = 1 must drop mass that matters, else this test shows nothing: \(difference)")
            #expect(bound > 1e-3)
        }
        if truncation == 32 { #expect(bound <= 1e-12) }
    }

    @Test("the check catches a truncation made too tight, and the online fallback answers right")
    func checkCatchesTightTruncation() throws {
        let x = try Self.clustered(perCluster: 40, offset: 0, seed: 7)
        let y = try Self.clustered(perCluster: 30, offset: 0.05, seed: 8)
        let problem = try TransportProblem(source: x, target: y)
        let parameters = try EntropicParameters(epsilon: 0.005, tolerance: 1e-11, maxIterations: 400)
        let tight = try EntropicEngine.solveMultiscale(problem, parameters: parameters, truncation: 1)
        #expect(!tight.check.passed && tight.fellBack)
        #expect(tight.check.bound > 100 * tight.check.limit)
        #expect(tight.output.geometry == "online")
        let online = try EntropicEngine.solve(problem, parameters: parameters, geometry: EntropicEngine.online())
        #expect(tight.output.converged && online.converged)
        #expect(Self.relative(tight.output.transportCost, online.transportCost) <= 1e-9)
        #expect(Self.relative(tight.output.regularizedCost, online.regularizedCost) <= 1e-9)
        // What the truncated iteration alone gives is wrong by far more than the tolerance: the
        // check is what stands between it and the user.
        var truncated = try EntropicSinkhorn(geometry: MultiscalePointCloudGeometry(source: x, target: y, truncation: 1),
                                             problem: .balanced(problem), parameters: parameters)
        let unchecked = try truncated.solve()
        #expect(Self.relative(unchecked.regularizedCost, online.regularizedCost) > 1e-6)
    }

    @Test("divergence: S(mu, mu) = 0, translation invariance, and agreement with the online divergence")
    func divergenceInvariants() throws {
        let x = try EntropicTestClouds.uniform(200, dimension: 3, seed: 9, randomWeights: true)
        let y = try EntropicTestClouds.uniform(180, dimension: 3, seed: 10, shift: 0.2)
        let parameters = try EntropicParameters(epsilon: 0.004, tolerance: 1e-11)
        let same = try EntropicEngine.divergenceMultiscale(TransportProblem(source: x, target: x), parameters: parameters)
        #expect(abs(same.divergence.divergence) <= 1e-12)
        let samePassed = same.checks.allSatisfy { $0.passed }
        #expect(samePassed)
        let xy = try EntropicEngine.divergenceMultiscale(TransportProblem(source: x, target: y), parameters: parameters)
        let xyPassed = xy.checks.allSatisfy { $0.passed }
        #expect(xy.divergence.converged && xyPassed)
        let v = [3.0, -2.0, 0.5]
        let moved = try EntropicEngine.divergenceMultiscale(TransportProblem(source: x.translated(by: v), target: y.translated(by: v)),
                                                            parameters: parameters)
        #expect(abs(moved.divergence.divergence - xy.divergence.divergence) <= 1e-9 * xy.divergence.divergence)
        let online = try EntropicEngine.divergence(TransportProblem(source: x, target: y), parameters: parameters,
                                                   geometry: EntropicEngine.online())
        #expect(Self.relative(xy.divergence.divergence, online.divergence) <= 1e-9)
        #expect(xy.divergence.divergence > 1e-3)
    }

    @Test("repeated and collinear points (degenerate tree boxes) give the online answer")
    func degenerateClouds() throws {
        // 1-D values with many repeats, and 3-D points on a line: leaves with zero-width boxes.
        let x = try PointCloud(values: (0 ..< 200).map { Double($0 % 7) / 7 })
        let y = try PointCloud(values: (0 ..< 150).map { Double($0 % 11) / 11 + 0.05 })
        let line = try PointCloud(points: (0 ..< 120).map { i in [Double(i) / 120, 2 * Double(i) / 120, 0.5] })
        let other = try PointCloud(points: (0 ..< 90).map { i in [Double(i) / 90, 0.3, Double(i % 3) / 3] })
        let parameters = try EntropicParameters(epsilon: 0.01, tolerance: 1e-10)
        for (p, q) in [(x, y), (line, other)] {
            let problem = try TransportProblem(source: p, target: q)
            let ms = try EntropicEngine.solveMultiscale(problem, parameters: parameters)
            let on = try EntropicEngine.solve(problem, parameters: parameters, geometry: EntropicEngine.online())
            #expect(ms.check.passed && ms.output.converged && on.converged)
            #expect(Self.relative(ms.output.regularizedCost, on.regularizedCost) <= 1e-9)
        }
    }

    @Test("bad input: D > 3, k below 1 or NaN, clouds of different dimensions are typed errors")
    func errors() throws {
        let four = try PointCloud(points: [[0, 0, 0, 0], [1, 0, 0, 1]])
        let three = try PointCloud(points: [[0, 0, 0], [1, 0, 0]])
        #expect(throws: WassersteinError.self) { try MultiscalePointCloudGeometry(source: four, target: four) }
        #expect(throws: WassersteinError.self) { try MultiscalePointCloudGeometry(source: three, target: four) }
        for k in [0.5, -1, .nan, .infinity] {
            #expect(throws: WassersteinError.self) { try MultiscalePointCloudGeometry(source: three, target: three, truncation: k) }
        }
        do {
            _ = try MultiscalePointCloudGeometry(source: four, target: four)
        } catch WassersteinError.unsupported(let message) {
            #expect(message.contains("dimension <= 3"))
        }
    }

    @Test("the k-d tree: leaves tile the points, every point lies in its leaf's box")
    func tree() throws {
        let cloud = try EntropicTestClouds.uniform(1000, dimension: 3, seed: 11)
        let tree = PointTree(cloud)
        #expect(tree.order.sorted() == Array(0 ..< 1000))
        var next = 0
        for leaf in tree.leaves {
            #expect(tree.start[leaf] == next && tree.firstChild[leaf] < 0)
            #expect(tree.end[leaf] - tree.start[leaf] <= PointTree.defaultLeafSize)
            next = tree.end[leaf]
            for p in tree.start[leaf] ..< tree.end[leaf] {
                for k in 0 ..< 3 {
                    let c = cloud.coordinates[tree.order[p] * 3 + k]
                    #expect(c >= tree.boxLow[3 * leaf + k] && c <= tree.boxHigh[3 * leaf + k])
                    #expect(tree.axes[k * 1000 + p] == c)
                }
            }
        }
        #expect(next == 1000)
    }
}
