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
