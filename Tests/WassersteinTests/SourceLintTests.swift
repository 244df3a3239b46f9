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
        var i = 0
        while i + 4 <= chars.count {
            defer { i += 1 }
            guard chars[i] == UInt8(ascii: "I"), chars[i + 1] == UInt8(ascii: "n"), chars[i + 2] == UInt8(ascii: "t"),
                  chars[i + 3] == UInt8(ascii: "(") else { continue }
            if i > 0 {
                let before = chars[i - 1]
                if before == UInt8(ascii: "_") || before == UInt8(ascii: ".") || (before >= 48 && before <= 57)
                    || (before | 0x20 >= 97 && before | 0x20 <= 122) { continue }
            }
            var depth = 1, j = i + 4
            while j < chars.count && depth > 0 {
                if chars[j] == UInt8(ascii: "(") { depth += 1 } else if chars[j] == UInt8(ascii: ")") { depth -= 1 }
                j += 1
            }
            let argument = String(decoding: chars[(i + 4) ..< max(i + 4, j - 1)], as: UTF8.self)
            // A labelled initialiser (clampingCount:, clamping:to:, exactly:, truncatingIfNeeded:) is checked.
            if argument.range(of: #"^\s*[A-Za-z]+:"#, options: .regularExpression) != nil { continue }
            let floating = markers.contains { argument.contains($0) }
                || argument.range(of: #"[0-9]\.[0-9]|[0-9]e[-+]?[0-9]"#, options: .regularExpression) != nil
            if floating {
                let line = chars[..<i].reduce(1) { $0 + ($1 == 10 ? 1 : 0) }
                found.append("line \(line): Int(\(argument))")
            }
        }
        return found
    }

    @Test("The rule's detector finds what it must and passes the checked forms")
    func detector() {
        #expect(Self.bareFloatingConversions(in: "let n = Int((a / b).rounded())").count == 1)
        #expect(Self.bareFloatingConversions(in: "let e = Int(log10(x))\nlet k = Int(x * 1e-9)").count == 2)
        #expect(Self.bareFloatingConversions(in: "let n = Int(clampingCount: (a / b).rounded(), limit: 9)").isEmpty)
        #expect(Self.bareFloatingConversions(in: "let n = UInt(x.rounded()); let m = Int(count)").isEmpty)
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
