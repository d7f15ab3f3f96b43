// Implements what the server tests share: a `knowtune api` server run in-process on a free port (the tiny random
// model, or SmolLM2 where decoding must be slow enough to interrupt), and a real HTTP client for it: URLSession for
// whole replies and a raw socket for a client that hangs up mid-stream.
import Foundation
import KnowTuneData
import KnowTuneGeneration
import KnowTuneModel
import KnowTuneServing
import KnowTuneTensor
import KnowTuneTestSupport
import XCTest
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

final class RunningServer: @unchecked Sendable {
    let service: ChatCompletionService
    let scheduler: CompletionScheduler
    let model: LoadedModel
    private(set) var port = 0
    private var task: Task<Void, Never>?

    var baseURL: String { "http://127.0.0.1:\(port)/v1" }

    init(model: LoadedModel, template: String = "chatml", batch: Int = 4, queue: Int = 16, context: Int = 256,
         apiKey: String? = nil, defaults: GenerationConfiguration = GenerationConfiguration()) throws {
        self.model = model
        let served = ServedModel(name: "tiny", tokenizer: model.tokenizer, template: try ChatTemplate.named(template),
                                 vocabularySize: model.configuration.vocabularySize, contextLength: context, defaults: defaults)
        let decoder = IncrementalDecoder(weights: model.weights, batchCapacity: batch, maxLength: context)
        scheduler = CompletionScheduler(decoder: decoder, stopTokenIds: Set(served.stopTokenIds), contextLength: context, queueCapacity: queue)
        scheduler.start()
        service = ChatCompletionService(model: served, scheduler: scheduler)
        let listening = DispatchSemaphore(value: 0)
        let bound = PortBox()
        // Cancelling the server task (how tests stop it) makes Hummingbird log an error per open channel.
        let options = APIServerOptions(host: "127.0.0.1", port: 0, apiKey: apiKey, serverLogLevel: "critical")
        task = Task { [service] in
            try? await APIServer.run(service: service, options: options) { port in
                bound.port = port
                listening.signal()
            }
        }
        guard listening.wait(timeout: .now() + 30) == .success else { throw KnowTuneError.invalidInput("the server did not start") }
        port = bound.port
    }

    func stop() {
        task?.cancel()
        scheduler.shutdown()
    }

    deinit { stop() }

    /// A client that keeps up to 32 connections open, so concurrent requests really overlap.
    static let session: URLSession = {
        let configuration = URLSessionConfiguration.ephemeral
        configuration.httpMaximumConnectionsPerHost = 32
        return URLSession(configuration: configuration)
    }()

    /// Starts one request; `done` gets the status and body (status -1 and the error for a transport failure).
    func start(_ method: String, _ path: String, body: Data? = nil, key: String? = nil, timeout: TimeInterval = 120,
               done: @escaping @Sendable (Int, Data, Error?) -> Void) {
        var request = URLRequest(url: URL(string: "http://127.0.0.1:\(port)\(path)")!)
        request.httpMethod = method
        request.timeoutInterval = timeout
        if let body {
            request.httpBody = body
            request.setValue("application/json", forHTTPHeaderField: "Content-Type")
        }
        if let key { request.setValue("Bearer \(key)", forHTTPHeaderField: "Authorization") }
        Self.session.dataTask(with: request) { data, response, error in
            done((response as? HTTPURLResponse)?.statusCode ?? -1, data ?? Data(), error)
        }.resume()
    }

    /// One request; the status and body.
    func send(_ method: String, _ path: String, body: Data? = nil, key: String? = nil, timeout: TimeInterval = 120) throws -> (status: Int, body: Data) {
        let finished = DispatchSemaphore(value: 0)
        let box = ReplyBox()
        start(method, path, body: body, key: key, timeout: timeout) { status, data, error in
            box.data = data
            box.status = status
            box.error = error
            finished.signal()
        }
        finished.wait()
        if let error = box.error { throw error }
        return (box.status, box.data)
    }

    /// POSTs a chat-completion body (a JSON object) and returns the status and the parsed reply.
    func chat(_ body: [String: Any], key: String? = nil) throws -> (status: Int, json: [String: Any]) {
        let reply = try send("POST", "/v1/chat/completions", body: try JSONSerialization.data(withJSONObject: body), key: key)
        return (reply.status, (try? JSONSerialization.jsonObject(with: reply.body) as? [String: Any]) ?? ["raw": String(decoding: reply.body, as: UTF8.self)])
    }

    /// A streamed completion's `data:` payloads, in order.
    func streamEvents(_ body: [String: Any]) throws -> (status: Int, events: [String]) {
        var body = body
        body["stream"] = true
        let reply = try send("POST", "/v1/chat/completions", body: try JSONSerialization.data(withJSONObject: body))
        let text = String(decoding: reply.body, as: UTF8.self)
        let events = text.components(separatedBy: "\n\n").filter { !$0.isEmpty }.map { event -> String in
            event.hasPrefix("data: ") ? String(event.dropFirst(6)) : "NOT-AN-EVENT: " + event
        }
        return (reply.status, events)
    }
}

private final class PortBox: @unchecked Sendable { var port = 0 }

private final class ReplyBox: @unchecked Sendable {
    var data = Data()
    var status = -1
    var error: Error?
}

enum ServingFixtures {
    static let folder = TestPaths.scratchFolder("serving-tests")

    static func tinyModel() throws -> LoadedModel {
        try ModelLoader.load(try TinyGGUFModel.path(in: folder + "/tiny-model"))
    }

    static func user(_ text: String, maxTokens: Int = 16, temperature: Double? = 0, extra: [String: Any] = [:]) -> [String: Any] {
        var body: [String: Any] = ["model": "tiny", "messages": [["role": "user", "content": text]], "max_tokens": maxTokens]
        if let temperature { body["temperature"] = temperature }
        return body.merging(extra) { _, new in new }
    }

    static func content(_ reply: [String: Any], choice: Int = 0) -> String? {
        ((reply["choices"] as? [[String: Any]])?[choice]["message"] as? [String: Any])?["content"] as? String
    }

    static func finishReason(_ reply: [String: Any], choice: Int = 0) -> String? {
        (reply["choices"] as? [[String: Any]])?[choice]["finish_reason"] as? String
    }

    static func errorMessage(_ reply: [String: Any]) -> String {
        ((reply["error"] as? [String: Any])?["message"] as? String) ?? "no error message in \(reply)"
    }
}

/// A client on a raw socket: sends a request, reads until `marker` arrives, then hangs up.
enum HangingUpClient {
    static func readThenHangUp(port: Int, body: Data, until marker: String, timeout: TimeInterval = 60) throws -> String {
        let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard descriptor >= 0 else { throw KnowTuneError.invalidInput("socket failed") }
        defer { close(descriptor) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard connected == 0 else { throw KnowTuneError.invalidInput("connect failed") }
        let head = "POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: \(body.count)\r\n\r\n"
        let request = Data(head.utf8) + body
        _ = request.withUnsafeBytes { send(descriptor, $0.baseAddress, $0.count, 0) }
        var received = Data()
        var buffer = [UInt8](repeating: 0, count: 4096)
        let start = Date()
        while Date().timeIntervalSince(start) < timeout {
            let count = recv(descriptor, &buffer, buffer.count, 0)
            if count <= 0 { break }
            received.append(contentsOf: buffer[0..<count])
            if String(decoding: received, as: UTF8.self).contains(marker) { break }
        }
        return String(decoding: received, as: UTF8.self)
    }
}
