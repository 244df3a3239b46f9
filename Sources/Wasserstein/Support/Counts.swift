extension Int {
    /// An integer derived from a double (a step count `horizon / tau`, a kernel's reach in grid
    /// cells, a tick exponent), truncated towards zero and clamped into `range`, NaN giving
    /// `range.lowerBound`.
    ///
    /// `Int(_:)` traps on NaN and beyond `Int.max`; a spec with `tau = 1e-300` or a kernel with
    /// `gamma = 1e300` must end in a clear error or a capped loop, never in that trap. This and
    /// ``init(clampingCount:limit:)`` are the only conversions from a floating-point value to
    /// `Int` in the package (a source test refuses a bare `Int(` of a floating-point expression).
    /// Callers that must refuse large values compare against their limit first; this is for the
    /// conversion itself.
    public init(clamping value: Double, to range: ClosedRange<Int>) {
        if value.isNaN || value <= Double(range.lowerBound) {
            self = range.lowerBound
        } else if value >= Double(range.upperBound) {
            self = range.upperBound
        } else {
            self = Int(value)
        }
    }

    /// A count derived from a ratio of doubles, truncated towards zero and clamped to
    /// `0 ... limit`, NaN counting as 0: ``init(clamping:to:)`` on `0 ... limit`.
    public init(clampingCount value: Double, limit: Int) {
        self.init(clamping: value, to: 0 ... Swift.max(0, limit))
    }
}
