// Implements reading an OpenAI `POST /v1/chat/completions` body into typed settings: every field KnowTune honours
// is type- and range-checked (a bad value is a 400 naming the field), fields it does not know are ignored as
// OpenAI clients send many (`user`, `stream_options`, …), and known features it lacks (tools, logprobs, penalties)
// are refused rather than silently dropped. Does not template, tokenize or decode.
import Foundation
import KnowTuneGeneration
import KnowTuneTensor

/// One chat message.
public struct ChatMessage: Equatable, Sendable {
    public enum Role: String, Sendable { case system, user, assistant }
    public let role: Role
    public let content: String

    public init(role: Role, content: String) {
        self.role = role
        self.content = content
    }
}

public struct ChatCompletionRequest {
    public var messages: [ChatMessage]
    public var model: String?
    public var stream = false
    /// nil: the server's default. 0 means greedy.
    public var temperature: Double?
    public var topP: Double?
    public var maxTokens: Int?
    /// Texts that end a choice; the returned text stops before the first one found.
    public var stop: [String] = []
    public var seed: UInt64?
    /// Choices generated for the prompt, each its own sequence.
    public var choiceCount = 1
    public var responseSchema: ResponseSchema?
    /// vLLM's extension: decode through EOS to `max_tokens` (for throughput measurements).
    public var ignoresEOS = false

    /// The most choices one request may ask for (each takes a batch slot).
    public static let maxChoices = 8
    /// OpenAI's limit on stop sequences.
    public static let maxStops = 4

    public init(messages: [ChatMessage]) {
        self.messages = messages
    }

    /// Parses a request body; throws `APIError` (400) naming the first bad field.
    public init(body: Data) throws {
        let value: Any
        do {
            value = try JSONSerialization.jsonObject(with: body)
        } catch {
            throw APIError.badRequest("the body is not valid JSON: \(Self.reason(error))")
        }
        let fields: JSONFields
        do { fields = try JSONFields(value, path: "request", place: "the body") } catch { throw APIError.badRequest(error) }
        self.init(messages: [])
        do {
            try read(fields)
        } catch {
            throw APIError.badRequest(error)
        }
    }

    private mutating func read(_ fields: JSONFields) throws {
        guard let list = fields.object["messages"] as? [Any], !list.isEmpty else {
            throw APIError.badRequest("\"messages\" must be a non-empty array of {\"role\", \"content\"} objects", param: "messages")
        }
        messages = try list.enumerated().map { index, item in try Self.message(item, index: index) }
        guard messages.last?.role == .user else {
            throw APIError.badRequest("the last message must have role \"user\"", param: "messages")
        }
        model = try fields.string("model")
        stream = try fields.bool("stream") ?? false
        if let temperature = try fields.number("temperature") {
            guard (0...2).contains(temperature) else { throw APIError.badRequest("\"temperature\" must be from 0 to 2", param: "temperature") }
            self.temperature = temperature
        }
        if let topP = try fields.number("top_p") {
            guard topP > 0, topP <= 1 else { throw APIError.badRequest("\"top_p\" must be in (0, 1]", param: "top_p") }
            self.topP = topP
        }
        // `max_completion_tokens` is the newer name of the same limit.
        maxTokens = try fields.integer("max_completion_tokens", in: 1...1_000_000) ?? fields.integer("max_tokens", in: 1...1_000_000)
        choiceCount = try fields.integer("n", in: 1...Self.maxChoices) ?? 1
        if let seed = try fields.number("seed") {
            guard seed == seed.rounded(), abs(seed) <= 9_007_199_254_740_992 else {
                throw APIError.badRequest("\"seed\" must be a whole number", param: "seed")
            }
            self.seed = UInt64(bitPattern: Int64(seed))
        }
        if fields.has("stop") {
            let raw = fields.object["stop"]
            let stops = (raw as? String).map { [$0] } ?? (raw as? [Any])?.compactMap { $0 as? String }
            guard let stops, stops.count == ((raw as? [Any])?.count ?? 1), stops.count <= Self.maxStops,
                  stops.allSatisfy({ !$0.isEmpty }) else {
                throw APIError.badRequest("\"stop\" must be a non-empty string or an array of at most \(Self.maxStops) of them",
                                          param: "stop")
            }
            stop = stops
        }
        if fields.has("response_format") {
            do { responseSchema = try ResponseSchema.responseFormat(fields.object["response_format"] as Any) } catch {
                throw APIError.badRequest(error, param: "response_format")
            }
        }
        ignoresEOS = try fields.bool("ignore_eos") ?? false
        if ignoresEOS, responseSchema != nil {
            throw APIError.badRequest("\"ignore_eos\" cannot be combined with a JSON response_format (the document ends at EOS)",
                                      param: "ignore_eos")
        }
        // Known OpenAI features KnowTune does not implement: refused, so a client never gets a reply that ignored them.
        for key in ["presence_penalty", "frequency_penalty"] where try (fields.number(key) ?? 0) != 0 {
            throw APIError.badRequest("\"\(key)\" is not supported (only 0)", param: key)
        }
        for key in ["logprobs"] where try fields.bool(key) == true {
            throw APIError.badRequest("\"\(key)\" is not supported", param: key)
        }
        for key in ["tools", "functions", "logit_bias"] where fields.has(key) {
            if let list = fields.object[key] as? [Any], list.isEmpty { continue }
            if let map = fields.object[key] as? [String: Any], map.isEmpty { continue }
            throw APIError.badRequest("\"\(key)\" is not supported", param: key)
        }
    }

    private static func message(_ item: Any, index: Int) throws -> ChatMessage {
        let fields = try JSONFields(item, path: "request", place: "messages[\(index)]")
        guard let roleName = try fields.string("role") else {
            throw APIError.badRequest("messages[\(index)] has no \"role\"", param: "messages")
        }
        // OpenAI's newer name for the system role.
        guard let role = ChatMessage.Role(rawValue: roleName == "developer" ? "system" : roleName) else {
            throw APIError.badRequest("messages[\(index)]: role \"\(roleName)\" is not supported (system, user, assistant)",
                                      param: "messages")
        }
        let content: String
        if let text = fields.object["content"] as? String {
            content = text
        } else if let parts = fields.object["content"] as? [Any] {
            // The content-part form: text parts only.
            content = try parts.enumerated().map { partIndex, part in
                let partFields = try JSONFields(part, path: "request", place: "messages[\(index)].content[\(partIndex)]")
                guard try partFields.string("type") == "text", let text = try partFields.string("text") else {
                    throw APIError.badRequest("messages[\(index)].content[\(partIndex)]: only {\"type\": \"text\", \"text\": …} parts are supported",
                                              param: "messages")
                }
                return text
            }.joined()
        } else {
            throw APIError.badRequest("messages[\(index)] needs a string \"content\"", param: "messages")
        }
        return ChatMessage(role: role, content: content)
    }

    private static func reason(_ error: Error) -> String {
        let text = (error as NSError).userInfo[NSDebugDescriptionErrorKey] as? String ?? "\(error)"
        return String(text.prefix(200))
    }
}
