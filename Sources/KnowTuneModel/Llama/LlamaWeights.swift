// Implements the frozen base weights of a LLaMA decoder as one flat buffer (fp32, bf16 or f16) with named views (HF layout:
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

/// Frozen base weights in one flat buffer (`LlamaStorageLayout`: each tensor in its encoding for `precision`), either
/// allocated or a copy-on-write mapping of a flat weights file (so the ranks of a node share one resident copy).
/// Nothing writes them after loading except adapter merges (`LoRAMerger`), which touch private copies of the merged
/// pages only.
///
/// The fp32 views (`storage`, `projection`, `embedding`, `lmHead`) exist for fp32 weights only (loaders, exporters);
/// the passes read every precision through `frozenProjection`, `frozenLMHead`, `copyEmbeddingRow` and the norms,
/// which are fp32 in every precision (other encodings are decoded once into a small private buffer).
public final class LlamaWeights {
    public let configuration: LlamaConfiguration
    public let layout: LlamaWeightLayout
    public let storageLayout: LlamaStorageLayout
    public var precision: BasePrecision { storageLayout.precision }
    /// Start of the flat buffer: `storageLayout.byteCount` bytes.
    public let base: UnsafeMutableRawPointer
    /// The file behind `base`, when mapped.
    public let mapping: MappedFile?
    /// The norm weights as fp32 when not stored so: per layer attention then feed-forward, then the final norm.
    private let decodedNorms: UnsafeMutablePointer<Float>?

    /// Zero-filled allocated fp32 weights, for loaders to fill.
    public convenience init(configuration: LlamaConfiguration) {
        self.init(configuration: configuration, storageLayout: LlamaStorageLayout(configuration, precision: .fp32)) { _ in }
    }

    /// Allocated weights of `storageLayout`, zero-filled and then given to `fill` (which must not keep the pointer).
    public init(configuration: LlamaConfiguration, storageLayout: LlamaStorageLayout,
                fill: (UnsafeMutableRawPointer) throws -> Void) rethrows {
        self.configuration = configuration
        layout = LlamaWeightLayout(configuration)
        self.storageLayout = storageLayout
        base = .allocate(byteCount: max(storageLayout.byteCount, 1), alignment: 64)
        base.initializeMemory(as: UInt8.self, repeating: 0, count: storageLayout.byteCount)
        mapping = nil
        do { try fill(base) } catch {
            base.deallocate()
            throw error
        }
        decodedNorms = Self.decodeNorms(base: base, layout: storageLayout)
    }

    /// An allocated copy of `other`, in its precision.
    public convenience init(copying other: LlamaWeights) {
        self.init(configuration: other.configuration, storageLayout: other.storageLayout) {
            $0.copyMemory(from: other.base, byteCount: other.storageLayout.byteCount)
        }
    }

    /// Maps a flat weights file (`storageLayout`, by default the uniform layout of `precision`) copy-on-write.
    public init(configuration: LlamaConfiguration, flatFile path: String, precision: BasePrecision = .fp32,
                storageLayout: LlamaStorageLayout? = nil) throws {
        self.configuration = configuration
        layout = LlamaWeightLayout(configuration)
        self.storageLayout = storageLayout ?? LlamaStorageLayout(configuration, precision: precision)
        let file = try MappedFile(path: path, copyOnWrite: true)
        let expected = self.storageLayout.byteCount
        guard file.byteCount == expected, let address = file.baseAddress else {
            throw KnowTuneError.badFormat(path: path, reason: "flat \(self.storageLayout.precision.rawValue) weights file has \(file.byteCount) bytes, the model needs \(expected)")
        }
        base = UnsafeMutableRawPointer(mutating: address)
        mapping = file
        decodedNorms = Self.decodeNorms(base: base, layout: self.storageLayout)
    }

    /// A copy of `source` (fp32) stored in `precision` (every tensor encoded from fp32).
    public convenience init(converting source: LlamaWeights, to precision: BasePrecision) {
        precondition(source.precision == .fp32, "conversion starts from fp32 weights")
        let target = LlamaStorageLayout(source.configuration, precision: precision)
        self.init(configuration: source.configuration, storageLayout: target) { base in
            for (tensor, from) in zip(target.tensors, source.storageLayout.tensors) {
                tensor.storage.encoding.encode((source.base + from.storage.offset).assumingMemoryBound(to: Float.self),
                                               count: tensor.storage.elementCount, into: base + tensor.storage.offset)
            }
        }
    }

    deinit {
        if mapping == nil { base.deallocate() }
        decodedNorms?.deallocate()
    }

    private static func decodeNorms(base: UnsafeMutableRawPointer, layout: LlamaStorageLayout) -> UnsafeMutablePointer<Float>? {
        // Quantized bases keep fp32 norms at byte offsets that need not be aligned: they are copied out too.
        guard layout.precision != .fp32 else { return nil }
        let norms = zip(layout.attentionNorm, layout.feedForwardNorm).flatMap { [$0, $1] } + [layout.finalNorm]
        let C = layout.finalNorm.elementCount
        let decoded = UnsafeMutablePointer<Float>.allocate(capacity: norms.count * C)
        for (index, norm) in norms.enumerated() {
            norm.encoding.decode(base + norm.offset, count: C, into: decoded + index * C)
        }
        return decoded
    }

    /// Writes the flat buffer to `path` as stored, for other processes to map.
    public func writeFlatFile(to path: String) throws {
        try Self.publishFile(at: path) { write in try write(base, storageLayout.byteCount) }
    }

    /// Creates `path` through a temporary file, fsync and rename, so a reader never maps a partial file; `body`
    /// writes the bytes with the function it is given. Any error leaves no file behind.
    public static func publishFile(at path: String,
                                   _ body: ((UnsafeRawPointer, Int) throws -> Void) throws -> Void) throws {
        let temporary = path + ".tmp-\(getpid())"
        let descriptor = open(temporary, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        guard descriptor >= 0 else {
            throw KnowTuneError.fileUnreadable(path: temporary, reason: "cannot create: \(String(cString: strerror(errno)))")
        }
        func writeAll(_ bytes: UnsafeRawPointer, _ count: Int) throws {
            var remaining = count, cursor = bytes
            while remaining > 0 {
                let written = write(descriptor, cursor, min(remaining, 1 << 30))
                guard written > 0 else {
                    throw KnowTuneError.fileUnreadable(path: temporary, reason: "cannot write: \(String(cString: strerror(errno)))")
                }
                remaining -= written
                cursor += written
            }
        }
        do {
            try body(writeAll)
        } catch {
            close(descriptor)
            unlink(temporary)
            throw error
        }
        let synced = fsync(descriptor) == 0
        close(descriptor)
        guard synced, rename(temporary, path) == 0 else {
            unlink(temporary)
            throw KnowTuneError.fileUnreadable(path: path, reason: "cannot publish: \(String(cString: strerror(errno)))")
        }
    }

    // MARK: - Views for every precision

    /// Projection `kind` of `layer`, [out, in] row-major.
    public func frozenProjection(_ layer: Int, _ kind: ProjectionKind) -> FrozenMatrix {
        frozen(storageLayout.projections[layer][kind.rawValue])
    }

    /// The head [V, C]; the embedding when tied.
    public var frozenLMHead: FrozenMatrix { frozen(storageLayout.lmHead) }

    private func frozen(_ tensor: LlamaTensorStorage) -> FrozenMatrix {
        FrozenMatrix(encoding: tensor.encoding, address: UnsafeRawPointer(base + tensor.offset))
    }

    /// Writes token `token`'s embedding row (C floats) to `destination`.
    @inline(__always)
    public func copyEmbeddingRow(_ token: Int, into destination: UnsafeMutablePointer<Float>) {
        let C = configuration.hiddenSize
        let embedding = storageLayout.embedding
        embedding.encoding.decode(base + embedding.offset + token * embedding.encoding.byteCount(elements: C), count: C,
                                  into: destination)
    }

    /// [C]
    public var finalNorm: UnsafeMutablePointer<Float> {
        decodedNorms.map { $0 + 2 * configuration.layerCount * configuration.hiddenSize } ?? storage + layout.finalNorm
    }
    /// [C]
    public func attentionNorm(_ layer: Int) -> UnsafeMutablePointer<Float> {
        decodedNorms.map { $0 + 2 * layer * configuration.hiddenSize } ?? storage + layout.attentionNorm[layer]
    }
    /// [C]
    public func feedForwardNorm(_ layer: Int) -> UnsafeMutablePointer<Float> {
        decodedNorms.map { $0 + (2 * layer + 1) * configuration.hiddenSize } ?? storage + layout.feedForwardNorm[layer]
    }

    // MARK: - fp32 views (loading, merging, export)

    /// The flat fp32 buffer.
    public var storage: UnsafeMutablePointer<Float> {
        precondition(precision == .fp32, "fp32 view of \(precision.rawValue) weights")
        return base.assumingMemoryBound(to: Float.self)
    }
    /// [V, C]
    public var embedding: UnsafeMutablePointer<Float> { storage + layout.embedding }
    /// [V, C]; the embedding when tied.
    public var lmHead: UnsafeMutablePointer<Float> { storage + layout.lmHead }
    /// [out, in] row-major
    public func projection(_ layer: Int, _ kind: ProjectionKind) -> UnsafeMutablePointer<Float> {
        storage + layout.projections[layer][kind.rawValue]
    }

    /// Every named tensor with its HF name, shape and location, in buffer order (fp32 weights).
    public func namedTensors() -> [(name: String, shape: [Int], pointer: UnsafeMutablePointer<Float>)] {
        storageLayout.tensors.map { ($0.name, $0.shape, storage + $0.storage.offset / 4) }
    }
}
