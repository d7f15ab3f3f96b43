// Implements the model's input: several variable-length sequences packed end to end with no padding, and the
// target token each position predicts; does not tokenize or template.
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

    public init() {}

    public var tokenCount: Int { tokens.count }
    public var sequenceCount: Int { sequenceStarts.count - 1 }
    public var targetCount: Int { targets.reduce(0) { $0 + ($1 >= 0 ? 1 : 0) } }
    public var longestSequence: Int {
        (0..<sequenceCount).map { sequenceStarts[$0 + 1] - sequenceStarts[$0] }.max() ?? 0
    }

    /// Adds one sequence with HF-style labels (same length as `ids`, −100 where no loss). Position t gets the
    /// target labels[t+1], so the last position never has one.
    public mutating func append(ids: [Int32], labels: [Int32], exampleIndex: Int? = nil) {
        precondition(ids.count == labels.count, "ids and labels differ in length")
        precondition(!ids.isEmpty, "empty sequence")
        tokens += ids
        positions += (0..<ids.count).map { Int32($0) }
        for t in 0..<ids.count {
            let next = t + 1 < labels.count ? labels[t + 1] : -100
            targets.append(next < 0 ? -1 : next)
        }
        exampleIndices.append(exampleIndex ?? exampleIndices.count)
        sequenceStarts.append(tokens.count)
    }

    /// Adds one sequence with explicit next-token targets (position t predicts targets[t]; −1 for none), e.g. to
    /// give the last position a target that is not part of the input.
    public mutating func append(ids: [Int32], targets: [Int32], exampleIndex: Int? = nil) {
        precondition(ids.count == targets.count && !ids.isEmpty, "ids and targets differ in length")
        tokens += ids
        positions += (0..<ids.count).map { Int32($0) }
        self.targets += targets.map { $0 < 0 ? -1 : $0 }
        exampleIndices.append(exampleIndex ?? exampleIndices.count)
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
