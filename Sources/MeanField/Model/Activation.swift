#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A user-supplied activation `s` with its derivative `s'`.
///
/// Custom activations have no closed-form kernel: their `V` and `U` are computed by quadrature
/// (see ``PopulationRisk``). The derivative is trusted; ``PopulationRisk`` does not check it.
public struct CustomActivation: Sendable {
    /// How error messages and summaries refer to it.
    public let name: String
    /// `s(u)`.
    public let value: @Sendable (Double) -> Double
    /// `s'(u)`.
    public let derivative: @Sendable (Double) -> Double

    public init(name: String, value: @escaping @Sendable (Double) -> Double,
                derivative: @escaping @Sendable (Double) -> Double) {
        self.name = name
        self.value = value
        self.derivative = derivative
    }
}

/// The scalar activation `s` of a neuron `a * s(<w, x>)`.
///
/// `relu(u) = max(u, 0)` (derivative taken as 0 at u = 0), `erf(u)` (the error function, not
/// rescaled), `tanh(u)`, `sigmoid(u) = 1 / (1 + e^-u)`, `linear(u) = u`, and
/// `he2(u) = u^2 - 1`, the second (probabilists') Hermite polynomial.
///
/// `he2` exists for teachers: a target `y = He_2(<w*, x>)` has information exponent 2 (its
/// correlation with any first-order feature `<w, x>` vanishes), so learning it starts from a
/// saddle instead of a slope. As a student activation it is allowed too (its kernels then come
/// from quadrature, exact for this polynomial).
public enum Activation: Sendable, CustomStringConvertible {
    case relu, erf, tanh, sigmoid, linear, he2
    case custom(CustomActivation)

    /// Parses the spec name (`relu`, `erf`, `tanh`, `sigmoid`, `linear`, `he2`); custom
    /// activations cannot be named in a spec.
    public init?(name: String) {
        switch name.lowercased() {
        case "relu": self = .relu
        case "erf": self = .erf
        case "tanh": self = .tanh
        case "sigmoid": self = .sigmoid
        case "linear", "identity": self = .linear
        case "he2", "hermite2": self = .he2
        default: return nil
        }
    }

    public var description: String {
        switch self {
        case .relu: return "relu"
        case .erf: return "erf"
        case .tanh: return "tanh"
        case .sigmoid: return "sigmoid"
        case .linear: return "linear"
        case .he2: return "he2"
        case .custom(let c): return c.name
        }
    }

    /// `s(u)`.
    public func value(_ u: Double) -> Double {
        switch self {
        case .relu: return ReLUFunction().value(u)
        case .erf: return ErfFunction().value(u)
        case .tanh: return TanhFunction().value(u)
        case .sigmoid: return SigmoidFunction().value(u)
        case .linear: return u
        case .he2: return u * u - 1
        case .custom(let c): return c.value(u)
        }
    }

    /// `s'(u)`.
    public func derivative(_ u: Double) -> Double {
        switch self {
        case .relu: return ReLUFunction().derivative(u)
        case .erf: return ErfFunction().derivative(u)
        case .tanh: return TanhFunction().derivative(u)
        case .sigmoid: return SigmoidFunction().derivative(u)
        case .linear: return 1
        case .he2: return 2 * u
        case .custom(let c): return c.derivative(u)
        }
    }

    /// Whether `s(c u) = c s(u)` for `c >= 0` (relu, linear): then kernels on the sphere are the
    /// Gaussian ones divided by `d`.
    var isPositivelyHomogeneous: Bool {
        switch self {
        case .relu, .linear: return true
        default: return false
        }
    }
}

/// A scalar function with its derivative, as a concrete type so that hot loops specialise.
protocol ScalarFunction: Sendable {
    func value(_ u: Double) -> Double
    func derivative(_ u: Double) -> Double
    /// `(s(u), s'(u))`, sharing work where the two have common parts.
    func valueAndDerivative(_ u: Double) -> (Double, Double)
    /// Four lanes of ``valueAndDerivative(_:)`` (packed code for tanh, sigmoid, relu, linear;
    /// lane by lane otherwise).
    func valueAndDerivative4(_ u: SIMD4<Double>) -> (SIMD4<Double>, SIMD4<Double>)
}

extension ScalarFunction {
    @inline(__always) func valueAndDerivative(_ u: Double) -> (Double, Double) { (value(u), derivative(u)) }

    @inline(__always) func valueAndDerivative4(_ u: SIMD4<Double>) -> (SIMD4<Double>, SIMD4<Double>) {
        let (v0, d0) = valueAndDerivative(u[0]), (v1, d1) = valueAndDerivative(u[1])
        let (v2, d2) = valueAndDerivative(u[2]), (v3, d3) = valueAndDerivative(u[3])
        return (SIMD4(v0, v1, v2, v3), SIMD4(d0, d1, d2, d3))
    }
}

struct ReLUFunction: ScalarFunction {
    @inline(__always) func value(_ u: Double) -> Double { u > 0 ? u : 0 }
    @inline(__always) func derivative(_ u: Double) -> Double { u > 0 ? 1 : 0 }
    @inline(__always) func valueAndDerivative4(_ u: SIMD4<Double>) -> (SIMD4<Double>, SIMD4<Double>) {
        let positive = u .> 0
        return (SIMD4(repeating: 0).replacing(with: u, where: positive), SIMD4(repeating: 0).replacing(with: 1, where: positive))
    }
}

struct ErfFunction: ScalarFunction {
    @inline(__always) func value(_ u: Double) -> Double { erf(u) }
    @inline(__always) func derivative(_ u: Double) -> Double { 1.1283791670955126 * exp(-u * u) }
}

struct TanhFunction: ScalarFunction {
    @inline(__always) func value(_ u: Double) -> Double { tanh(u) }
    @inline(__always) func derivative(_ u: Double) -> Double {
        let t = tanh(u)
        return 1 - t * t
    }
    @inline(__always) func valueAndDerivative(_ u: Double) -> (Double, Double) {
        let t = tanh(u)
        return (t, 1 - t * t)
    }
}

struct SigmoidFunction: ScalarFunction {
    @inline(__always) func value(_ u: Double) -> Double {
        // Written so that neither branch overflows.
        if u >= 0 { return 1 / (1 + exp(-u)) }
        let e = exp(u)
        return e / (1 + e)
    }
    @inline(__always) func derivative(_ u: Double) -> Double {
        let s = value(u)
        return s * (1 - s)
    }
    @inline(__always) func valueAndDerivative(_ u: Double) -> (Double, Double) {
        let s = value(u)
        return (s, s * (1 - s))
    }
}

struct IdentityFunction: ScalarFunction {
    @inline(__always) func value(_ u: Double) -> Double { u }
    @inline(__always) func derivative(_ u: Double) -> Double { 1 }
    @inline(__always) func valueAndDerivative4(_ u: SIMD4<Double>) -> (SIMD4<Double>, SIMD4<Double>) { (u, SIMD4(repeating: 1)) }
}

struct HermiteTwoFunction: ScalarFunction {
    @inline(__always) func value(_ u: Double) -> Double { u * u - 1 }
    @inline(__always) func derivative(_ u: Double) -> Double { 2 * u }
    @inline(__always) func valueAndDerivative4(_ u: SIMD4<Double>) -> (SIMD4<Double>, SIMD4<Double>) { (u * u - 1, 2 * u) }
}

struct ClosureFunction: ScalarFunction {
    let custom: CustomActivation
    @inline(__always) func value(_ u: Double) -> Double { custom.value(u) }
    @inline(__always) func derivative(_ u: Double) -> Double { custom.derivative(u) }
}

/// Calls `body` with the activation as a concrete ``ScalarFunction`` (one switch, then
/// specialised code).
protocol ScalarFunctionVisitor {
    associatedtype Output
    func visit<F: ScalarFunction>(_ f: F) -> Output
}

extension Activation {
    func accept<V: ScalarFunctionVisitor>(_ visitor: V) -> V.Output {
        switch self {
        case .relu: return visitor.visit(ReLUFunction())
        case .erf: return visitor.visit(ErfFunction())
        case .tanh: return visitor.visit(TanhFunction())
        case .sigmoid: return visitor.visit(SigmoidFunction())
        case .linear: return visitor.visit(IdentityFunction())
        case .he2: return visitor.visit(HermiteTwoFunction())
        case .custom(let c): return visitor.visit(ClosureFunction(custom: c))
        }
    }
}
