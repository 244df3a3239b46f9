#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Small dense symmetric-matrix helpers (D x D with D the parameter dimension), row-major.
enum SmallMatrix {
    /// In-place lower Cholesky factor of a symmetric positive definite `n x n` matrix; returns
    /// `false` if a pivot is not positive. The strict upper triangle is zeroed.
    static func choleskyInPlace(_ a: inout [Double], _ n: Int) -> Bool {
        for j in 0 ..< n {
            var s = a[j * n + j]
            for k in 0 ..< j { s -= a[j * n + k] * a[j * n + k] }
            guard s > 0, s.isFinite else { return false }
            let ljj = s.squareRoot()
            a[j * n + j] = ljj
            for i in (j + 1) ..< n {
                var t = a[i * n + j]
                for k in 0 ..< j { t -= a[i * n + k] * a[j * n + k] }
                a[i * n + j] = t / ljj
            }
            for i in (j + 1) ..< n { a[j * n + i] = 0 }
        }
        return true
    }

    /// Solves `L y = b` in place (`L` lower triangular, row-major `n x n`).
    @inline(__always)
    static func forwardSolve(_ l: UnsafeBufferPointer<Double>, _ n: Int, _ b: UnsafeMutablePointer<Double>) {
        for i in 0 ..< n {
            var s = b[i]
            for k in 0 ..< i { s -= l[i * n + k] * b[k] }
            b[i] = s / l[i * n + i]
        }
    }

    /// Solves `L^T y = b` in place.
    @inline(__always)
    static func backSolveTransposed(_ l: UnsafeBufferPointer<Double>, _ n: Int, _ b: UnsafeMutablePointer<Double>) {
        var i = n - 1
        while i >= 0 {
            var s = b[i]
            for k in (i + 1) ..< n { s -= l[k * n + i] * b[k] }
            b[i] = s / l[i * n + i]
            i -= 1
        }
    }

    /// `sum_i log L_ii`, half the log-determinant of `L L^T`.
    static func halfLogDeterminant(_ l: [Double], _ n: Int) -> Double {
        var s = 0.0
        for i in 0 ..< n { s += log(l[i * n + i]) }
        return s
    }
}
