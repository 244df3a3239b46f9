import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Whole-file reads and writes with the errors the readers report.
public enum FileAccess {
    /// The largest file the readers load by default: 2 GiB, about `1.3e8` two-dimensional points
    /// in float64 `.npy` (a CSV holds about a third of that). A larger file is refused with a
    /// clear error instead of exhausting memory; pass `maximumBytes:` to read one anyway.
    public static let defaultMaximumBytes = 1 << 31

    /// An open regular file: its size when it was opened, and positioned reads.
    struct RegularFile {
        let descriptor: Int32
        let path: String
        let size: Int

        /// Reads up to `count` bytes at `offset` into `destination` and returns how many it
        /// read: fewer only when the file shrank after it was opened.
        func read(into destination: UnsafeMutableRawPointer, count: Int, at offset: Int) throws -> Int {
            var filled = 0
            while filled < count {
                let r = pread(descriptor, destination + filled, min(count - filled, 1 << 30), off_t(offset + filled))
                if r > 0 {
                    filled += r
                } else if r == 0 {
                    break  // the file shrank
                } else if errno != EINTR {
                    throw DataFileError.unreadable(path: path, reason: String(cString: strerror(errno)))
                }
            }
            return filled
        }

        /// Exactly `count` bytes at `offset` into `destination`, or an error naming the file.
        func readExactly(into destination: UnsafeMutableRawPointer, count: Int, at offset: Int) throws {
            guard try read(into: destination, count: count, at: offset) == count else {
                throw DataFileError.unreadable(path: path, reason: "the file shrank while it was read")
            }
        }

        /// Up to `count` bytes at `offset`.
        func bytes(count: Int, at offset: Int) throws -> [UInt8] {
            try [UInt8](unsafeUninitializedCapacity: count) { buffer, initialized in
                initialized = 0
                if let base = buffer.baseAddress {
                    initialized = try read(into: UnsafeMutableRawPointer(base), count: count, at: offset)
                }
            }
        }
    }

    /// Opens the regular file at `path` and hands it to `body`.
    ///
    /// Only regular files are read: a pipe (FIFO) may never end or block forever waiting for a
    /// writer, and a device such as `/dev/zero` never ends, so both are refused before any read.
    /// Readers that know their layout (`.npy`) read straight into their values through it.
    ///
    /// - Throws: ``DataFileError/missing(path:)``, or ``DataFileError/unreadable(path:reason:)``
    ///   for a folder, a file that is not a regular file, a file larger than `maximumBytes`, or a
    ///   read error.
    static func withRegularFile<R>(path: String, maximumBytes: Int = defaultMaximumBytes,
                                   _ body: (RegularFile) throws -> R) throws -> R {
        // Non-blocking, so that opening a FIFO without a writer returns at once.
        let descriptor = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC)
        guard descriptor >= 0 else {
            let code = errno
            if code == ENOENT || code == ENOTDIR { throw DataFileError.missing(path: path) }
            throw DataFileError.unreadable(path: path, reason: code == EACCES ? "permission denied" : String(cString: strerror(code)))
        }
        defer { close(descriptor) }
        var info = stat()
        guard fstat(descriptor, &info) == 0 else {
            throw DataFileError.unreadable(path: path, reason: String(cString: strerror(errno)))
        }
        switch info.st_mode & S_IFMT {
        case S_IFREG: break
        case S_IFDIR: throw DataFileError.unreadable(path: path, reason: "it is a directory")
        case S_IFIFO: throw DataFileError.unreadable(path: path, reason: "it is a pipe (FIFO), not a regular file; save the data to a file first")
        default: throw DataFileError.unreadable(path: path, reason: "it is a device or socket, not a regular file")
        }
        let size = Int(info.st_size)
        guard size <= maximumBytes else {
            throw DataFileError.unreadable(
                path: path, reason: "it holds \(size) bytes, more than the readers' limit of \(describe(bytes: maximumBytes))")
        }
        return try body(RegularFile(descriptor: descriptor, path: path, size: size))
    }

    /// The content of the regular file at `path` (see `withRegularFile(path:maximumBytes:_:)`
    /// for what is refused). A file growing meanwhile is cut at the size it had when opened.
    public static func readBytes(path: String, maximumBytes: Int = defaultMaximumBytes) throws -> [UInt8] {
        try withRegularFile(path: path, maximumBytes: maximumBytes) { file in try file.bytes(count: file.size, at: 0) }
    }

    /// `2 GiB`, `64 MiB` or a byte count.
    static func describe(bytes: Int) -> String {
        if bytes >= 1 << 30 && bytes % (1 << 30) == 0 { return "\(bytes >> 30) GiB" }
        if bytes >= 1 << 20 && bytes % (1 << 20) == 0 { return "\(bytes >> 20) MiB" }
        return "\(bytes) bytes"
    }

    static func writeBytes(_ bytes: [UInt8], path: String) throws {
        do {
            try Data(bytes).write(to: URL(fileURLWithPath: path), options: .atomic)
        } catch {
            throw DataFileError.unwritable(path: path, reason: error.localizedDescription)
        }
    }

    static func writeText(_ text: String, path: String) throws {
        try writeBytes(Array(text.utf8), path: path)
    }
}
