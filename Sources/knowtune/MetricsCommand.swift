// Implements `knowtune metrics`: LLaMA-Factory's BLEU-4 / ROUGE (+ METEOR) recomputed from a predictions file,
// printed as one JSON object on stdout, optionally with bootstrap intervals over the questions and the paired
// difference from another model's predictions; bad lines are skipped with one warning, a file without a usable line
// is an error naming it.
import ArgumentParser
import Foundation
import KnowTuneEvaluation
import KnowTuneTensor

struct MetricsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "metrics", abstract: "Recompute predict_bleu-4, predict_rouge-1/2/l and predict_meteor from generated_predictions.jsonl.")

    @Argument(help: "A generated_predictions.jsonl file ({\"label\": …, \"predict\": …} per line).") var path: String

    @Option(name: .customLong("bootstrap"), help: "Add 95 % percentile bootstrap intervals over the questions from this many resamples (0: none).")
    var resamples = 0

    @Option(name: .customLong("minus"), help: "Another model's predictions of the same questions, in the same order: add the paired difference (this − that) with its bootstrap interval.")
    var baselinePath: String?

    @Option(help: "Seed of the bootstrap resampling.") var seed: UInt64 = 42

    func run() throws {
        do {
            let scorer = PredictionScorer()
            let (records, scores) = try readScores(path, scorer: scorer)
            let metrics = try PredictionMetrics(averaging: scores)
            guard resamples > 0 || baselinePath != nil else {
                let encoder = JSONEncoder()
                encoder.outputFormatting = [.sortedKeys]
                print(String(decoding: try encoder.encode(metrics), as: UTF8.self))
                return
            }
            var object = try JSONSerialization.jsonObject(with: try JSONEncoder().encode(metrics)) as? [String: Any] ?? [:]
            if resamples > 0 {
                object["bootstrap_95"] = try intervalObject(MetricIntervals(scores: scores, resamples: resamples, seed: seed))
            }
            if let baselinePath {
                let (baselineRecords, baselineScores) = try readScores(baselinePath, scorer: scorer)
                guard baselineRecords.map(\.label) == records.map(\.label) else {
                    throw KnowTuneError.invalidInput("--minus \(baselinePath): not the same questions as \(path) (labels differ or are "
                                                     + "in another order; \(baselineRecords.count) against \(records.count) usable lines)")
                }
                object["paired_difference_95"] = try intervalObject(
                    MetricIntervals(scores: scores, minus: baselineScores, resamples: max(resamples, 2000), seed: seed))
            }
            let data = try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])
            print(String(decoding: data, as: UTF8.self))
        } catch {
            logToStandardError("knowtune: error: \(error)")
            throw ExitCode(1)
        }
    }

    /// The usable records of a predictions file and their scores; bad lines are skipped with one warning.
    private func readScores(_ path: String, scorer: PredictionScorer) throws -> ([PredictionRecord], [ExampleScores]) {
        let file = try PredictionFile(contentsOf: URL(fileURLWithPath: path))
        if file.skippedLineCount > 0 {
            let first = file.skipped.prefix(3).map { "\($0)" }.joined(separator: "; ")
            logToStandardError("knowtune: warning: skipped \(file.skippedLineCount) bad line(s) in \(path): \(first)")
        }
        guard !file.records.isEmpty else {
            throw KnowTuneError.badFormat(path: path, reason: "no usable predictions (\(file.skippedLineCount) bad line(s))")
        }
        return (file.records, file.records.map { scorer.score(prediction: $0.predict, label: $0.label) })
    }

    private func intervalObject(_ intervals: MetricIntervals) throws -> Any {
        try JSONSerialization.jsonObject(with: try JSONEncoder().encode(intervals.intervals))
    }
}
