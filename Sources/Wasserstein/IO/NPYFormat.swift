import Foundation

/// Reading and writing NumPy `.npy` files (format versions 1.0, 2.0 and 3.0).
///
/// Reads little- or big-endian `float64`, `float32`, and signed or unsigned integer arrays of
/// any shape, in C or Fortran order, into row-major doubles; writes little-endian `float64`,
/// which `numpy.load` reads directly.
public enum NPYFormat {
    private static let magic: [UInt8] = [0x93, 0x4E, 0x55, 0x4D, 0x50, 0x59]  // "\x93NUMPY"

    /// Reads an `.npy` file (a regular file of at most `maximumBytes`).
    ///
    /// Little-endian `float64` in C order (what `numpy.save` writes by default) is read from the
    /// file straight into the values, with no intermediate copy of the bytes: at `10^7` values
    /// that copy costs as much as the read. Other element types are read whole and converted.
    public static func read(path: String, maximumBytes: Int = FileAccess.defaultMaximumBytes) throws -> NumericArray {
        try FileAccess.withRegularFile(path: path, maximumBytes: maximumBytes) { file in
            // Magic, version and header length take 10 or 12 bytes; the header dictionary follows.
            var prefix = try file.bytes(count: min(file.size, 4096), at: 0)
            if prefix.count >= 12 {
                let end = prefix[6] == 1 ? 10 + (Int(prefix[8]) | Int(prefix[9]) << 8)
                    : 12 + (Int(prefix[8]) | Int(prefix[9]) << 8 | Int(prefix[10]) << 16 | Int(prefix[11]) << 24)
                let wanted = min(file.size, end)
                if wanted > prefix.count { prefix = try file.bytes(count: wanted, at: 0) }
            }
            let header = try Header(prefix, fileSize: file.size, path: path)
            if header.element.isNativeFloat64 && !(header.fortran && header.shape.count >= 2) {
                let values = try [Double](unsafeUninitializedCapacity: header.count) { buffer, initialized in
                    initialized = 0
                    if let base = buffer.baseAddress {
                        try file.readExactly(into: UnsafeMutableRawPointer(base), count: header.byteCount, at: header.payloadStart)
                    }
                    initialized = header.count
                }
                return NumericArray(shape: header.shape, values: values)
            }
            let payload = try file.bytes(count: header.byteCount, at: header.payloadStart)
            guard payload.count == header.byteCount else {
                throw DataFileError.unreadable(path: path, reason: "the file shrank while it was read")
            }
            return payload.withUnsafeBytes { header.values(from: $0.baseAddress!) }
        }
    }

    /// Decodes the bytes of an `.npy` file. `path` only names the file in error messages.
    public static func decode(_ data: [UInt8], path: String = "<data>") throws -> NumericArray {
        let header = try Header(data, fileSize: data.count, path: path)
        return data.withUnsafeBytes { header.values(from: $0.baseAddress! + header.payloadStart) }
    }

    /// What the header of an `.npy` file says: element type, shape, order, and where the data
    /// starts.
    private struct Header {
        let element: ElementType
        let shape: [Int]
        let fortran: Bool
        let payloadStart: Int
        /// The number of elements, and the bytes they take.
        let count: Int
        let byteCount: Int

        /// Parses the header at the start of `data`, and checks that a file of `fileSize` bytes
        /// holds the data the header announces.
        init(_ data: [UInt8], fileSize: Int, path: String) throws {
            func bad(_ reason: String) -> DataFileError { .malformed(path: path, reason: reason) }
            guard data.count >= 10, Array(data[0 ..< 6]) == NPYFormat.magic else {
                throw bad("not a NumPy .npy file (bad magic string)")
            }
            let major = data[6]
            let headerLength: Int
            let headerStart: Int
            switch major {
            case 1:
                headerLength = Int(data[8]) | Int(data[9]) << 8
                headerStart = 10
            case 2, 3:
                guard data.count >= 12 else { throw bad("truncated .npy header") }
                headerLength = Int(data[8]) | Int(data[9]) << 8 | Int(data[10]) << 16 | Int(data[11]) << 24
                headerStart = 12
            default:
                throw bad("unsupported .npy format version \(major)")
            }
            guard headerStart + headerLength <= data.count,
                  let header = String(bytes: data[headerStart ..< headerStart + headerLength], encoding: major == 3 ? .utf8 : .isoLatin1)
            else { throw bad("truncated .npy header") }

            guard let descr = NPYFormat.headerValue(header, key: "descr") else { throw bad("header has no 'descr'") }
            guard let fortranText = NPYFormat.headerValue(header, key: "fortran_order") else { throw bad("header has no 'fortran_order'") }
            guard let shapeText = NPYFormat.headerValue(header, key: "shape") else { throw bad("header has no 'shape'") }
            switch fortranText {
            case "True": fortran = true
            case "False": fortran = false
            default: throw bad("bad fortran_order '\(MessageText.excerpt(fortranText))'")
            }
            shape = try NPYFormat.parseShape(shapeText, bad: bad)
            let type = descr.trimmingCharacters(in: CharacterSet(charactersIn: "'\""))
            guard let element = ElementType(descriptor: type) else {
                throw bad("unsupported dtype '\(MessageText.excerpt(type))' (expected float64, float32 or an integer type)")
            }
            self.element = element
            var count = 1
            for s in shape {
                let (p, overflow) = count.multipliedReportingOverflow(by: s)
                guard !overflow else { throw bad("shape \(shape) is too large") }
                count = p
            }
            self.count = count
            payloadStart = headerStart + headerLength
            let (needed, overflow) = count.multipliedReportingOverflow(by: element.size)
            guard !overflow, fileSize - payloadStart >= needed else {
                throw bad("file holds \(fileSize - payloadStart) data bytes, shape \(shape) of \(type) needs \(needed)")
            }
            byteCount = needed
        }

        /// The values of the payload at `base`, row-major.
        func values(from base: UnsafeRawPointer) -> NumericArray {
            var values = [Double](unsafeUninitializedCapacity: count) { buffer, initialized in
                if let out = buffer.baseAddress { element.convert(base, count: count, into: out) }
                initialized = count
            }
            if fortran && shape.count >= 2 {
                values = NPYFormat.transposeFromFortran(values, shape: shape)
            }
            return NumericArray(shape: shape, values: values)
        }
    }

    /// Writes `array` as a little-endian float64 `.npy` file (format 1.0).
    public static func write(_ array: NumericArray, path: String) throws {
        try FileAccess.writeBytes(encode(array), path: path)
    }

    /// The bytes of a float64 `.npy` file holding `array`.
    public static func encode(_ array: NumericArray) -> [UInt8] {
        let shapeText: String
        if array.shape.count == 1 {
            shapeText = "(\(array.shape[0]),)"
        } else {
            shapeText = "(" + array.shape.map(String.init).joined(separator: ", ") + ")"
        }
        var header = "{'descr': '<f8', 'fortran_order': False, 'shape': \(shapeText), }"
        // Pad with spaces so that magic + version + length + header + "\n" is a multiple of 64.
        let unpadded = 10 + header.utf8.count + 1
        header += String(repeating: " ", count: (64 - unpadded % 64) % 64) + "\n"
        var bytes = magic + [1, 0]
        let length = header.utf8.count
        bytes.append(UInt8(length & 0xFF))
        bytes.append(UInt8(length >> 8))
        bytes.append(contentsOf: Array(header.utf8))
        bytes.reserveCapacity(bytes.count + array.values.count * 8)
        for v in array.values {
            let bits = v.bitPattern.littleEndian
            withUnsafeBytes(of: bits) { bytes.append(contentsOf: $0) }
        }
        return bytes
    }

    // MARK: - Header parsing

    /// The text of `'key': value` in the header dictionary (value without trailing comma).
    private static func headerValue(_ header: String, key: String) -> String? {
        let patterns = ["'\(key)'", "\"\(key)\""]
        for p in patterns {
            guard let keyRange = header.range(of: p) else { continue }
            var rest = header[keyRange.upperBound...].drop { $0 == " " }
            guard rest.first == ":" else { return nil }
            rest = rest.dropFirst().drop { $0 == " " }
            if rest.first == "(" {
                guard let close = rest.firstIndex(of: ")") else { return nil }
                return String(rest[rest.startIndex ... close])
            }
            let end = rest.firstIndex { $0 == "," || $0 == "}" } ?? rest.endIndex
            return String(rest[rest.startIndex ..< end]).trimmingCharacters(in: .whitespaces)
        }
        return nil
    }

    private static func parseShape(_ text: String, bad: (String) -> DataFileError) throws -> [Int] {
        let inner = text.trimmingCharacters(in: CharacterSet(charactersIn: "() "))
        if inner.isEmpty { return [] }
        var shape = [Int]()
        for part in inner.split(separator: ",") {
            let t = part.trimmingCharacters(in: .whitespaces)
            if t.isEmpty { continue }
            guard let v = Int(t), v >= 0 else { throw bad("bad shape \(MessageText.excerpt(text))") }
            shape.append(v)
        }
        return shape
    }

    private static func transposeFromFortran(_ values: [Double], shape: [Int]) -> [Double] {
        // Fortran order: the first index varies fastest. Map each row-major index to its
        // column-major position.
        let rank = shape.count
        var out = [Double](repeating: 0, count: values.count)
        var fortranStrides = [Int](repeating: 1, count: rank)
        for k in 1 ..< rank { fortranStrides[k] = fortranStrides[k - 1] * shape[k - 1] }
        var index = [Int](repeating: 0, count: rank)
        for r in 0 ..< values.count {
            var f = 0
            for k in 0 ..< rank { f += index[k] * fortranStrides[k] }
            out[r] = values[f]
            var k = rank - 1
            while k >= 0 {
                index[k] += 1
                if index[k] < shape[k] { break }
                index[k] = 0
                k -= 1
            }
        }
        return out
    }

    /// The element types the reader understands.
    private struct ElementType {
        enum Kind { case float, signed, unsigned }
        let kind: Kind
        let size: Int
        let bigEndian: Bool

        /// Little-endian float64: the file's bytes are the values.
        var isNativeFloat64: Bool { kind == .float && size == 8 && !bigEndian }

        init?(descriptor: String) {
            guard descriptor.count >= 3 else { return nil }
            let order = descriptor.first!
            let body = descriptor.dropFirst()
            switch order {
            case "<", "|", "=": bigEndian = false
            case ">": bigEndian = true
            default: return nil
            }
            switch body {
            case "f8": (kind, size) = (.float, 8)
            case "f4": (kind, size) = (.float, 4)
            case "i8": (kind, size) = (.signed, 8)
            case "i4": (kind, size) = (.signed, 4)
            case "i2": (kind, size) = (.signed, 2)
            case "i1": (kind, size) = (.signed, 1)
            case "u8": (kind, size) = (.unsigned, 8)
            case "u4": (kind, size) = (.unsigned, 4)
            case "u2": (kind, size) = (.unsigned, 2)
            case "u1": (kind, size) = (.unsigned, 1)
            default: return nil
            }
        }

        func convert(_ base: UnsafeRawPointer, count: Int, into out: UnsafeMutablePointer<Double>) {
            func word<T: FixedWidthInteger>(_ t: T.Type, _ i: Int) -> T {
                let v = base.loadUnaligned(fromByteOffset: i * size, as: T.self)
                return bigEndian ? T(bigEndian: v) : T(littleEndian: v)
            }
            switch (kind, size) {
            case (.float, 8):
                if !bigEndian {
                    // The common case: copy straight through.
                    UnsafeMutableRawPointer(out).copyMemory(from: base, byteCount: count * 8)
                } else {
                    for i in 0 ..< count { out[i] = Double(bitPattern: word(UInt64.self, i)) }
                }
            case (.float, _): for i in 0 ..< count { out[i] = Double(Float(bitPattern: word(UInt32.self, i))) }
            case (.signed, 8): for i in 0 ..< count { out[i] = Double(word(Int64.self, i)) }
            case (.signed, 4): for i in 0 ..< count { out[i] = Double(word(Int32.self, i)) }
            case (.signed, 2): for i in 0 ..< count { out[i] = Double(word(Int16.self, i)) }
            case (.signed, _): for i in 0 ..< count { out[i] = Double(base.load(fromByteOffset: i, as: Int8.self)) }
            case (.unsigned, 8): for i in 0 ..< count { out[i] = Double(word(UInt64.self, i)) }
            case (.unsigned, 4): for i in 0 ..< count { out[i] = Double(word(UInt32.self, i)) }
            case (.unsigned, 2): for i in 0 ..< count { out[i] = Double(word(UInt16.self, i)) }
            case (.unsigned, _): for i in 0 ..< count { out[i] = Double(base.load(fromByteOffset: i, as: UInt8.self)) }
            }
        }
    }
}
