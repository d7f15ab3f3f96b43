// Implements the model's input: several variable-length sequences packed end to end with no padding, and the
// target token each position predicts; does not tokenize or template. A sequence may continue another one, a shared
// prefix without targets (a DPO group's prompt, run once for all of its answers): it attends to the whole prefix
// before its own tokens and its positions go on from the prefix's length, so it computes what prefix + sequence
// would as one sequence.
import KnowTuneTensor

public struct PackedBatch {
    /// Token ids of all sequences, concatenated. [N]
    public private(set) var tokens: [Int32] = []
    /// Position of each token within its own sequence (RoPE index). [N]
    public private(set) var positions: [Int32] = []
    /// sequenceStarts[b] ..< sequenceStarts[b+1] are sequence b's rows. [B+1]
    public private(set) var sequenceStarts: [Int] = [0]
    /// The token position t must predict (its label shifted by one, HF style), or −1 for no loss. [N]
    public private(set) var targets: [Int32] = []
    /// Index of each sequence's example in the global batch (keys LoRA dropout masks). [B]
    public private(set) var exampleIndices: [Int] = []
    /// The sequence whose rows sequence b continues, or −1. [B]
    public private(set) var prefixSequence: [Int] = []

    public init() {}

    public var tokenCount: Int { tokens.count }
    public var sequenceCount: Int { sequenceStarts.count - 1 }
    public var targetCount: Int { targets.reduce(0) { $0 + ($1 >= 0 ? 1 : 0) } }
    /// Rows of sequence b.
    public func length(ofSequence b: Int) -> Int { sequenceStarts[b + 1] - sequenceStarts[b] }
    /// The longest sequence a query sees: its own rows plus its prefix's.
    public var longestSequence: Int {
        (0..<sequenceCount).map { length(ofSequence: $0) + (prefixSequence[$0] >= 0 ? length(ofSequence: prefixSequence[$0]) : 0) }.max() ?? 0
    }

    /// Adds one sequence with HF-style labels (same length as `ids`, −100 where no loss). Position t gets the
    /// target labels[t+1], so the last position never has one.
    public mutating func append(ids: [Int32], labels: [Int32], exampleIndex: Int? = nil) {
        precondition(ids.count == labels.count, "ids and labels differ in length")
        let shifted = (0..<labels.count).map { t -> Int32 in t + 1 < labels.count ? labels[t + 1] : -100 }
        append(ids: ids, targets: shifted, exampleIndex: exampleIndex)
    }

    /// Adds one sequence with explicit next-token targets (position t predicts targets[t]; −1 for none), e.g. to
    /// give the last position a target that is not part of the input.
    public mutating func append(ids: [Int32], targets: [Int32], exampleIndex: Int? = nil) {
        appendRows(ids: ids, targets: targets, exampleIndex: exampleIndex, continuing: nil)
    }

    /// Adds a shared prefix (no targets) that later sequences continue; returns its sequence index.
    public mutating func appendPrefix(_ ids: [Int32], exampleIndex: Int? = nil) -> Int {
        appendRows(ids: ids, targets: [Int32](repeating: -1, count: ids.count), exampleIndex: exampleIndex, continuing: nil)
        return sequenceCount - 1
    }

    /// Adds a sequence that continues the prefix `prefix` (an index `appendPrefix` returned): position t predicts
    /// targets[t], and its positions start at the prefix's length.
    public mutating func append(continuing prefix: Int, ids: [Int32], targets: [Int32], exampleIndex: Int? = nil) {
        precondition(prefix >= 0 && prefix < sequenceCount && prefixSequence[prefix] < 0, "a prefix must be a plain earlier sequence")
        appendRows(ids: ids, targets: targets, exampleIndex: exampleIndex, continuing: prefix)
    }

    /// Adds prompt + response, only the response under loss, with the prompt run once per batch: the first use of a
    /// prompt packs it (without its last token) as a prefix recorded in `prefixes`, and every response continues it with
    /// the prompt's last token (which predicts the response's first) and the response without its last token (which
    /// predicts nothing and is seen by nothing). The response's log-probs are those of `append(prompt:response:)`. A
    /// prompt of one token has nothing to share and is packed whole.
    public mutating func append(prompt: [Int32], response: [Int32], sharing prefixes: inout [[Int32]: Int]) {
        guard prompt.count > 1 else { return append(prompt: prompt, response: response) }
        let prefix = prefixes[prompt] ?? appendPrefix(Array(prompt.dropLast()))
        prefixes[prompt] = prefix
        append(continuing: prefix, ids: [prompt[prompt.count - 1]] + response.dropLast(), targets: response.isEmpty ? [-1] : response)
    }

    /// Rows `append(prompt:response:sharing:)` adds: the response's, plus the prompt's prefix when `promptIsPacked` is
    /// false (batch sizes are planned by it, so it must match the packing exactly).
    public static func sharedRows(prompt: [Int32], response: [Int32], promptIsPacked: Bool) -> Int {
        guard prompt.count > 1 else { return prompt.count + response.count }
        return (promptIsPacked ? 0 : prompt.count - 1) + max(response.count, 1)
    }

    private mutating func appendRows(ids: [Int32], targets: [Int32], exampleIndex: Int?, continuing prefix: Int?) {
        precondition(ids.count == targets.count && !ids.isEmpty, "ids and targets differ in length")
        let firstPosition = prefix.map { length(ofSequence: $0) } ?? 0
        tokens += ids
        positions += (0..<ids.count).map { Int32(firstPosition + $0) }
        self.targets += targets.map { $0 < 0 ? -1 : $0 }
        exampleIndices.append(exampleIndex ?? exampleIndices.count)
        prefixSequence.append(prefix ?? -1)
        sequenceStarts.append(tokens.count)
    }

    /// Adds prompt + response where only the response tokens carry loss (the usual SFT / scoring case).
    public mutating func append(prompt: [Int32], response: [Int32], exampleIndex: Int? = nil) {
        let labels = [Int32](repeating: -100, count: prompt.count) + response
        append(ids: prompt + response, labels: labels, exampleIndex: exampleIndex)
    }

    /// Rows with a target, in row order, and their target ids.
    public var targetRows: [(row: Int, target: Int32)] {
        targets.enumerated().compactMap { $0.element >= 0 ? ($0.offset, $0.element) : nil }
    }

    /// The sequence that owns each target row, in target order (for per-sequence sums such as DPO's log-probs).
    public var targetSequence: [Int] {
        var result: [Int] = []
        for b in 0..<sequenceCount {
            for row in sequenceStarts[b]..<sequenceStarts[b + 1] where targets[row] >= 0 { result.append(b) }
        }
        return result
    }
}
