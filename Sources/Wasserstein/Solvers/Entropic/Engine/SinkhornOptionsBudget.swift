import Foundation

extension SinkhornOptions {
    /// The memory, in bytes, the automatic geometry choice may use: ``memoryLimit``, or the
    /// machine's physical memory when it is `nil`.
    public var byteBudget: Double { memoryLimit ?? Double(ProcessInfo.processInfo.physicalMemory) }
}
