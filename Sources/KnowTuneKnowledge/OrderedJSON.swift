// Implements a JSON value that keeps object key order, its parser, and a writer that produces exactly Python's
// `json.dumps(value, indent=2, ensure_ascii=False)` text, so that editing `dataset_info.json` changes only the
// entries that change; does not convert to Foundation objects.
import Foundation
import KnowTuneTensor

public indirect enum OrderedJSON: Equatable, Sendable {
    case object([Member])
    case array([OrderedJSON])
    case string(String)
    /// The number's text as written (so it is written back unchanged).
    case number(String)
    case bool(Bool)
    case null

    public struct Member: Equatable, Sendable {
        public var key: String
        public var value: OrderedJSON
        public init(_ key: String, _ value: OrderedJSON) {
            self.key = key
            self.value = value
        }
    }

    /// The value of `key` in an object (nil for other values or a missing key).
    public subscript(key: String) -> OrderedJSON? {
        guard case let .object(members) = self else { return nil }
        return members.first { $0.key == key }?.value
    }

    /// Sets `key` in an object: replaced in place when present, appended otherwise.
    public mutating func set(_ key: String, _ value: OrderedJSON) {
        guard case var .object(members) = self else { return }
        if let position = members.firstIndex(where: { $0.key == key }) {
            members[position].value = value
        } else {
            members.append(Member(key, value))
        }
        self = .object(members)
    }

    public var stringValue: String? {
        if case let .string(text) = self { return text }
        return nil
    }

    // MARK: - Writing

    /// Python `json.dumps(self, indent: indent, ensure_ascii=False)`.
    public func serialized(indent: Int = 2) -> String {
        var output = ""
        write(into: &output, indent: indent, level: 0)
        return output
    }

    private func write(into output: inout String, indent: Int, level: Int) {
        let padding = String(repeating: " ", count: indent * (level + 1))
        let closing = String(repeating: " ", count: indent * level)
        switch self {
        case let .object(members):
            guard !members.isEmpty else { output += "{}"; return }
            output += "{\n"
            for (position, member) in members.enumerated() {
                output += padding
                Self.writeString(member.key, into: &output)
                output += ": "
                member.value.write(into: &output, indent: indent, level: level + 1)
                output += position + 1 < members.count ? ",\n" : "\n"
            }
            output += closing + "}"
        case let .array(elements):
            guard !elements.isEmpty else { output += "[]"; return }
            output += "[\n"
            for (position, element) in elements.enumerated() {
                output += padding
                element.write(into: &output, indent: indent, level: level + 1)
                output += position + 1 < elements.count ? ",\n" : "\n"
            }
            output += closing + "]"
        case let .string(text): Self.writeString(text, into: &output)
        case let .number(text): output += text
        case let .bool(value): output += value ? "true" : "false"
        case .null: output += "null"
        }
    }

    private static func writeString(_ text: String, into output: inout String) {
        output += "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": output += "\\\""
            case "\\": output += "\\\\"
            case "\n": output += "\\n"
            case "\r": output += "\\r"
            case "\t": output += "\\t"
            case "\u{08}": output += "\\b"
            case "\u{0C}": output += "\\f"
            default:
                if scalar.value < 0x20 {
                    output += String(format: "\\u%04x", scalar.value)
                } else {
                    output.unicodeScalars.append(scalar)
                }
            }
        }
        output += "\""
    }

    // MARK: - Parsing

    /// Parses JSON text; `path` names the source in errors.
    public static func parse(_ data: Data, path: String) throws -> OrderedJSON {
        var parser = Parser(bytes: Array(data), path: path)
        parser.skipWhitespace()
        let value = try parser.value(depth: 0)
        parser.skipWhitespace()
        guard parser.position == parser.bytes.count else { throw parser.error("unexpected text after the JSON value") }
        return value
    }

    private struct Parser {
        let bytes: [UInt8]
        let path: String
        var position = 0

        init(bytes: [UInt8], path: String) {
            self.bytes = bytes
            self.path = path
            // A UTF-8 byte order mark is allowed.
            if bytes.starts(with: [0xEF, 0xBB, 0xBF]) { position = 3 }
        }

        func error(_ reason: String) -> KnowTuneError {
            .badFormat(path: path, reason: "malformed JSON at byte \(position): \(reason)")
        }

        mutating func skipWhitespace() {
            while position < bytes.count, [0x20, 0x0A, 0x0D, 0x09].contains(bytes[position]) { position += 1 }
        }

        mutating func expect(_ literal: String) throws {
            let expected = Array(literal.utf8)
            guard bytes.count - position >= expected.count, Array(bytes[position..<(position + expected.count)]) == expected else {
                throw error("expected \(literal)")
            }
            position += expected.count
        }

        mutating func value(depth: Int) throws -> OrderedJSON {
            guard depth < 512 else { throw error("nested too deeply") }
            guard position < bytes.count else { throw error("unexpected end of input") }
            switch bytes[position] {
            case UInt8(ascii: "{"):
                position += 1
                var members: [Member] = []
                skipWhitespace()
                if position < bytes.count, bytes[position] == UInt8(ascii: "}") {
                    position += 1
                    return .object(members)
                }
                while true {
                    skipWhitespace()
                    let key = try string()
                    skipWhitespace()
                    try expect(":")
                    skipWhitespace()
                    let element = try value(depth: depth + 1)
                    if let existing = members.firstIndex(where: { $0.key == key }) {
                        members[existing].value = element  // Python keeps the last duplicate.
                    } else {
                        members.append(Member(key, element))
                    }
                    skipWhitespace()
                    guard position < bytes.count else { throw error("unterminated object") }
                    if bytes[position] == UInt8(ascii: ",") { position += 1; continue }
                    try expect("}")
                    return .object(members)
                }
            case UInt8(ascii: "["):
                position += 1
                var elements: [OrderedJSON] = []
                skipWhitespace()
                if position < bytes.count, bytes[position] == UInt8(ascii: "]") {
                    position += 1
                    return .array(elements)
                }
                while true {
                    skipWhitespace()
                    elements.append(try value(depth: depth + 1))
                    skipWhitespace()
                    guard position < bytes.count else { throw error("unterminated array") }
                    if bytes[position] == UInt8(ascii: ",") { position += 1; continue }
                    try expect("]")
                    return .array(elements)
                }
            case UInt8(ascii: "\""): return .string(try string())
            case UInt8(ascii: "t"): try expect("true"); return .bool(true)
            case UInt8(ascii: "f"): try expect("false"); return .bool(false)
            case UInt8(ascii: "n"): try expect("null"); return .null
            default: return .number(try number())
            }
        }

        mutating func number() throws -> String {
            let start = position
            while position < bytes.count, "+-0123456789.eE".utf8.contains(bytes[position]) { position += 1 }
            let text = String(decoding: bytes[start..<position], as: UTF8.self)
            guard !text.isEmpty, Double(text) != nil else { throw error("invalid value") }
            return text
        }

        mutating func string() throws -> String {
            guard position < bytes.count, bytes[position] == UInt8(ascii: "\"") else { throw error("expected a string") }
            position += 1
            var scalars = String.UnicodeScalarView()
            var pendingHigh: UInt32?
            var run: [UInt8] = []
            func flush() {
                if !run.isEmpty {
                    scalars.append(contentsOf: String(decoding: run, as: UTF8.self).unicodeScalars)
                    run.removeAll()
                }
            }
            while position < bytes.count {
                let byte = bytes[position]
                if byte == UInt8(ascii: "\"") {
                    position += 1
                    flush()
                    return String(scalars)
                }
                if byte == UInt8(ascii: "\\") {
                    flush()
                    position += 1
                    guard position < bytes.count else { break }
                    let escape = bytes[position]
                    position += 1
                    switch escape {
                    case UInt8(ascii: "n"): scalars.append("\n")
                    case UInt8(ascii: "t"): scalars.append("\t")
                    case UInt8(ascii: "r"): scalars.append("\r")
                    case UInt8(ascii: "b"): scalars.append("\u{08}")
                    case UInt8(ascii: "f"): scalars.append("\u{0C}")
                    case UInt8(ascii: "/"): scalars.append("/")
                    case UInt8(ascii: "\\"): scalars.append("\\")
                    case UInt8(ascii: "\""): scalars.append("\"")
                    case UInt8(ascii: "u"):
                        guard bytes.count - position >= 4,
                              let code = UInt32(String(decoding: bytes[position..<(position + 4)], as: UTF8.self), radix: 16) else {
                            throw error("bad \\u escape")
                        }
                        position += 4
                        if (0xD800...0xDBFF).contains(code) {
                            pendingHigh = code
                            continue
                        }
                        if (0xDC00...0xDFFF).contains(code), let high = pendingHigh {
                            let combined = 0x10000 + ((high - 0xD800) << 10) + (code - 0xDC00)
                            scalars.append(Unicode.Scalar(combined) ?? "\u{FFFD}")
                        } else {
                            scalars.append(Unicode.Scalar(code) ?? "\u{FFFD}")
                        }
                    default: throw error("bad escape")
                    }
                    pendingHigh = nil
                    continue
                }
                run.append(byte)
                position += 1
            }
            throw error("unterminated string")
        }
    }
}
