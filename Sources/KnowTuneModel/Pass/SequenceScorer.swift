// Implements scoring of (prompt, response) id pairs: per-response-token log-probs and their mean NLL, many
// sequences packed per forward pass; does not template or tokenize (callers do) and does not shard over ranks.
import KnowTuneTensor

public struct SequenceScore: Codable, Equatable {
    /// Prompt + response ids.
    public let ids: [Int32]
    public let promptLength: Int
    /// log p(response token t | everything before it), one per response token.
    public let responseLogProbabilities: [Float]
    /// −mean of those log-probs.
    public let meanNegativeLogLikelihood: Double

    enum CodingKeys: String, CodingKey {
        case ids, promptLength = "prompt_length", responseLogProbabilities = "response_logprobs"
        case meanNegativeLogLikelihood = "nll_mean"
    }
}

public final class SequenceScorer {
    public let decoder: LlamaDecoder
    public let lora: LoRABuffer?
    public let tokenBudget: Int
    private var plan: ActivationPlan?

    /// `tokenBudget` bounds the packed tokens per forward (activation memory grows with it).
    public init(decoder: LlamaDecoder, lora: LoRABuffer?, tokenBudget: Int = 2048) {
        self.decoder = decoder
        self.lora = lora
        self.tokenBudget = tokenBudget
    }

    /// Scores each pair; pairs are packed into forwards of at most `tokenBudget` tokens (a longer single pair gets
    /// its own pass). A response must have at least one token.
    public func score(_ pairs: [(prompt: [Int32], response: [Int32])]) throws -> [SequenceScore] {
        let maxPositions = decoder.rotary.maxPositions
        for (index, pair) in pairs.enumerated() {
            guard !pair.response.isEmpty else { throw KnowTuneError.invalidInput("record \(index): empty response") }
            guard !pair.prompt.isEmpty else { throw KnowTuneError.invalidInput("record \(index): empty prompt") }
            guard pair.prompt.count + pair.response.count <= maxPositions else {
                throw KnowTuneError.invalidInput(
                    "record \(index): \(pair.prompt.count + pair.response.count) tokens exceed the model's \(maxPositions) positions")
            }
        }
        var results: [SequenceScore] = []
        var start = 0
        while start < pairs.count {
            var end = start
            var tokens = 0
            while end < pairs.count, end == start || tokens + pairs[end].prompt.count + pairs[end].response.count <= tokenBudget {
                tokens += pairs[end].prompt.count + pairs[end].response.count
                end += 1
            }
            var batch = PackedBatch()
            for pair in pairs[start..<end] { batch.append(prompt: pair.prompt, response: pair.response) }
            let plan = planFitting(batch)
            let logProbabilities = decoder.forward(batch: batch, plan: plan, lora: lora)
            var cursor = 0
            for pair in pairs[start..<end] {
                let slice = Array(logProbabilities[cursor..<(cursor + pair.response.count)])
                cursor += pair.response.count
                let mean = -slice.reduce(0.0) { $0 + Double($1) } / Double(slice.count)
                results.append(SequenceScore(ids: pair.prompt + pair.response, promptLength: pair.prompt.count,
                                             responseLogProbabilities: slice, meanNegativeLogLikelihood: mean))
            }
            start = end
        }
        return results
    }

    private func planFitting(_ batch: PackedBatch) -> ActivationPlan {
        if let plan, plan.fits(batch) { return plan }
        let capacity = max(batch.tokenCount, min(tokenBudget, plan?.tokenCapacity ?? 0))
        let newPlan = ActivationPlan(model: decoder.configuration, loraLayout: lora?.layout, tokenCapacity: capacity,
                                     sequenceCapacity: max(batch.longestSequence, plan?.sequenceCapacity ?? 0))
        plan = newPlan
        return newPlan
    }
}
