// Implements random, seeded LLaMA models of named shapes (Llama-2 7B and 13B, and a small one for tests) written as
// GGUF without ever being held: each tensor is generated and encoded a chunk of rows at a time and streamed to the
// file, so a 7B model costs a few MiB of memory to write. The vocabulary is SentencePiece-style (unknown, BOS, EOS,
// 256 byte-fallback pieces, then pieces grown one character at a time with falling scores, so that every piece is a
// merge of two others). For benchmarks of model sizes a CPU machine cannot download; does not train.
import Foundation
import KnowTuneTensor

public enum SyntheticModel {
    public struct Shape {
        public let name: String
        public let configuration: LlamaConfiguration
    }

    /// The named shapes: Llama-2's published configurations, and `tiny-llama` (hidden 256, intermediate 768) for tests.
    public static let shapes: [Shape] = [
        shape("llama2-7b", layers: 32, hidden: 4096, intermediate: 11008, heads: 32),
        shape("llama2-13b", layers: 40, hidden: 5120, intermediate: 13824, heads: 40),
        shape("tiny-llama", layers: 2, hidden: 256, intermediate: 768, heads: 4),
    ]

    private static func shape(_ name: String, layers: Int, hidden: Int, intermediate: Int, heads: Int) -> Shape {
        Shape(name: name, configuration: LlamaConfiguration(
            vocabularySize: 32000, hiddenSize: hidden, intermediateSize: intermediate, layerCount: layers, headCount: heads,
            kvHeadCount: heads, rmsNormEpsilon: 1e-5, ropeTheta: 10000, tieWordEmbeddings: false, maxPositionEmbeddings: 4096,
            bosTokenId: 1, eosTokenId: 2))
    }

    /// The encodings a synthetic model's matrices can be written in.
    public static let matrixEncodings: [WeightEncoding] = [.q8_0, .q4_0, .q4_K, .f16]

    /// The shape named `name`, with `layers` layers when given.
    public static func configuration(named name: String, layers: Int? = nil) throws -> LlamaConfiguration {
        guard let shape = shapes.first(where: { $0.name == name }) else {
            throw KnowTuneError.unsupported(what: "model shape \(name)", supported: shapes.map(\.name).joined(separator: ", "))
        }
        guard let layers else { return shape.configuration }
        guard layers >= 1 else { throw KnowTuneError.invalidConfiguration("--layers must be at least 1") }
        let c = shape.configuration
        return LlamaConfiguration(vocabularySize: c.vocabularySize, hiddenSize: c.hiddenSize, intermediateSize: c.intermediateSize,
                                  layerCount: layers, headCount: c.headCount, kvHeadCount: c.kvHeadCount,
                                  rmsNormEpsilon: c.rmsNormEpsilon, ropeTheta: c.ropeTheta, tieWordEmbeddings: c.tieWordEmbeddings,
                                  maxPositionEmbeddings: c.maxPositionEmbeddings, bosTokenId: c.bosTokenId, eosTokenId: c.eosTokenId)
    }

    /// The SentencePiece-style vocabulary of `size` pieces as GGUF tokenizer metadata.
    public static func tokenizerMetadata(size: Int) -> [(key: String, value: GGUFValue)] {
        var tokens = ["<unk>", "<s>", "</s>"], types: [Int32] = [2, 3, 3]
        for byte in 0..<256 {
            tokens.append(String(format: "<0x%02X>", byte))
            types.append(6)
        }
        // Characters first, then every piece extended by one lowercase letter, in order: each new piece is the merge
        // of an existing piece and a character.
        let characters = ["▁"] + (UnicodeScalar("a").value...UnicodeScalar("z").value).map { String(UnicodeScalar($0)!) }
            + (UnicodeScalar("A").value...UnicodeScalar("Z").value).map { String(UnicodeScalar($0)!) }
            + (0...9).map(String.init) + [".", ",", "!", "?", ":", ";", "'", "\"", "-", "(", ")", "/"]
        var pieces = characters, known = Set(characters), cursor = 0
        let extensions = Array(characters[1...26])
        while tokens.count + pieces.count < size, cursor < pieces.count {
            for letter in extensions where tokens.count + pieces.count < size {
                let piece = pieces[cursor] + letter
                if known.insert(piece).inserted { pieces.append(piece) }
            }
            cursor += 1
        }
        let normalStart = tokens.count
        tokens += pieces
        types += [Int32](repeating: 1, count: pieces.count)
        let scores = tokens.indices.map { index in index < normalStart ? Float(0) : -Float(index - normalStart) }
        return [
            ("tokenizer.ggml.model", .string("llama")),
            ("tokenizer.ggml.tokens", .array(tokens.map { .string($0) })),
            ("tokenizer.ggml.scores", .array(scores.map { .float32($0) })),
            ("tokenizer.ggml.token_type", .array(types.map { .int32($0) })),
            ("tokenizer.ggml.unknown_token_id", .uint32(0)), ("tokenizer.ggml.bos_token_id", .uint32(1)),
            ("tokenizer.ggml.eos_token_id", .uint32(2)), ("tokenizer.ggml.add_space_prefix", .bool(true)),
        ]
    }

    /// Writes a random model of `c` to `path`: matrices uniform with standard deviation 0.02 in `encoding`, norms
    /// 1 ± 0.1 in F32, each tensor from its own seeded stream. Returns the file's size in bytes.
    @discardableResult
    public static func write(_ c: LlamaConfiguration, name: String, encoding: WeightEncoding, seed: UInt64, to path: String) throws -> Int {
        guard matrixEncodings.contains(encoding), let type = GGUFTensorType(rawValue: encoding.quantType.map(UInt32.init) ?? 1) else {
            throw KnowTuneError.unsupported(what: "model type \(encoding.rawValue)", supported: matrixEncodings.map(\.rawValue).joined(separator: ", "))
        }
        guard encoding.fits(rowLength: c.hiddenSize), encoding.fits(rowLength: c.intermediateSize) else {
            throw KnowTuneError.invalidConfiguration("rows of \(c.hiddenSize) and \(c.intermediateSize) are not whole \(encoding.rawValue) blocks")
        }
        // (GGUF name, rows, row length; 1 row of C for a norm)
        var tensors: [(name: String, rows: Int, columns: Int)] = [("token_embd.weight", c.vocabularySize, c.hiddenSize)]
        for layer in 0..<c.layerCount {
            tensors.append(("blk.\(layer).attn_norm.weight", 1, c.hiddenSize))
            tensors.append(("blk.\(layer).ffn_norm.weight", 1, c.hiddenSize))
            for kind in ProjectionKind.allCases {
                let (outFeatures, inFeatures) = kind.shape(c)
                tensors.append(("blk.\(layer).\(GGUFModelWriter.projectionNames[kind] ?? "?").weight", outFeatures, inFeatures))
            }
        }
        tensors.append(("output_norm.weight", 1, c.hiddenSize))
        if !c.tieWordEmbeddings { tensors.append(("output.weight", c.vocabularySize, c.hiddenSize)) }

        var writer = GGUFWriter()
        writer.metadata = GGUFModelWriter.llamaMetadata(c, name: name, fileType: UInt32(type.rawValue))
            + tokenizerMetadata(size: c.vocabularySize)
        writer.tensors = tensors.map { tensor in
            tensor.rows == 1 ? .init(name: tensor.name, dimensions: [tensor.columns], streamedAs: .f32)
                : .init(name: tensor.name, dimensions: [tensor.columns, tensor.rows], streamedAs: type)
        }
        let chunkRows = { (columns: Int) in max(1, (1 << 20) / columns) }
        let largestChunk = tensors.map { min($0.rows, chunkRows($0.columns)) * $0.columns }.max() ?? 1
        let floats = UnsafeMutablePointer<Float>.allocate(capacity: largestChunk)
        let encoded = UnsafeMutableRawPointer.allocate(byteCount: largestChunk * 4, alignment: 64)
        defer { floats.deallocate(); encoded.deallocate() }
        let amplitude = Float(0.02 * 3.0.squareRoot())  // uniform(−a, a) has standard deviation a/√3
        try writer.write(to: path) { index, write in
            let tensor = tensors[index]
            let isNorm = tensor.rows == 1
            var hash = FNV1a64()
            for byte in tensor.name.utf8 { hash.combine(byte: byte) }
            var generator = SplitMix64(seed: seed ^ hash.value)
            let tensorEncoding: WeightEncoding = isNorm ? .fp32 : encoding
            var row = 0
            while row < tensor.rows {
                let count = min(chunkRows(tensor.columns), tensor.rows - row) * tensor.columns
                for i in 0..<count {
                    let u = 2 * generator.nextUnitFloat() - 1
                    floats[i] = isNorm ? 1 + 0.1 * u : amplitude * u
                }
                tensorEncoding.encode(floats, count: count, into: encoded)
                try write(encoded, tensorEncoding.byteCount(elements: count))
                row += count / tensor.columns
            }
        }
        return (try FileManager.default.attributesOfItem(atPath: path)[.size] as? Int) ?? 0
    }
}
