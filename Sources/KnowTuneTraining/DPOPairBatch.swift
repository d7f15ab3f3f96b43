// Implements the model input of a group of preference pairs: each pair's `prompt + chosen` and `prompt + rejected`
// packed end to end (sequence 2k and 2k+1; LF053's collator puts all chosen before all rejected, which changes
// nothing here because packed sequences never attend to each other), and the per-sequence sums of the target
// log-probs (TRL `get_batch_logps` with average_log_prob=False); does not run the model.
import KnowTuneData
import KnowTuneModel

enum DPOPairBatch {
    /// Packs `pairs`; only answer tokens (EOS included) carry targets.
    static func pack(_ pairs: [EncodedPair]) -> PackedBatch {
        var batch = PackedBatch()
        for pair in pairs {
            batch.append(prompt: pair.prompt, response: pair.chosen)
            batch.append(prompt: pair.prompt, response: pair.rejected)
        }
        return batch
    }

    /// Σ log p over each sequence's targets, in Double: [chosen₀, rejected₀, chosen₁, …].
    static func sequenceSums(_ logProbabilities: [Float], batch: PackedBatch) -> [Double] {
        var sums = [Double](repeating: 0, count: batch.sequenceCount)
        for (value, sequence) in zip(logProbabilities, batch.targetSequence) { sums[sequence] += Double(value) }
        return sums
    }

    /// Activation plan sizes for pairs: a micro-batch holds whole pairs within `tokenBudget`, and a pair larger
    /// than the budget runs alone.
    static func capacity(_ pairs: [EncodedPair], tokenBudget: Int) -> (tokens: Int, sequence: Int) {
        let largestPair = pairs.map(\.tokenCount).max() ?? 1
        let longest = pairs.map(\.longestSequence).max() ?? 1
        return (max(tokenBudget, largestPair), max(longest, 1))
    }
}
