// Implements choosing the next token from one row of logits the way HF `generate` does for LLaMA-Factory 0.5.3:
// repetition penalty → inf/NaN removal → temperature → top-k → top-p → multinomial, or greedy argmax; and the
// per-sequence seeded generator. Does not run the model or decide when to stop (Generator does).
//
// Reference: transformers 4.38 `generation/utils.py` (`_get_logits_processor` then `_get_logits_warper`, in that
// order), `logits_process.py` (`RepetitionPenaltyLogitsProcessor`, `InfNanRemoveLogitsProcessor`,
// `TemperatureLogitsWarper`, `TopKLogitsWarper`, `TopPLogitsWarper`); LLaMA-Factory 0.5.3 adds
// `InfNanRemoveLogitsProcessor` as a user processor, which HF appends after its own (semantics note §1.4, §9.3).
import Foundation
import KnowTuneTensor

public struct Sampler {
    public let configuration: GenerationConfiguration

    public init(configuration: GenerationConfiguration) {
        self.configuration = configuration
    }

    /// The generator of one sequence, a pure function of (seed, example index), so a prompt samples the same tokens
    /// whether it is decoded alone or in any batch, and in any order.
    public static func generator(seed: UInt64, exampleIndex: Int) -> SplitMix64 {
        var key = SplitMix64.mix(seed ^ 0x4B54_5361_6D70_6C65)  // "KTSample"
        key = SplitMix64.mix(key ^ UInt64(bitPattern: Int64(exampleIndex)))
        return SplitMix64(seed: key)
    }

    /// Chooses the next token from `logits` [V] (overwritten with the processed scores). `previousTokens` are the ids
    /// the repetition penalty applies to: the prompt and everything generated so far (HF's `input_ids`).
    /// Draws exactly one number from `generator` when sampling, none when greedy.
    public func nextToken(logits: UnsafeMutablePointer<Float>, vocabularySize V: Int, previousTokens: Set<Int32>,
                          generator: inout SplitMix64) -> Int32 {
        let scores = UnsafeMutableBufferPointer(start: logits, count: V)
        // HF adds the penalty processor only when the factor is not 1.0, for greedy decoding too.
        if configuration.repetitionPenalty != 1.0 {
            Self.applyRepetitionPenalty(scores, penalty: Float(configuration.repetitionPenalty), tokens: previousTokens)
        }
        Self.removeInfinityAndNaN(scores)
        guard configuration.doSample else { return Self.argmax(scores) }
        if configuration.temperature != 1.0 { Self.applyTemperature(scores, temperature: Float(configuration.temperature)) }
        if configuration.topK != 0 { Self.applyTopK(scores, k: configuration.topK) }
        if configuration.topP < 1.0 { Self.applyTopP(scores, p: configuration.topP) }
        return Self.draw(scores, uniform: Self.unitDouble(&generator))
    }

    // MARK: - The processors, each as HF defines it

    /// `RepetitionPenaltyLogitsProcessor`: each distinct previous id's score is multiplied by the penalty when
    /// negative and divided by it otherwise (HF gathers and scatters once per id, so repeats count once).
    public static func applyRepetitionPenalty(_ scores: UnsafeMutableBufferPointer<Float>, penalty: Float, tokens: Set<Int32>) {
        for token in tokens where token >= 0 && Int(token) < scores.count {
            let score = scores[Int(token)]
            scores[Int(token)] = score < 0 ? score * penalty : score / penalty
        }
    }

    /// `InfNanRemoveLogitsProcessor`: NaN → 0, +inf → largest finite float, −inf → lowest finite float.
    public static func removeInfinityAndNaN(_ scores: UnsafeMutableBufferPointer<Float>) {
        for i in scores.indices where !scores[i].isFinite {
            let score = scores[i]
            scores[i] = score.isNaN ? 0 : (score > 0 ? Float.greatestFiniteMagnitude : -Float.greatestFiniteMagnitude)
        }
    }

    /// `TemperatureLogitsWarper`: scores / t (the Python float is rounded to fp32 first, as torch does for a scalar).
    public static func applyTemperature(_ scores: UnsafeMutableBufferPointer<Float>, temperature: Float) {
        for i in scores.indices { scores[i] = scores[i] / temperature }
    }

    /// `TopKLogitsWarper` (min_tokens_to_keep 1): every score below the k-th largest becomes −inf, so ties with the
    /// k-th largest are all kept (HF removes `scores < topk(scores, k).values[-1]`).
    public static func applyTopK(_ scores: UnsafeMutableBufferPointer<Float>, k requested: Int) {
        let k = min(max(requested, 1), scores.count)
        guard k < scores.count else { return }
        // The k largest values, kept sorted descending; most scores fail the first comparison.
        var largest: [Float] = []
        largest.reserveCapacity(k + 1)
        for score in scores {
            if largest.count == k, let smallest = largest.last, !(score > smallest) { continue }
            var index = largest.count
            while index > 0 && largest[index - 1] < score { index -= 1 }
            largest.insert(score, at: index)
            if largest.count > k { largest.removeLast() }
        }
        guard let threshold = largest.last else { return }
        for i in scores.indices where scores[i] < threshold { scores[i] = -.infinity }
    }

    /// `TopPLogitsWarper` (min_tokens_to_keep 1): sort ascending, softmax, cumulative sum, and remove every token whose
    /// cumulative probability is ≤ 1 − p; the most likely token always stays. The kept set is the smallest
    /// top set whose mass exceeds p, and a token exactly at the boundary (cumulative == 1 − p) is removed.
    ///
    /// Matches torch's arithmetic where it matters for the boundary: probabilities in fp32, the cumulative sum
    /// accumulated in double (torch's CPU `cumsum` accumulates float in double) and rounded to fp32, and the
    /// comparison in fp32 against `Float(1 − p)` (torch casts the Python scalar to the tensor's dtype). Equal
    /// scores are ordered with higher ids first in the ascending order, so ties are removed from the highest id
    /// down (torch's unstable sort leaves that order unspecified).
    public static func applyTopP(_ scores: UnsafeMutableBufferPointer<Float>, p: Double) {
        var candidates: [Int32] = []
        candidates.reserveCapacity(64)
        for i in scores.indices where scores[i] > -.infinity { candidates.append(Int32(i)) }
        guard candidates.count > 1 else { return }
        candidates.sort { a, b in
            let sa = scores[Int(a)], sb = scores[Int(b)]
            return sa < sb || (sa == sb && a > b)
        }
        guard let top = candidates.last else { return }
        let maximum = scores[Int(top)]
        var exponentials = [Float](repeating: 0, count: candidates.count)
        var sum: Double = 0
        for (n, id) in candidates.enumerated() {
            exponentials[n] = expf(scores[Int(id)] - maximum)
            sum += Double(exponentials[n])
        }
        let limit = Float(1 - p)
        var cumulative: Double = 0
        // The last (most likely) candidate is never removed.
        for n in 0..<(candidates.count - 1) {
            cumulative += Double(Float(Double(exponentials[n]) / sum))
            guard Float(cumulative) <= limit else { break }
            scores[Int(candidates[n])] = -.infinity
        }
    }

    /// Greedy choice: the highest score, the lowest id among equals (`torch.argmax` returns the first maximum).
    public static func argmax(_ scores: UnsafeMutableBufferPointer<Float>) -> Int32 {
        var best = 0
        for i in scores.indices where scores[i] > scores[best] { best = i }
        return Int32(best)
    }

    /// Multinomial draw from softmax(scores) given one uniform number in [0, 1): walks the ids in order and returns
    /// the first whose cumulative probability exceeds u. Tokens at −inf have probability 0 and are never chosen.
    public static func draw(_ scores: UnsafeMutableBufferPointer<Float>, uniform u: Double) -> Int32 {
        let maximum = scores.max() ?? 0
        var total: Double = 0
        for score in scores where score > -.infinity { total += Double(expf(score - maximum)) }
        let target = u * total
        var cumulative: Double = 0
        var last = 0
        for i in scores.indices where scores[i] > -.infinity {
            cumulative += Double(expf(scores[i] - maximum))
            last = i
            if cumulative > target { return Int32(i) }
        }
        // Rounding can leave u·total a hair above the running sum: the last possible token is the answer.
        return Int32(last)
    }

    /// A uniform Double in [0, 1) from 53 random bits.
    static func unitDouble(_ generator: inout SplitMix64) -> Double {
        Double(generator.next() >> 11) * (1.0 / 9_007_199_254_740_992.0)
    }
}
