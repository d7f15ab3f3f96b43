// Implements `knowtune metrics`: LLaMA-Factory's BLEU-4 / ROUGE (+ METEOR) recomputed from a predictions file,
// printed as one JSON object on stdout; bad lines are skipped with one warning, a file without a usable line is an
// error naming it.
import ArgumentParser
import Foundation
import KnowTuneEvaluation
import KnowTuneTensor

struct MetricsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "metrics", abstract: "Recompute predict_bleu-4, predict_rouge-1/2/l and predict_meteor from generated_predictions.jsonl.")

    @Argument(help: "A generated_predictions.jsonl file ({\"label\": …, \"predict\": …} per line).") var path: String

    func run() throws {
        do {
            let file = try PredictionFile(contentsOf: URL(fileURLWithPath: path))
            if file.skippedLineCount > 0 {
                let first = file.skipped.prefix(3).map { "\($0)" }.joined(separator: "; ")
                logToStandardError("knowtune: warning: skipped \(file.skippedLineCount) bad line(s) in \(path): \(first)")
            }
            guard !file.records.isEmpty else {
                throw KnowTuneError.badFormat(path: path, reason: "no usable predictions (\(file.skippedLineCount) bad line(s))")
            }
            let metrics = try PredictionMetrics.evaluate(file.records, scorer: PredictionScorer())
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys]
            print(String(decoding: try encoder.encode(metrics), as: UTF8.self))
        } catch {
            logToStandardError("knowtune: error: \(error)")
            throw ExitCode(1)
        }
    }
}
