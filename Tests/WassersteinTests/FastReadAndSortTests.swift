import Foundation
import Testing
@testable import Wasserstein

#if canImport(Glibc)
import Glibc
#endif

/// The fast paths of the 1-D pipeline against the slow ones they replace: the decimal parser
/// against `strtod` and Swift's own `Double(String)`, the chunked CSV reader against per-field
/// parsing and the line-by-line error messages, the bucket sort against the standard sort, the
/// direct `.npy` read against the in-memory decoder.
@Suite("Fast number parsing, CSV chunks, bucket sort, direct NPY reads")
struct FastReadAndSortTests {
    /// `strtod` on the whole text, `nil` unless it consumes all of it (the CSV reader's rule).
    static func strtodValue(_ text: String) -> Double? {
        text.withCString { p -> Double? in
            var end: UnsafeMutablePointer<CChar>? = nil
            let v = strtod(p, &end)
            guard let end, end.pointee == 0, end != UnsafeMutablePointer(mutating: p) else { return nil }
            return v
        }
    }

    static func fast(_ text: String) -> Double? {
        let bytes = Array(text.utf8)
        return bytes.withUnsafeBufferPointer { DecimalParser.parse($0.baseAddress ?? UnsafePointer(bitPattern: 1)!, count: $0.count) }
    }

    @Test("Table of powers of five: entries checked against independent values")
    func powersOfFiveTable() {
        let t = DecimalParser.powersOfFive
        func entry(_ q: Int) -> (UInt64, UInt64) {
            let i = 2 * (q - DecimalParser.smallestPowerOfTen)
            return (t[i], t[i + 1])
        }
        #expect(entry(0) == (1 << 63, 0))
        #expect(entry(1) == (0xA000_0000_0000_0000, 0))
        // 5^27 = 7450580596923828125 has 63 bits: shifted up by 65.
        #expect(entry(27) == (7_450_580_596_923_828_125 << 1, 0))
        // 1/5 = 0.0011001100... in binary, rounded up in the last place.
        #expect(entry(-1) == (0xCCCC_CCCC_CCCC_CCCC, 0xCCCC_CCCC_CCCC_CCCD))
        // The first entry of the reference implementation's table.
        #expect(entry(-342) == (0xEEF4_53D6_923B_D65A, 0x113F_AA29_06A1_3B3F))
        // Every entry is normalised.
        #expect(stride(from: 0, to: t.count, by: 2).allSatisfy { t[$0] >> 63 == 1 })
    }

    @Test("Plain decimal forms parse to strtod's value; other forms are left to strtod")
    func edgeCases() {
        let plain = ["0", "-0", "+0", "0.0", "-0.0", "1", "+1.5", "-1.5", ".5", "-.5", "+.5", "5.", "-5.",
                     "1e5", "1E+05", "1e-5", "2.5e-3", "123456789012345678", "0.000000000000000000001234",
                     "9007199254740993", "9007199254740995", "9007199254740992.5", "4.9406564584124654e-300",
                     "2.2250738585072014e-308", "1.7976931348623157e308", "1e22", "1e23", "8.98846567431158e307",
                     "0.1", "0.2", "0.3", "3.0000000000000004", "1.0000000000000002", "123.456e-7",
                     "7.2057594037927933e16", "9999999999999999999", "1e-342", "1e308"]
        for text in plain {
            let expected = Self.strtodValue(text)
            #expect(expected != nil, "strtod rejects \(text)")
            if let v = Self.fast(text) {
                #expect(v.bitPattern == expected!.bitPattern, "\(text): fast \(v), strtod \(expected!)")
            }
        }
        // The common forms must be answered here, not by the fallback.
        for text in ["1.5", "-0.25", ".5", "5.", "+2e3", "0.1", "-0.27413785536221760", "1e23", "123456789012345678"] {
            #expect(Self.fast(text) != nil, "\(text) should take the fast path")
        }
        // Not of the plain form, out of range, or too long: no answer (strtod decides).
        for text in ["", "+", "-", ".", "e5", "1e", "1e+", "1.2.3", "1,5", " 1", "1 ", "inf", "-inf", "nan",
                     "Infinity", "0x1p3", "1_000", "١", "1e400", "1e-400", "4.9e-324", "2.2250738585072011e-308",
                     "12345678901234567890", "0.12345678901234567890123"] {
            #expect(Self.fast(text) == nil, "\(text) should be left to strtod")
        }
    }

    @Test("Random decimal texts: the fast parser agrees bit for bit with strtod and Double(String)")
    func randomTexts() {
        var g = Xoshiro256StarStar(seed: 2024)
        var answered = 0, total = 0
        func check(_ text: String) {
            total += 1
            guard let v = Self.fast(text) else { return }
            answered += 1
            let reference = Self.strtodValue(text)
            #expect(reference?.bitPattern == v.bitPattern, "\(text): fast \(v), strtod \(String(describing: reference))")
            #expect(Double(text)?.bitPattern == v.bitPattern, "\(text): fast \(v), Double(String) \(String(describing: Double(text)))")
        }
        for _ in 0 ..< 1500 {
            // Random finite doubles over the whole exponent range, in several spellings.
            var bits = g.next() & ~(0x7FF << 52)
            bits |= (g.next() % 0x7FF) << 52
            let d = Double(bitPattern: bits)
            check("\(d)")
            check(String(format: "%.17g", d))
            check(String(format: "%.16e", d))
            check(String(format: "%.6g", d))
            // Random digit strings and exponents: halfway cases and long mantissas included.
            let digits = 1 + Int(g.next() % 19)
            var mantissa = ""
            for k in 0 ..< digits { mantissa += String(k == 0 ? 1 + g.next() % 9 : g.next() % 10) }
            let exponent = Int(g.next() % 700) - 350
            let point = Int(g.next() % UInt64(digits + 1))
            let body = String(mantissa.prefix(point)) + "." + String(mantissa.dropFirst(point))
            check((g.next() % 2 == 0 ? "-" : "") + body + "e\(exponent)")
            check(mantissa + "e\(Int(g.next() % 60) - 30)")
        }
        // Exact halfway points between neighbouring doubles (mantissa 2^53 + odd, scaled).
        for k in 0 ..< 200 {
            let m = (UInt64(1) << 53) + 2 * UInt64(k) + 1
            check("\(m)")
            check("\(m)0")
            check("\(m)e-3")
        }
        #expect(answered > total * 3 / 4, "the fast path answered only \(answered) of \(total)")
    }

    @Test("Long mantissas and special forms still parse through strtod in CSV files")
    func csvFallbacks() throws {
        let texts = ["0.1000000000000000055511151231257827021181583404541015625",
                     "123456789012345678901234567890", "-4.9e-324", "1e-320", "0x1.8p1", "  2.5 ", "\"3.25\""]
        let table = try CSVFormat.decode(Array(texts.joined(separator: "\n").utf8))
        let expected = texts.map { Self.strtodValue($0.filter { $0 != " " && $0 != "\"" })! }
        #expect(table.array.values.map(\.bitPattern) == expected.map(\.bitPattern))
        // inf and nan parse as before and are rejected by the point-cloud validation.
        let special = try CSVFormat.decode(Array("1\ninf\nnan\n-inf\n".utf8))
        #expect(special.array.values[1] == .infinity && special.array.values[2].isNaN && special.array.values[3] == -.infinity)
    }

    /// A CSV text of `rows` x `columns` random numbers in mixed spellings, and the numbers.
    static func randomCSV(rows: Int, columns: Int, seed: UInt64) -> (String, [Double]) {
        var g = Xoshiro256StarStar(seed: seed)
        var text = ""
        var values = [Double]()
        for r in 0 ..< rows {
            var fields = [String]()
            for _ in 0 ..< columns {
                let v = g.nextGaussian() * pow(10, Double(Int(g.next() % 9) - 4))
                let spelled: String
                switch g.next() % 4 {
                case 0: spelled = "\(v)"
                case 1: spelled = String(format: "%.10e", v)
                case 2: spelled = String(format: "%.3f", v)
                default: spelled = String(format: "%.17g", v)
                }
                fields.append(spelled)
                values.append(Double(spelled)!)
            }
            text += fields.joined(separator: ",") + (r % 97 == 0 ? "\r\n" : "\n")
            if r % 1000 == 500 { text += "\n" }  // blank lines are skipped
        }
        return (text, values)
    }

    @Test("A CSV large enough for parallel chunks reads the same numbers as Double(String)")
    func chunkedCSV() throws {
        let (text, values) = Self.randomCSV(rows: 36_000, columns: 2, seed: 9)
        #expect(text.utf8.count > CSVFormat.parallelMinimumBytes)
        let table = try CSVFormat.decode(Array(("a,b\n" + text).utf8))
        #expect(table.header == ["a", "b"])
        #expect(table.array.shape == [36_000, 2])
        #expect(table.array.values.map(\.bitPattern) == values.map(\.bitPattern))
    }

    @Test("Errors deep in a chunked CSV name the same line as the line-by-line reader")
    func chunkedCSVErrors() throws {
        let (text, _) = Self.randomCSV(rows: 36_000, columns: 2, seed: 10)
        // Split on the byte: as Characters, "\r\n" is one.
        var lines = text.utf8.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false).map { String(decoding: $0, as: UTF8.self) }
        let bad = lines.count - 10
        lines[bad] = "1.5,abc"
        #expect(throws: DataFileError.malformed(path: "<data>", reason: "line \(bad + 1), column 2: 'abc' is not a number")) {
            try CSVFormat.decode(Array(lines.joined(separator: "\n").utf8))
        }
        lines[bad] = "1.5"
        #expect(throws: DataFileError.malformed(path: "<data>", reason: "line \(bad + 1) has 1 fields, expected 2")) {
            try CSVFormat.decode(Array(lines.joined(separator: "\n").utf8))
        }
    }

    @Test("Bucket sort gives the standard sort's order on skewed, tied and extreme inputs")
    func bucketSort() {
        var g = Xoshiro256StarStar(seed: 77)
        let n = 8000
        var inputs: [(String, [Double])] = []
        inputs.append(("gaussian", (0 ..< n).map { _ in g.nextGaussian() }))
        inputs.append(("ties", (0 ..< n).map { _ in Double(g.next() % 7) - 3 }))
        inputs.append(("all equal", [Double](repeating: 2.5, count: n)))
        inputs.append(("outliers", (0 ..< n).map { k in k == 17 ? 1e300 : (k == 99 ? -1e300 : g.nextUniform()) }))
        inputs.append(("full range", (0 ..< n).map { _ in (g.nextUniform() - 0.5) * 2 * 1.7e308 }))
        inputs.append(("log-uniform", (0 ..< n).map { _ in pow(10, 600 * g.nextUniform() - 300) * (g.next() % 2 == 0 ? 1 : -1) }))
        inputs.append(("subnormal", (0 ..< n).map { _ in Double(bitPattern: g.next() % 1000) * (g.next() % 2 == 0 ? 1 : -1) }))
        inputs.append(("cauchy", (0 ..< n).map { _ in tan(.pi * (g.nextUniform() - 0.5)) }))
        inputs.append(("signed zeros", (0 ..< n).map { k in k % 3 == 0 ? -0.0 : (k % 3 == 1 ? 0.0 : g.nextGaussian()) }))
        inputs.append(("sorted", (0 ..< n).map { Double($0) }))
        inputs.append(("reversed", (0 ..< n).map { Double(n - $0) * 1e-3 }))
        inputs.append(("small", (0 ..< 100).map { _ in g.nextGaussian() }))
        for (name, values) in inputs {
            let expected = values.sorted()
            let output = UnsafeMutablePointer<Double>.allocate(capacity: values.count)
            defer { output.deallocate() }
            values.withUnsafeBufferPointer { BucketSort.sort($0, into: output) }
            let got = Array(UnsafeBufferPointer(start: output, count: values.count))
            #expect(got == expected, "\(name)")
        }
    }

    @Test("Sorted solver, uniform weights: the bucket-sorted cost equals the radix-sorted plan's cost")
    func uniformCostAgainstPlan() throws {
        var g = Xoshiro256StarStar(seed: 5)
        for (n, m) in [(6000, 6000), (6000, 4500), (50, 9000)] {
            let x = try PointCloud(values: (0 ..< n).map { _ in g.nextGaussian() })
            let y = try PointCloud(values: (0 ..< m).map { _ in 0.5 + 1.5 * g.nextGaussian() })
            let problem = try TransportProblem(source: x, target: y)
            let fast = try SortedSolver(planOutput: .none).solve(problem)
            let general = try SortedSolver(planOutput: .full).solve(problem)
            #expect(abs(fast.cost - general.cost) <= 1e-12 * general.cost, "n = \(n), m = \(m)")
        }
    }

    @Test("Direct NPY reads equal the in-memory decoder; truncation and other dtypes handled")
    func directNPYRead() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("wnpy-\(UInt32.random(in: 0 ... .max))")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        var g = Xoshiro256StarStar(seed: 3)
        let values = (0 ..< 5000).map { _ in g.nextGaussian() }
        let bytes = NPYFormat.encode(NumericArray(rows: 2500, columns: 2, values: values))
        let path = dir.appendingPathComponent("a.npy").path
        _ = FileManager.default.createFile(atPath: path, contents: Data(bytes))
        let read = try NPYFormat.read(path: path)
        #expect(read == (try NPYFormat.decode(bytes)))
        #expect(read.values.map(\.bitPattern) == values.map(\.bitPattern))
        // Shorter than the shape says: the same message as the decoder's.
        let short = dir.appendingPathComponent("short.npy").path
        _ = FileManager.default.createFile(atPath: short, contents: Data(bytes.dropLast(8)))
        #expect(throws: DataFileError.malformed(path: short, reason: "file holds 39992 data bytes, shape [2500, 2] of <f8 needs 40000")) {
            try NPYFormat.read(path: short)
        }
        // Fortran order goes through the converting path.
        var header = "{'descr': '<f8', 'fortran_order': True, 'shape': (2, 3), }"
        header += String(repeating: " ", count: (64 - (10 + header.utf8.count + 1) % 64) % 64) + "\n"
        var fortran = [0x93] + Array("NUMPY".utf8) + [1, 0, UInt8(header.utf8.count), 0] + Array(header.utf8)
        for v in [1.0, 4, 2, 5, 3, 6] { withUnsafeBytes(of: v.bitPattern.littleEndian) { fortran += $0 } }
        let fortranPath = dir.appendingPathComponent("f.npy").path
        _ = FileManager.default.createFile(atPath: fortranPath, contents: Data(fortran))
        #expect(try NPYFormat.read(path: fortranPath).values == [1, 2, 3, 4, 5, 6])
        #expect(throws: DataFileError.missing(path: dir.path + "/none.npy")) { try NPYFormat.read(path: dir.path + "/none.npy") }
        #expect(throws: DataFileError.unreadable(path: dir.path, reason: "it is a directory")) { try CSVFormat.read(path: dir.path) }
    }
}
