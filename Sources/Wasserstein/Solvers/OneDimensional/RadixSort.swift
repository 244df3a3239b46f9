/// Sorting of `Double` keys for the one-dimensional solver.
///
/// Large inputs use a least-significant-digit radix sort on the order-preserving integer image
/// of the IEEE bit patterns: `O(n)` work in six passes of 11 bits, each pass a histogram-driven
/// scatter between two buffers. Passes in which every key has the same digit (common for the
/// exponent bits of data in a narrow range) are skipped. Small inputs use the standard library
/// sort, which wins below a few thousand elements.
enum RadixSort {
    /// Below this many keys the comparison sort is used.
    static let threshold = 4096
    static let digitBits = 11
    static let bucketCount = 1 << digitBits
    static let passCount = (64 + digitBits - 1) / digitBits

    /// The unsigned integer whose order is the order of `x` (negatives flipped, positives
    /// shifted above them). NaN never reaches here: point clouds are validated finite.
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
        let n = values.count
        if n < threshold {
            var sortable = values
            sortable.sort()
            return
        }
        let keys = UnsafeMutableBufferPointer<UInt64>.allocate(capacity: n)
        let spare = UnsafeMutableBufferPointer<UInt64>.allocate(capacity: n)
        defer { keys.deallocate(); spare.deallocate() }
        for k in 0 ..< n { keys[k] = orderedBits(values[k]) }
        let sorted = sortKeys(keys, spare, payload: nil, payloadSpare: nil)
        for k in 0 ..< n { values[k] = double(fromOrderedBits: sorted.keys[k]) }
    }

    /// Sorts `values` ascending and applies the same permutation to `indices`, so that
    /// `indices[k]` tells where the `k`-th smallest value came from. Ties keep their order.
    static func sort(_ values: UnsafeMutableBufferPointer<Double>, carrying indices: UnsafeMutableBufferPointer<UInt32>) {
        let n = values.count
        precondition(indices.count == n)
        if n < threshold {
            var pairs = [(Double, UInt32)]()
            pairs.reserveCapacity(n)
            for k in 0 ..< n { pairs.append((values[k], indices[k])) }
            pairs.sort { $0.0 < $1.0 || ($0.0 == $1.0 && $0.1 < $1.1) }
            for k in 0 ..< n { values[k] = pairs[k].0; indices[k] = pairs[k].1 }
            return
        }
        let keys = UnsafeMutableBufferPointer<UInt64>.allocate(capacity: n)
        let spare = UnsafeMutableBufferPointer<UInt64>.allocate(capacity: n)
        let payloadSpare = UnsafeMutableBufferPointer<UInt32>.allocate(capacity: n)
        defer { keys.deallocate(); spare.deallocate(); payloadSpare.deallocate() }
        for k in 0 ..< n { keys[k] = orderedBits(values[k]) }
        let sorted = sortKeys(keys, spare, payload: indices, payloadSpare: payloadSpare)
        for k in 0 ..< n { values[k] = double(fromOrderedBits: sorted.keys[k]) }
        if let p = sorted.payload, p.baseAddress != indices.baseAddress {
            indices.baseAddress!.update(from: p.baseAddress!, count: n)
        }
    }

    /// LSD radix sort of `keys` (using `spare`), optionally permuting a payload alongside.
    /// Returns the buffers that hold the result (the input or the spare, by pass parity).
    private static func sortKeys(_ keys: UnsafeMutableBufferPointer<UInt64>, _ spare: UnsafeMutableBufferPointer<UInt64>,
                                 payload: UnsafeMutableBufferPointer<UInt32>?, payloadSpare: UnsafeMutableBufferPointer<UInt32>?)
        -> (keys: UnsafeMutableBufferPointer<UInt64>, payload: UnsafeMutableBufferPointer<UInt32>?)
    {
        let n = keys.count
        let histograms = UnsafeMutablePointer<Int>.allocate(capacity: passCount * bucketCount)
        defer { histograms.deallocate() }
        histograms.initialize(repeating: 0, count: passCount * bucketCount)
        let mask = UInt64(bucketCount - 1)
        // All digit histograms in one read of the keys.
        for k in 0 ..< n {
            var key = keys[k]
            for p in 0 ..< passCount {
                histograms[p &* bucketCount &+ Int(key & mask)] &+= 1
                key >>= UInt64(digitBits)
            }
        }
        var source = keys, target = spare
        var sourcePayload = payload, targetPayload = payloadSpare
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
            let shift = UInt64(p * digitBits)
            let src = source.baseAddress!, dst = target.baseAddress!
            if let sp = sourcePayload?.baseAddress, let tp = targetPayload?.baseAddress {
                for k in 0 ..< n {
                    let key = src[k]
                    let b = Int((key >> shift) & mask)
                    let o = offsets[b]
                    dst[o] = key
                    tp[o] = sp[k]
                    offsets[b] = o &+ 1
                }
                swap(&sourcePayload, &targetPayload)
            } else {
                for k in 0 ..< n {
                    let key = src[k]
                    let b = Int((key >> shift) & mask)
                    let o = offsets[b]
                    dst[o] = key
                    offsets[b] = o &+ 1
                }
            }
            swap(&source, &target)
        }
        return (source, sourcePayload)
    }
}
