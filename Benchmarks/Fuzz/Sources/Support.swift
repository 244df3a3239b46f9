// Shared by the three fuzz targets (compiled into each). See ../README.md.
/// A broken invariant: print what and trap, which libFuzzer reports as a crash and saves the
/// input. Thrown errors are never findings; only traps, crashes, hangs, leaks and these are.
func require(_ condition: Bool, _ message: @autoclosure () -> String) {
    if !condition { fatalError("fuzz invariant failed: \(message())") }
}

/// The fuzzer's input as an array.
func inputBytes(_ data: UnsafePointer<UInt8>?, _ size: Int) -> [UInt8] {
    guard let data, size > 0 else { return [] }
    return Array(UnsafeBufferPointer(start: data, count: size))
}

/// Equal as bit patterns (`bitwise`, for binary round trips) or as numbers (text writes `-0`
/// as `0`); any NaN equals any NaN either way (text loses a NaN's sign and payload).
func sameValues(_ a: [Double], _ b: [Double], bitwise: Bool) -> Bool {
    guard a.count == b.count else { return false }
    for i in a.indices where !(a[i].isNaN && b[i].isNaN) {
        if bitwise ? a[i].bitPattern != b[i].bitPattern : a[i] != b[i] { return false }
    }
    return true
}
