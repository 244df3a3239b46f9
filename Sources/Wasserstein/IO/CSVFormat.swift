#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Reading and writing numeric CSV tables: one record per line, comma-separated, with an
/// optional header line (a first line that is not all numbers).
public enum CSVFormat {
    /// A parsed table: the header (if the file had one) and the numbers.
    public struct Table: Sendable, Equatable {
        /// Column names from the header line, or `nil`.
        public var header: [String]?
        /// The numbers, shape `[rows, columns]`.
        public var array: NumericArray
    }

    /// Reads a numeric CSV file. Blank lines are skipped; every record must have the same number
    /// of fields; `nan`/`inf` parse (and are rejected later by the measure validation).
    ///
    /// - Throws: ``DataFileError`` for a missing, unreadable (not a regular file, larger than
    ///   `maximumBytes`) or malformed file.
    public static func read(path: String, maximumBytes: Int = FileAccess.defaultMaximumBytes) throws -> Table {
        try decode(try FileAccess.readBytes(path: path, maximumBytes: maximumBytes), path: path)
    }

    /// Parses the bytes of a numeric CSV file. `path` only names it in error messages.
    ///
    /// A UTF-8 byte order mark is skipped. The first record is a header only when none of its
    /// fields is a number (`x,y`): a first record that is partly numeric (`1e,0`, `x,1`) is a
    /// malformed row, reported with its line and column, never dropped as a header.
    ///
    /// Records made only of numbers take a fast path (`DecimalParser`, no allocation per
    /// line); once the first record has fixed the column count, a large remainder is parsed in
    /// one chunk per core. Any line the fast path does not accept goes through the general
    /// per-line code below, which decides on headers and reports errors, so the fast path
    /// changes the speed and nothing else.
    public static func decode(_ bytes: [UInt8], path: String = "<data>") throws -> Table {
        try bytes.withUnsafeBufferPointer { try decode(buffer: $0, path: path) }
    }

    private static func decode(buffer bytes: UnsafeBufferPointer<UInt8>, path: String) throws -> Table {
        var header: [String]? = nil
        var values = [Double]()
        var columns = -1
        var rows = 0
        var lineNumber = 0
        let n = bytes.count
        // A byte order mark (which spreadsheet programs write) is not part of the first field.
        var start = n >= 3 && bytes[0] == 0xEF && bytes[1] == 0xBB && bytes[2] == 0xBF ? 3 : 0
        var field = [CChar]()
        field.reserveCapacity(64)
        var record = [Double]()
        var triedChunks = false
        while start < n {
            if !triedChunks && columns >= 0 && n - start >= parallelMinimumBytes {
                // The rest in parallel chunks; on any irregular line, carry on line by line.
                triedChunks = true
                if let (allValues, chunkRows) = parseRecordsInChunks(bytes, from: start, columns: columns, after: values) {
                    values = allValues
                    rows += chunkRows
                    break
                }
            }
            var end = start
            while end < n && bytes[end] != 0x0A { end += 1 }  // '\n'
            lineNumber += 1
            var lineEnd = end
            if lineEnd > start && bytes[lineEnd - 1] == 0x0D { lineEnd -= 1 }  // '\r'
            defer { start = end + 1 }
            // Skip blank lines.
            var isBlank = true
            for k in start ..< lineEnd where bytes[k] != 0x20 && bytes[k] != 0x09 { isBlank = false; break }
            if isBlank { continue }

            // Fast path: a record of numbers with the expected field count.
            let before = values.count
            if let count = appendRecord(bytes, from: start, to: lineEnd, into: &values, buffer: &field),
               columns < 0 || count == columns {
                columns = count
                rows += 1
                continue
            }
            values.removeSubrange(before...)

            record.removeAll(keepingCapacity: true)
            var fieldRanges = [Range<Int>]()
            var firstBad: Int? = nil  // the field index of the first field that is not a number
            var fieldStart = start
            var k = start
            while k <= lineEnd {
                if k == lineEnd || bytes[k] == 0x2C {  // ','
                    if let v = parseDouble(bytes[fieldStart ..< k], buffer: &field) {
                        record.append(v)
                    } else if firstBad == nil {
                        firstBad = fieldRanges.count
                    }
                    fieldRanges.append(fieldStart ..< k)
                    fieldStart = k + 1
                }
                k += 1
            }
            if let bad = firstBad {
                // A header only when it comes first and holds no number at all.
                if rows == 0 && header == nil && record.isEmpty {
                    header = fieldRanges.map { String(decoding: bytes[$0], as: UTF8.self).trimmed }
                    continue
                }
                let text = bytes[fieldRanges[bad]]
                let isEmpty = !text.contains { $0 != 0x20 && $0 != 0x09 && $0 != 0x22 }
                throw DataFileError.malformed(
                    path: path, reason: "line \(lineNumber), column \(bad + 1): "
                        + (isEmpty ? "empty field" : "'\(MessageText.excerpt(bytes: text))' is not a number"))
            }
            if columns < 0 {
                columns = record.count
            } else if record.count != columns {
                throw DataFileError.malformed(
                    path: path, reason: "line \(lineNumber) has \(record.count) fields, expected \(columns)")
            }
            values.append(contentsOf: record)
            rows += 1
        }
        if let header, columns >= 0, header.count != columns {
            throw DataFileError.malformed(path: path, reason: "header has \(header.count) fields but the rows have \(columns)")
        }
        return Table(header: header, array: NumericArray(shape: [rows, max(columns, 0)], values: values))
    }

    /// Remainders at least this large are parsed in parallel chunks.
    static let parallelMinimumBytes = 1 << 20

    /// Parses the fields of one line `bytes[start ..< end]` (no line break) and appends them to
    /// `values`; the number of fields, or `nil` as soon as one is not a number (then some
    /// values may have been appended: the caller removes them).
    @inline(__always)
    private static func appendRecord(_ bytes: UnsafeBufferPointer<UInt8>, from start: Int, to end: Int,
                                     into values: inout [Double], buffer: inout [CChar]) -> Int? {
        let base = bytes.baseAddress!
        var fieldStart = start
        var count = 0
        while true {
            var k = fieldStart
            while k < end && base[k] != 0x2C { k += 1 }  // ','
            guard let v = DecimalParser.parse(base + fieldStart, count: k - fieldStart)
                    ?? parseDouble(bytes[fieldStart ..< k], buffer: &buffer)
            else { return nil }
            values.append(v)
            count += 1
            if k == end { return count }
            fieldStart = k + 1
        }
    }

    /// Parses `bytes[start...]` (starting at a line start) as records of `columns` numbers,
    /// blank lines skipped, one chunk per core split at line breaks: `earlier` followed by the
    /// numbers, and the number of records. `nil` when a non-blank line is anything else: the
    /// caller then parses line by line to report it.
    private static func parseRecordsInChunks(_ bytes: UnsafeBufferPointer<UInt8>, from start: Int,
                                             columns: Int, after earlier: [Double]) -> ([Double], Int)? {
        let n = bytes.count
        let chunkCount = max(1, min(Parallel.coreCount, (n - start) / (parallelMinimumBytes / 2)))
        var cuts = [start]
        for c in 1 ..< chunkCount {
            var cut = max(cuts[c - 1], start + (n - start) * c / chunkCount)
            while cut < n && bytes[cut] != 0x0A { cut += 1 }
            cuts.append(min(n, cut + 1))
        }
        cuts.append(n)
        let bounds = cuts
        let results = UnsafeMutablePointer<([Double], Int)?>.allocate(capacity: chunkCount)
        results.initialize(repeating: nil, count: chunkCount)
        defer {
            results.deinitialize(count: chunkCount)
            results.deallocate()
        }
        // Each task writes only its own result slot.
        Parallel.forEachChunk(count: chunkCount) { range in
            for c in range {
                results[c] = parseRecords(bytes, from: bounds[c], to: bounds[c + 1], columns: columns,
                                          after: c == 0 ? earlier : [])
            }
        }
        var values = [Double]()
        var rows = 0
        for c in 0 ..< chunkCount {
            guard let (chunkValues, chunkRows) = results[c] else { return nil }
            if c == 0 { values = chunkValues } else { values.append(contentsOf: chunkValues) }
            rows += chunkRows
        }
        return (values, rows)
    }

    /// The records of `bytes[start ..< end]` after `earlier`, as
    /// ``parseRecordsInChunks(_:from:columns:after:)`` says.
    private static func parseRecords(_ bytes: UnsafeBufferPointer<UInt8>, from start: Int, to end: Int,
                                     columns: Int, after earlier: [Double]) -> ([Double], Int)? {
        var values = earlier
        // About 20 bytes per number is typical of shortest round-trip text.
        values.reserveCapacity(earlier.count + (end - start) / 16 + 16)
        var field = [CChar]()
        field.reserveCapacity(64)
        var rows = 0
        var lineStart = start
        while lineStart < end {
            var lineEnd = lineStart
            while lineEnd < end && bytes[lineEnd] != 0x0A { lineEnd += 1 }
            let next = lineEnd + 1
            if lineEnd > lineStart && bytes[lineEnd - 1] == 0x0D { lineEnd -= 1 }
            var isBlank = true
            for k in lineStart ..< lineEnd where bytes[k] != 0x20 && bytes[k] != 0x09 { isBlank = false; break }
            if !isBlank {
                guard appendRecord(bytes, from: lineStart, to: lineEnd, into: &values, buffer: &field) == columns else {
                    return nil
                }
                rows += 1
            }
            lineStart = next
        }
        return (values, rows)
    }

    /// Parses one field with `strtod`, accepting surrounding spaces and nothing else.
    private static func parseDouble<Bytes: Collection<UInt8>>(_ slice: Bytes, buffer: inout [CChar]) -> Double? {
        buffer.removeAll(keepingCapacity: true)
        for b in slice where b != 0x20 && b != 0x09 && b != 0x22 { buffer.append(CChar(bitPattern: b)) }
        if buffer.isEmpty { return nil }
        buffer.append(0)
        return buffer.withUnsafeBufferPointer { p -> Double? in
            var endPointer: UnsafeMutablePointer<CChar>? = nil
            let v = strtod(p.baseAddress!, &endPointer)
            guard let endPointer, endPointer.pointee == 0 else { return nil }
            return v
        }
    }

    /// Formats a table as CSV text. Numbers use Swift's shortest round-tripping representation.
    public static func encode(header: [String]?, rows: [[Double]]) -> String {
        var out = ""
        if let header { out += header.joined(separator: ",") + "\n" }
        for row in rows {
            out += row.map { formatNumber($0) }.joined(separator: ",") + "\n"
        }
        return out
    }

    /// Writes a numeric table to `path`.
    public static func write(header: [String]?, rows: [[Double]], path: String) throws {
        try FileAccess.writeText(encode(header: header, rows: rows), path: path)
    }

    /// Writes a table whose rows mix numbers and text (already formatted as strings).
    public static func write(header: [String]?, textRows: [[String]], path: String) throws {
        var out = ""
        if let header { out += header.joined(separator: ",") + "\n" }
        for row in textRows { out += row.joined(separator: ",") + "\n" }
        try FileAccess.writeText(out, path: path)
    }

    /// A number as CSV/JSON text: integers without a fraction, others round-tripping.
    public static func formatNumber(_ v: Double) -> String {
        if v.isNaN { return "nan" }
        if v.isInfinite { return v > 0 ? "inf" : "-inf" }
        if v == v.rounded(), abs(v) < 1e15 { return String(Int64(v)) }
        return "\(v)"
    }

    /// A time `k * step` without the round-off of the product (`0.30000000000000004` -> `0.3`):
    /// rounded to 12 significant digits, far below any step size.
    public static func cleanTime(_ t: Double) -> Double {
        guard t.isFinite, t != 0 else { return t }
        let scale = pow(10, 11 - floor(log10(abs(t))))
        return (t * scale).rounded() / scale
    }
}

extension String {
    fileprivate var trimmed: String {
        var s = Substring(self)
        while let c = s.first, c == " " || c == "\t" || c == "\"" { s.removeFirst() }
        while let c = s.last, c == " " || c == "\t" || c == "\"" { s.removeLast() }
        return String(s)
    }
}
