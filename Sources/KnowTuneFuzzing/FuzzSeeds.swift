// Implements writing the committed seed corpora (Tests/Fixtures/fuzz/<target>/seed-*), small and derived from the real
// files: a tiny LLaMA GGUF whose vocabulary, merges and quantized blocks are cut from SmolLM2's file, a tokenizer.json
// of the same vocabulary, dataset records and dataset_info.json from data/, an adapter, a checkpoint, chat-completion
// bodies and a predictions file. Deterministic: the same model and data give the same bytes. Does not fuzz.
import Foundation
import KnowTuneCheckpoint
import KnowTuneModel
import KnowTuneTensor

public enum FuzzSeeds {
    /// Tokens kept from the real vocabulary (the specials, the bytes and the first merges).
    static let vocabularyCount = 400

    /// Writes every target's seeds under `folder/<target>/`.
    public static func write(modelPath: String, dataDirectory: String, to folder: String) throws {
        guard case let .gguf(ggufPath) = try ModelLoader.resolve(modelPath) else {
            throw KnowTuneError.invalidConfiguration("seeds are cut from a GGUF model; \(modelPath) is not one")
        }
        let source = try GGUFFile(path: ggufPath)
        let (tokens, merges, types) = try trimmedVocabulary(of: source)
        var seeds: [FuzzTarget: [(String, Data)]] = [:]
        seeds[.gguf] = [("seed-tiny-llama.gguf", try tinyModel(source: source, tokens: tokens, merges: merges, types: types)),
                        ("seed-block-types.gguf", try blockTypes(source: source, tokens: tokens, merges: merges, types: types))]
        let tokenizerJSON = try byteLevelTokenizerJSON(tokens: tokens, merges: merges)
        seeds[.tokenizerJSON] = [("seed-byte-level.json", tokenizerJSON + Data([0]) + Data("Hello, world! 123 héllo\n\tdone".utf8)),
                                 ("seed-sentencepiece.json", try sentencePieceTokenizerJSON() + Data([0]) + Data("Hello world".utf8))]
        let records = try dataRecords(dataDirectory)
        seeds[.datasetRecords] = [("seed-array.json", records.array), ("seed-lines.jsonl", records.lines)]
        seeds[.datasetInfo] = [("seed-dataset-info.json", try Data(contentsOf: URL(fileURLWithPath: dataDirectory + "/dataset_info.json")))]
        seeds[.safetensors] = [("seed-adapter.safetensors", try adapterWeights())]
        seeds[.adapter] = [("seed-adapter", Data(#"{"peft_type": "LORA", "r": 2, "lora_alpha": 4, "lora_dropout": 0.0, "target_modules": ["q_proj", "v_proj"], "use_rslora": false}"#.utf8)
                                + Data([0]) + (try adapterWeights()))]
        seeds[.checkpoint] = [("seed-checkpoint", try checkpoint())]
        seeds[.teacherReply] = teacherReplies()
        seeds[.predictions] = [("seed-predictions.jsonl", try predictions(dataDirectory))]
        seeds[.trainingConfiguration] = [("seed-sft.yaml", Data(trainingConfiguration.utf8))]
        let schemaSeeds: [(String, Data)] = [
            ("seed-teacher-rewrite.json", Data(#"{"type": "object", "properties": {"question": {"type": "string"}, "answer": {"type": "string"}}, "required": ["question", "answer"], "additionalProperties": false}"#.utf8) + Data([0]) + Data("steer".utf8)),
            ("seed-response-format.json", Data(#"{"type": "json_schema", "json_schema": {"name": "facts", "schema": {"type": "array", "items": {"type": "string"}, "minItems": 2, "maxItems": 3}, "strict": true}}"#.utf8) + Data([0]) + Data([1, 200, 34, 92])),
            ("seed-mixed.json", Data(#"{"type": "object", "properties": {"n": {"type": "number"}, "i": {"type": "integer"}, "b": {"type": "boolean"}, "e": {"enum": ["x", 1, null]}, "o": {"type": "object"}}, "required": ["n", "e"]}"#.utf8) + Data([0]) + Data("123".utf8)),
        ]
        seeds[.responseSchema] = schemaSeeds
        let chatSeeds: [(String, Data)] = [
            ("seed-chat.json", Data(#"{"model": "m", "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello."}, {"role": "user", "content": "Name a river. END"}], "temperature": 0.5, "top_p": 0.9, "max_tokens": 32, "n": 2, "seed": 3, "stop": ["END", "@@"], "user": "x"}"#.utf8)),
            ("seed-schema.json", Data(#"{"messages": [{"role": "user", "content": [{"type": "text", "text": "List facts."}]}], "stream": true, "response_format": {"type": "json_schema", "json_schema": {"name": "f", "schema": {"type": "object", "properties": {"facts": {"type": "array", "items": {"type": "string"}, "minItems": 1}}, "required": ["facts"], "additionalProperties": false}}}}"#.utf8)),
        ]
        seeds[.chatRequest] = chatSeeds
        for (target, files) in seeds {
            let directory = (folder as NSString).appendingPathComponent(target.rawValue)
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            for (name, bytes) in files {
                try target.check(bytes)  // a seed the parser refuses would teach the fuzzer nothing
                try bytes.write(to: URL(fileURLWithPath: (directory as NSString).appendingPathComponent(name)))
            }
        }
    }

    // MARK: - GGUF

    static func trimmedVocabulary(of file: GGUFFile) throws -> (tokens: [String], merges: [String], types: [Int32]) {
        guard let allTokens = file.metadata["tokenizer.ggml.tokens"]?.arrayValue?.compactMap(\.stringValue),
              let allMerges = file.metadata["tokenizer.ggml.merges"]?.arrayValue?.compactMap(\.stringValue) else {
            throw KnowTuneError.badFormat(path: file.path, reason: "no tokenizer.ggml.tokens/merges to cut seeds from")
        }
        let tokens = Array(allTokens.prefix(vocabularyCount))
        let kept = Set(tokens)
        let merges = allMerges.filter { merge in
            let parts = merge.split(separator: " ", omittingEmptySubsequences: false).map(String.init)
            return parts.count == 2 && kept.contains(parts[0]) && kept.contains(parts[1]) && kept.contains(parts[0] + parts[1])
        }
        let allTypes = file.metadata["tokenizer.ggml.token_type"]?.arrayValue?.compactMap(\.intValue) ?? []
        let types = (0..<tokens.count).map { Int32($0 < allTypes.count ? allTypes[$0] : 1) }
        return (tokens, merges, types)
    }

    static let tiny = LlamaConfiguration(
        vocabularySize: vocabularyCount, hiddenSize: 32, intermediateSize: 64, layerCount: 1, headCount: 4, kvHeadCount: 2,
        rmsNormEpsilon: 1e-5, ropeTheta: 10000, tieWordEmbeddings: true, maxPositionEmbeddings: 64)

    static func metadata(tokens: [String], merges: [String], types: [Int32]) -> [(key: String, value: GGUFValue)] {
        let c = tiny
        return [
            ("general.architecture", .string("llama")), ("general.name", .string("fuzz-seed")),
            ("llama.block_count", .uint32(UInt32(c.layerCount))), ("llama.context_length", .uint32(UInt32(c.maxPositionEmbeddings))),
            ("llama.embedding_length", .uint32(UInt32(c.hiddenSize))), ("llama.feed_forward_length", .uint32(UInt32(c.intermediateSize))),
            ("llama.attention.head_count", .uint32(UInt32(c.headCount))), ("llama.attention.head_count_kv", .uint32(UInt32(c.kvHeadCount))),
            ("llama.rope.freq_base", .float32(10000)), ("llama.attention.layer_norm_rms_epsilon", .float32(1e-5)),
            ("tokenizer.ggml.model", .string("gpt2")), ("tokenizer.ggml.pre", .string("smollm")),
            ("tokenizer.ggml.tokens", .array(tokens.map { .string($0) })), ("tokenizer.ggml.merges", .array(merges.map { .string($0) })),
            ("tokenizer.ggml.token_type", .array(types.map { .int32($0) })),
            ("tokenizer.ggml.bos_token_id", .uint32(1)), ("tokenizer.ggml.eos_token_id", .uint32(2)),
        ]
    }

    /// The first bytes of the first tensor of `type` in `file`: real quantized blocks for `elements` elements.
    static func realBlocks(_ type: GGUFTensorType, elements: Int, from file: GGUFFile) -> Data? {
        guard let geometry = type.blockGeometry, let tensor = file.tensors.first(where: { $0.type == type }),
              tensor.elementCount >= elements, let bytes = try? file.data(of: tensor) else { return nil }
        return Data(bytes.prefix(elements / geometry.elements * geometry.bytes))
    }

    /// Seeded bytes for `elements` elements of `type`, with small finite f16 scales where ggml puts them first.
    static func syntheticBlocks(_ type: GGUFTensorType, elements: Int, seed: UInt64) -> Data {
        guard let geometry = type.blockGeometry else { return Data() }
        var random = SplitMix64(seed: seed)
        var bytes = (0..<(elements / geometry.elements * geometry.bytes)).map { _ in UInt8(truncatingIfNeeded: random.next()) }
        if geometry.elements == 32 {
            for block in stride(from: 0, to: bytes.count, by: geometry.bytes) { bytes[block + 1] = 0x2c }  // f16 scale ≈ 0.06
        }
        return Data(bytes)
    }

    static func tinyModel(source: GGUFFile, tokens: [String], merges: [String], types: [Int32]) throws -> Data {
        let c = tiny
        var writer = GGUFWriter()
        writer.metadata = metadata(tokens: tokens, merges: merges, types: types)
        func matrix(_ name: String, rows: Int, columns: Int, type: GGUFTensorType) -> GGUFWriter.Tensor {
            let bytes = realBlocks(type, elements: rows * columns, from: source)
                ?? syntheticBlocks(type, elements: rows * columns, seed: UInt64(name.utf8.count))
            return GGUFWriter.Tensor(name: name, dimensions: [columns, rows], type: type, rawBytes: bytes)
        }
        let norm = [Float](repeating: 1, count: c.hiddenSize)
        writer.tensors = [
            matrix("token_embd.weight", rows: c.vocabularySize, columns: c.hiddenSize, type: .q8_0),
            .init(name: "output_norm.weight", dimensions: [c.hiddenSize], values: norm),
            .init(name: "blk.0.attn_norm.weight", dimensions: [c.hiddenSize], values: norm),
            .init(name: "blk.0.ffn_norm.weight", dimensions: [c.hiddenSize], values: norm),
        ]
        let names: [ProjectionKind: String] = [.query: "attn_q", .key: "attn_k", .value: "attn_v", .output: "attn_output",
                                               .gate: "ffn_gate", .up: "ffn_up", .down: "ffn_down"]
        for kind in ProjectionKind.allCases {
            let (rows, columns) = kind.shape(c)
            writer.tensors.append(matrix("blk.0.\(names[kind] ?? "?").weight", rows: rows, columns: columns, type: .q4_1))
        }
        return try writer.encoded()
    }

    /// The tiny model plus one 256-element tensor of every block type the dequantizer reads.
    static func blockTypes(source: GGUFFile, tokens: [String], merges: [String], types: [Int32]) throws -> Data {
        var writer = GGUFWriter()
        let model = try GGUFFile(path: try FuzzTarget.file("seed-tiny.gguf", try tinyModel(source: source, tokens: tokens, merges: merges,
                                                                                            types: types)))
        writer.metadata = metadata(tokens: tokens, merges: merges, types: types)
        writer.tensors = try model.tensors.map { tensor in
            GGUFWriter.Tensor(name: tensor.name, dimensions: tensor.dimensions, type: tensor.type, rawBytes: Data(try model.data(of: tensor)))
        }
        for (index, type) in GGUFTensorType.dequantisable.enumerated() where type != .f32 {
            writer.tensors.append(GGUFWriter.Tensor(name: "fuzz.\(type.name.lowercased())", dimensions: [256], type: type,
                                                    rawBytes: syntheticBlocks(type, elements: 256, seed: UInt64(index))))
        }
        return try writer.encoded()
    }

    // MARK: - Tokenizers

    static func byteLevelTokenizerJSON(tokens: [String], merges: [String]) throws -> Data {
        let vocabulary = Dictionary(tokens.enumerated().map { ($1, $0) }, uniquingKeysWith: { first, _ in first })
        let root: [String: Any] = [
            "version": "1.0",
            "added_tokens": [["id": 0, "content": tokens[0], "special": true, "single_word": false, "lstrip": false, "rstrip": false,
                              "normalized": false]],
            "normalizer": NSNull(),
            "pre_tokenizer": ["type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": true],
            "decoder": ["type": "ByteLevel", "add_prefix_space": true, "trim_offsets": true, "use_regex": true],
            "model": ["type": "BPE", "dropout": NSNull(), "unk_token": NSNull(), "continuing_subword_prefix": NSNull(),
                      "end_of_word_suffix": NSNull(), "fuse_unk": false, "byte_fallback": false, "vocab": vocabulary, "merges": merges],
        ]
        return try JSONSerialization.data(withJSONObject: root, options: [.sortedKeys])
    }

    /// A Llama-style (Metaspace, byte fallback) tokenizer.json over a handful of pieces.
    static func sentencePieceTokenizerJSON() throws -> Data {
        var vocabulary: [String: Int] = ["<unk>": 0, "<s>": 1, "</s>": 2]
        for byte in 0..<256 { vocabulary[String(format: "<0x%02X>", byte)] = 3 + byte }
        let pieces = ["▁", "H", "e", "l", "o", "w", "r", "d", "▁H", "el", "lo", "▁w", "or", "ld", "▁Hel", "▁wor", "▁Hello", "▁world"]
        for (index, piece) in pieces.enumerated() { vocabulary[piece] = 259 + index }
        let root: [String: Any] = [
            "version": "1.0",
            "added_tokens": [["id": 0, "content": "<unk>", "special": true, "single_word": false, "lstrip": false, "rstrip": false,
                              "normalized": false]],
            "normalizer": NSNull(),
            "pre_tokenizer": ["type": "Metaspace", "replacement": "▁", "prepend_scheme": "first", "split": false],
            "decoder": ["type": "Sequence", "decoders": [["type": "Replace", "pattern": ["String": "▁"], "content": " "],
                                                         ["type": "ByteFallback"], ["type": "Fuse"],
                                                         ["type": "Strip", "content": " ", "start": 1, "stop": 0]]],
            "model": ["type": "BPE", "dropout": NSNull(), "unk_token": "<unk>", "fuse_unk": true, "byte_fallback": true,
                      "vocab": vocabulary,
                      "merges": ["▁ H", "e l", "l o", "▁ w", "o r", "l d", "▁H el", "▁w or", "▁Hel lo", "▁wor ld"]],
        ]
        return try JSONSerialization.data(withJSONObject: root, options: [.sortedKeys])
    }

    // MARK: - Data, adapter, checkpoint, replies, predictions

    static func dataRecords(_ dataDirectory: String) throws -> (array: Data, lines: Data) {
        let dolly = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: dataDirectory + "/dolly/dolly_train.json")))
        let records = (dolly as? [[String: Any]] ?? []).prefix(3).map { record -> [String: Any] in
            var record = record
            // A [chosen, rejected] list serves both the SFT reading (first answer) and the ranking one.
            let output = (record["output"] as? String) ?? ""
            record["output"] = [output, String(output.prefix(output.count / 2))]
            return record
        }
        let array = try JSONSerialization.data(withJSONObject: Array(records), options: [.sortedKeys])
        let lines = try records.map { String(decoding: try JSONSerialization.data(withJSONObject: $0, options: [.sortedKeys]), as: UTF8.self) }
        return (array, Data(lines.joined(separator: "\n").utf8))
    }

    static func adapterWeights() throws -> Data {
        let layout = LoRALayout(model: FuzzTarget.tinyModel, lora: LoRAConfiguration(rank: 2, alpha: 4, targets: [.query, .value]))
        let buffer = LoRABuffer(layout: layout)
        var random = SplitMix64(seed: 7)
        for i in 0..<buffer.count { buffer.values[i] = Float(Int(random.next() % 200) - 100) / 1000 }
        let path = (FuzzTarget.scratch as NSString).appendingPathComponent("seed-adapter")
        try PEFTAdapter.save(buffer, to: path, baseModel: "fuzz-seed")
        return try Data(contentsOf: URL(fileURLWithPath: (path as NSString).appendingPathComponent(PEFTAdapter.weightsFile)))
    }

    static func checkpoint() throws -> Data {
        var contents = CheckpointContents(attributes: ["format_version": "knowtune-sft-1", "arguments": "{}"])
        contents.tensors["lora"] = CheckpointTensor(shape: [8], values: (0..<8).map { Float($0) / 8 })
        contents.integers["global_step"] = [4]
        contents.doubles["best_metric"] = [2.5]
        let folder = (FuzzTarget.scratch as NSString).appendingPathComponent("seed-checkpoint")
        try CheckpointStore().write(contents, to: folder)
        let sidecar = try Data(contentsOf: URL(fileURLWithPath: folder + "/" + CheckpointStore.sidecarName(CheckpointStore.defaultFileName)))
        return sidecar + Data([0]) + (try Data(contentsOf: URL(fileURLWithPath: folder + "/" + CheckpointStore.defaultFileName)))
    }

    static func teacherReplies() -> [(String, Data)] {
        func completion(_ content: String) -> Data {
            let body: [String: Any] = ["id": "chatcmpl-1", "object": "chat.completion", "model": "seed",
                                       "choices": [["index": 0, "finish_reason": "stop", "message": ["role": "assistant", "content": content]]]]
            return (try? JSONSerialization.data(withJSONObject: body, options: [.sortedKeys])) ?? Data()
        }
        return [
            ("seed-facts.json", completion(#"["Sleep training teaches babies to sleep alone.", "A doctor should be consulted first."]"#)),
            ("seed-pair.json", completion(#"Here it is: {"question": "When should a doctor be consulted?", "answer": "Before sleep training."}"#)),
            ("seed-fenced.json", completion("```json\n[\"Puppies teethe until 5 months.\", \"Frozen toys help.\"]\n```")),
            ("seed-winner.json", completion(#"{"winner": "A"}"#)),
        ]
    }

    static func predictions(_ dataDirectory: String) throws -> Data {
        let dolly = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: dataDirectory + "/dolly/dolly_test.json")))
        let lines = try (dolly as? [[String: Any]] ?? []).prefix(3).map { record -> String in
            let label = (record["output"] as? String) ?? ""
            let line: [String: Any] = ["label": label, "predict": String(label.split(separator: " ").reversed().joined(separator: " "))]
            return String(decoding: try JSONSerialization.data(withJSONObject: line, options: [.sortedKeys]), as: UTF8.self)
        }
        return Data(lines.joined(separator: "\n").utf8)
    }

    // MARK: - Training configuration

    /// The KnowTuning release's SFT stage as a LLaMA-Factory YAML file (a list, a null, booleans, numbers, a comment).
    static let trainingConfiguration = """
        # KnowTuning SFT (LLaMA-Factory 0.5.3 flags)
        stage: sft
        do_train: true
        model_name_or_path: models/smollm2.gguf
        dataset: [dolly_train]
        template: alpaca
        finetuning_type: lora
        lora_target: q_proj,v_proj
        lora_rank: 8
        lora_alpha: 16
        output_dir: "out/sft"
        per_device_train_batch_size: 4
        gradient_accumulation_steps: 4
        lr_scheduler_type: cosine
        learning_rate: 5.0e-5
        num_train_epochs: 3.0
        val_size: 0.1
        evaluation_strategy: steps
        eval_steps: 0.1
        save_steps: 0.1
        load_best_model_at_end: true
        adapter_name_or_path: null
        """

}
