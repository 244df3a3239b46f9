import Foundation
import Testing
@testable import MeanField
import Wasserstein

@Suite("Gauss rules and samplers")
struct QuadratureAndSamplingTests {
    @Test("Gauss-Hermite integrates Gaussian moments exactly up to degree 2n - 1")
    func hermiteMoments() {
        // E[g^(2k)] = (2k - 1)!!; an n-node rule is exact for degree <= 2n - 1, so for n = 12
        // every moment up to 22 must match to rounding (relative 1e-12, the moments reach ~1e10).
        let rule = GaussRule.hermite(12)
        var doubleFactorial = 1.0
        for k in 0 ... 11 {
            if k > 0 { doubleFactorial *= Double(2 * k - 1) }
            let m = zip(rule.nodes, rule.weights).reduce(0.0) { $0 + $1.1 * pow($1.0, Double(2 * k)) }
            #expect(abs(m - doubleFactorial) <= 1e-12 * doubleFactorial, "moment \(2 * k)")
            let odd = zip(rule.nodes, rule.weights).reduce(0.0) { $0 + $1.1 * pow($1.0, Double(2 * k + 1)) }
            #expect(abs(odd) <= 1e-12 * doubleFactorial * 10)
        }
    }

    @Test("Gauss-Jacobi matches the moments of (1 - t^2)^gamma laws", arguments: [-0.5, 0.0, 0.5, 3.0])
    func jacobiMoments(gamma: Double) {
        // E[t^(2k)] under density ~ (1 - t^2)^gamma is B(k + 1/2, gamma + 1) / B(1/2, gamma + 1)
        // = prod_{i<k} (i + 1/2) / (i + gamma + 3/2); exact for 2k <= 2n - 1.
        let rule = GaussRule.symmetricJacobi(8, gamma: gamma)
        var expected = 1.0
        for k in 0 ... 7 {
            if k > 0 { expected *= (Double(k - 1) + 0.5) / (Double(k - 1) + gamma + 1.5) }
            let m = zip(rule.nodes, rule.weights).reduce(0.0) { $0 + $1.1 * pow($1.0, Double(2 * k)) }
            #expect(abs(m - expected) <= 1e-13, "gamma \(gamma) moment \(2 * k)")
        }
    }

    @Test("Uniform sphere samples have unit norm, mean 0 and covariance I/d")
    func sphereMoments() {
        // Each coordinate of x uniform on S^{d-1} has variance 1/d and fourth moment
        // 3/(d(d+2)); the means over n samples are compared within 5 standard errors.
        let d = 5, n = 40_000
        var g = Xoshiro256StarStar(seed: 11)
        var mean = [Double](repeating: 0, count: d)
        var second = [Double](repeating: 0, count: d * d)
        for _ in 0 ..< n {
            let x = g.uniformOnSphere(dimension: d)
            let norm2 = x.reduce(0) { $0 + $1 * $1 }
            #expect(abs(norm2 - 1) < 1e-14)
            for k in 0 ..< d {
                mean[k] += x[k] / Double(n)
                for l in 0 ..< d { second[k * d + l] += x[k] * x[l] / Double(n) }
            }
        }
        let varCoord = 1.0 / Double(d)
        let seMean = (varCoord / Double(n)).squareRoot()
        let fourth = 3.0 / Double(d * (d + 2))
        let seDiag = ((fourth - varCoord * varCoord) / Double(n)).squareRoot()
        let seOff = (1.0 / Double(d * (d + 2)) / Double(n)).squareRoot()
        for k in 0 ..< d {
            #expect(abs(mean[k]) < 5 * seMean)
            for l in 0 ..< d {
                if k == l { #expect(abs(second[k * d + l] - varCoord) < 5 * seDiag) }
                else { #expect(abs(second[k * d + l]) < 5 * seOff) }
            }
        }
    }

    @Test("Gaussian pairs are standard normal and uncorrelated")
    func gaussianPairs() {
        // n pairs: mean within 5 SE (1/sqrt(n)), variance within 5 SE (sqrt(2/n)),
        // correlation within 5/sqrt(n).
        let n = 100_000
        var g = Xoshiro256StarStar(seed: 3)
        var s0 = 0.0, s1 = 0.0, s00 = 0.0, s11 = 0.0, s01 = 0.0
        for _ in 0 ..< n {
            let (a, b) = g.nextGaussianPair()
            s0 += a; s1 += b; s00 += a * a; s11 += b * b; s01 += a * b
        }
        let nn = Double(n)
        #expect(abs(s0 / nn) < 5 / nn.squareRoot())
        #expect(abs(s1 / nn) < 5 / nn.squareRoot())
        #expect(abs(s00 / nn - 1) < 5 * (2 / nn).squareRoot())
        #expect(abs(s11 / nn - 1) < 5 * (2 / nn).squareRoot())
        #expect(abs(s01 / nn) < 5 / nn.squareRoot())
    }

    @Test("Initial law: per-coordinate mean and spread, scalar or vector w.mean")
    func initialLaw() throws {
        let model = try NetworkModel(activation: .relu, inputDimension: 3, secondLayer: .trained)
        let law = InitialLaw(aMean: 0.5, aStd: 0.2, wMean: [1, -1, 2], wStd: 0.3)
        var g = Xoshiro256StarStar(seed: 5)
        let n = 20_000
        let p = law.sample(model: model, count: n, using: &g)
        let expectedMean = [0.5, 1, -1, 2], expectedStd = [0.2, 0.3, 0.3, 0.3]
        for c in 0 ..< 4 {
            var m = 0.0, v = 0.0
            for j in 0 ..< n { m += p[j * 4 + c] }
            m /= Double(n)
            for j in 0 ..< n { v += (p[j * 4 + c] - m) * (p[j * 4 + c] - m) }
            v /= Double(n)
            // Mean within 5 SE; variance within 5 SE of a normal sample variance (sqrt(2/n) s^2).
            #expect(abs(m - expectedMean[c]) < 5 * expectedStd[c] / Double(n).squareRoot())
            #expect(abs(v - expectedStd[c] * expectedStd[c]) < 5 * (2 / Double(n)).squareRoot() * expectedStd[c] * expectedStd[c])
        }
        #expect(throws: MeanFieldError.lengthMismatch(parameter: .firstLayerMean, expected: 3, actual: 2)) {
            try InitialLaw(wMean: [1, 2], wStd: 1).validate(inputDimension: 3)
        }
    }
}

@Suite("Ziggurat normal sampler")
struct ZigguratTests {
    @Test("The base-strip edge r solves the 256-layer closure equation (published 3.6541528853610088)")
    func tableEdge() {
        let t = ZigguratTables()
        #expect(abs(t.r - 3.6541528853610088) < 1e-9)
        #expect(t.x[256] == 0 && t.x[1] == t.r)
        // Every layer has the same area v = X_k (f_{k+1} - f_k) for k >= 1.
        let v = t.r * t.f[1] + (Double.pi / 2).squareRoot() * erfc(t.r / 2.0.squareRoot())
        for k in 1 ..< 255 { #expect(abs(t.x[k] * (t.f[k + 1] - t.f[k]) - v) < 1e-12, "layer \(k)") }
    }

    @Test("Ziggurat draws pass a 60-bin chi-square test against N(0, 1) and have the right moments")
    func distribution() {
        // Bins of equal normal probability over (-inf, inf) via the quantiles of 60 equal steps
        // found by bisection on erfc; chi-square with 59 degrees of freedom exceeds 120 with
        // probability < 1e-5. Moments: mean and variance within 5 SE, kurtosis 3 within 5 SE
        // (SE of the 4th moment sqrt(96/n)).
        let n = 300_000, bins = 60
        func cdf(_ z: Double) -> Double { 0.5 * erfc(-z / 2.0.squareRoot()) }
        var edges = [Double]()
        for b in 1 ..< bins {
            var lo = -10.0, hi = 10.0
            for _ in 0 ..< 80 { let mid = (lo + hi) / 2; if cdf(mid) < Double(b) / Double(bins) { lo = mid } else { hi = mid } }
            edges.append(hi)
        }
        var counts = [Int](repeating: 0, count: bins)
        var g = Xoshiro256StarStar(seed: 99)
        var buffer = [Double](repeating: 0, count: n)
        var draws = buffer.mutableSpan
        g.fillNormalZiggurat(&draws)
        var s1 = 0.0, s2 = 0.0, s4 = 0.0, tail = 0
        for z in buffer {
            var lo = 0, hi = edges.count
            while lo < hi { let mid = (lo + hi) / 2; if z < edges[mid] { hi = mid } else { lo = mid + 1 } }
            counts[lo] += 1
            s1 += z; s2 += z * z; s4 += z * z * z * z
            if abs(z) > 3.6541528853610088 { tail += 1 }
        }
        let expected = Double(n) / Double(bins)
        let chi2 = counts.reduce(0.0) { $0 + (Double($1) - expected) * (Double($1) - expected) / expected }
        #expect(chi2 < 120, "chi-square \(chi2)")
        let nn = Double(n)
        #expect(abs(s1 / nn) < 5 / nn.squareRoot())
        #expect(abs(s2 / nn - 1) < 5 * (2 / nn).squareRoot())
        #expect(abs(s4 / nn - 3) < 5 * (96 / nn).squareRoot())
        // The tail beyond r (the exact tail sampler's territory): P = 2(1 - Phi(r)) = 2.58e-4,
        // a Poisson count with mean ~77; within 5 sigma.
        let pTail = 2 * (1 - cdf(3.6541528853610088)) * nn
        #expect(abs(Double(tail) - pTail) < 5 * pTail.squareRoot(), "tail \(tail) vs \(pTail)")
    }
}
