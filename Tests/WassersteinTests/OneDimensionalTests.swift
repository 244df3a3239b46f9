import Testing
@testable import Wasserstein

/// The sorted (quantile) solver against the exact solvers and the closed forms of Docs/Theory.md 1.3.
@Suite("One-dimensional W2 by sorting")
struct OneDimensionalTests {
    // Docs/Theory.md 1.3: equal sizes, uniform weights, W2^2 = (1/n) sum (x_(i) - y_(i))^2.
    @Test("Equal-size uniform samples: the sorted-pairs formula")
    func sortedPairsFormula() throws {
        let x = try ExactTestSupport.gaussianCloud(500, dimension: 1, seed: 1)
        let y = try ExactTestSupport.gaussianCloud(500, dimension: 1, seed: 2, shift: 0.7)
        let xs = x.coordinates.sorted(), ys = y.coordinates.sorted()
        var expected = 0.0
        for k in 0 ..< 500 { expected += (xs[k] - ys[k]) * (xs[k] - ys[k]) }
        expected /= 500
        let problem = try TransportProblem(source: x, target: y)
        for plan in [true, false] {
            let r = try SortedSolver(planOutput: plan ? .full : .none).solve(problem)
            #expect(ExactTestSupport.close(r.cost, expected, relative: 1e-12))
            #expect(r.method == .sorted && r.status == .optimal)
        }
    }

    // Both exact: the network simplex's entering tolerance (1e-12 of max C) bounds the gap.
    @Test("Sorted equals the network simplex: unequal sizes, weights, ties, zero weights")
    func agreesWithNetworkSimplex() throws {
        var cases = [(PointCloud, PointCloud)]()
        cases.append((try ExactTestSupport.gaussianCloud(37, dimension: 1, seed: 3),
                      try ExactTestSupport.gaussianCloud(23, dimension: 1, seed: 4, shift: 0.5)))
        cases.append((try ExactTestSupport.gaussianCloud(40, dimension: 1, seed: 5, randomWeights: true),
                      try ExactTestSupport.gaussianCloud(55, dimension: 1, seed: 6, randomWeights: true)))
        // Integer values: many duplicates and ties in the cumulative weights.
        cases.append((try ExactTestSupport.gridCloud(30, dimension: 1, side: 4, seed: 7),
                      try ExactTestSupport.gridCloud(20, dimension: 1, side: 4, seed: 8)))
        cases.append((try PointCloud(values: [0, 1, 2, 3, 4], weights: [1, 0, 2, 0, 1]),
                      try PointCloud(values: [0.5, 0.5, 3, -1], weights: [0, 2, 2, 0])))
        cases.append((try PointCloud(values: [2]), try ExactTestSupport.gaussianCloud(9, dimension: 1, seed: 9)))
        for (x, y) in cases {
            let problem = try TransportProblem(source: x, target: y, massPolicy: .normalize)
            let exact = try NetworkSimplexSolver().solve(problem)
            for plan in [true, false] {
                let sorted = try SortedSolver(planOutput: plan ? .full : .none).solve(problem)
                #expect(ExactTestSupport.close(sorted.cost, exact.cost, relative: 1e-10, absolute: 1e-14),
                        "sorted \(sorted.cost) vs exact \(exact.cost)")
            }
        }
    }

    // The monotone coupling is a coupling (1e-12 of the mass) and its staircase duals are
    // feasible with no gap (the squared cost is Monge on sorted points).
    @Test("The monotone plan is a coupling and its duals certify optimality")
    func planAndDuals() throws {
        let pairs = [
            (try ExactTestSupport.gaussianCloud(31, dimension: 1, seed: 10, randomWeights: true),
             try ExactTestSupport.gaussianCloud(17, dimension: 1, seed: 11, randomWeights: true)),
            (try PointCloud(values: [3, 1, 1, 2, 0], weights: [1, 0, 2, 2, 1]),
             try PointCloud(values: [1, 1, 5], weights: [0, 3, 3])),
        ]
        for (x, y) in pairs {
            let problem = try TransportProblem(source: x, target: y, massPolicy: .normalize)
            let r = try SortedSolver().solve(problem)
            ExactTestSupport.expectCoupling(r, problem, tolerance: 1e-12)
            ExactTestSupport.expectOptimalDuals(r, problem, tolerance: 1e-12)
            #expect(r.plan!.entries.count <= x.count + y.count - 1)
        }
    }

    @Test("Radix sort agrees with the standard library sort")
    func radixSort() {
        var g = Xoshiro256StarStar(seed: 12)
        // Above the radix threshold; negatives, zeros of both signs, duplicates, wide exponents.
        var values = (0 ..< 20_000).map { k -> Double in
            switch k % 5 {
            case 0: return g.nextGaussian()
            case 1: return -g.nextUniform() * 1e300
            case 2: return Double(g.next() % 7) - 3
            case 3: return k % 2 == 0 ? 0.0 : -0.0
            default: return g.nextGaussian() * 1e-300
            }
        }
        let expected = values.sorted()
        values.withUnsafeMutableBufferPointer { RadixSort.sort($0) }
        #expect(values == expected)
        // With indices: the permutation maps sorted positions back to the original values.
        let original = (0 ..< 10_000).map { _ in Double(g.next() % 1000) * 0.25 - 100 }
        var sorted = original
        var indices = (0 ..< original.count).map { UInt32($0) }
        sorted.withUnsafeMutableBufferPointer { s in indices.withUnsafeMutableBufferPointer { RadixSort.sort(s, carrying: $0) } }
        #expect(sorted == original.sorted())
        #expect(indices.map { original[Int($0)] } == sorted)
        #expect(Set(indices).count == original.count)
    }

    @Test("A large uniform problem (radix path, both cores) matches the sorted-pairs formula")
    func largeUniform() throws {
        let n = 50_000
        let x = try ExactTestSupport.gaussianCloud(n, dimension: 1, seed: 13)
        let y = try ExactTestSupport.gaussianCloud(n, dimension: 1, seed: 14, shift: -0.3)
        let xs = x.coordinates.sorted(), ys = y.coordinates.sorted()
        var expected = 0.0
        for k in 0 ..< n { expected += (xs[k] - ys[k]) * (xs[k] - ys[k]) }
        expected /= Double(n)
        let r = try SortedSolver(planOutput: .none).solve(try TransportProblem(source: x, target: y))
        #expect(ExactTestSupport.close(r.cost, expected, relative: 1e-12))
        // Unequal sizes through the integer merge: compare with the weighted general path.
        let z = try ExactTestSupport.gaussianCloud(30_001, dimension: 1, seed: 15)
        let p2 = try TransportProblem(source: x, target: z)
        let fast = try SortedSolver(planOutput: .none).solve(p2)
        let general = try SortedSolver(planOutput: .full).solve(p2)
        #expect(ExactTestSupport.close(fast.cost, general.cost, relative: 1e-10))
    }
}
