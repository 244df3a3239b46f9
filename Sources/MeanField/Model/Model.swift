/// The law of the inputs `x` in R^d.
public enum InputDistribution: String, Sendable, CaseIterable {
    /// `x ~ N(0, I_d)`.
    case gaussian
    /// `x` uniform on the unit sphere `S^{d-1}` (so `E[x x^T] = I_d / d`).
    case sphere
}

/// Whether the second-layer weights `a_j` are trained.
public enum SecondLayer: String, Sendable, CaseIterable {
    /// `theta = (a, w)`, `D = d + 1`; particle rows are stored as `[a, w_1, ..., w_d]`.
    case trained
    /// `a = 1`, `theta = w`, `D = d`.
    case fixed
}

/// The two-layer mean-field network `f(x; Theta) = (1/M) sum_j sigma_*(x; theta_j)` with one
/// neuron `sigma_*(x; theta) = a * s(<w, x>)`.
///
/// Maps onto the spec keys `model.activation`, `model.input_dimension`, `model.second_layer`,
/// `model.inputs`.
public struct NetworkModel: Sendable {
    /// The activation `s`.
    public var activation: Activation
    /// The input dimension `d >= 1`.
    public var inputDimension: Int
    /// Trained (`theta = (a, w)`) or fixed (`a = 1`) second layer.
    public var secondLayer: SecondLayer
    /// The law of the inputs.
    public var inputs: InputDistribution

    /// - Throws: ``MeanFieldError/invalidSetting(key:value:requirement:)`` for `d < 1`.
    public init(activation: Activation, inputDimension: Int, secondLayer: SecondLayer = .trained,
                inputs: InputDistribution = .gaussian) throws {
        try require(inputDimension >= 1, .inputDimension, "\(inputDimension)", "must be >= 1")
        self.activation = activation
        self.inputDimension = inputDimension
        self.secondLayer = secondLayer
        self.inputs = inputs
    }

    /// The dimension `D` of one particle: `d + 1` when the second layer is trained, else `d`.
    public var parameterDimension: Int { secondLayer == .trained ? inputDimension + 1 : inputDimension }

    /// The column of `a` in a particle row (0), or `nil` for a fixed second layer; `w` starts at
    /// ``weightOffset``.
    public var weightOffset: Int { secondLayer == .trained ? 1 : 0 }

    /// One neuron's output `sigma_*(x; theta)` for a particle row `theta` (length `D`).
    public func neuron(_ theta: [Double], at x: [Double]) -> Double {
        let o = weightOffset
        var u = 0.0
        for k in 0 ..< inputDimension { u += theta[o + k] * x[k] }
        let a = secondLayer == .trained ? theta[0] : 1
        return a * activation.value(u)
    }

    /// The network output `f(x; Theta) = (1/M) sum_j sigma_*(x; theta_j)` for particles stored
    /// row-major (`M x D`). Cost `O(M d)`.
    public func output(particles: [Double], at x: [Double]) -> Double {
        let D = parameterDimension, o = weightOffset
        let m = particles.count / D
        var f = 0.0
        particles.withUnsafeBufferPointer { p in
            for j in 0 ..< m {
                var u = 0.0
                for k in 0 ..< inputDimension { u += p[j * D + o + k] * x[k] }
                let a = o == 1 ? p[j * D] : 1
                f += a * activation.value(u)
            }
        }
        return f / Double(m)
    }
}

/// The target `y` given `x`.
///
/// Maps onto the spec key `teacher`: `{"kind": "neurons", "directions": [[...]],
/// "coefficients": [...], "noise": s, "activation": "he2"}` or `{"kind": "linear",
/// "coefficients": [...], "noise": s}`. `noise` is the standard deviation `s` of an independent
/// centred Gaussian label noise.
public enum Teacher: Sendable {
    /// `y = sum_k c_k s*(<w*_k, x>) + noise`, with `s*` the teacher's `activation`, or the
    /// student's activation when it is `nil` (a teacher the student can represent exactly).
    case neurons(directions: [[Double]], coefficients: [Double], noise: Double, activation: Activation? = nil)
    /// `y = <b*, x> + noise`.
    case linear(coefficients: [Double], noise: Double)

    /// The single neuron `y = s(<w*, x>) + noise` of the lecture.
    public static func singleNeuron(_ direction: [Double], noise: Double = 0) -> Teacher {
        .neurons(directions: [direction], coefficients: [1], noise: noise)
    }

    /// The label-noise standard deviation `s`.
    public var noise: Double {
        switch self {
        case .neurons(_, _, let s, _), .linear(_, let s): return s
        }
    }

    /// Checks the shapes against the input dimension `d` and the values for finiteness.
    ///
    /// - Throws: ``MeanFieldError`` naming `teacher.directions`, `teacher.coefficients` or
    ///   `teacher.noise`.
    public func validate(inputDimension d: Int) throws {
        switch self {
        case .neurons(let directions, let coefficients, let noise, _):
            try require(!directions.isEmpty, .teacherDirections, "[]", "needs at least one direction")
            if directions.count != coefficients.count {
                throw MeanFieldError.lengthMismatch(parameter: .teacherCoefficients, expected: directions.count, actual: coefficients.count)
            }
            for dir in directions {
                if dir.count != d { throw MeanFieldError.lengthMismatch(parameter: .teacherDirections, expected: d, actual: dir.count) }
                try requireFinite(dir, .teacherDirections)
            }
            try requireFinite(coefficients, .teacherCoefficients)
            try require(noise.isFinite && noise >= 0, .teacherNoise, "\(noise)", "must be a finite standard deviation >= 0")
        case .linear(let b, let noise):
            if b.count != d { throw MeanFieldError.lengthMismatch(parameter: .teacherCoefficients, expected: d, actual: b.count) }
            try requireFinite(b, .teacherCoefficients)
            try require(noise.isFinite && noise >= 0, .teacherNoise, "\(noise)", "must be a finite standard deviation >= 0")
        }
    }

    /// The teacher's activation given the student's (`linear` for a linear teacher).
    public func activation(student: Activation) -> Activation {
        switch self {
        case .neurons(_, _, _, let a): return a ?? student
        case .linear: return .linear
        }
    }

    /// The noiseless target `E[y | x]` (the student's activation `s` is needed for `neurons`
    /// without an activation of their own).
    public func mean(at x: [Double], activation: Activation) -> Double {
        switch self {
        case .neurons(let directions, let coefficients, _, let own):
            let act = own ?? activation
            var y = 0.0
            for (dir, c) in zip(directions, coefficients) {
                var u = 0.0
                for k in 0 ..< x.count { u += dir[k] * x[k] }
                y += c * act.value(u)
            }
            return y
        case .linear(let b, _):
            var y = 0.0
            for k in 0 ..< x.count { y += b[k] * x[k] }
            return y
        }
    }
}
