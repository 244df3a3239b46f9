// libFuzzer target: the .npy reader. NPYFormat.decode (bytes) and NPYFormat.read (a file, read
// in place) must agree; what they return is re-encoded and decoded again unchanged.
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Wasserstein

/// One scratch file per process (libFuzzer's -fork and -jobs run several), removed after each read.
let scratchPath = "/tmp/wasserstein-fuzz-npy-\(getpid()).npy"

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzNPY(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    let bytes = inputBytes(data, size)
    let decoded = Result { try NPYFormat.decode(bytes, path: "fuzz.npy") }

    guard let file = fopen(scratchPath, "wb") else { return 0 }
    let written = bytes.isEmpty ? 0 : fwrite(bytes, 1, bytes.count, file)
    fclose(file)
    require(written == bytes.count, "could not write \(scratchPath)")
    let read = Result { try NPYFormat.read(path: scratchPath) }
    unlink(scratchPath)

    switch (decoded, read) {
    case (.success(let a), .success(let b)):
        require(a.shape == b.shape && sameValues(a.values, b.values, bitwise: true), "decode and read disagree: \(a.shape) and \(b.shape)")
        require(a.values.count == a.shape.reduce(1, *), "shape \(a.shape), \(a.values.count) values")
        do {
            let again = try NPYFormat.decode(NPYFormat.encode(a))
            require(again.shape == a.shape && sameValues(again.values, a.values, bitwise: true), "round trip changed the array")
        } catch {
            require(false, "round trip refused: \(error)")
        }
        if let (rows, columns) = a.tableShape, rows > 0, columns > 0,
           let cloud = try? PointCloud(coordinates: a.values, dimension: columns, name: "fuzz") {
            require(cloud.count == rows && cloud.coordinates.allSatisfy(\.isFinite) && cloud.mass.isFinite && cloud.mass > 0, "invalid cloud accepted")
        }
    case (.failure, .failure):
        break
    case (.success(let a), .failure(let e)):
        require(false, "decode gave shape \(a.shape), read refused: \(e)")
    case (.failure(let e), .success(let b)):
        require(false, "read gave shape \(b.shape), decode refused: \(e)")
    }
    return 0
}
