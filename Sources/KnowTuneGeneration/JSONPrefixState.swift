// Implements the state of a byte prefix of a JSON document matching a JSONGrammar: `consume` takes one byte if the
// prefix stays the start of some matching document, `remainingBytes` is the fewest bytes that finish the document
// from here (what lets constrained decoding close it within the token budget), `isComplete` says it is whole.
// Strings must be valid UTF-8 with JSON escapes; whitespace runs between tokens and numbers are bounded so that every
// prefix can end. A value type: copy it to try a byte. Does not look at tokens (JSONConstraint does).
public struct JSONPrefixState {
    enum Phase: UInt8 {
        /// After `{`; after `,` in an object; reading a key; after a key; after `:`.
        case objectStart, objectKey, inKey, colon, objectValue
        /// After `[`; after `,` in an array.
        case arrayStart, arrayItem
        /// A value of this container is being read (by the scanner or a container above).
        case inValue
        case afterValue
    }

    struct Container {
        var node: Int
        var phase: Phase
        /// Object: the properties already keyed.
        var used: UInt64 = 0
        /// Object: the property whose value comes or is being read.
        var current = -1
        /// Array: items begun.
        var count = 0
    }

    struct StringScan {
        var isKey: Bool
        /// 1 right after a backslash.
        var escape: UInt8 = 0
        var hexRemaining: UInt8 = 0
        /// The `\u` escape began with D, so the next digit must keep it out of the surrogates (D800–DFFF), which
        /// JSON parsers refuse unpaired.
        var surrogateGuard = false
        var utf8Pending: UInt8 = 0
        /// The range of the next continuation byte (narrower after E0, ED, F0 and F4: no overlong forms, surrogates
        /// or code points past U+10FFFF, as strict UTF-8 decoders require).
        var nextLow: UInt8 = 0x80
        var nextHigh: UInt8 = 0xBF
    }

    struct NumberScan {
        enum Part: UInt8 { case sign, zero, whole, point, fraction, exponent, exponentSign, exponentDigits }
        var integer: Bool
        var part: Part
        var length = 1

        var isAccepting: Bool { part == .zero || part == .whole || part == .fraction || part == .exponentDigits }

        /// Exponent digits so far: at most two, so that every number stays a finite double (`9e999` is valid JSON
        /// that parsers refuse).
        var exponentDigits = 0
        /// Whether the number began with a minus sign.
        var signed = false

        /// The part after `byte`, or nil when `byte` does not continue the number. An integer keeps to 18 digits,
        /// within Int64.
        func next(_ byte: UInt8) -> Part? {
            let limit = integer ? (part == .sign || signed ? 19 : 18) : JSONGrammar.longestNumber
            guard length < limit, let next = unboundedNext(byte) else { return nil }
            // A part that is not yet a number (after "-", ".", "e" or its sign) needs one more digit within the limit.
            let pending = next == .sign || next == .point || next == .exponent || next == .exponentSign ? 1 : 0
            return length + 1 + pending <= limit ? next : nil
        }

        private func unboundedNext(_ byte: UInt8) -> Part? {
            let digit = (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte)
            let point = byte == UInt8(ascii: "."), exponent = byte == UInt8(ascii: "e") || byte == UInt8(ascii: "E")
            switch part {
            case .sign: return byte == UInt8(ascii: "0") ? .zero : digit ? .whole : nil
            case .zero: return integer ? nil : point ? .point : exponent ? .exponent : nil
            case .whole: return digit ? .whole : integer ? nil : point ? .point : exponent ? .exponent : nil
            case .point: return digit ? .fraction : nil
            case .fraction: return digit ? .fraction : exponent ? .exponent : nil
            case .exponent: return byte == UInt8(ascii: "+") || byte == UInt8(ascii: "-") ? .exponentSign : digit ? .exponentDigits : nil
            case .exponentSign: return digit ? .exponentDigits : nil
            case .exponentDigits: return digit && exponentDigits < 2 ? .exponentDigits : nil
            }
        }
    }

    struct LiteralScan {
        /// The object (for a key) or literals node whose byte strings are matched.
        var node: Int
        var isKey: Bool
        /// Indices of the byte strings still matching.
        var candidates: [Int]
        var matched: Int
    }

    enum Scanner {
        case none
        case string(StringScan)
        case number(NumberScan)
        case literal(LiteralScan)
    }

    public let grammar: JSONGrammar
    var stack: [Container] = []
    var scanner = Scanner.none
    var whitespace = 0
    var isDone = false

    public init(grammar: JSONGrammar) {
        self.grammar = grammar
        stack.reserveCapacity(8)
    }

    /// Whether the bytes so far are a whole matching document (a number or literal at the top level counts once it
    /// could end).
    public var isComplete: Bool {
        if isDone { return true }
        guard stack.isEmpty else { return false }
        switch scanner {
        case let .number(number): return number.isAccepting
        case let .literal(literal): return literal.candidates.contains { bytes(literal, $0).count == literal.matched }
        default: return false
        }
    }

    /// Whether an open string has nothing pending (no escape, no partial character): plain content keeps the state.
    var readsPlainStringContent: Bool {
        guard case let .string(scan) = scanner else { return false }
        return scan.escape == 0 && scan.hexRemaining == 0 && scan.utf8Pending == 0
    }

    /// Takes `bytes` in order; false (and an unusable state) as soon as one cannot follow.
    public mutating func consume<Bytes: Sequence>(_ bytes: Bytes) -> Bool where Bytes.Element == UInt8 {
        for byte in bytes where !consume(byte) { return false }
        return true
    }

    /// Takes one byte; false (and an unusable state) if it cannot follow the prefix.
    public mutating func consume(_ byte: UInt8) -> Bool {
        if isDone { return false }
        switch scanner {
        case .none: break
        case var .string(scan): return consumeInString(&scan, byte)
        case var .number(number):
            if let part = number.next(byte) {
                if number.part == .sign { number.signed = true }
                if part == .exponentDigits { number.exponentDigits += 1 }
                number.part = part
                number.length += 1
                scanner = .number(number)
                return true
            }
            guard number.isAccepting else { return false }
            scanner = .none
            finishValue()
            return consume(byte)
        case var .literal(literal):
            let alive = literal.candidates.filter { index in
                let text = bytes(literal, index)
                return text.count > literal.matched && text[literal.matched] == byte
            }
            if !alive.isEmpty {
                literal.candidates = alive
                literal.matched += 1
                if alive.allSatisfy({ bytes(literal, $0).count == literal.matched }) { return finishLiteral(literal, alive[0]) }
                scanner = .literal(literal)
                return true
            }
            // A shorter candidate that is already whole ends here and the byte belongs to what follows.
            guard !literal.isKey, let whole = literal.candidates.first(where: { bytes(literal, $0).count == literal.matched }),
                  finishLiteral(literal, whole) else { return false }
            return consume(byte)
        }
        if Self.isWhitespace(byte) {
            guard whitespace < JSONGrammar.longestWhitespace else { return false }
            whitespace += 1
            return true
        }
        whitespace = 0
        guard var top = stack.last else { return startValue(grammar.root, byte) }
        let node = grammar.nodes[top.node]
        switch (node, top.phase) {
        case let (.object(keys, _, mask), .objectStart):
            if byte == UInt8(ascii: "}") {
                guard mask == 0 else { return false }
                return closeContainer()
            }
            guard byte == UInt8(ascii: "\""), keys.map({ !$0.isEmpty }) ?? true else { return false }
            return startKey(&top)
        case (.object, .objectKey):
            guard byte == UInt8(ascii: "\"") else { return false }
            return startKey(&top)
        case (.object, .colon):
            guard byte == UInt8(ascii: ":") else { return false }
            top.phase = .objectValue
            stack[stack.count - 1] = top
            return true
        case let (.object(_, values, _), .objectValue):
            top.phase = .inValue
            stack[stack.count - 1] = top
            return startValue(top.current >= 0 ? values[top.current] : grammar.anyValue, byte)
        case let (.object(keys, _, mask), .afterValue):
            if byte == UInt8(ascii: ",") {
                if let keys, top.used.nonzeroBitCount >= keys.count { return false }
                top.phase = .objectKey
                stack[stack.count - 1] = top
                return true
            }
            guard byte == UInt8(ascii: "}"), mask & ~top.used == 0 else { return false }
            return closeContainer()
        case let (.array(items, minItems, maxItems), .arrayStart):
            if byte == UInt8(ascii: "]") {
                guard minItems == 0 else { return false }
                return closeContainer()
            }
            guard maxItems != 0 else { return false }
            top.phase = .inValue
            top.count = 1
            stack[stack.count - 1] = top
            return startValue(items, byte)
        case let (.array(items, _, _), .arrayItem):
            top.phase = .inValue
            top.count += 1
            stack[stack.count - 1] = top
            return startValue(items, byte)
        case let (.array(_, minItems, maxItems), .afterValue):
            if byte == UInt8(ascii: ",") {
                if let maxItems, top.count >= maxItems { return false }
                top.phase = .arrayItem
                stack[stack.count - 1] = top
                return true
            }
            guard byte == UInt8(ascii: "]"), top.count >= minItems else { return false }
            return closeContainer()
        default:
            return false
        }
    }

    /// The fewest bytes that make the prefix a whole document (0 when it is one).
    public var remainingBytes: Int {
        if isComplete { return 0 }
        var total = 0
        switch scanner {
        case .none:
            if stack.isEmpty { total += grammar.minimumLength[grammar.root] }
        case let .string(scan):
            total += Int(scan.escape) + Int(scan.hexRemaining) + Int(scan.utf8Pending) + 1
            if scan.isKey { total += 1 + grammar.minimumLength[grammar.anyValue] }
        case let .number(number):
            total += number.isAccepting ? 0 : 1
        case let .literal(literal):
            if literal.isKey, let top = stack.last {
                total += literal.candidates.map { index in
                    bytes(literal, index).count - literal.matched + 1 + valueLength(object: top.node, property: index)
                        + grammar.requiredRemainder(object: top.node, used: top.used | 1 << UInt64(index), leadingComma: true)
                }.min() ?? 0
            } else {
                total += literal.candidates.map { bytes(literal, $0).count - literal.matched }.min() ?? 0
            }
        }
        for container in stack { total += remainder(of: container) }
        return total
    }

    // MARK: - Steps

    private mutating func consumeInString(_ scan: inout StringScan, _ byte: UInt8) -> Bool {
        if scan.escape == 1 {
            switch byte {
            case UInt8(ascii: "u"): scan.hexRemaining = 4
            case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"), UInt8(ascii: "b"), UInt8(ascii: "f"),
                 UInt8(ascii: "n"), UInt8(ascii: "r"), UInt8(ascii: "t"): break
            default: return false
            }
            scan.escape = 0
        } else if scan.hexRemaining > 0 {
            guard Self.isHexDigit(byte) else { return false }
            if scan.surrogateGuard {
                guard (UInt8(ascii: "0")...UInt8(ascii: "7")).contains(byte) else { return false }
                scan.surrogateGuard = false
            } else if scan.hexRemaining == 4, byte == UInt8(ascii: "d") || byte == UInt8(ascii: "D") {
                scan.surrogateGuard = true
            }
            scan.hexRemaining -= 1
        } else if scan.utf8Pending > 0 {
            guard (scan.nextLow...scan.nextHigh).contains(byte) else { return false }
            scan.utf8Pending -= 1
            scan.nextLow = 0x80
            scan.nextHigh = 0xBF
        } else if byte == UInt8(ascii: "\"") {
            scanner = .none
            if scan.isKey {
                stack[stack.count - 1].phase = .colon
            } else {
                finishValue()
            }
            return true
        } else if byte == UInt8(ascii: "\\") {
            scan.escape = 1
        } else if byte < 0x20 {
            return false
        } else if byte >= 0x80 {
            switch byte {
            case 0xC2...0xDF: scan.utf8Pending = 1
            case 0xE0...0xEF: scan.utf8Pending = 2
            case 0xF0...0xF4: scan.utf8Pending = 3
            default: return false
            }
            switch byte {
            case 0xE0: scan.nextLow = 0xA0
            case 0xED: scan.nextHigh = 0x9F
            case 0xF0: scan.nextLow = 0x90
            case 0xF4: scan.nextHigh = 0x8F
            default: break
            }
        }
        scanner = .string(scan)
        return true
    }

    private mutating func startKey(_ top: inout Container) -> Bool {
        guard case let .object(keys, _, _) = grammar.nodes[top.node] else { return false }
        top.phase = .inKey
        stack[stack.count - 1] = top
        guard let keys else {
            scanner = .string(StringScan(isKey: true))
            return true
        }
        let unused = keys.indices.filter { top.used & (1 << UInt64($0)) == 0 }
        guard !unused.isEmpty else { return false }
        scanner = .literal(LiteralScan(node: top.node, isKey: true, candidates: unused, matched: 0))
        return true
    }

    private mutating func startValue(_ node: Int, _ byte: UInt8) -> Bool {
        switch grammar.nodes[node] {
        case .object:
            guard byte == UInt8(ascii: "{") else { return false }
            stack.append(Container(node: node, phase: .objectStart))
            return true
        case .array:
            guard byte == UInt8(ascii: "[") else { return false }
            stack.append(Container(node: node, phase: .arrayStart))
            return true
        case .string:
            guard byte == UInt8(ascii: "\"") else { return false }
            scanner = .string(StringScan(isKey: false))
            return true
        case let .number(integer):
            let part: NumberScan.Part
            switch byte {
            case UInt8(ascii: "-"): part = .sign
            case UInt8(ascii: "0"): part = .zero
            case UInt8(ascii: "1")...UInt8(ascii: "9"): part = .whole
            default: return false
            }
            scanner = .number(NumberScan(integer: integer, part: part))
            return true
        case let .literals(texts):
            let literal = LiteralScan(node: node, isKey: false, candidates: Array(texts.indices), matched: 0)
            scanner = .literal(literal)
            return consume(byte)
        case .anyValue:
            switch byte {
            case UInt8(ascii: "{"): return startValue(grammar.anyObject, byte)
            case UInt8(ascii: "["): return startValue(grammar.anyArray, byte)
            case UInt8(ascii: "t"), UInt8(ascii: "f"), UInt8(ascii: "n"): return startValue(grammar.anyLiteral, byte)
            case UInt8(ascii: "\""): return startValue(grammar.anyString, byte)
            default: return startValue(grammar.anyNumber, byte)
            }
        }
    }

    private mutating func finishLiteral(_ literal: LiteralScan, _ index: Int) -> Bool {
        scanner = .none
        if literal.isKey {
            stack[stack.count - 1].used |= 1 << UInt64(index)
            stack[stack.count - 1].current = index
            stack[stack.count - 1].phase = .colon
        } else {
            finishValue()
        }
        return true
    }

    /// The innermost container has just closed: it is a finished value of its parent.
    private mutating func closeContainer() -> Bool {
        stack.removeLast()
        finishValue()
        return true
    }

    /// A value has ended: its container moves past it, or the document is done.
    private mutating func finishValue() {
        guard !stack.isEmpty else {
            isDone = true
            return
        }
        stack[stack.count - 1].phase = .afterValue
    }

    // MARK: - Remaining length

    private func valueLength(object node: Int, property: Int) -> Int {
        guard case let .object(_, values, _) = grammar.nodes[node], values.indices.contains(property) else {
            return grammar.minimumLength[grammar.anyValue]
        }
        return grammar.minimumLength[values[property]]
    }

    /// Fewest bytes that close `container` after what the scanner and the containers above it still need.
    private func remainder(of container: Container) -> Int {
        switch grammar.nodes[container.node] {
        case let .object(keys, _, _):
            let required = { (leadingComma: Bool) in
                grammar.requiredRemainder(object: container.node, used: container.used, leadingComma: leadingComma)
            }
            switch container.phase {
            case .objectStart: return required(false) + 1
            case .objectKey:
                // A key must come now: the cheapest unused property, then the still-required ones.
                guard let keys else { return 2 + 1 + grammar.minimumLength[grammar.anyValue] + 1 }
                let options = keys.indices.filter { container.used & (1 << UInt64($0)) == 0 }.map { index in
                    grammar.entryLength(keys: keys, values: valueIndices(container.node), index)
                        + grammar.requiredRemainder(object: container.node, used: container.used | 1 << UInt64(index), leadingComma: true)
                }
                return (options.min() ?? 0) + 1
            // A key's literal (or, in an object of any keys, its string) counts the rest of its entry.
            case .inKey: return 1
            case .colon: return 1 + valueLength(object: container.node, property: container.current) + required(true) + 1
            case .objectValue: return valueLength(object: container.node, property: container.current) + required(true) + 1
            default: return required(true) + 1
            }
        case let .array(items, minItems, _):
            let item = grammar.minimumLength[items]
            switch container.phase {
            case .arrayStart: return minItems == 0 ? 1 : minItems * item + (minItems - 1) + 1
            case .arrayItem: return item + max(0, minItems - container.count - 1) * (1 + item) + 1
            default: return max(0, minItems - container.count) * (1 + item) + 1
            }
        default:
            return 0
        }
    }

    private func valueIndices(_ node: Int) -> [Int] {
        guard case let .object(_, values, _) = grammar.nodes[node] else { return [] }
        return values
    }

    private func bytes(_ literal: LiteralScan, _ index: Int) -> [UInt8] {
        switch grammar.nodes[literal.node] {
        case let .object(keys?, _, _): return keys[index]
        case let .literals(texts): return texts[index]
        default: return []
        }
    }

    static func isWhitespace(_ byte: UInt8) -> Bool {
        byte == UInt8(ascii: " ") || byte == UInt8(ascii: "\n") || byte == UInt8(ascii: "\t") || byte == UInt8(ascii: "\r")
    }

    static func isHexDigit(_ byte: UInt8) -> Bool {
        (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) || (UInt8(ascii: "a")...UInt8(ascii: "f")).contains(byte)
            || (UInt8(ascii: "A")...UInt8(ascii: "F")).contains(byte)
    }
}
