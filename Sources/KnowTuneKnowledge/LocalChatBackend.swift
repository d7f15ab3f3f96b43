// Implements the `local` teacher's backend: a model KnowTune loads, prompted through a chat template and decoded
// greedily, so a build is reproducible and the same on any number of ranks; replies asked for as JSON are decoded
// under the schema's token mask (JSONConstraint), so even a small model returns a parsable document within
// `max_new_tokens`. Concurrent calls (several records in flight) share batches through the continuous-batching
// scheduler the API server uses; a sequence's tokens do not depend on its batch, so neither do the replies. Does not
// load the model (the CLI does) or parse replies (PromptedTeacher does).
import Foundation
import KnowTuneData
import KnowTuneGeneration
import KnowTuneModel
import KnowTuneTensor

public final class LocalChatBackend: ChatBackend, @unchecked Sendable {
    public let model: LoadedModel
    public let template: ChatTemplate
    public let maxNewTokens: Int
    /// Replies decoded together at most (the build's `--teacher_concurrency`).
    public let concurrency: Int
    /// Positions a prompt and its reply may take together.
    public let contextLength: Int
    private let scheduler: CompletionScheduler
    private let stopTokenIds: [Int32]
    /// The vocabulary's byte trie, for the replies' masks.
    private let trie: TokenByteTrie

    public var identity: String {
        "local model=\(model.source) [\(model.format), \(model.configuration.parameterCount) parameters] template=\(template.name) "
            + "greedy max_new_tokens=\(maxNewTokens) json=schema-constrained"
    }
    /// Greedy decoding gives the same reply again: a retry cannot help.
    public var attempts: Int { 1 }
    public var backoff: TimeInterval { 0 }
    public var allowsConcurrentCalls: Bool { concurrency > 1 }

    /// - Parameters:
    ///   - templateName: the model's chat template (SmolLM2-Instruct: chatml).
    ///   - concurrency: replies decoded together when calls overlap.
    ///   - contextLength: default the model's, at most 4096 (the KV cache is committed only as sequences fill it).
    public init(model: LoadedModel, templateName: String = "chatml", maxNewTokens: Int = 512, concurrency: Int = 1,
                contextLength: Int? = nil) throws {
        guard maxNewTokens > 0 else { throw KnowTuneError.invalidConfiguration("the local teacher needs max_new_tokens > 0") }
        guard concurrency > 0 else { throw KnowTuneError.invalidConfiguration("the local teacher needs a concurrency of at least 1") }
        self.model = model
        self.template = try ChatTemplate.named(templateName)
        self.maxNewTokens = maxNewTokens
        self.concurrency = concurrency
        let context = min(contextLength ?? 4096, model.configuration.maxPositionEmbeddings)
        self.contextLength = context
        stopTokenIds = ChatTemplate.replyStopTokenIds(tokenizer: model.tokenizer)
        trie = TokenByteTrie(tokenizer: model.tokenizer, vocabularySize: model.configuration.vocabularySize)
        let decoder = IncrementalDecoder(weights: model.weights, batchCapacity: concurrency, maxLength: context)
        scheduler = CompletionScheduler(decoder: decoder, stopTokenIds: Set(stopTokenIds), contextLength: context,
                                        queueCapacity: Int.max / 2)
        scheduler.start()
    }

    deinit { scheduler.shutdown() }

    /// Counts and timings of every reply so far (how full the batches were: decoded tokens over steps).
    public var decodeStatistics: GenerationStatistics { scheduler.statistics }

    public func complete(system: String, user: String) throws -> String {
        try complete(system: system, user: user, schema: nil)
    }

    public func complete(system: String, user: String, schema: ResponseSchema?) throws -> String {
        let prompt = template.encodePrompt(user, system: system, tokenizer: model.tokenizer)
        // A prompt the model cannot take (longer than its context) is this item's problem, not the build's.
        guard prompt.count < contextLength else {
            throw KnowTuneError.malformedReply("the local model cannot answer this prompt: it has \(prompt.count) tokens, the context holds \(contextLength)")
        }
        let constraint = schema.map { JSONConstraint(grammar: JSONGrammar($0), trie: trie, stopTokenIds: stopTokenIds) }
        let budget = min(maxNewTokens, contextLength - prompt.count)
        if let constraint, constraint.minimumTokens > budget {
            let limit = budget == maxNewTokens ? "max_new_tokens \(maxNewTokens)" : "the \(budget) positions the context has left"
            throw KnowTuneError.malformedReply("the shortest reply of its schema takes \(constraint.minimumTokens) tokens, more than \(limit)")
        }
        let ids = try scheduler.generate(DecodeRequest(tag: scheduler.makeTag(), prompt: prompt,
                                                       configuration: GenerationConfiguration(doSample: false, maxNewTokens: maxNewTokens),
                                                       exampleIndex: 0, constraint: constraint))
        return Generator.text(of: ids, stopTokenIds: Set(stopTokenIds), tokenizer: model.tokenizer)
    }
}
