import Foundation
import Testing

/// Every `$ ` command of `Docs/Guide.md`, run with the built executable on the sample inputs
/// shipped in `Docs/samples/`, against the output the guide shows.
///
/// A command's output must match the guide line for line: text exactly, numbers to the digits
/// the guide shows (the guide's value must be the printed value rounded to those digits), and
/// durations (`0.12 s`, `96 us`, `"seconds":9.4e-05`) are not compared. So a change that moves a
/// printed value, renames a file or rewords a line fails here until the guide says the same.
@Suite("Guide commands")
struct GuideCommandTests {
    /// One `$ ` line of the guide and the lines shown after it.
    struct Command: Sendable, CustomTestStringConvertible {
        var line: Int
        var text: String
        var expected: [String]
        var testDescription: String { "Guide.md:\(line) \(text)" }
    }

    /// The commands of one fenced block: they run in order in one folder (`cat plan.csv` reads
    /// what the command before it wrote).
    struct Block: Sendable, CustomTestStringConvertible {
        var commands: [Command]
        var testDescription: String { commands.first.map { $0.testDescription } ?? "empty block" }
    }

    static let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent()
    static let guidePath = repository.appendingPathComponent("Docs/Guide.md").path
    static let samples = repository.appendingPathComponent("Docs/samples")

    /// The commands that take a minute or more in a debug build: the demo and the reduced-flow
    /// runs of sections 2.7-2.9 on the specs of `Docs/crosscheck/` and `Examples/`. They run
    /// with a release binary, named by the environment variable ``releaseBinaryVariable``, which
    /// `.ci/run` sets (so CI runs every command of the guide); without it they are skipped here.
    static func isLong(_ command: String) -> Bool {
        ["wasserstein demo", "--reference reduced --reference-nodes", "wasserstein reduced Examples/",
         "wasserstein dimensions Examples/"].contains { command.contains($0) }
    }

    /// The environment variable holding the path of a release build of `wasserstein`, for the
    /// long commands (``isLong(_:)``).
    static let releaseBinaryVariable = "WASSERSTEIN_GUIDE_RELEASE_BINARY"
    static let releaseBinary: String? = ProcessInfo.processInfo.environment[releaseBinaryVariable].flatMap { $0.isEmpty ? nil : $0 }

    /// The fenced blocks of the guide that hold `$ ` lines.
    static func blocks() -> [Block] {
        guard let text = try? String(contentsOfFile: guidePath, encoding: .utf8) else { return [] }
        var blocks = [Block]()
        var inFence = false
        var current = [Command]()
        for (index, raw) in text.components(separatedBy: "\n").enumerated() {
            if raw.hasPrefix("```") {
                if inFence, !current.isEmpty { blocks.append(Block(commands: current)) }
                current = []
                inFence.toggle()
                continue
            }
            guard inFence else { continue }
            if raw.hasPrefix("$ ") {
                current.append(Command(line: index + 1, text: String(raw.dropFirst(2)), expected: []))
            } else if !current.isEmpty {
                current[current.count - 1].expected.append(raw)
            }
        }
        // Blank lines separate a command's output from the next command.
        return blocks.map { b in
            Block(commands: b.commands.map { c in
                var c = c
                while c.expected.last?.trimmingCharacters(in: .whitespaces).isEmpty == true { c.expected.removeLast() }
                return c
            })
        }
    }

    static let allBlocks = blocks()
    static let runnableBlocks = allBlocks.filter { !$0.commands.contains { isLong($0.text) } }
    static let longBlocks = allBlocks.filter { $0.commands.contains { isLong($0.text) } }

    @Test("the guide has its commands and every sample file it names is in Docs/samples")
    func guideNamesShippedSamples() throws {
        let commands = Self.allBlocks.flatMap(\.commands)
        let run = Self.runnableBlocks.flatMap(\.commands)
        #expect(run.count >= 13, "found \(run.count) commands to run in \(Self.guidePath)")
        #expect(Self.longBlocks.flatMap(\.commands).count == 4)
        // One command form throughout: `swift run -c release wasserstein`, or a shell tool.
        for c in commands where c.text.contains("wasserstein ") {
            #expect(c.text.hasPrefix("swift run -c release wasserstein "), "\(c.testDescription): not in the guide's one form")
        }
        for c in commands {
            for word in c.text.split(separator: " ") where word.hasPrefix("Docs/") || word.hasPrefix("Examples/") {
                #expect(FileManager.default.fileExists(atPath: Self.repository.appendingPathComponent(String(word)).path),
                        "\(c.testDescription): \(word) is not shipped")
            }
            // Output goes under runs/: never beside the inputs or in the package root.
            for flag in ["--out ", "--plan "] {
                if let r = c.text.range(of: flag) {
                    let target = c.text[r.upperBound...].split(separator: " ").first.map(String.init) ?? ""
                    #expect(target.hasPrefix("runs/"), "\(c.testDescription): writes \(target)")
                }
            }
        }
    }

    @Test("the spec examples of section 3 are the shipped sample specs")
    func specExamplesAreTheSamples() throws {
        let text = try String(contentsOfFile: Self.guidePath, encoding: .utf8)
        // The JSON blocks that follow the section headings naming each sample.
        for (heading, file) in [("### 3.2", "relu-teacher.json"), ("### 3.3", "ou-grid.json")] {
            let section = try #require(text.range(of: heading))
            let open = try #require(text.range(of: "```json\n", range: section.upperBound ..< text.endIndex))
            let close = try #require(text.range(of: "\n```", range: open.upperBound ..< text.endIndex))
            let shown = try JSONSerialization.jsonObject(with: Data(text[open.upperBound ..< close.lowerBound].utf8)) as? NSDictionary
            let shipped = try JSONSerialization.jsonObject(with: Data(contentsOf: Self.samples.appendingPathComponent(file))) as? NSDictionary
            #expect(shown != nil && shown == shipped, "the guide's \(heading) spec differs from Docs/samples/\(file)")
        }
    }

    @Test("each guide command prints what the guide shows", arguments: runnableBlocks)
    func commandPrintsWhatTheGuideShows(_ block: Block) throws {
        try Self.check(block, executable: CommandRunner.executable.path)
    }

    @Test("each long guide command (demo, reduced flows) prints what the guide shows, with a release build",
          .enabled(if: releaseBinary != nil, "set \(releaseBinaryVariable) to a release build of wasserstein (.ci/run does)"),
          arguments: longBlocks)
    func longCommandPrintsWhatTheGuideShows(_ block: Block) throws {
        try Self.check(block, executable: try #require(Self.releaseBinary))
    }

    /// Runs the commands of `block` in a scratch folder holding the sample files and every other
    /// repository file a command names, and compares what they print with the guide.
    static func check(_ block: Block, executable: String) throws {
        let folder = try Scratch()
        try FileManager.default.createDirectory(at: folder.url.appendingPathComponent("Docs"), withIntermediateDirectories: true)
        try FileManager.default.copyItem(at: Self.samples, to: folder.url.appendingPathComponent("Docs/samples"))
        for word in block.commands.flatMap({ $0.text.split(separator: " ") }).map(String.init)
        where !word.hasPrefix("Docs/samples/") && (word.hasPrefix("Docs/") || word.hasPrefix("Examples/")) {
            let destination = folder.url.appendingPathComponent(word)
            try FileManager.default.createDirectory(at: destination.deletingLastPathComponent(), withIntermediateDirectories: true)
            if !FileManager.default.fileExists(atPath: destination.path) {
                try FileManager.default.copyItem(at: Self.repository.appendingPathComponent(word), to: destination)
            }
        }
        // A block that reads a run folder it does not write (`grep ... runs/compare/risk.svg`)
        // first runs the guide command that writes it.
        for c in block.commands {
            for producer in Self.allBlocks.flatMap(\.commands) where Self.readsOutput(of: producer, command: c) && !block.commands.contains(where: { $0.line == producer.line }) {
                let out = try Self.run(producer.text, in: folder.url, executable: executable)
                #expect(out.status == 0, "\(producer.testDescription): \(out.stderr)")
            }
        }
        for c in block.commands {
            let out = try Self.run(c.text, in: folder.url, executable: executable)
            // An example of an error shows the error line (standard error) and fails with 1 or 64.
            let showsError = c.expected.first?.hasPrefix("wasserstein: error: ") == true
            if showsError {
                #expect(out.status == 1 || out.status == 64, "\(c.testDescription): exit \(out.status)")
            } else {
                #expect(out.status == 0, "\(c.testDescription): exit \(out.status), \(out.stderr)")
            }
            let actual = (showsError ? out.stderr : out.stdout).split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
            let lines = actual.last == "" ? Array(actual.dropLast()) : actual
            #expect(lines.count == c.expected.count, "\(c.testDescription): \(lines.count) lines printed, the guide shows \(c.expected.count):\n\(out.stdout)")
            for (shown, printed) in zip(c.expected, lines) {
                #expect(Self.agrees(printed: printed, shown: shown), "\(c.testDescription)\n  guide:   \(shown)\n  printed: \(printed)")
            }
        }
    }

    /// Whether `command` reads a `runs/<name>` folder that `producer` writes with `--out`.
    static func readsOutput(of producer: Command, command: Command) -> Bool {
        guard let out = producer.text.range(of: "--out ") else { return false }
        let folder = producer.text[out.upperBound...].split(separator: " ").first.map(String.init) ?? ""
        return !folder.isEmpty && !command.text.contains("--out \(folder)") && command.text.contains(folder + "/")
    }

    /// Runs a guide command line with `/bin/sh` in `folder`, `swift run [-c release] wasserstein`
    /// replaced by the built executable.
    static func run(_ text: String, in folder: URL, executable: String = CommandRunner.executable.path) throws -> CommandRunner.Output {
        var line = text
        for prefix in ["swift run -c release wasserstein", "swift run wasserstein"] where line.hasPrefix(prefix) {
            line = "'" + executable + "'" + line.dropFirst(prefix.count)
        }
        return try CommandRunner.run(["-c", line], program: URL(fileURLWithPath: "/bin/sh"), in: folder)
    }

    // MARK: - Comparing a printed line with the guide's

    /// A duration as the commands print them (`96 us`, `0.12 s`, `9.62e-05 s`, `2 min 05 s`,
    /// `1 h 02 min`), or a JSON `seconds` member, with the blanks before it: tables pad a column
    /// to the width of what they print (`    0.05 s` against `      7 ms`), so the padding goes
    /// with the time it aligns.
    static let duration = try! NSRegularExpression(pattern: #" *(?:([0-9]+ h [0-9]+ min\b)|([0-9]+ min [0-9]+ s\b)|(-?[0-9]+(\.[0-9]+)?([eE][-+]?[0-9]+)? (s|ms|us)\b)|("seconds":[-+0-9.eE]+))"#)
    static let number = try! NSRegularExpression(pattern: #"-?[0-9]+(\.[0-9]+)?([eE][-+]?[0-9]+)?"#)

    /// The line with its durations replaced by `<time>`, split into text and numbers.
    static func tokens(_ line: String) -> [(text: String, number: String?)] {
        let ns = NSMutableString(string: line)
        _ = duration.replaceMatches(in: ns, range: NSRange(location: 0, length: ns.length), withTemplate: " <time>")
        let s = ns as String
        var out = [(text: String, number: String?)]()
        var last = s.startIndex
        for m in number.matches(in: s, range: NSRange(s.startIndex..., in: s)) {
            let r = Range(m.range, in: s)!
            out.append((String(s[last ..< r.lowerBound]), nil))
            out.append(("", String(s[r])))
            last = r.upperBound
        }
        out.append((String(s[last...]), nil))
        return out
    }

    /// Half a unit in the last digit the guide shows: `0.0329` -> 5e-5, `1.5e-14` -> 5e-16, `100` -> 0.5.
    static func halfUnit(_ shown: String) -> Double {
        var mantissa = Substring(shown), exponent = 0
        if let e = shown.firstIndex(where: { $0 == "e" || $0 == "E" }) {
            mantissa = shown[..<e]
            exponent = Int(shown[shown.index(after: e)...]) ?? 0
        }
        let decimals = mantissa.firstIndex(of: ".").map { mantissa.distance(from: $0, to: mantissa.endIndex) - 1 } ?? 0
        return 0.5 * pow(10, Double(exponent - decimals))
    }

    /// Text equal, every number within half a unit of the guide's last digit (so the guide's
    /// value is the printed one rounded to the digits it shows), durations ignored.
    static func agrees(printed: String, shown: String) -> Bool {
        let p = tokens(printed), e = tokens(shown)
        guard p.count == e.count else { return false }
        for (a, b) in zip(p, e) {
            switch (a.number, b.number) {
            case (nil, nil): if a.text != b.text { return false }
            case let (x?, y?):
                guard let xv = Double(x), let yv = Double(y) else { return false }
                if abs(xv - yv) > halfUnit(y) * (1 + 1e-9) { return false }
            default: return false
            }
        }
        return true
    }

    @Test("the comparison accepts rounding to the shown digits and rejects anything else")
    func comparisonRules() {
        #expect(Self.agrees(printed: "risk 0.254503 -> 0.196365, 0.12 s -> runs/sgd", shown: "risk 0.254503 -> 0.196365, 1.10 s -> runs/sgd"))
        #expect(Self.agrees(printed: "gap = 0.03294", shown: "gap = 0.0329"))
        #expect(!Self.agrees(printed: "gap = 0.03296", shown: "gap = 0.0329"))
        #expect(!Self.agrees(printed: "100 steps", shown: "101 steps"))
        #expect(!Self.agrees(printed: "risk 0.25 -> runs/a", shown: "risk 0.25 -> runs/b"))
        #expect(Self.agrees(printed: #"{"w2":1.5,"seconds":9.4e-05,"n":3}"#, shown: #"{"w2":1.5,"seconds":0.00012,"n":3}"#))
        #expect(Self.agrees(printed: "[exact, 96 us]", shown: "[exact, 9.62e-05 s]"))
        #expect(Self.agrees(printed: "flow 0.00997, 3 min 12 s -> runs/ou", shown: "flow 0.00997, 1.52 s -> runs/ou"))
        #expect(Self.agrees(printed: "took 1 h 02 min.", shown: "took 0.5 s."))
        #expect(Self.agrees(printed: "3.372419      7 ms  entropic", shown: "3.372419    0.05 s  entropic"))
        #expect(!Self.agrees(printed: "3.372419      7 ms  entropic", shown: "3.372418    0.05 s  entropic"))
        #expect(Self.agrees(printed: "error = 3.91e-14", shown: "error = 3.90e-14") == false)
        #expect(Self.halfUnit("1.5e-14") == 0.5e-15 && Self.halfUnit("100") == 0.5)
    }
}
