// Implements `knowtune chat`: one prompt, templated (or raw), answered with the predict stage's sampling flags,
// streaming the text to stdout as it is generated; with `--json_schema FILE`, decoded under that schema's mask.
import ArgumentParser
import Foundation
import KnowTuneData
import KnowTuneGeneration
import KnowTuneModel
import KnowTuneTensor

struct ChatCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "chat", abstract: "Answer one prompt, streaming tokens (LLaMA-Factory 0.5.3 sampling defaults).")

    @OptionGroup var model: ModelOptions
    @Option(name: .customLong("template")) var templateName = "alpaca"
    @Option(name: .customLong("prompt"), help: "The instruction (templated) or, with --raw, the whole prompt.") var prompt: String
    @Flag(name: .customLong("raw")) var raw = false
    @Option(name: .customLong("do_sample")) var doSample = true
    @Option(name: .customLong("temperature")) var temperature = 0.95
    @Option(name: .customLong("top_p")) var topP = 0.7
    @Option(name: .customLong("top_k")) var topK = 50
    @Option(name: .customLong("max_new_tokens")) var maxNewTokens = 512
    @Option(name: .customLong("repetition_penalty")) var repetitionPenalty = 1.0
    @Option(name: .customLong("seed")) var seed: UInt64 = 42
    @Option(name: .customLong("json_schema"),
            help: "A JSON Schema file (or an OpenAI response_format object): the reply is a document of that schema.")
    var jsonSchema: String?

    /// The schema of `--json_schema`, read before the model loads.
    static func readSchema(_ path: String) throws -> ResponseSchema? {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw KnowTuneError.invalidInput("--json_schema \(path): cannot read the file")
        }
        do {
            return try ResponseSchema.schemaOrResponseFormat(try JSONSerialization.jsonObject(with: data))
        } catch let KnowTuneError.invalidInput(message) {
            throw KnowTuneError.invalidInput("--json_schema \(path): \(message)")
        } catch {
            throw KnowTuneError.invalidInput("--json_schema \(path): not JSON (\(error.localizedDescription))")
        }
    }

    func run() throws {
        try runReportingErrors {
            let schema = try jsonSchema.flatMap(Self.readSchema)
            let loaded = try model.load()
            let template = try ChatTemplate.named(templateName)
            let ids = raw ? loaded.tokenizer.encode(prompt) : template.encodePrompt(prompt, tokenizer: loaded.tokenizer)
            let configuration = GenerationConfiguration(doSample: doSample, temperature: temperature, topP: topP, topK: topK,
                                                        maxNewTokens: maxNewTokens, repetitionPenalty: repetitionPenalty, seed: seed)
            let stops: Set<Int32> = [loaded.tokenizer.eosTokenId]
            let generator = Generator(weights: loaded.weights, stopTokenIds: Array(stops), batchSize: 1)
            var text = StreamingTextDecoder(tokenizer: loaded.tokenizer, stopTokenIds: stops)
            let constraint = schema.map { schema in
                JSONConstraint(grammar: JSONGrammar(schema), trie: TokenByteTrie(tokenizer: loaded.tokenizer, vocabularySize: loaded.configuration.vocabularySize),
                               stopTokenIds: Array(stops))
            }
            if let constraint, constraint.minimumTokens > maxNewTokens {
                throw KnowTuneError.invalidInput("--json_schema needs at least \(constraint.minimumTokens) new tokens; --max_new_tokens is \(maxNewTokens)")
            }
            let results = try generator.generate(prompts: [ids], exampleIndices: [0], configuration: configuration,
                                                 constraints: constraint.map { [$0] }) { event in
                FileHandle.standardOutput.write(Data(text.append(event.token).utf8))
                return .proceed
            }
            FileHandle.standardOutput.write(Data((text.flush() + "\n").utf8))
            if case let .failure(error) = results.first { throw error }
            let statistics = generator.statistics
            logToStandardError(String(format: "%d prompt tokens, %d generated, %.1f tokens/s", statistics.promptTokens,
                                      statistics.generatedTokens, Double(statistics.decodedTokens) / max(statistics.decodeSeconds, 1e-9)))
        }
    }
}
