// Implements the frozen base weights of a LLaMA decoder as one flat fp32 buffer with named views (HF layout:
// each projection is [out, in] row-major); does not load files (the loaders fill it) or compute.
import Foundation
import KnowTuneTensor
#if canImport(Glibc)
import Glibc
#endif

/// The kinds of linear projection in a decoder layer, in PEFT's target-module names.
public enum ProjectionKind: Int, CaseIterable, Codable {
    case query = 0, key, value, output, gate, up, down

    /// PEFT / HF module name (`q_proj` …).
    public var moduleName: String {
        ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"][rawValue]
    }

    /// The HF parent module (`self_attn` or `mlp`).
    public var parentModule: String { rawValue < 4 ? "self_attn" : "mlp" }

    public init?(moduleName: String) {
        guard let kind = ProjectionKind.allCases.first(where: { $0.moduleName == moduleName }) else { return nil }
        self = kind
    }

    /// (out, in) features of this projection.
    public func shape(_ c: LlamaConfiguration) -> (outFeatures: Int, inFeatures: Int) {
        switch self {
        case .query, .output: return (c.hiddenSize, c.hiddenSize)
        case .key, .value: return (c.kvDimension, c.hiddenSize)
        case .gate, .up: return (c.intermediateSize, c.hiddenSize)
        case .down: return (c.hiddenSize, c.intermediateSize)
        }
    }
}

/// HF tensor names for the base model, from one place (style rule 5).
public enum LlamaTensorName {
    public static let embedding = "model.embed_tokens.weight"
    public static let finalNorm = "model.norm.weight"
    public static let lmHead = "lm_head.weight"
    public static func attentionNorm(_ layer: Int) -> String { "model.layers.\(layer).input_layernorm.weight" }
    public static func feedForwardNorm(_ layer: Int) -> String { "model.layers.\(layer).post_attention_layernorm.weight" }
    public static func projection(_ layer: Int, _ kind: ProjectionKind) -> String {
        "model.layers.\(layer).\(kind.parentModule).\(kind.moduleName).weight"
    }
}

/// Offsets of each weight in the flat buffer.
public struct LlamaWeightLayout {
    public let configuration: LlamaConfiguration
    public let embedding: Int
    public let finalNorm: Int
    public let lmHead: Int
    public let attentionNorm: [Int]
    public let feedForwardNorm: [Int]
    /// projections[layer][kind.rawValue]
    public let projections: [[Int]]
    public let totalCount: Int

    public init(_ c: LlamaConfiguration) {
        configuration = c
        var cursor = 0
        func take(_ n: Int) -> Int { defer { cursor += n }; return cursor }
        embedding = take(c.vocabularySize * c.hiddenSize)
        var attentionNorm: [Int] = [], feedForwardNorm: [Int] = [], projections: [[Int]] = []
        for _ in 0..<c.layerCount {
            attentionNorm.append(take(c.hiddenSize))
            feedForwardNorm.append(take(c.hiddenSize))
            projections.append(ProjectionKind.allCases.map { kind in
                let (o, i) = kind.shape(c)
                return take(o * i)
            })
        }
        self.attentionNorm = attentionNorm
        self.feedForwardNorm = feedForwardNorm
        self.projections = projections
        finalNorm = take(c.hiddenSize)
        lmHead = c.tieWordEmbeddings ? embedding : take(c.vocabularySize * c.hiddenSize)
        totalCount = cursor
    }
}

/// Frozen fp32 base weights in one flat buffer, either allocated or a copy-on-write mapping of a flat weights file
/// (so the ranks of a node share one resident copy). Nothing writes them after loading except adapter merges
/// (`LoRAMerger`), which touch private copies of the merged pages only.
public final class LlamaWeights {
    public let configuration: LlamaConfiguration
    public let layout: LlamaWeightLayout
    public let storage: UnsafeMutablePointer<Float>
    /// The file behind `storage`, when mapped.
    public let mapping: MappedFile?

    public init(configuration: LlamaConfiguration) {
        self.configuration = configuration
        layout = LlamaWeightLayout(configuration)
        storage = .allocate(capacity: layout.totalCount)
        storage.initialize(repeating: 0, count: layout.totalCount)
        mapping = nil
    }

    /// Maps a flat weights file (fp32, `LlamaWeightLayout` order) copy-on-write.
    public init(configuration: LlamaConfiguration, flatFile path: String) throws {
        self.configuration = configuration
        layout = LlamaWeightLayout(configuration)
        let file = try MappedFile(path: path, copyOnWrite: true)
        guard file.byteCount == layout.totalCount * MemoryLayout<Float>.size, let base = file.baseAddress else {
            throw KnowTuneError.badFormat(path: path, reason: "flat weights file has \(file.byteCount) bytes, the model needs \(layout.totalCount * 4)")
        }
        storage = UnsafeMutableRawPointer(mutating: base).bindMemory(to: Float.self, capacity: layout.totalCount)
        mapping = file
    }

    deinit { if mapping == nil { storage.deallocate() } }

    /// Writes the flat buffer to `path` (temporary file, fsync, rename), for other processes to map.
    public func writeFlatFile(to path: String) throws {
        let temporary = path + ".tmp-\(getpid())"
        let descriptor = open(temporary, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        guard descriptor >= 0 else {
            throw KnowTuneError.fileUnreadable(path: temporary, reason: "cannot create: \(String(cString: strerror(errno)))")
        }
        var remaining = layout.totalCount * MemoryLayout<Float>.size
        var cursor = UnsafeRawPointer(storage)
        while remaining > 0 {
            let written = write(descriptor, cursor, min(remaining, 1 << 30))
            guard written > 0 else {
                close(descriptor)
                unlink(temporary)
                throw KnowTuneError.fileUnreadable(path: temporary, reason: "cannot write: \(String(cString: strerror(errno)))")
            }
            remaining -= written
            cursor += written
        }
        let synced = fsync(descriptor) == 0
        close(descriptor)
        guard synced, rename(temporary, path) == 0 else {
            unlink(temporary)
            throw KnowTuneError.fileUnreadable(path: path, reason: "cannot publish: \(String(cString: strerror(errno)))")
        }
    }

    /// [V, C]
    public var embedding: UnsafeMutablePointer<Float> { storage + layout.embedding }
    /// [V, C]; the embedding when tied.
    public var lmHead: UnsafeMutablePointer<Float> { storage + layout.lmHead }
    /// [C]
    public var finalNorm: UnsafeMutablePointer<Float> { storage + layout.finalNorm }
    /// [C]
    public func attentionNorm(_ layer: Int) -> UnsafeMutablePointer<Float> { storage + layout.attentionNorm[layer] }
    /// [C]
    public func feedForwardNorm(_ layer: Int) -> UnsafeMutablePointer<Float> { storage + layout.feedForwardNorm[layer] }
    /// [out, in] row-major
    public func projection(_ layer: Int, _ kind: ProjectionKind) -> UnsafeMutablePointer<Float> {
        storage + layout.projections[layer][kind.rawValue]
    }

    /// Every named tensor with its HF name, shape and location, in a fixed order.
    public func namedTensors() -> [(name: String, shape: [Int], pointer: UnsafeMutablePointer<Float>)] {
        let c = configuration
        var result: [(String, [Int], UnsafeMutablePointer<Float>)] = [
            (LlamaTensorName.embedding, [c.vocabularySize, c.hiddenSize], embedding)
        ]
        for layer in 0..<c.layerCount {
            result.append((LlamaTensorName.attentionNorm(layer), [c.hiddenSize], attentionNorm(layer)))
            result.append((LlamaTensorName.feedForwardNorm(layer), [c.hiddenSize], feedForwardNorm(layer)))
            for kind in ProjectionKind.allCases {
                let (o, i) = kind.shape(c)
                result.append((LlamaTensorName.projection(layer, kind), [o, i], projection(layer, kind)))
            }
        }
        result.append((LlamaTensorName.finalNorm, [c.hiddenSize], finalNorm))
        if !c.tieWordEmbeddings {
            result.append((LlamaTensorName.lmHead, [c.vocabularySize, c.hiddenSize], lmHead))
        }
        return result
    }
}
