// Implements GPT-2's pre-tokenisation split (the regex of HF tokenizers' ByteLevel pre-tokenizer) as a hand-written
// scanner over Unicode scalars, optionally preceded by HF's Digits(individual_digits) split; does not map bytes or
// apply merges (ByteLevelBPETokenizer does), and does not see special tokens (they are cut out before).

/// Splits text into the pieces that byte-level BPE encodes independently, exactly as the GPT-2 regex
/// `'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+` does.
///
/// A scanner replaces the regex because NSRegularExpression is slow on Linux and the pattern is simple. Character
/// classes follow the Oniguruma engine HF tokenizers uses: `\p{L}` is general category L*, `\p{N}` is N*, and `\s`
/// is Unicode White_Space (Oniguruma's `\s` is U+0009–U+000D, U+0085 and categories Zs, Zl, Zp, which is the same
/// set), i.e. `Unicode.Scalar.Properties.isWhitespace`. So U+001C–U+001F are *not* whitespace here, although Python's
/// `str.isspace` says they are. Contractions are lowercase only (`SHE'S` gives `'`, `S`), and only U+0020 can be the
/// optional leading space. Splitting never drops or reorders text: the pieces concatenate to the input.
public struct GPT2PreTokenizer: Sendable {
    /// Whether every number character (N*) is first cut out as a piece of its own, as HF's
    /// `Digits(individual_digits=true)` does before `ByteLevel` in SmolLM2's and StarCoder's tokenizer.json.
    /// The GGUF conversion in transformers does not do this (it uses the plain GPT-2 split).
    public let splitsDigitsIndividually: Bool

    public init(splitsDigitsIndividually: Bool = false) {
        self.splitsDigitsIndividually = splitsDigitsIndividually
    }

    /// The pieces of `text`, in order.
    public func split(_ text: String) -> [String] {
        let utf8 = Array(text.utf8)
        var pieces: [String] = []
        var scratch = Scratch()
        utf8.withUnsafeBufferPointer { bytes in
            forEachPiece(in: bytes, range: 0..<bytes.count, scratch: &scratch) { range in
                pieces.append(String(decoding: UnsafeBufferPointer(rebasing: bytes[range]), as: UTF8.self))
            }
        }
        return pieces
    }

    /// The class of one scalar, as far as the split regex can tell scalars apart.
    enum CharacterClass: UInt8 {
        case letter, number, space, otherWhitespace, other

        var isWhitespace: Bool { self == .space || self == .otherWhitespace }
    }

    /// Buffers reused across calls so that splitting allocates only when text grows.
    struct Scratch {
        var classes: [CharacterClass] = []
        /// Scalar values; only needed to recognise the ASCII contractions.
        var values: [UInt32] = []
        /// The byte offset of each scalar, plus one final entry for the end.
        var offsets: [Int] = []
    }

    /// Calls `body` with the byte range of each piece of `bytes[range]`, which must be whole UTF-8 scalars.
    func forEachPiece(
        in bytes: UnsafeBufferPointer<UInt8>, range: Range<Int>, scratch: inout Scratch, _ body: (Range<Int>) -> Void
    ) {
        Self.decodeScalars(of: bytes, range: range, into: &scratch)
        let classes = scratch.classes
        let values = scratch.values
        let offsets = scratch.offsets
        let scalarCount = classes.count
        func emit(_ scalars: Range<Int>) { body(offsets[scalars.lowerBound]..<offsets[scalars.upperBound]) }
        guard splitsDigitsIndividually else {
            Self.forEachRegexPiece(classes: classes, values: values, range: 0..<scalarCount, emit)
            return
        }
        // Digits(individual_digits) runs first, so the regex sees each stretch between numbers as a whole text:
        // a whitespace run before a number ends that stretch, which changes what `\s+(?!\S)` takes.
        var stretchStart = 0
        for index in 0..<scalarCount where classes[index] == .number {
            if stretchStart < index {
                Self.forEachRegexPiece(classes: classes, values: values, range: stretchStart..<index, emit)
            }
            emit(index..<(index + 1))
            stretchStart = index + 1
        }
        if stretchStart < scalarCount {
            Self.forEachRegexPiece(classes: classes, values: values, range: stretchStart..<scalarCount, emit)
        }
    }

    /// Applies the regex to scalars `range`, treating the end of the range as the end of the text.
    static func forEachRegexPiece(
        classes: [CharacterClass], values: [UInt32], range: Range<Int>, _ body: (Range<Int>) -> Void
    ) {
        var start = range.lowerBound
        while start < range.upperBound {
            let end = regexPieceEnd(classes: classes, values: values, start: start, end: range.upperBound)
            body(start..<end)
            start = end
        }
    }

    /// The end of the regex match that starts at `start`. Every scalar is a letter, a number, whitespace or
    /// "other", so some alternative always matches at `start` and the pieces tile the text.
    static func regexPieceEnd(classes: [CharacterClass], values: [UInt32], start: Int, end: Int) -> Int {
        // 's|'t|'re|'ve|'m|'ll|'d (tried first, so "it's" gives "it", "'s").
        if values[start] == apostrophe, start + 1 < end {
            let second = values[start + 1]
            if second == letterS || second == letterT || second == letterM || second == letterD {
                return start + 2
            }
            if start + 2 < end {
                let third = values[start + 2]
                if (second == letterR && third == letterE) || (second == letterV && third == letterE)
                    || (second == letterL && third == letterL)
                {
                    return start + 3
                }
            }
        }
        // ` ?\p{L}+`, ` ?\p{N}+`, ` ?[^\s\p{L}\p{N}]+`: an optional U+0020, then a run of one class.
        var runStart = start
        if classes[start] == .space, start + 1 < end, !classes[start + 1].isWhitespace {
            runStart = start + 1
        }
        let runClass = classes[runStart]
        if !runClass.isWhitespace {
            var index = runStart + 1
            while index < end, classes[index] == runClass { index += 1 }
            return index
        }
        // `\s+(?!\S)` then `\s+`: a whitespace run up to the end of the text is taken whole; one followed by
        // non-whitespace gives up its last scalar, which then starts the next piece (" word" rather than " " + "word").
        var index = start + 1
        while index < end, classes[index].isWhitespace { index += 1 }
        if index == end || index - start == 1 { return index }
        return index - 1
    }

    /// Fills `scratch` with the class, value and byte offset of each scalar of `bytes[range]`.
    static func decodeScalars(of bytes: UnsafeBufferPointer<UInt8>, range: Range<Int>, into scratch: inout Scratch) {
        scratch.classes.removeAll(keepingCapacity: true)
        scratch.values.removeAll(keepingCapacity: true)
        scratch.offsets.removeAll(keepingCapacity: true)
        var position = range.lowerBound
        let end = range.upperBound
        while position < end {
            let lead = UInt32(bytes[position])
            var value = lead
            var length = 1
            if lead >= 0xF0 {
                length = 4
                value = lead & 0x07
            } else if lead >= 0xE0 {
                length = 3
                value = lead & 0x0F
            } else if lead >= 0xC0 {
                length = 2
                value = lead & 0x1F
            }
            if position + length > end {
                // Cannot happen for text from a Swift String; keep going byte by byte rather than trap.
                length = 1
                value = lead
            } else {
                for offset in 1..<length {
                    value = (value << 6) | (UInt32(bytes[position + offset]) & 0x3F)
                }
            }
            scratch.classes.append(characterClass(of: value))
            scratch.values.append(value)
            scratch.offsets.append(position)
            position += length
        }
        scratch.offsets.append(end)
    }

    static func characterClass(of value: UInt32) -> CharacterClass {
        if value < 0x80 { return asciiClasses[Int(value)] }
        guard let scalar = Unicode.Scalar(value) else { return .other }
        switch scalar.properties.generalCategory {
        case .uppercaseLetter, .lowercaseLetter, .titlecaseLetter, .modifierLetter, .otherLetter:
            return .letter
        case .decimalNumber, .letterNumber, .otherNumber:
            return .number
        default:
            return scalar.properties.isWhitespace ? .otherWhitespace : .other
        }
    }

    /// ASCII classes precomputed, since almost all text is ASCII and property look-ups cost far more.
    private static let asciiClasses: [CharacterClass] = (0..<128).map { value in
        switch value {
        case 0x20: return .space
        case 0x09...0x0D: return .otherWhitespace
        case 0x30...0x39: return .number
        case 0x41...0x5A, 0x61...0x7A: return .letter
        default: return .other
        }
    }

    private static let apostrophe: UInt32 = 0x27
    private static let letterS: UInt32 = 0x73
    private static let letterT: UInt32 = 0x74
    private static let letterM: UInt32 = 0x6D
    private static let letterD: UInt32 = 0x64
    private static let letterR: UInt32 = 0x72
    private static let letterE: UInt32 = 0x65
    private static let letterV: UInt32 = 0x76
    private static let letterL: UInt32 = 0x6C
}
