import Foundation
import Testing
import Wasserstein
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Reading files that are not what they claim (pipes, devices, huge files) and quoting what was
/// read in error messages.
@Suite("Input safety: file kinds, size limit, escaped messages")
struct InputSafetyTests {
    static func scratch() throws -> String {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("winput-\(UInt32.random(in: 0 ... .max))").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        return dir
    }

    @Test("Control characters become visible escapes; printable text, backslashes and non-ASCII letters stay")
    func escaping() {
        #expect(MessageText.escaped("a\nb\r\tc\u{1B}[0m\u{7F}") == "a\\nb\\r\\tc\\x1B[0m\\x7F")
        #expect(MessageText.escaped("x\u{202E}y\u{2028}z\u{85}") == "x\\u{202E}y\\u{2028}z\\u{85}")
        #expect(MessageText.escaped("päth\\dir/ünïcode €") == "päth\\dir/ünïcode €")
        // Idempotent: escaping an escaped text changes nothing.
        let once = MessageText.escaped("bad\u{0}\u{1B}\n")
        #expect(MessageText.escaped(once) == once)
        // Bytes that are not UTF-8 are shown byte by byte; valid sequences around them survive.
        #expect(MessageText.excerpt(bytes: [0x41, 0xFF, 0xC3, 0xA9, 0xC3, 0x0A]) == "A\\xFFé\\xC3\\n")
        // Long values are cut, with their length.
        #expect(MessageText.excerpt(String(repeating: "7", count: 500), limit: 10) == "7777777777...(500 bytes)")
        // Whatever the input, the excerpt is one line of printable ASCII or printable scalars.
        var generator = Xoshiro256StarStar(seed: 5)
        for _ in 0 ..< 200 {
            let bytes = (0 ..< Int(generator.next() % 40)).map { _ in UInt8(truncatingIfNeeded: generator.next()) }
            let text = MessageText.excerpt(bytes: bytes)
            #expect(!text.unicodeScalars.contains { $0.value < 0x20 || $0.value == 0x7F || $0.properties.generalCategory == .control })
        }
    }

    @Test("A FIFO without a writer is refused at once, not waited on")
    func fifo() throws {
        let dir = try Self.scratch()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = dir + "/points.csv"
        #expect(mkfifo(path, 0o600) == 0)
        let clock = ContinuousClock()
        let start = clock.now
        #expect(throws: DataFileError.unreadable(path: path, reason: "it is a pipe (FIFO), not a regular file; save the data to a file first")) {
            try CSVFormat.read(path: path)
        }
        #expect(throws: DataFileError.self) { try NPYFormat.read(path: dir + "/points.csv") }
        #expect(clock.now - start < .seconds(5))
    }

    @Test("An endless device is refused before any read")
    func device() {
        #expect(throws: DataFileError.unreadable(path: "/dev/zero", reason: "it is a device or socket, not a regular file")) {
            try PointCloudFile.readPoints(path: "/dev/zero")
        }
        #expect(throws: DataFileError.self) { try NPYFormat.read(path: "/dev/zero") }
    }

    @Test("A file above the size limit is refused with its size; at the limit it is read")
    func sizeLimit() throws {
        let dir = try Self.scratch()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = dir + "/x.csv"
        try Data("1,2\n3,4\n".utf8).write(to: URL(fileURLWithPath: path))  // 8 bytes
        #expect(throws: DataFileError.unreadable(path: path, reason: "it holds 8 bytes, more than the readers' limit of 7 bytes")) {
            try CSVFormat.read(path: path, maximumBytes: 7)
        }
        #expect(try CSVFormat.read(path: path, maximumBytes: 8).array.values == [1, 2, 3, 4])
        #expect(FileAccess.defaultMaximumBytes == 1 << 31)
        #expect(throws: DataFileError.unreadable(path: dir, reason: "it is a directory")) { try CSVFormat.read(path: dir) }
        #expect(throws: DataFileError.missing(path: dir + "/none.csv")) { try CSVFormat.read(path: dir + "/none.csv") }
    }
}
