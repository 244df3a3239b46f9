// The symmetry reduction of the single-neuron (or few-neuron) teacher setting.
//
// Gaussian inputs x ~ N(0, I_d); the teacher's neurons span a k-dimensional subspace E
// (k = 1 or 2) with orthonormal basis e_1 ... e_k; the orthogonal complement has dimension
// n = d - k. The data law is invariant under every rotation fixing E pointwise, so a law of
// parameters that is invariant under those rotations stays invariant along the flow, and is
// the image of a law rho_bar of the reduced coordinates
//
//     z = (a, s_1, ..., s_k, r),   s_l = <w, e_l>,   r = |P_perp w| >= 0
//
// (no `a` with a fixed second layer) with the direction u = P_perp w / r uniform on the sphere
// S^(n-1) and independent of z. Everything the flow needs (V, U, Psi, the risk) is a function
// of z: see ReducedKernels.

/// The input dimension of a reduced setting: a finite `d`, or the limit `d -> infinity`.
public enum ReducedDimension: Sendable, Equatable, CustomStringConvertible {
    case finite(Int)
    /// The limit `d -> infinity`: two independent directions on a huge sphere are orthogonal
    /// (`t = <u, u'> = 0`), and the symmetric initial law `N(0, gamma^2/d I_d)` becomes
    /// `s = 0`, `r = gamma`.
    case infinity

    /// `d`, or `nil` for infinity.
    public var value: Int? {
        if case .finite(let d) = self { return d }
        return nil
    }

    /// `"20"` or `"infinity"` (the spec's spelling).
    public var description: String {
        switch self {
        case .finite(let d): return "\(d)"
        case .infinity: return "infinity"
        }
    }
}

/// The teacher in the coordinates of its own span: `y = sum_j c_j s*(<w*_j, x>) + noise` with
/// every `w*_j` in the span `E` of dimension `k`, given by its `k` coordinates in an
/// orthonormal basis of `E`.
///
/// A single neuron `w*` of norm `|w*|` is `directions: [[|w*|]]` (`k = 1`); a linear teacher
/// `<b*, x>` is `directions: [[|b*|]]` with `activation: .linear`. ``init(teacher:inputDimension:)``
/// computes these coordinates from a full-dimensional ``Teacher``.
public struct ReducedTeacher: Sendable {
    /// One row per teacher neuron, each with `k` coordinates in the basis of the span.
    public var directions: [[Double]]
    /// `c_j`, one per neuron.
    public var coefficients: [Double]
    /// The standard deviation of the centred Gaussian label noise.
    public var noise: Double
    /// The teacher's activation `s*`; `nil`: the student's.
    public var activation: Activation?

    /// - Throws: ``MeanFieldError`` naming `teacher.directions` (empty, ragged, `k` not 1 or 2,
    ///   not finite), `teacher.coefficients` or `teacher.noise`.
    public init(directions: [[Double]], coefficients: [Double]? = nil, noise: Double = 0, activation: Activation? = nil) throws {
        try require(!directions.isEmpty, .teacherDirections, "[]", "needs at least one direction")
        let k = directions[0].count
        try require(k == 1 || k == 2, .teacherDirections, "\(directions)",
                    "the reduced flow needs teacher directions in a span of dimension k = 1 or 2 (one or two coordinates each)")
        for dir in directions {
            if dir.count != k { throw MeanFieldError.lengthMismatch(parameter: .teacherDirections, expected: k, actual: dir.count) }
            try requireFinite(dir, .teacherDirections)
        }
        let c = coefficients ?? [Double](repeating: 1, count: directions.count)
        if c.count != directions.count {
            throw MeanFieldError.lengthMismatch(parameter: .teacherCoefficients, expected: directions.count, actual: c.count)
        }
        try requireFinite(c, .teacherCoefficients)
        try require(noise.isFinite && noise >= 0, .teacherNoise, "\(noise)", "must be a finite standard deviation >= 0")
        self.directions = directions
        self.coefficients = c
        self.noise = noise
        self.activation = activation
    }

    /// The reduced form of a full-dimensional teacher, with the orthonormal basis of its span
    /// (Gram-Schmidt on the directions in order, dropping directions within `1e-10` relative
    /// of the span so far). The basis maps full particles to `z`
    /// (``ReducedLaw/init(projecting:model:basis:)``).
    ///
    /// - Throws: ``MeanFieldError`` naming `teacher.directions` when the directions span more
    ///   than two dimensions or are all zero, or when the teacher does not fit `d`.
    public init(teacher: Teacher, inputDimension d: Int) throws {
        try teacher.validate(inputDimension: d)
        let full: [[Double]], c: [Double], act: Activation?
        switch teacher {
        case .neurons(let dirs, let coefficients, _, let own):
            full = dirs; c = coefficients; act = own
        case .linear(let b, _):
            full = [b]; c = [1]; act = .linear
        }
        var basis = [[Double]]()
        for dir in full {
            var v = dir
            for e in basis {
                let p = zip(v, e).reduce(0) { $0 + $1.0 * $1.1 }
                for t in 0 ..< d { v[t] -= p * e[t] }
            }
            let norm = v.reduce(0) { $0 + $1 * $1 }.squareRoot()
            let scale = dir.reduce(0) { $0 + $1 * $1 }.squareRoot()
            if norm > 1e-10 * scale { basis.append(v.map { $0 / norm }) }
        }
        try require(!basis.isEmpty, .teacherDirections, "all zero", "needs a non-zero direction")
        try require(basis.count <= 2, .teacherDirections, "spanning \(basis.count) dimensions",
                    "the reduced flow handles teachers spanning k = 1 or 2 directions")
        try require(basis.count < d, .teacherDirections, "spanning all of R^\(d)",
                    "the reduced flow needs an orthogonal complement (k < d)")
        let coordinates = full.map { dir in basis.map { e in zip(dir, e).reduce(0) { $0 + $1.0 * $1.1 } } }
        try self.init(directions: coordinates, coefficients: c, noise: teacher.noise, activation: act)
        self.basis = basis
    }

    /// The orthonormal basis of the span in `R^d` when built from a full teacher, else `nil`.
    public private(set) var basis: [[Double]]? = nil

    /// `k`, the dimension of the teacher's span.
    public var spanDimension: Int { directions[0].count }
}

/// Everything the reduced kernels depend on: the student, the dimension and the teacher.
/// Inputs are Gaussian.
public struct ReducedSetting: Sendable {
    /// The student's activation `s`.
    public var activation: Activation
    public var secondLayer: SecondLayer
    public var inputDimension: ReducedDimension
    public var teacher: ReducedTeacher

    /// - Throws: ``MeanFieldError`` naming `model.input_dimension` when `d <= k` (the
    ///   orthogonal complement must have dimension `n = d - k >= 1`).
    public init(activation: Activation, secondLayer: SecondLayer = .trained, inputDimension: ReducedDimension,
                teacher: ReducedTeacher) throws {
        if case .finite(let d) = inputDimension {
            try require(d > teacher.spanDimension, .inputDimension, "\(d)",
                        "must exceed the teacher span's dimension k = \(teacher.spanDimension)")
        }
        self.activation = activation
        self.secondLayer = secondLayer
        self.inputDimension = inputDimension
        self.teacher = teacher
    }

    /// `k`.
    public var spanDimension: Int { teacher.spanDimension }

    /// `n = d - k`, the dimension of the orthogonal complement (`nil` at infinity).
    public var orthogonalDimension: Int? { inputDimension.value.map { $0 - spanDimension } }

    /// The number of reduced coordinates: `(a,) s_1 ... s_k, r`.
    public var coordinateCount: Int { (secondLayer == .trained ? 1 : 0) + spanDimension + 1 }

    /// The column of `s_1` in a point `z` (1 with a trained second layer, else 0); `r` is the
    /// last column.
    public var overlapOffset: Int { secondLayer == .trained ? 1 : 0 }

    /// The teacher's activation.
    public var teacherActivation: Activation { teacher.activation ?? activation }
}
