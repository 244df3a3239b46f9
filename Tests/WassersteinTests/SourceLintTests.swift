import Foundation
import Testing

/// Rules of the source tree that no compiler checks.
@Suite("Source rules")
struct SourceLintTests {
    /// The package's `Sources` folder, found from this file's path (Tests/WassersteinTests/...).
    static let sources = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("Sources")

    static func swiftFiles() -> [(path: String, text: String)] {
        let root = sources.path
        let names = (FileManager.default.enumerator(atPath: root)?.allObjects as? [String] ?? []).filter { $0.hasSuffix(".swift") }
        return names.sorted().compactMap { name in
            (try? String(contentsOfFile: root + "/" + name, encoding: .utf8)).map { ("Sources/" + name, $0) }
        }
    }

    /// The places where `Int(...)` converts what reads as a floating-point expression without
    /// a label: such a conversion traps on NaN and beyond `Int.max`. Text-based, so it sees what
    /// the expression says (`.rounded`, `log10(`, `Double(`, a literal like `1e-9`), not its type.
    static func bareFloatingConversions(in text: String) -> [String] {
        let markers = [".rounded", "squareRoot", "log(", "log2(", "log10(", "exp(", "sqrt(", "ceil(", "floor(",
                       "pow(", "Double(", "Float(", ".pi", ".ulp"]
        var found = [String]()
        let chars = Array(text.utf8)
        func isWordByte(_ c: UInt8) -> Bool {
            c == UInt8(ascii: "_") || c == UInt8(ascii: ".") || (c >= 48 && c <= 57) || (c | 0x20 >= 97 && c | 0x20 <= 122)
        }
        var i = 0
        while i + 4 <= chars.count {
            defer { i += 1 }
            // `Int(`, `Int32(`, `UInt(`, `UInt64(`, ...: every integer initialiser traps the same way.
            guard chars[i] == UInt8(ascii: "I"), chars[i + 1] == UInt8(ascii: "n"), chars[i + 2] == UInt8(ascii: "t") else { continue }
            var start = i
            if start > 0 && chars[start - 1] == UInt8(ascii: "U") { start -= 1 }
            if start > 0 && isWordByte(chars[start - 1]) { continue }
            var open = i + 3
            while open < chars.count && chars[open] >= 48 && chars[open] <= 57 { open += 1 }
            guard open < chars.count, chars[open] == UInt8(ascii: "(") else { continue }
            var depth = 1, j = open + 1
            while j < chars.count && depth > 0 {
                if chars[j] == UInt8(ascii: "(") { depth += 1 } else if chars[j] == UInt8(ascii: ")") { depth -= 1 }
                j += 1
            }
            let name = String(decoding: chars[start ..< open], as: UTF8.self)
            let argument = String(decoding: chars[(open + 1) ..< max(open + 1, j - 1)], as: UTF8.self)
            // A labelled initialiser (clampingCount:, clamping:to:, exactly:, truncatingIfNeeded:) is checked.
            if argument.range(of: #"^\s*[A-Za-z]+:"#, options: .regularExpression) != nil { continue }
            let floating = markers.contains { argument.contains($0) }
                || argument.range(of: #"[0-9]\.[0-9]|[0-9]e[-+]?[0-9]"#, options: .regularExpression) != nil
            if floating {
                let line = chars[..<i].reduce(1) { $0 + ($1 == 10 ? 1 : 0) }
                found.append("line \(line): \(name)(\(argument))")
            }
        }
        return found
    }

    @Test("The rule's detector finds what it must and passes the checked forms")
    func detector() {
        #expect(Self.bareFloatingConversions(in: "let n = Int((a / b).rounded())").count == 1)
        #expect(Self.bareFloatingConversions(in: "let e = Int(log10(x))\nlet k = Int(x * 1e-9)").count == 2)
        #expect(Self.bareFloatingConversions(in: "let n = Int(clampingCount: (a / b).rounded(), limit: 9)").isEmpty)
        #expect(Self.bareFloatingConversions(in: "let m = Int(count); let k = UInt32(bits)").isEmpty)
        #expect(Self.bareFloatingConversions(in: "p.tm_lim = Int32((t * 1000).rounded(.up)); let u = UInt(x.rounded())").count == 2)
        #expect(Self.bareFloatingConversions(in: "let ok = toInt(x.rounded()); let s = MyInt32(y.rounded())").isEmpty)
    }

    @Test("No bare Int( of a floating-point expression in Sources: counts go through Int(clampingCount:limit:) or Int(clamping:to:)")
    func noBareFloatingConversions() {
        let files = Self.swiftFiles()
        #expect(files.count > 50, "Sources not found at \(Self.sources.path)")
        for (path, text) in files {
            let found = Self.bareFloatingConversions(in: text)
            #expect(found.isEmpty, "\(path): \(found.joined(separator: "; "))")
        }
    }
}
