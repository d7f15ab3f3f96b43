// Implements the decoding benchmark: generated tokens/s at batch 1 and batch 8 (greedy, 128 new tokens, no early
// stop) and prompt tokens/s, on alpaca prompts of dolly_test instructions, in the style of llama.cpp's tg128 and
// pp512 figures; and the cost of schema-constrained decoding (the mask's time per token against a decode step);
// does not print (knowtune-genbench does) or run as a test.
import Foundation
import KnowTuneData
import KnowTuneModel
import KnowTuneTensor

public struct GenerationBenchmarkResult: Codable {
    public var openBLASCore: String
    public var openBLASThreads: Int
    public var newTokens: Int
    /// Tokens from batched `step`s per second of step time (llama.cpp `tg`): the first token of each sequence comes
    /// from its prefill and is not counted.
    public var batch1TokensPerSecond: Double
    public var batch8TokensPerSecond: Double
    /// Prompt tokens per second of prefill time for the 8 dolly prompts (about 40 tokens each) prefilled together.
    public var promptTokensPerSecond: Double
    /// The same for one 512-token prompt (llama.cpp `pp512`).
    public var prompt512TokensPerSecond: Double
    public var batch1: GenerationStatistics
    public var batch8: GenerationStatistics
    public var prompt512: GenerationStatistics
    /// Batch 1, greedy, up to 128 tokens under a teacher-shaped JSON schema (stops when the document is whole).
    public var constrainedBatch1: GenerationStatistics
    /// Mask time per constrained token over the unconstrained batch-1 decode step time per token.
    public var maskShareOfDecodeStep: Double
    /// Building the vocabulary's byte trie (once per tokenizer).
    public var trieSeconds: Double
    /// The batch-8 run's greedy tokens, one list per prompt: two bases or kernels are compared by where they part.
    public var batch8TokenIds: [[Int32]]

    enum CodingKeys: String, CodingKey {
        case openBLASCore = "openblas_core", openBLASThreads = "openblas_threads", newTokens = "new_tokens"
        case batch1TokensPerSecond = "batch1_tokens_per_second", batch8TokensPerSecond = "batch8_tokens_per_second"
        case promptTokensPerSecond = "prompt_tokens_per_second", prompt512TokensPerSecond = "prompt512_tokens_per_second"
        case batch1 = "batch1", batch8 = "batch8", prompt512 = "prompt512", constrainedBatch1 = "constrained_batch1"
        case maskShareOfDecodeStep = "mask_share_of_decode_step", trieSeconds = "trie_seconds"
        case batch8TokenIds = "batch8_token_ids"
    }
}

public enum GenerationBenchmark {
    /// Runs the three measurements on `model` with prompts from `datasetPath` (an alpaca JSON list), each `rounds`
    /// times, keeping the fastest round: the machine is shared, and another process on one of the two cores stalls
    /// OpenBLAS's second thread, so the best round is the one that measures this code rather than the neighbours.
    public static func run(model: LoadedModel, datasetPath: String, newTokens: Int = 128,
                           batch1Prompts: Int = 1, batch8Prompts: Int = 8, rounds: Int = 3) throws -> GenerationBenchmarkResult {
        let instructions = try readInstructions(datasetPath)
        guard instructions.count >= max(batch1Prompts, batch8Prompts) else {
            throw KnowTuneError.invalidInput("\(datasetPath) has \(instructions.count) records; the benchmark needs \(max(batch1Prompts, batch8Prompts))")
        }
        let prompts = instructions.map { ChatTemplate.alpaca.encodePrompt($0, tokenizer: model.tokenizer) }
        // No stop ids: every sequence makes exactly `newTokens` tokens, so batches stay full.
        let configuration = GenerationConfiguration.greedy(maxNewTokens: newTokens)

        func measure(_ selected: [[Int32]], batchSize: Int, tokens: GenerationConfiguration,
                     constraint: (() -> JSONConstraint)? = nil) throws -> (GenerationStatistics, [[Int32]]) {
            let generator = Generator(weights: model.weights, stopTokenIds: constraint == nil ? [] : [model.tokenizer.eosTokenId],
                                      batchSize: batchSize)
            // Warm-up: allocates the cache and touches every weight page.
            _ = try generator.generate(prompts: [selected[0]], exampleIndices: [0], configuration: .greedy(maxNewTokens: 2))
            var best: GenerationStatistics?
            var outputs: [[Int32]] = []
            for _ in 0..<max(rounds, 1) {
                outputs = try generator.generate(prompts: selected, exampleIndices: Array(selected.indices), configuration: tokens,
                                           constraints: constraint.map { make in selected.map { _ in make() } })
                    .map { (try? $0.get()) ?? [] }
                let round = generator.statistics
                if let current = best {
                    best = round.decodeSeconds + round.prefillSeconds < current.decodeSeconds + current.prefillSeconds ? round : current
                } else {
                    best = round
                }
            }
            return (best ?? generator.statistics, outputs)
        }
        let batch1 = try measure(Array(prompts.prefix(batch1Prompts)), batchSize: 1, tokens: configuration).0
        let (batch8, batch8TokenIds) = try measure(Array(prompts.prefix(batch8Prompts)), batchSize: 8, tokens: configuration)
        // A 512-token prompt from consecutive dolly prompts, one new token.
        var long: [Int32] = []
        for prompt in prompts where long.count < 512 { long += prompt }
        let prompt512 = try measure([Array(long.prefix(512))], batchSize: 1, tokens: .greedy(maxNewTokens: 1)).0
        let trieStarted = Date()
        let trie = TokenByteTrie(tokenizer: model.tokenizer, vocabularySize: model.configuration.vocabularySize)
        let trieSeconds = Date().timeIntervalSince(trieStarted)
        let grammar = JSONGrammar(.object(properties: [
            .init(name: "question", schema: .string), .init(name: "answer", schema: .string),
            .init(name: "facts", schema: .array(items: .string, minItems: 1, maxItems: nil)),
        ], required: ["question", "answer", "facts"]))
        let constrained = try measure(Array(prompts.prefix(batch1Prompts)), batchSize: 1, tokens: configuration) {
            JSONConstraint(grammar: grammar, trie: trie, stopTokenIds: [model.tokenizer.eosTokenId])
        }.0
        let stepSeconds = batch1.decodeSeconds / Double(max(batch1.decodedTokens, 1))
        let maskSeconds = constrained.maskSeconds / Double(max(constrained.generatedTokens, 1))
        return GenerationBenchmarkResult(
            openBLASCore: BLAS.coreName, openBLASThreads: BLAS.threadCount, newTokens: newTokens,
            batch1TokensPerSecond: Double(batch1.decodedTokens) / batch1.decodeSeconds,
            batch8TokensPerSecond: Double(batch8.decodedTokens) / batch8.decodeSeconds,
            promptTokensPerSecond: Double(batch8.promptTokens) / batch8.prefillSeconds,
            prompt512TokensPerSecond: Double(prompt512.promptTokens) / prompt512.prefillSeconds,
            batch1: batch1, batch8: batch8, prompt512: prompt512, constrainedBatch1: constrained,
            maskShareOfDecodeStep: maskSeconds / stepSeconds, trieSeconds: trieSeconds, batch8TokenIds: batch8TokenIds)
    }

    /// The `instruction` fields of an alpaca-format JSON list (`input` is empty in dolly_test).
    static func readInstructions(_ path: String) throws -> [String] {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw KnowTuneError.fileUnreadable(path: path, reason: "no such file (pass an alpaca JSON list such as data/dolly/dolly_test.json)")
        }
        guard let records = try? JSONSerialization.jsonObject(with: data) as? [[String: Any]] else {
            throw KnowTuneError.badFormat(path: path, reason: "expected a JSON list of alpaca records")
        }
        return records.map { record in
            ChatTemplate.userContent(instruction: record["instruction"] as? String ?? "", input: record["input"] as? String)
        }
    }
}
