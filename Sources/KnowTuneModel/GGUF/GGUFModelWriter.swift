// Implements writing LlamaWeights as a llama.cpp-style GGUF (llama.* metadata, llama.cpp tensor names, Q/K rows
// permuted to llama.cpp's interleaved rotary layout) with a given tokenizer metadata block; does not quantise.
import Foundation
import KnowTuneTensor

public enum GGUFModelWriter {
    /// The tokenizer.* metadata of a GGUF file, to carry over into another.
    public static func tokenizerMetadata(of file: GGUFFile) -> [(key: String, value: GGUFValue)] {
        file.metadata.keys.filter { $0.hasPrefix("tokenizer.") }.sorted().compactMap { key in
            file.metadata[key].map { (key, $0) }
        }
    }

    public static func write(_ weights: LlamaWeights, tokenizerMetadata: [(key: String, value: GGUFValue)], name: String,
                             type: GGUFTensorType = .f32, to path: String) throws {
        let c = weights.configuration
        var writer = GGUFWriter()
        writer.metadata = llamaMetadata(c, name: name, fileType: type == .f16 ? 1 : 0) + tokenizerMetadata
        func values(_ pointer: UnsafeMutablePointer<Float>, _ count: Int) -> [Float] { Array(UnsafeBufferPointer(start: pointer, count: count)) }
        // Norms stay F32 (llama.cpp convention); matrices take the requested type.
        writer.tensors.append(.init(name: "token_embd.weight", dimensions: [c.hiddenSize, c.vocabularySize], type: type,
                                    values: values(weights.embedding, c.vocabularySize * c.hiddenSize)))
        for layer in 0..<c.layerCount {
            writer.tensors.append(.init(name: "blk.\(layer).attn_norm.weight", dimensions: [c.hiddenSize], values: values(weights.attentionNorm(layer), c.hiddenSize)))
            writer.tensors.append(.init(name: "blk.\(layer).ffn_norm.weight", dimensions: [c.hiddenSize], values: values(weights.feedForwardNorm(layer), c.hiddenSize)))
            for kind in ProjectionKind.allCases {
                let (outFeatures, inFeatures) = kind.shape(c)
                var matrix = values(weights.projection(layer, kind), outFeatures * inFeatures)
                if kind == .query || kind == .key {
                    matrix = permuteRotaryRows(matrix, rows: outFeatures, columns: inFeatures, heads: kind == .query ? c.headCount : c.kvHeadCount)
                }
                writer.tensors.append(.init(name: "blk.\(layer).\(projectionNames[kind] ?? "?").weight", dimensions: [inFeatures, outFeatures],
                                            type: type, values: matrix))
            }
        }
        writer.tensors.append(.init(name: "output_norm.weight", dimensions: [c.hiddenSize], values: values(weights.finalNorm, c.hiddenSize)))
        if !c.tieWordEmbeddings {
            writer.tensors.append(.init(name: "output.weight", dimensions: [c.hiddenSize, c.vocabularySize], type: type,
                                        values: values(weights.lmHead, c.vocabularySize * c.hiddenSize)))
        }
        try writer.write(to: path)
    }

    /// llama.cpp's tensor name stem of each projection (`blk.N.<stem>.weight`).
    public static let projectionNames: [ProjectionKind: String] = [
        .query: "attn_q", .key: "attn_k", .value: "attn_v", .output: "attn_output", .gate: "ffn_gate", .up: "ffn_up", .down: "ffn_down",
    ]

    /// The `general.*` and `llama.*` metadata of a model of configuration `c`.
    public static func llamaMetadata(_ c: LlamaConfiguration, name: String, fileType: UInt32) -> [(key: String, value: GGUFValue)] {
        [
            ("general.architecture", .string("llama")), ("general.name", .string(name)),
            ("llama.block_count", .uint32(UInt32(c.layerCount))), ("llama.context_length", .uint32(UInt32(c.maxPositionEmbeddings))),
            ("llama.embedding_length", .uint32(UInt32(c.hiddenSize))), ("llama.feed_forward_length", .uint32(UInt32(c.intermediateSize))),
            ("llama.attention.head_count", .uint32(UInt32(c.headCount))), ("llama.attention.head_count_kv", .uint32(UInt32(c.kvHeadCount))),
            ("llama.rope.freq_base", .float32(Float(c.ropeTheta))), ("llama.rope.dimension_count", .uint32(UInt32(c.headDimension))),
            ("llama.attention.layer_norm_rms_epsilon", .float32(c.rmsNormEpsilon)), ("llama.vocab_size", .uint32(UInt32(c.vocabularySize))),
            ("general.file_type", .uint32(fileType)),
        ]
    }

    /// The inverse of `GGUFModelLoader.unpermuteRotaryRows`: HF row h·D + j·D/2 + i goes to h·D + 2i + j.
    static func permuteRotaryRows(_ matrix: [Float], rows: Int, columns: Int, heads: Int) -> [Float] {
        var result = matrix
        let headDimension = rows / heads, half = headDimension / 2
        for head in 0..<heads {
            for i in 0..<half {
                for j in 0..<2 {
                    let hfRow = head * headDimension + j * half + i
                    let ggufRow = head * headDimension + 2 * i + j
                    for column in 0..<columns { result[ggufRow * columns + column] = matrix[hfRow * columns + column] }
                }
            }
        }
        return result
    }
}
