// Implements a ResponseSchema compiled for byte-at-a-time matching: its nodes in one array (states refer to them by
// index), each object's property keys as the bytes that follow the opening quote, and each node's shortest JSON
// text, from which JSONPrefixState computes how many bytes a prefix still needs to become a document. Does not hold
// a prefix's state.
import Foundation

public final class JSONGrammar: @unchecked Sendable {
    enum Node {
        /// keys[i]: property i's name, JSON-escaped, then the closing quote.
        case object(keys: [[UInt8]]?, values: [Int], requiredMask: UInt64)
        case array(items: Int, minItems: Int, maxItems: Int?)
        case string
        case number(integer: Bool)
        /// Whole JSON texts (`true`, `"red"`, `3`).
        case literals([[UInt8]])
        case anyValue
    }

    private(set) var nodes: [Node] = []
    /// Bytes of each node's shortest JSON text.
    private(set) var minimumLength: [Int] = []
    private(set) var root = 0
    /// The nodes "any value" opens: an object of any keys, an array of any values, true/false/null, a string, a number.
    private(set) var anyValue = 0
    private(set) var anyObject = 0
    private(set) var anyArray = 0
    private(set) var anyLiteral = 0
    private(set) var anyString = 0
    private(set) var anyNumber = 0

    /// Bytes a number may have (its digits, sign, point and exponent): a bound so that a number ends.
    static let longestNumber = 24
    /// Whitespace bytes allowed in one gap between tokens (enough to indent a pretty-printed document).
    static let longestWhitespace = 8
    /// Shortest lengths are capped here (`minItems` nest multiplicatively): no budget reaches it, and sums of
    /// capped lengths along a document's nesting cannot overflow.
    static let longestMinimum = 1 << 32

    public init(_ schema: ResponseSchema) {
        anyValue = add(.anyValue, minimum: 1)
        anyObject = add(.object(keys: nil, values: [], requiredMask: 0), minimum: 2)
        anyArray = add(.array(items: anyValue, minItems: 0, maxItems: nil), minimum: 2)
        anyLiteral = add(.literals(["true", "false", "null"].map { Array($0.utf8) }), minimum: 4)
        anyString = add(.string, minimum: 2)
        anyNumber = add(.number(integer: false), minimum: 1)
        root = compile(schema)
    }

    private func add(_ node: Node, minimum: Int) -> Int {
        nodes.append(node)
        minimumLength.append(min(minimum, Self.longestMinimum))
        return nodes.count - 1
    }

    private func compile(_ schema: ResponseSchema) -> Int {
        switch schema {
        case .anyValue: return anyValue
        case let .object(properties, required):
            guard let properties else { return anyObject }
            let keys = properties.map { Self.escaped($0.name) + [UInt8(ascii: "\"")] }
            let values = properties.map { compile($0.schema) }
            var mask: UInt64 = 0
            for (index, property) in properties.enumerated() where required.contains(property.name) { mask |= 1 << UInt64(index) }
            let node = Node.object(keys: keys, values: values, requiredMask: mask)
            return add(node, minimum: 2 + entriesLength(keys: keys, values: values, mask: mask))
        case let .array(items, minItems, maxItems):
            let item = compile(items)
            let minimum = 2 + minItems * minimumLength[item] + max(0, minItems - 1)
            return add(.array(items: item, minItems: minItems, maxItems: maxItems), minimum: minimum)
        case .string: return add(.string, minimum: 2)
        case .number: return add(.number(integer: false), minimum: 1)
        case .integer: return add(.number(integer: true), minimum: 1)
        case .boolean: return add(.literals([Array("true".utf8), Array("false".utf8)]), minimum: 4)
        case .null: return add(.literals([Array("null".utf8)]), minimum: 4)
        case let .literals(texts):
            let bytes = texts.map { Array($0.utf8) }
            return add(.literals(bytes), minimum: bytes.map(\.count).min() ?? 0)
        }
    }

    /// `"name":value` entries for the properties in `mask`, joined by commas, shortest values.
    private func entriesLength(keys: [[UInt8]], values: [Int], mask: UInt64) -> Int {
        var total = 0, count = 0
        for index in keys.indices where mask & (1 << UInt64(index)) != 0 {
            total += entryLength(keys: keys, values: values, index)
            count += 1
        }
        return total + max(0, count - 1)
    }

    /// Property `index`'s shortest `"name":value`: opening quote, key bytes (closing quote included), colon, value.
    func entryLength(keys: [[UInt8]], values: [Int], _ index: Int) -> Int {
        1 + keys[index].count + 1 + minimumLength[values[index]]
    }

    /// Shortest bytes that finish an object's still-required properties after `used`, each preceded by a comma
    /// (`leadingComma`) or joined by commas with none before the first.
    func requiredRemainder(object node: Int, used: UInt64, leadingComma: Bool) -> Int {
        guard case let .object(keys?, values, mask) = nodes[node] else { return 0 }
        let missing = mask & ~used
        var total = 0, count = 0
        for index in keys.indices where missing & (1 << UInt64(index)) != 0 {
            total += entryLength(keys: keys, values: values, index)
            count += 1
        }
        return total + (leadingComma ? count : max(0, count - 1))
    }

    /// JSON string content bytes of `text` (quotes, backslashes and control characters escaped).
    static func escaped(_ text: String) -> [UInt8] {
        var bytes: [UInt8] = []
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "\""): bytes += Array("\\\"".utf8)
            case UInt8(ascii: "\\"): bytes += Array("\\\\".utf8)
            case 0..<0x20: bytes += Array(String(format: "\\u%04x", byte).utf8)
            default: bytes.append(byte)
            }
        }
        return bytes
    }
}
