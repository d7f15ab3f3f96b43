// Implements the predict stage (LLaMA-Factory `run_sft` with `--do_predict --predict_with_generate`): adapters
// merged into the base, the test examples sharded over the ranks by prompt length, generated with the configured
// sampling (seeded per example, so the result does not depend on the rank count), gathered to rank 0 in dataset
// order, scored with LLaMA-Factory's BLEU-4/ROUGE (+ METEOR) and written as generated_predictions.jsonl,
// predict_results.json and all_results.json; does not train.
import Foundation
import KnowTuneData
import KnowTuneDistributed
import KnowTuneEvaluation
import KnowTuneGeneration
import KnowTuneModel
import KnowTuneTensor

public enum PredictWorkflow {
    /// One example ready for generation.
    struct PredictExample {
        var index: Int
        var prompt: [Int32]
        var label: String
    }

    /// What a rank sends back for one example.
    struct PredictionMessage: Codable {
        var index: Int
        var predict: String
        var generatedTokens: Int
        var problem: String?
    }

    public static func run(arguments: PredictionArguments, communicator: any Communicator, logger: RankLogger) throws {
        try Consensus.runAgreed(communicator: communicator, operation: "validate predict arguments") {
            if arguments.modelNameOrPath.isEmpty { throw KnowTuneError.invalidConfiguration("--model_name_or_path is required") }
            if arguments.dataset.isEmpty { throw KnowTuneError.invalidConfiguration("--dataset is required") }
            if arguments.outputDir.isEmpty { throw KnowTuneError.invalidConfiguration("--output_dir is required") }
            try FileManager.default.createDirectory(atPath: arguments.outputDir, withIntermediateDirectories: true)
        }
        let model = try NodeSharedModel.load(arguments.modelNameOrPath, precision: arguments.basePrecision,
                                             communicator: communicator, logger: logger)
        _ = try Consensus.runAgreed(communicator: communicator, operation: "merge adapters") {
            // Merging writes private copies of the adapted projections' pages only.
            try LoRAMerger.mergeAdapters(at: arguments.adapterPaths, into: model.weights)
        }
        let examples = try Consensus.runAgreed(communicator: communicator, operation: "prepare predict data") {
            try prepare(arguments, tokenizer: model.tokenizer)
        }
        let configuration = arguments.generation
        logger.info("predict: \(examples.count) examples from \(arguments.dataset) on \(communicator.size) rank(s), "
                    + (configuration.doSample ? "sampling (T \(configuration.temperature), top-p \(configuration.topP), top-k \(configuration.topK))" : "greedy")
                    + ", ≤ \(configuration.maxNewTokens) new tokens" + (arguments.adapterPaths.isEmpty ? "" : ", adapters \(arguments.adapterPaths.joined(separator: ","))"))
        let started = Date()
        let mine = BatchSharder.shard(tokenCounts: examples.map { $0.prompt.count }, rankCount: communicator.size)[communicator.rank]
        let local = try Consensus.runAgreed(communicator: communicator, operation: "generate") { () -> [PredictionMessage] in
            let generator = Generator(weights: model.weights, stopTokenIds: [model.tokenizer.eosTokenId],
                                      batchSize: arguments.batchSize)
            let results = try generator.generate(prompts: mine.map { examples[$0].prompt }, exampleIndices: mine.map { examples[$0].index },
                                                 configuration: configuration)
            return zip(mine, results).map { position, result in
                switch result {
                case let .success(ids):
                    return PredictionMessage(index: position, predict: generator.text(of: ids, tokenizer: model.tokenizer),
                                             generatedTokens: ids.count, problem: nil)
                case let .failure(error):
                    return PredictionMessage(index: position, predict: "", generatedTokens: 0, problem: error.description)
                }
            }
        }
        let gathered = try communicator.allGather(Array(try JSONEncoder().encode(local)), operation: "gather predictions")
        let runtime = Date().timeIntervalSince(started)
        var failure: Error?
        if communicator.isMainRank {
            do {
                var messages = [PredictionMessage?](repeating: nil, count: examples.count)
                for bytes in gathered {
                    for message in try JSONDecoder().decode([PredictionMessage].self, from: Data(bytes)) { messages[message.index] = message }
                }
                try write(examples: examples, messages: messages.compactMap { $0 }, runtime: runtime, arguments: arguments, logger: logger)
            } catch { failure = error }
        }
        try Consensus.agree(failure.map { .failure($0) } ?? .success(()), communicator: communicator, operation: "write predictions")
    }

    /// Templated prompts and reference labels, with LLaMA-Factory 0.5.3's proportional prompt/label truncation.
    static func prepare(_ arguments: PredictionArguments, tokenizer: any Tokenizer) throws -> [PredictExample] {
        let registry = try DatasetRegistry(directory: arguments.datasetDir)
        let records = try DatasetLoader.load(names: arguments.datasetNames, registry: registry, maxSamples: arguments.maxSamples)
        let template = ChatTemplate(kind: arguments.template)
        let encoder = SupervisedEncoder(template: template, tokenizer: tokenizer, cutoffLength: arguments.cutoffLength,
                                        reservedLabelLength: arguments.reservedLabelLength)
        guard !records.isEmpty else { throw KnowTuneError.invalidInput("\(arguments.dataset) holds no records") }
        return records.enumerated().map { index, record in
            let prompt = encoder.encodePrompt(record)
            let label = encoder.encodeResponse(record.responses.first ?? "")
            let kept = encoder.kept(source: prompt.count, target: label.count)
            let labelIds = Array(label.prefix(kept.target)).filter { $0 != tokenizer.eosTokenId }
            return PredictExample(index: index, prompt: Array(prompt.prefix(kept.source)), label: tokenizer.decode(labelIds))
        }
    }

    /// HF `clean_up_tokenization_spaces`, which LLaMA-Factory applies to the saved predictions only.
    static func cleanUpTokenizationSpaces(_ text: String) -> String {
        var result = text
        for (from, to) in [(" .", "."), (" ?", "?"), (" !", "!"), (" ,", ","), (" ' ", "'"), (" n't", "n't"), (" 'm", "'m"),
                           (" 's", "'s"), (" 've", "'ve"), (" 're", "'re")] {
            result = result.replacingOccurrences(of: from, with: to)
        }
        return result
    }

    static func write(examples: [PredictExample], messages: [PredictionMessage], runtime: Double, arguments: PredictionArguments,
                      logger: RankLogger) throws {
        let problems = messages.filter { $0.problem != nil }
        if let first = problems.first?.problem {
            logger.warning("\(problems.count) example(s) could not be generated and are scored as empty predictions (first: \(first))")
        }
        let metrics = try PredictionMetrics.evaluate(zip(examples, messages).map { (prediction: $1.predict, label: $0.label) },
                                                     scorer: PredictionScorer())
        // One JSON object per line, keys in LLaMA-Factory's order, no trailing newline, non-ASCII kept.
        let lines = try zip(examples, messages).map { example, message -> String in
            let label = String(decoding: try JSONSerialization.data(withJSONObject: example.label, options: [.fragmentsAllowed, .withoutEscapingSlashes]), as: UTF8.self)
            let predict = String(decoding: try JSONSerialization.data(withJSONObject: cleanUpTokenizationSpaces(message.predict), options: [.fragmentsAllowed, .withoutEscapingSlashes]), as: UTF8.self)
            return "{\"label\": \(label), \"predict\": \(predict)}"
        }
        let folder = arguments.outputDir
        try lines.joined(separator: "\n").write(toFile: (folder as NSString).appendingPathComponent("generated_predictions.jsonl"),
                                                atomically: true, encoding: .utf8)
        let generated = messages.reduce(0) { $0 + $1.generatedTokens }
        var results: [String: Double] = [
            "predict_bleu-4": metrics.bleu4, "predict_rouge-1": metrics.rouge1, "predict_rouge-2": metrics.rouge2,
            "predict_rouge-l": metrics.rougeL, "predict_meteor": metrics.meteor,
            "predict_runtime": (runtime * 10000).rounded() / 10000,
            "predict_samples_per_second": (Double(examples.count) / max(runtime, 1e-9) * 1000).rounded() / 1000,
            "predict_steps_per_second": (Double(examples.count) / Double(max(arguments.batchSize, 1)) / max(runtime, 1e-9) * 1000).rounded() / 1000,
            "predict_generated_tokens_per_second": (Double(generated) / max(runtime, 1e-9) * 10).rounded() / 10,
        ]
        results = results.filter { $0.value.isFinite }
        try RunResults.write(results, split: "predict", in: folder)
        logger.info(String(format: "predict_bleu-4 %.4f  rouge-1 %.4f  rouge-2 %.4f  rouge-l %.4f  meteor %.4f  (%.1fs, %d examples)",
                           metrics.bleu4, metrics.rouge1, metrics.rouge2, metrics.rougeL, metrics.meteor, runtime, examples.count))
    }
}
