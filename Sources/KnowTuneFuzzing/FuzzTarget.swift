// Implements one fuzz target per parser that reads outside data: each turns arbitrary bytes into that parser's input
// (a file where the parser reads files), runs it, and goes on through what a user's command would do next (encode,
// dequantize, score). A thrown error is the contract's answer to bad input; a crash, a hang or an unbounded
// allocation is a finding. Used by the libFuzzer build (`launch/fuzz.sh`) and by the corpus replay in the plain test
// suite; does not mutate inputs or keep corpora itself.
import Foundation
import KnowTuneCheckpoint
import KnowTuneData
import KnowTuneEvaluation
import KnowTuneGeneration
import KnowTuneKnowledge
import KnowTuneModel
import KnowTuneServing
import KnowTuneTensor
import KnowTuneTraining

public enum FuzzTarget: String, CaseIterable, Sendable {
    /// A GGUF file: header, metadata, tensor table, offsets, then every tensor dequantized and the model and its
    /// tokenizer built from the metadata as `knowtune` loads them.
    case gguf
    /// A safetensors file: header JSON, dtypes, shapes and offsets, then every tensor read.
    case safetensors
    /// `tokenizer.json` bytes, a NUL, then text to encode: both BPE kinds are built from the JSON and encode/decode it.
    case tokenizerJSON = "tokenizer-json"
    /// A dataset file (JSON array or JSON lines) read as alpaca and ranking data and encoded through the template.
    case datasetRecords = "dataset-records"
    /// A `dataset_info.json`.
    case datasetInfo = "dataset-info"
    /// `adapter_config.json` bytes, a NUL, then `adapter_model.safetensors` bytes, loaded for a tiny LLaMA.
    case adapter
    /// A checkpoint folder: a sidecar line, a NUL, then `state.h5` bytes, read as resume reads it.
    case checkpoint
    /// A chat-completion response body, then its content parsed as each of the teacher's replies (KA and KC).
    case teacherReply = "teacher-reply"
    /// A `generated_predictions.jsonl`, parsed and scored as `knowtune metrics` does.
    case predictions
    /// A `knowtune train` configuration file (YAML), parsed, given its derived defaults and validated.
    case trainingConfiguration = "training-config"
    /// A response schema (JSON Schema or OpenAI `response_format`), a NUL, then bytes that steer a decode under its
    /// mask over a byte vocabulary: the output must be a document of the schema whenever the budget can hold one.
    case responseSchema = "response-schema"
    /// A `POST /v1/chat/completions` body as `knowtune api` reads it: the request's fields, its conversation under
    /// every template, its response_format's mask, and its stop texts over the messages' text.
    case chatRequest = "chat-request"

    /// Runs the target on `data`; errors are the expected answer to bad input and are dropped.
    public func run(_ data: Data) {
        _ = try? check(data)
    }

    /// Runs the target on `data` and throws what the parser refused (a good seed must not throw).
    public func check(_ data: Data) throws {
        switch self {
        case .gguf: try Self.gguf(data)
        case .safetensors: try Self.safetensors(data)
        case .tokenizerJSON: try Self.tokenizerJSON(data)
        case .datasetRecords: try Self.datasetRecords(data)
        case .datasetInfo: try Self.datasetInfo(data)
        case .adapter: try Self.adapter(data)
        case .checkpoint: try Self.checkpoint(data)
        case .teacherReply: try Self.teacherReply(data)
        case .predictions: try Self.predictions(data)
        case .trainingConfiguration: try Self.trainingConfiguration(data)
        case .responseSchema: try Self.responseSchema(data)
        case .chatRequest: try Self.chatRequest(data)
        }
    }

    // MARK: - Scratch files

    /// One scratch folder per process (in /dev/shm where there is one: fuzzing writes a file per input).
    static let scratch: String = {
        let base = FileManager.default.fileExists(atPath: "/dev/shm") ? "/dev/shm" : NSTemporaryDirectory()
        let folder = (base as NSString).appendingPathComponent("knowtune-fuzz-\(getpid())")
        try? FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        return folder
    }()

    static func file(_ name: String, _ bytes: Data) throws -> String {
        let path = (scratch as NSString).appendingPathComponent(name)
        try bytes.write(to: URL(fileURLWithPath: path))
        return path
    }

    /// The bytes before the first NUL and those after it (all of `data` and nothing when there is none).
    static func split(_ data: Data) -> (Data, Data) {
        guard let nul = data.firstIndex(of: 0) else { return (data, Data()) }
        return (data[data.startIndex..<nul], data[(nul + 1)...])
    }

    // MARK: - Targets

    static func gguf(_ data: Data) throws {
        let path = try file("model.gguf", data)
        let gguf = try GGUFFile(path: path)
        for tensor in gguf.tensors where tensor.elementCount <= 1 << 22 {
            var values = [Float](repeating: 0, count: tensor.elementCount)
            try values.withUnsafeMutableBufferPointer { try GGUFDequantizer.dequantise(tensor, in: gguf, into: $0.baseAddress!) }
        }
        let tokenizer = try TokenizerLoader.load(path)
        _ = tokenizer.decode(tokenizer.encode("Hello, world! 123 héllo"))
        _ = try ModelLoader.load(path)
        // The streaming path of a quantized base: blocks kept, copied with their rows un-permuted, or requantized.
        for precision in [BasePrecision.q8_0, .q4_k] { _ = try ModelLoader.load(path, precision: precision) }
    }

    static func safetensors(_ data: Data) throws {
        let file = try SafeTensorsFile(path: try file("model.safetensors", data))
        for name in file.tensors.keys.sorted() { _ = try file.readArray(name) }
    }

    static func tokenizerJSON(_ data: Data) throws {
        let (json, text) = split(data)
        let sample = String(decoding: text, as: UTF8.self)
        var built: [any Tokenizer] = []
        var refusals: [Error] = []
        do { built.append(try ByteLevelBPETokenizer(tokenizerJSON: Data(json), eosTokenId: 0)) } catch { refusals.append(error) }
        do { built.append(try SentencePieceBPETokenizer(tokenizerJSON: Data(json), eosTokenId: 0)) } catch { refusals.append(error) }
        for tokenizer in built { _ = tokenizer.decode(tokenizer.encode(sample)) }
        if built.isEmpty, let first = refusals.first { throw first }
    }

    static func datasetRecords(_ data: Data) throws {
        _ = try file("records.json", data)
        try Data(#"{"sft": {"file_name": "records.json"}, "ranked": {"file_name": "records.json", "ranking": true}}"#.utf8)
            .write(to: URL(fileURLWithPath: (scratch as NSString).appendingPathComponent("dataset_info.json")))
        let registry = try DatasetRegistry(directory: scratch)
        let tokenizer = ByteTokenizer()
        let examples = try DatasetLoader.load(names: ["sft"], registry: registry, maxSamples: nil)
        _ = SupervisedEncoder(template: .alpaca, tokenizer: tokenizer, cutoffLength: 64).encode(examples)
        let ranked = try DatasetLoader.load(names: ["ranked"], registry: registry, maxSamples: nil)
        _ = try PairwiseEncoder(template: .alpaca, tokenizer: tokenizer, cutoffLength: 64).encode(ranked)
    }

    static func datasetInfo(_ data: Data) throws {
        _ = try file("dataset_info.json", data)
        let registry = try DatasetRegistry(directory: scratch)
        for name in registry.names { _ = try registry.entry(named: name) }
    }

    /// A tiny LLaMA for adapter shapes.
    static let tinyModel = LlamaConfiguration(
        vocabularySize: 64, hiddenSize: 16, intermediateSize: 24, layerCount: 2, headCount: 4, kvHeadCount: 2,
        rmsNormEpsilon: 1e-5, ropeTheta: 10000, tieWordEmbeddings: true, maxPositionEmbeddings: 64)

    static func adapter(_ data: Data) throws {
        let (config, weights) = split(data)
        _ = try file(PEFTAdapter.configFile, Data(config))
        _ = try file(PEFTAdapter.weightsFile, Data(weights))
        _ = try PEFTAdapter.load(folder: scratch, model: tinyModel)
    }

    static func checkpoint(_ data: Data) throws {
        let (sidecar, state) = split(data)
        _ = try file(CheckpointStore.sidecarName(CheckpointStore.defaultFileName), Data(sidecar))
        _ = try file(CheckpointStore.defaultFileName, Data(state))
        _ = try CheckpointStore().read(from: scratch)
    }

    /// Answers every prompt with one fixed reply, once.
    final class FixedReply: ChatBackend {
        let reply: String
        init(_ reply: String) { self.reply = reply }
        var identity: String { "fuzz" }
        var attempts: Int { 1 }
        var backoff: TimeInterval { 0 }
        var allowsConcurrentCalls: Bool { false }
        func complete(system: String, user: String) throws -> String { reply }
    }

    static let prompts = TeacherPrompts(system: "s", extractFacts: "{question} {answer}", rewriteFacts: "{question} {facts}",
                                        rephraseAnswer: "{question} {answer}", falsifyFacts: "{question} {facts} {count}")

    static func teacherReply(_ data: Data) throws {
        let content = try OpenAIChatBackend.content(ofResponse: data, status: 200, url: "fuzz")
        let teacher = PromptedTeacher(backend: FixedReply(content), prompts: prompts)
        var random = SplitMix64(seed: 1)
        _ = try? teacher.extractFacts(question: "q", answer: "a")
        _ = try? teacher.rewrite(question: "q", facts: ["a", "b"], kept: [1])
        _ = try? teacher.rephrase(question: "q", answer: "a")
        _ = try? teacher.falsify(question: "q", facts: ["a", "b"], recordIndex: 0, random: &random)
    }

    static func predictions(_ data: Data) throws {
        let file = PredictionFile(parsing: data)
        let scorer = PredictionScorer()
        let scores = file.records.prefix(64).map { scorer.score(prediction: $0.predict, label: $0.label) }
        _ = try PredictionMetrics(averaging: scores)
        if let problem = file.skipped.first { throw KnowTuneError.badFormat(path: "predictions", reason: "\(problem)") }
    }

    static let byteTrie = TokenByteTrie(tokenizer: ByteTokenizer(), vocabularySize: 259)

    static func responseSchema(_ data: Data) throws {
        let (schemaBytes, steering) = split(data)
        guard let schema = try ResponseSchema.schemaOrResponseFormat(try JSONSerialization.jsonObject(with: schemaBytes)) else { return }
        let stop: Int32 = 2
        let constraint = JSONConstraint(grammar: JSONGrammar(schema), trie: byteTrie, stopTokenIds: [stop])
        let budget = 96
        guard constraint.minimumTokens <= budget else {
            throw KnowTuneError.invalidInput("the schema's shortest document takes \(constraint.minimumTokens) tokens")
        }
        var logits = [Float](repeating: 0, count: byteTrie.vocabularySize)
        var output: [UInt8] = []
        let steer = Array(steering.isEmpty ? Data([7]) : steering)
        for step in 0..<budget {
            // The steering bytes favour some tokens, as a model's logits do.
            for i in logits.indices { logits[i] = Float(steer[(i + step) % steer.count] ^ UInt8(truncatingIfNeeded: i)) }
            logits.withUnsafeMutableBufferPointer { constraint.mask($0.baseAddress!, remainingTokens: budget - step) }
            let token = constraint.accept(Int32(logits.indices.max { logits[$0] < logits[$1] } ?? 0))
            if token == stop { break }
            output += byteTrie.bytes(of: token) ?? []
        }
        guard (try? JSONSerialization.jsonObject(with: Data(output), options: [.fragmentsAllowed])) != nil else {
            fatalError("constrained output is not JSON: \(String(decoding: output, as: UTF8.self))")
        }
    }

    static func chatRequest(_ data: Data) throws {
        let request = try ChatCompletionRequest(body: data)
        let parts = try ChatCompletionService.conversation(of: request.messages)
        let tokenizer = ByteTokenizer()
        for template in ChatTemplate.all {
            let ids = template.encodeConversation(history: parts.history, user: parts.user, system: parts.system, tokenizer: tokenizer)
            guard !ids.isEmpty else { fatalError("a conversation encoded to no tokens under \(template.name)") }
        }
        if let schema = request.responseSchema {
            _ = JSONConstraint(grammar: JSONGrammar(schema), trie: byteTrie, stopTokenIds: [2]).minimumTokens
        }
        let text = request.messages.map(\.content).joined()
        let whole = StopTextFilter.cut(text, stops: request.stop)
        var pieces = StopTextFilter(stops: request.stop)
        var shown = ""
        for character in text { shown += pieces.append(String(character)) }
        shown += pieces.flush()
        guard shown == whole.text, pieces.isStopped == whole.stopped else {
            fatalError("stop texts cut \(text.debugDescription) differently piece by piece")
        }
    }

    static func trainingConfiguration(_ data: Data) throws {
        let path = try file("config.yaml", data)
        var arguments = try TrainingArgumentParser.parse([path]).arguments
        arguments.resolveDerivedDefaults()
        try arguments.validate()
    }
}
