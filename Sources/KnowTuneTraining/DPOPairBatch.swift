// Implements the model input of a group of preference pairs: the sequences `prompt + chosen` and `prompt + rejected`
// packed end to end (pair-level: 2k and 2k+1; LF053's collator puts all chosen before all rejected, which changes
// nothing here because packed sequences never attend to each other), and each pair's sums of target log-probs (TRL
// `get_batch_logps` with average_log_prob=False). When sharing (grouped DPO), each distinct prompt is packed once, as a
// prefix, and each distinct (prompt, response) once, continuing it (PackedBatch's shared prompts), so KC data's three
// pairs of one prompt run the prompt once and the chosen answer once. Does not run the model.
import KnowTuneData
import KnowTuneModel

struct DPOPairBatch {
    private(set) var packed = PackedBatch()
    /// Sequence (in `packed`) of each pair's chosen and of its rejected answer.
    private(set) var chosenSequence: [Int] = []
    private(set) var rejectedSequence: [Int] = []

    private struct SequenceKey: Hashable {
        let prompt: [Int32]
        let response: [Int32]
    }

    /// Packs `pairs`; only answer tokens (EOS included) carry targets. `sharingSequences`: each distinct prompt and
    /// each distinct (prompt, response) is packed once.
    init(_ pairs: [EncodedPair], sharingSequences: Bool) {
        guard sharingSequences else {
            for pair in pairs {
                for response in [pair.chosen, pair.rejected] { packed.append(prompt: pair.prompt, response: response) }
                chosenSequence.append(packed.sequenceCount - 2)
                rejectedSequence.append(packed.sequenceCount - 1)
            }
            return
        }
        var prefixes: [[Int32]: Int] = [:]
        var seen: [SequenceKey: Int] = [:]
        func add(_ prompt: [Int32], _ response: [Int32]) -> Int {
            let key = SequenceKey(prompt: prompt, response: response)
            if let sequence = seen[key] { return sequence }
            packed.append(prompt: prompt, response: response, sharing: &prefixes)
            seen[key] = packed.sequenceCount - 1
            return packed.sequenceCount - 1
        }
        for pair in pairs {
            chosenSequence.append(add(pair.prompt, pair.chosen))
            rejectedSequence.append(add(pair.prompt, pair.rejected))
        }
    }

    var pairCount: Int { chosenSequence.count }

    /// Σ log p over each packed sequence's targets, in Double.
    func sequenceSums(_ logProbabilities: [Float]) -> [Double] {
        var sums = [Double](repeating: 0, count: packed.sequenceCount)
        for (value, sequence) in zip(logProbabilities, packed.targetSequence) { sums[sequence] += Double(value) }
        return sums
    }

    /// Tokens the packed pairs run: every sequence, or each distinct prompt and answer once when sharing.
    static func tokenCount(_ pairs: [EncodedPair], sharingSequences: Bool) -> Int {
        guard sharingSequences else { return pairs.reduce(0) { $0 + $1.tokenCount } }
        var prompts = Set<[Int32]>()
        var seen = Set<SequenceKey>()
        var tokens = 0
        for pair in pairs {
            for response in [pair.chosen, pair.rejected] where seen.insert(SequenceKey(prompt: pair.prompt, response: response)).inserted {
                let promptIsPacked = !prompts.insert(pair.prompt).inserted
                tokens += PackedBatch.sharedRows(prompt: pair.prompt, response: response, promptIsPacked: promptIsPacked)
            }
        }
        return tokens
    }

    /// Activation plan sizes: a micro-batch holds whole clusters (a pair, or the pairs of one group) within
    /// `tokenBudget`, and a cluster larger than the budget runs alone.
    static func capacity(_ pairs: [EncodedPair], groups: TrainingUnitGroups?, tokenBudget: Int) -> (tokens: Int, sequence: Int) {
        let clusters = groups?.members ?? pairs.indices.map { [$0] }
        let largestCluster = clusters.map { tokenCount($0.map { pairs[$0] }, sharingSequences: groups != nil) }.max() ?? 1
        let longest = pairs.map(\.longestSequence).max() ?? 1
        return (max(tokenBudget, largestCluster), max(longest, 1))
    }

    /// Pairs of one prompt form a group (`--dpo_group_by_prompt`), or nil for the pair-level order.
    static func promptGroups(_ pairs: [EncodedPair], enabled: Bool) -> TrainingUnitGroups? {
        enabled ? TrainingUnitGroups(keys: pairs.map(\.prompt)) : nil
    }
}
