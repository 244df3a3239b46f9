/// Sorting finite `Double` values by value-range buckets, for the one-dimensional solver's
/// cost-only path, where only the sorted values matter (no permutation).
///
/// Why not the radix sort of ``SortedKeys``: an LSD radix sort reads and scatters the whole
/// array once per digit (six times for 64-bit keys), and each scatter to 2048 buckets misses the
/// cache and the TLB. Here the array is scattered once, into `2^10` buckets of equal value width
/// between the minimum and the maximum (1024 write streams stay within the TLB's reach; 4096
/// measured slower); for any distribution with a density (Gaussian, uniform, mixtures), a bucket
/// then holds some ten thousand values (under 1 MB) and is finished in cache, by the same
/// bucketing applied to its own range (about two values per sub-bucket) and insertion sorts.
/// Buckets that stay large (heavy tails, outliers, clusters) recurse on their own minimum and
/// maximum; after `maximumDepth` levels the standard library's comparison sort takes over, so
/// the worst case stays `O(n log n)`.
///
/// The bucket index `min(top, Int(max(0, (v - lo) * scale)))` is non-decreasing in `v`
/// (IEEE subtraction and multiplication by a positive constant are monotone, and so is the
/// truncation), so concatenating sorted buckets sorts the whole. The result is the ascending
/// sequence of the values, the same as any other sort gives, except that `-0.0` and `+0.0` may
/// appear in either order (they are equal, and every use here only subtracts and squares).
enum BucketSort {
    /// Below this many values the standard library's sort is used.
    static let threshold = 4096
    /// Buckets of the first level (over the whole array).
    static let topLevelBits = 10
    /// Bucket lists up to this size are finished by insertion sort.
    static let insertionSortLimit = 16
    /// Levels of bucketing before a bucket falls back to the comparison sort.
    static let maximumDepth = 8
    /// Nested levels up to this size share one preallocated counter stack; larger ones
    /// allocate their own counters (rare: only skewed data makes buckets this large).
    static let sharedCounterLimit = 8192
    /// The shared counter stack: each nested level takes at most `limit / 2 + 1` counters.
    static let sharedCounterCapacity = maximumDepth * (sharedCounterLimit / 2 + 2)

    /// The values in ascending order, written to `output` (which must hold `values.count`).
    /// NaN must not occur (point clouds are validated finite).
    static func sort(_ values: UnsafeBufferPointer<Double>, into output: UnsafeMutablePointer<Double>) {
        let n = values.count
        guard n > 0 else { return }
        if n < threshold {
            output.initialize(from: values.baseAddress!, count: n)
            var buffer = UnsafeMutableBufferPointer(start: output, count: n)
            buffer.sort()
            return
        }
        var lo = values[0], hi = values[0]
        for v in values {
            lo = min(lo, v)
            hi = max(hi, v)
        }
        let bucketCount = 1 << topLevelBits
        let scale = Double(bucketCount) / (hi - lo)
        guard lo < hi, scale.isFinite, scale > 0 else {
            // All equal, or a range too wide for one division (|hi - lo| overflows).
            output.initialize(from: values.baseAddress!, count: n)
            if lo < hi {
                var buffer = UnsafeMutableBufferPointer(start: output, count: n)
                buffer.sort()
            }
            return
        }
        let top = bucketCount - 1
        let starts = UnsafeMutablePointer<Int>.allocate(capacity: bucketCount + 1)
        defer { starts.deallocate() }
        starts.initialize(repeating: 0, count: bucketCount + 1)
        for v in values {
            starts[min(top, Int(max(0, (v - lo) * scale))) &+ 1] &+= 1
        }
        var largest = 0
        for b in 0 ..< bucketCount {
            largest = max(largest, starts[b + 1])
            starts[b + 1] &+= starts[b]
        }
        // Scatter; `next[b]` runs from the start to the end of bucket b.
        let next = UnsafeMutablePointer<Int>.allocate(capacity: bucketCount)
        defer { next.deallocate() }
        next.initialize(from: starts, count: bucketCount)
        for v in values {
            let b = min(top, Int(max(0, (v - lo) * scale)))
            (output + next[b]).initialize(to: v)
            next[b] &+= 1
        }
        // One scratch buffer of the largest bucket's size serves every bucket.
        let scratch = UnsafeMutablePointer<Double>.allocate(capacity: largest)
        defer { scratch.deallocate() }
        let counters = UnsafeMutablePointer<Int>.allocate(capacity: sharedCounterCapacity)
        defer { counters.deallocate() }
        for b in 0 ..< bucketCount {
            let s = starts[b], e = starts[b + 1]
            if e - s > 1 { sortInPlace(output + s, count: e - s, scratch: scratch, counters: counters, depth: 1) }
        }
    }

    /// Sorts `a[0 ..< count]` by bucketing on its own range; `scratch` holds `count` values,
    /// `counters` is the free part of the shared counter stack.
    private static func sortInPlace(_ a: UnsafeMutablePointer<Double>, count n: Int, scratch: UnsafeMutablePointer<Double>,
                                    counters: UnsafeMutablePointer<Int>, depth: Int) {
        if n <= insertionSortLimit {
            insertionSort(a, count: n)
            return
        }
        var lo = a[0], hi = a[0]
        for i in 1 ..< n {
            lo = min(lo, a[i])
            hi = max(hi, a[i])
        }
        guard lo < hi else { return }  // all equal
        let bucketCount = max(2, n / 2)
        let scale = Double(bucketCount) / (hi - lo)
        guard depth < maximumDepth, scale.isFinite, scale > 0 else {
            var buffer = UnsafeMutableBufferPointer(start: a, count: n)
            buffer.sort()
            return
        }
        let top = bucketCount - 1
        // ends[b] counts bucket b - 1 first, then becomes the running end of bucket b.
        let ownsCounters = n > sharedCounterLimit
        let ends = ownsCounters ? UnsafeMutablePointer<Int>.allocate(capacity: bucketCount + 1) : counters
        defer { if ownsCounters { ends.deallocate() } }
        let nestedCounters = ownsCounters ? counters : counters + bucketCount + 1
        ends.initialize(repeating: 0, count: bucketCount + 1)
        for i in 0 ..< n {
            ends[min(top, Int(max(0, (a[i] - lo) * scale))) &+ 1] &+= 1
        }
        for b in 0 ..< bucketCount { ends[b + 1] &+= ends[b] }
        for i in 0 ..< n {
            let v = a[i]
            let b = min(top, Int(max(0, (v - lo) * scale)))
            scratch[ends[b]] = v
            ends[b] &+= 1
        }
        // Now ends[b] is the end of bucket b and the start of bucket b + 1.
        a.update(from: scratch, count: n)
        var start = 0
        for b in 0 ..< bucketCount {
            let end = ends[b]
            let length = end &- start
            if length > insertionSortLimit {
                sortInPlace(a + start, count: length, scratch: scratch, counters: nestedCounters, depth: depth + 1)
            } else if length > 1 {
                insertionSort(a + start, count: length)
            }
            start = end
        }
    }

    @inline(__always)
    private static func insertionSort(_ a: UnsafeMutablePointer<Double>, count n: Int) {
        var i = 1
        while i < n {
            let v = a[i]
            var j = i - 1
            while j >= 0 && a[j] > v {
                a[j + 1] = a[j]
                j -= 1
            }
            a[j + 1] = v
            i += 1
        }
    }
}
