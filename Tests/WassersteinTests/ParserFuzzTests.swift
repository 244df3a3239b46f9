import Foundation
import Testing
import Wasserstein

/// Mutation fuzzing of the CSV and NPY readers, bounded and seeded (about a second each in a
/// debug build). Every mutated file must either be refused with a typed error or give a value
/// that passes the same validation as the command line's: a point cloud whose coordinates and
/// weights are finite and whose shape matches its values. A trap fails the whole test run, which
/// is the point: it must never happen, whatever the bytes.
@Suite("Parser fuzzing: CSV and NPY")
struct ParserFuzzTests {
    /// Text that parsers find hard: extreme and special numbers, separators, quotes, a byte order
    /// mark, NUL, a huge integer, NumPy header syntax.
    static let tokens: [String] = [
        "1e308", "-1e308", "1e309", "1e-320", "4.9e-324", "-0", "0x1p-1074", "nan", "-nan", "inf", "-inf",
        "infinity", "NaN(123)", "1e", "--1", "+", ".", "1.2.3", "99999999999999999999999", "-9223372036854775809",
        ",", ",,", "\n", "\r\n", "\r", "\"", "\"\"", " ", "\t", "\u{FEFF}", "\u{0}", "\u{1B}[2J", "é", "'",
        "(", ")", "{", "}", ":", "True", "False", "'<f8'", "'>i2'", "'|u1'", "'<c16'", "(0,)", "(3, 0)",
        "(99999999999, 99999999999)", "(-1,)", "(2, 2, 2)", "()", "'shape'", "'descr'", "'fortran_order'",
    ]

    /// Applies one to three random mutations.
    static func mutate(_ input: [UInt8], _ g: inout Xoshiro256StarStar) -> [UInt8] {
        var bytes = input
        for _ in 0 ... Int(g.next() % 3) {
            let position = bytes.isEmpty ? 0 : Int(g.next() % UInt64(bytes.count + 1))
            switch g.next() % 7 {
            case 0 where !bytes.isEmpty:  // flip one bit
                let i = min(position, bytes.count - 1)
                bytes[i] ^= UInt8(1) << (g.next() % 8)
            case 1 where !bytes.isEmpty:  // overwrite with a random byte
                bytes[min(position, bytes.count - 1)] = UInt8(truncatingIfNeeded: g.next())
            case 2:  // truncate
                bytes.removeLast(bytes.count - position)
            case 3:  // insert random garbage
                bytes.insert(contentsOf: (0 ..< Int(g.next() % 12)).map { _ in UInt8(truncatingIfNeeded: g.next()) }, at: position)
            case 4:  // insert a hard token
                bytes.insert(contentsOf: Array(tokens[Int(g.next() % UInt64(tokens.count))].utf8), at: position)
            case 5:  // replace a run of digits (a number) by a hard token
                if let run = digitRun(in: bytes, near: position) {
                    bytes.replaceSubrange(run, with: Array(tokens[Int(g.next() % 11)].utf8))
                }
            default:  // duplicate a slice
                let length = min(Int(g.next() % 32), bytes.count - position)
                bytes.insert(contentsOf: bytes[position ..< position + length], at: position)
            }
        }
        return bytes
    }

    /// The run of digits and dots at or after `position`, if any.
    static func digitRun(in bytes: [UInt8], near position: Int) -> Range<Int>? {
        func isDigit(_ b: UInt8) -> Bool { (0x30 ... 0x39).contains(b) || b == 0x2E }
        guard let start = bytes[min(position, bytes.count)...].firstIndex(where: isDigit) else { return nil }
        var end = start
        while end < bytes.count && isDigit(bytes[end]) { end += 1 }
        return start ..< end
    }

    /// What the command line does with a decoded array: read it as points and as weights. Every
    /// outcome is either a typed error or a validated cloud.
    static func validate(_ array: NumericArray, context: @autoclosure () -> String) {
        #expect(array.values.count == array.shape.reduce(1, *), "\(context())")
        guard let (rows, columns) = array.tableShape, rows > 0, columns > 0 else { return }
        do {
            let cloud = try PointCloud(coordinates: array.values, dimension: columns, name: "fuzz")
            #expect(cloud.count == rows && cloud.dimension == columns, "\(context())")
            #expect(cloud.coordinates.allSatisfy(\.isFinite) && cloud.mass.isFinite && cloud.mass > 0, "\(context())")
        } catch is WassersteinError {
        } catch {
            Issue.record("untyped error \(error) for \(context())")
        }
        guard columns == 1 else { return }
        do {
            let weighted = try PointCloud(coordinates: [Double](repeating: 0, count: rows), dimension: 1, weights: array.values, name: "fuzz")
            #expect(weighted.weights.allSatisfy { $0.isFinite && $0 >= 0 } && weighted.mass.isFinite && weighted.mass > 0, "\(context())")
        } catch is WassersteinError {
        } catch {
            Issue.record("untyped error \(error) for \(context())")
        }
    }

    static func show(_ bytes: [UInt8]) -> String { MessageText.excerpt(bytes: bytes, limit: 200) }

    static let csvSeeds: [String] = [
        "x,y\n0,0\n1,0\n0,2\n",
        "3,1\r\n-1,1\r\n",
        "weight\n0.2\n0.3\n0.5\n",
        "\u{FEFF}u,v,w\n1e-3,2.5e10,-7\n\n4,\"5\",6\n",
        "0.5\n-1\n2\n4\n",
        "1e300,-1e300\n1e-300,4.9e-324\n",
    ]

    /// Runs `rounds` mutations of the seeds through `decode` and validates every outcome.
    static func fuzz(seeds: [[UInt8]], rounds: Int, seed: UInt64, decode: ([UInt8]) throws -> NumericArray) {
        var g = Xoshiro256StarStar(seed: seed)
        var accepted = 0, refused = 0
        for round in 0 ..< rounds {
            let bytes = mutate(seeds[round % seeds.count], &g)
            do {
                validate(try decode(bytes), context: show(bytes))
                accepted += 1
            } catch let error as DataFileError {
                // A message is one line whatever the bytes.
                #expect(!error.description.contains("\n") && !error.description.contains("\u{1B}"), "\(show(bytes))")
                refused += 1
            } catch {
                Issue.record("untyped error \(error) for \(show(bytes))")
            }
        }
        // Both outcomes occur: the mutations are neither all harmless nor all fatal.
        #expect(accepted > rounds / 10 && refused > rounds / 10, "accepted \(accepted), refused \(refused)")
    }

    @Test("Mutated CSV files give a typed error or a validated cloud")
    func csv() {
        Self.fuzz(seeds: Self.csvSeeds.map { Array($0.utf8) }, rounds: 4000, seed: 20_261_130) { bytes in
            let table = try CSVFormat.decode(bytes)
            if let header = table.header, table.array.shape[0] > 0 { #expect(header.count == table.array.shape[1]) }
            return table.array
        }
    }

    /// A `.npy` file with an arbitrary header and payload.
    static func npy(_ descr: String, fortran: Bool, shape: String, payload: [UInt8], version: UInt8 = 1) -> [UInt8] {
        var header = "{'descr': '\(descr)', 'fortran_order': \(fortran ? "True" : "False"), 'shape': \(shape), }"
        header += String(repeating: " ", count: (64 - (12 + header.utf8.count + 1) % 64) % 64) + "\n"
        let n = header.utf8.count
        let length: [UInt8] = version == 1 ? [UInt8(n & 0xFF), UInt8(n >> 8)] : [UInt8(n & 0xFF), UInt8(n >> 8), 0, 0]
        return [0x93] + Array("NUMPY".utf8) + [version, 0] + length + Array(header.utf8) + payload
    }

    static var npySeeds: [[UInt8]] {
        func le<T: FixedWidthInteger>(_ values: [T]) -> [UInt8] { values.flatMap { v in withUnsafeBytes(of: v.littleEndian) { Array($0) } } }
        let doubles = [1.0, -2.5, 1e308, .leastNonzeroMagnitude, -0.0, 7]
        return [
            NPYFormat.encode(NumericArray(rows: 3, columns: 2, values: doubles)),
            NPYFormat.encode(NumericArray(vector: [0.2, 0.3, 0.5])),
            npy("<f4", fortran: false, shape: "(4,)", payload: le([Float(1.5), 2, -3, .greatestFiniteMagnitude].map(\.bitPattern))),
            npy(">f8", fortran: true, shape: "(2, 3)", payload: doubles.flatMap { v in withUnsafeBytes(of: v.bitPattern.bigEndian) { Array($0) } }),
            npy("<i8", fortran: false, shape: "(3, 1)", payload: le([Int64.max, Int64.min, 0])),
            npy("|u1", fortran: false, shape: "(2, 2)", payload: [0, 255, 7, 9], version: 2),
            npy("<i2", fortran: true, shape: "(2, 2)", payload: le([Int16(-1), 2, 3, 4]), version: 3),
        ]
    }

    @Test("Mutated NPY files give a typed error or a validated cloud")
    func npy() {
        Self.fuzz(seeds: Self.npySeeds, rounds: 4000, seed: 77) { try NPYFormat.decode($0) }
    }
}
