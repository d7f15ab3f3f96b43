// Implements NLTK 3.7 `sentence_bleu` with `SmoothingFunction().method3` (NIST geometric
// smoothing), and the character-level call LLaMA-Factory 0.5.3 makes with it
// (`sentence_bleu([list(label)], list(pred), smoothing_function=method3)`); does not implement
// corpus-level BLEU over several sentences, NLTK's other smoothing methods, or `auto_reweigh`.

import Foundation

public enum BLEUScore {
    /// LF 0.5.3's BLEU-4 for one prediction, in 0...1 (before its ×100 and rounding).
    ///
    /// Tokens are code points — every character including spaces and newlines — because LF passes
    /// `list(label)` and `list(pred)`, Python strings split into characters.
    public static func characterBLEU4(prediction: String, label: String) -> Double {
        let hypothesis = prediction.unicodeScalars.map(\.value)
        let reference = label.unicodeScalars.map(\.value)
        return sentenceBLEU(references: [reference], hypothesis: hypothesis)
    }

    /// NLTK 3.7 `sentence_bleu(references, hypothesis, weights, smoothing_function=method3)`.
    ///
    /// - Modified precision for each order n (`modified_precision`): hypothesis n-gram counts
    ///   clipped by their largest count in any one reference, over `max(1, #hypothesis n-grams)`.
    /// - If no unigram matches, the score is 0 (NLTK returns before smoothing).
    /// - method3: the k-th precision (k = 1, 2, …) with a zero numerator becomes
    ///   `1 / (2^k · denominator)`.
    /// - Brevity penalty against the reference length closest to the hypothesis length (ties to
    ///   the shorter): 1 if the hypothesis is longer, 0 if it is empty, else `exp(1 − r/c)`.
    /// - `BLEU = BP · exp(fsum(w_n · log p_n))`, with `math.fsum`'s exactly rounded sum.
    public static func sentenceBLEU<Token: Hashable>(
        references: [[Token]], hypothesis: [Token], weights: [Double] = [0.25, 0.25, 0.25, 0.25]
    ) -> Double {
        let precisions = (1...max(1, weights.count)).map {
            modifiedPrecision(references: references, hypothesis: hypothesis, order: $0)
        }
        if precisions[0].numerator == 0 { return 0 }
        let referenceLength = closestReferenceLength(references: references, hypothesisLength: hypothesis.count)
        let penalty = brevityPenalty(referenceLength: referenceLength, hypothesisLength: hypothesis.count)

        // method3. Fractions are turned into doubles by one correctly rounded division, as
        // Python's `float(Fraction)` and `1 / (2 ** k * d)` are.
        var smoothingStep = 1
        var values: [Double] = []
        for precision in precisions {
            if precision.numerator == 0 {
                values.append(1.0 / Double((1 << smoothingStep) * precision.denominator))
                smoothingStep += 1
            } else {
                values.append(Double(precision.numerator) / Double(precision.denominator))
            }
        }
        let weightedLogs = zip(weights, values).filter { $0.1 > 0 }.map { $0.0 * Foundation.log($0.1) }
        return penalty * Foundation.exp(PythonFloatArithmetic.fsum(weightedLogs))
    }

    /// NLTK 3.7 `modified_precision` as an unreduced fraction (`_normalize=False`).
    static func modifiedPrecision<Token: Hashable>(
        references: [[Token]], hypothesis: [Token], order: Int
    ) -> (numerator: Int, denominator: Int) {
        let counts = ngramCounts(hypothesis, order: order)
        var maxReferenceCounts: [ArraySlice<Token>: Int] = [:]
        for reference in references {
            let referenceCounts = ngramCounts(reference, order: order)
            for gram in counts.keys {
                maxReferenceCounts[gram] = max(maxReferenceCounts[gram, default: 0], referenceCounts[gram, default: 0])
            }
        }
        var clipped = 0
        var total = 0
        for (gram, count) in counts {
            clipped += min(count, maxReferenceCounts[gram, default: 0])
            total += count
        }
        return (clipped, max(1, total))
    }

    /// NLTK 3.7 `closest_ref_length`: the reference length nearest the hypothesis length, the
    /// shorter one on a tie.
    static func closestReferenceLength<Token>(references: [[Token]], hypothesisLength: Int) -> Int {
        let lengths = references.map(\.count)
        return lengths.min { a, b in
            let distanceA = abs(a - hypothesisLength)
            let distanceB = abs(b - hypothesisLength)
            return distanceA != distanceB ? distanceA < distanceB : a < b
        } ?? 0
    }

    /// NLTK 3.7 `brevity_penalty`.
    static func brevityPenalty(referenceLength: Int, hypothesisLength: Int) -> Double {
        if hypothesisLength > referenceLength { return 1 }
        if hypothesisLength == 0 { return 0 }
        return Foundation.exp(1 - Double(referenceLength) / Double(hypothesisLength))
    }

    static func ngramCounts<Token: Hashable>(_ tokens: [Token], order: Int) -> [ArraySlice<Token>: Int] {
        guard tokens.count >= order else { return [:] }
        var counts: [ArraySlice<Token>: Int] = [:]
        for start in 0...(tokens.count - order) {
            counts[tokens[start..<start + order], default: 0] += 1
        }
        return counts
    }
}
