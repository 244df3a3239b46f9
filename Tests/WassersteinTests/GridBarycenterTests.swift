import Foundation
import Testing
@testable import Wasserstein

@Suite("Entropic barycenter on a grid")
struct GridBarycenterTests {
    /// Masses `exp(-|x - m|^2 / (2 s^2))` at the points `h i` of a grid, normalised.
    static func gaussian(_ grid: SeparableGridGeometry, mean: [Double], sd s: Double) -> [Double] {
        let n = grid.pointsPerAxis
        var out = [Double](repeating: 0, count: grid.sourceCount)
        for p in 0 ..< out.count {
            var rest = p, r2 = 0.0
            for a in stride(from: n.count - 1, through: 0, by: -1) {
                let x = grid.spacing[a] * Double(rest % n[a]) - mean[a]
                rest /= n[a]
                r2 += x * x
            }
            out[p] = exp(-r2 / (2 * s * s))
        }
        let total = out.reduce(0, +)
        return out.map { $0 / total }
    }

    /// The mean and the standard deviation per axis `sqrt(trace(cov) / D)` of grid masses.
    static func moments(_ masses: [Double], _ grid: SeparableGridGeometry) -> (mean: [Double], sd: Double) {
        let n = grid.pointsPerAxis, d = n.count
        var total = 0.0, first = [Double](repeating: 0, count: d), second = [Double](repeating: 0, count: d)
        for p in 0 ..< masses.count {
            var rest = p
            for a in stride(from: d - 1, through: 0, by: -1) {
                let x = grid.spacing[a] * Double(rest % n[a])
                rest /= n[a]
                first[a] += masses[p] * x
                second[a] += masses[p] * x * x
            }
            total += masses[p]
        }
        let mean = first.map { $0 / total }
        var variance = 0.0
        for a in 0 ..< d { variance += second[a] / total - mean[a] * mean[a] }
        return (mean, (variance / Double(d)).squareRoot())
    }

    @Test("1-D: the debiased barycenter is the quantile average of the inputs to discretisation (W2 by the sorted solver); the plain one is not")
    func quantileAverage() throws {
        let n = 100
        let grid = try SeparableGridGeometry(pointsPerAxis: [n], spacing: [1 / Double(n - 1)])
        let h = grid.spacing[0]
        let a = Self.gaussian(grid, mean: [0.3], sd: 0.04)
        let b = Self.gaussian(grid, mean: [0.65], sd: 0.07)
        let w = [0.4, 0.6]
        let x = (0 ..< n).map { h * Double($0) }
        // The quantile average: at the midpoints t of M cells of [0, 1], sum_k w_k F_k^-1(t).
        let m = 4000
        func quantiles(_ p: [Double]) -> [Double] {
            var out = [Double](), cdf = 0.0, i = 0
            for c in 0 ..< m {
                let t = (Double(c) + 0.5) / Double(m)
                while i < n - 1 && cdf + p[i] < t { cdf += p[i]; i += 1 }
                out.append(x[i])
            }
            return out
        }
        let qa = quantiles(a), qb = quantiles(b)
        let averageValues = (0 ..< m).map { w[0] * qa[$0] + w[1] * qb[$0] }
        let average = try PointCloud(values: averageValues)
        // No measure on the grid is closer to it than its nearest-point projection.
        let projected = try PointCloud(values: averageValues.map { h * ($0 / h).rounded() })
        let floor = try wasserstein2(TransportProblem(source: projected, target: average)).cost.squareRoot()
        func distance(_ r: GridBarycenterResult) throws -> Double {
            let cloud = try PointCloud(values: x, weights: r.masses.map { $0 / r.masses.reduce(0, +) })
            return try wasserstein2(TransportProblem(source: cloud, target: average)).cost.squareRoot()
        }
        // eps = 2e-3: sqrt(eps) = 4.5 h, comparable to the inputs' widths.
        let r = try EntropicGridBarycenter(epsilon: 2e-3, debiased: true, tolerance: 1e-7).solve([a, b], on: grid, weights: w)
        let plain = try EntropicGridBarycenter(epsilon: 2e-3, debiased: false, tolerance: 1e-7).solve([a, b], on: grid, weights: w)
        #expect(r.converged && plain.converged)
        let debiasedGap = try distance(r), plainGap = try distance(plain)
        // Measured: floor 0.0029 (0.28 h), debiased 0.0036, plain 0.0089.
        #expect(debiasedGap <= floor + 0.1 * h, "W2 to the quantile average \(debiasedGap), floor \(floor)")
        #expect(plainGap >= 2 * debiasedGap, "plain \(plainGap), debiased \(debiasedGap)")
    }

    @Test("2-D: the debiased barycenter of N(m_k, s^2 I) is N(sum w_k m_k, s^2 I) within 2% in s, uniform and non-uniform weights; the plain one is wider")
    func gaussians() throws {
        let n = 32
        let grid = try SeparableGridGeometry(pointsPerAxis: [n, n], spacing: [1 / Double(n - 1), 1 / Double(n - 1)])
        let means = [[0.3, 0.3], [0.7, 0.35], [0.45, 0.7]]
        let s = 0.08
        let inputs = means.map { Self.gaussian(grid, mean: $0, sd: s) }
        for w in [[1.0 / 3, 1.0 / 3, 1.0 / 3], [0.6, 0.3, 0.1]] {
            let r = try EntropicGridBarycenter(epsilon: 2e-3, debiased: true, tolerance: 1e-6).solve(inputs, on: grid, weights: w)
            #expect(r.converged)
            // Measured: s within 0.03%, the mean within 1e-5.
            let mr = Self.moments(r.masses, grid)
            for a in 0 ..< 2 {
                let expected = zip(w, means).map { $0 * $1[a] }.reduce(0, +)
                #expect(abs(mr.mean[a] - expected) <= 0.01 * s)
            }
            #expect(abs(mr.sd / s - 1) <= 0.02)
        }
        // The plain barycenter is blurred by the entropy: wider by more than the 2%.
        let p = try EntropicGridBarycenter(epsilon: 2e-3, debiased: false, tolerance: 1e-6).solve(inputs, on: grid)
        #expect(p.converged)
        // Measured: 7.5% wider.
        #expect(Self.moments(p.masses, grid).sd / s >= 1.05)
    }

    @Test("tolerance 1e-9 converges within a cap (1-D and 2-D) and the result is still the W2 barycenter of Gaussians within 2% in s; a cap too small is reported")
    func tightTolerance() throws {
        // 1-D: N(0.25, 0.06^2) and N(0.7, 0.09^2) on 41 points of [0, 1] (the guide's samples),
        // weights 1/4, 3/4. The W2 barycenter is N(0.5875, 0.0825^2) (quantiles average).
        let line = try SeparableGridGeometry(pointsPerAxis: [41], spacing: [0.025])
        let inputs = [Self.gaussian(line, mean: [0.25], sd: 0.06), Self.gaussian(line, mean: [0.7], sd: 0.09)]
        let w = [0.25, 0.75]
        let r = try EntropicGridBarycenter(epsilon: 1e-3, maximumIterations: 1000, tolerance: 1e-9).solve(inputs, on: line, weights: w)
        // Measured: 638 iterations (261 to 1e-7).
        #expect(r.converged && r.marginalError <= 1e-9, "\(r.iterations) iterations, error \(r.marginalError)")
        let m = Self.moments(r.masses, line)
        #expect(abs(m.mean[0] - 0.5875) <= 0.01 * 0.0825 && abs(m.sd / 0.0825 - 1) <= 0.02, "mean \(m.mean[0]), sd \(m.sd)")
        #expect(abs(r.masses.reduce(0, +) - 1) <= 1e-9)
        // The plain barycenter at the same tolerance: the same mean, wider by the entropy's blur.
        let plain = try EntropicGridBarycenter(epsilon: 1e-3, debiased: false, maximumIterations: 1000, tolerance: 1e-9)
            .solve(inputs, on: line, weights: w)
        #expect(plain.converged)
        let mp = Self.moments(plain.masses, line)
        // Measured: 0.08537 against 0.08239.
        #expect(abs(mp.mean[0] - m.mean[0]) <= 1e-4 && mp.sd >= 1.02 * m.sd, "plain \(mp), debiased \(m)")

        // 2-D: three Gaussians of s = 0.08 on 32 x 32, eps = 2e-3 (930 iterations measured).
        let n = 32
        let grid = try SeparableGridGeometry(pointsPerAxis: [n, n], spacing: [1 / Double(n - 1), 1 / Double(n - 1)])
        let means = [[0.3, 0.3], [0.7, 0.35], [0.45, 0.7]]
        let r2 = try EntropicGridBarycenter(epsilon: 2e-3, maximumIterations: 2000, tolerance: 1e-9)
            .solve(means.map { Self.gaussian(grid, mean: $0, sd: 0.08) }, on: grid)
        #expect(r2.converged, "\(r2.iterations) iterations, error \(r2.marginalError)")
        let m2 = Self.moments(r2.masses, grid)
        for a in 0 ..< 2 { #expect(abs(m2.mean[a] - means.map { $0[a] }.reduce(0, +) / 3) <= 0.01 * 0.08) }
        #expect(abs(m2.sd / 0.08 - 1) <= 0.02)

        // At eps = 2e-3 the 1-D problem is far slower below 1e-7 (the grid-scale ripples of b, along
        // which the debiased objective is nearly flat): a cap of 300 stops it, and the result says so.
        let capped = try EntropicGridBarycenter(epsilon: 2e-3, maximumIterations: 300, tolerance: 1e-9).solve(inputs, on: line, weights: w)
        #expect(!capped.converged && capped.iterations == 300 && capped.marginalError > 1e-9)
        #expect(capped.masses.allSatisfy { $0.isFinite && $0 >= 0 } && abs(capped.masses.reduce(0, +) - 1) <= capped.marginalError + 1e-12)
    }

    @Test("kernel mode, shifts per grid line and the log domain give the same iterates")
    func modes() throws {
        let grid = try SeparableGridGeometry(pointsPerAxis: [20, 24], spacing: [0.05, 0.04])
        let inputs = [Self.gaussian(grid, mean: [0.3, 0.4], sd: 0.1), Self.gaussian(grid, mean: [0.6, 0.5], sd: 0.12)]
        for debiased in [true, false] {
            let solver = EntropicGridBarycenter(epsilon: 5e-3, debiased: debiased, maximumIterations: 30, tolerance: 0)
            var logOnly = solver
            logOnly.allowsKernelMode = false
            let k = try solver.solve(inputs, on: grid, weights: [0.7, 0.3])
            let l = try logOnly.solve(inputs, on: grid, weights: [0.7, 0.3])
            #expect(k.iterations == 30 && !k.converged && k.logDomainApplications == 0 && l.kernelModeApplications == 0)
            for i in 0 ..< k.masses.count { #expect(abs(k.masses[i] - l.masses[i]) <= 1e-12 * k.masses.max()!) }
        }
        // Point masses at (0, 0) and (18, 22), eps = 1e-4 below h^2: K u falls below e^-620 of its
        // largest entry across the grid (diameter^2 / eps = 17500), out of kernel mode's reach. The
        // barycenter is the point mass halfway, at (9, 11).
        var corner = [Double](repeating: 0, count: grid.sourceCount), far = corner
        corner[0] = 1
        far[18 * 24 + 22] = 1
        let small = try EntropicGridBarycenter(epsilon: 1e-4, tolerance: 1e-9).solve([corner, far], on: grid)
        #expect(small.converged && small.lineStabilizedApplications > 0 && small.masses.allSatisfy { $0.isFinite && $0 >= 0 })
        #expect(small.masses[9 * 24 + 11] >= 0.99, "mass at the midpoint \(small.masses[9 * 24 + 11])")
        // Lines with their own shifts (and the log domain where a line needs it) against the log domain throughout.
        let logOnly = try EntropicGridBarycenter(epsilon: 1e-4, tolerance: 1e-9, allowsKernelMode: false).solve([corner, far], on: grid)
        #expect(logOnly.iterations == small.iterations)
        for i in 0 ..< small.masses.count { #expect(abs(small.masses[i] - logOnly.masses[i]) <= 1e-12) }
        // Blobs in opposite corners at eps = 2e-3: K u spans e^-875 over the grid, beyond one
        // shift, and at most e^-451 along a line.
        var blobs = [[Double]](repeating: [Double](repeating: 0, count: grid.sourceCount), count: 2)
        for i in 0 ... 3 {
            for j in 0 ... 3 {
                blobs[0][i * 24 + j] = 1
                blobs[1][(19 - i) * 24 + (23 - j)] = 1
            }
        }
        let wide = try EntropicGridBarycenter(epsilon: 2e-3, maximumIterations: 20, tolerance: 0)
        var wideLog = wide
        wideLog.allowsKernelMode = false
        let w = try wide.solve(blobs, on: grid), wl = try wideLog.solve(blobs, on: grid)
        #expect(w.lineStabilizedApplications > 0 && w.kernelModeApplications > 0)
        for i in 0 ..< w.masses.count { #expect(abs(w.masses[i] - wl.masses[i]) <= 1e-12 * w.masses.max()!) }
    }

    @Test("mass one, symmetric under permuting the inputs with their weights, identical inputs give themselves (debiased)")
    func invariants() throws {
        let grid = try SeparableGridGeometry(pointsPerAxis: [6, 7, 5], spacing: [0.2, 0.15, 0.25])
        let inputs = [Self.gaussian(grid, mean: [0.3, 0.4, 0.5], sd: 0.3), Self.gaussian(grid, mean: [0.7, 0.5, 0.6], sd: 0.25),
                      Self.gaussian(grid, mean: [0.5, 0.2, 0.4], sd: 0.35)]
        let w = [0.5, 0.2, 0.3]
        let solver = EntropicGridBarycenter(epsilon: 0.05, tolerance: 1e-10)
        let r = try solver.solve(inputs, on: grid, weights: w)
        #expect(r.converged)
        #expect(abs(r.masses.reduce(0, +) - 1) <= r.marginalError + 1e-13)
        let permuted = try solver.solve([inputs[2], inputs[0], inputs[1]], on: grid, weights: [w[2], w[0], w[1]])
        for i in 0 ..< r.masses.count { #expect(abs(r.masses[i] - permuted.masses[i]) <= 1e-12) }
        // Scaling an input does not matter (each is taken at mass one).
        let scaled = try solver.solve([inputs[0].map { 5 * $0 }, inputs[1], inputs[2]], on: grid, weights: w)
        for i in 0 ..< r.masses.count { #expect(abs(r.masses[i] - scaled.masses[i]) <= 1e-12) }
        // S_eps(a, b) >= 0 with equality only at b = a: the debiased barycenter of copies of a is a.
        let same = try solver.solve([inputs[1], inputs[1]], on: grid, weights: [0.25, 0.75])
        #expect(same.converged)
        var gap = 0.0
        for i in 0 ..< same.masses.count { gap += abs(same.masses[i] - inputs[1][i]) }
        #expect(gap <= 1e-8, "L1 gap \(gap)")
        // The plain one is a blurred copy.
        let plain = try EntropicGridBarycenter(epsilon: 0.05, debiased: false).solve([inputs[1], inputs[1]], on: grid)
        #expect(Self.moments(plain.masses, grid).sd > 1.05 * Self.moments(inputs[1], grid).sd)
    }

    @Test("bad input: typed errors")
    func errors() throws {
        let grid = try SeparableGridGeometry(pointsPerAxis: [5, 4], spacing: [0.1, 0.1])
        let a = [Double](repeating: 0.05, count: 20)
        let solver = EntropicGridBarycenter(epsilon: 0.01)
        #expect(throws: WassersteinError.emptyCloud("barycenter inputs")) { try solver.solve([], on: grid) }
        #expect(throws: WassersteinError.malformedShape("barycenter input 1 has 19 values, the grid [5, 4] has 20 points")) {
            try solver.solve([a, Array(a.dropLast())], on: grid)
        }
        var negative = a
        negative[3] = -0.01
        #expect(throws: WassersteinError.invalidWeight(cloud: "barycenter input 0", index: 3, value: -0.01)) {
            try solver.solve([negative, a], on: grid)
        }
        var nan = a
        nan[0] = .nan
        #expect(throws: WassersteinError.self) { try solver.solve([nan], on: grid) }
        #expect(throws: WassersteinError.zeroMass("barycenter input 1")) { try solver.solve([a, a.map { _ in 0 }], on: grid) }
        #expect(throws: WassersteinError.invalidParameter(name: "sum of the barycenter weights", value: 1.1, requirement: "must be 1 (within 1e-9)")) {
            try solver.solve([a, a], on: grid, weights: [0.6, 0.5])
        }
        #expect(throws: WassersteinError.weightCountMismatch(cloud: "barycenter weights", points: 2, weights: 3)) {
            try solver.solve([a, a], on: grid, weights: [0.5, 0.25, 0.25])
        }
        #expect(throws: WassersteinError.invalidWeight(cloud: "barycenter weights", index: 1, value: -0.5)) {
            try solver.solve([a, a], on: grid, weights: [1.5, -0.5])
        }
        for epsilon in [0, -1, Double.nan, .infinity, 1e-18] {
            #expect(throws: WassersteinError.self) { try EntropicGridBarycenter(epsilon: epsilon).solve([a], on: grid) }
        }
        #expect(throws: WassersteinError.self) { try EntropicGridBarycenter(epsilon: 0.01, maximumIterations: -1).solve([a], on: grid) }
        #expect(throws: WassersteinError.self) { try EntropicGridBarycenter(epsilon: 0.01, tolerance: .nan).solve([a], on: grid) }
        // A zero weight drops its input: the barycenter of the others.
        let other = Self.gaussian(grid, mean: [0.2, 0.1], sd: 0.1)
        let dropped = try solver.solve([a, other], on: grid, weights: [0, 1])
        let alone = try solver.solve([other], on: grid)
        #expect(dropped.masses == alone.masses)
    }
}
