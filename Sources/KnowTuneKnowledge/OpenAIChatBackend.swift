// Implements the `openai` teacher's backend: an OpenAI-compatible `/v1/chat/completions` endpoint (vLLM, llama.cpp
// server, OpenAI) reached with URLSession; HTTP 408/409/425/429/5xx and transport errors are retryable, other client
// errors are not. Thread-safe, so several records may call it at once. Does not retry itself (PromptedTeacher does).
import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import KnowTuneGeneration
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
    /// 16 MiB: a chat completion of a few thousand tokens is a few KiB.
    public static let defaultMaxReplyBytes = 16 << 20
    /// The largest reply body read; a longer one is cut off and refused (a misbehaving endpoint cannot exhaust memory).
    public var maxReplyBytes: Int
    /// Whether replies wanted as JSON are asked for with `response_format: {"type": "json_schema", …}` (knowtune api,
    /// vLLM and llama.cpp's server enforce it while decoding; OpenAI's strict mode takes object roots only).
    public var sendsResponseFormat: Bool

    public init(baseURL: URL, model: String, apiKey: String? = nil, attempts: Int = 4, backoff: TimeInterval = 1,
                timeout: TimeInterval = 120, temperature: Double = 0, maxTokens: Int = 1024,
                maxReplyBytes: Int = ChatEndpoint.defaultMaxReplyBytes, sendsResponseFormat: Bool = true) {
        self.baseURL = baseURL
        self.model = model
        self.apiKey = apiKey
        self.attempts = max(1, attempts)
        self.backoff = backoff
        self.timeout = timeout
        self.temperature = temperature
        self.maxTokens = maxTokens
        self.maxReplyBytes = maxReplyBytes
        self.sendsResponseFormat = sendsResponseFormat
    }
}

public final class OpenAIChatBackend: ChatBackend, @unchecked Sendable {
    public let endpoint: ChatEndpoint
    private let session: URLSession
    private let collector: BoundedReplies

    public var identity: String {
        "openai model=\(endpoint.model) url=\(endpoint.baseURL.absoluteString) temperature=\(endpoint.temperature) max_tokens=\(endpoint.maxTokens)"
            + (endpoint.sendsResponseFormat ? " json=response_format" : "")
    }
    public var attempts: Int { endpoint.attempts }
    public var backoff: TimeInterval { endpoint.backoff }
    public var allowsConcurrentCalls: Bool { true }

    public init(endpoint: ChatEndpoint) {
        self.endpoint = endpoint
        let configuration = URLSessionConfiguration.ephemeral
        configuration.timeoutIntervalForRequest = endpoint.timeout
        configuration.timeoutIntervalForResource = endpoint.timeout
        collector = BoundedReplies(limit: endpoint.maxReplyBytes)
        session = URLSession(configuration: configuration, delegate: collector, delegateQueue: nil)
    }

    deinit { session.invalidateAndCancel() }

    public func complete(system: String, user: String) throws -> String {
        try complete(system: system, user: user, schema: nil)
    }

    /// One chat-completion request; returns `choices[0].message.content`.
    public func complete(system: String, user: String, schema: ResponseSchema?) throws -> String {
        var request = URLRequest(url: endpoint.baseURL.appendingPathComponent("chat/completions"))
        request.httpMethod = "POST"
        request.setValue("application/json", forHTTPHeaderField: "Content-Type")
        if let key = endpoint.apiKey, !key.isEmpty { request.setValue("Bearer \(key)", forHTTPHeaderField: "Authorization") }
        var body: [String: Any] = [
            "model": endpoint.model, "temperature": endpoint.temperature, "max_tokens": endpoint.maxTokens,
            "messages": [["role": "system", "content": system], ["role": "user", "content": user]],
        ]
        if let schema, endpoint.sendsResponseFormat {
            body["response_format"] = ["type": "json_schema",
                                       "json_schema": ["name": "knowtune_reply", "schema": schema.jsonSchema, "strict": true] as [String: Any]]
        }
        request.httpBody = try JSONSerialization.data(withJSONObject: body)

        let task = session.dataTask(with: request)
        let reply = collector.expect(task)
        task.resume()
        reply.done.wait()
        let url = request.url?.absoluteString ?? "?"
        let (data, response, error, overflowed) = reply.result()
        if overflowed {
            throw KnowTuneError.requestFailed("\(url): the reply is longer than \(endpoint.maxReplyBytes) bytes "
                                              + "(--teacher_max_reply_bytes); not read further", retryable: false)
        }
        if let error { throw KnowTuneError.requestFailed("\(url): \(error.localizedDescription)", retryable: true) }
        guard let response else { throw KnowTuneError.requestFailed("\(url): no HTTP response", retryable: true) }
        return try Self.content(ofResponse: data, status: response.statusCode, url: url)
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

/// Collects each task's reply body up to a byte limit, cancelling a task whose body grows past it, and hands the
/// result to the thread waiting for that task.
private final class BoundedReplies: NSObject, URLSessionDataDelegate, @unchecked Sendable {
    final class Reply: @unchecked Sendable {
        let done = DispatchSemaphore(value: 0)
        fileprivate var data = Data()
        fileprivate var response: HTTPURLResponse?
        fileprivate var error: Error?
        fileprivate var overflowed = false
        private let lock = NSLock()

        fileprivate func update(_ change: (Reply) -> Void) {
            lock.lock()
            defer { lock.unlock() }
            change(self)
        }

        func result() -> (Data, HTTPURLResponse?, Error?, Bool) {
            lock.lock()
            defer { lock.unlock() }
            return (data, response, error, overflowed)
        }
    }

    let limit: Int
    private let lock = NSLock()
    private var replies: [Int: Reply] = [:]

    init(limit: Int) { self.limit = limit }

    func expect(_ task: URLSessionTask) -> Reply {
        let reply = Reply()
        lock.lock()
        replies[task.taskIdentifier] = reply
        lock.unlock()
        return reply
    }

    private func reply(_ task: URLSessionTask) -> Reply? {
        lock.lock()
        defer { lock.unlock() }
        return replies[task.taskIdentifier]
    }

    func urlSession(_ session: URLSession, dataTask: URLSessionDataTask, didReceive response: URLResponse,
                    completionHandler: @escaping (URLSession.ResponseDisposition) -> Void) {
        reply(dataTask)?.update { $0.response = response as? HTTPURLResponse }
        completionHandler(.allow)
    }

    func urlSession(_ session: URLSession, dataTask: URLSessionDataTask, didReceive data: Data) {
        guard let reply = reply(dataTask) else { return }
        var cancel = false
        reply.update { reply in
            guard !reply.overflowed else { return }
            if reply.data.count + data.count > limit {
                reply.overflowed = true
                reply.data = Data()
                cancel = true
            } else {
                reply.data.append(data)
            }
        }
        if cancel { dataTask.cancel() }
    }

    func urlSession(_ session: URLSession, task: URLSessionTask, didCompleteWithError error: Error?) {
        lock.lock()
        let reply = replies.removeValue(forKey: task.taskIdentifier)
        lock.unlock()
        reply?.update { $0.error = error }
        reply?.done.signal()
    }
}
