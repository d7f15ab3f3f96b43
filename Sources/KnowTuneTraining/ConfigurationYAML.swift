// Implements the safe loading of a training configuration file with Yams. Yams recurses once per nesting level
// (100,000 nested brackets overflowed the 8 MiB main stack) and expands aliases into copies (nine lines of "billion
// laughs" took 17 GB in 60 s). So the file's size is bounded, which bounds its depth, and the parse runs on a thread
// whose stack holds that depth; anchors and aliases are refused. LLaMA-Factory configs are small flat mappings of
// scalars and lists, so no real one is touched. Does not interpret the mapping (TrainingArgumentParser does).
import Foundation
import KnowTuneTensor
import Yams

enum ConfigurationYAML {
    static let maxBytes = 64 << 10
    /// Yams used about 5.7 KiB of stack per nesting level; one level per byte at most, with a wide margin.
    static let parserStackBytes = 1 << 30

    /// The key-value pairs of `data`, a mapping of argument names to scalars or lists of scalars (a list becomes
    /// its comma-joined items, a null "None"), in key order.
    static func arguments(in data: Data, path: String) throws -> [(key: String, value: String)] {
        do {
            return try parse(data)
        } catch let refusal as Refusal {
            throw KnowTuneError.badFormat(path: path, reason: refusal.reason)
        } catch {
            throw KnowTuneError.badFormat(path: path, reason: "not valid YAML: \(error)")
        }
    }

    private static func parse(_ data: Data) throws -> [(key: String, value: String)] {
        if data.count > maxBytes {
            throw Refusal("larger than \(maxBytes / 1024) KiB; a configuration is a small mapping of arguments")
        }
        let bytes = Array(data)
        if let offset = aliasOrAnchorOffset(in: bytes) {
            let line = bytes[..<offset].filter { $0 == UInt8(ascii: "\n") }.count + 1
            throw Refusal("YAML anchors and aliases (a word starting with & or *, line \(line)) are not accepted")
        }
        let text = String(decoding: bytes, as: UTF8.self)
        let outcome = ParseOutcome()
        let done = DispatchSemaphore(value: 0)
        // The document is built, read and freed on this thread: freeing a deep one recurses as deeply as parsing it.
        let parser = Thread {
            // compose, not load: load's constructor force-unwraps a mapping key that is not a string (`? [a]: 1`
            // crashed it), so the node tree is read here instead.
            outcome.result = Result { try flatten(Yams.compose(yaml: text)) }
            done.signal()
        }
        parser.stackSize = parserStackBytes
        parser.start()
        done.wait()
        return try outcome.result.get()
    }

    private final class ParseOutcome: @unchecked Sendable {
        var result: Result<[(key: String, value: String)], Error> = .success([])
    }

    private static func flatten(_ document: Node?) throws -> [(key: String, value: String)] {
        guard case let .mapping(mapping)? = document else {
            throw Refusal("expected a mapping of argument names to values")
        }
        var pairs: [(key: String, value: String)] = []
        for (keyNode, value) in mapping {
            guard case let .scalar(key) = keyNode else {
                throw Refusal("an argument name must be a plain word, not a list or a mapping")
            }
            switch value {
            case let .sequence(items):
                let texts = try items.map { item -> String in
                    guard let text = scalarText(item) else { throw Refusal("\(key.string): a list may hold only scalars") }
                    return text
                }
                pairs.append((key.string, texts.joined(separator: ",")))
            default:
                guard let text = scalarText(value) else {
                    throw Refusal("\(key.string): expected a scalar or a list of scalars, not a mapping")
                }
                pairs.append((key.string, text))
            }
        }
        // Later duplicates win, as YAML loaders keep the last value of a repeated key.
        var seen = Set<String>()
        return pairs.reversed().filter { seen.insert($0.key).inserted }.sorted { $0.key < $1.key }
    }

    /// A scalar's text as the flag table reads it: null → None, booleans (YAML's yes/no/on/off too) → true/false,
    /// anything else as written. Numbers stay text for the table to parse: Yams' own number constructor traps on an
    /// overflowing sexagesimal like `1:99999999999999999999` (found by fuzzing).
    private static func scalarText(_ node: Node) -> String? {
        guard case .scalar = node else { return nil }
        switch Tag.Name(rawValue: node.tag.description) {
        case .null: return "None"
        case .bool: return node.bool.map { $0 ? "true" : "false" } ?? node.string
        default: return node.string
        }
    }

    /// The offset of a `&` or `*` that starts a word (after a line start, a space or a flow/block indicator),
    /// quoted or not: refusing a quoted one too keeps this check from ever reading quotes differently from YAML.
    static func aliasOrAnchorOffset(in bytes: [UInt8]) -> Int? {
        let wordBreaks: Set<UInt8> = Set(" \t\r\n[{,:-?".utf8)
        for (offset, byte) in bytes.enumerated() where byte == UInt8(ascii: "&") || byte == UInt8(ascii: "*") {
            if offset == 0 || wordBreaks.contains(bytes[offset - 1]) { return offset }
        }
        return nil
    }
}

/// Why a configuration file is refused; `ConfigurationYAML.arguments` turns it into `KnowTuneError.badFormat`.
private struct Refusal: Error {
    let reason: String
    init(_ reason: String) { self.reason = reason }
}
