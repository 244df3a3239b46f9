/// Text from the outside (a field of a data file, a key of a spec, a path) made safe to quote in
/// a one-line message.
///
/// An error message echoes what it could not parse. Echoed raw, a newline would split the
/// message, a terminal escape sequence would be executed by the terminal, and a bidirectional
/// override would reorder what the reader sees. Here every character that does not print as
/// itself becomes a visible escape: `\n`, `\r`, `\t`, `\xNN` for other ASCII control bytes and
/// bytes that are not UTF-8, `\u{NNNN}` for other non-printing characters (controls, format
/// characters such as U+202E, line and paragraph separators, private-use and unassigned code
/// points). Backslashes are kept as they are, so escaping twice changes nothing.
public enum MessageText {
    /// `text` followed by spaces up to `width` characters, for aligned text columns. Unlike
    /// `padding(toLength:withPad:startingAt:)` it never cuts: a longer text is kept whole, so a
    /// column can be ragged but never show a wrong number (`d = 1000000000` stays ten digits).
    public static func padded(_ text: String, to width: Int) -> String {
        text.count >= width ? text : text + String(repeating: " ", count: width - text.count)
    }

    /// `text` with its non-printing characters escaped (no length limit: use for paths).
    public static func escaped(_ text: String) -> String {
        var out = ""
        out.reserveCapacity(text.utf8.count)
        for scalar in text.unicodeScalars { append(scalar, to: &out) }
        return out
    }

    /// `text` escaped and cut to about `limit` characters (use for values echoed from a file).
    public static func excerpt(_ text: String, limit: Int = 60) -> String {
        excerpt(bytes: Array(text.utf8), limit: limit)
    }

    /// Bytes read from a file, decoded as UTF-8 where they are valid and escaped (`\xNN`) where
    /// not, cut to about `limit` characters with `...` and the full length.
    public static func excerpt(bytes: some Collection<UInt8>, limit: Int = 60) -> String {
        let bytes = Array(bytes)
        var out = ""
        var iterator = bytes.makeIterator()
        var parser = Unicode.UTF8.ForwardParser()
        var offset = 0
        var characters = 0
        while true {
            if characters >= limit {
                out += "...(\(bytes.count) bytes)"
                break
            }
            switch parser.parseScalar(from: &iterator) {
            case .valid(let encoded):
                append(Unicode.UTF8.decode(encoded), to: &out)
                offset += encoded.count
            case .error(let length):
                for b in bytes[offset ..< offset + length] { out += hex(b) }
                offset += length
            case .emptyInput:
                return out
            }
            characters += 1
        }
        return out
    }

    private static func append(_ scalar: Unicode.Scalar, to out: inout String) {
        switch scalar {
        case "\n": out += "\\n"
        case "\r": out += "\\r"
        case "\t": out += "\\t"
        default:
            if scalar.value < 0x80 {
                if scalar.value < 0x20 || scalar.value == 0x7F { out += hex(UInt8(scalar.value)) } else { out.unicodeScalars.append(scalar) }
                return
            }
            switch scalar.properties.generalCategory {
            case .control, .format, .lineSeparator, .paragraphSeparator, .privateUse, .surrogate, .unassigned:
                out += "\\u{" + String(scalar.value, radix: 16, uppercase: true) + "}"
            default:
                out.unicodeScalars.append(scalar)
            }
        }
    }

    private static func hex(_ byte: UInt8) -> String {
        let digits = Array("0123456789ABCDEF")
        return "\\x" + String(digits[Int(byte >> 4)]) + String(digits[Int(byte & 15)])
    }
}
