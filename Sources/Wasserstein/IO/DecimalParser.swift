/// Correctly rounded parsing of plain decimal numbers, for the CSV reader's hot loop.
///
/// `strtod` is correct but slow for millions of fields (locale handling, hex and special
/// forms). This parser takes the common form only,
///
///     [+-] digits [. digits] [(e|E) [+-] digits]     (at least one mantissa digit, up to 19 significant)
///
/// and returns `nil` for anything else (other characters, `inf`/`nan`, hex, more than 19
/// significant digits, results that underflow to subnormals or overflow), so that the caller
/// can hand the field to `strtod` and keep its exact behaviour. When it answers, the answer is
/// the correctly rounded (round-half-even) double, the value `strtod` returns: by Clinger's fast
/// path (mantissa below `2^53` and a power of ten exact in a double), else by the Eisel-Lemire
/// algorithm (a 128-bit product with a truncated power of five; Lemire, "Number parsing at a
/// gigabyte per second", 2021), which declines the rare inputs whose rounding it cannot decide.
enum DecimalParser {
    /// The smallest and largest decimal exponents with a power of five in the table; beyond
    /// them every 19-digit mantissa gives zero or infinity, which `strtod` handles.
    static let smallestPowerOfTen = -342
    static let largestPowerOfTen = 308

    /// Powers of ten exactly representable as doubles (Clinger's fast path).
    private static let exactPowersOfTen: [Double] = [
        1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11,
        1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
    ]

    /// `5^q` for `q` in `smallestPowerOfTen ... largestPowerOfTen`, normalised to 128 bits
    /// (top bit set) and truncated, as (high, low) word pairs. Computed once, exactly, with
    /// integer arithmetic (`powersOfFive128()`), rather than shipped as a 1302-word literal.
    static let powersOfFive: [UInt64] = powersOfFive128()

    /// Parses `count` bytes at `p`. `nil` means: not of the plain form, or not decided here.
    @inline(__always)
    static func parse(_ p: UnsafePointer<UInt8>, count: Int) -> Double? {
        var i = 0
        var negative = false
        if i < count && (p[i] == UInt8(ascii: "-") || p[i] == UInt8(ascii: "+")) {
            negative = p[i] == UInt8(ascii: "-")
            i += 1
        }
        var mantissa: UInt64 = 0
        var significantDigits = 0
        var anyDigit = false
        var exponent = 0
        // The digits of the integer part, then of the fraction after one '.': all go into the
        // mantissa (leading zeros skipped), and each fraction digit lowers the exponent.
        var inFraction = false
        while i < count {
            if p[i] == UInt8(ascii: ".") && !inFraction {
                inFraction = true
                i += 1
                continue
            }
            let d = p[i] &- UInt8(ascii: "0")
            if d > 9 { break }
            anyDigit = true
            if mantissa != 0 || d != 0 {
                significantDigits += 1
                mantissa = mantissa &* 10 &+ UInt64(d)
            }
            if inFraction { exponent -= 1 }
            i += 1
        }
        guard anyDigit, significantDigits <= 19 else { return nil }
        if i < count && (p[i] == UInt8(ascii: "e") || p[i] == UInt8(ascii: "E")) {
            i += 1
            var exponentNegative = false
            if i < count && (p[i] == UInt8(ascii: "-") || p[i] == UInt8(ascii: "+")) {
                exponentNegative = p[i] == UInt8(ascii: "-")
                i += 1
            }
            var written = 0
            var anyExponentDigit = false
            while i < count {
                let d = p[i] &- UInt8(ascii: "0")
                if d > 9 { break }
                anyExponentDigit = true
                if written < 100_000 { written = written * 10 + Int(d) }
                i += 1
            }
            guard anyExponentDigit else { return nil }
            exponent += exponentNegative ? -written : written
        }
        guard i == count else { return nil }
        if mantissa == 0 { return negative ? -0.0 : 0.0 }
        // Clinger: both factors exact, so one rounding, the correct one.
        if mantissa <= 1 << 53 && exponent >= -22 && exponent <= 22 {
            let m = Double(mantissa)
            let v = exponent < 0 ? m / exactPowersOfTen[-exponent] : m * exactPowersOfTen[exponent]
            return negative ? -v : v
        }
        guard exponent >= smallestPowerOfTen, exponent <= largestPowerOfTen,
              let bits = eiselLemire(mantissa: mantissa, exponent: exponent)
        else { return nil }
        return Double(bitPattern: negative ? bits | 1 << 63 : bits)
    }

    /// The bit pattern of the positive normal double nearest to `mantissa * 10^exponent`, or
    /// `nil` when the 128-bit product cannot decide the rounding or the result is not a
    /// normal double. `mantissa != 0`, `exponent` within the table.
    static func eiselLemire(mantissa w: UInt64, exponent q: Int) -> UInt64? {
        let explicitBits = 52
        let leadingZeros = w.leadingZeroBitCount
        let normalized = w << UInt64(leadingZeros)
        let index = 2 * (q - smallestPowerOfTen)
        let (high, low) = powersOfFive.withUnsafeBufferPointer { table -> (UInt64, UInt64) in
            var (high, low) = normalized.multipliedFullWidth(by: table[index])
            // The first product is enough unless its bits below the needed precision are all
            // ones; then the low word of the power of five can carry into them.
            let precisionMask = UInt64.max >> UInt64(explicitBits + 3)
            if high & precisionMask == precisionMask {
                let second = normalized.multipliedFullWidth(by: table[index + 1]).high
                low = low &+ second
                if second > low { high &+= 1 }
            }
            return (high, low)
        }
        // Outside the exponents where 5^q is exact in 128 bits, an all-ones low word leaves
        // the rounding undecided.
        if low == UInt64.max && !(q >= -27 && q <= 55) { return nil }
        let upperBit = Int(high >> 63)
        let shift = UInt64(upperBit + 64 - explicitBits - 3)
        var significand = high >> shift
        // floor(q log2(10)) + 63, then the binary exponent with the double's bias (1023).
        var power2 = ((q &* (152_170 + 65_536)) >> 16) + 63 + upperBit - leadingZeros + 1023
        guard power2 > 0 else { return nil }  // subnormal or zero: left to strtod
        // Exactly halfway between two doubles (possible only for small q): round to even.
        if low <= 1 && q >= -4 && q <= 23 && significand & 3 == 1 && significand << shift == high {
            significand &= ~1
        }
        significand += significand & 1
        significand >>= 1
        if significand >= 2 << UInt64(explicitBits) {
            significand = 1 << UInt64(explicitBits)
            power2 += 1
        }
        significand &= ~(1 << UInt64(explicitBits))
        guard power2 < 0x7FF else { return nil }  // overflow: left to strtod
        return UInt64(power2) << UInt64(explicitBits) | significand
    }

    // MARK: - The table of powers of five

    /// The table, as in the reference implementation's generator: for `q >= 0`, `5^q` shifted
    /// to 128 bits and truncated; for `q < 0`, `floor(2^b / 5^-q) + 1` with `b = z + 127`
    /// (`-q <= 27`) or `b = 2 z + 128`, `z` the bit length of `5^-q`, then truncated to 128
    /// bits. All in exact multi-word integers.
    static func powersOfFive128() -> [UInt64] {
        let count = largestPowerOfTen - smallestPowerOfTen + 1
        var table = [UInt64](repeating: 0, count: 2 * count)
        func store(_ q: Int, _ value: [UInt64]) {
            let top = value.top128
            table[2 * (q - smallestPowerOfTen)] = top.high
            table[2 * (q - smallestPowerOfTen) + 1] = top.low
        }
        // q >= 0: 5^q exactly.
        var power: [UInt64] = [1]
        for q in 0 ... largestPowerOfTen {
            if q > 0 { power.multiply(by: 5) }
            store(q, power)
        }
        // q < 0: floor(2^B / 5^k) for one B above every b, shifted down to each 2^b.
        let wordsOfB = 28  // B = 1792 > 2 * 795 + 128, 795 = the bit length of 5^342
        var reciprocal = [UInt64](repeating: 0, count: wordsOfB + 1)
        reciprocal[wordsOfB] = 1  // 2^B
        let bigB = 64 * wordsOfB
        power = [1]
        for k in 1 ... -smallestPowerOfTen {
            reciprocal.divide(by: 5)
            power.multiply(by: 5)
            let z = power.bitLength
            let b = k <= 27 ? z + 127 : 2 * z + 128
            var c = reciprocal.shiftedRight(by: bigB - b)
            c.addOne()
            store(-k, c)
        }
        return table
    }
}

/// Little-endian multi-word unsigned integers, just enough for the table.
extension Array where Element == UInt64 {
    fileprivate var bitLength: Int {
        for i in stride(from: count - 1, through: 0, by: -1) where self[i] != 0 {
            return 64 * i + 64 - self[i].leadingZeroBitCount
        }
        return 0
    }

    fileprivate mutating func multiply(by m: UInt64) {
        var carry: UInt64 = 0
        for i in indices {
            let (high, low) = self[i].multipliedFullWidth(by: m)
            let (sum, overflow) = low.addingReportingOverflow(carry)
            self[i] = sum
            carry = high &+ (overflow ? 1 : 0)
        }
        if carry != 0 { append(carry) }
    }

    fileprivate mutating func divide(by d: UInt64) {
        var remainder: UInt64 = 0
        for i in indices.reversed() {
            (self[i], remainder) = d.dividingFullWidth((high: remainder, low: self[i]))
        }
    }

    fileprivate mutating func addOne() {
        for i in indices {
            self[i] &+= 1
            if self[i] != 0 { return }
        }
        append(1)
    }

    fileprivate func shiftedRight(by s: Int) -> [UInt64] {
        let words = s / 64, bits = s % 64
        guard words < count else { return [0] }
        var out = [UInt64](repeating: 0, count: count - words)
        for i in 0 ..< out.count {
            let lowPart = self[i + words] >> UInt64(bits)
            let highPart = bits == 0 || i + words + 1 >= count ? 0 : self[i + words + 1] << UInt64(64 - bits)
            out[i] = lowPart | highPart
        }
        return out
    }

    fileprivate func shiftedLeft(by s: Int) -> [UInt64] {
        let words = s / 64, bits = s % 64
        var out = [UInt64](repeating: 0, count: count + words + 1)
        for i in 0 ..< count {
            out[i + words] |= self[i] << UInt64(bits)
            if bits > 0 { out[i + words + 1] |= self[i] >> UInt64(64 - bits) }
        }
        return out
    }

    /// The 128 most significant bits, the top bit set: shifted up when shorter, truncated
    /// when longer.
    fileprivate var top128: (high: UInt64, low: UInt64) {
        let length = bitLength
        let aligned = length <= 128 ? shiftedLeft(by: 128 - length) : shiftedRight(by: length - 128)
        return (aligned.count > 1 ? aligned[1] : 0, aligned[0])
    }
}
