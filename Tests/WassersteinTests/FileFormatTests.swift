import Foundation
import Testing
@testable import Wasserstein

@Suite("CSV and NPY files")
struct FileFormatTests {
    /// A float64 C-order (3, 2) array written by numpy 2.4 (`np.save`), byte for byte.
    static let numpyFloat64: [UInt8] = {
        var bytes: [UInt8] = [0x93] + Array("NUMPY".utf8) + [1, 0, 118, 0]
        var header = "{'descr': '<f8', 'fortran_order': False, 'shape': (3, 2), }"
        header += String(repeating: " ", count: 118 - header.utf8.count - 1) + "\n"
        bytes += Array(header.utf8)
        for v in [1.0, 2.0, 3.5, -4.0, 1e-300, 6.0] { withUnsafeBytes(of: v.bitPattern.littleEndian) { bytes += $0 } }
        return bytes
    }()

    @Test("NPY float64 decodes to the values and shape numpy wrote")
    func npyFloat64() throws {
        let a = try NPYFormat.decode(Self.numpyFloat64)
        #expect(a.shape == [3, 2])
        #expect(a.values == [1, 2, 3.5, -4, 1e-300, 6])
    }

    @Test("NPY encode/decode round trip keeps every bit, and the header is 64-byte aligned")
    func npyRoundTrip() throws {
        let values = [0.1, -2.5, .pi, 1e308, -0.0, 7]
        let bytes = NPYFormat.encode(NumericArray(rows: 2, columns: 3, values: values))
        let headerLength = Int(bytes[8]) | Int(bytes[9]) << 8
        #expect((10 + headerLength) % 64 == 0)
        let back = try NPYFormat.decode(bytes)
        #expect(back.shape == [2, 3])
        #expect(back.values.map(\.bitPattern) == values.map(\.bitPattern))
        let vector = try NPYFormat.decode(NPYFormat.encode(NumericArray(vector: [1, 2, 3])))
        #expect(vector.shape == [3])
    }

    @Test("NPY float32, int64, big-endian and Fortran order convert correctly")
    func npyOtherTypes() throws {
        func file(_ descr: String, fortran: Bool = false, shape: String, payload: [UInt8]) -> [UInt8] {
            var header = "{'descr': '\(descr)', 'fortran_order': \(fortran ? "True" : "False"), 'shape': \(shape), }"
            header += String(repeating: " ", count: (64 - (10 + header.utf8.count + 1) % 64) % 64) + "\n"
            let n = header.utf8.count
            return [0x93] + Array("NUMPY".utf8) + [1, 0, UInt8(n & 0xFF), UInt8(n >> 8)] + Array(header.utf8) + payload
        }
        var f32 = [UInt8]()
        for v: Float in [1.5, -2.25] { withUnsafeBytes(of: v.bitPattern.littleEndian) { f32 += $0 } }
        #expect(try NPYFormat.decode(file("<f4", shape: "(2,)", payload: f32)).values == [1.5, -2.25])
        var i64 = [UInt8]()
        for v: Int64 in [3, -7] { withUnsafeBytes(of: v.littleEndian) { i64 += $0 } }
        #expect(try NPYFormat.decode(file("<i8", shape: "(2,)", payload: i64)).values == [3, -7])
        var be = [UInt8]()
        for v in [2.0, 8.0] { withUnsafeBytes(of: v.bitPattern.bigEndian) { be += $0 } }
        #expect(try NPYFormat.decode(file(">f8", shape: "(2,)", payload: be)).values == [2, 8])
        // Fortran order: the 2 x 3 matrix [[1,2,3],[4,5,6]] is stored column by column.
        var ff = [UInt8]()
        for v in [1.0, 4, 2, 5, 3, 6] { withUnsafeBytes(of: v.bitPattern.littleEndian) { ff += $0 } }
        let m = try NPYFormat.decode(file("<f8", fortran: true, shape: "(2, 3)", payload: ff))
        #expect(m.values == [1, 2, 3, 4, 5, 6])
    }

    @Test("Malformed NPY files are rejected with a reason")
    func npyMalformed() {
        #expect(throws: DataFileError.self) { try NPYFormat.decode(Array("hello world".utf8)) }
        var truncated = Self.numpyFloat64
        truncated.removeLast(9)
        #expect(throws: DataFileError.self) { try NPYFormat.decode(truncated) }
        var complex = Self.numpyFloat64
        let range = complex.firstRange(of: Array("<f8".utf8))!
        complex.replaceSubrange(range, with: Array("<c8".utf8))
        #expect(throws: DataFileError.self) { try NPYFormat.decode(complex) }
    }

    @Test("CSV with and without a header, CRLF and blank lines")
    func csvParsing() throws {
        let withHeader = try CSVFormat.decode(Array("x,y\n1,2\r\n3.5, -4e-2\n\n".utf8))
        #expect(withHeader.header == ["x", "y"])
        #expect(withHeader.array.shape == [2, 2])
        #expect(withHeader.array.values == [1, 2, 3.5, -0.04])
        let plain = try CSVFormat.decode(Array("1\n2\n3\n".utf8))
        #expect(plain.header == nil)
        #expect(plain.array.shape == [3, 1])
    }

    @Test("Ragged or non-numeric CSV rows are rejected, naming the line")
    func csvMalformed() {
        #expect(throws: DataFileError.malformed(path: "<data>", reason: "line 3 has 1 fields, expected 2")) {
            try CSVFormat.decode(Array("1,2\n3,4\n5\n".utf8))
        }
        #expect(throws: DataFileError.malformed(path: "<data>", reason: "line 2, column 2: 'abc' is not a number")) {
            try CSVFormat.decode(Array("1,2\n3,abc\n".utf8))
        }
        #expect(throws: DataFileError.malformed(path: "<data>", reason: "line 2, column 1: empty field")) {
            try CSVFormat.decode(Array("1,2\n,4\n".utf8))
        }
    }

    @Test("A first row is a header only when none of its fields is a number; a byte order mark is skipped")
    func csvHeaderRule() throws {
        // A byte order mark before a header: the header is still recognised, its first name clean.
        let bom = try CSVFormat.decode([0xEF, 0xBB, 0xBF] + Array("x,y\n1,2\n".utf8))
        #expect(bom.header == ["x", "y"] && bom.array.values == [1, 2])
        // A byte order mark before numbers: the first row is data, not a header.
        let bomData = try CSVFormat.decode([0xEF, 0xBB, 0xBF] + Array("1,2\n3,4\n".utf8))
        #expect(bomData.header == nil && bomData.array.shape == [2, 2] && bomData.array.values == [1, 2, 3, 4])
        // Partly numeric first rows are malformed data, reported with line and column, never dropped.
        #expect(throws: DataFileError.malformed(path: "<data>", reason: "line 1, column 1: '1e' is not a number")) {
            try CSVFormat.decode(Array("1e,0\n1,2\n".utf8))
        }
        #expect(throws: DataFileError.malformed(path: "<data>", reason: "line 1, column 2: 'y' is not a number")) {
            try CSVFormat.decode(Array("0,y\n1,2\n".utf8))
        }
        // A blank line before the header does not make it data.
        let late = try CSVFormat.decode(Array("\n  \nweight\n0.5\n".utf8))
        #expect(late.header == ["weight"] && late.array.values == [0.5])
        // A second all-text row is not a second header.
        #expect(throws: DataFileError.malformed(path: "<data>", reason: "line 2, column 1: 'u' is not a number")) {
            try CSVFormat.decode(Array("x,y\nu,v\n1,2\n".utf8))
        }
    }

    @Test("Echoed fields escape control bytes and invalid UTF-8, and are cut when long")
    func csvEchoIsEscaped() throws {
        let bytes: [UInt8] = Array("1,2\n3,".utf8) + [0x1B] + Array("[31m".utf8) + [0xFF, 0x0D, 0x0D] + Array("\n".utf8)
        do {
            _ = try CSVFormat.decode(bytes, path: "evil\n.csv")
            Issue.record("no error")
        } catch let error as DataFileError {
            #expect(error.description == "evil\\n.csv: line 2, column 2: '\\x1B[31m\\xFF\\r' is not a number")
        }
        let long = String(repeating: "z", count: 10_000)
        do {
            _ = try CSVFormat.decode(Array("1\n\(long)\n".utf8))
            Issue.record("no error")
        } catch let error as DataFileError {
            #expect(error.description.count < 150, "\(error.description.count) characters")
            #expect(error.description.hasSuffix("...(10000 bytes)' is not a number"))
        }
    }

    @Test("Point files: missing file, weights of the wrong shape, NaN, counts that differ")
    func pointFiles() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("wfiles-\(UInt32.random(in: 0 ... .max))")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        func write(_ name: String, _ text: String) -> String {
            let p = dir.appendingPathComponent(name).path
            _ = FileManager.default.createFile(atPath: p, contents: Data(text.utf8))
            return p
        }
        let points = write("p.csv", "x,y\n0,0\n1,1\n")
        let cloud = try PointCloudFile.read(points: points)
        #expect(cloud.count == 2 && cloud.dimension == 2 && cloud.weights == [0.5, 0.5])
        #expect(throws: DataFileError.missing(path: dir.path + "/none.csv")) {
            try PointCloudFile.read(points: dir.path + "/none.csv")
        }
        let twoColumns = write("w2.csv", "1,2\n3,4\n")
        #expect(throws: DataFileError.self) { try PointCloudFile.read(points: points, weights: twoColumns) }
        let threeWeights = write("w3.csv", "1\n2\n3\n")
        #expect(throws: WassersteinError.weightCountMismatch(cloud: points, points: 2, weights: 3)) {
            try PointCloudFile.read(points: points, weights: threeWeights)
        }
        let nan = write("nan.csv", "0,0\nnan,1\n")
        #expect(throws: WassersteinError.nonFiniteCoordinate(cloud: nan, point: 1, axis: 0)) {
            try PointCloudFile.read(points: nan)
        }
        let empty = write("empty.csv", "x,y\n")
        #expect(throws: DataFileError.self) { try PointCloudFile.read(points: empty) }
        let npy = dir.appendingPathComponent("p.npy").path
        try NPYFormat.write(NumericArray(vector: [3, 1, 2]), path: npy)
        let line = try PointCloudFile.read(points: npy)
        #expect(line.dimension == 1 && line.coordinates == [3, 1, 2])
    }
}
