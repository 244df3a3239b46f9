#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Wasserstein

extension Xoshiro256StarStar {
    /// Two independent standard normal draws from one acceptance of Marsaglia's polar method
    /// (`nextGaussian()` discards the second one; bulk sampling keeps it).
    @inlinable
    public mutating func nextGaussianPair() -> (Double, Double) {
        while true {
            let u = 2 * nextUniform() - 1
            let v = 2 * nextUniform() - 1
            let s = u * u + v * v
            if s > 0 && s < 1 {
                let f = (-2 * log(s) / s).squareRoot()
                return (u * f, v * f)
            }
        }
    }

    /// Fills `output` with independent standard normal draws (the ziggurat method,
    /// ``fillNormalZiggurat(_:)``). The draws depend only on the generator state and the count.
    @inlinable
    public mutating func fillStandardNormal(_ output: inout MutableSpan<Double>) {
        fillNormalZiggurat(&output)
    }

    /// Writes a point uniform on the unit sphere `S^{d-1}` of R^d, `d = output.count` (a
    /// standard normal vector divided by its norm; the zero vector, of probability zero, is
    /// redrawn).
    @inlinable
    public mutating func fillUniformOnSphere(_ output: inout MutableSpan<Double>) {
        output.withUnsafeMutableBufferPointer { fillUniformOnSphere($0.baseAddress!, dimension: $0.count) }
    }

    /// The engine's form of ``fillStandardNormal(_:)``: `count` values at `buffer`.
    @inlinable
    mutating func fillStandardNormal(_ buffer: UnsafeMutablePointer<Double>, count: Int) {
        fillNormalZiggurat(buffer, count: count)
    }

    /// The engine's form of ``fillUniformOnSphere(_:)``: `d` values at `buffer`.
    @inlinable
    mutating func fillUniformOnSphere(_ buffer: UnsafeMutablePointer<Double>, dimension d: Int) {
        precondition(d >= 1)
        while true {
            fillStandardNormal(buffer, count: d)
            var s = 0.0
            for k in 0 ..< d { s += buffer[k] * buffer[k] }
            if s > 0 {
                let inv = 1 / s.squareRoot()
                for k in 0 ..< d { buffer[k] *= inv }
                return
            }
        }
    }

    /// A point uniform on the unit sphere of R^d.
    public mutating func uniformOnSphere(dimension d: Int) -> [Double] {
        var x = [Double](repeating: 0, count: d)
        x.withUnsafeMutableBufferPointer { fillUniformOnSphere($0.baseAddress!, dimension: d) }
        return x
    }

    /// An index uniform in `0 ..< n` (multiply-high; the bias, below `n / 2^64`, is negligible).
    @inlinable
    public mutating func nextIndex(below n: Int) -> Int {
        Int(UInt64(n).multipliedFullWidth(by: next()).high)
    }
}

extension InputDistribution {
    /// Writes one input `x` drawn from this law, of dimension `d = x.count`.
    @inlinable
    public func sample(into x: inout MutableSpan<Double>, using g: inout Xoshiro256StarStar) {
        x.withUnsafeMutableBufferPointer { sample(into: $0.baseAddress!, dimension: $0.count, using: &g) }
    }

    /// The engine's form of ``sample(into:using:)``: `d` values at `x`.
    @inlinable
    func sample(into x: UnsafeMutablePointer<Double>, dimension d: Int, using g: inout Xoshiro256StarStar) {
        switch self {
        case .gaussian: g.fillStandardNormal(x, count: d)
        case .sphere: g.fillUniformOnSphere(x, dimension: d)
        }
    }

    /// `n` inputs, row-major `n x d`.
    public func sample(count n: Int, dimension d: Int, using g: inout Xoshiro256StarStar) -> [Double] {
        var x = [Double](repeating: 0, count: n * d)
        x.withUnsafeMutableBufferPointer { p in
            for i in 0 ..< n { sample(into: p.baseAddress! + i * d, dimension: d, using: &g) }
        }
        return x
    }
}

/// The initial law of the particles: `a ~ N(a.mean, a.std^2)` (trained second layer only) and
/// `w ~ N(w.mean, w.std^2 I_d)`, all coordinates independent.
///
/// `wMean` is one number broadcast to every coordinate, or a vector of length `d`.
public struct InitialLaw: Sendable {
    public var aMean: Double
    public var aStd: Double
    /// Length 1 (broadcast) or `d`.
    public var wMean: [Double]
    public var wStd: Double

    public init(aMean: Double = 1, aStd: Double = 0, wMean: [Double], wStd: Double) {
        self.aMean = aMean
        self.aStd = aStd
        self.wMean = wMean
        self.wStd = wStd
    }

    public init(aMean: Double = 1, aStd: Double = 0, wMean: Double = 0, wStd: Double) {
        self.init(aMean: aMean, aStd: aStd, wMean: [wMean], wStd: wStd)
    }

    /// - Throws: ``MeanFieldError`` naming ``MeanFieldParameter/secondLayerMean``, ``MeanFieldParameter/secondLayerSpread``,
    ///   ``MeanFieldParameter/firstLayerMean`` or ``MeanFieldParameter/firstLayerSpread``.
    public func validate(inputDimension d: Int) throws {
        try require(aMean.isFinite, .secondLayerMean, "\(aMean)", "must be finite")
        try require(aStd.isFinite && aStd >= 0, .secondLayerSpread, "\(aStd)", "must be finite and >= 0")
        if wMean.count != 1 && wMean.count != d {
            throw MeanFieldError.lengthMismatch(parameter: .firstLayerMean, expected: d, actual: wMean.count)
        }
        try requireFinite(wMean, .firstLayerMean)
        try require(wStd.isFinite && wStd >= 0, .firstLayerSpread, "\(wStd)", "must be finite and >= 0")
    }

    /// `count` particles, row-major `count x D`. Draws `count * D` normals in one pass (row by
    /// row, `a` first), so the particles depend only on the generator state, `count` and `D`.
    public func sample(model: NetworkModel, count: Int, using g: inout Xoshiro256StarStar) -> [Double] {
        let D = model.parameterDimension, d = model.inputDimension, o = model.weightOffset
        var p = [Double](repeating: 0, count: count * D)
        p.withUnsafeMutableBufferPointer { b in
            g.fillStandardNormal(b.baseAddress!, count: count * D)
            for j in 0 ..< count {
                if o == 1 { b[j * D] = aMean + aStd * b[j * D] }
                for k in 0 ..< d {
                    let mean = wMean.count == 1 ? wMean[0] : wMean[k]
                    b[j * D + o + k] = mean + wStd * b[j * D + o + k]
                }
            }
        }
        return p
    }
}
