// Implements OpenAI chat completions over the scheduler: templates and tokenizes a request's messages, checks the
// prompt against the context and the schema against the token budget (400s), queues one sequence per choice, and
// turns the tokens that come back into a `chat.completion` body or `chat.completion.chunk` events, cutting each
// choice at its first stop text and cancelling sequences whose reader has gone. Does not speak HTTP (APIServer does).
import Foundation
import KnowTuneData
import KnowTuneGeneration
import KnowTuneModel
import KnowTuneTensor

/// The model behind the server and what requests default to.
public struct ServedModel {
    /// The id `GET /v1/models` reports.
    public let name: String
    public let tokenizer: any Tokenizer
    public let template: ChatTemplate
    public let vocabularySize: Int
    /// Most positions a sequence may occupy, prompt included.
    public let contextLength: Int
    /// Sampling settings and `max_new_tokens` of a request that does not set them.
    public let defaults: GenerationConfiguration
    public let stopTokenIds: [Int32]

    public init(name: String, tokenizer: any Tokenizer, template: ChatTemplate, vocabularySize: Int, contextLength: Int,
                defaults: GenerationConfiguration) {
        self.name = name
        self.tokenizer = tokenizer
        self.template = template
        self.vocabularySize = vocabularySize
        self.contextLength = contextLength
        self.defaults = defaults
        stopTokenIds = ChatTemplate.replyStopTokenIds(tokenizer: tokenizer)
    }
}

/// A request ready to queue: its prompt and one decode request per choice.
public struct PreparedCompletion {
    public let id: String
    public let created: Int
    public let prompt: [Int32]
    public let choices: [DecodeRequest]
    public let stops: [String]
}

/// A completion whose choices are queued, and the updates they send back.
public struct SubmittedCompletion: @unchecked Sendable {
    public let prepared: PreparedCompletion
    let updates: AsyncStream<(Int, SequenceUpdate)>
    let continuation: AsyncStream<(Int, SequenceUpdate)>.Continuation
}

public final class ChatCompletionService: @unchecked Sendable {
    public let model: ServedModel
    public let scheduler: CompletionScheduler
    private let trie: TokenByteTrie
    private let counter = NSLock()
    private var completions = 0

    public init(model: ServedModel, scheduler: CompletionScheduler) {
        self.model = model
        self.scheduler = scheduler
        trie = TokenByteTrie(tokenizer: model.tokenizer, vocabularySize: model.vocabularySize)
    }

    // MARK: - Preparing

    /// A conversation's parts: the system text (system messages joined), the answered turns and the user turn to
    /// answer. Messages must be system messages first, then user and assistant alternating, ending with user.
    public static func conversation(of messages: [ChatMessage]) throws
        -> (system: String?, history: [(user: String, assistant: String)], user: String) {
        var rest = messages[...]
        var system: String?
        while let first = rest.first, first.role == .system {
            system = (system.map { $0 + "\n" } ?? "") + first.content
            rest = rest.dropFirst()
        }
        var history: [(user: String, assistant: String)] = []
        var pendingUser: String?
        for message in rest {
            switch (message.role, pendingUser) {
            case (.user, nil): pendingUser = message.content
            case (.assistant, let user?):
                history.append((user, message.content))
                pendingUser = nil
            default:
                throw APIError.badRequest("after any system messages, the messages must alternate user and assistant, starting and ending with user",
                                          param: "messages")
            }
        }
        guard let user = pendingUser else { throw APIError.badRequest("the last message must have role \"user\"", param: "messages") }
        return (system, history, user)
    }

    /// The prompt ids of a conversation under the served template.
    public func promptIds(_ messages: [ChatMessage]) throws -> [Int32] {
        let parts = try Self.conversation(of: messages)
        return model.template.encodeConversation(history: parts.history, user: parts.user, system: parts.system, tokenizer: model.tokenizer)
    }

    public func prepare(_ request: ChatCompletionRequest) throws -> PreparedCompletion {
        let prompt = try promptIds(request.messages)
        let context = model.contextLength
        guard prompt.count < context else {
            throw APIError.badRequest("the prompt has \(prompt.count) tokens but the context holds \(context), leaving no room for a reply",
                                      param: "messages")
        }
        var configuration = model.defaults
        if let temperature = request.temperature {
            configuration.doSample = temperature > 0
            if temperature > 0 { configuration.temperature = temperature }
        }
        if let topP = request.topP { configuration.topP = topP }
        if let maxTokens = request.maxTokens { configuration.maxNewTokens = maxTokens }
        configuration.seed = request.seed ?? UInt64.random(in: 0...UInt64.max)
        let budget = min(configuration.maxNewTokens, context - prompt.count)
        let choices = try (0..<request.choiceCount).map { choice -> DecodeRequest in
            var constraint: JSONConstraint?
            if let schema = request.responseSchema {
                let made = JSONConstraint(grammar: JSONGrammar(schema), trie: trie, stopTokenIds: model.stopTokenIds)
                guard made.minimumTokens <= budget else {
                    throw APIError.badRequest("the shortest reply of response_format's schema takes \(made.minimumTokens) tokens, more than the \(budget) this request allows",
                                              param: "response_format")
                }
                constraint = made
            }
            return DecodeRequest(tag: scheduler.makeTag(), prompt: prompt, configuration: configuration, exampleIndex: choice,
                                 constraint: constraint, ignoresStopTokens: request.ignoresEOS)
        }
        counter.lock()
        completions += 1
        let id = "chatcmpl-knowtune-\(completions)"
        counter.unlock()
        return PreparedCompletion(id: id, created: Int(Date().timeIntervalSince1970), prompt: prompt, choices: choices,
                                  stops: request.stop)
    }

    // MARK: - Running

    /// One choice's progress as its tokens arrive.
    private struct ChoiceProgress {
        var ids: [Int32] = []
        var text: StreamingTextDecoder
        var filter: StopTextFilter
        var finishReason: String?
    }

    /// Queues the choices (all or none: a full queue is a 429).
    public func submit(_ prepared: PreparedCompletion) throws -> SubmittedCompletion {
        let (updates, continuation) = AsyncStream<(Int, SequenceUpdate)>.makeStream()
        do {
            try scheduler.submit(prepared.choices.enumerated().map { choice, request in
                ScheduledSequence(request: request) { continuation.yield((choice, $0)) }
            })
        } catch SchedulerRefusal.queueFull(let capacity) {
            throw APIError.queueFull(capacity)
        } catch {
            throw APIError(status: 503, message: "the server is shutting down", type: "server_error")
        }
        return SubmittedCompletion(prepared: prepared, updates: updates, continuation: continuation)
    }

    /// Calls `onPiece(choice, text, finishReason)` for each new piece of a queued completion's shown text (the last
    /// call of a choice carries its finish reason: "stop" or "length"). Returns each choice's ids. When the caller's
    /// task is cancelled or `onPiece` throws, the choices leave the batch and the error is rethrown.
    public func run(_ submitted: SubmittedCompletion,
                    onPiece: (Int, String, String?) async throws -> Void) async throws -> [[Int32]] {
        let tags = submitted.prepared.choices.map(\.tag)
        let updates = submitted.updates
        var progress = [ChoiceProgress](repeating: ChoiceProgress(
            text: StreamingTextDecoder(tokenizer: model.tokenizer, stopTokenIds: Set(model.stopTokenIds)),
            filter: StopTextFilter(stops: submitted.prepared.stops)), count: tags.count)
        var open = tags.count
        do {
            try await withTaskCancellationHandler {
                for await (choice, update) in updates {
                    guard progress[choice].finishReason == nil else { continue }
                    var piece = ""
                    var reason: String?
                    switch update {
                    case let .token(token, finish):
                        progress[choice].ids.append(token)
                        piece = progress[choice].filter.append(progress[choice].text.append(token))
                        if progress[choice].filter.isStopped {
                            reason = "stop"
                            scheduler.cancel([tags[choice]])
                        } else if let finish {
                            piece += progress[choice].filter.append(progress[choice].text.flush())
                            piece += progress[choice].filter.flush()
                            reason = finish == .stopToken ? "stop" : "length"
                        }
                    case .cancelled:
                        reason = "stop"
                    }
                    progress[choice].finishReason = reason
                    if !piece.isEmpty || reason != nil { try await onPiece(choice, piece, reason) }
                    if reason != nil {
                        open -= 1
                        if open == 0 { break }
                    }
                }
                try Task.checkCancellation()
            } onCancel: {
                scheduler.cancel(tags)
            }
        } catch {
            scheduler.cancel(tags)
            throw error
        }
        submitted.continuation.finish()
        return progress.map(\.ids)
    }

    /// A non-streamed completion's body.
    public func complete(_ prepared: PreparedCompletion) async throws -> Data {
        var reasons = [String](repeating: "stop", count: prepared.choices.count)
        let ids = try await run(try submit(prepared)) { choice, _, reason in
            if let reason { reasons[choice] = reason }
        }
        // The whole reply decoded at once, then cut at its first stop text.
        let choices: [[String: Any]] = ids.enumerated().map { choice, ids in
            let text = StopTextFilter.cut(replyText(ids), stops: prepared.stops).text
            return ["index": choice, "message": ["role": "assistant", "content": text], "finish_reason": reasons[choice],
                    "logprobs": NSNull()]
        }
        return Self.json([
            "id": prepared.id, "object": "chat.completion", "created": prepared.created, "model": model.name,
            "choices": choices, "usage": usage(prompt: prepared.prompt, ids: ids),
        ])
    }

    /// A streamed completion: each event's `data:` payload through `send` (OpenAI's chunks, then `[DONE]`).
    public func stream(_ submitted: SubmittedCompletion, send: (Data) async throws -> Void) async throws {
        let prepared = submitted.prepared
        func chunk(_ choice: Int, delta: [String: Any], reason: String?) -> Data {
            Self.json([
                "id": prepared.id, "object": "chat.completion.chunk", "created": prepared.created, "model": model.name,
                "choices": [["index": choice, "delta": delta, "finish_reason": reason ?? NSNull(), "logprobs": NSNull()]],
            ])
        }
        for choice in prepared.choices.indices { try await send(chunk(choice, delta: ["role": "assistant", "content": ""], reason: nil)) }
        _ = try await run(submitted) { choice, piece, reason in
            if !piece.isEmpty { try await send(chunk(choice, delta: ["content": piece], reason: nil)) }
            if let reason { try await send(chunk(choice, delta: [:], reason: reason)) }
        }
        try await send(Data("[DONE]".utf8))
    }

    /// `GET /v1/models`.
    public var modelList: Data {
        Self.json(["object": "list", "data": [["id": model.name, "object": "model", "created": 0, "owned_by": "knowtune"]]])
    }

    private func replyText(_ ids: [Int32]) -> String {
        Generator.text(of: ids, stopTokenIds: Set(model.stopTokenIds), tokenizer: model.tokenizer)
    }

    private func usage(prompt: [Int32], ids: [[Int32]]) -> [String: Int] {
        let completion = ids.reduce(0) { $0 + $1.filter { !model.stopTokenIds.contains($0) }.count }
        return ["prompt_tokens": prompt.count, "completion_tokens": completion, "total_tokens": prompt.count + completion]
    }

    static func json(_ object: Any) -> Data {
        (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes])) ?? Data()
    }
}
