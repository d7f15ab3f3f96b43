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

/// Frozen base weights in one flat buffer of `precision` elements (`LlamaWeightLayout` order), either allocated or a
/// copy-on-write mapping of a flat weights file (so the ranks of a node share one resident copy). Nothing writes
/// them after loading except adapter merges (`LoRAMerger`), which touch private copies of the merged pages only.
///
/// The fp32 views (`storage`, `projection`, `embedding`, `lmHead`) exist for fp32 weights only (loaders, exporters);
/// the passes read every precision through `frozenProjection`, `frozenLMHead`, `copyEmbeddingRow` and the norms,
/// which are fp32 in every precision (16-bit ones are decoded once into a small private buffer).
public final class LlamaWeights {
    public let configuration: LlamaConfiguration
    public let layout: LlamaWeightLayout
    public let precision: BasePrecision
    /// Start of the flat buffer: `layout.totalCount` elements of `precision`.
    public let base: UnsafeMutableRawPointer
    /// The file behind `base`, when mapped.
    public let mapping: MappedFile?
    /// The norm weights as fp32 for 16-bit precisions: per layer attention then feed-forward, then the final norm.
    private let decodedNorms: UnsafeMutablePointer<Float>?

    /// Zero-filled allocated fp32 weights, for loaders to fill.
    public init(configuration: LlamaConfiguration) {
        self.configuration = configuration
        layout = LlamaWeightLayout(configuration)
        precision = .fp32
        let byteCount = layout.totalCount * 4
        base = .allocate(byteCount: byteCount, alignment: 64)
        base.initializeMemory(as: UInt8.self, repeating: 0, count: byteCount)
        mapping = nil
        decodedNorms = nil
    }

    /// An allocated copy of `other`, in its precision.
    public init(copying other: LlamaWeights) {
        configuration = other.configuration
        layout = other.layout
        precision = other.precision
        let byteCount = layout.totalCount * precision.bytesPerElement
        base = .allocate(byteCount: byteCount, alignment: 64)
        base.copyMemory(from: other.base, byteCount: byteCount)
        mapping = nil
        decodedNorms = Self.decodeNorms(base: base, layout: layout, precision: precision)
    }

    /// Maps a flat weights file (`precision` elements, `LlamaWeightLayout` order) copy-on-write.
    public init(configuration: LlamaConfiguration, flatFile path: String, precision: BasePrecision = .fp32) throws {
        self.configuration = configuration
        layout = LlamaWeightLayout(configuration)
        self.precision = precision
        let file = try MappedFile(path: path, copyOnWrite: true)
        let expected = layout.totalCount * precision.bytesPerElement
        guard file.byteCount == expected, let address = file.baseAddress else {
            throw KnowTuneError.badFormat(path: path, reason: "flat \(precision.rawValue) weights file has \(file.byteCount) bytes, the model needs \(expected)")
        }
        base = UnsafeMutableRawPointer(mutating: address)
        mapping = file
        decodedNorms = Self.decodeNorms(base: base, layout: layout, precision: precision)
    }

    /// A copy of `source` (fp32) stored in `precision`.
    public init(converting source: LlamaWeights, to precision: BasePrecision) {
        precondition(source.precision == .fp32, "conversion starts from fp32 weights")
        configuration = source.configuration
        layout = source.layout
        self.precision = precision
        base = .allocate(byteCount: layout.totalCount * precision.bytesPerElement, alignment: 64)
        precision.encode(source.storage, count: layout.totalCount, into: base)
        mapping = nil
        decodedNorms = Self.decodeNorms(base: base, layout: layout, precision: precision)
    }

    deinit {
        if mapping == nil { base.deallocate() }
        decodedNorms?.deallocate()
    }

    private static func decodeNorms(base: UnsafeMutableRawPointer, layout: LlamaWeightLayout,
                                    precision: BasePrecision) -> UnsafeMutablePointer<Float>? {
        guard precision != .fp32 else { return nil }
        let C = layout.configuration.hiddenSize
        let norms = UnsafeMutablePointer<Float>.allocate(capacity: (2 * layout.configuration.layerCount + 1) * C)
        let offsets = zip(layout.attentionNorm, layout.feedForwardNorm).flatMap { [$0, $1] } + [layout.finalNorm]
        for (index, offset) in offsets.enumerated() {
            precision.decode(base + offset * precision.bytesPerElement, count: C, into: norms + index * C)
        }
        return norms
    }

    /// Writes the flat buffer to `path` as stored, for other processes to map.
    public func writeFlatFile(to path: String) throws {
        try Self.publishFile(at: path) { write in try write(base, layout.totalCount * precision.bytesPerElement) }
    }

    /// Converts the flat fp32 file `source` into a flat file of `precision` at `path`, reading it in chunks (through
    /// the page cache, never mapped), so the conversion holds one chunk however large the model.
    public static func convertFlatFile(_ source: String, to path: String, precision: BasePrecision,
                                       configuration: LlamaConfiguration) throws {
        let total = LlamaWeightLayout(configuration).totalCount
        let input = open(source, O_RDONLY)
        guard input >= 0 else { throw KnowTuneError.fileUnreadable(path: source, reason: String(cString: strerror(errno))) }
        defer { close(input) }
        let chunk = 1 << 20
        let floats = UnsafeMutablePointer<Float>.allocate(capacity: chunk)
        let encoded = UnsafeMutableRawPointer.allocate(byteCount: chunk * precision.bytesPerElement, alignment: 64)
        defer { floats.deallocate(); encoded.deallocate() }
        try publishFile(at: path) { write in
            var start = 0
            while start < total {
                let count = min(chunk, total - start)
                var filled = 0
                while filled < count * 4 {
                    let got = read(input, UnsafeMutableRawPointer(floats) + filled, count * 4 - filled)
                    guard got > 0 else {
                        throw KnowTuneError.badFormat(path: source, reason: "flat fp32 file ends before the model's \(total * 4) bytes")
                    }
                    filled += got
                }
                precision.encode(floats, count: count, into: encoded)
                try write(encoded, count * precision.bytesPerElement)
                start += count
            }
        }
    }

    /// Creates `path` through a temporary file, fsync and rename, so a reader never maps a partial file; `body`
    /// writes the bytes with the function it is given. Any error leaves no file behind.
    private static func publishFile(at path: String,
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
        frozen(at: layout.projections[layer][kind.rawValue])
    }

    /// The head [V, C]; the embedding when tied.
    public var frozenLMHead: FrozenMatrix { frozen(at: layout.lmHead) }

    private func frozen(at offset: Int) -> FrozenMatrix {
        FrozenMatrix(precision: precision, address: UnsafeRawPointer(base + offset * precision.bytesPerElement))
    }

    /// Writes token `token`'s embedding row (C floats) to `destination`.
    @inline(__always)
    public func copyEmbeddingRow(_ token: Int, into destination: UnsafeMutablePointer<Float>) {
        let C = configuration.hiddenSize
        precision.decode(base + (layout.embedding + token * C) * precision.bytesPerElement, count: C, into: destination)
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
