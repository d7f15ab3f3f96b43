// Implements where each frozen tensor lies in the flat weight buffer of a base precision and how it is encoded (the
// bytes of `LlamaWeightLayout`'s order, each tensor in its own WeightEncoding); does not fill or read the buffer.
import KnowTuneTensor

/// One tensor's place in the flat buffer.
public struct LlamaTensorStorage: Equatable {
    /// Byte offset from the start of the buffer.
    public let offset: Int
    public let encoding: WeightEncoding
    public let elementCount: Int

    public var byteCount: Int { encoding.byteCount(elements: elementCount) }
}

public struct LlamaStorageLayout: Equatable {
    public let precision: BasePrecision
    public let embedding: LlamaTensorStorage
    public let attentionNorm: [LlamaTensorStorage]
    public let feedForwardNorm: [LlamaTensorStorage]
    /// projections[layer][kind.rawValue]
    public let projections: [[LlamaTensorStorage]]
    public let finalNorm: LlamaTensorStorage
    /// The embedding's storage when the head is tied.
    public let lmHead: LlamaTensorStorage
    /// Every tensor in buffer order with its HF name and shape (the tied head once, as the embedding).
    public let tensors: [(name: String, shape: [Int], storage: LlamaTensorStorage)]
    public let byteCount: Int

    public static func == (lhs: LlamaStorageLayout, rhs: LlamaStorageLayout) -> Bool {
        lhs.precision == rhs.precision && lhs.tensors.map(\.storage) == rhs.tensors.map(\.storage)
    }

    /// The layout of `c` in `precision`. `sourceEncodings` (HF tensor name → its encoding in the model file) lets
    /// tensors already in the chosen quantized encoding keep it (BasePrecision.matrixEncoding).
    public init(_ c: LlamaConfiguration, precision: BasePrecision, sourceEncodings: [String: WeightEncoding] = [:]) {
        self.precision = precision
        var cursor = 0
        var tensors: [(String, [Int], LlamaTensorStorage)] = []
        func take(_ name: String, _ shape: [Int]) -> LlamaTensorStorage {
            let encoding = shape.count == 1 ? precision.normEncoding
                : precision.matrixEncoding(rowLength: shape[1], source: sourceEncodings[name])
            let storage = LlamaTensorStorage(offset: cursor, encoding: encoding, elementCount: shape.reduce(1, *))
            cursor += storage.byteCount
            tensors.append((name, shape, storage))
            return storage
        }
        embedding = take(LlamaTensorName.embedding, [c.vocabularySize, c.hiddenSize])
        var attentionNorm: [LlamaTensorStorage] = [], feedForwardNorm: [LlamaTensorStorage] = []
        var projections: [[LlamaTensorStorage]] = []
        for layer in 0..<c.layerCount {
            attentionNorm.append(take(LlamaTensorName.attentionNorm(layer), [c.hiddenSize]))
            feedForwardNorm.append(take(LlamaTensorName.feedForwardNorm(layer), [c.hiddenSize]))
            projections.append(ProjectionKind.allCases.map { kind in
                let (o, i) = kind.shape(c)
                return take(LlamaTensorName.projection(layer, kind), [o, i])
            })
        }
        self.attentionNorm = attentionNorm
        self.feedForwardNorm = feedForwardNorm
        self.projections = projections
        finalNorm = take(LlamaTensorName.finalNorm, [c.hiddenSize])
        lmHead = c.tieWordEmbeddings ? embedding : take(LlamaTensorName.lmHead, [c.vocabularySize, c.hiddenSize])
        self.tensors = tensors
        byteCount = cursor
    }

    /// How many tensors each encoding holds, e.g. "q5_0 × 181, q4_k × 30, fp32 × 61", most first.
    public var encodingSummary: String {
        var counts: [WeightEncoding: Int] = [:]
        for tensor in tensors { counts[tensor.storage.encoding, default: 0] += 1 }
        return counts.sorted { ($1.value, $0.key.rawValue) < ($0.value, $1.key.rawValue) }
            .map { "\($0.key.rawValue) × \($0.value)" }.joined(separator: ", ")
    }

    /// The precision, with the encodings when they differ from it: "bf16", "q4_k (q5_0 × 181, q4_k × 30, fp32 × 61)".
    public var formatNote: String {
        precision.isQuantized ? "\(precision.rawValue) (\(encodingSummary))" : precision.rawValue
    }
}
