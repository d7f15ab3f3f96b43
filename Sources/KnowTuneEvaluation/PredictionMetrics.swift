// Implements the aggregate prediction metrics LLaMA-Factory 0.5.3 reports after
// `--do_predict --predict_with_generate` (`predict_bleu-4`, `predict_rouge-1/2/l`, the numpy mean of
// the per-example rounded scores) plus KnowTune's `predict_meteor`; does not add the runtime keys
// (`predict_runtime`, `predict_samples_per_second`, …) or write `predict_results.json`.
import KnowTuneTensor

/// The averaged prediction metrics, with LF's JSON keys.
public struct PredictionMetrics: Codable, Equatable, Sendable {
    public var bleu4: Double
    public var rouge1: Double
    public var rouge2: Double
    public var rougeL: Double
    /// Not in LF 0.5.3; see `METEORScore.score(prediction:label:…)` for its definition.
    public var meteor: Double

    enum CodingKeys: String, CodingKey {
        case bleu4 = "predict_bleu-4"
        case rouge1 = "predict_rouge-1"
        case rouge2 = "predict_rouge-2"
        case rougeL = "predict_rouge-l"
        case meteor = "predict_meteor"
    }

    public init(bleu4: Double, rouge1: Double, rouge2: Double, rougeL: Double, meteor: Double) {
        self.bleu4 = bleu4
        self.rouge1 = rouge1
        self.rouge2 = rouge2
        self.rougeL = rougeL
        self.meteor = meteor
    }

    static let noExamplesMessage = "no predictions to score: the mean of zero examples is undefined"

    /// The mean of each score over the examples, as `float(np.mean(scores))` (pairwise summation).
    ///
    /// - Throws: `KnowTuneError.invalidInput` for an empty list, where numpy would give NaN
    ///   (which JSON cannot carry).
    public init(averaging examples: [ExampleScores]) throws {
        guard !examples.isEmpty else { throw KnowTuneError.invalidInput(Self.noExamplesMessage) }
        func mean(_ value: (ExampleScores) -> Double) -> Double {
            PythonFloatArithmetic.numpyMean(examples.map(value))
        }
        self.init(
            bleu4: mean(\.bleu4), rouge1: mean(\.rouge1), rouge2: mean(\.rouge2), rougeL: mean(\.rougeL),
            meteor: mean(\.meteor))
    }

    /// Scores every (prediction, label) pair and averages, in order.
    public static func evaluate(
        _ pairs: [(prediction: String, label: String)], scorer: PredictionScorer = PredictionScorer()
    ) throws -> PredictionMetrics {
        try PredictionMetrics(averaging: pairs.map { scorer.score(prediction: $0.prediction, label: $0.label) })
    }

    /// Scores the records of a `generated_predictions.jsonl` and averages.
    public static func evaluate(
        _ records: [PredictionRecord], scorer: PredictionScorer = PredictionScorer()
    ) throws -> PredictionMetrics {
        try PredictionMetrics(averaging: records.map { scorer.score(prediction: $0.predict, label: $0.label) })
    }
}
