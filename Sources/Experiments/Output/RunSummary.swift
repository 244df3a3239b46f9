import Foundation

/// The typed summary of a run: the record a runner returns in its `Output`, written to
/// `summary.json` by one encoder.
///
/// A summary is a plain `Encodable` struct whose stored properties are the members of the
/// JSON object, in declaration order, with the Swift names turned into snake_case
/// (`parameterDimension` becomes `parameter_dimension`, `riskFinalJKO` `risk_final_jko`). The encoding follows what the files have always held:
///
/// - `Int` is written as an integer, `Double` as a number (`2.0`, never `2`), and a non-finite
///   `Double` as `null` (JSON has no NaN or infinity);
/// - an optional property (`T?`) is left out when `nil`: the member only exists for some runs
///   (the risk of a run without a model, the grid scheme's `stationary` record);
/// - an `@NullIfAbsent` property is written as `null` when `nil`: the member is always there
///   (`beta` of a run at infinite temperature);
/// - a doubly optional property (`T??`) is left out when `nil` and written as `null` when
///   `.some(nil)`: a member of some runs only, which may have no value (`threshold_time`).
///
/// `JSONEncoder` is not used because it does not keep the order of the members.
public protocol RunSummary: Encodable, Sendable {}

extension RunSummary {
    /// The summary as an ordered JSON object, as written to `summary.json`.
    public var json: JSONValue { SummaryEncoding.json(of: self) }

    /// The JSON text of the summary: compact (one line) or indented.
    public func serialized(pretty: Bool = false) -> String { json.serialized(pretty: pretty) }
}

/// A list of records (`distances.json`) is written as a JSON array of them.
extension Array: RunSummary where Element: RunSummary {}

/// A member that is written as `null`, not left out, when it has no value.
@propertyWrapper
public struct NullIfAbsent<Value: Encodable & Sendable>: Encodable, Sendable {
    public var wrappedValue: Value?

    public init(wrappedValue: Value?) { self.wrappedValue = wrappedValue }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        if let wrappedValue { try container.encode(wrappedValue) } else { try container.encodeNil() }
    }
}

/// The one encoder from `Encodable` values to ordered `JSONValue`s.
enum SummaryEncoding {
    /// The JSON form of `value`, members in the order they are encoded.
    static func json(of value: some Encodable) -> JSONValue {
        let root = Node()
        do {
            try value.encode(to: NodeEncoder(node: root, codingPath: []))
        } catch {
            // The containers below never throw, and summaries hold only numbers, strings, Booleans,
            // arrays and other summaries, whose encodings throw only when their encoder does.
            preconditionFailure("a run summary failed to encode: \(error)")
        }
        return root.json
    }

    /// `parameterDimension` -> `parameter_dimension`, `riskFinalJKO` -> `risk_final_jko`,
    /// `maxW2AMarginal` -> `max_w2_a_marginal`: a word starts at an upper-case letter after a
    /// lower-case letter or digit, and at the last capital of an acronym followed by lower case.
    /// snake_case names pass unchanged.
    static func snakeCase(_ name: String) -> String {
        let chars = Array(name)
        var out = ""
        for (i, c) in chars.enumerated() {
            guard c.isASCII, c.isUppercase else { out.append(c); continue }
            if i > 0 {
                let previous = chars[i - 1]
                let nextIsLower = i + 1 < chars.count && chars[i + 1].isLowercase
                if !previous.isUppercase || nextIsLower { out.append("_") }
            }
            out += c.lowercased()
        }
        return out
    }

    /// A value under construction: a leaf, an object (members in order) or an array.
    final class Node {
        var leaf: JSONValue?
        var members: [(String, Node)]?
        var items: [Node]?

        var json: JSONValue {
            if let members { return .object(members.map { ($0.0, $0.1.json) }) }
            if let items { return .array(items.map(\.json)) }
            return leaf ?? .null
        }

        func member(_ key: any CodingKey) -> Node {
            let child = Node()
            members = (members ?? []) + [(SummaryEncoding.snakeCase(key.stringValue), child)]
            return child
        }

        func item() -> Node {
            let child = Node()
            items = (items ?? []) + [child]
            return child
        }
    }

    struct NodeEncoder: Encoder {
        let node: Node
        var codingPath: [any CodingKey]
        var userInfo: [CodingUserInfoKey: Any] { [:] }

        func container<Key: CodingKey>(keyedBy type: Key.Type) -> KeyedEncodingContainer<Key> {
            if node.members == nil { node.members = [] }
            return KeyedEncodingContainer(Keyed<Key>(node: node, codingPath: codingPath))
        }

        func unkeyedContainer() -> any UnkeyedEncodingContainer {
            if node.items == nil { node.items = [] }
            return Unkeyed(node: node, codingPath: codingPath)
        }

        func singleValueContainer() -> any SingleValueEncodingContainer { Single(node: node, codingPath: codingPath) }
    }

    struct Keyed<Key: CodingKey>: KeyedEncodingContainerProtocol {
        let node: Node
        var codingPath: [any CodingKey]

        private func put(_ value: some Encodable, _ key: Key) throws {
            try value.encode(to: NodeEncoder(node: node.member(key), codingPath: codingPath + [key]))
        }

        mutating func encodeNil(forKey key: Key) throws { node.member(key).leaf = .null }
        mutating func encode(_ value: Bool, forKey key: Key) throws { try put(value, key) }
        mutating func encode(_ value: String, forKey key: Key) throws { try put(value, key) }
        mutating func encode(_ value: Double, forKey key: Key) throws { try put(value, key) }
        mutating func encode(_ value: Float, forKey key: Key) throws { try put(value, key) }
        mutating func encode(_ value: Int, forKey key: Key) throws { try put(value, key) }
        mutating func encode(_ value: Int8, forKey key: Key) throws { try put(value, key) }
        mutating func encode(_ value: Int16, forKey key: Key) throws { try put(value, key) }
        mutating func encode(_ value: Int32, forKey key: Key) throws { try put(value, key) }
        mutating func encode(_ value: Int64, forKey key: Key) throws { try put(value, key) }
        mutating func encode(_ value: UInt, forKey key: Key) throws { try put(value, key) }
        mutating func encode(_ value: UInt8, forKey key: Key) throws { try put(value, key) }
        mutating func encode(_ value: UInt16, forKey key: Key) throws { try put(value, key) }
        mutating func encode(_ value: UInt32, forKey key: Key) throws { try put(value, key) }
        mutating func encode(_ value: UInt64, forKey key: Key) throws { try put(value, key) }
        mutating func encode<T: Encodable>(_ value: T, forKey key: Key) throws { try put(value, key) }

        mutating func nestedContainer<NestedKey: CodingKey>(keyedBy keyType: NestedKey.Type, forKey key: Key) -> KeyedEncodingContainer<NestedKey> {
            NodeEncoder(node: node.member(key), codingPath: codingPath + [key]).container(keyedBy: keyType)
        }

        mutating func nestedUnkeyedContainer(forKey key: Key) -> any UnkeyedEncodingContainer {
            NodeEncoder(node: node.member(key), codingPath: codingPath + [key]).unkeyedContainer()
        }

        mutating func superEncoder() -> any Encoder {
            NodeEncoder(node: node.member(SuperKey()), codingPath: codingPath)
        }

        mutating func superEncoder(forKey key: Key) -> any Encoder {
            NodeEncoder(node: node.member(key), codingPath: codingPath + [key])
        }
    }

    /// The key `super` of `superEncoder()`.
    struct SuperKey: CodingKey {
        var stringValue: String { "super" }
        var intValue: Int? { nil }
        init() {}
        init?(stringValue: String) { nil }
        init?(intValue: Int) { nil }
    }

    struct Unkeyed: UnkeyedEncodingContainer {
        let node: Node
        var codingPath: [any CodingKey]
        var count: Int { node.items?.count ?? 0 }

        private func put(_ value: some Encodable) throws {
            try value.encode(to: NodeEncoder(node: node.item(), codingPath: codingPath))
        }

        mutating func encodeNil() throws { node.item().leaf = .null }
        mutating func encode(_ value: Bool) throws { try put(value) }
        mutating func encode(_ value: String) throws { try put(value) }
        mutating func encode(_ value: Double) throws { try put(value) }
        mutating func encode(_ value: Float) throws { try put(value) }
        mutating func encode(_ value: Int) throws { try put(value) }
        mutating func encode(_ value: Int8) throws { try put(value) }
        mutating func encode(_ value: Int16) throws { try put(value) }
        mutating func encode(_ value: Int32) throws { try put(value) }
        mutating func encode(_ value: Int64) throws { try put(value) }
        mutating func encode(_ value: UInt) throws { try put(value) }
        mutating func encode(_ value: UInt8) throws { try put(value) }
        mutating func encode(_ value: UInt16) throws { try put(value) }
        mutating func encode(_ value: UInt32) throws { try put(value) }
        mutating func encode(_ value: UInt64) throws { try put(value) }
        mutating func encode<T: Encodable>(_ value: T) throws { try put(value) }

        mutating func nestedContainer<NestedKey: CodingKey>(keyedBy keyType: NestedKey.Type) -> KeyedEncodingContainer<NestedKey> {
            NodeEncoder(node: node.item(), codingPath: codingPath).container(keyedBy: keyType)
        }

        mutating func nestedUnkeyedContainer() -> any UnkeyedEncodingContainer {
            NodeEncoder(node: node.item(), codingPath: codingPath).unkeyedContainer()
        }

        mutating func superEncoder() -> any Encoder { NodeEncoder(node: node.item(), codingPath: codingPath) }
    }

    /// The leaves: where every number, string and Boolean ends up.
    struct Single: SingleValueEncodingContainer {
        let node: Node
        var codingPath: [any CodingKey]

        mutating func encodeNil() throws { node.leaf = .null }
        mutating func encode(_ value: Bool) throws { node.leaf = .bool(value) }
        mutating func encode(_ value: String) throws { node.leaf = .string(value) }
        // Non-finite numbers serialize as `null`, as `JSONValue.finite` gives.
        mutating func encode(_ value: Double) throws { node.leaf = .number(value) }
        mutating func encode(_ value: Float) throws { node.leaf = .number(Double(value)) }
        mutating func encode(_ value: Int) throws { node.leaf = .integer(value) }
        mutating func encode(_ value: Int8) throws { node.leaf = .integer(Int(value)) }
        mutating func encode(_ value: Int16) throws { node.leaf = .integer(Int(value)) }
        mutating func encode(_ value: Int32) throws { node.leaf = .integer(Int(value)) }
        mutating func encode(_ value: Int64) throws { node.leaf = .integer(Int(value)) }
        mutating func encode(_ value: UInt) throws { node.leaf = .integer(Int(truncatingIfNeeded: value)) }
        mutating func encode(_ value: UInt8) throws { node.leaf = .integer(Int(value)) }
        mutating func encode(_ value: UInt16) throws { node.leaf = .integer(Int(value)) }
        mutating func encode(_ value: UInt32) throws { node.leaf = .integer(Int(value)) }
        // Seeds are written as today: the bit pattern as a signed integer.
        mutating func encode(_ value: UInt64) throws { node.leaf = .integer(Int(truncatingIfNeeded: value)) }
        mutating func encode<T: Encodable>(_ value: T) throws {
            try value.encode(to: NodeEncoder(node: node, codingPath: codingPath))
        }
    }
}
