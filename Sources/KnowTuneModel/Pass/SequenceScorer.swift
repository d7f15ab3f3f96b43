// Implements scoring of (prompt, response) id pairs: per-response-token log-probs and their mean NLL, many
// sequences packed per forward pass, a prompt shared by several responses optionally run once; does not template or
// tokenize (callers do) and does not shard over ranks.
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
    /// its own pass). A response must have at least one token. `sharingPrompts`: pairs of one prompt in the same
    /// forward run the prompt once (PackedBatch's shared prefix, e.g. the facts of one KA record); the log-probs
    /// are those of the separate sequences up to summation order.
    public func score(_ pairs: [(prompt: [Int32], response: [Int32])], sharingPrompts: Bool = false) throws -> [SequenceScore] {
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
        results.reserveCapacity(pairs.count)
        var batch = PackedBatch()
        var members: [(prompt: [Int32], response: [Int32])] = []
        var prefixes: [[Int32]: Int] = [:]
        func run() {
            guard !members.isEmpty else { return }
            let logProbabilities = decoder.forward(batch: batch, plan: planFitting(batch), lora: lora)
            var cursor = 0
            for pair in members {
                let slice = Array(logProbabilities[cursor..<(cursor + pair.response.count)])
                cursor += pair.response.count
                let mean = -slice.reduce(0.0) { $0 + Double($1) } / Double(slice.count)
                results.append(SequenceScore(ids: pair.prompt + pair.response, promptLength: pair.prompt.count,
                                             responseLogProbabilities: slice, meanNegativeLogLikelihood: mean))
            }
            batch = PackedBatch()
            members = []
            prefixes = [:]
        }
        for pair in pairs {
            func cost() -> Int {
                sharingPrompts ? PackedBatch.sharedRows(prompt: pair.prompt, response: pair.response, promptIsPacked: prefixes[pair.prompt] != nil)
                    : pair.prompt.count + pair.response.count
            }
            if !members.isEmpty, batch.tokenCount + cost() > tokenBudget { run() }
            if sharingPrompts {
                batch.append(prompt: pair.prompt, response: pair.response, sharing: &prefixes)
            } else {
                batch.append(prompt: pair.prompt, response: pair.response)
            }
            members.append(pair)
        }
        run()
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
