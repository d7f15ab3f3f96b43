// Implements resolving `--model_name_or_path` (a .gguf file, a folder holding one .gguf, or an HF folder with
// config.json + *.safetensors, sharded or not) into configuration, weights and tokenizer; does not parse the
// formats themselves.
import Foundation
import KnowTuneTensor

/// A base model ready to use.
public struct LoadedModel {
    public let configuration: LlamaConfiguration
    public let weights: LlamaWeights
    public let tokenizer: any Tokenizer
    /// The file or folder it came from.
    public let source: String
    /// A short description of the source format, e.g. "GGUF v3 (Q4_1)".
    public let format: String

    public init(configuration: LlamaConfiguration, weights: LlamaWeights, tokenizer: any Tokenizer, source: String, format: String) {
        self.configuration = configuration
        self.weights = weights
        self.tokenizer = tokenizer
        self.source = source
        self.format = format
    }

    /// The same model with its base weights (fp32) stored in `precision`: a private allocated copy.
    public func converted(to precision: BasePrecision) -> LoadedModel {
        guard precision != weights.precision else { return self }
        let converted = LlamaWeights(converting: weights, to: precision)
        return LoadedModel(configuration: configuration, weights: converted, tokenizer: tokenizer, source: source,
                           format: format + ", " + converted.storageLayout.formatNote)
    }
}

/// What a model is, without its weights: enough to map a cached flat copy of them.
public struct ModelDescription {
    public let configuration: LlamaConfiguration
    public let tokenizer: any Tokenizer
    public let source: String
    public let format: String
    /// Files whose bytes define the weights (for cache keys).
    public let weightFiles: [String]
    /// Each HF tensor's encoding in the file, where a quantized base can keep it (GGUF only).
    public let sourceEncodings: [String: WeightEncoding]

    /// Where each tensor lies in a flat buffer of `precision`.
    public func storageLayout(_ precision: BasePrecision) -> LlamaStorageLayout {
        LlamaStorageLayout(configuration, precision: precision, sourceEncodings: sourceEncodings)
    }
}

public enum ModelLoader {
    /// The tokenizer kinds KnowTune implements, for error messages.
    static let supportedTokenizers = "byte-level BPE (gpt2), SentencePiece BPE (llama)"

    public enum SourceKind: Equatable {
        case gguf(String)
        case huggingFace(String)
    }

    /// Decides what `path` is, or explains why it is none of the accepted forms.
    public static func resolve(_ path: String) throws -> SourceKind {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw KnowTuneError.fileUnreadable(path: path, reason: "no such file or directory (expected a .gguf file, a folder with one .gguf, or an HF folder with config.json)")
        }
        if !isDirectory.boolValue { return .gguf(path) }
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: path)) ?? []
        if entries.contains("config.json") { return .huggingFace(path) }
        let ggufFiles = entries.filter { $0.hasSuffix(".gguf") }.sorted()
        if ggufFiles.count == 1 { return .gguf((path as NSString).appendingPathComponent(ggufFiles[0])) }
        if ggufFiles.count > 1 {
            throw KnowTuneError.invalidConfiguration("\(path) holds several .gguf files (\(ggufFiles.joined(separator: ", "))): name one")
        }
        throw KnowTuneError.fileUnreadable(path: path, reason: "folder has neither config.json nor a .gguf file")
    }

    public static func load(_ path: String) throws -> LoadedModel {
        switch try resolve(path) {
        case let .gguf(file): return try loadGGUF(file)
        case let .huggingFace(folder): return try loadHuggingFace(folder)
        }
    }

    /// Configuration, tokenizer and weight files, without reading or dequantising any weights.
    public static func describe(_ path: String) throws -> ModelDescription {
        switch try resolve(path) {
        case let .gguf(file):
            return try describe(GGUFFile(path: file))
        case let .huggingFace(folder):
            let shards = try safetensorsShards(folder)
            return ModelDescription(configuration: try huggingFaceConfiguration((folder as NSString).appendingPathComponent("config.json")),
                                    tokenizer: try huggingFaceTokenizer(folder), source: folder,
                                    format: "HF safetensors (\(shards.count) file\(shards.count == 1 ? "" : "s"))", weightFiles: shards,
                                    sourceEncodings: [:])
        }
    }

    static func describe(_ gguf: GGUFFile) throws -> ModelDescription {
        let types = Set(gguf.tensors.map(\.type.name)).sorted().joined(separator: "/")
        let configuration = try GGUFModelLoader.configuration(of: gguf)
        return ModelDescription(configuration: configuration,
                                tokenizer: try GGUFModelLoader.tokenizer(of: gguf), source: gguf.path,
                                format: "GGUF v\(gguf.version) (\(types))", weightFiles: [gguf.path],
                                sourceEncodings: GGUFModelLoader.sourceEncodings(of: gguf, configuration: configuration))
    }

    /// Loads `path` with its base in `precision`, streamed tensor by tensor into the buffer (WeightStreamer), so
    /// that a quantized or 16-bit base never exists in fp32 as a whole.
    public static func load(_ path: String, precision: BasePrecision) throws -> LoadedModel {
        guard precision != .fp32 else { return try load(path) }
        // A GGUF header (its vocabulary included) is parsed once, for the description and the weights.
        var opened: GGUFFile?
        if case let .gguf(file) = try resolve(path) { opened = try GGUFFile(path: file) }
        let description = try opened.map(describe) ?? describe(path)
        let layout = description.storageLayout(precision)
        let weights = try LlamaWeights(configuration: description.configuration, storageLayout: layout) { base in
            var cursor = 0
            try WeightStreamer.stream(path, configuration: description.configuration, layout: layout, opened: opened) { bytes, count in
                (base + cursor).copyMemory(from: bytes, byteCount: count)
                cursor += count
            }
        }
        return LoadedModel(configuration: description.configuration, weights: weights, tokenizer: description.tokenizer,
                           source: description.source, format: description.format + ", " + layout.formatNote)
    }

    static func loadGGUF(_ path: String) throws -> LoadedModel {
        let file = try GGUFFile(path: path)
        let configuration = try GGUFModelLoader.configuration(of: file)
        let tokenizer = try GGUFModelLoader.tokenizer(of: file)
        let weights = try GGUFModelLoader.weights(of: file, configuration: configuration)
        let types = Set(file.tensors.map(\.type.name)).sorted().joined(separator: "/")
        return LoadedModel(configuration: configuration, weights: weights, tokenizer: tokenizer, source: path,
                           format: "GGUF v\(file.version) (\(types))")
    }

    static func loadHuggingFace(_ folder: String) throws -> LoadedModel {
        let configPath = (folder as NSString).appendingPathComponent("config.json")
        let configuration = try huggingFaceConfiguration(configPath)
        let tokenizer = try huggingFaceTokenizer(folder)
        let shards = try SafeTensorsShards(folder: folder)
        let weights = LlamaWeights(configuration: configuration)
        for tensor in weights.namedTensors() {
            try shards.read(tensor.name, into: tensor.pointer, expectedShape: tensor.shape)
        }
        let dtypes = Set(shards.files.flatMap { $0.tensors.values.map(\.dtype) }).sorted().joined(separator: "/")
        let count = shards.files.count
        return LoadedModel(configuration: configuration, weights: weights, tokenizer: tokenizer, source: folder,
                           format: "HF safetensors (\(count) file\(count == 1 ? "" : "s"), \(dtypes))")
    }

    /// Decodes config.json, accepting only LLaMA-family architectures.
    public static func huggingFaceConfiguration(_ path: String) throws -> LlamaConfiguration {
        let data: Data
        do { data = try Data(contentsOf: URL(fileURLWithPath: path)) } catch {
            throw KnowTuneError.fileUnreadable(path: path, reason: error.localizedDescription)
        }
        guard let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else {
            throw KnowTuneError.badFormat(path: path, reason: "not a JSON object")
        }
        let supported = ["LlamaForCausalLM", "MistralForCausalLM"]
        let architectures = object["architectures"] as? [String] ?? []
        let modelType = object["model_type"] as? String ?? "?"
        guard architectures.contains(where: supported.contains) || (architectures.isEmpty && modelType == "llama") else {
            throw KnowTuneError.unsupported(what: "architecture \(architectures.isEmpty ? modelType : architectures.joined(separator: ",")) in \(path)",
                                            supported: supported.joined(separator: ", "))
        }
        if let scaling = object["rope_scaling"], !(scaling is NSNull) {
            throw KnowTuneError.unsupported(what: "rope_scaling \(scaling) in \(path)", supported: "no rope scaling")
        }
        do {
            let configuration = try JSONDecoder().decode(LlamaConfiguration.self, from: data)
            try configuration.validate(source: path)
            return configuration
        } catch let error as DecodingError {
            throw KnowTuneError.badFormat(path: path, reason: describe(error))
        }
    }

    static func describe(_ error: DecodingError) -> String {
        switch error {
        case let .keyNotFound(key, _): return "missing field \(key.stringValue)"
        case let .typeMismatch(_, context), let .valueNotFound(_, context), let .dataCorrupted(context):
            return "bad field \(context.codingPath.map(\.stringValue).joined(separator: ".")): \(context.debugDescription)"
        @unknown default: return "\(error)"
        }
    }

    /// `model.safetensors`, or the shards listed by `model.safetensors.index.json`.
    static func safetensorsShards(_ folder: String) throws -> [String] {
        let indexPath = (folder as NSString).appendingPathComponent("model.safetensors.index.json")
        if FileManager.default.fileExists(atPath: indexPath) {
            guard let data = FileManager.default.contents(atPath: indexPath),
                  let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
                  let map = object["weight_map"] as? [String: String] else {
                throw KnowTuneError.badFormat(path: indexPath, reason: "no weight_map object")
            }
            return Set(map.values).sorted().map { (folder as NSString).appendingPathComponent($0) }
        }
        let entries = ((try? FileManager.default.contentsOfDirectory(atPath: folder)) ?? []).filter { $0.hasSuffix(".safetensors") }.sorted()
        guard !entries.isEmpty else {
            throw KnowTuneError.fileUnreadable(path: folder, reason: "no *.safetensors weights beside config.json")
        }
        return entries.map { (folder as NSString).appendingPathComponent($0) }
    }

    /// The tokenizer of an HF folder, chosen by its tokenizer.json: both kinds are model type BPE, and a
    /// SentencePiece one is told apart by its "▁" metaspace or byte fallback.
    static func huggingFaceTokenizer(_ folder: String) throws -> any Tokenizer {
        let path = (folder as NSString).appendingPathComponent("tokenizer.json")
        guard FileManager.default.fileExists(atPath: path) else {
            throw KnowTuneError.fileUnreadable(path: path, reason: "an HF model folder needs tokenizer.json")
        }
        let data: Data
        do { data = try Data(contentsOf: URL(fileURLWithPath: path)) } catch {
            throw KnowTuneError.fileUnreadable(path: path, reason: error.localizedDescription)
        }
        guard let root = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else {
            throw KnowTuneError.badFormat(path: path, reason: "not a JSON object")
        }
        let modelType = ((root["model"] as? [String: Any])?["type"] as? String) ?? "BPE"
        guard modelType == "BPE" else {
            throw KnowTuneError.unsupported(what: "tokenizer model '\(modelType)' in \(path)", supported: supportedTokenizers)
        }
        // The chosen tokenizer parses the file again: a fraction of a second even for large vocabularies, and each
        // tokenizer stays loadable on its own.
        if SentencePieceBPETokenizer.isSentencePieceLayout(root) {
            return try SentencePieceBPETokenizer.load(tokenizerJSONPath: path)
        }
        return try ByteLevelBPETokenizer.load(tokenizerJSONPath: path)
    }
}

/// Loads only a model's tokenizer (no weights), for commands that need nothing else.
public enum TokenizerLoader {
    public static func load(_ path: String) throws -> any Tokenizer {
        switch try ModelLoader.resolve(path) {
        case let .gguf(file): return try GGUFModelLoader.tokenizer(of: try GGUFFile(path: file))
        case let .huggingFace(folder): return try ModelLoader.huggingFaceTokenizer(folder)
        }
    }
}
