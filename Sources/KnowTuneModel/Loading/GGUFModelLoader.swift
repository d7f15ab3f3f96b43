// Implements building LlamaWeights and LlamaConfiguration from a GGUF file (llama.cpp tensor names, Q/K rows
// un-permuted back to HF order) and choosing its tokenizer by `tokenizer.ggml.model`; does not parse the file format
// (GGUFFile) or the tokenizer metadata (the tokenizers do).
import Foundation
import KnowTuneTensor

public enum GGUFModelLoader {
    /// The configuration from `{arch}.*` metadata; errors name the missing key.
    public static func configuration(of file: GGUFFile) throws -> LlamaConfiguration {
        let arch = file.metadata["general.architecture"]?.stringValue ?? "?"
        let supported = ["llama", "mistral"]
        guard supported.contains(arch) else {
            throw KnowTuneError.unsupported(what: "GGUF architecture '\(arch)' in \(file.path)", supported: supported.joined(separator: ", "))
        }
        func int(_ key: String) throws -> Int {
            guard let v = file.metadata["\(arch).\(key)"]?.intValue else {
                throw KnowTuneError.badFormat(path: file.path, reason: "metadata key \(arch).\(key) is missing")
            }
            return v
        }
        let hidden = try int("embedding_length")
        let heads = try int("attention.head_count")
        let vocab = file.metadata["\(arch).vocab_size"]?.intValue
            ?? file.metadata["tokenizer.ggml.tokens"]?.arrayValue?.count
            ?? file.tensorsByName["token_embd.weight"]?.dimensions.last ?? 0
        let configuration = LlamaConfiguration(
            vocabularySize: vocab, hiddenSize: hidden, intermediateSize: try int("feed_forward_length"),
            layerCount: try int("block_count"), headCount: heads,
            kvHeadCount: file.metadata["\(arch).attention.head_count_kv"]?.intValue ?? heads,
            rmsNormEpsilon: Float(file.metadata["\(arch).attention.layer_norm_rms_epsilon"]?.doubleValue ?? 1e-5),
            ropeTheta: file.metadata["\(arch).rope.freq_base"]?.doubleValue ?? 10000,
            tieWordEmbeddings: file.tensorsByName["output.weight"] == nil,
            maxPositionEmbeddings: file.metadata["\(arch).context_length"]?.intValue ?? 2048,
            bosTokenId: file.metadata["tokenizer.ggml.bos_token_id"]?.intValue,
            eosTokenId: file.metadata["tokenizer.ggml.eos_token_id"]?.intValue)
        try configuration.validate(source: file.path)
        return configuration
    }

    /// The tokenizer that `tokenizer.ggml.model` names: `gpt2` (byte-level BPE) or `llama` (SentencePiece BPE).
    public static func tokenizer(of file: GGUFFile) throws -> any Tokenizer {
        let model = file.metadata["tokenizer.ggml.model"]?.stringValue
        switch model {
        case "gpt2": return try ByteLevelBPETokenizer(gguf: file.metadata)
        case "llama": return try SentencePieceBPETokenizer(gguf: file.metadata)
        default:
            throw KnowTuneError.unsupported(
                what: "tokenizer model '\(model ?? "(none)")' in \(file.path)", supported: ModelLoader.supportedTokenizers)
        }
    }

    /// Dequantises every tensor into a new LlamaWeights.
    public static func weights(of file: GGUFFile, configuration c: LlamaConfiguration) throws -> LlamaWeights {
        let weights = LlamaWeights(configuration: c)
        func load(_ name: String, rows: Int, columns: Int, into destination: UnsafeMutablePointer<Float>,
                  unpermuteHeads: Int? = nil) throws {
            let info = try file.tensor(named: name)
            let expected = columns == 1 ? [rows] : [columns, rows]
            guard info.dimensions == expected else {
                throw KnowTuneError.badFormat(path: file.path, reason: "tensor \(name) has shape \(info.dimensions), expected \(expected)")
            }
            guard let heads = unpermuteHeads else {
                try GGUFDequantizer.dequantise(info, in: file, into: destination)
                return
            }
            let scratch = UnsafeMutablePointer<Float>.allocate(capacity: rows * columns)
            defer { scratch.deallocate() }
            try GGUFDequantizer.dequantise(info, in: file, into: scratch)
            unpermuteRotaryRows(from: scratch, into: destination, rows: rows, columns: columns, heads: heads)
        }
        try load("token_embd.weight", rows: c.vocabularySize, columns: c.hiddenSize, into: weights.embedding)
        try load("output_norm.weight", rows: c.hiddenSize, columns: 1, into: weights.finalNorm)
        if !c.tieWordEmbeddings {
            try load("output.weight", rows: c.vocabularySize, columns: c.hiddenSize, into: weights.lmHead)
        }
        let ggufNames: [ProjectionKind: String] = [
            .query: "attn_q", .key: "attn_k", .value: "attn_v", .output: "attn_output",
            .gate: "ffn_gate", .up: "ffn_up", .down: "ffn_down",
        ]
        for layer in 0..<c.layerCount {
            try load("blk.\(layer).attn_norm.weight", rows: c.hiddenSize, columns: 1, into: weights.attentionNorm(layer))
            try load("blk.\(layer).ffn_norm.weight", rows: c.hiddenSize, columns: 1, into: weights.feedForwardNorm(layer))
            for kind in ProjectionKind.allCases {
                let (outFeatures, inFeatures) = kind.shape(c)
                let heads: Int? = kind == .query ? c.headCount : (kind == .key ? c.kvHeadCount : nil)
                try load("blk.\(layer).\(ggufNames[kind] ?? "?").weight", rows: outFeatures, columns: inFeatures,
                         into: weights.projection(layer, kind), unpermuteHeads: heads)
            }
        }
        return weights
    }

    /// llama.cpp's converter interleaves the two rotary halves of each head's rows (row h·D + 2i + j holds HF row
    /// h·D + j·D/2 + i); HF's GGUF loader undoes it, and so do we, so that LoRA tensors keep PEFT's row order.
    static func unpermuteRotaryRows(from source: UnsafePointer<Float>, into destination: UnsafeMutablePointer<Float>,
                                    rows: Int, columns: Int, heads: Int) {
        let headDimension = rows / heads
        let half = headDimension / 2
        for head in 0..<heads {
            for i in 0..<half {
                for j in 0..<2 {
                    let ggufRow = head * headDimension + 2 * i + j
                    let hfRow = head * headDimension + j * half + i
                    (destination + hfRow * columns).update(from: source + ggufRow * columns, count: columns)
                }
            }
        }
    }
}
