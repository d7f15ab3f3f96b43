// Implements what every BPE tokenizer reads from an HF `tokenizer.json` the same way: the file and its
// `tokenizer_config.json` neighbour, the BPE model's unsupported options, vocabulary, merges, added tokens, and the
// special-token ids the config names; does not interpret normalizers, pre-tokenizers or decoders (each tokenizer
// does, as they decide its kind).
import Foundation
import KnowTuneTensor

/// A tokenizer kind built from the bytes of an HF `tokenizer.json` (and its `tokenizer_config.json`).
public protocol TokenizerJSONReadable {
    init(tokenizerJSON: Data, tokenizerConfigJSON: Data?, eosTokenId: Int32?, bosTokenId: Int32?, padTokenId: Int32?,
         source: String) throws
}

extension TokenizerJSONReadable {
    /// Loads an HF `tokenizer.json`, taking EOS/BOS/pad from the arguments or else from a `tokenizer_config.json`
    /// in the same folder (its `eos_token`, `bos_token`, `pad_token`).
    public static func load(
        tokenizerJSONPath path: String, eosTokenId: Int32? = nil, bosTokenId: Int32? = nil, padTokenId: Int32? = nil
    ) throws -> Self {
        let files = try TokenizerJSONDocument.readFiles(tokenizerJSONPath: path)
        return try Self(tokenizerJSON: files.tokenizer, tokenizerConfigJSON: files.configuration, eosTokenId: eosTokenId,
                        bosTokenId: bosTokenId, padTokenId: padTokenId, source: path)
    }
}

struct TokenizerJSONDocument {
    let source: String
    let root: [String: Any]
    /// The `model` object (type BPE).
    let model: [String: Any]
    /// Piece text → id, from `model.vocab`.
    let vocabulary: [String: Int32]
    /// The largest vocabulary id + 1 (added tokens may extend it).
    let vocabularySize: Int
    /// In rank order.
    let merges: [(String, String)]
    let addedTokens: [ByteLevelBPETokenizer.AddedToken]
    /// `tokenizer_config.json`, or empty.
    let configuration: [String: Any]

    /// The bytes of `path` and of the `tokenizer_config.json` beside it (nil when there is none).
    static func readFiles(tokenizerJSONPath path: String) throws -> (tokenizer: Data, configuration: Data?) {
        let url = URL(fileURLWithPath: path)
        do {
            let data = try Data(contentsOf: url)
            return (data, try? Data(contentsOf: url.deletingLastPathComponent().appendingPathComponent("tokenizer_config.json")))
        } catch {
            throw KnowTuneError.fileUnreadable(path: path, reason: error.localizedDescription)
        }
    }

    init(tokenizerJSON: Data, tokenizerConfigJSON: Data?, source: String) throws {
        self.source = source
        func fail(_ reason: String) -> KnowTuneError { .badFormat(path: source, reason: reason) }
        do {
            guard let object = try JSONSerialization.jsonObject(with: tokenizerJSON) as? [String: Any] else {
                throw fail("the top level is not a JSON object")
            }
            root = object
        } catch let error as KnowTuneError {
            throw error
        } catch {
            throw fail("not valid JSON: \(error.localizedDescription)")
        }
        guard let model = root["model"] as? [String: Any] else { throw fail("no \"model\" object") }
        self.model = model
        let modelType = (model["type"] as? String) ?? "BPE"
        guard modelType == "BPE" else {
            throw KnowTuneError.unsupported(what: "tokenizer.json model type \"\(modelType)\" in \(source)", supported: "BPE")
        }
        for key in ["continuing_subword_prefix", "end_of_word_suffix"] {
            if let affix = model[key] as? String, !affix.isEmpty {
                throw KnowTuneError.unsupported(what: "tokenizer.json BPE \(key) \"\(affix)\"", supported: "none")
            }
        }
        if let dropout = Self.jsonDouble(model["dropout"]), dropout > 0 {
            throw KnowTuneError.unsupported(what: "BPE dropout \(dropout)", supported: "no dropout (deterministic)")
        }

        guard let vocabularyObject = model["vocab"] as? [String: Any] else { throw fail("model has no \"vocab\" object") }
        var vocabulary: [String: Int32] = [:]
        vocabulary.reserveCapacity(vocabularyObject.count)
        var vocabularySize = 0
        for (text, value) in vocabularyObject {
            guard let integer = Self.jsonInteger(value), let id = Int32(exactly: integer), id >= 0 else {
                throw fail("vocabulary entry \"\(text)\" has no valid id")
            }
            vocabulary[text] = id
            vocabularySize = max(vocabularySize, Int(id) + 1)
        }
        self.vocabulary = vocabulary
        self.vocabularySize = vocabularySize

        guard let mergesArray = model["merges"] as? [Any] else { throw fail("model has no \"merges\" array") }
        var merges: [(String, String)] = []
        merges.reserveCapacity(mergesArray.count)
        for (rank, entry) in mergesArray.enumerated() {
            if let line = entry as? String {
                // Neither kind of piece holds a space (byte-level uses "Ġ", SentencePiece "▁"): one space separates.
                let parts = line.split(separator: " ", omittingEmptySubsequences: false)
                guard parts.count == 2 else { throw fail("merge \(rank) \"\(line)\" is not two tokens") }
                merges.append((String(parts[0]), String(parts[1])))
            } else if let pair = entry as? [Any], pair.count == 2, let left = pair[0] as? String, let right = pair[1] as? String {
                merges.append((left, right))
            } else {
                throw fail("merge \(rank) is neither \"a b\" nor [\"a\", \"b\"]")
            }
        }
        self.merges = merges

        var addedTokens: [ByteLevelBPETokenizer.AddedToken] = []
        for (index, entry) in ((root["added_tokens"] as? [Any]) ?? []).enumerated() {
            guard let object = entry as? [String: Any], let content = object["content"] as? String,
                  let integer = Self.jsonInteger(object["id"]), let id = Int32(exactly: integer), id >= 0
            else { throw fail("added_tokens[\(index)] lacks a content string or an id") }
            let isSpecial = (object["special"] as? Bool) ?? false
            addedTokens.append(ByteLevelBPETokenizer.AddedToken(
                content: content, id: id, isSpecial: isSpecial,
                stripsWhitespaceBefore: (object["lstrip"] as? Bool) ?? false,
                stripsWhitespaceAfter: (object["rstrip"] as? Bool) ?? false,
                matchesSingleWordOnly: (object["single_word"] as? Bool) ?? false,
                // HF's AddedToken default: special tokens are not normalised, others are.
                isNormalized: (object["normalized"] as? Bool) ?? !isSpecial))
        }
        self.addedTokens = addedTokens
        // Ids are dense in every real tokenizer, and the tokenizers size a table by the largest one: a sparse id (found
        // by fuzzing: one entry with id 2^31 - 1) is refused instead of allocating gigabytes.
        let largestId = addedTokens.reduce(vocabularySize - 1) { max($0, Int($1.id)) }
        let idLimit = 2 * (vocabulary.count + addedTokens.count) + 1024
        guard largestId < idLimit else {
            throw fail("token id \(largestId) is far beyond the \(vocabulary.count + addedTokens.count) tokens (ids must be dense)")
        }

        var configuration: [String: Any] = [:]
        if let tokenizerConfigJSON {
            guard let object = try? JSONSerialization.jsonObject(with: tokenizerConfigJSON) as? [String: Any] else {
                throw KnowTuneError.badFormat(path: "tokenizer_config.json", reason: "not a JSON object")
            }
            configuration = object
        }
        self.configuration = configuration
    }

    /// An added token's id, else the vocabulary's.
    func id(of text: String) -> Int32? {
        addedTokens.first { $0.content == text }?.id ?? vocabulary[text]
    }

    /// The id of the token `tokenizer_config.json` names under `key`, as a string or an AddedToken object with
    /// "content"; nil when it names none.
    func configuredId(_ key: String) throws -> Int32? {
        guard let value = configuration[key], !(value is NSNull),
              let text = (value as? String) ?? ((value as? [String: Any])?["content"] as? String) else { return nil }
        guard let id = id(of: text) else {
            throw KnowTuneError.badFormat(path: "tokenizer_config.json", reason: "\(key) \"\(text)\" is not in the vocabulary")
        }
        return id
    }

    /// `given`, else the config's `eos_token`; a tokenizer without EOS is an error.
    func eosTokenId(given: Int32?) throws -> Int32 {
        guard let eos = try given ?? configuredId("eos_token") else {
            throw KnowTuneError.invalidConfiguration(
                "\(source) names no EOS token: pass eosTokenId or put tokenizer_config.json with eos_token beside it")
        }
        return eos
    }

    /// The id of `model.unk_token`, or nil when it names none.
    func unknownTokenId() throws -> Int32? {
        guard let name = model["unk_token"] as? String else { return nil }
        guard let id = id(of: name) else {
            throw KnowTuneError.badFormat(path: source, reason: "unk_token \"\(name)\" is not in the vocabulary")
        }
        return id
    }

    static func jsonInteger(_ value: Any?) -> Int? {
        if let integer = value as? Int { return integer }
        if let number = value as? NSNumber { return Int(exactly: number.doubleValue) }
        return nil
    }

    static func jsonDouble(_ value: Any?) -> Double? {
        if let double = value as? Double { return double }
        if let number = value as? NSNumber { return number.doubleValue }
        return nil
    }
}
