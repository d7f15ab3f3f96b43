// Implements writing a (merged) model for other tools: an HF folder (config.json, model.safetensors, tokenizer
// files) that transformers loads, and a llama.cpp-style F32/F16 GGUF; does not merge (LoRAMerger) or quantise.
import Foundation
import KnowTuneTensor

public enum ModelExporter {
    /// HF `LlamaConfig` JSON for `configuration`.
    static func configJSON(_ c: LlamaConfiguration) -> [String: Any] {
        [
            "architectures": ["LlamaForCausalLM"], "model_type": "llama", "vocab_size": c.vocabularySize,
            "hidden_size": c.hiddenSize, "intermediate_size": c.intermediateSize, "num_hidden_layers": c.layerCount,
            "num_attention_heads": c.headCount, "num_key_value_heads": c.kvHeadCount, "rms_norm_eps": c.rmsNormEpsilon,
            "rope_theta": c.ropeTheta, "tie_word_embeddings": c.tieWordEmbeddings, "max_position_embeddings": c.maxPositionEmbeddings,
            "hidden_act": "silu", "torch_dtype": "float32", "attention_bias": false, "mlp_bias": false,
            "bos_token_id": c.bosTokenId.map { $0 as Any } ?? NSNull(), "eos_token_id": c.eosTokenId.map { $0 as Any } ?? NSNull(),
        ]
    }

    /// Writes `folder/` with config.json, model.safetensors and the tokenizer of `source` (copied from an HF folder,
    /// or rebuilt as an HF `tokenizer.json` from a GGUF's byte-level BPE vocabulary).
    public static func exportHuggingFace(weights: LlamaWeights, source: String, to folder: String) throws {
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        let config = try JSONSerialization.data(withJSONObject: configJSON(weights.configuration), options: [.prettyPrinted, .sortedKeys])
        try config.write(to: URL(fileURLWithPath: (folder as NSString).appendingPathComponent("config.json")))
        let tensors = weights.namedTensors().map { tensor in
            (name: tensor.name, shape: tensor.shape,
             values: UnsafeBufferPointer(start: UnsafePointer(tensor.pointer), count: tensor.shape.reduce(1, *)))
        }
        try SafeTensorsWriter.write(tensors, to: (folder as NSString).appendingPathComponent("model.safetensors"))
        switch try ModelLoader.resolve(source) {
        case let .huggingFace(sourceFolder):
            for name in ["tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "tokenizer.model", "generation_config.json"] {
                let from = (sourceFolder as NSString).appendingPathComponent(name)
                let to = (folder as NSString).appendingPathComponent(name)
                if FileManager.default.fileExists(atPath: from) {
                    try? FileManager.default.removeItem(atPath: to)
                    try FileManager.default.copyItem(atPath: from, toPath: to)
                }
            }
        case let .gguf(file):
            try writeTokenizerFiles(from: try GGUFFile(path: file), to: folder)
        }
    }

    /// An HF fast-tokenizer description of a GGUF `gpt2` vocabulary: BPE with ByteLevel pre-tokenizer and decoder,
    /// control/user-defined tokens as added special tokens.
    static func writeTokenizerFiles(from file: GGUFFile, to folder: String) throws {
        guard file.metadata["tokenizer.ggml.model"]?.stringValue == "gpt2",
              let tokens = file.metadata["tokenizer.ggml.tokens"]?.stringArray,
              let merges = file.metadata["tokenizer.ggml.merges"]?.stringArray else {
            throw KnowTuneError.unsupported(what: "exporting the tokenizer of \(file.path)", supported: "GGUF byte-level BPE (gpt2)")
        }
        let types = file.metadata["tokenizer.ggml.token_type"]?.intArray ?? []
        var vocabulary: [String: Int] = [:]
        for (id, token) in tokens.enumerated() { vocabulary[token] = id }
        let added: [[String: Any]] = tokens.indices.filter { $0 < types.count && (types[$0] == 3 || types[$0] == 4) }.map { id in
            ["id": id, "content": tokens[id], "single_word": false, "lstrip": false, "rstrip": false, "normalized": false, "special": true]
        }
        let tokenizer: [String: Any] = [
            "version": "1.0", "truncation": NSNull(), "padding": NSNull(), "added_tokens": added, "normalizer": NSNull(),
            "pre_tokenizer": ["type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": true],
            "post_processor": ["type": "ByteLevel", "add_prefix_space": true, "trim_offsets": false, "use_regex": true],
            "decoder": ["type": "ByteLevel", "add_prefix_space": true, "trim_offsets": true, "use_regex": true],
            "model": ["type": "BPE", "dropout": NSNull(), "unk_token": NSNull(), "continuing_subword_prefix": NSNull(),
                      "end_of_word_suffix": NSNull(), "fuse_unk": false, "byte_fallback": false, "ignore_merges": false,
                      "vocab": vocabulary, "merges": merges],
        ]
        func name(_ key: String) -> Any {
            guard let id = file.metadata[key]?.intValue, id >= 0, id < tokens.count else { return NSNull() }
            return tokens[id]
        }
        let config: [String: Any] = [
            "tokenizer_class": "PreTrainedTokenizerFast", "model_max_length": file.metadata["llama.context_length"]?.intValue ?? 2048,
            "bos_token": name("tokenizer.ggml.bos_token_id"), "eos_token": name("tokenizer.ggml.eos_token_id"),
            "pad_token": name("tokenizer.ggml.padding_token_id"), "unk_token": name("tokenizer.ggml.unknown_token_id"),
            "add_bos_token": file.metadata["tokenizer.ggml.add_bos_token"]?.boolValue ?? false, "clean_up_tokenization_spaces": false,
            "chat_template": file.metadata["tokenizer.chat_template"]?.stringValue.map { $0 as Any } ?? NSNull(),
        ]
        for (object, fileName) in [(tokenizer, "tokenizer.json"), (config, "tokenizer_config.json")] {
            let data = try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])
            try data.write(to: URL(fileURLWithPath: (folder as NSString).appendingPathComponent(fileName)))
        }
    }

    /// Writes an F32 or F16 GGUF that llama.cpp can run, with the source's tokenizer metadata (GGUF sources only).
    public static func exportGGUF(weights: LlamaWeights, source: String, type: GGUFTensorType, to path: String) throws {
        guard case let .gguf(file) = try ModelLoader.resolve(source) else {
            throw KnowTuneError.unsupported(what: "GGUF export from the HF folder \(source) (its tokenizer would need converting)",
                                            supported: "GGUF sources; use the HF export for HF sources")
        }
        let gguf = try GGUFFile(path: file)
        try GGUFModelWriter.write(weights, tokenizerMetadata: GGUFModelWriter.tokenizerMetadata(of: gguf),
                                  name: (path as NSString).lastPathComponent, type: type, to: path)
    }
}
