// Implements ROUGE-1, ROUGE-2 and ROUGE-L F-scores as LLaMA-Factory 0.5.3
// `train/sft/metric.py::ComputeMetrics` gets them from rouge-chinese 1.0.3 `Rouge().get_scores`
// over jieba-split, space-joined text; does not implement rouge-chinese's non-exclusive (list)
// n-gram mode, the summary-level union LCS, or averaging (see `PredictionMetrics`).

/// ROUGE F-scores in 0...1, before LLaMA-Factory's ×100 and rounding.
public struct ROUGEScores: Equatable, Sendable {
    public var rouge1: Double
    public var rouge2: Double
    public var rougeL: Double

    public init(rouge1: Double, rouge2: Double, rougeL: Double) {
        self.rouge1 = rouge1
        self.rouge2 = rouge2
        self.rougeL = rougeL
    }

    public static let zero = ROUGEScores(rouge1: 0, rouge2: 0, rougeL: 0)
}

public enum ROUGEScore {
    /// ROUGE for one prediction against its label, as LF 0.5.3 computes it.
    ///
    /// Both sides are split with jieba and joined with single spaces. If either joined text has
    /// no non-whitespace character (empty or whitespace-only text), all three scores are 0, as LF
    /// sets them without calling rouge-chinese (which would raise on an empty hypothesis).
    public static func scores(
        prediction: String, label: String, splitter: JiebaStyleWordSplitter = JiebaStyleWordSplitter()
    ) -> ROUGEScores {
        scores(
            predictionTokens: splitter.tokens(of: PythonText.codePoints(prediction)),
            labelTokens: splitter.tokens(of: PythonText.codePoints(label)))
    }

    /// ROUGE from already split tokens (jieba's output, whitespace tokens included).
    static func scores(predictionTokens: [CodePoints], labelTokens: [CodePoints]) -> ROUGEScores {
        let hypothesis = joinedWithSpaces(predictionTokens)
        let reference = joinedWithSpaces(labelTokens)
        guard PythonText.hasNonWhitespace(hypothesis), PythonText.hasNonWhitespace(reference) else {
            return .zero
        }
        return rougeChineseScores(hypothesis: hypothesis, reference: reference)
    }

    /// rouge-chinese 1.0.3 `Rouge().get_scores(hypothesis, reference)[0]` F-scores for texts
    /// that are already space-separated words. Both must contain a non-whitespace character.
    public static func rougeChineseScores(hypothesis: String, reference: String) -> ROUGEScores {
        rougeChineseScores(
            hypothesis: PythonText.codePoints(hypothesis), reference: PythonText.codePoints(reference))
    }

    static func rougeChineseScores(hypothesis: CodePoints, reference: CodePoints) -> ROUGEScores {
        // Words are compared by code points; interning them as integers keeps the n-gram sets
        // and the LCS table cheap and avoids Swift's canonical-equivalence String comparison.
        var interner = WordInterner()
        let hypothesisWords = ROUGESentenceSplitter.words(hypothesis).map { interner.id(of: $0) }
        let referenceWords = ROUGESentenceSplitter.words(reference).map { interner.id(of: $0) }
        return ROUGEScores(
            rouge1: rougeN(hypothesis: hypothesisWords, reference: referenceWords, order: 1),
            rouge2: rougeN(hypothesis: hypothesisWords, reference: referenceWords, order: 2),
            rougeL: rougeL(hypothesis: hypothesisWords, reference: referenceWords))
    }

    /// rouge-chinese `rouge_n` with `exclusive=True`: n-grams as *sets*, so repeats count once.
    /// Matches `f_r_p_rouge_n`: a side with no n-grams has precision (or recall) 0, and
    /// `F = 2·(P·R / (P + R + 1e-8))`.
    static func rougeN(hypothesis: [Int], reference: [Int], order: Int) -> Double {
        let hypothesisGrams = ngramSet(hypothesis, order: order)
        let referenceGrams = ngramSet(reference, order: order)
        let overlap = hypothesisGrams.intersection(referenceGrams).count
        let precision = hypothesisGrams.isEmpty ? 0 : Double(overlap) / Double(hypothesisGrams.count)
        let recall = referenceGrams.isEmpty ? 0 : Double(overlap) / Double(referenceGrams.count)
        return fScore(precision: precision, recall: recall)
    }

    /// rouge-chinese `rouge_l_summary_level` as 1.0.3 actually computes it: one plain LCS over
    /// the flattened word lists (not the union LCS its docstring describes).
    static func rougeL(hypothesis: [Int], reference: [Int]) -> Double {
        let common = Double(longestCommonSubsequenceLength(reference, hypothesis))
        let recall = common / Double(reference.count)
        let precision = common / Double(hypothesis.count)
        return fScore(precision: precision, recall: recall)
    }

    /// `2.0 * ((p * r) / (p + r + 1e-8))`, in that operation order.
    static func fScore(precision: Double, recall: Double) -> Double {
        2.0 * ((precision * recall) / (precision + recall + 1e-8))
    }

    static func ngramSet(_ words: [Int], order: Int) -> Set<ArraySlice<Int>> {
        guard words.count >= order else { return [] }
        var grams = Set<ArraySlice<Int>>()
        for start in 0...(words.count - order) {
            grams.insert(words[start..<start + order])
        }
        return grams
    }

    /// Length of the longest common subsequence (two-row dynamic programme).
    static func longestCommonSubsequenceLength(_ x: [Int], _ y: [Int]) -> Int {
        if x.isEmpty || y.isEmpty { return 0 }
        var previous = [Int](repeating: 0, count: y.count + 1)
        var current = previous
        for i in 1...x.count {
            for j in 1...y.count {
                current[j] = x[i - 1] == y[j - 1] ? previous[j - 1] + 1 : max(previous[j], current[j - 1])
            }
            swap(&previous, &current)
        }
        return previous[y.count]
    }

    private static func joinedWithSpaces(_ tokens: [CodePoints]) -> CodePoints {
        var joined: CodePoints = []
        for (index, token) in tokens.enumerated() {
            if index > 0 { joined.append(" ") }
            joined.append(contentsOf: token)
        }
        return joined
    }
}

/// Maps distinct code-point words to small integers.
struct WordInterner {
    private var ids: [CodePoints: Int] = [:]

    mutating func id(of word: CodePoints) -> Int {
        if let id = ids[word] { return id }
        let id = ids.count
        ids[word] = id
        return id
    }
}
