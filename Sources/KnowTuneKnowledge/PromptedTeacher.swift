// Implements the LLM teachers (`openai`, `local`): the editable prompts of data/prompts sent to a chat backend,
// the replies parsed (JSON arrays and objects, often wrapped in prose or fences), and failed requests and
// unusable replies retried as the backend allows; does not talk to a model itself (the ChatBackends do) or cache.
import Foundation
import KnowTuneGeneration
import KnowTuneTensor

public final class PromptedTeacher: Teacher, @unchecked Sendable {
    public let backend: any ChatBackend
    public let prompts: TeacherPrompts

    public var identity: String { "\(backend.identity) prompts=\(prompts.fingerprint)" }

    public init(backend: any ChatBackend, prompts: TeacherPrompts) {
        self.backend = backend
        self.prompts = prompts
    }

    /// The `openai` teacher.
    public convenience init(endpoint: ChatEndpoint, prompts: TeacherPrompts) {
        self.init(backend: OpenAIChatBackend(endpoint: endpoint), prompts: prompts)
    }

    public func extractFacts(question: String, answer: String) throws -> [String] {
        guard !answer.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty else { return [] }
        let prompt = TeacherPrompts.fill(prompts.extractFacts, ["question": question, "answer": answer])
        return try ask(prompt, schema: Self.factListSchema(count: nil)) { reply in
            // A small model repeats itself until the budget closes the list: a repeated fact is one fact.
            var seen = Set<String>()
            return try Self.stringArray(in: reply).map { $0.trimmingCharacters(in: .whitespacesAndNewlines) }
                .filter { !$0.isEmpty && seen.insert($0).inserted }
        }
    }

    public func rewrite(question: String, facts: [String], kept: [Int]) throws -> QAPair {
        let keptFacts = kept.filter { facts.indices.contains($0) }.map { facts[$0] }
        guard !keptFacts.isEmpty else { throw KnowTuneError.malformedReply("no kept facts to rewrite") }
        let prompt = TeacherPrompts.fill(prompts.rewriteFacts, ["question": question, "facts": TeacherPrompts.numbered(keptFacts)])
        return try ask(prompt, schema: Self.questionAnswerSchema) { reply in
            guard let object = try JSONSerialization.jsonObject(with: Data(Self.jsonText(in: reply, open: "{", close: "}").utf8)) as? [String: Any],
                  let newQuestion = (object["question"] as? String)?.trimmingCharacters(in: .whitespacesAndNewlines), !newQuestion.isEmpty,
                  let newAnswer = (object["answer"] as? String)?.trimmingCharacters(in: .whitespacesAndNewlines), !newAnswer.isEmpty
            else { throw KnowTuneError.malformedReply("expected {\"question\": …, \"answer\": …}, got: \(reply.prefix(200))") }
            return QAPair(instruction: newQuestion, output: newAnswer)
        }
    }

    public func rephrase(question: String, answer: String) throws -> String {
        let prompt = TeacherPrompts.fill(prompts.rephraseAnswer, ["question": question, "answer": answer])
        return try ask(prompt) { reply in
            let text = reply.trimmingCharacters(in: .whitespacesAndNewlines)
            guard !text.isEmpty else { throw KnowTuneError.malformedReply("empty rephrasing") }
            return text
        }
    }

    public func falsify(question: String, facts: [String], recordIndex: Int, random: inout SplitMix64) throws -> [String] {
        let prompt = TeacherPrompts.fill(prompts.falsifyFacts, ["question": question, "facts": TeacherPrompts.numbered(facts),
                                                               "count": String(facts.count)])
        return try ask(prompt, schema: Self.factListSchema(count: facts.count)) { reply in
            let revised = try Self.stringArray(in: reply)
            guard revised.count == facts.count else {
                throw KnowTuneError.malformedReply("expected \(facts.count) revised facts, got \(revised.count)")
            }
            return revised
        }
    }

    // MARK: - Calls

    /// The reply shape of fact extraction (at least one fact: the teacher is asked only about non-empty answers)
    /// and of falsification (exactly `count` facts).
    static func factListSchema(count: Int?) -> ResponseSchema {
        .array(items: .string, minItems: count ?? 1, maxItems: count)
    }

    /// The reply shape of the KA rewrite.
    static let questionAnswerSchema = ResponseSchema.object(
        properties: [.init(name: "question", schema: .string), .init(name: "answer", schema: .string)], required: ["question", "answer"])

    /// Sends `prompt` (asking for a document of `schema` when given), parses the reply with `parse`, and retries
    /// both failed requests and unusable replies. After the last attempt an unusable reply throws `malformedReply`
    /// (the item is skipped) and a failed request throws `requestFailed` (the build stops).
    func ask<T>(_ prompt: String, schema: ResponseSchema? = nil, parse: (String) throws -> T) throws -> T {
        var lastError = KnowTuneError.requestFailed("no attempt made", retryable: true)
        for attempt in 0..<backend.attempts {
            if attempt > 0 { Thread.sleep(forTimeInterval: backend.backoff * pow(2, Double(attempt - 1))) }
            let reply: String
            do {
                reply = try backend.complete(system: prompts.system, user: prompt, schema: schema)
            } catch let error as KnowTuneError where error.isRetryable {
                lastError = error
                continue
            }
            do {
                return try parse(reply)
            } catch let KnowTuneError.malformedReply(message) {
                lastError = .malformedReply(message)
            } catch {
                lastError = .malformedReply("\(error.localizedDescription); reply: \(reply.prefix(200))")
            }
        }
        throw lastError
    }

    // MARK: - Reply parsing

    /// The outermost `open`…`close` span of `reply` (replies often wrap JSON in prose or ``` fences).
    static func jsonText(in reply: String, open: Character, close: Character) throws -> String {
        guard let start = reply.firstIndex(of: open), let end = reply.lastIndex(of: close), start < end else {
            throw KnowTuneError.malformedReply("no JSON \(open)…\(close) in reply: \(reply.prefix(200))")
        }
        return String(reply[start...end])
    }

    static func stringArray(in reply: String) throws -> [String] {
        let text = try jsonText(in: reply, open: "[", close: "]")
        guard let array = try? JSONSerialization.jsonObject(with: Data(text.utf8)) as? [Any] else {
            throw KnowTuneError.malformedReply("not a JSON array: \(text.prefix(200))")
        }
        return try array.map { element in
            guard let string = element as? String else { throw KnowTuneError.malformedReply("array element is not a string: \(element)") }
            return string
        }
    }
}
