// Implements `knowtune api`'s HTTP side on Hummingbird: `GET /v1/models`, `POST /v1/chat/completions` (a JSON body,
// or server-sent events with `"stream": true`), `GET /health`, the optional bearer-key check, and errors as OpenAI's
// error bodies. Does not decode (ChatCompletionService and the scheduler do).
import Foundation
import Hummingbird
import Logging
import NIOCore

public struct APIServerOptions: Sendable {
    public var host: String
    /// 0 picks a free port (reported through `onListening`).
    public var port: Int
    /// When set, every request must carry `Authorization: Bearer <apiKey>`.
    public var apiKey: String?
    /// The largest request body read (a chat of a few thousand tokens is tens of KiB).
    public var maxBodyBytes: Int
    /// The least severe level of Hummingbird's own messages shown (swift-log's names: "warning", "critical", …).
    public var serverLogLevel: String

    public init(host: String = "127.0.0.1", port: Int = 8000, apiKey: String? = nil, maxBodyBytes: Int = 4 << 20,
                serverLogLevel: String = "warning") {
        self.host = host
        self.port = port
        self.apiKey = apiKey
        self.maxBodyBytes = maxBodyBytes
        self.serverLogLevel = serverLogLevel
    }
}

public enum APIServer {
    /// Serves until the task is cancelled (or SIGINT/SIGTERM when `handleSignals`); `onListening` gets the bound port.
    public static func run(service: ChatCompletionService, options: APIServerOptions, handleSignals: Bool = false,
                           onListening: @escaping @Sendable (Int) -> Void = { _ in }) async throws {
        let router = Router()
        router.get("/health") { _, _ in json(Data(#"{"status":"ok"}"#.utf8)) }
        router.get("/v1/models") { request, _ in
            if let denied = refusal(request, options) { return denied }
            return json(service.modelList)
        }
        router.post("/v1/chat/completions") { request, context in
            if let denied = refusal(request, options) { return denied }
            let prepared: PreparedCompletion
            let streaming: Bool
            do {
                var request = request
                let buffer = try await request.collectBody(upTo: options.maxBodyBytes)
                let parsed = try ChatCompletionRequest(body: Data(buffer.readableBytesView))
                prepared = try service.prepare(parsed)
                streaming = parsed.stream
            } catch let error as HTTPError where error.status == .contentTooLarge {
                return failure(APIError(status: 413, message: "the body is larger than \(options.maxBodyBytes) bytes",
                                        type: "invalid_request_error"))
            } catch {
                return failure(APIError.badRequest(error))
            }
            guard streaming else {
                do { return json(try await service.complete(prepared)) } catch let error as APIError { return failure(error) }
            }
            // Queued before the response starts, so a full queue is a 429 rather than an error inside the event stream.
            let submitted: SubmittedCompletion
            do { submitted = try service.submit(prepared) } catch let error as APIError { return failure(error) }
            return Response(status: .ok, headers: [.contentType: "text/event-stream", .cacheControl: "no-cache"],
                            body: ResponseBody { writer in
                                // A write that fails (the client went away) ends the stream and its sequences leave the batch.
                                try await service.stream(submitted) { payload in
                                    var buffer = ByteBuffer(string: "data: ")
                                    buffer.writeBytes(payload)
                                    buffer.writeString("\n\n")
                                    try await writer.write(buffer)
                                }
                                try await writer.finish(nil)
                            })
        }
        var logger = Logger(label: "knowtune-api")
        logger.logLevel = Logger.Level(rawValue: options.serverLogLevel) ?? .warning
        let app = Application(router: router,
                              configuration: .init(address: .hostname(options.host, port: options.port), serverName: "knowtune"),
                              onServerRunning: { channel in onListening(channel.localAddress?.port ?? options.port) },
                              logger: logger)
        if handleSignals { try await app.runService() } else { try await app.run() }
    }

    /// The 401 response when a key is required and the request lacks it.
    static func refusal(_ request: Request, _ options: APIServerOptions) -> Response? {
        guard let key = options.apiKey, !key.isEmpty else { return nil }
        return request.headers[.authorization] == "Bearer \(key)" ? nil : failure(.unauthorized)
    }

    static func json(_ data: Data, status: HTTPResponse.Status = .ok) -> Response {
        Response(status: status, headers: [.contentType: "application/json"], body: ResponseBody(byteBuffer: ByteBuffer(bytes: data)))
    }

    static func failure(_ error: APIError) -> Response {
        json(error.body, status: HTTPResponse.Status(code: error.status))
    }
}
