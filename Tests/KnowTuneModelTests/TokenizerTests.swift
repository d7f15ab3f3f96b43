// Tests the byte-level BPE tokenizer: the byte table, the GPT-2 split, merge order, added tokens, the loaders, and
// SmolLM2's ids against HF's (Tests/Fixtures/golden/tokenizer_cases.json).
import Foundation
import XCTest

@testable import KnowTuneModel
import KnowTuneTensor
import KnowTuneTestSupport

/// SmolLM2-135M-Instruct's tokenizer, read from the GGUF that launch/fetch-model.sh fetches (49152 tokens,
/// 48900 merges, eos 2, bos 1, pad 2). A missing model fails the test; it never skips.
func loadSmolLM2Tokenizer() throws -> ByteLevelBPETokenizer {
    let file = try GGUFFile(path: try TestPaths.require(TestPaths.smolLM2))
    return try ByteLevelBPETokenizer(gguf: file.metadata)
}

private func goldenTokenizerCasesURL() -> URL {
    TestPaths.golden.appendingPathComponent("tokenizer_cases.json")
}

private struct GoldenTokenizerCase: Decodable {
    let name: String
    let text: String
    let ids: [Int32]
    let tokens: [String]
    let decoded: String
}

private struct GoldenTokenizerFile: Decodable {
    let cases: [GoldenTokenizerCase]
}

final class TokenizerTests: XCTestCase {
    // MARK: - Byte table

    func testByteUnicodeMapIsABijectionWithGPT2Characters() throws {
        let scalars = (0...255).map { ByteUnicodeMap.scalar(for: UInt8($0)) }
        XCTAssertEqual(Set(scalars).count, 256)
        for byte in 0...255 {
            XCTAssertEqual(ByteUnicodeMap.byte(for: scalars[byte]), UInt8(byte))
        }
        XCTAssertEqual(ByteUnicodeMap.scalar(for: 0x20), "\u{120}")  // Ġ
        XCTAssertEqual(ByteUnicodeMap.scalar(for: 0x0A), "\u{10A}")  // Ċ
        XCTAssertEqual(ByteUnicodeMap.scalar(for: 0x09), "\u{109}")  // ĉ
        XCTAssertEqual(ByteUnicodeMap.scalar(for: 0x0D), "\u{10D}")  // č
        XCTAssertEqual(ByteUnicodeMap.scalar(for: 0x00), "\u{100}")
        XCTAssertEqual(ByteUnicodeMap.scalar(for: 0xAD), "\u{143}")  // soft hyphen, the last moved byte
        XCTAssertEqual(ByteUnicodeMap.scalar(for: UInt8(ascii: "A")), "A")
        XCTAssertEqual(ByteUnicodeMap.scalar(for: 0xE9), "\u{E9}")
        XCTAssertNil(ByteUnicodeMap.byte(for: "\u{144}"))
        XCTAssertNil(ByteUnicodeMap.byte(for: " "))

        let allBytes = (0...255).map { UInt8($0) }
        XCTAssertEqual(ByteUnicodeMap.decode(ByteUnicodeMap.encode(allBytes)), allBytes)
        XCTAssertEqual(ByteUnicodeMap.encode(Array(" é\n".utf8)), "ĠÃ©Ċ")
        XCTAssertNil(ByteUnicodeMap.decode("a b"))
    }

    // MARK: - Pre-tokenizer

    /// Expected pieces come from Python's `regex` module running the GPT-2 pattern.
    func testPreTokenizerSplitsLikeTheGPT2Regex() {
        let splitter = GPT2PreTokenizer()
        let cases: [(String, [String])] = [
            ("  hello   world\n\n", [" ", " hello", "  ", " world", "\n\n"]),
            ("it's 12345", ["it", "'s", " 12345"]),
            ("a\tb\r\n", ["a", "\t", "b", "\r\n"]),
            ("SHE'S 'tis x'll", ["SHE", "'", "S", " '", "tis", " x", "'ll"]),
            ("Hi  ", ["Hi", "  "]),
            (" \u{3000}word", [" ", "\u{3000}", "word"]),
            ("a\u{A0}b", ["a", "\u{A0}", "b"]),
            ("x?!'s", ["x", "?!'", "s"]),
            ("naïve café 中文 😀👍🏽", ["naïve", " café", " 中文", " 😀👍🏽"]),
            // U+001C is not Unicode White_Space, so it is "other" (Python's str.isspace disagrees).
            ("a\u{1C}b", ["a", "\u{1C}", "b"]),
            ("\n  \n", ["\n  \n"]),
            ("    return", ["   ", " return"]),
            ("def f(x):\n    return", ["def", " f", "(", "x", "):", "\n   ", " return"]),
            ("", []),
            (" ", [" "]),
            ("'", ["'"]),
            ("x\u{85}y", ["x", "\u{85}", "y"]),
        ]
        for (text, expected) in cases {
            XCTAssertEqual(splitter.split(text), expected, "splitting \(text.debugDescription)")
        }
    }

    func testPreTokenizerCanIsolateDigitsFirst() {
        let splitter = GPT2PreTokenizer(splitsDigitsIndividually: true)
        // Digits(individual_digits) runs first, so "  " before "1" ends a stretch and stays whole.
        XCTAssertEqual(splitter.split("a  12 b3"), ["a", "  ", "1", "2", " b", "3"])
        XCTAssertEqual(splitter.split("x٣"), ["x", "٣"])
    }

    func testPiecesAlwaysConcatenateToTheInput() {
        var generator = SplitMix64(seed: 7)
        let alphabet: [Character] = [
            "a", "Z", " ", " ", "\n", "\t", "\r", "'", "s", "1", "9", ".", "!", "é", "中", "😀", "\u{3000}", "\u{200D}",
            "\u{301}", "l", "\u{85}",
        ]
        let splitter = GPT2PreTokenizer()
        for _ in 0..<500 {
            let length = Int(generator.next() % 24)
            let text = String((0..<length).map { _ in alphabet[Int(generator.next() % UInt64(alphabet.count))] })
            XCTAssertEqual(splitter.split(text).joined(), text)
        }
    }

    // MARK: - Hand-made vocabulary

    /// All 256 byte characters (ids 0…255), then merged tokens, then two special tokens.
    private func tinyTokenizer(merges: [String], extraTokens: [String] = []) throws -> ByteLevelBPETokenizer {
        var tokens = (0...255).map { String(Character(ByteUnicodeMap.scalar(for: UInt8($0)))) }
        var types = [Int](repeating: 6, count: 256)
        for merge in merges {
            let merged = merge.replacingOccurrences(of: " ", with: "")
            if !tokens.contains(merged) {
                tokens.append(merged)
                types.append(1)
            }
        }
        for token in extraTokens {
            tokens.append(token)
            types.append(1)
        }
        tokens += ["<|end|>", "<|end|>x", "<user>"]
        types += [3, 3, 4]
        return try ByteLevelBPETokenizer(
            tokens: tokens, merges: merges, tokenTypes: types, eosTokenId: Int32(tokens.count - 3), bosTokenId: nil,
            padTokenId: nil)
    }

    private func texts(_ tokenizer: ByteLevelBPETokenizer, _ ids: [Int32]) -> [String] {
        ids.map { tokenizer.tokenText($0) ?? "?" }
    }

    func testMergesApplyLowestRankFirst() throws {
        // "b c" outranks "a b", so "abc" becomes a + bc, then abc.
        let tokenizer = try tinyTokenizer(merges: ["b c", "a b", "a bc"])
        XCTAssertEqual(texts(tokenizer, tokenizer.encode("abc")), ["abc"])
        XCTAssertEqual(texts(tokenizer, tokenizer.encode("abd")), ["ab", "d"])
        // With "a b" first, "ab" + "c" has no merge and stays split.
        let other = try tinyTokenizer(merges: ["a b", "b c", "a bc"])
        XCTAssertEqual(texts(other, other.encode("abc")), ["ab", "c"])
        // Equal ranks merge leftmost first: "aaa" → "aa" + "a".
        let repeated = try tinyTokenizer(merges: ["a a"])
        XCTAssertEqual(texts(repeated, repeated.encode("aaa")), ["aa", "a"])
        XCTAssertEqual(texts(repeated, repeated.encode("aaaa")), ["aa", "aa"])
        // A space belongs to the next word: " ab" is Ġ + ab unless Ġ merges.
        let spaced = try tinyTokenizer(merges: ["a b", "Ġ ab"])
        XCTAssertEqual(texts(spaced, spaced.encode("ab ab")), ["ab", "Ġab"])
    }

    func testHeapAndScanMergesAgree() throws {
        let tokenizer = try tinyTokenizer(
            merges: ["a b", "b a", "ab a", "a a", "ba b", "aa b", "ab ab", "b b", "aab b"])
        var generator = SplitMix64(seed: 11)
        for _ in 0..<2000 {
            let length = 2 + Int(generator.next() % 40)
            let word = (0..<length).map { _ in generator.next() % 3 == 0 ? UInt8(ascii: "b") : UInt8(ascii: "a") }
            let start = word.map { tokenizer.tokenId(forText: String(UnicodeScalar($0))) ?? -1 }
            var scanned = start
            var heaped = start
            tokenizer.mergeByScanning(&scanned)
            tokenizer.mergeWithHeap(&heaped)
            XCTAssertEqual(scanned, heaped, "word \(String(decoding: word, as: UTF8.self))")
        }
    }

    func testUnknownBytesAreDroppedLikeHF() throws {
        // Without the character for "x" (and no unknown token), HF drops the byte.
        var tokens = (0...255).map { String(Character(ByteUnicodeMap.scalar(for: UInt8($0)))) }
        tokens[Int(UInt8(ascii: "x"))] = "<unused>"
        tokens.append("ab")
        let tokenizer = try ByteLevelBPETokenizer(
            tokens: tokens, merges: ["a b"], tokenTypes: nil, eosTokenId: 4, bosTokenId: nil, padTokenId: nil)
        // The dropped byte no longer separates a and b inside the piece "axb", so they merge.
        XCTAssertEqual(texts(tokenizer, tokenizer.encode("axb x")), ["ab", "Ġ"])
        XCTAssertEqual(tokenizer.decode(tokenizer.encode("axb x")), "ab ")

        let withUnknown = try ByteLevelBPETokenizer(
            vocabulary: Dictionary(uniqueKeysWithValues: tokens.enumerated().map { ($1, Int32($0)) }),
            vocabularySize: tokens.count, merges: [("a", "b")], addedTokens: [], preTokenizer: GPT2PreTokenizer(),
            unknownByteHandling: .init(usesByteFallback: false, unknownTokenId: 4, fusesUnknownBytes: true),
            ignoresMerges: false, eosTokenId: 4, bosTokenId: nil, padTokenId: nil, source: "test")
        XCTAssertEqual(withUnknown.encode("axxbxab"), [97, 4, 98, 4, 256])
    }

    func testSpecialTokensAreCutOutBeforeSplittingLongestFirst() throws {
        let tokenizer = try tinyTokenizer(merges: ["a b"])
        let end = try XCTUnwrap(tokenizer.tokenId(forText: "<|end|>"))
        let endX = try XCTUnwrap(tokenizer.tokenId(forText: "<|end|>x"))
        let user = try XCTUnwrap(tokenizer.tokenId(forText: "<user>"))
        XCTAssertEqual(tokenizer.eosTokenId, end)
        XCTAssertEqual(tokenizer.encode("<|end|>"), [end])
        XCTAssertEqual(tokenizer.encode("<|end|>x<|end|>"), [endX, end])
        // The text around a special token is split on its own, so "ab " keeps its trailing space whole.
        XCTAssertEqual(tokenizer.encode("ab <user>ab"), [256, 32, user, 256])  // 32 is Ġ, the byte of " "
        // A partial special token is ordinary text.
        XCTAssertEqual(texts(tokenizer, tokenizer.encode("<|end|")), ["<", "|", "e", "n", "d", "|"])
        XCTAssertEqual(tokenizer.decode(tokenizer.encode("x<|end|>ab <user>\n")), "x<|end|>ab <user>\n")
    }

    func testDecodeRoundTripsBytesAndSkipsUnknownIds() throws {
        let tokenizer = try tinyTokenizer(merges: ["a b", "Ġ ab"])
        for text in ["ab ab", "é 中 😀 \r\n\t", "  x  ", "<|end|>"] {
            XCTAssertEqual(tokenizer.decode(tokenizer.encode(text)), text)
        }
        XCTAssertEqual(tokenizer.decode([97, -1, 1_000_000, 98]), "ab")
        // Half of a two-byte character decodes to U+FFFD, as from_utf8_lossy does.
        XCTAssertEqual(tokenizer.decode([0xC3]), "\u{FFFD}")
    }

    // MARK: - Loaders

    func testGGUFMetadataLoaderChecksTheModel() throws {
        let tokens = (0...255).map { GGUFValue.string(String(Character(ByteUnicodeMap.scalar(for: UInt8($0))))) }
        var metadata: [String: GGUFValue] = [
            "tokenizer.ggml.model": .string("gpt2"),
            "tokenizer.ggml.tokens": .array(tokens + [.string("ab"), .string("<s>")]),
            "tokenizer.ggml.merges": .array([.string("a b")]),
            "tokenizer.ggml.token_type": .array([GGUFValue](repeating: .int32(1), count: 257) + [.int32(3)]),
            "tokenizer.ggml.eos_token_id": .uint32(257),
            "tokenizer.ggml.padding_token_id": .uint32(257),
        ]
        let tokenizer = try ByteLevelBPETokenizer(gguf: metadata)
        XCTAssertEqual(tokenizer.encode("ab<s>"), [256, 257])
        XCTAssertEqual(tokenizer.vocabularySize, 258)
        XCTAssertEqual(tokenizer.padTokenId, 257)
        XCTAssertNil(tokenizer.bosTokenId)

        metadata["tokenizer.ggml.model"] = .string("llama")
        XCTAssertThrowsError(try ByteLevelBPETokenizer(gguf: metadata)) { error in
            guard case KnowTuneError.unsupported = error else { return XCTFail("unexpected error \(error)") }
        }
        metadata["tokenizer.ggml.model"] = .string("gpt2")
        metadata["tokenizer.ggml.merges"] = .array([.string("a q")])
        XCTAssertThrowsError(try ByteLevelBPETokenizer(gguf: metadata))
    }

    private func tinyTokenizerJSON(preTokenizer: String, merges: String) -> Data {
        var vocabulary: [String] = []
        for byte in 0...255 {
            // Only `"` and `\` among the table characters need escaping in JSON.
            let character = ByteUnicodeMap.scalar(for: UInt8(byte))
            let escaped = character == "\"" || character == "\\" ? "\\\(character)" : "\(character)"
            vocabulary.append("\"\(escaped)\": \(byte)")
        }
        vocabulary += ["\"ab\": 256", "\"Ġab\": 257", "\"<mask>\": 258"]
        return Data(
            """
            {"version": "1.0",
             "added_tokens": [
               {"id": 258, "content": "<mask>", "single_word": false, "lstrip": true, "rstrip": false,
                "normalized": false, "special": true},
               {"id": 259, "content": "<eos>", "single_word": false, "lstrip": false, "rstrip": true,
                "normalized": false, "special": true}],
             "normalizer": null,
             "pre_tokenizer": \(preTokenizer),
             "decoder": {"type": "ByteLevel", "add_prefix_space": true, "trim_offsets": true, "use_regex": true},
             "model": {"type": "BPE", "dropout": null, "unk_token": null, "continuing_subword_prefix": "",
               "end_of_word_suffix": "", "fuse_unk": false, "byte_fallback": false,
               "vocab": {\(vocabulary.joined(separator: ", "))},
               "merges": \(merges)}}
            """.utf8)
    }

    func testTokenizerJSONLoaderReadsBothMergeFormsAndStripFlags() throws {
        let byteLevel = #"{"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": true}"#
        for merges in [#"["a b", "Ġ ab"]"#, #"[["a", "b"], ["Ġ", "ab"]]"#] {
            let tokenizer = try ByteLevelBPETokenizer(
                tokenizerJSON: tinyTokenizerJSON(preTokenizer: byteLevel, merges: merges), eosTokenId: 259)
            XCTAssertEqual(tokenizer.encode("ab ab"), [256, 257])
            // lstrip: the spaces before <mask> belong to it; rstrip: the spaces after <eos> belong to it.
            XCTAssertEqual(tokenizer.encode("ab  <mask>ab<eos>  ab"), [256, 258, 256, 259, 256])
            XCTAssertEqual(tokenizer.vocabularySize, 260)
            XCTAssertEqual(tokenizer.tokenText(259), "<eos>")
        }
        let config = Data(#"{"eos_token": {"content": "<eos>"}, "pad_token": "<mask>", "bos_token": null}"#.utf8)
        let configured = try ByteLevelBPETokenizer(
            tokenizerJSON: tinyTokenizerJSON(preTokenizer: byteLevel, merges: "[]"), tokenizerConfigJSON: config)
        XCTAssertEqual(configured.eosTokenId, 259)
        XCTAssertEqual(configured.padTokenId, 258)
        XCTAssertNil(configured.bosTokenId)

        let digits =
            #"{"type": "Sequence", "pretokenizers": [{"type": "Digits", "individual_digits": true}, \#(byteLevel)]}"#
        let digitTokenizer = try ByteLevelBPETokenizer(
            tokenizerJSON: tinyTokenizerJSON(preTokenizer: digits, merges: "[]"), eosTokenId: 259)
        XCTAssertTrue(digitTokenizer.preTokenizer.splitsDigitsIndividually)
    }

    func testTokenizerJSONLoaderRejectsOtherPipelines() throws {
        let metaspace = #"{"type": "Metaspace", "replacement": "▁", "prepend_scheme": "always", "split": false}"#
        XCTAssertThrowsError(
            try ByteLevelBPETokenizer(
                tokenizerJSON: tinyTokenizerJSON(preTokenizer: metaspace, merges: "[]"), eosTokenId: 0)
        ) { error in
            guard case KnowTuneError.unsupported = error else { return XCTFail("unexpected error \(error)") }
        }
        let prefixed = #"{"type": "ByteLevel", "add_prefix_space": true, "trim_offsets": true, "use_regex": true}"#
        XCTAssertThrowsError(
            try ByteLevelBPETokenizer(
                tokenizerJSON: tinyTokenizerJSON(preTokenizer: prefixed, merges: "[]"), eosTokenId: 0))
        let wordPiece = Data(#"{"model": {"type": "WordPiece", "vocab": {}}, "pre_tokenizer": null}"#.utf8)
        XCTAssertThrowsError(try ByteLevelBPETokenizer(tokenizerJSON: wordPiece, eosTokenId: 0)) { error in
            guard case KnowTuneError.unsupported = error else { return XCTFail("unexpected error \(error)") }
        }
        let byteLevel = #"{"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": true}"#
        XCTAssertThrowsError(
            try ByteLevelBPETokenizer(tokenizerJSON: tinyTokenizerJSON(preTokenizer: byteLevel, merges: "[]"))
        ) { error in
            guard case KnowTuneError.invalidConfiguration = error else { return XCTFail("unexpected error \(error)") }
        }
    }

    // MARK: - SmolLM2 against HF

    func testSmolLM2MatchesHuggingFaceOnEveryGoldenCase() throws {
        let tokenizer = try loadSmolLM2Tokenizer()
        let data = try Data(contentsOf: goldenTokenizerCasesURL())
        let golden = try JSONDecoder().decode(GoldenTokenizerFile.self, from: data)
        XCTAssertEqual(golden.cases.count, 25)
        XCTAssertEqual(tokenizer.vocabularySize, 49152)
        XCTAssertEqual(tokenizer.eosTokenId, 2)
        for testCase in golden.cases {
            let ids = tokenizer.encode(testCase.text)
            XCTAssertEqual(ids, testCase.ids, "case \(testCase.name)")
            XCTAssertEqual(ids.map { tokenizer.tokenText($0) ?? "?" }, testCase.tokens, "case \(testCase.name)")
            XCTAssertEqual(tokenizer.decode(testCase.ids), testCase.decoded, "case \(testCase.name)")
            XCTAssertEqual(tokenizer.decode(ids), testCase.text, "case \(testCase.name)")
        }
    }

    func testSmolLM2SpecialTokensAreTheSeventeenControlTokens() throws {
        let tokenizer = try loadSmolLM2Tokenizer()
        XCTAssertEqual(tokenizer.addedTokens.map(\.id), Array(0...16))
        XCTAssertEqual(tokenizer.encode("<|im_start|>assistant\n"), [1, 520, 9531, 198])
        XCTAssertEqual(tokenizer.encode("<|endoftext|><empty_output>"), [0, 16])
    }

    func testSmolLM2HeapAndScanMergesAgreeOnRandomWords() throws {
        let tokenizer = try loadSmolLM2Tokenizer()
        var generator = SplitMix64(seed: 3)
        let letters = Array("etaoinshrdlucmfwypvbgkqjxz ".utf8)
        for _ in 0..<3000 {
            let length = 2 + Int(generator.next() % 30)
            let word = (0..<length).map { _ in letters[Int(generator.next() % UInt64(letters.count))] }
            let start = word.map { tokenizer.tokenId(forText: String(ByteUnicodeMap.scalar(for: $0))) ?? -1 }
            var scanned = start
            var heaped = start
            tokenizer.mergeByScanning(&scanned)
            tokenizer.mergeWithHeap(&heaped)
            XCTAssertEqual(scanned, heaped)
        }
    }

    func testSmolLM2EncodesAThousandWordsQuickly() throws {
        let tokenizer = try loadSmolLM2Tokenizer()
        let data = try Data(contentsOf: goldenTokenizerCasesURL())
        let golden = try JSONDecoder().decode(GoldenTokenizerFile.self, from: data)
        var words: [Substring] = []
        let corpus = golden.cases.map(\.text).joined(separator: " ")
        while words.count < 1000 { words += corpus.split(separator: " ") }
        let text = words.prefix(1000).joined(separator: " ")

        let coldStart = Date()
        let ids = tokenizer.encode(text)
        let coldSeconds = Date().timeIntervalSince(coldStart)
        let warmStart = Date()
        let repeatCount = 20
        for _ in 0..<repeatCount { XCTAssertEqual(tokenizer.encode(text).count, ids.count) }
        let warmSeconds = Date().timeIntervalSince(warmStart) / Double(repeatCount)
        print(String(format: "encode 1000 words (%d tokens): first %.2f ms, cached %.2f ms",
                     ids.count, coldSeconds * 1000, warmSeconds * 1000))
        XCTAssertEqual(tokenizer.decode(ids), text)
        // Generous bound so a debug build on a busy machine passes; release builds take about a millisecond.
        XCTAssertLessThan(warmSeconds, 0.1)

        // A 50,000-letter word takes the heap path; quadratic merging would take seconds.
        let longWord = String(repeating: "abcdefghij", count: 5000)
        let longStart = Date()
        let longIds = tokenizer.encode(longWord)
        XCTAssertLessThan(Date().timeIntervalSince(longStart), 2)
        XCTAssertEqual(tokenizer.decode(longIds), longWord)
    }
}

/// A tiny seeded generator (SplitMix64) so the randomised tests are repeatable.
private struct SplitMix64 {
    private var state: UInt64

    init(seed: UInt64) { state = seed }

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var mixed = state
        mixed = (mixed ^ (mixed >> 30)) &* 0xBF58_476D_1CE4_E5B9
        mixed = (mixed ^ (mixed >> 27)) &* 0x94D0_49BB_1331_11EB
        return mixed ^ (mixed >> 31)
    }
}
