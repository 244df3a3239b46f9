import Foundation
import Testing
@testable import MeanField

@Suite("Branch-free arcsine and arccosine")
struct FastMathTests {
    @Test("arccos and arcsin agree with libm to 4 ulps over [-1, 1]")
    func versusLibm() {
        // The polynomial's interpolation error is 1.2e-16 relative (derivation in FastMath.swift);
        // the argument reduction adds a few roundings. 4 ulps of the result (plus 4 ulps of pi/2
        // for arccos, whose result near c = 1 is small and carries the absolute error of
        // sqrt(1 - c)) is the bound.
        var worst = 0.0
        for i in 0 ... 200_000 {
            let c = -1 + 2 * Double(i) / 200_000
            let e = acos(c), a = arccos(c)
            #expect(abs(a - e) <= 4 * e.ulp + 1e-16, "acos(\(c))")
            let es = asin(c), s = arcsin(c)
            #expect(abs(s - es) <= 4 * max(abs(es).ulp, Double.leastNormalMagnitude), "asin(\(c))")
            worst = max(worst, abs(a - e))
        }
        #expect(arccos(1) == 0)
        #expect(arccos(-1) == Double.pi)
        #expect(arcsin(0) == 0)
        #expect(worst > 0)   // not secretly calling libm
    }
}

@Suite("Packed square root")
struct PackedSquareRootTests {
    @Test("sqrt4 equals squareRoot() lane by lane")
    func versusScalar() {
        var worstUlps = 0.0
        var x = 2e-300
        while x < 1e300 {
            let v = D4(x, x * 1.37, x * 2.9, x * 0.51)
            let r = sqrt4(v)
            for l in 0 ..< 4 {
                let e = v[l].squareRoot()
                worstUlps = max(worstUlps, abs(r[l] - e) / e.ulp)
            }
            x *= 3.7
        }
        #expect(worstUlps == 0, "worst \(worstUlps) ulps")
        #expect(sqrt4(D4(0, 0.25, 1, 4)) == D4(0, 0.5, 1, 2))
    }
}

@Suite("Angle and sine in one pass")
struct ArccosAndSineTests {
    @Test("arccosAndSine matches (acos c, sqrt(1 - c^2)) and its lanes match the scalar")
    func versusLibm() {
        // The sine is compared with sqrt((1 - c)(1 + c)) (1 - c and 1 + c are exact or nearly
        // so, hence a reference good to ~2 ulps even near c = +-1) in relative terms, 1e-15.
        for i in 0 ... 100_000 {
            let c = -1 + 2 * Double(i) / 100_000
            let (a, s) = arccosAndSine(c)
            #expect(abs(a - acos(c)) <= 4 * acos(c).ulp + 1e-16)
            let exact = ((1 - c) * (1 + c)).squareRoot()
            #expect(abs(s - exact) <= 1e-15 * max(exact, 1e-300) + 1e-300, "c = \(c): \(s) vs \(exact)")
            if i % 4 == 0 && i + 3 <= 100_000 {
                let lanes = D4(c, -1 + 2 * Double(i + 1) / 100_000, -1 + 2 * Double(i + 2) / 100_000, -1 + 2 * Double(i + 3) / 100_000)
                let (a4, s4) = arccosAndSine4(lanes)
                for l in 0 ..< 4 {
                    let (al, sl) = arccosAndSine(lanes[l])
                    #expect(a4[l] == al && s4[l] == sl)
                }
            }
        }
        #expect(arccosAndSine(1) == (0, 0))
    }
}

@Suite("Packed exponential and activations")
struct PackedActivationTests {
    @Test("exp4 is within 5e-16 relative (2-3 ulps) of exp on [-700, 700]")
    func expVersusLibm() {
        var worst = 0.0
        var x = -700.0
        while x <= 700 {
            let v = D4(x, min(700, x + 0.123), min(700, x + 0.377), min(700, x + 0.5))
            let e = exp4(v)
            for l in 0 ..< 4 { worst = max(worst, abs(e[l] - exp(v[l])) / exp(v[l])) }
            x += 0.731
        }
        #expect(worst < 5e-16, "worst relative error \(worst)")
        #expect(worst > 0)
    }

    @Test("Packed tanh and sigmoid (values and derivatives) match libm to 5e-16 absolute")
    func activations() {
        var worst = 0.0
        var u = -40.0
        while u <= 40 {
            let v = D4(u, u / 3, u / 17, -u / 101)
            let (t, dt) = TanhFunction().valueAndDerivative4(v)
            let (s, ds) = SigmoidFunction().valueAndDerivative4(v)
            let (r, dr) = ReLUFunction().valueAndDerivative4(v)
            for l in 0 ..< 4 {
                worst = max(worst, abs(t[l] - tanh(v[l])), abs(dt[l] - (1 - tanh(v[l]) * tanh(v[l]))))
                let sg = SigmoidFunction().value(v[l])
                worst = max(worst, abs(s[l] - sg), abs(ds[l] - sg * (1 - sg)))
                #expect(r[l] == max(v[l], 0) && dr[l] == (v[l] > 0 ? 1 : 0))
            }
            u += 0.0137
        }
        // A couple of ulps of values of size ~1.
        #expect(worst <= 5e-16, "worst \(worst)")
    }
}
