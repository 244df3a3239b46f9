/// Sorting of `Double` values for the one-dimensional solver.
///
/// Values are mapped to order-preserving `UInt64` keys (negatives bit-flipped, positives with
/// the sign bit set), and the keys are sorted by a least-significant-digit radix sort: six
/// passes of 11 bits, each a histogram-driven scatter between two buffers, `O(n)` work and no
/// comparisons. All six histograms are filled during the conversion pass, and passes in which
/// every key has the same digit are skipped. The caller reads values back through
/// ``SortedKeys/value(_:)``, so no back-conversion pass is needed. Small inputs use the
/// standard library's comparison sort.
enum RadixSort {
    /// Below this many values the comparison sort is used.
    static let threshold = 4096
    static let digitBits = 11
    static let bucketCount = 1 << digitBits
    static let passCount = (64 + digitBits - 1) / digitBits

    /// The unsigned integer whose order is the order of `x`. NaN never reaches here: point
    /// clouds are validated finite.
    @inline(__always)
    static func orderedBits(_ x: Double) -> UInt64 {
        let b = x.bitPattern
        return b >> 63 == 1 ? ~b : b | (1 << 63)
    }

    @inline(__always)
    static func double(fromOrderedBits k: UInt64) -> Double {
        Double(bitPattern: k >> 63 == 1 ? k & ~(1 << 63) : ~k)
    }

    /// Sorts `values` in place, ascending.
    static func sort(_ values: UnsafeMutableBufferPointer<Double>) {
        let sorted = SortedKeys(values: UnsafeBufferPointer(values), withIndices: false)
        for k in 0 ..< values.count { values[k] = sorted.value(k) }
    }

    /// Sorts `values` ascending and applies the same permutation to `indices`.
    static func sort(_ values: UnsafeMutableBufferPointer<Double>, carrying indices: UnsafeMutableBufferPointer<UInt32>) {
        precondition(indices.count == values.count)
        let sorted = SortedKeys(values: UnsafeBufferPointer(values), withIndices: true)
        let original = Array(indices)
        for k in 0 ..< values.count {
            values[k] = sorted.value(k)
            indices[k] = original[Int(sorted.indices![k])]
        }
    }
}

/// The values of a buffer in ascending order, as order-preserving keys, with (optionally) the
/// original position of each: `value(k)` is the `k`-th smallest value and `indices[k]` where it
/// was. Ties keep their original order. Owns its buffers.
final class SortedKeys {
    let count: Int
    private(set) var keys: UnsafeMutableBufferPointer<UInt64>
    private(set) var indices: UnsafeMutableBufferPointer<UInt32>?

    /// Sorts `values` (fewer than `2^32` of them when `withIndices`).
    init(values: UnsafeBufferPointer<Double>, withIndices: Bool) {
        let n = values.count
        count = n
        keys = .allocate(capacity: n)
        indices = withIndices ? .allocate(capacity: n) : nil
        if n < RadixSort.threshold {
            if let ix = indices {
                let order = (0 ..< n).sorted { values[$0] < values[$1] || (values[$0] == values[$1] && $0 < $1) }
                for k in 0 ..< n {
                    keys[k] = RadixSort.orderedBits(values[order[k]])
                    ix[k] = UInt32(truncatingIfNeeded: order[k])
                }
            } else {
                var copy = Array(values)
                copy.sort()
                for k in 0 ..< n { keys[k] = RadixSort.orderedBits(copy[k]) }
            }
            return
        }
        radixSort(values)
    }

    deinit {
        keys.deallocate()
        indices?.deallocate()
    }

    /// The `k`-th smallest value.
    @inline(__always)
    func value(_ k: Int) -> Double { RadixSort.double(fromOrderedBits: keys[k]) }

    private func radixSort(_ values: UnsafeBufferPointer<Double>) {
        let n = count
        let passCount = RadixSort.passCount, bucketCount = RadixSort.bucketCount
        let histograms = UnsafeMutablePointer<Int>.allocate(capacity: passCount * bucketCount)
        defer { histograms.deallocate() }
        histograms.initialize(repeating: 0, count: passCount * bucketCount)
        let mask = UInt64(bucketCount - 1)
        let digitBits = UInt64(RadixSort.digitBits)
        // Conversion and all digit histograms in one read of the values.
        for k in 0 ..< n {
            let key = RadixSort.orderedBits(values[k])
            keys[k] = key
            var rest = key
            for p in 0 ..< passCount {
                histograms[p &* bucketCount &+ Int(rest & mask)] &+= 1
                rest >>= digitBits
            }
        }
        if let ix = indices {
            for k in 0 ..< n { ix[k] = UInt32(truncatingIfNeeded: k) }
        }
        var spare = UnsafeMutableBufferPointer<UInt64>.allocate(capacity: n)
        var spareIndices: UnsafeMutableBufferPointer<UInt32>? = indices == nil ? nil : .allocate(capacity: n)
        let offsets = UnsafeMutablePointer<Int>.allocate(capacity: bucketCount)
        defer { offsets.deallocate() }
        for p in 0 ..< passCount {
            let h = histograms + p * bucketCount
            // A pass where one bucket holds everything leaves the order unchanged.
            var trivial = false
            for b in 0 ..< bucketCount where h[b] != 0 {
                trivial = h[b] == n
                break
            }
            if trivial { continue }
            var running = 0
            for b in 0 ..< bucketCount {
                offsets[b] = running
                running &+= h[b]
            }
            let shift = UInt64(p) * digitBits
            let src = keys.baseAddress!, dst = spare.baseAddress!
            if let sp = indices?.baseAddress, let tp = spareIndices?.baseAddress {
                for k in 0 ..< n {
                    let key = src[k]
                    let b = Int((key >> shift) & mask)
                    let o = offsets[b]
                    dst[o] = key
                    tp[o] = sp[k]
                    offsets[b] = o &+ 1
                }
                swap(&indices, &spareIndices)
            } else {
                for k in 0 ..< n {
                    let key = src[k]
                    let b = Int((key >> shift) & mask)
                    let o = offsets[b]
                    dst[o] = key
                    offsets[b] = o &+ 1
                }
            }
            swap(&keys, &spare)
        }
        spare.deallocate()
        spareIndices?.deallocate()
    }
}
