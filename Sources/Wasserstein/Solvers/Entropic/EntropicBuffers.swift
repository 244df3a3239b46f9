/// A manually managed, growable `Double` buffer.
///
/// The Sinkhorn workspace hands raw pointers to its hot loops (and to the worker threads of
/// ``Parallel``); owning the memory directly keeps those pointers stable across calls and avoids
/// the copy-on-write checks of `Array` inside the loops.
@usableFromInline
internal final class GrowableBuffer {
    @usableFromInline private(set) var pointer: UnsafeMutablePointer<Double>
    @usableFromInline private(set) var capacity: Int

    init() {
        capacity = 1
        pointer = .allocate(capacity: 1)
        pointer.initialize(to: 0)
    }

    deinit { pointer.deallocate() }

    /// Makes room for `count` values and returns the base pointer. Contents are kept only
    /// when no reallocation happens; callers always overwrite what they read.
    @discardableResult
    func reserve(_ count: Int) -> UnsafeMutablePointer<Double> {
        if count > capacity {
            pointer.deallocate()
            capacity = count
            pointer = .allocate(capacity: count)
            pointer.initialize(repeating: 0, count: count)
        }
        return pointer
    }

    /// Frees the memory above one value (for callers that want the workspace to shrink).
    func release() {
        pointer.deallocate()
        capacity = 1
        pointer = .allocate(capacity: 1)
        pointer.initialize(to: 0)
    }
}
