// Implements the hyper-parameters of a LLaMA-family decoder, decoded from HF `config.json` or GGUF metadata;
// does not hold weights.
import Foundation
import KnowTuneTensor

/// Shapes and constants of a LLaMA decoder (HF `LlamaConfig` names in `CodingKeys`).
public struct LlamaConfiguration: Codable, Equatable {
    public var vocabularySize: Int
    public var hiddenSize: Int
    public var intermediateSize: Int
    public var layerCount: Int
    public var headCount: Int
    public var kvHeadCount: Int
    public var rmsNormEpsilon: Float
    public var ropeTheta: Double
    public var tieWordEmbeddings: Bool
    public var maxPositionEmbeddings: Int
    public var bosTokenId: Int?
    public var eosTokenId: Int?

    enum CodingKeys: String, CodingKey {
        case vocabularySize = "vocab_size", hiddenSize = "hidden_size", intermediateSize = "intermediate_size"
        case layerCount = "num_hidden_layers", headCount = "num_attention_heads", kvHeadCount = "num_key_value_heads"
        case rmsNormEpsilon = "rms_norm_eps", ropeTheta = "rope_theta", tieWordEmbeddings = "tie_word_embeddings"
        case maxPositionEmbeddings = "max_position_embeddings", bosTokenId = "bos_token_id", eosTokenId = "eos_token_id"
    }

    public init(vocabularySize: Int, hiddenSize: Int, intermediateSize: Int, layerCount: Int, headCount: Int,
                kvHeadCount: Int, rmsNormEpsilon: Float = 1e-5, ropeTheta: Double = 10000,
                tieWordEmbeddings: Bool = false, maxPositionEmbeddings: Int = 2048,
                bosTokenId: Int? = nil, eosTokenId: Int? = nil) {
        self.vocabularySize = vocabularySize
        self.hiddenSize = hiddenSize
        self.intermediateSize = intermediateSize
        self.layerCount = layerCount
        self.headCount = headCount
        self.kvHeadCount = kvHeadCount
        self.rmsNormEpsilon = rmsNormEpsilon
        self.ropeTheta = ropeTheta
        self.tieWordEmbeddings = tieWordEmbeddings
        self.maxPositionEmbeddings = maxPositionEmbeddings
        self.bosTokenId = bosTokenId
        self.eosTokenId = eosTokenId
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        vocabularySize = try c.decode(Int.self, forKey: .vocabularySize)
        hiddenSize = try c.decode(Int.self, forKey: .hiddenSize)
        intermediateSize = try c.decode(Int.self, forKey: .intermediateSize)
        layerCount = try c.decode(Int.self, forKey: .layerCount)
        headCount = try c.decode(Int.self, forKey: .headCount)
        // HF defaults: no GQA unless stated; eps 1e-6; theta 10000; untied; 2048 positions.
        kvHeadCount = try c.decodeIfPresent(Int.self, forKey: .kvHeadCount) ?? headCount
        rmsNormEpsilon = try c.decodeIfPresent(Float.self, forKey: .rmsNormEpsilon) ?? 1e-6
        ropeTheta = try c.decodeIfPresent(Double.self, forKey: .ropeTheta) ?? 10000
        tieWordEmbeddings = try c.decodeIfPresent(Bool.self, forKey: .tieWordEmbeddings) ?? false
        maxPositionEmbeddings = try c.decodeIfPresent(Int.self, forKey: .maxPositionEmbeddings) ?? 2048
        bosTokenId = try? c.decodeIfPresent(Int.self, forKey: .bosTokenId)
        eosTokenId = try? c.decodeIfPresent(Int.self, forKey: .eosTokenId)
    }

    public var headDimension: Int { hiddenSize / headCount }
    public var kvDimension: Int { kvHeadCount * headDimension }

    /// Checks the shape relations every kernel relies on.
    public func validate(source: String) throws {
        let positive = [vocabularySize, hiddenSize, intermediateSize, layerCount, headCount, kvHeadCount]
        guard positive.allSatisfy({ $0 > 0 }) else {
            throw KnowTuneError.badFormat(path: source, reason: "model sizes must be positive: \(self)")
        }
        guard hiddenSize % headCount == 0, headCount % kvHeadCount == 0, headDimension % 2 == 0 else {
            throw KnowTuneError.badFormat(
                path: source,
                reason: "hidden_size \(hiddenSize) must split into \(headCount) heads of even size, and heads into \(kvHeadCount) KV groups")
        }
    }

    /// Frozen parameter count (embedding, layers, final norm, untied head).
    public var parameterCount: Int {
        let perLayer = 2 * hiddenSize + hiddenSize * hiddenSize * 2 + 2 * kvDimension * hiddenSize
            + 3 * hiddenSize * intermediateSize
        return vocabularySize * hiddenSize * (tieWordEmbeddings ? 1 : 2) + layerCount * perLayer + hiddenSize
    }
}
