// Tests the SentencePiece BPE tokenizer against Hugging Face: ids and decodes of every string in
// Fixtures/sentencepiece/cases.json through the three tokenizer.json layouts transformers writes for Llama, and
// through a GGUF built here from the model's pieces, scores and types (all made by
// Fixtures/sentencepiece/make_fixtures.py from a 1200-piece Llama-style SentencePiece model); plus score-merge
// order, the loaders' choice of tokenizer, and their errors.
import Foundation
import XCTest

@testable import KnowTuneData
@testable import KnowTuneModel
import KnowTuneTensor
import KnowTuneTestSupport

private let fixtureFolder = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
    .appendingPathComponent("Fixtures/sentencepiece")

private struct SentencePieceCase: Decodable {
    let name: String
    let text: String
    /// HF ids by layout folder.
    let ids: [String: [Int32]]
    /// HF decode of those ids by layout folder.
    let decoded: [String: String]
    /// SentencePiece's own ids, for texts without special-token text.
    let sentencepiece: [Int32]?
}

private struct SentencePieceDecodeCase: Decodable {
    let ids: [Int32]
    /// HF decode by layout folder.
    let decoded: [String: String]
}

private struct SentencePieceCaseFile: Decodable {
    let cases: [SentencePieceCase]
    let decodeCases: [SentencePieceDecodeCase]

    enum CodingKeys: String, CodingKey {
        case cases
        case decodeCases = "decode_cases"
    }

    static func load() throws -> SentencePieceCaseFile {
        let data = try Data(contentsOf: fixtureFolder.appendingPathComponent("cases.json"))
        return try JSONDecoder().decode(SentencePieceCaseFile.self, from: data)
    }
}

/// The SentencePiece model's pieces, scores and types as GGUF `tokenizer.*` metadata.
private func ggufTokenizerMetadata() throws -> [(key: String, value: GGUFValue)] {
    struct Vocabulary: Decodable {
        let tokens: [String]
        let scores: [Float]
        let token_type: [Int32]
        let bos_token_id: UInt32
        let eos_token_id: UInt32
        let unknown_token_id: UInt32
    }
    let data = try Data(contentsOf: fixtureFolder.appendingPathComponent("gguf_vocabulary.json"))
    let vocabulary = try JSONDecoder().decode(Vocabulary.self, from: data)
    return [
        ("tokenizer.ggml.model", .string("llama")),
        ("tokenizer.ggml.tokens", .array(vocabulary.tokens.map { .string($0) })),
        ("tokenizer.ggml.scores", .array(vocabulary.scores.map { .float32($0) })),
        ("tokenizer.ggml.token_type", .array(vocabulary.token_type.map { .int32($0) })),
        ("tokenizer.ggml.bos_token_id", .uint32(vocabulary.bos_token_id)),
        ("tokenizer.ggml.eos_token_id", .uint32(vocabulary.eos_token_id)),
        ("tokenizer.ggml.unknown_token_id", .uint32(vocabulary.unknown_token_id)),
    ]
}

final class SentencePieceTokenizerTests: XCTestCase {
    private var temporaryFolder: URL!

    override func setUpWithError() throws {
        temporaryFolder = FileManager.default.temporaryDirectory
            .appendingPathComponent("knowtune-sentencepiece-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: temporaryFolder, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(at: temporaryFolder)
    }

    // MARK: - Against HF

    func testEveryTokenizerJSONLayoutMatchesHuggingFace() throws {
        let file = try SentencePieceCaseFile.load()
        XCTAssertEqual(file.cases.count, 65)
        let expectedPrefix: [String: SentencePieceBPETokenizer.DummyPrefix] = [
            "legacy": .everyStretch, "metaspace-always": .everyStretchNotStartingWithSpace,
            "metaspace-first": .firstStretchNotStartingWithSpace,
        ]
        var tokenizers: [(String, SentencePieceBPETokenizer)] = []
        for (layout, dummyPrefix) in expectedPrefix {
            // Through the loader, which must pick this tokenizer for a BPE model over "▁" pieces.
            let loaded = try ModelLoader.huggingFaceTokenizer(fixtureFolder.appendingPathComponent(layout).path)
            let tokenizer = try XCTUnwrap(loaded as? SentencePieceBPETokenizer, layout)
            XCTAssertEqual(tokenizer.dummyPrefix, dummyPrefix, layout)
            tokenizers.append((layout, tokenizer))
        }
        // Early Llama files mark the special tokens normalized, so HF finds "</s>" only as "▁</s>" in the
        // normalised text ("a</s>b" stays text, "a </s> b" loses the spaces around it).
        let normalizedSpecials = try editedLegacyJSON { root in
            root["added_tokens"] = (root["added_tokens"] as? [[String: Any]] ?? []).map { token in
                token.merging(["normalized": true]) { $1 }
            }
        }
        tokenizers.append(
            ("legacy-normalized-specials", try SentencePieceBPETokenizer(tokenizerJSON: normalizedSpecials, eosTokenId: 2)))
        for (layout, tokenizer) in tokenizers {
            XCTAssertEqual(tokenizer.vocabularySize, 1200)
            XCTAssertEqual(tokenizer.eosTokenId, 2)
            XCTAssertEqual(tokenizer.bosTokenId ?? 1, 1)
            XCTAssertNil(tokenizer.padTokenId)
            var matched = 0
            for testCase in file.cases {
                let expected = try XCTUnwrap(testCase.ids[layout])
                let ids = tokenizer.encode(testCase.text)
                XCTAssertEqual(ids, expected, "\(layout): \(testCase.name) \(testCase.text.debugDescription)")
                XCTAssertEqual(
                    tokenizer.decode(expected), testCase.decoded[layout], "\(layout): decoding \(testCase.name)")
                if ids == expected { matched += 1 }
            }
            XCTAssertEqual(matched, file.cases.count, "\(layout): ids equal to HF's")
            for decodeCase in file.decodeCases {
                XCTAssertEqual(
                    tokenizer.decode(decodeCase.ids), decodeCase.decoded[layout], "\(layout): \(decodeCase.ids)")
            }
        }
    }

    /// transformers' GGUF conversion and SentencePiece put the dummy prefix on every stretch, so a GGUF must give the
    /// legacy layout's ids, here reached by llama.cpp's merge-by-score rather than by HF's merge ranks.
    func testGGUFVocabularyWithScoresMatchesHuggingFace() throws {
        let file = try SentencePieceCaseFile.load()
        let configuration = LlamaConfiguration(
            vocabularySize: 1200, hiddenSize: 16, intermediateSize: 24, layerCount: 1, headCount: 2, kvHeadCount: 1,
            rmsNormEpsilon: 1e-5, ropeTheta: 10000, tieWordEmbeddings: true, maxPositionEmbeddings: 64)
        let path = temporaryFolder.appendingPathComponent("tiny-llama.gguf").path
        try GGUFModelWriter.write(
            RandomModel.weights(configuration, seed: 3), tokenizerMetadata: try ggufTokenizerMetadata(),
            name: "tiny-sentencepiece", to: path)
        let model = try ModelLoader.load(path)
        let tokenizer = try XCTUnwrap(model.tokenizer as? SentencePieceBPETokenizer)
        XCTAssertEqual(tokenizer.dummyPrefix, .everyStretch)
        XCTAssertEqual(tokenizer.vocabularySize, 1200)
        XCTAssertEqual(tokenizer.eosTokenId, 2)
        XCTAssertEqual(tokenizer.bosTokenId, 1)
        XCTAssertEqual(tokenizer.unknownTokenId, 0)
        var matched = 0
        for testCase in file.cases {
            let expected = try XCTUnwrap(testCase.ids["legacy"])
            let ids = tokenizer.encode(testCase.text)
            XCTAssertEqual(ids, expected, "\(testCase.name) \(testCase.text.debugDescription)")
            if let sentencepiece = testCase.sentencepiece { XCTAssertEqual(ids, sentencepiece, testCase.name) }
            XCTAssertEqual(tokenizer.decode(expected), testCase.decoded["legacy"], "decoding \(testCase.name)")
            if ids == expected { matched += 1 }
        }
        XCTAssertEqual(matched, file.cases.count, "GGUF ids equal to HF's")
        for decodeCase in file.decodeCases {
            XCTAssertEqual(tokenizer.decode(decodeCase.ids), decodeCase.decoded["legacy"], "\(decodeCase.ids)")
        }
        // TokenizerLoader takes the same path without the weights.
        XCTAssertEqual(try TokenizerLoader.load(path).encode("Hello world"), tokenizer.encode("Hello world"))
    }

    func testTemplatesFindSpecialTokensAndEncodeSegmentsSeparately() throws {
        let file = try SentencePieceCaseFile.load()
        func ids(_ name: String) throws -> [Int32] {
            try XCTUnwrap(file.cases.first { $0.name == name }?.ids["legacy"], name)
        }
        let tokenizer = try SentencePieceBPETokenizer.load(
            tokenizerJSONPath: fixtureFolder.appendingPathComponent("legacy/tokenizer.json").path)
        XCTAssertEqual(tokenizer.tokenId(forText: "</s>"), 2)
        XCTAssertEqual(tokenizer.tokenId(forText: "<s>"), 1)
        XCTAssertEqual(tokenizer.tokenId(forText: "<unk>"), 0)
        XCTAssertEqual(tokenizer.tokenText(2), "</s>")
        // Each segment gets its own "▁", so the user turn starts with "▁###" (notes §3.2).
        XCTAssertEqual(
            ChatTemplate.alpacaLF053.encodePrompt("What is sleep training?", tokenizer: tokenizer),
            try ids("alpaca system") + ids("alpaca user"))
        XCTAssertEqual(
            ChatTemplate.alpacaLF053.encodeResponse("Sleep training is a method.", tokenizer: tokenizer),
            try ids("alpaca response") + [2])
        // This small vocabulary has no "▁###" or even "#" (Llama has both), so the user turn starts with a lone "▁"
        // and byte fallback; and it learnt "▁\n\n", which Llama spells ▁ <0x0A> <0x0A>.
        XCTAssertEqual(try ids("alpaca user").prefix(2).map { tokenizer.tokenText($0) }, ["\u{2581}", "<0x23>"])
        XCTAssertEqual(try ids("alpaca separator").map { tokenizer.tokenText($0) }, ["\u{2581}\n\n"])
    }

    // MARK: - Merge order by score

    private func scoredMetadata(scores: [Float]) -> [String: GGUFValue] {
        let tokens = ["<unk>", "<s>", "</s>", "a", "b", "c", "ab", "bc", "\u{2581}"]
        return [
            "tokenizer.ggml.model": .string("llama"),
            "tokenizer.ggml.tokens": .array(tokens.map { .string($0) }),
            "tokenizer.ggml.scores": .array(scores.map { .float32($0) }),
            "tokenizer.ggml.token_type": .array([2, 3, 3, 1, 1, 1, 1, 1, 1].map { .int32($0) }),
            "tokenizer.ggml.eos_token_id": .uint32(2),
            "tokenizer.ggml.add_space_prefix": .bool(false),
        ]
    }

    func testScoresOrderMergesAndTiesGoLeftmost() throws {
        // Ids 3…8 are a, b, c, ab, bc, "▁"; only ab and bc can be merged.
        func tokenizer(ab: Float, bc: Float) throws -> SentencePieceBPETokenizer {
            try SentencePieceBPETokenizer(gguf: scoredMetadata(scores: [0, 0, 0, -1, -2, -3, ab, bc, -4]))
        }
        // The higher-scoring result wins the shared "b".
        XCTAssertEqual(try tokenizer(ab: -20, bc: -10).encode("abc"), [3, 7])
        XCTAssertEqual(try tokenizer(ab: -10, bc: -20).encode("abc"), [6, 5])
        // Equal scores: the leftmost pair merges first, as llama.cpp's queue orders them.
        XCTAssertEqual(try tokenizer(ab: -10, bc: -10).encode("abc"), [6, 5])
        // Without the dummy prefix a space is just "▁", and nothing is stripped when decoding.
        let plain = try tokenizer(ab: -10, bc: -20)
        XCTAssertEqual(plain.encode(" ab"), [8, 6])
        XCTAssertEqual(plain.decode([8, 6]), " ab")
        // A character with neither a vocabulary entry nor byte tokens is dropped when no <unk> is named, so its
        // neighbours merge, as in HF.
        XCTAssertEqual(plain.encode("axb"), [6])
        var withUnknown = scoredMetadata(scores: [0, 0, 0, -1, -2, -3, -10, -20, -4])
        withUnknown["tokenizer.ggml.unknown_token_id"] = .uint32(0)
        XCTAssertEqual(try SentencePieceBPETokenizer(gguf: withUnknown).encode("axyb"), [3, 0, 4])
    }

    // MARK: - Errors

    func testLoadersNameUnsupportedTokenizers() throws {
        let ggufPath = temporaryFolder.appendingPathComponent("bert.gguf").path
        var writer = GGUFWriter()
        writer.metadata = [("tokenizer.ggml.model", .string("bert")), ("tokenizer.ggml.tokens", .array([.string("a")]))]
        try writer.write(to: ggufPath)
        XCTAssertThrowsError(try GGUFModelLoader.tokenizer(of: try GGUFFile(path: ggufPath))) { error in
            XCTAssertEqual(
                "\(error)",
                "unsupported tokenizer model 'bert' in \(ggufPath) (supported: byte-level BPE (gpt2), SentencePiece BPE "
                    + "(llama))")
        }

        let folder = temporaryFolder.appendingPathComponent("wordpiece")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        let jsonPath = folder.appendingPathComponent("tokenizer.json")
        try Data(#"{"model": {"type": "WordPiece", "vocab": {"a": 0}}}"#.utf8).write(to: jsonPath)
        XCTAssertThrowsError(try ModelLoader.huggingFaceTokenizer(folder.path)) { error in
            XCTAssertEqual(
                "\(error)",
                "unsupported tokenizer model 'WordPiece' in \(jsonPath.path) (supported: byte-level BPE (gpt2), "
                    + "SentencePiece BPE (llama))")
        }
    }

    func testGGUFMetadataErrorsNameTheKey() throws {
        var metadata = scoredMetadata(scores: [Float](repeating: 0, count: 9))
        metadata["tokenizer.ggml.scores"] = nil
        XCTAssertThrowsError(try SentencePieceBPETokenizer(gguf: metadata)) { error in
            XCTAssertTrue("\(error)".contains("tokenizer.ggml.scores"), "\(error)")
        }
        metadata["tokenizer.ggml.scores"] = .array([.float32(0)])
        XCTAssertThrowsError(try SentencePieceBPETokenizer(gguf: metadata)) { error in
            XCTAssertTrue("\(error)".contains("1 scores for 9 tokens"), "\(error)")
        }
        metadata = scoredMetadata(scores: [Float](repeating: 0, count: 9))
        metadata["tokenizer.ggml.eos_token_id"] = .uint32(9)
        XCTAssertThrowsError(try SentencePieceBPETokenizer(gguf: metadata)) { error in
            XCTAssertTrue("\(error)".contains("EOS token id 9 is outside the vocabulary 0..<9"), "\(error)")
        }
        metadata["tokenizer.ggml.model"] = .string("gpt2")
        XCTAssertThrowsError(try SentencePieceBPETokenizer(gguf: metadata)) { error in
            guard case KnowTuneError.unsupported = error else { return XCTFail("unexpected error \(error)") }
        }
    }

    /// The legacy fixture with one part replaced.
    private func editedLegacyJSON(_ edit: (inout [String: Any]) -> Void) throws -> Data {
        let data = try Data(contentsOf: fixtureFolder.appendingPathComponent("legacy/tokenizer.json"))
        var root = try XCTUnwrap(JSONSerialization.jsonObject(with: data) as? [String: Any])
        edit(&root)
        return try JSONSerialization.data(withJSONObject: root)
    }

    func testTokenizerJSONRejectsOtherPipelines() throws {
        let splittingMetaspace = try editedLegacyJSON { root in
            root["normalizer"] = NSNull()
            root["pre_tokenizer"] = ["type": "Metaspace", "replacement": "\u{2581}", "prepend_scheme": "always",
                                     "split": true]
        }
        XCTAssertThrowsError(try SentencePieceBPETokenizer(tokenizerJSON: splittingMetaspace, eosTokenId: 2)) { error in
            guard case let KnowTuneError.unsupported(what, _) = error else { return XCTFail("unexpected \(error)") }
            XCTAssertTrue(what.contains("\"split\":true"), what)
        }
        let nfkc = try editedLegacyJSON { root in root["normalizer"] = ["type": "NFKC"] }
        XCTAssertThrowsError(try SentencePieceBPETokenizer(tokenizerJSON: nfkc, eosTokenId: 2)) { error in
            guard case let KnowTuneError.unsupported(what, _) = error else { return XCTFail("unexpected \(error)") }
            XCTAssertTrue(what.contains("NFKC"), what)
        }
        let byteLevelDecoder = try editedLegacyJSON { root in root["decoder"] = ["type": "ByteLevel"] }
        XCTAssertThrowsError(try SentencePieceBPETokenizer(tokenizerJSON: byteLevelDecoder, eosTokenId: 2)) { error in
            guard case let KnowTuneError.unsupported(what, _) = error else { return XCTFail("unexpected \(error)") }
            XCTAssertTrue(what.contains("decoder"), what)
        }
        let badMerge = try editedLegacyJSON { root in
            var model = root["model"] as? [String: Any] ?? [:]
            model["merges"] = ["\u{2581}t he", "q \u{2581}zz"]
            root["model"] = model
        }
        XCTAssertThrowsError(try SentencePieceBPETokenizer(tokenizerJSON: badMerge, eosTokenId: 2)) { error in
            XCTAssertTrue("\(error)".contains("merge 1 \"q \u{2581}zz\""), "\(error)")
        }
        // Without tokenizer_config.json and without an explicit id there is no EOS.
        XCTAssertThrowsError(try SentencePieceBPETokenizer(tokenizerJSON: try editedLegacyJSON { _ in })) { error in
            guard case KnowTuneError.invalidConfiguration = error else { return XCTFail("unexpected \(error)") }
        }
    }
}
