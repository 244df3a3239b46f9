import Foundation
import Wasserstein

/// A folder that a command writes its result files into; created if it does not exist.
public struct OutputDirectory: Sendable {
    /// The folder's path.
    public let path: String

    /// Creates the folder (and its parents) if needed.
    ///
    /// - Throws: ``ExperimentError/output(path:reason:)`` if the path is a file or cannot be created.
    public init(_ path: String) throws {
        var isDirectory: ObjCBool = false
        if FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) {
            guard isDirectory.boolValue else { throw ExperimentError.output(path: path, reason: "exists and is not a folder") }
        } else {
            do {
                try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
            } catch {
                throw ExperimentError.output(path: path, reason: error.localizedDescription)
            }
        }
        self.path = path
    }

    /// The path of a file inside the folder.
    public func file(_ name: String) -> String { (path as NSString).appendingPathComponent(name) }

    /// Writes a CSV table with a header row.
    public func writeCSV(_ name: String, header: [String], rows: [[Double]]) throws {
        try CSVFormat.write(header: header, rows: rows, path: file(name))
    }

    /// Writes an `M x D` particle array (or any matrix) as float64 `.npy`.
    ///
    /// - Throws: ``ExperimentError/output(path:reason:)`` when `values` does not hold
    ///   `rows * columns` numbers (an error rather than the array's precondition trap).
    public func writeMatrix(_ name: String, rows: Int, columns: Int, values: [Double]) throws {
        let (cells, overflow) = rows.multipliedReportingOverflow(by: columns)
        guard !overflow, cells == values.count else {
            throw ExperimentError.output(path: file(name), reason: "\(values.count) values do not form a \(rows) x \(columns) array")
        }
        try NPYFormat.write(NumericArray(rows: rows, columns: columns, values: values), path: file(name))
    }

    /// Writes a JSON document.
    public func writeJSON(_ name: String, _ value: JSONValue) throws {
        try value.write(to: file(name))
    }
}
