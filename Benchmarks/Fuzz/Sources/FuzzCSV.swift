// libFuzzer target: the CSV reader (CSVFormat.decode, the bytes behind CSVFormat.read) and its
// fast number parser (DecimalParser), which must agree with strtod whenever it answers.
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
@testable import Wasserstein

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzCSV(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    let bytes = inputBytes(data, size)
    checkDecimalParser(fieldsOf: bytes)
    guard let table = try? CSVFormat.decode(bytes, path: "fuzz.csv") else { return 0 }
    let array = table.array
    require(array.shape.count == 2 && array.values.count == array.shape[0] * array.shape[1], "shape \(array.shape), \(array.values.count) values")
    let (rows, columns) = (array.shape[0], array.shape[1])
    if let header = table.header, rows > 0 { require(header.count == columns, "header of \(header.count) fields, \(columns) columns") }
    if rows > 0 {
        require(columns > 0, "\(rows) rows of no field")
        // What the writer makes of the values reads back to the same values.
        let rowsOfValues = (0 ..< rows).map { Array(array.values[$0 * columns ..< ($0 + 1) * columns]) }
        let text = Array(CSVFormat.encode(header: table.header.map { $0.indices.map { "c\($0)" } }, rows: rowsOfValues).utf8)
        do {
            let again = try CSVFormat.decode(text, path: "again.csv")
            require(again.array.shape == array.shape && sameValues(again.array.values, array.values, bitwise: false), "round trip changed the values")
        } catch {
            require(false, "round trip refused: \(error)")
        }
        // The validation the command line applies next: a typed error or a finite cloud.
        if let cloud = try? PointCloud(coordinates: array.values, dimension: columns, name: "fuzz") {
            require(cloud.count == rows && cloud.coordinates.allSatisfy(\.isFinite) && cloud.mass.isFinite && cloud.mass > 0, "invalid cloud accepted")
        }
    }
    return 0
}

/// Every comma- or line-separated field: when DecimalParser answers, strtod reads the whole
/// field to the same double.
func checkDecimalParser(fieldsOf bytes: [UInt8]) {
    var start = 0
    for end in 0 ... bytes.count where end == bytes.count || bytes[end] == 0x2C || bytes[end] == 0x0A || bytes[end] == 0x0D {
        defer { start = end + 1 }
        guard end > start, end - start <= 400 else { continue }
        let field = Array(bytes[start ..< end])
        guard let fast = field.withUnsafeBufferPointer({ DecimalParser.parse($0.baseAddress!, count: $0.count) }) else { continue }
        let text = field.map { CChar(bitPattern: $0) } + [0]
        text.withUnsafeBufferPointer { p in
            var endPointer: UnsafeMutablePointer<CChar>? = nil
            let slow = strtod(p.baseAddress!, &endPointer)
            require(endPointer == UnsafeMutablePointer(mutating: p.baseAddress! + field.count),
                    "DecimalParser read '\(String(decoding: field, as: UTF8.self))' as \(fast), strtod stops early")
            require(slow.bitPattern == fast.bitPattern,
                    "DecimalParser read '\(String(decoding: field, as: UTF8.self))' as \(fast), strtod as \(slow)")
        }
    }
}
