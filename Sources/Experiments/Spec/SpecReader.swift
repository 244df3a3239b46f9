import Foundation
import Wasserstein

/// Typed access to a JSON object with errors that name the full key path (`sgd.eta`), and a
/// check for unknown keys, so that a typo in a spec is reported instead of silently ignored.
struct SpecReader {
    let object: [String: Any]
    let path: String

    init(object: [String: Any], path: String = "") {
        self.object = object
        self.path = path
    }

    static func parse(data: Data, file: String) throws -> SpecReader {
        let any: Any
        do {
            any = try JSONSerialization.jsonObject(with: data, options: [])
        } catch {
            throw ExperimentError.unreadableSpec(path: file, reason: "not valid JSON (\(Self.jsonErrorSummary(error)))")
        }
        guard let object = any as? [String: Any] else {
            throw ExperimentError.unreadableSpec(path: file, reason: "the spec must be a JSON object")
        }
        return SpecReader(object: object)
    }

    private static func jsonErrorSummary(_ error: Error) -> String {
        let ns = error as NSError
        if let d = ns.userInfo[NSDebugDescriptionErrorKey] as? String { return d }
        return ns.localizedDescription
    }

    func key(_ k: String) -> String { path.isEmpty ? k : "\(path).\(k)" }

    func has(_ k: String) -> Bool {
        guard let v = object[k] else { return false }
        return !(v is NSNull)
    }

    func fail(_ k: String, _ reason: String) -> ExperimentError { .invalidSpec(key: key(k), reason: reason) }

    func rejectUnknownKeys(allowed: Set<String>) throws {
        for k in object.keys.sorted() where !allowed.contains(k) {
            throw ExperimentError.invalidSpec(key: key(MessageText.excerpt(k)), reason: "unknown key (allowed here: \(allowed.sorted().joined(separator: ", ")))")
        }
    }

    func child(_ k: String) throws -> SpecReader {
        guard let v = object[k], !(v is NSNull) else { throw fail(k, "missing") }
        guard let o = v as? [String: Any] else { throw fail(k, "must be an object") }
        return SpecReader(object: o, path: key(k))
    }

    func optionalChild(_ k: String) throws -> SpecReader? {
        has(k) ? try child(k) : nil
    }

    func number(_ k: String) throws -> Double {
        guard let v = object[k], !(v is NSNull) else { throw fail(k, "missing") }
        return try Self.asNumber(v, key: key(k))
    }

    func optionalNumber(_ k: String) throws -> Double? {
        has(k) ? try number(k) : nil
    }

    func number(_ k: String, default value: Double) throws -> Double {
        try optionalNumber(k) ?? value
    }

    static func asNumber(_ v: Any, key: String) throws -> Double {
        if isBoolean(v) {
            throw ExperimentError.invalidSpec(key: key, reason: "must be a number, got a boolean")
        }
        if let n = v as? NSNumber {
            let d = n.doubleValue
            guard d.isFinite else { throw ExperimentError.invalidSpec(key: key, reason: "must be finite") }
            return d
        }
        throw ExperimentError.invalidSpec(key: key, reason: "must be a number")
    }

    /// JSON booleans arrive as NSNumber; their Objective-C type code is 'c'.
    static func isBoolean(_ v: Any) -> Bool {
        guard let n = v as? NSNumber else { return false }
        return n.objCType.pointee == CChar(UInt8(ascii: "c"))
    }

    /// A seed key (both spec kinds): JSON numbers arrive as `Double`, and above `2^53`
    /// neighbouring seeds would collapse silently, so the range is checked.
    func seed(_ k: String, default value: UInt64) throws -> UInt64 {
        let v = try number(k, default: Double(value))
        guard v >= 0, v == v.rounded(), v <= 9_007_199_254_740_992 else {
            throw fail(k, "must be an integer between 0 and 2^53")
        }
        return UInt64(v)
    }

    func integer(_ k: String) throws -> Int {
        let d = try number(k)
        guard d == d.rounded(), abs(d) < 1e15 else { throw fail(k, "must be an integer, got \(d)") }
        return Int(clamping: d, to: Int.min ... Int.max)
    }

    func optionalInteger(_ k: String) throws -> Int? {
        has(k) ? try integer(k) : nil
    }

    func string(_ k: String) throws -> String {
        guard let v = object[k], !(v is NSNull) else { throw fail(k, "missing") }
        guard let s = v as? String else { throw fail(k, "must be a string") }
        return s
    }

    func optionalString(_ k: String) throws -> String? {
        has(k) ? try string(k) : nil
    }

    func choice(_ k: String, _ options: [String], default value: String? = nil) throws -> String {
        guard has(k) else {
            if let value { return value }
            throw fail(k, "missing (one of: \(options.joined(separator: ", ")))")
        }
        let s = try string(k)
        guard options.contains(s) else { throw fail(k, "'\(MessageText.excerpt(s))' is not one of: \(options.joined(separator: ", "))") }
        return s
    }

    func bool(_ k: String, default value: Bool) throws -> Bool {
        guard has(k) else { return value }
        guard let v = object[k], Self.isBoolean(v), let n = v as? NSNumber else {
            throw fail(k, "must be true or false")
        }
        return n.boolValue
    }

    func numbers(_ k: String) throws -> [Double] {
        guard let v = object[k], !(v is NSNull) else { throw fail(k, "missing") }
        guard let a = v as? [Any] else { throw fail(k, "must be an array of numbers") }
        return try a.enumerated().map { try Self.asNumber($0.element, key: "\(key(k))[\($0.offset)]") }
    }

    func matrix(_ k: String) throws -> [[Double]] {
        guard let v = object[k], !(v is NSNull) else { throw fail(k, "missing") }
        guard let rows = v as? [Any] else { throw fail(k, "must be an array of arrays of numbers") }
        return try rows.enumerated().map { row in
            guard let r = row.element as? [Any] else {
                throw ExperimentError.invalidSpec(key: "\(key(k))[\(row.offset)]", reason: "must be an array of numbers")
            }
            return try r.enumerated().map { try Self.asNumber($0.element, key: "\(key(k))[\(row.offset)][\($0.offset)]") }
        }
    }

    /// A number or a vector of numbers (e.g. `initialization.w.mean`).
    func scalarOrVector(_ k: String) throws -> [Double] {
        guard let v = object[k], !(v is NSNull) else { throw fail(k, "missing") }
        if v is [Any] { return try numbers(k) }
        return [try number(k)]
    }
}
