// Implements the per-example scoring of LLaMA-Factory 0.5.3 `train/sft/metric.py::ComputeMetrics`
// (BLEU-4, ROUGE-1/2/L, each ×100 and rounded with Python's `round(x, 4)`) plus KnowTune's METEOR on
// the same scale; does not average (see `PredictionMetrics`) or decode token ids: it takes the
// decoded texts LF would score (special tokens skipped, no tokenization-space cleanup).

/// One example's scores as LF 0.5.3 keeps them before averaging: percentages rounded to 4 decimals.
public struct ExampleScores: Codable, Equatable, Sendable {
    public var bleu4, rouge1, rouge2, rougeL, meteor: Double

    public init(bleu4: Double, rouge1: Double, rouge2: Double, rougeL: Double, meteor: Double) {
        self.bleu4 = bleu4
        self.rouge1 = rouge1
        self.rouge2 = rouge2
        self.rougeL = rougeL
        self.meteor = meteor
    }

    enum CodingKeys: String, CodingKey {
        case bleu4 = "bleu-4"
        case rouge1 = "rouge-1"
        case rouge2 = "rouge-2"
        case rougeL = "rouge-l"
        case meteor
    }
}

/// Scores (prediction, label) pairs the way LF 0.5.3's `ComputeMetrics` does, plus METEOR.
public struct PredictionScorer: Sendable {
    public var splitter: JiebaStyleWordSplitter
    public var meteorStages: METEORScore.Stages

    /// - Parameters:
    ///   - splitter: the jieba-style splitter for ROUGE and METEOR words.
    ///   - meteorStages: METEOR's matching stages; by default exact then Porter stem.
    public init(
        splitter: JiebaStyleWordSplitter = JiebaStyleWordSplitter(),
        meteorStages: METEORScore.Stages = .exactThenPorterStem
    ) {
        self.splitter = splitter
        self.meteorStages = meteorStages
    }

    /// The rounded percentages for one pair.
    ///
    /// LF multiplies each score by 100 and rounds with `round(·, 4)` per example, so averages are
    /// of rounded values; `PythonFloatArithmetic.round` reproduces CPython's rounding bit for bit.
    public func score(prediction: String, label: String) -> ExampleScores {
        let predictionTokens = splitter.tokens(of: PythonText.codePoints(prediction))
        let labelTokens = splitter.tokens(of: PythonText.codePoints(label))
        let rouge = ROUGEScore.scores(predictionTokens: predictionTokens, labelTokens: labelTokens)
        let bleu = BLEUScore.characterBLEU4(prediction: prediction, label: label)
        let meteor = METEORScore.score(
            predictionTokens: predictionTokens, labelTokens: labelTokens, stages: meteorStages,
            parameters: METEORScore.Parameters())
        func percent(_ value: Double) -> Double {
            PythonFloatArithmetic.round(value * 100, digits: 4)
        }
        return ExampleScores(
            bleu4: percent(bleu), rouge1: percent(rouge.rouge1), rouge2: percent(rouge.rouge2),
            rougeL: percent(rouge.rougeL), meteor: percent(meteor))
    }
}
