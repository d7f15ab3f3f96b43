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
        // Nine tensors per layer (two norms, seven projections): a block count the tensor table cannot hold is refused
        // before anything is sized by it (found by fuzzing: a crafted block_count of 10^9).
        guard configuration.layerCount <= file.tensors.count / 9 else {
            throw KnowTuneError.badFormat(path: file.path, reason: "\(arch).block_count \(configuration.layerCount) needs "
                + "\(configuration.layerCount) × 9 layer tensors; the file has \(file.tensors.count) tensors")
        }
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

    /// One tensor the model reads: its GGUF name, HF name and shape, and the rotary heads to un-permute.
    struct TensorSlot {
        let name: String
        let hfName: String
        let rows: Int
        let columns: Int
        var unpermuteHeads: Int?

        /// ggml order: a [out, in] matrix is stored as [in, out].
        var ggufShape: [Int] { columns == 1 ? [rows] : [columns, rows] }
    }

    /// The slots by HF name; built once per load and handed to each tensor's read or copy.
    static func slots(_ c: LlamaConfiguration) -> [String: TensorSlot] {
        var slots = [
            TensorSlot(name: "token_embd.weight", hfName: LlamaTensorName.embedding, rows: c.vocabularySize, columns: c.hiddenSize),
            TensorSlot(name: "output_norm.weight", hfName: LlamaTensorName.finalNorm, rows: c.hiddenSize, columns: 1),
        ]
        if !c.tieWordEmbeddings {
            slots.append(TensorSlot(name: "output.weight", hfName: LlamaTensorName.lmHead, rows: c.vocabularySize, columns: c.hiddenSize))
        }
        for layer in 0..<c.layerCount {
            slots.append(TensorSlot(name: "blk.\(layer).attn_norm.weight", hfName: LlamaTensorName.attentionNorm(layer),
                                    rows: c.hiddenSize, columns: 1))
            slots.append(TensorSlot(name: "blk.\(layer).ffn_norm.weight", hfName: LlamaTensorName.feedForwardNorm(layer),
                                    rows: c.hiddenSize, columns: 1))
            for kind in ProjectionKind.allCases {
                let (outFeatures, inFeatures) = kind.shape(c)
                slots.append(TensorSlot(name: "blk.\(layer).\(GGUFModelWriter.projectionNames[kind] ?? "?").weight",
                                        hfName: LlamaTensorName.projection(layer, kind), rows: outFeatures, columns: inFeatures,
                                        unpermuteHeads: kind == .query ? c.headCount : (kind == .key ? c.kvHeadCount : nil)))
            }
        }
        return Dictionary(uniqueKeysWithValues: slots.map { ($0.hfName, $0) })
    }

    /// Checks every tensor's presence and shape against the file's tensor table, before anything is sized by the
    /// configuration (GGUFFile checked that each tensor's bytes lie inside the file).
    public static func checkTensors(of file: GGUFFile, configuration c: LlamaConfiguration) throws {
        for slot in slots(c).values.sorted(by: { $0.name < $1.name }) {
            let info = try file.tensor(named: slot.name)
            guard info.dimensions == slot.ggufShape else {
                throw KnowTuneError.badFormat(path: file.path, reason: "tensor \(slot.name) has shape \(info.dimensions), expected \(slot.ggufShape)")
            }
        }
    }

    /// Each HF tensor's encoding in the file, for the types KnowTune computes with.
    public static func sourceEncodings(of file: GGUFFile, configuration c: LlamaConfiguration) -> [String: WeightEncoding] {
        slots(c).compactMapValues { slot in file.tensorsByName[slot.name].flatMap { WeightEncoding(ggmlTypeCode: $0.type.rawValue) } }
    }

    /// Dequantises every tensor into a new LlamaWeights (fp32).
    public static func weights(of file: GGUFFile, configuration c: LlamaConfiguration) throws -> LlamaWeights {
        try checkTensors(of: file, configuration: c)
        let weights = LlamaWeights(configuration: c)
        let slots = slots(c)
        for tensor in weights.namedTensors() {
            try read(tensor.name, from: file, slots: slots, into: tensor.pointer)
        }
        return weights
    }

    /// HF tensor `name` as fp32, in HF row order.
    static func read(_ name: String, from file: GGUFFile, slots: [String: TensorSlot],
                     into destination: UnsafeMutablePointer<Float>) throws {
        guard let slot = slots[name] else { throw KnowTuneError.badFormat(path: file.path, reason: "no GGUF tensor for \(name)") }
        let info = try file.tensor(named: slot.name)
        guard let heads = slot.unpermuteHeads else {
            try GGUFDequantizer.dequantise(info, in: file, into: destination)
            return
        }
        let scratch = UnsafeMutablePointer<Float>.allocate(capacity: slot.rows * slot.columns)
        defer { scratch.deallocate() }
        try GGUFDequantizer.dequantise(info, in: file, into: scratch)
        unpermuteRotaryRows(from: UnsafeRawPointer(scratch), into: UnsafeMutableRawPointer(destination), rows: slot.rows,
                            rowBytes: slot.columns * 4, heads: heads)
    }

    /// HF tensor `name` copied as stored (its blocks unchanged), in HF row order; the caller checked that the file
    /// holds it in a type KnowTune computes with (`sourceEncodings`).
    static func copyStored(_ name: String, from file: GGUFFile, slots: [String: TensorSlot],
                           into destination: UnsafeMutableRawPointer) throws {
        guard let slot = slots[name] else { throw KnowTuneError.badFormat(path: file.path, reason: "no GGUF tensor for \(name)") }
        let info = try file.tensor(named: slot.name)
        let bytes = try file.data(of: info)
        guard let heads = slot.unpermuteHeads else {
            destination.copyMemory(from: bytes.baseAddress!, byteCount: bytes.count)
            return
        }
        unpermuteRotaryRows(from: bytes.baseAddress!, into: destination, rows: slot.rows, rowBytes: bytes.count / slot.rows,
                            heads: heads)
    }

    /// llama.cpp's converter interleaves the two rotary halves of each head's rows (row h·D + 2i + j holds HF row
    /// h·D + j·D/2 + i); HF's GGUF loader undoes it, and so do we, so that LoRA tensors keep PEFT's row order.
    /// Rows are moved whole, so this holds for quantized rows (whole blocks) as for fp32 ones.
    static func unpermuteRotaryRows(from source: UnsafeRawPointer, into destination: UnsafeMutableRawPointer,
                                    rows: Int, rowBytes: Int, heads: Int) {
        let headDimension = rows / heads
        let half = headDimension / 2
        for head in 0..<heads {
            for i in 0..<half {
                for j in 0..<2 {
                    let ggufRow = head * headDimension + 2 * i + j
                    let hfRow = head * headDimension + j * half + i
                    (destination + hfRow * rowBytes).copyMemory(from: source + ggufRow * rowBytes, byteCount: rowBytes)
                }
            }
        }
    }
}
