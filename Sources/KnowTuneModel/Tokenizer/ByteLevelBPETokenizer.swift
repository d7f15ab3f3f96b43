// Implements GPT-2-style byte-level BPE (SmolLM2, GPT-2, StarCoder…) with Hugging Face's ids: added/special tokens cut
// out first, the GPT-2 split, byte→character mapping, merges by rank, and byte-level decoding; loads from GGUF
// metadata or an HF tokenizer.json. Does not add BOS/EOS, apply chat templates, normalise text, or implement
// SentencePiece (`tokenizer.ggml.model == "llama"`) vocabularies.
import Foundation
import KnowTuneTensor

/// A byte-level BPE tokenizer whose `encode` equals HF `tokenizer(text, add_special_tokens=False).input_ids`.
///
/// Encoding follows HF tokenizers step by step:
/// 1. Added tokens (special or not) are found in the raw text, leftmost-longest, and map straight to their ids; HF's
///    `AddedVocabulary` does this before any pre-tokenisation, which is why `<|im_end|>` in a string gives id 2
///    even with `add_special_tokens=False`.
/// 2. Each remaining stretch is split by `GPT2PreTokenizer`.
/// 3. Each piece's UTF-8 bytes become table characters (`ByteUnicodeMap`), one symbol per byte, and adjacent symbols
///    are merged lowest merge rank first (HF `Word::merge_all`), until no ranked pair is left.
///
/// Encoded pieces are cached, so a class instance (shared safely across threads: the cache has a lock) gets
/// faster as it sees more text.
public final class ByteLevelBPETokenizer: Tokenizer, @unchecked Sendable {
    /// A token matched verbatim in the input before pre-tokenisation (HF `AddedToken`).
    public struct AddedToken: Sendable, Equatable {
        public var content: String
        public var id: Int32
        /// Special tokens (GGUF control tokens, tokenizer.json `special`) behave like the others when encoding and
        /// decoding here; the flag is kept for callers that want to hide them.
        public var isSpecial: Bool
        /// Whether whitespace before the token is absorbed into it (HF `lstrip`).
        public var stripsWhitespaceBefore: Bool
        /// Whether whitespace after the token is absorbed into it (HF `rstrip`).
        public var stripsWhitespaceAfter: Bool
        /// Whether the token only matches when no word character touches it (HF `single_word`).
        public var matchesSingleWordOnly: Bool
        /// Whether HF matches the token after normalisation. With no normaliser this only orders the matching:
        /// HF cuts out the non-normalised tokens first, then the normalised ones in what is left.
        public var isNormalized: Bool

        public init(
            content: String, id: Int32, isSpecial: Bool, stripsWhitespaceBefore: Bool = false,
            stripsWhitespaceAfter: Bool = false, matchesSingleWordOnly: Bool = false, isNormalized: Bool = false
        ) {
            self.content = content
            self.id = id
            self.isSpecial = isSpecial
            self.stripsWhitespaceBefore = stripsWhitespaceBefore
            self.stripsWhitespaceAfter = stripsWhitespaceAfter
            self.matchesSingleWordOnly = matchesSingleWordOnly
            self.isNormalized = isNormalized
        }
    }

    /// What to do with a byte whose table character is not in the vocabulary (HF BPE options).
    public struct UnknownByteHandling: Sendable, Equatable {
        /// Use the `<0xAB>` token of the byte when the vocabulary has one (HF `byte_fallback`).
        public var usesByteFallback: Bool
        /// The id emitted for such a byte, or nil to drop the byte silently, as HF does when `unk_token` is null.
        public var unknownTokenId: Int32?
        /// Whether consecutive unknown bytes give one unknown id (HF `fuse_unk`).
        public var fusesUnknownBytes: Bool

        /// Drop unknown bytes: HF's GPT-2 conversion (also used for GGUF) sets no unknown token and no fallback.
        public static let drop = UnknownByteHandling(
            usesByteFallback: false, unknownTokenId: nil, fusesUnknownBytes: false)

        public init(usesByteFallback: Bool, unknownTokenId: Int32?, fusesUnknownBytes: Bool) {
            self.usesByteFallback = usesByteFallback
            self.unknownTokenId = unknownTokenId
            self.fusesUnknownBytes = fusesUnknownBytes
        }
    }

    public let eosTokenId: Int32
    public let bosTokenId: Int32?
    public let padTokenId: Int32?
    /// The tokens matched verbatim before pre-tokenisation, in the order they were given.
    public let addedTokens: [AddedToken]
    public let preTokenizer: GPT2PreTokenizer
    public let unknownByteHandling: UnknownByteHandling
    /// Whether a piece that is itself a vocabulary entry is taken whole without merging (HF `ignore_merges`, set by
    /// Llama-3-style tokenizer.json files).
    public let ignoresMerges: Bool

    public var vocabularySize: Int { textOfId.count }

    /// Vocabulary text by id; nil for ids with no entry (tokenizer.json vocabularies may have gaps).
    private let textOfId: [String?]
    private let idOfText: [String: Int32]
    /// The id of each byte's table character, or -1 if the vocabulary lacks it.
    private let idOfByte: [Int32]
    /// The id of each byte's `<0xAB>` fallback token, or -1.
    private let fallbackIdOfByte: [Int32]
    /// Merge rank and result by pair: key `left << 32 | right`, value `rank << 32 | mergedId`, so comparing values
    /// compares ranks (the rank identifies the merge, so equal ranks mean the same pair).
    private let mergeOfPair: [UInt64: UInt64]
    /// Added-token matching passes: non-normalised tokens first, then normalised ones (HF's two tries).
    private let addedTokenPasses: [AddedTokenMatcher]
    private let specialIds: Set<Int32>

    private let cacheLock = NSLock()
    private var cachedIdsOfPiece: [[UInt8]: [Int32]] = [:]
    /// Longer pieces are rare and would bloat the cache.
    private static let longestCachedPiece = 128
    /// The cache is emptied when it reaches this size, which bounds memory on endless streams of new words.
    private static let cacheCapacity = 200_000
    /// Words this short merge faster by rescanning all pairs than with a heap.
    private static let longestScannedWord = 48

    // MARK: - Initialisers

    /// Builds the tokenizer from GGUF-style arrays: `tokenizer.ggml.tokens`, `tokenizer.ggml.merges` ("a b" strings,
    /// rank = position) and `tokenizer.ggml.token_type` (1 normal, 2 unknown, 3 control, 4 user-defined, 5 unused,
    /// 6 byte).
    ///
    /// Control (3) and user-defined (4) tokens are added tokens, matched in the input before the split; they are ids
    /// 0…16 (`<|endoftext|>`, `<|im_start|>`, `<|im_end|>`, `<repo_name>`, …) in SmolLM2, exactly the set HF splits
    /// out. (transformers' GGUF conversion registers the control tokens as special; llama.cpp also treats
    /// user-defined ones as whole tokens, and SmolLM2 has none.) Without token types, the EOS, BOS and pad tokens are
    /// the added tokens. Unknown bytes are dropped, as in HF's conversion, which sets no unknown token.
    public convenience init(
        tokens: [String], merges: [String], tokenTypes: [Int]?, eosTokenId: Int32, bosTokenId: Int32?,
        padTokenId: Int32?
    ) throws {
        try self.init(
            tokens: tokens, merges: merges, tokenTypes: tokenTypes, extraAddedTokens: [], eosTokenId: eosTokenId,
            bosTokenId: bosTokenId, padTokenId: padTokenId)
    }

    /// Builds the tokenizer from GGUF metadata with `tokenizer.ggml.model == "gpt2"`.
    ///
    /// Reads `tokenizer.ggml.tokens`, `.merges`, `.token_type`, `.eos_token_id`, `.bos_token_id`,
    /// `.padding_token_id` and `.added_tokens`. `tokenizer.ggml.pre` (for example `smollm`) is ignored on purpose:
    /// transformers' GGUF conversion always uses the plain GPT-2 split, and its ids are the reference.
    public convenience init(gguf metadata: [String: GGUFValue]) throws {
        let source = "GGUF tokenizer metadata"
        guard let model = metadata["tokenizer.ggml.model"]?.stringValue else {
            throw KnowTuneError.badFormat(path: source, reason: "missing string tokenizer.ggml.model")
        }
        guard model == "gpt2" else {
            throw KnowTuneError.unsupported(
                what: "GGUF tokenizer model \"\(model)\"",
                supported: "gpt2 (byte-level BPE); SentencePiece (\"llama\") vocabularies need another tokenizer")
        }
        guard let tokens = metadata["tokenizer.ggml.tokens"]?.stringArray else {
            throw KnowTuneError.badFormat(path: source, reason: "missing string array tokenizer.ggml.tokens")
        }
        guard let merges = metadata["tokenizer.ggml.merges"]?.stringArray else {
            throw KnowTuneError.badFormat(path: source, reason: "missing string array tokenizer.ggml.merges")
        }
        var tokenTypes: [Int]?
        if let value = metadata["tokenizer.ggml.token_type"] {
            guard let types = value.intArray else {
                throw KnowTuneError.badFormat(path: source, reason: "tokenizer.ggml.token_type is not an integer array")
            }
            tokenTypes = types
        }
        func tokenId(_ key: String) throws -> Int32? {
            guard let value = metadata[key] else { return nil }
            guard let integer = value.intValue, let id = Int32(exactly: integer) else {
                throw KnowTuneError.badFormat(path: source, reason: "\(key) is not a token id")
            }
            return id
        }
        guard let eosTokenId = try tokenId("tokenizer.ggml.eos_token_id") else {
            throw KnowTuneError.badFormat(path: source, reason: "missing tokenizer.ggml.eos_token_id")
        }
        var extraAddedTokens: [String] = []
        if let value = metadata["tokenizer.ggml.added_tokens"] {
            guard let strings = value.stringArray else {
                throw KnowTuneError.badFormat(path: source, reason: "tokenizer.ggml.added_tokens is not a string array")
            }
            extraAddedTokens = strings
        }
        try self.init(
            tokens: tokens, merges: merges, tokenTypes: tokenTypes, extraAddedTokens: extraAddedTokens,
            eosTokenId: eosTokenId, bosTokenId: try tokenId("tokenizer.ggml.bos_token_id"),
            padTokenId: try tokenId("tokenizer.ggml.padding_token_id"))
    }

    private convenience init(
        tokens: [String], merges: [String], tokenTypes: [Int]?, extraAddedTokens: [String], eosTokenId: Int32,
        bosTokenId: Int32?, padTokenId: Int32?
    ) throws {
        let source = "GGUF tokenizer metadata"
        if let tokenTypes, tokenTypes.count != tokens.count {
            throw KnowTuneError.badFormat(
                path: source, reason: "\(tokenTypes.count) token types for \(tokens.count) tokens")
        }
        var vocabulary: [String: Int32] = [:]
        vocabulary.reserveCapacity(tokens.count)
        for (index, token) in tokens.enumerated() {
            // A later duplicate wins, as in transformers' `{word: i for i, word in enumerate(tokens)}`.
            vocabulary[token] = Int32(index)
        }
        var mergePairs: [(String, String)] = []
        mergePairs.reserveCapacity(merges.count)
        for (rank, merge) in merges.enumerated() {
            let parts = merge.split(separator: " ", omittingEmptySubsequences: false)
            guard parts.count == 2 else {
                throw KnowTuneError.badFormat(
                    path: source, reason: "merge \(rank) \"\(merge)\" is not two tokens separated by one space")
            }
            mergePairs.append((String(parts[0]), String(parts[1])))
        }
        var added: [AddedToken] = []
        if let tokenTypes {
            for (index, type) in tokenTypes.enumerated() where type == 3 || type == 4 {
                added.append(AddedToken(content: tokens[index], id: Int32(index), isSpecial: type == 3))
            }
        } else {
            for id in [eosTokenId, bosTokenId, padTokenId].compactMap({ $0 }) where tokens.indices.contains(Int(id)) {
                added.append(AddedToken(content: tokens[Int(id)], id: id, isSpecial: true))
            }
        }
        for content in extraAddedTokens {
            guard let id = vocabulary[content] else { continue }
            added.append(AddedToken(content: content, id: id, isSpecial: false))
        }
        try self.init(
            vocabulary: vocabulary, vocabularySize: tokens.count, merges: mergePairs, addedTokens: added,
            preTokenizer: GPT2PreTokenizer(), unknownByteHandling: .drop, ignoresMerges: false,
            eosTokenId: eosTokenId, bosTokenId: bosTokenId, padTokenId: padTokenId, source: source)
    }

    /// Builds the tokenizer from its parts; every other initialiser ends here.
    ///
    /// - Parameters:
    ///   - vocabulary: token text → id.
    ///   - vocabularySize: at least one more than the largest id (added tokens included); ids without text get none.
    ///   - merges: pairs in rank order (first = merged first). Both halves and their concatenation must be in the
    ///     vocabulary, as HF requires. A repeated pair takes its later rank, as in HF's merge map.
    ///   - source: names the origin in error messages.
    init(
        vocabulary: [String: Int32], vocabularySize: Int, merges: [(String, String)], addedTokens: [AddedToken],
        preTokenizer: GPT2PreTokenizer, unknownByteHandling: UnknownByteHandling, ignoresMerges: Bool,
        eosTokenId: Int32, bosTokenId: Int32?, padTokenId: Int32?, source: String
    ) throws {
        var textOfId = [String?](repeating: nil, count: vocabularySize)
        var idOfText = vocabulary
        for (text, id) in vocabulary {
            guard id >= 0, Int(id) < vocabularySize else {
                throw KnowTuneError.badFormat(
                    path: source, reason: "token \"\(text)\" has id \(id) outside 0..<\(vocabularySize)")
            }
            // Several texts may share an id in a malformed vocabulary; keep one deterministically.
            if let existing = textOfId[Int(id)], existing < text { continue }
            textOfId[Int(id)] = text
        }
        for token in addedTokens {
            guard token.id >= 0, Int(token.id) < vocabularySize else {
                throw KnowTuneError.badFormat(
                    path: source,
                    reason: "added token \"\(token.content)\" has id \(token.id) outside 0..<\(vocabularySize)")
            }
            // HF looks added tokens up before the model vocabulary, in both directions.
            textOfId[Int(token.id)] = token.content
            idOfText[token.content] = token.id
        }
        for (name, id) in [("EOS", Optional(eosTokenId)), ("BOS", bosTokenId), ("pad", padTokenId)] {
            if let id, !(0..<vocabularySize).contains(Int(id)) {
                throw KnowTuneError.invalidConfiguration(
                    "\(source): \(name) token id \(id) is outside the vocabulary 0..<\(vocabularySize)")
            }
        }

        var mergeOfPair: [UInt64: UInt64] = [:]
        mergeOfPair.reserveCapacity(merges.count)
        for (rank, (left, right)) in merges.enumerated() {
            guard let leftId = vocabulary[left], let rightId = vocabulary[right],
                let mergedId = vocabulary[left + right]
            else {
                throw KnowTuneError.badFormat(
                    path: source,
                    reason: "merge \(rank) \"\(left) \(right)\" uses or makes a token not in the vocabulary")
            }
            mergeOfPair[BPEMerge.pairKey(leftId, rightId)] = UInt64(rank) << 32 | UInt64(UInt32(bitPattern: mergedId))
        }

        var idOfByte = [Int32](repeating: -1, count: 256)
        var fallbackIdOfByte = [Int32](repeating: -1, count: 256)
        for byte in 0..<256 {
            let character = String(Character(ByteUnicodeMap.scalarOfByte[byte]))
            idOfByte[byte] = vocabulary[character] ?? -1
            let hexDigits = String(byte, radix: 16, uppercase: true)
            let fallbackText = "<0x" + (hexDigits.count == 1 ? "0" : "") + hexDigits + ">"
            fallbackIdOfByte[byte] = vocabulary[fallbackText] ?? -1
        }

        self.textOfId = textOfId
        self.idOfText = idOfText
        self.idOfByte = idOfByte
        self.fallbackIdOfByte = fallbackIdOfByte
        self.mergeOfPair = mergeOfPair
        self.addedTokens = addedTokens
        specialIds = Set(addedTokens.filter(\.isSpecial).map(\.id))
        self.addedTokenPasses = [
            AddedTokenMatcher(tokens: addedTokens.filter { !$0.isNormalized }),
            AddedTokenMatcher(tokens: addedTokens.filter { $0.isNormalized }),
        ].filter { !$0.isEmpty }
        self.preTokenizer = preTokenizer
        self.unknownByteHandling = unknownByteHandling
        self.ignoresMerges = ignoresMerges
        self.eosTokenId = eosTokenId
        self.bosTokenId = bosTokenId
        self.padTokenId = padTokenId
    }

    // MARK: - Tokenizer

    public func encode(_ text: String) -> [Int32] {
        let utf8 = Array(text.utf8)
        var ids: [Int32] = []
        ids.reserveCapacity(utf8.count / 3 + 1)
        var scratch = GPT2PreTokenizer.Scratch()
        utf8.withUnsafeBufferPointer { bytes in
            forEachAddedTokenSegment(in: bytes, range: 0..<bytes.count, pass: 0) { segment in
                switch segment {
                case let .addedToken(id):
                    ids.append(id)
                case let .text(range):
                    preTokenizer.forEachPiece(in: bytes, range: range, scratch: &scratch) { piece in
                        appendIds(ofPiece: UnsafeBufferPointer(rebasing: bytes[piece]), to: &ids)
                    }
                }
            }
        }
        return ids
    }

    /// Joins the byte-level text of `ids` and decodes it as UTF-8, like HF's ByteLevel decoder: a token whose
    /// characters are all table characters gives their bytes, any other token (an added token such as "a b" or
    /// "\n") gives its own UTF-8. Invalid UTF-8 (an id sequence cut inside a character) becomes U+FFFD.
    public func decode(_ ids: [Int32]) -> String {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(ids.count * 4)
        for id in ids {
            guard let text = tokenText(id) else { continue }
            let start = bytes.count
            var isTableText = true
            for scalar in text.unicodeScalars {
                guard let byte = ByteUnicodeMap.byte(for: scalar) else {
                    isTableText = false
                    break
                }
                bytes.append(byte)
            }
            if !isTableText {
                bytes.removeSubrange(start...)
                bytes.append(contentsOf: text.utf8)
            }
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    public func tokenBytes(_ id: Int32) -> [UInt8]? {
        guard let text = tokenText(id), !specialIds.contains(id) else { return nil }
        var bytes: [UInt8] = []
        for scalar in text.unicodeScalars {
            // Not table text: an added token decodes to its own UTF-8, as in `decode`.
            guard let byte = ByteUnicodeMap.byte(for: scalar) else { return Array(text.utf8) }
            bytes.append(byte)
        }
        return bytes
    }

    public func tokenText(_ id: Int32) -> String? {
        guard id >= 0, Int(id) < textOfId.count else { return nil }
        return textOfId[Int(id)]
    }

    /// The id of a vocabulary entry or added token given its stored text (`"<|im_end|>"`, `"Ġworld"`).
    public func tokenId(forText text: String) -> Int32? {
        idOfText[text]
    }

    // MARK: - Added tokens

    enum Segment {
        case addedToken(Int32)
        case text(Range<Int>)
    }

    /// Runs matching pass `pass` on `bytes[range]` and the later passes on the text it leaves.
    private func forEachAddedTokenSegment(
        in bytes: UnsafeBufferPointer<UInt8>, range: Range<Int>, pass: Int, _ body: (Segment) -> Void
    ) {
        guard pass < addedTokenPasses.count else {
            if !range.isEmpty { body(.text(range)) }
            return
        }
        addedTokenPasses[pass].forEachSegment(in: bytes, range: range) { segment in
            switch segment {
            case .addedToken: body(segment)
            case let .text(textRange): forEachAddedTokenSegment(in: bytes, range: textRange, pass: pass + 1, body)
            }
        }
    }

    // MARK: - BPE

    private func appendIds(ofPiece piece: UnsafeBufferPointer<UInt8>, to ids: inout [Int32]) {
        let isCacheable = piece.count <= Self.longestCachedPiece
        let key = isCacheable ? Array(piece) : []
        if isCacheable {
            cacheLock.lock()
            let cached = cachedIdsOfPiece[key]
            cacheLock.unlock()
            if let cached {
                ids.append(contentsOf: cached)
                return
            }
        }
        let pieceIds = bytePairEncode(piece)
        ids.append(contentsOf: pieceIds)
        if isCacheable {
            cacheLock.lock()
            if cachedIdsOfPiece.count >= Self.cacheCapacity { cachedIdsOfPiece.removeAll(keepingCapacity: true) }
            cachedIdsOfPiece[key] = pieceIds
            cacheLock.unlock()
        }
    }

    /// The ids of one pre-tokenised piece (HF `BPE::merge_word` followed by `Word::merge_all`).
    func bytePairEncode(_ piece: UnsafeBufferPointer<UInt8>) -> [Int32] {
        if ignoresMerges, let id = idOfText[ByteUnicodeMap.encode(piece)] {
            return [id]
        }
        var symbols: [Int32] = []
        symbols.reserveCapacity(piece.count)
        var previousWasUnknown = false
        for byte in piece {
            let id = idOfByte[Int(byte)]
            if id >= 0 {
                symbols.append(id)
                previousWasUnknown = false
                continue
            }
            if unknownByteHandling.usesByteFallback, fallbackIdOfByte[Int(byte)] >= 0 {
                symbols.append(fallbackIdOfByte[Int(byte)])
                previousWasUnknown = false
                continue
            }
            // HF drops the byte when there is no unknown token; the bytes on both sides then become neighbours.
            guard let unknownTokenId = unknownByteHandling.unknownTokenId else { continue }
            if !(previousWasUnknown && unknownByteHandling.fusesUnknownBytes) {
                symbols.append(unknownTokenId)
            }
            previousWasUnknown = true
        }
        if symbols.count > Self.longestScannedWord {
            mergeWithHeap(&symbols)
        } else if symbols.count > 1 {
            mergeByScanning(&symbols)
        }
        return symbols
    }

    /// Repeatedly merges the pair with the lowest rank, leftmost first on ties: the order HF's priority queue of
    /// (rank, position) gives. Quadratic in the word length, and fastest for the short words that dominate text.
    func mergeByScanning(_ symbols: inout [Int32]) {
        var merges = [UInt64](repeating: .max, count: symbols.count - 1)
        for index in merges.indices {
            merges[index] = mergeOfPair[BPEMerge.pairKey(symbols[index], symbols[index + 1])] ?? .max
        }
        while true {
            var best = UInt64.max
            var bestIndex = -1
            for index in merges.indices where merges[index] < best {
                best = merges[index]
                bestIndex = index
            }
            guard bestIndex >= 0 else { return }
            symbols[bestIndex] = Int32(bitPattern: UInt32(truncatingIfNeeded: best))
            symbols.remove(at: bestIndex + 1)
            merges.remove(at: bestIndex)
            if bestIndex > 0 {
                merges[bestIndex - 1] =
                    mergeOfPair[BPEMerge.pairKey(symbols[bestIndex - 1], symbols[bestIndex])] ?? .max
            }
            if bestIndex < merges.count {
                merges[bestIndex] = mergeOfPair[BPEMerge.pairKey(symbols[bestIndex], symbols[bestIndex + 1])] ?? .max
            }
        }
    }

    /// The same merge order as `mergeByScanning`, in O(n log n) for long words (a run of thousands of letters
    /// or symbols): the heap merge both BPE tokenizers share.
    func mergeWithHeap(_ symbols: inout [Int32]) {
        BPEMerge.mergeWithHeap(&symbols, mergeOfPair: mergeOfPair)
    }
}

// MARK: - tokenizer.json

extension ByteLevelBPETokenizer: TokenizerJSONReadable {
    /// Builds the tokenizer from the bytes of an HF `tokenizer.json` (model `BPE`, pre-tokenizer `ByteLevel` with
    /// `add_prefix_space: false`, optionally after `Digits(individual_digits: true)`, no normalizer).
    ///
    /// Merges may be "a b" strings or two-element arrays. Every `added_tokens` entry is matched verbatim in the input,
    /// honouring `lstrip`, `rstrip`, `single_word` and `normalized` (match order). Explicit ids win over the names
    /// in `tokenizerConfigJSON`; an EOS id is required from one of them.
    public convenience init(
        tokenizerJSON: Data, tokenizerConfigJSON: Data? = nil, eosTokenId: Int32? = nil, bosTokenId: Int32? = nil,
        padTokenId: Int32? = nil, source: String = "tokenizer.json"
    ) throws {
        let document = try TokenizerJSONDocument(tokenizerJSON: tokenizerJSON, tokenizerConfigJSON: tokenizerConfigJSON, source: source)
        try Self.checkNormalizer(document.root["normalizer"])
        let preTokenizer = try Self.preTokenizer(from: document.root["pre_tokenizer"])
        // Added tokens may lie past the model's vocabulary (HF `len(tokenizer)` counts them).
        let vocabularySize = document.addedTokens.reduce(document.vocabularySize) { max($0, Int($1.id) + 1) }
        let model = document.model
        try self.init(
            vocabulary: document.vocabulary, vocabularySize: vocabularySize, merges: document.merges, addedTokens: document.addedTokens,
            preTokenizer: preTokenizer,
            unknownByteHandling: UnknownByteHandling(
                usesByteFallback: (model["byte_fallback"] as? Bool) ?? false, unknownTokenId: try document.unknownTokenId(),
                fusesUnknownBytes: (model["fuse_unk"] as? Bool) ?? false),
            ignoresMerges: (model["ignore_merges"] as? Bool) ?? false, eosTokenId: try document.eosTokenId(given: eosTokenId),
            bosTokenId: try bosTokenId ?? document.configuredId("bos_token"),
            padTokenId: try padTokenId ?? document.configuredId("pad_token"),
            source: source)
    }

    private static func checkNormalizer(_ value: Any?) throws {
        guard let value, !(value is NSNull) else { return }
        let object = value as? [String: Any]
        let type = (object?["type"] as? String) ?? "?"
        // An empty Sequence is what transformers writes for "no normaliser" in some conversions.
        if type == "Sequence", let list = object?["normalizers"] as? [Any], list.isEmpty { return }
        throw KnowTuneError.unsupported(what: "tokenizer.json normalizer \(type)", supported: "none")
    }

    private static func preTokenizer(from value: Any?) throws -> GPT2PreTokenizer {
        let supported =
            "ByteLevel(add_prefix_space: false, use_regex: true), optionally after Digits(individual_digits: true)"
        guard let object = value as? [String: Any], let type = object["type"] as? String else {
            throw KnowTuneError.unsupported(what: "tokenizer.json without a pre_tokenizer", supported: supported)
        }
        func isGPT2ByteLevel(_ object: [String: Any]) -> Bool {
            // HF's defaults when a key is absent: add_prefix_space true, use_regex true.
            object["type"] as? String == "ByteLevel" && (object["add_prefix_space"] as? Bool) == false
                && ((object["use_regex"] as? Bool) ?? true)
        }
        if isGPT2ByteLevel(object) { return GPT2PreTokenizer() }
        if type == "Sequence", let steps = object["pretokenizers"] as? [[String: Any]], steps.count == 2,
            steps[0]["type"] as? String == "Digits", (steps[0]["individual_digits"] as? Bool) == true,
            isGPT2ByteLevel(steps[1])
        {
            return GPT2PreTokenizer(splitsDigitsIndividually: true)
        }
        let description = (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]))
            .map { String(decoding: $0, as: UTF8.self) } ?? type
        throw KnowTuneError.unsupported(what: "tokenizer.json pre_tokenizer \(description)", supported: supported)
    }
}

// MARK: - Added-token matching

/// Finds added tokens in text the way HF's `AddedVocabulary::find_matches` does with its leftmost-longest
/// Aho-Corasick automaton, including `single_word`, `lstrip` and `rstrip`.
struct AddedTokenMatcher {
    private struct Candidate {
        let bytes: [UInt8]
        let token: ByteLevelBPETokenizer.AddedToken
    }

    /// Candidates by first byte, longest first, so the first that matches at a position is the longest.
    private let candidatesByFirstByte: [[Candidate]]

    var isEmpty: Bool { candidatesByFirstByte.allSatisfy(\.isEmpty) }

    init(tokens: [ByteLevelBPETokenizer.AddedToken]) {
        var lists = [[Candidate]](repeating: [], count: 256)
        var seen = Set<String>()
        for token in tokens where !token.content.isEmpty && seen.insert(token.content).inserted {
            let bytes = Array(token.content.utf8)
            lists[Int(bytes[0])].append(Candidate(bytes: bytes, token: token))
        }
        candidatesByFirstByte = lists.map { list in
            // Stable for equal lengths, so the earlier token wins a tie of identical text (already deduplicated).
            list.enumerated().sorted { first, second in
                first.element.bytes.count != second.element.bytes.count
                    ? first.element.bytes.count > second.element.bytes.count : first.offset < second.offset
            }.map(\.element)
        }
    }

    func forEachSegment(
        in bytes: UnsafeBufferPointer<UInt8>, range: Range<Int>, _ body: (ByteLevelBPETokenizer.Segment) -> Void
    ) {
        var textStart = range.lowerBound
        var position = range.lowerBound
        while position < range.upperBound {
            guard let candidate = longestMatch(in: bytes, at: position, end: range.upperBound) else {
                position += 1
                continue
            }
            var start = position
            var stop = position + candidate.bytes.count
            let token = candidate.token
            if token.matchesSingleWordOnly {
                let touchesWordBefore =
                    start > range.lowerBound
                    && Self.isWordCharacter(Self.scalar(endingAt: start, in: bytes, lowerBound: range.lowerBound))
                let touchesWordAfter =
                    stop < range.upperBound
                    && Self.isWordCharacter(Self.scalar(startingAt: stop, in: bytes, upperBound: range.upperBound))
                if touchesWordBefore || touchesWordAfter {
                    // The automaton resumes after a discarded match, so nothing inside it can match either.
                    position = stop
                    continue
                }
            }
            if token.stripsWhitespaceBefore {
                var newStart = start
                while newStart > textStart,
                    let scalar = Self.scalar(endingAt: newStart, in: bytes, lowerBound: textStart),
                    scalar.properties.isWhitespace
                {
                    newStart -= UTF8.width(scalar)
                }
                start = newStart
            }
            if token.stripsWhitespaceAfter {
                while stop < range.upperBound,
                    let scalar = Self.scalar(startingAt: stop, in: bytes, upperBound: range.upperBound),
                    scalar.properties.isWhitespace
                {
                    stop += UTF8.width(scalar)
                }
            }
            if textStart < start { body(.text(textStart..<start)) }
            body(.addedToken(token.id))
            textStart = stop
            position = stop
        }
        if textStart < range.upperBound { body(.text(textStart..<range.upperBound)) }
    }

    private func longestMatch(in bytes: UnsafeBufferPointer<UInt8>, at position: Int, end: Int) -> Candidate? {
        for candidate in candidatesByFirstByte[Int(bytes[position])] where position + candidate.bytes.count <= end {
            var matches = true
            for offset in 1..<candidate.bytes.count where bytes[position + offset] != candidate.bytes[offset] {
                matches = false
                break
            }
            if matches { return candidate }
        }
        return nil
    }

    /// HF tests word boundaries with the Rust regex `\w`: Alphabetic, marks, decimal digits, connector
    /// punctuation and join controls.
    private static func isWordCharacter(_ scalar: Unicode.Scalar?) -> Bool {
        guard let scalar else { return false }
        let properties = scalar.properties
        if properties.isAlphabetic || properties.isJoinControl { return true }
        switch properties.generalCategory {
        case .nonspacingMark, .spacingMark, .enclosingMark, .decimalNumber, .connectorPunctuation: return true
        default: return false
        }
    }

    /// The scalar whose UTF-8 ends just before `end`.
    private static func scalar(
        endingAt end: Int, in bytes: UnsafeBufferPointer<UInt8>, lowerBound: Int
    ) -> Unicode.Scalar? {
        guard end > lowerBound else { return nil }
        var start = end - 1
        while start > lowerBound, bytes[start] & 0xC0 == 0x80 { start -= 1 }
        return scalar(startingAt: start, in: bytes, upperBound: end)
    }

    private static func scalar(
        startingAt start: Int, in bytes: UnsafeBufferPointer<UInt8>, upperBound: Int
    ) -> Unicode.Scalar? {
        guard start < upperBound else { return nil }
        var iterator = UnsafeBufferPointer(rebasing: bytes[start..<upperBound]).makeIterator()
        var decoder = UTF8()
        if case let .scalarValue(scalar) = decoder.decode(&iterator) { return scalar }
        return nil
    }
}
