import Foundation

extension OutputDirectory {
    /// Writes the result files of `body` all or nothing: `body` writes into a hidden staging
    /// folder inside this one, whose files are moved into place (replacing files of the same
    /// name) only when `body` returns. If it throws, the staging folder is removed and no file
    /// of this run appears: a failure halfway through used to leave `trajectory.csv` and
    /// `particles_initial.npy` beside a missing `summary.json`.
    ///
    /// - Throws: what `body` throws, or ``ExperimentError/output(path:reason:)`` when the
    ///   staging folder cannot be made or a file cannot be moved.
    public func writingAllOrNothing<T>(_ body: (OutputDirectory) throws -> T) throws -> T {
        let manager = FileManager.default
        let stagingPath = file(".staging-\(UUID().uuidString)")
        let staging = try OutputDirectory(stagingPath)
        defer { try? manager.removeItem(atPath: stagingPath) }
        let value = try body(staging)
        do {
            for name in try manager.contentsOfDirectory(atPath: stagingPath).sorted() {
                let destination = file(name)
                if manager.fileExists(atPath: destination) { try manager.removeItem(atPath: destination) }
                try manager.moveItem(atPath: staging.file(name), toPath: destination)
            }
        } catch {
            throw ExperimentError.output(path: path, reason: error.localizedDescription)
        }
        return value
    }
}
