// Implements SentencePiece-style BPE (LLaMA, Llama-2, Mistral: GGUF `tokenizer.ggml.model == "llama"`, or an HF
// tokenizer.json with a BPE model over "▁"-for-space pieces) with Hugging Face's ids: added/special tokens cut out
// first, the "▁" dummy prefix and space replacement, merges by rank (tokenizer.json) or by piece score (GGUF, as
// llama.cpp's llm_tokenizer_spm), `<0xAB>` byte fallback, and HF's decoder. Does not add BOS/EOS, read
// `tokenizer.model` protobufs, or implement the SentencePiece unigram model, NFKC normalisation or BPE dropout.
import Foundation
import KnowTuneTensor

/// A SentencePiece BPE tokenizer whose `encode` equals HF `tokenizer(text, add_special_tokens=False).input_ids`.
///
/// Encoding follows HF tokenizers step by step:
/// 1. Added tokens that are not normalised (`<unk>`, `<s>`, `</s>`) are found in the raw text and map to their ids.
/// 2. Each remaining stretch is normalised (legacy layout: "▁" prepended, spaces → "▁"), and normalised added
///    tokens are found in it by their own normalised text.
/// 3. Each remaining piece gets the Metaspace treatment (newer layout: spaces → "▁", "▁" prepended as the
///    `DummyPrefix` rule says) and is one BPE word: Llama's converters never split on spaces.
/// 4. The word's characters become vocabulary ids (a character outside the vocabulary becomes the `<0xAB>` tokens
///    of its UTF-8 bytes), and adjacent ids are merged best merge first, leftmost on ties, until none is left.
public final class SentencePieceBPETokenizer: Tokenizer, @unchecked Sendable {
    public typealias AddedToken = ByteLevelBPETokenizer.AddedToken

    /// Which stretches of text get the "▁" dummy prefix.
    public enum DummyPrefix: Sendable, Equatable {
        /// Every stretch between added tokens, even one that starts with a space (" x" → "▁▁x"): HF's legacy
        /// normalizer `Prepend("▁")` (transformers 4's Llama-2 tokenizer.json), and SentencePiece itself.
        case everyStretch
        /// Metaspace `prepend_scheme: "always"`: every stretch that does not already start with a space.
        case everyStretchNotStartingWithSpace
        /// Metaspace `prepend_scheme: "first"`: only a stretch at the start of the text not starting with a space.
        case firstStretchNotStartingWithSpace
        /// No prefix (`prepend_scheme: "never"`, GGUF `add_space_prefix = false`).
        case none
    }

    /// How the merge order is given.
    enum MergeOrder {
        /// tokenizer.json `merges`: pairs in rank order, first merged first.
        case ranks([(String, String)])
        /// GGUF scores, one per token: any two adjacent pieces whose concatenation is a `mergeable` vocabulary piece
        /// merge, highest score of the result first (llama.cpp `llm_tokenizer_spm`, SentencePiece `bpe_model.cc`).
        case scores([Float], mergeable: [Bool])
    }

    public let eosTokenId: Int32
    public let bosTokenId: Int32?
    public let padTokenId: Int32?
    /// The id for a character with neither a vocabulary entry nor byte tokens, or nil to drop it (HF `unk_token`).
    public let unknownTokenId: Int32?
    /// The tokens matched in the input before BPE, in the order they were given.
    public let addedTokens: [AddedToken]
    /// The prefix rule; `.everyStretch` is the legacy normalizer, which runs before normalised added tokens are
    /// matched, the others are the Metaspace pre-tokenizer, which runs after.
    public let dummyPrefix: DummyPrefix
    /// Whether decoding drops one leading space, the dummy prefix's (HF decoder `Strip(" ", 1, 0)`).
    public let decodeStripsLeadingSpace: Bool

    public var vocabularySize: Int { textOfId.count }

    private let textOfId: [String?]
    /// `textOfId` with normalised added tokens in their normalised form, which is what HF decodes them to.
    private let decodedTextOfId: [String?]
    private let idOfText: [String: Int32]
    /// Single-character vocabulary entries by Unicode scalar value: the starting symbols of BPE.
    private let idOfScalar: [UInt32: Int32]
    /// The id of each byte's `<0xAB>` token, or -1.
    private let fallbackIdOfByte: [Int32]
    /// Merge by pair: key `left << 32 | right`, value `rank << 32 | mergedId`. Equal ranks are ties (GGUF pieces with
    /// equal scores), broken by position.
    private let mergeOfPair: [UInt64: UInt64]
    private let specialIds: Set<Int32>
    private let rawAddedTokens: AddedTokenMatcher
    private let normalizedAddedTokens: AddedTokenMatcher

    private static let metaspace = Array("\u{2581}".utf8)

    // MARK: - Initialisers

    /// Builds the tokenizer from its parts; the loaders end here.
    ///
    /// - Parameters:
    ///   - tokens: vocabulary text by id, nil for gaps (tokenizer.json vocabularies may have them).
    ///   - mergeOrder: with `.ranks`, both halves and their concatenation must be in the vocabulary, as HF requires.
    ///   - source: names the origin in error messages.
    init(
        tokens: [String?], mergeOrder: MergeOrder, addedTokens: [AddedToken], dummyPrefix: DummyPrefix,
        decodeStripsLeadingSpace: Bool, unknownTokenId: Int32?, eosTokenId: Int32, bosTokenId: Int32?,
        padTokenId: Int32?, source: String
    ) throws {
        var idOfText: [String: Int32] = [:]
        idOfText.reserveCapacity(tokens.count)
        var idOfScalar: [UInt32: Int32] = [:]
        for (index, text) in tokens.enumerated() {
            guard let text else { continue }
            // A later duplicate wins, as in transformers' `{word: i for i, word in enumerate(tokens)}`.
            idOfText[text] = Int32(index)
            let scalars = text.unicodeScalars
            if scalars.count == 1, let scalar = scalars.first { idOfScalar[scalar.value] = Int32(index) }
        }

        var mergeOfPair: [UInt64: UInt64] = [:]
        switch mergeOrder {
        case let .ranks(pairs):
            mergeOfPair.reserveCapacity(pairs.count)
            for (rank, (left, right)) in pairs.enumerated() {
                guard let leftId = idOfText[left], let rightId = idOfText[right], let mergedId = idOfText[left + right]
                else {
                    throw KnowTuneError.badFormat(
                        path: source,
                        reason: "merge \(rank) \"\(left) \(right)\" uses or makes a token not in the vocabulary")
                }
                // A repeated pair keeps its later rank, as in HF's merge map.
                mergeOfPair[BPEMerge.pairKey(leftId, rightId)] = UInt64(rank) << 32 | UInt64(UInt32(bitPattern: mergedId))
            }
        case let .scores(scores, mergeable):
            guard scores.count == tokens.count, mergeable.count == tokens.count else {
                throw KnowTuneError.badFormat(path: source, reason: "\(scores.count) scores for \(tokens.count) tokens")
            }
            // Rank = position among the distinct scores, highest first, so that equal scores tie.
            let distinctScores = Set(tokens.indices.filter { mergeable[$0] }.map { scores[$0] }).sorted(by: >)
            let rankOfScore = Dictionary(uniqueKeysWithValues: distinctScores.enumerated().map { ($1, UInt64($0)) })
            for (index, text) in tokens.enumerated() where mergeable[index] {
                guard let text, let rank = rankOfScore[scores[index]], idOfText[text] == Int32(index) else { continue }
                // Every split into two vocabulary pieces is a pair that makes this piece.
                var split = text.unicodeScalars.index(after: text.unicodeScalars.startIndex)
                while split < text.unicodeScalars.endIndex {
                    let left = String(text.unicodeScalars[..<split])
                    let right = String(text.unicodeScalars[split...])
                    if let leftId = idOfText[left], let rightId = idOfText[right] {
                        mergeOfPair[BPEMerge.pairKey(leftId, rightId)] = rank << 32 | UInt64(UInt32(index))
                    }
                    split = text.unicodeScalars.index(after: split)
                }
            }
        }

        var fallbackIdOfByte = [Int32](repeating: -1, count: 256)
        for byte in 0..<256 {
            let hexDigits = String(byte, radix: 16, uppercase: true)
            fallbackIdOfByte[byte] = idOfText["<0x" + (hexDigits.count == 1 ? "0" : "") + hexDigits + ">"] ?? -1
        }

        var textOfId = tokens
        for token in addedTokens {
            guard token.id >= 0 else {
                throw KnowTuneError.badFormat(path: source, reason: "added token \"\(token.content)\" has id \(token.id)")
            }
            // Added tokens may lie past the model's vocabulary (a pad token appended by a fine-tune).
            if Int(token.id) >= textOfId.count {
                textOfId += [String?](repeating: nil, count: Int(token.id) + 1 - textOfId.count)
            }
            textOfId[Int(token.id)] = token.content
            idOfText[token.content] = token.id
        }
        for (name, id) in [("EOS", eosTokenId), ("BOS", bosTokenId), ("pad", padTokenId), ("unknown", unknownTokenId)] {
            if let id, !(0..<textOfId.count).contains(Int(id)) {
                throw KnowTuneError.badFormat(
                    path: source, reason: "\(name) token id \(id) is outside the vocabulary 0..<\(textOfId.count)")
            }
        }

        self.textOfId = textOfId
        self.idOfText = idOfText
        self.idOfScalar = idOfScalar
        self.fallbackIdOfByte = fallbackIdOfByte
        self.mergeOfPair = mergeOfPair
        self.addedTokens = addedTokens
        specialIds = Set(addedTokens.filter(\.isSpecial).map(\.id))
        self.rawAddedTokens = AddedTokenMatcher(tokens: addedTokens.filter { !$0.isNormalized })
        // HF matches a normalised added token by its normalised text, and decodes it to that text too: with the
        // legacy normalizer "</s>" is found only as "▁</s>" (after a space or at the start of a stretch), and
        // decodes with a space before it.
        let normalizedForms = addedTokens.filter(\.isNormalized).map { token in
            guard dummyPrefix == .everyStretch else { return token }
            var normalized = token
            normalized.content = "\u{2581}" + token.content.replacingOccurrences(of: " ", with: "\u{2581}")
            return normalized
        }
        self.normalizedAddedTokens = AddedTokenMatcher(tokens: normalizedForms)
        var decodedTextOfId = textOfId
        for token in normalizedForms { decodedTextOfId[Int(token.id)] = token.content }
        self.decodedTextOfId = decodedTextOfId
        self.dummyPrefix = dummyPrefix
        self.decodeStripsLeadingSpace = decodeStripsLeadingSpace
        self.unknownTokenId = unknownTokenId
        self.eosTokenId = eosTokenId
        self.bosTokenId = bosTokenId
        self.padTokenId = padTokenId
    }

    /// Builds the tokenizer from GGUF metadata with `tokenizer.ggml.model == "llama"`.
    ///
    /// Reads `tokenizer.ggml.tokens`, `.scores`, `.token_type` (1 normal, 2 unknown, 3 control, 4 user-defined,
    /// 5 unused, 6 byte), `.bos_token_id`, `.eos_token_id`, `.unknown_token_id`, `.padding_token_id` and
    /// `.add_space_prefix` (default true). Unknown, control and user-defined tokens are matched whole in the text, as
    /// transformers' GGUF conversion and llama.cpp do. The dummy prefix goes before every stretch between them, as
    /// in transformers' conversion (the legacy Llama normalizer) and SentencePiece.
    public convenience init(gguf metadata: [String: GGUFValue]) throws {
        let source = "GGUF tokenizer metadata"
        func fail(_ reason: String) -> KnowTuneError { .badFormat(path: source, reason: reason) }
        guard let model = metadata["tokenizer.ggml.model"]?.stringValue else {
            throw fail("missing string tokenizer.ggml.model")
        }
        guard model == "llama" else {
            throw KnowTuneError.unsupported(
                what: "GGUF tokenizer model \"\(model)\"",
                supported: "llama (SentencePiece BPE); gpt2 vocabularies need ByteLevelBPETokenizer")
        }
        guard let tokens = metadata["tokenizer.ggml.tokens"]?.stringArray else {
            throw fail("missing string array tokenizer.ggml.tokens")
        }
        guard let scoreValues = metadata["tokenizer.ggml.scores"]?.arrayValue else {
            throw fail("missing array tokenizer.ggml.scores (SentencePiece BPE merges by score)")
        }
        var scores: [Float] = []
        scores.reserveCapacity(scoreValues.count)
        for value in scoreValues {
            guard let score = value.doubleValue else { throw fail("tokenizer.ggml.scores holds a non-number") }
            scores.append(Float(score))
        }
        guard let types = metadata["tokenizer.ggml.token_type"]?.intArray else {
            throw fail("missing integer array tokenizer.ggml.token_type")
        }
        guard types.count == tokens.count else { throw fail("\(types.count) token types for \(tokens.count) tokens") }
        func tokenId(_ key: String) throws -> Int32? {
            guard let value = metadata[key] else { return nil }
            guard let integer = value.intValue, let id = Int32(exactly: integer) else {
                throw fail("\(key) is not a token id")
            }
            return id
        }
        guard let eosTokenId = try tokenId("tokenizer.ggml.eos_token_id") else {
            throw fail("missing tokenizer.ggml.eos_token_id")
        }
        var addsSpacePrefix = true
        if let value = metadata["tokenizer.ggml.add_space_prefix"] {
            guard let flag = value.boolValue else { throw fail("tokenizer.ggml.add_space_prefix is not a bool") }
            addsSpacePrefix = flag
        }
        let addedTokens = types.enumerated().filter { [2, 3, 4].contains($0.element) }.map { index, type in
            AddedToken(content: tokens[index], id: Int32(index), isSpecial: type != 4)
        }
        try self.init(
            // Only normal and user-defined pieces are merge results; SentencePiece never builds control, unknown,
            // unused or byte pieces out of characters.
            tokens: tokens, mergeOrder: .scores(scores, mergeable: types.map { $0 == 1 || $0 == 4 }),
            addedTokens: addedTokens, dummyPrefix: addsSpacePrefix ? .everyStretch : .none,
            decodeStripsLeadingSpace: addsSpacePrefix, unknownTokenId: try tokenId("tokenizer.ggml.unknown_token_id"),
            eosTokenId: eosTokenId, bosTokenId: try tokenId("tokenizer.ggml.bos_token_id"),
            padTokenId: try tokenId("tokenizer.ggml.padding_token_id"), source: source)
    }

    // MARK: - Tokenizer

    public func encode(_ text: String) -> [Int32] {
        var ids: [Int32] = []
        let utf8 = Array(text.utf8)
        ids.reserveCapacity(utf8.count / 3 + 1)
        utf8.withUnsafeBufferPointer { bytes in
            rawAddedTokens.forEachSegment(in: bytes, range: 0..<bytes.count) { segment in
                switch segment {
                case let .addedToken(id): ids.append(id)
                case let .text(range):
                    appendIds(ofStretch: bytes[range], startsText: range.lowerBound == 0, to: &ids)
                }
            }
        }
        return ids
    }

    /// Joins the tokens with "▁" as a space and runs of `<0xAB>` tokens as their bytes, like HF's decoder
    /// `Sequence[Replace("▁", " "), ByteFallback, Fuse, Strip(" ", 1, 0)]`: a run that is not valid UTF-8 gives
    /// one U+FFFD per byte, and one leading space (the dummy prefix's) is dropped. Unknown ids are skipped.
    public func decode(_ ids: [Int32]) -> String {
        var text = ""
        var pendingBytes: [UInt8] = []
        func flushBytes() {
            guard !pendingBytes.isEmpty else { return }
            if let string = String(validating: pendingBytes, as: UTF8.self) {
                text += string
            } else {
                text += String(repeating: "\u{FFFD}", count: pendingBytes.count)
            }
            pendingBytes.removeAll()
        }
        for id in ids {
            guard id >= 0, Int(id) < decodedTextOfId.count, let token = decodedTextOfId[Int(id)] else { continue }
            if let byte = Self.fallbackByte(token) {
                pendingBytes.append(byte)
                continue
            }
            flushBytes()
            text += token.replacingOccurrences(of: "\u{2581}", with: " ")
        }
        flushBytes()
        if decodeStripsLeadingSpace, text.hasPrefix(" ") { text.removeFirst() }
        return text
    }

    public func tokenText(_ id: Int32) -> String? {
        guard id >= 0, Int(id) < textOfId.count else { return nil }
        return textOfId[Int(id)]
    }

    /// The id of a vocabulary entry or added token given its stored text (`"</s>"`, `"▁world"`, `"<0x0A>"`).
    public func tokenId(forText text: String) -> Int32? {
        idOfText[text]
    }

    public func tokenBytes(_ id: Int32) -> [UInt8]? {
        guard id >= 0, Int(id) < decodedTextOfId.count, let token = decodedTextOfId[Int(id)], !specialIds.contains(id) else { return nil }
        if let byte = Self.fallbackByte(token) { return [byte] }
        return Array(token.replacingOccurrences(of: "\u{2581}", with: " ").utf8)
    }

    /// The byte of a `<0xAB>` token, by HF ByteFallback's test (six characters, two hex digits).
    private static func fallbackByte(_ token: String) -> UInt8? {
        let utf8 = token.utf8
        guard utf8.count == 6, token.hasPrefix("<0x"), token.hasSuffix(">") else { return nil }
        return UInt8(token.dropFirst(3).prefix(2), radix: 16)
    }

    // MARK: - Normalisation and pre-tokenisation

    /// Encodes one stretch of text between raw-matched added tokens.
    private func appendIds(ofStretch stretch: Slice<UnsafeBufferPointer<UInt8>>, startsText: Bool, to ids: inout [Int32]) {
        // The legacy normalizer runs on the whole stretch, so its prefix comes before any normalised added token.
        let normalizesFirst = dummyPrefix == .everyStretch
        let normalized = normalizesFirst ? metaspaced(stretch, prefixed: true) : Array(stretch)
        normalized.withUnsafeBufferPointer { bytes in
            normalizedAddedTokens.forEachSegment(in: bytes, range: 0..<bytes.count) { segment in
                switch segment {
                case let .addedToken(id):
                    ids.append(id)
                case let .text(range) where normalizesFirst:
                    appendIds(ofWord: Array(bytes[range]), to: &ids)
                case let .text(range):
                    // HF Metaspace: prefix only what does not start with a space ("first": only at offset 0).
                    let piece = bytes[range]
                    let startsWithSpace = piece.first == UInt8(ascii: " ") || piece.starts(with: Self.metaspace)
                    let prefixed =
                        dummyPrefix == .everyStretchNotStartingWithSpace && !startsWithSpace
                        || dummyPrefix == .firstStretchNotStartingWithSpace && !startsWithSpace && startsText
                            && range.lowerBound == 0
                    appendIds(ofWord: metaspaced(piece, prefixed: prefixed), to: &ids)
                }
            }
        }
    }

    /// `text` with every space replaced by "▁", optionally after a leading "▁".
    private func metaspaced<Bytes: Collection>(_ text: Bytes, prefixed: Bool) -> [UInt8] where Bytes.Element == UInt8 {
        var result: [UInt8] = prefixed ? Self.metaspace : []
        result.reserveCapacity(text.count + 8)
        for byte in text {
            if byte == UInt8(ascii: " ") { result += Self.metaspace } else { result.append(byte) }
        }
        return result
    }

    // MARK: - BPE

    /// The ids of one BPE word (HF `BPE::merge_word` + `Word::merge_all`; llama.cpp's `llm_tokenizer_spm` with scores).
    private func appendIds(ofWord word: [UInt8], to ids: inout [Int32]) {
        var symbols: [Int32] = []
        symbols.reserveCapacity(word.count)
        var previousWasUnknown = false
        // The word came from a Swift String with ASCII spaces swapped for "▁", so it is valid UTF-8.
        for scalar in String(decoding: word, as: UTF8.self).unicodeScalars {
            if let id = idOfScalar[scalar.value] {
                symbols.append(id)
                previousWasUnknown = false
                continue
            }
            let fallback = Array(String(scalar).utf8).map { fallbackIdOfByte[Int($0)] }
            if !fallback.contains(-1) {
                symbols += fallback
                previousWasUnknown = false
                continue
            }
            // HF drops the character when there is no unknown token, and fuses runs of unknowns (Llama's fuse_unk).
            guard let unknownTokenId else { continue }
            if !previousWasUnknown { symbols.append(unknownTokenId) }
            previousWasUnknown = true
        }
        BPEMerge.mergeWithHeap(&symbols, mergeOfPair: mergeOfPair)
        ids += symbols
    }
}

// MARK: - tokenizer.json

extension SentencePieceBPETokenizer: TokenizerJSONReadable {
    /// Builds the tokenizer from the bytes of an HF `tokenizer.json` in one of the two layouts transformers writes
    /// for Llama: normalizer `Sequence[Prepend("▁"), Replace(" ", "▁")]` with no pre-tokenizer (legacy), or no
    /// normalizer with pre-tokenizer `Metaspace(replacement "▁", split false)`; model BPE, decoder
    /// `Sequence[Replace("▁", " "), ByteFallback, Fuse, Strip(" ", 1, 0)]` (the Strip only with a dummy prefix).
    public convenience init(
        tokenizerJSON: Data, tokenizerConfigJSON: Data? = nil, eosTokenId: Int32? = nil, bosTokenId: Int32? = nil,
        padTokenId: Int32? = nil, source: String = "tokenizer.json"
    ) throws {
        let document = try TokenizerJSONDocument(tokenizerJSON: tokenizerJSON, tokenizerConfigJSON: tokenizerConfigJSON, source: source)
        if (document.model["ignore_merges"] as? Bool) == true {
            throw KnowTuneError.unsupported(what: "BPE ignore_merges in a SentencePiece tokenizer", supported: "false")
        }
        let dummyPrefix = try Self.dummyPrefix(
            normalizer: document.root["normalizer"], preTokenizer: document.root["pre_tokenizer"], source: source)
        let decodeStripsLeadingSpace = try Self.decoderStripsLeadingSpace(document.root["decoder"], source: source)
        var tokens = [String?](repeating: nil, count: document.vocabularySize)
        for (text, id) in document.vocabulary { tokens[Int(id)] = text }
        try self.init(
            tokens: tokens, mergeOrder: .ranks(document.merges), addedTokens: document.addedTokens, dummyPrefix: dummyPrefix,
            decodeStripsLeadingSpace: decodeStripsLeadingSpace, unknownTokenId: try document.unknownTokenId(),
            eosTokenId: try document.eosTokenId(given: eosTokenId),
            bosTokenId: try bosTokenId ?? document.configuredId("bos_token"),
            padTokenId: try padTokenId ?? document.configuredId("pad_token"), source: source)
    }

    /// Whether a tokenizer.json is of this kind: a BPE model over "▁" pieces (Metaspace pre-tokenizer, a normalizer
    /// that prepends "▁", or byte fallback), as opposed to byte-level BPE.
    static func isSentencePieceLayout(_ root: [String: Any]) -> Bool {
        let model = root["model"] as? [String: Any]
        let preTokenizerType = (root["pre_tokenizer"] as? [String: Any])?["type"] as? String
        let normalizer = root["normalizer"] as? [String: Any]
        let normalizerSteps = (normalizer?["normalizers"] as? [[String: Any]]) ?? (normalizer.map { [$0] } ?? [])
        return (model?["byte_fallback"] as? Bool) == true || preTokenizerType == "Metaspace"
            || normalizerSteps.contains { $0["type"] as? String == "Prepend" }
    }

    /// The dummy-prefix rule of a tokenizer.json: `.everyStretch` for the legacy normalizer, else the Metaspace's.
    private static func dummyPrefix(normalizer: Any?, preTokenizer: Any?, source: String) throws -> DummyPrefix {
        let supported =
            "normalizer Sequence[Prepend(\"▁\"), Replace(\" \", \"▁\")] without pre_tokenizer, or no normalizer and "
            + "pre_tokenizer Metaspace(replacement \"▁\", split false)"
        func describe(_ value: Any?) -> String {
            guard let value, !(value is NSNull) else { return "null" }
            return (try? JSONSerialization.data(withJSONObject: value, options: [.sortedKeys]))
                .map { String(decoding: $0, as: UTF8.self) } ?? "?"
        }
        let unsupported = KnowTuneError.unsupported(
            what: "tokenizer.json normalizer \(describe(normalizer)) with pre_tokenizer \(describe(preTokenizer)) in "
                + source, supported: supported)
        let hasNormalizer = normalizer != nil && !(normalizer is NSNull)
        let hasPreTokenizer = preTokenizer != nil && !(preTokenizer is NSNull)
        if hasNormalizer, !hasPreTokenizer {
            guard let steps = (normalizer as? [String: Any])?["normalizers"] as? [[String: Any]], steps.count == 2,
                steps[0]["type"] as? String == "Prepend", steps[0]["prepend"] as? String == "\u{2581}",
                steps[1]["type"] as? String == "Replace",
                (steps[1]["pattern"] as? [String: Any])?["String"] as? String == " ",
                steps[1]["content"] as? String == "\u{2581}"
            else { throw unsupported }
            return .everyStretch
        }
        guard !hasNormalizer, let metaspace = preTokenizer as? [String: Any],
            metaspace["type"] as? String == "Metaspace", metaspace["replacement"] as? String == "\u{2581}",
            (metaspace["split"] as? Bool) != true
        else { throw unsupported }
        // Older tokenizers wrote `add_prefix_space` instead of `prepend_scheme`.
        switch (metaspace["prepend_scheme"] as? String) ?? ((metaspace["add_prefix_space"] as? Bool) == false ? "never" : "always") {
        case "always": return .everyStretchNotStartingWithSpace
        case "first": return .firstStretchNotStartingWithSpace
        case "never": return .none
        default: throw unsupported
        }
    }

    /// Checks that the decoder is Llama's, and reports whether it ends with `Strip(" ", 1, 0)`.
    private static func decoderStripsLeadingSpace(_ decoder: Any?, source: String) throws -> Bool {
        let steps = ((decoder as? [String: Any])?["decoders"] as? [[String: Any]]) ?? []
        let types = steps.map { ($0["type"] as? String) ?? "?" }
        let replacesMetaspace = steps.first.map {
            ($0["pattern"] as? [String: Any])?["String"] as? String == "\u{2581}" && $0["content"] as? String == " "
        } ?? false
        let strips = steps.last.map {
            $0["type"] as? String == "Strip" && $0["content"] as? String == " "
                && ($0["start"] as? NSNumber)?.intValue == 1 && ($0["stop"] as? NSNumber)?.intValue == 0
        } ?? false
        guard (decoder as? [String: Any])?["type"] as? String == "Sequence", replacesMetaspace,
            types == ["Replace", "ByteFallback", "Fuse"] || (types == ["Replace", "ByteFallback", "Fuse", "Strip"] && strips)
        else {
            let description = (decoder as? [String: Any]).flatMap {
                try? JSONSerialization.data(withJSONObject: $0, options: [.sortedKeys])
            }.map { String(decoding: $0, as: UTF8.self) } ?? "null"
            throw KnowTuneError.unsupported(
                what: "tokenizer.json decoder \(description) in \(source)",
                supported: "Sequence[Replace(\"▁\", \" \"), ByteFallback, Fuse] optionally followed by Strip(\" \", 1, 0)")
        }
        return strips
    }
}
