import Foundation
import Testing
import Wasserstein

/// Extreme but finite inputs through the solvers (issue 10): coordinates whose squared distances
/// overflow, subnormal coordinates and weights, huge weights, negative zero. Every solve must
/// give a finite, correct answer or a typed error; never a trap, a NaN or a wrong value.
@Suite("Extreme finite inputs through the solvers")
struct ExtremeValueTests {
    /// About 2e-320: far below the smallest normal double (written so, since a literal warns).
    static let subnormal = Double.leastNormalMagnitude * 0x1p-40
    /// The exact solvers that accept a problem of this dimension.
    static func exactSolvers(dimension: Int) -> [(String, any TransportSolver)] {
        var solvers: [(String, any TransportSolver)] = [("network simplex", NetworkSimplexSolver()), ("lp", LinearProgramSolver())]
        if dimension == 1 { solvers.append(("sorted", SortedSolver())) }
        return solvers
    }

    /// Solves and returns the cost, or `nil` for a typed refusal; anything else is a failure.
    static func outcome(_ name: String, _ solve: () throws -> TransportResult) -> Double? {
        do {
            let r = try solve()
            #expect(r.cost.isFinite && r.cost >= 0, "\(name): cost \(r.cost)")
            #expect(r.w2.isFinite, "\(name): w2 \(r.w2)")
            return r.cost
        } catch is WassersteinError {
            return nil
        } catch {
            Issue.record("\(name): untyped error \(error)")
            return nil
        }
    }

    @Test("Coordinates whose squared distances overflow: exact solvers refuse or stay finite", arguments: [1e308, 1e155, 1.5e154])
    func overflowingCoordinates(scale: Double) throws {
        for dimension in [1, 2] {
            let x = try PointCloud(coordinates: (0 ..< 3 * dimension).map { Double($0 % 3 - 1) * scale }, dimension: dimension)
            let y = try PointCloud(coordinates: (0 ..< 2 * dimension).map { Double($0 % 2) * -scale }, dimension: dimension)
            let problem = try TransportProblem(source: x, target: y)
            for (name, solver) in Self.exactSolvers(dimension: dimension) {
                _ = Self.outcome("\(name), D = \(dimension), scale \(scale)") { try solver.solve(problem) }
            }
            _ = Self.outcome("auto, D = \(dimension)") { try wasserstein2(problem) }
            _ = Self.outcome("moments, D = \(dimension)") { try GaussianMomentSolver().solve(problem) }
        }
    }

    /// Issue 10 item 1 (fixed by the numerical side): the epsilon-scaling schedule of a cold
    /// start starts from the largest cost, which is infinite here.
    @Test("Sinkhorn on coordinates whose squared distances overflow refuses or stays finite", arguments: [1e308, 1e155])
    func sinkhornOverflowingCosts(scale: Double) throws {
        let x = try PointCloud(values: [-scale, 0, scale])
        let y = try PointCloud(values: [scale / 2, -scale / 3])
        let problem = try TransportProblem(source: x, target: y)
        _ = Self.outcome("sinkhorn, scale \(scale)") { try SinkhornSolver(epsilon: 1, maxIterations: 200).solve(problem) }
    }

    @Test("Subnormal and negative-zero coordinates give the exact, finite answer")
    func tinyCoordinates() throws {
        let tiny = Self.subnormal
        // Squared distances of about 1e-640 are zero in Double: the answer is 0 (or tiny), finite.
        let x = try PointCloud(coordinates: [tiny, -0.0, 3 * tiny, -tiny], dimension: 2)
        let y = try PointCloud(coordinates: [0.0, tiny], dimension: 2)
        let problem = try TransportProblem(source: x, target: y)
        for (name, solver) in Self.exactSolvers(dimension: 2) {
            let cost = Self.outcome(name) { try solver.solve(problem) }
            #expect(cost.map { $0 <= 1e-300 } ?? true, "\(name): \(String(describing: cost))")
        }
        let line = try TransportProblem(source: try PointCloud(values: [-0.0, tiny, .leastNonzeroMagnitude]), target: try PointCloud(values: [0.0]))
        for (name, solver) in Self.exactSolvers(dimension: 1) {
            let cost = Self.outcome(name) { try solver.solve(line) }
            #expect(cost.map { $0 <= 1e-300 } ?? true, "\(name): \(String(describing: cost))")
        }
    }

    /// Issue 10 item 2 (fixed by the numerical side): normalising subnormal weights must give
    /// the answer of the same proportions at ordinary scale (the value is scale-free), or refuse.
    @Test("Subnormal and huge weights under normalisation: the scale-free answer, or a typed error",
          arguments: [Self.subnormal, .leastNonzeroMagnitude, 1e300, 1e-300])
    func extremeWeights(scale: Double) throws {
        for dimension in [1, 2] {
            let coordinates = (0 ..< 3 * dimension).map { Double(($0 * 7) % 5) - 1.5 }
            let target = (0 ..< 2 * dimension).map { Double(($0 * 3) % 4) * 0.5 }
            let proportions = [1.0, 2, 4], targetProportions = [3.0, 4]
            func problem(_ s: Double) throws -> TransportProblem {
                try TransportProblem(source: PointCloud(coordinates: coordinates, dimension: dimension, weights: proportions.map { $0 * s }),
                                     target: PointCloud(coordinates: target, dimension: dimension, weights: targetProportions.map { $0 * s }),
                                     massPolicy: .normalize)
            }
            // The reference: the same proportions at scale one, solved by the LP (independent).
            let reference = try LinearProgramSolver().solve(problem(1)).cost
            let extreme: TransportProblem
            do { extreme = try problem(scale) } catch is WassersteinError { continue }
            for (name, solver) in Self.exactSolvers(dimension: dimension) {
                if let cost = Self.outcome("\(name), D = \(dimension), weights x \(scale)", { try solver.solve(extreme) }) {
                    #expect(abs(cost - reference) <= 1e-9 * reference, "\(name), D = \(dimension), weights x \(scale): \(cost) vs \(reference)")
                }
            }
        }
    }

    @Test("Huge equal masses without normalisation: the cost scales with the mass")
    func hugeMass() throws {
        let x = try PointCloud(values: [0, 1, 3], weights: [1e300, 1e300, 1e300])
        let y = try PointCloud(values: [0.5, 2], weights: [1.5e300, 1.5e300])
        let problem = try TransportProblem(source: x, target: y)
        let unit = try LinearProgramSolver().solve(TransportProblem(source: try PointCloud(values: [0, 1, 3], weights: [1, 1, 1]),
                                                                    target: try PointCloud(values: [0.5, 2], weights: [1.5, 1.5]))).cost
        for (name, solver) in Self.exactSolvers(dimension: 1) {
            if let cost = Self.outcome(name, { try solver.solve(problem) }) {
                #expect(abs(cost / 1e300 - unit) <= 1e-9 * unit, "\(name): \(cost)")
            }
        }
    }
}
