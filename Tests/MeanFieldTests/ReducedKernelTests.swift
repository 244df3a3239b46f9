import Foundation
import Testing
@testable import MeanField
import Wasserstein

/// A reduced setting with a single-neuron teacher `w* = |w*| e_1`.
func reducedSetting(_ s: Activation, d: ReducedDimension, trained: Bool = true, teacherNorm: Double = 1,
                    teacherActivation: Activation? = nil, noise: Double = 0) throws -> ReducedSetting {
    let teacher = try ReducedTeacher(directions: [[teacherNorm]], noise: noise, activation: teacherActivation)
    return try ReducedSetting(activation: s, secondLayer: trained ? .trained : .fixed, inputDimension: d, teacher: teacher)
}

/// The full parameter `(a, w)` with `w = s e_1 + r u` in `R^d` (`u` orthogonal to `e_1`).
private func fullParameter(_ z: [Double], u: [Double]) -> [Double] {
    // z = [a, s, r]; u has d - 1 entries (the orthogonal coordinates).
    [z[0], z[1]] + u.map { z[2] * $0 }
}

private let reducedPairs: [([Double], [Double])] = [
    ([0.9, 0.6, 0.8], [-0.4, 0.3, 1.1]),
    ([1.3, -0.2, 0.5], [0.7, 0.9, 0.4]),
    ([0.5, 0.7, 0.71], [1.0, 0.69, 0.72]),     // nearly parallel when u = u'
    ([-0.8, 1.5, 0.1], [0.6, -1.2, 1.4]),
]

@Suite("Reduced kernels: V, U against the full dimension, gradients, the t-rule")
struct ReducedKernelTests {
    @Test("V(z) equals the full V(theta) (relu, erf, tanh; same, linear and he2 teachers)",
          arguments: [(Activation.relu, Activation?.none), (.erf, nil), (.tanh, nil), (.relu, .he2), (.sigmoid, .he2),
                      (.relu, .linear), (.erf, .relu)])
    func potentialMatchesFull(_ s: Activation, _ teacherActivation: Activation?) throws {
        let d = 5
        let wStar = [0.0, 0.6, 0.0, -0.8, 0.0].map { 1.3 * $0 }
        let full = Teacher.neurons(directions: [wStar], coefficients: [0.7], noise: 0.2, activation: teacherActivation)
        let reducedTeacher = try ReducedTeacher(teacher: full, inputDimension: d)
        let setting = try ReducedSetting(activation: s, inputDimension: .finite(d), teacher: reducedTeacher)
        let kernels = try ReducedKernels(setting: setting)
        let risk = try PopulationRisk(model: NetworkModel(activation: s, inputDimension: d), teacher: full)
        #expect(abs(kernels.teacherSecondMoment - risk.teacherSecondMoment) <= 1e-12)
        let e = reducedTeacher.basis![0]
        let un = [0.6, 0.0, 0.0, 0.0, 0.8]   // a unit vector orthogonal to e
        #expect(abs(zip(e, un).reduce(0) { $0 + $1.0 * $1.1 }) < 1e-14)
        for (z, _) in reducedPairs {
            let theta = [z[0]] + (0 ..< d).map { z[1] * e[$0] + z[2] * un[$0] }
            #expect(abs(kernels.potential(z) - risk.potential(theta)) <= 1e-12)
            let g = kernels.potentialGradient(z), gFull = risk.potentialGradient(theta)
            let ds = zip(gFull[1...], e).reduce(0) { $0 + $1.0 * $1.1 }
            let dr = zip(gFull[1...], un).reduce(0) { $0 + $1.0 * $1.1 }
            #expect(abs(g[0] - gFull[0]) <= 1e-12 && abs(g[1] - ds) <= 1e-12 && abs(g[2] - dr) <= 1e-12, "\(g) vs \(gFull[0]), \(ds), \(dr)")
        }
    }

    @Test("U(z, z') is the full kernel averaged over u' uniform on S^(n-1): Monte Carlo in d = 3, 4, 8",
          arguments: [(Activation.relu, 3), (.relu, 4), (.erf, 4), (.relu, 8), (.erf, 8)])
    func interactionVersusMonteCarlo(_ s: Activation, _ d: Int) throws {
        let kernels = try ReducedKernels(setting: reducedSetting(s, d: .finite(d)))
        let risk = try PopulationRisk(model: NetworkModel(activation: s, inputDimension: d), teacher: .singleNeuron([1] + [Double](repeating: 0, count: d - 1)))
        var g = Xoshiro256StarStar(seed: 7)
        let n = d - 1, draws = 20_000
        let u = [1.0] + [Double](repeating: 0, count: n - 1)
        for (pairIndex, (z, z2)) in reducedPairs.enumerated() {
            let theta = fullParameter(z, u: u)
            var sum = 0.0, sum2 = 0.0
            var gs = [Double](repeating: 0, count: 3), gs2 = [Double](repeating: 0, count: 3)
            for _ in 0 ..< draws {
                let theta2 = fullParameter(z2, u: g.uniformOnSphere(dimension: n))
                let (v, grad) = risk.interactionAndGradient(theta, theta2)
                sum += v; sum2 += v * v
                // grad_z: (dU/da, <grad_w, e_1>, <grad_w, u>) with u = e_2.
                let gz = [grad[0], grad[1], grad[2]]
                for c in 0 ..< 3 { gs[c] += gz[c]; gs2[c] += gz[c] * gz[c] }
            }
            func check(_ exact: Double, _ a: Double, _ b: Double, _ what: String) {
                let mean = a / Double(draws)
                let se = (max(0, b / Double(draws) - mean * mean) / Double(draws)).squareRoot()
                // 5 standard errors: fails by chance with p < 1e-6 per check.
                #expect(abs(exact - mean) <= 5 * se + 1e-9, "\(s) d = \(d) pair \(pairIndex) \(what): \(exact) vs \(mean) +- \(se)")
            }
            let (value, gradient) = kernels.interactionAndGradient(z, z2)
            check(value, sum, sum2, "U")
            for c in 0 ..< 3 { check(gradient[c], gs[c], gs2[c], "gradient \(c)") }
        }
    }

    @Test("n = 1: U averages t = +1 and t = -1 exactly")
    func oneOrthogonalDimension() throws {
        let kernels = try ReducedKernels(setting: reducedSetting(.relu, d: .finite(2)))
        let risk = try PopulationRisk(model: NetworkModel(activation: .relu, inputDimension: 2), teacher: .singleNeuron([1, 0]))
        for (z, z2) in reducedPairs {
            let plus = risk.interaction([z[0], z[1], z[2]], [z2[0], z2[1], z2[2]])
            let minus = risk.interaction([z[0], z[1], z[2]], [z2[0], z2[1], -z2[2]])
            #expect(abs(kernels.interaction(z, z2) - (plus + minus) / 2) <= 1e-14)
        }
    }

    @Test("d = infinity: U is the full kernel at orthogonal u, u' (t = 0)")
    func infiniteDimension() throws {
        let kernels = try ReducedKernels(setting: reducedSetting(.erf, d: .infinity))
        #expect(kernels.sphereRule.nodes == [0])
        let risk = try PopulationRisk(model: NetworkModel(activation: .erf, inputDimension: 3), teacher: .singleNeuron([1, 0, 0]))
        for (z, z2) in reducedPairs {
            let exact = risk.interaction([z[0], z[1], z[2], 0], [z2[0], z2[1], 0, z2[2]])
            #expect(abs(kernels.interaction(z, z2) - exact) <= 1e-14)
        }
    }

    @Test("Gradients of V, U and Psi match central finite differences (k = 1 and k = 2, fixed and trained a)",
          arguments: [(Activation.relu, Activation.he2, 1, true), (.erf, .erf, 1, false), (.relu, .relu, 2, true),
                      (.tanh, .tanh, 2, false), (.relu, .relu, 1, false)])
    func gradientsVersusFiniteDifferences(_ s: Activation, _ teacherActivation: Activation, _ k: Int, _ trained: Bool) throws {
        let teacher = k == 1 ? try ReducedTeacher(directions: [[1.2]], activation: teacherActivation)
            : try ReducedTeacher(directions: [[1, 0], [0.3, 0.8]], coefficients: [1, -0.5])
        let setting = try ReducedSetting(activation: s, secondLayer: trained ? .trained : .fixed, inputDimension: .finite(9), teacher: teacher)
        // Few nodes keep the debug build fast: the gradients are exact for any rule.
        let kernels = try ReducedKernels(setting: setting, sphereNodes: 6, quadratureNodes: 12)
        let Dz = setting.coordinateCount
        var g = Xoshiro256StarStar(seed: 3)
        var points = [Double]()
        for _ in 0 ..< 6 {
            for c in 0 ..< Dz { points.append(c == Dz - 1 ? 0.3 + abs(g.nextGaussian()) : g.nextGaussian()) }
        }
        let weights = [0.1, 0.2, 0.15, 0.25, 0.2, 0.1]
        let law = try ReducedLaw(points: points, weights: weights, coordinateCount: Dz)
        let (psi, grad) = try kernels.firstVariation(at: points, law: law)
        let h = 1e-6
        for i in 0 ..< 6 {
            let z = Array(points[(i * Dz) ..< ((i + 1) * Dz)])
            let other = Array(points[(((i + 1) % 6) * Dz) ..< (((i + 1) % 6 + 1) * Dz)])
            let fdV = finiteDifferenceGradient(z, h: h) { kernels.potential($0) }
            let fdU = finiteDifferenceGradient(z, h: h) { kernels.interaction($0, other) }
            let fdPsi = finiteDifferenceGradient(z, h: h) { try! kernels.firstVariation(at: $0, law: law, gradient: false).potential[0] }
            let gV = kernels.potentialGradient(z), gU = kernels.interactionAndGradient(z, other).gradient
            for c in 0 ..< Dz {
                #expect(abs(gV[c] - fdV[c]) <= 1e-7 * (1 + abs(fdV[c])), "V point \(i) coordinate \(c): \(gV[c]) vs \(fdV[c])")
                #expect(abs(gU[c] - fdU[c]) <= 1e-7 * (1 + abs(fdU[c])), "U point \(i) coordinate \(c): \(gU[c]) vs \(fdU[c])")
                #expect(abs(grad![i * Dz + c] - fdPsi[c]) <= 1e-7 * (1 + abs(fdPsi[c])), "Psi point \(i) coordinate \(c)")
            }
            // Psi = V + sum_j w_j U(z_i, z_j).
            var direct = kernels.potential(z)
            for j in 0 ..< 6 { direct += weights[j] * kernels.interaction(z, Array(points[(j * Dz) ..< ((j + 1) * Dz)])) }
            #expect(abs(psi[i] - direct) <= 1e-13)
        }
    }

    @Test("Psi at the law's own points (each pair once, blocks) equals the row-by-row engine",
          arguments: [(Activation.relu, 1, true), (.erf, 2, false), (.linear, 1, true)])
    func symmetricEngine(_ s: Activation, _ k: Int, _ trained: Bool) throws {
        let teacher = k == 1 ? try ReducedTeacher(directions: [[1]]) : try ReducedTeacher(directions: [[1, 0], [0.3, 0.8]])
        let setting = try ReducedSetting(activation: s, secondLayer: trained ? .trained : .fixed, inputDimension: .finite(12), teacher: teacher)
        let kernels = try ReducedKernels(setting: setting, sphereNodes: 4)
        let Dz = setting.coordinateCount, m = 203   // 3 blocks of 68, the last padded
        var g = Xoshiro256StarStar(seed: 21)
        var points = [Double](), weights = [Double]()
        for _ in 0 ..< m {
            for c in 0 ..< Dz { points.append(c == Dz - 1 ? abs(g.nextGaussian()) : g.nextGaussian()) }
            weights.append(0.5 + g.nextUniform())
        }
        let total = weights.reduce(0, +)
        let law = try ReducedLaw(points: points, weights: weights.map { $0 / total }, coordinateCount: Dz)
        let symmetric = try kernels.firstVariation(at: points, law: law)
        // One extra evaluation point makes the points differ from the law: the row-by-row engine.
        let rows = try kernels.firstVariation(at: points + points[0 ..< Dz], law: law)
        for i in 0 ..< m {
            #expect(abs(symmetric.potential[i] - rows.potential[i]) <= 1e-13 * (1 + abs(rows.potential[i])))
            for c in 0 ..< Dz {
                let a = symmetric.gradient![i * Dz + c], b = rows.gradient![i * Dz + c]
                #expect(abs(a - b) <= 1e-13 * (1 + abs(b)), "point \(i) coordinate \(c): \(a) vs \(b)")
            }
        }
        // The risk (symmetric engine) against sum_i w_i (V_i + Psi_i) from the row engine.
        var direct = kernels.teacherSecondMoment
        for i in 0 ..< m { direct += law.weights[i] * (kernels.potential(Array(points[(i * Dz) ..< ((i + 1) * Dz)])) + rows.potential[i]) }
        #expect(abs(try kernels.risk(law) - direct / 2) <= 1e-13)
    }

    @Test("Risk of a reduced law equals the full risk of a cloud symmetric under the rotations fixing e_1 (d = 2: u -> -u)")
    func riskOfSymmetricCloud() throws {
        // In d = 2 the rotations fixing e_1 are {id, reflection}: a cloud closed under
        // w_2 -> -w_2 is exactly symmetric, and the reduced t-rule (t = +-1) is exact.
        let setting = try reducedSetting(.relu, d: .finite(2), teacherActivation: .he2, noise: 0.1)
        let kernels = try ReducedKernels(setting: setting)
        let full = try PopulationRisk(model: NetworkModel(activation: .relu, inputDimension: 2),
                                      teacher: .neurons(directions: [[1, 0]], coefficients: [1], noise: 0.1, activation: .he2))
        let z = reducedPairs.flatMap { $0.0 + $0.1 }
        let law = try ReducedLaw(points: z, coordinateCount: 3)
        var cloud = [Double]()
        for i in 0 ..< law.count {
            cloud += [z[3 * i], z[3 * i + 1], z[3 * i + 2]]
            cloud += [z[3 * i], z[3 * i + 1], -z[3 * i + 2]]
        }
        #expect(abs(try kernels.risk(law) - full.risk(particles: cloud)) <= 1e-13)
    }

    @Test("The t-rule: Gauss-Jacobi moments of (1 - t^2)^((n-3)/2) and default accuracy for relu and erf, n = 2 ... 1000",
          arguments: [2, 3, 5, 10, 19, 50, 100, 1000])
    func sphereRuleAccuracy(_ n: Int) throws {
        // E[t^2] = 1/n, E[t^4] = 3/(n (n + 2)) for the overlap of two uniform directions.
        let rule = ReducedKernels.sphereRule(orthogonalDimension: n)
        let m2 = zip(rule.nodes, rule.weights).reduce(0) { $0 + $1.1 * pow($1.0, 2) }
        let m4 = zip(rule.nodes, rule.weights).reduce(0) { $0 + $1.1 * pow($1.0, 4) }
        #expect(abs(m2 - 1 / Double(n)) <= 1e-15 && abs(m4 - 3 / Double(n * (n + 2))) <= 1e-15)
        for s in [Activation.relu, .erf] {
            let setting = try reducedSetting(s, d: .finite(n + 1))
            let coarse = try ReducedKernels(setting: setting)
            let reference = try ReducedKernels(setting: setting, sphereNodes: 512)
            let worst = sphereRuleError(coarse, reference)
            // The documented bound of the default rule (ReducedKernels' notes).
            #expect(worst <= 2e-9, "\(s) n = \(n): \(worst) with \(coarse.sphereRule.nodes.count) nodes")
        }
    }
}

/// The largest `|U_coarse - U_reference|` over 200 random pairs and a few nearly parallel ones.
func sphereRuleError(_ coarse: ReducedKernels, _ reference: ReducedKernels) -> Double {
    var g = Xoshiro256StarStar(seed: 11)
    var pairs = [([Double], [Double])]()
    for _ in 0 ..< 200 {
        pairs.append(([1, g.nextGaussian(), abs(g.nextGaussian()) + 0.01], [1, g.nextGaussian(), abs(g.nextGaussian()) + 0.01]))
    }
    pairs += [([1, 0.5, 1], [1, 0.5001, 1]), ([1, 1, 1], [1, 1, 1]), ([1, 0.1, 1], [1, 0.1, 1]), ([1, 2, 0.01], [1, 2, 0.01])]
    var worst = 0.0
    for (z, z2) in pairs {
        worst = max(worst, abs(coarse.interaction(z, z2) - reference.interaction(z, z2)))
    }
    return worst
}

@Suite("Teacher activations differing from the student's (full dimension)")
struct TeacherActivationTests {
    @Test("He_2 teacher: closed-form V, grad V and R# agree with Monte Carlo (relu, sigmoid, erf, he2 students); mixed pairs by quadrature",
          arguments: [(Activation.relu, Activation.he2), (.sigmoid, .he2), (.erf, .he2), (.he2, .he2), (.erf, .relu), (.tanh, .linear)])
    func mixedTeacherVersusMonteCarlo(_ s: Activation, _ t: Activation) throws {
        let wStar = [0.9, -0.5, 0.3, 0.2]
        let teacher = Teacher.neurons(directions: [wStar], coefficients: [1], noise: 0, activation: t)
        let risk = try PopulationRisk(model: NetworkModel(activation: s, inputDimension: 4, secondLayer: .fixed), teacher: teacher)
        let ws = [[0.8, -0.3, 0.5, 0.1], [1.5, 0.2, -0.7, 0.4], [0.3, 0.1, 0.0, -0.2]]
        for (i, w) in ws.enumerated() {
            let mc = monteCarloKernel(s, t, w, wStar, inputs: .gaussian, samples: 60_000, seed: UInt64(300 + i))
            // V(w) = -E[y s(<w,x>)]; 5 standard errors.
            #expect(abs(-risk.potential(w) - mc.value.mean) <= 5 * mc.value.standardError + 1e-12, "\(s)/\(t) w\(i)")
            let g = risk.potentialGradient(w)
            for c in 0 ..< 4 {
                #expect(abs(-g[c] - mc.gradient[c].mean) <= 5 * mc.gradient[c].standardError + 1e-12, "\(s)/\(t) w\(i) gradient \(c)")
            }
        }
        // R# = E[s*(<w*, x>)^2], by Monte Carlo too.
        let mc = monteCarloKernel(t, t, wStar, wStar, inputs: .gaussian, samples: 60_000, seed: 400)
        #expect(abs(risk.teacherSecondMoment - mc.value.mean) <= 5 * mc.value.standardError + 1e-12)
    }
}
