// Implements the `openai` teacher's backend: an OpenAI-compatible `/v1/chat/completions` endpoint (vLLM, llama.cpp
// server, OpenAI) reached with URLSession; HTTP 408/409/425/429/5xx and transport errors are retryable, other client
// errors are not. Thread-safe, so several records may call it at once. Does not retry itself (PromptedTeacher does).
import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import KnowTuneTensor

/// Where and how to reach the endpoint.
public struct ChatEndpoint: Sendable {
    /// The API root, e.g. `http://127.0.0.1:8000/v1`; requests go to `<baseURL>/chat/completions`.
    public var baseURL: URL
    public var model: String
    /// Sent as `Authorization: Bearer …` when set.
    public var apiKey: String?
    /// Attempts per call, the first included (≥ 1).
    public var attempts: Int
    /// The wait before the second attempt; doubled for each further one.
    public var backoff: TimeInterval
    public var timeout: TimeInterval
    public var temperature: Double
    public var maxTokens: Int

    public init(baseURL: URL, model: String, apiKey: String? = nil, attempts: Int = 4, backoff: TimeInterval = 1,
                timeout: TimeInterval = 120, temperature: Double = 0, maxTokens: Int = 1024) {
        self.baseURL = baseURL
        self.model = model
        self.apiKey = apiKey
        self.attempts = max(1, attempts)
        self.backoff = backoff
        self.timeout = timeout
        self.temperature = temperature
        self.maxTokens = maxTokens
    }
}

public final class OpenAIChatBackend: ChatBackend, @unchecked Sendable {
    public let endpoint: ChatEndpoint
    private let session: URLSession

    public var identity: String {
        "openai model=\(endpoint.model) url=\(endpoint.baseURL.absoluteString) temperature=\(endpoint.temperature) max_tokens=\(endpoint.maxTokens)"
    }
    public var attempts: Int { endpoint.attempts }
    public var backoff: TimeInterval { endpoint.backoff }
    public var allowsConcurrentCalls: Bool { true }

    public init(endpoint: ChatEndpoint) {
        self.endpoint = endpoint
        let configuration = URLSessionConfiguration.ephemeral
        configuration.timeoutIntervalForRequest = endpoint.timeout
        configuration.timeoutIntervalForResource = endpoint.timeout
        session = URLSession(configuration: configuration)
    }

    /// One chat-completion request; returns `choices[0].message.content`.
    public func complete(system: String, user: String) throws -> String {
        var request = URLRequest(url: endpoint.baseURL.appendingPathComponent("chat/completions"))
        request.httpMethod = "POST"
        request.setValue("application/json", forHTTPHeaderField: "Content-Type")
        if let key = endpoint.apiKey, !key.isEmpty { request.setValue("Bearer \(key)", forHTTPHeaderField: "Authorization") }
        let body: [String: Any] = [
            "model": endpoint.model, "temperature": endpoint.temperature, "max_tokens": endpoint.maxTokens,
            "messages": [["role": "system", "content": system], ["role": "user", "content": user]],
        ]
        request.httpBody = try JSONSerialization.data(withJSONObject: body)

        let done = DispatchSemaphore(value: 0)
        let box = ResponseBox()
        let task = session.dataTask(with: request) { data, response, error in
            box.set(data, response as? HTTPURLResponse, error)
            done.signal()
        }
        task.resume()
        done.wait()
        let (data, response, error) = box.get()
        let url = request.url?.absoluteString ?? "?"
        if let error { throw KnowTuneError.requestFailed("\(url): \(error.localizedDescription)", retryable: true) }
        guard let response else { throw KnowTuneError.requestFailed("\(url): no HTTP response", retryable: true) }
        return try Self.content(ofResponse: data ?? Data(), status: response.statusCode, url: url)
    }

    /// `choices[0].message.content` of a chat-completion response body, or the error its status or shape means.
    public static func content(ofResponse body: Data, status: Int, url: String) throws -> String {
        let text = String(decoding: body.prefix(400), as: UTF8.self)
        guard (200..<300).contains(status) else {
            let retryable = [408, 409, 425, 429].contains(status) || status >= 500
            // Other client errors (401 bad key, 404 wrong URL or model) will not improve with retries.
            throw KnowTuneError.requestFailed("\(url): HTTP \(status): \(text.prefix(200))", retryable: retryable)
        }
        guard let object = try? JSONSerialization.jsonObject(with: body) as? [String: Any],
              let choices = object["choices"] as? [[String: Any]], let message = choices.first?["message"] as? [String: Any],
              let content = message["content"] as? String
        else { throw KnowTuneError.malformedReply("not a chat completion: \(text.prefix(200))") }
        return content
    }
}

/// The completion handler's results, handed to the waiting thread.
private final class ResponseBox: @unchecked Sendable {
    private let lock = NSLock()
    private var data: Data?
    private var response: HTTPURLResponse?
    private var error: Error?

    func set(_ data: Data?, _ response: HTTPURLResponse?, _ error: Error?) {
        lock.lock()
        defer { lock.unlock() }
        (self.data, self.response, self.error) = (data, response, error)
    }

    func get() -> (Data?, HTTPURLResponse?, Error?) {
        lock.lock()
        defer { lock.unlock() }
        return (data, response, error)
    }
}
