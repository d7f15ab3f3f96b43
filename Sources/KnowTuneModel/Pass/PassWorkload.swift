// Implements the work of one training pass (forward, then backward through frozen weights) over a packed batch, in
// FLOPs of its products: what ranks are balanced by, and the model FLOPs per token a speed is measured against. Does
// not time anything.
//
// A frozen weight costs 4 FLOPs per row it is applied to (2 forward, 2 for the input gradient; its own gradient is
// never formed). The head runs on target rows only, so it is charged per target, not per token: a prompt-heavy
// sequence is cheaper than a response-heavy one of the same length, by up to a fifth on SmolLM2. Attention costs
// 12·C FLOPs per layer and (query, key) pair (scores and weighted values, 4·C forward, twice that backward); a
// sequence of T rows after a prefix of P has T·P + T(T+1)/2 pairs.
public struct PassWorkload {
    /// FLOPs per row through the layers' projections.
    public let perToken: Double
    /// FLOPs per target row through the head.
    public let perTarget: Double
    /// FLOPs per attended (query, key) pair, all layers.
    public let perAttentionPair: Double

    public init(_ c: LlamaConfiguration) {
        let layerWeights = c.hiddenSize * c.hiddenSize * 2 + 2 * c.kvDimension * c.hiddenSize + 3 * c.hiddenSize * c.intermediateSize
        perToken = 4 * Double(c.layerCount * layerWeights)
        perTarget = 4 * Double(c.vocabularySize * c.hiddenSize)
        perAttentionPair = 12 * Double(c.layerCount * c.hiddenSize)
    }

    /// (query, key) pairs of T causal rows that follow P prefix rows.
    public static func attentionPairs(rows T: Int, prefix P: Int = 0) -> Int { T * P + T * (T + 1) / 2 }

    public func flops(tokens: Int, targets: Int, attentionPairs: Int) -> Double {
        perToken * Double(tokens) + perTarget * Double(targets) + perAttentionPair * Double(attentionPairs)
    }

    /// The pass over `batch`: its rows, its targets and every sequence's pairs (a continuation's with its prefix).
    public func flops(of batch: PackedBatch) -> Double {
        var pairs = 0
        for b in 0..<batch.sequenceCount {
            let prefix = batch.prefixSequence[b]
            pairs += Self.attentionPairs(rows: batch.length(ofSequence: b), prefix: prefix >= 0 ? batch.length(ofSequence: prefix) : 0)
        }
        return flops(tokens: batch.tokenCount, targets: batch.targetCount, attentionPairs: pairs)
    }

    /// FLOPs per token of sequences of length T with every position a target: the measure of a training speed
    /// against sgemm's (the head counted on every token, as for pre-training).
    public func flopsPerToken(sequenceLength T: Int) -> Double {
        flops(tokens: T, targets: T, attentionPairs: Self.attentionPairs(rows: T)) / Double(T)
    }
}
