// Implements the bootstrap intervals of every prediction metric (LLaMA-Factory's keys, on its ×100 scale): of one
// model's mean, or of the paired difference between two models' scores on the same questions. Does not score.

public struct MetricIntervals: Codable, Equatable, Sendable {
    /// Keyed by `predict_bleu-4`, `predict_rouge-1`, `predict_rouge-2`, `predict_rouge-l`, `predict_meteor`.
    public var intervals: [String: BootstrapInterval]

    static let metrics: [(key: String, value: KeyPath<ExampleScores, Double>)] = [
        ("predict_bleu-4", \.bleu4), ("predict_rouge-1", \.rouge1), ("predict_rouge-2", \.rouge2),
        ("predict_rouge-l", \.rougeL), ("predict_meteor", \.meteor),
    ]

    /// Each metric's mean with its percentile bootstrap interval over the questions.
    public init(scores: [ExampleScores], resamples: Int = 2000, confidence: Double = 0.95, seed: UInt64 = 42) throws {
        intervals = [:]
        for (key, value) in Self.metrics {
            intervals[key] = try BootstrapInterval(of: scores.map { $0[keyPath: value] }, resamples: resamples,
                                                   confidence: confidence, seed: seed)
        }
    }

    /// Each metric's mean difference `scores − baseline` over the same questions, with its paired interval.
    public init(scores: [ExampleScores], minus baseline: [ExampleScores], resamples: Int = 2000, confidence: Double = 0.95,
                seed: UInt64 = 42) throws {
        intervals = [:]
        for (key, value) in Self.metrics {
            intervals[key] = try BootstrapInterval(pairedDifferenceOf: scores.map { $0[keyPath: value] },
                                                   minus: baseline.map { $0[keyPath: value] }, resamples: resamples,
                                                   confidence: confidence, seed: seed)
        }
    }
}
