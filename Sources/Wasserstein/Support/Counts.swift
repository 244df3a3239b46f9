extension Int {
    /// A count derived from a ratio of doubles (steps `horizon / tau`, a kernel's reach in grid
    /// cells), truncated towards zero and clamped to `0 ... limit`, NaN counting as 0.
    ///
    /// `Int(_:)` traps on NaN and beyond `Int.max`; a spec with `tau = 1e-300` or a kernel
    /// with `gamma = 1e300` must end in a clear error or a capped loop, never in that trap.
    /// Callers that must refuse large counts compare against their limit first; this is for the
    /// conversion itself.
    public init(clampingCount value: Double, limit: Int) {
        if !(value > 0) {
            self = 0
        } else if value >= Double(limit) {
            self = limit
        } else {
            self = Int(value)
        }
    }
}
