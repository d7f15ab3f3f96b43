// Implements the interface of the models behind the prompted teachers: one system + user message in, the reply
// text out, with the retry policy that suits the backend; does not build prompts or parse replies
// (PromptedTeacher does).
import Foundation
import KnowTuneGeneration

/// A chat model the `openai` and `local` teachers send their prompts to.
public protocol ChatBackend: AnyObject {
    /// What replies depend on (model, endpoint, decoding settings); part of the build cache key.
    var identity: String { get }
    /// Calls per prompt, the first included: retries help a remote sampler or a flaky network, not greedy decoding.
    var attempts: Int { get }
    /// The wait before the second attempt; doubled for each further one.
    var backoff: TimeInterval { get }
    /// Whether several records may call `complete` at once.
    var allowsConcurrentCalls: Bool { get }

    /// The reply to `user` under `system`. Throws `KnowTuneError.requestFailed` for a failed request (retryable
    /// or not), `.malformedReply` for a reply that is not a chat answer.
    func complete(system: String, user: String) throws -> String

    /// The reply to `user`, asked to be a JSON document of `schema` (nil: free text). A backend that can enforce the
    /// schema while decoding (`local`) does; the others rely on the prompt, which says the same.
    func complete(system: String, user: String, schema: ResponseSchema?) throws -> String
}

extension ChatBackend {
    public func complete(system: String, user: String, schema: ResponseSchema?) throws -> String {
        try complete(system: system, user: user)
    }
}
