// Implements the `local` teacher's backend: a model KnowTune loads, prompted through a chat template and decoded
// greedily with the KV-cache generator, so a build is reproducible and the same on any number of ranks; replies
// asked for as JSON are decoded under the schema's token mask (JSONConstraint), so even a small model returns a
// parsable document within `max_new_tokens`. Does not load the model (the CLI does) or parse replies
// (PromptedTeacher does).
import Foundation
import KnowTuneData
import KnowTuneGeneration
import KnowTuneModel
import KnowTuneTensor

public final class LocalChatBackend: ChatBackend {
    public let model: LoadedModel
    public let template: ChatTemplate
    public let maxNewTokens: Int
    private let generator: Generator
    private let stopTokenIds: [Int32]
    /// The vocabulary's byte trie, built on the first constrained reply.
    private lazy var trie = TokenByteTrie(tokenizer: model.tokenizer, vocabularySize: model.configuration.vocabularySize)

    public var identity: String {
        "local model=\(model.source) [\(model.format), \(model.configuration.parameterCount) parameters] template=\(template.name) "
            + "greedy max_new_tokens=\(maxNewTokens) json=schema-constrained"
    }
    /// Greedy decoding gives the same reply again: a retry cannot help.
    public var attempts: Int { 1 }
    public var backoff: TimeInterval { 0 }
    /// One generator (and KV cache) per backend.
    public var allowsConcurrentCalls: Bool { false }

    /// - Parameter templateName: the model's chat template (SmolLM2-Instruct: chatml).
    public init(model: LoadedModel, templateName: String = "chatml", maxNewTokens: Int = 512) throws {
        guard maxNewTokens > 0 else { throw KnowTuneError.invalidConfiguration("the local teacher needs max_new_tokens > 0") }
        self.model = model
        self.template = try ChatTemplate.named(templateName)
        self.maxNewTokens = maxNewTokens
        let stops = ChatTemplate.replyStopTokenIds(tokenizer: model.tokenizer)
        generator = Generator(weights: model.weights, stopTokenIds: stops, batchSize: 1)
        stopTokenIds = stops
    }

    public func complete(system: String, user: String) throws -> String {
        try complete(system: system, user: user, schema: nil)
    }

    public func complete(system: String, user: String, schema: ResponseSchema?) throws -> String {
        let prompt = template.encodePrompt(user, system: system, tokenizer: model.tokenizer)
        let configuration = GenerationConfiguration(doSample: false, maxNewTokens: maxNewTokens)
        let constraint = schema.map { JSONConstraint(grammar: JSONGrammar($0), trie: trie, stopTokenIds: stopTokenIds) }
        if let constraint, constraint.minimumTokens > maxNewTokens {
            throw KnowTuneError.malformedReply("the shortest reply of its schema takes \(constraint.minimumTokens) tokens, more than max_new_tokens \(maxNewTokens)")
        }
        let results = try generator.generate(prompts: [prompt], exampleIndices: [0], configuration: configuration,
                                             constraints: constraint.map { [$0] })
        switch results[0] {
        case let .success(ids): return generator.text(of: ids, tokenizer: model.tokenizer)
        // A prompt the model cannot take (longer than its context) is this item's problem, not the build's.
        case let .failure(error): throw KnowTuneError.malformedReply("the local model cannot answer this prompt: \(error)")
        }
    }
}
