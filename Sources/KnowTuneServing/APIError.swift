// Implements the errors the API server answers with: an HTTP status and OpenAI's error body
// (`{"error": {"message", "type", "param", "code"}}`), so OpenAI clients raise their usual exceptions; does not
// decide when a request is bad (the request parser and the scheduler do).
import Foundation
import KnowTuneTensor

public struct APIError: Error, Equatable {
    public let status: Int
    public let message: String
    public let type: String
    public let param: String?

    public init(status: Int, message: String, type: String, param: String? = nil) {
        self.status = status
        self.message = message
        self.type = type
        self.param = param
    }

    public static func badRequest(_ message: String, param: String? = nil) -> APIError {
        APIError(status: 400, message: message, type: "invalid_request_error", param: param)
    }

    /// A KnowTune error raised while reading the request (a bad schema, a wrong type) as a 400.
    public static func badRequest(_ error: Error, param: String? = nil) -> APIError {
        if let known = error as? APIError { return known }
        return badRequest((error as? KnowTuneError)?.description ?? "\(error)", param: param)
    }

    public static let unauthorized = APIError(status: 401, message: "invalid or missing API key (Authorization: Bearer …)",
                                              type: "invalid_request_error")

    public static func queueFull(_ capacity: Int) -> APIError {
        APIError(status: 429, message: "the server's queue of \(capacity) waiting sequences is full; retry later",
                 type: "rate_limit_error")
    }

    public static func notFound(_ path: String) -> APIError {
        APIError(status: 404, message: "no route \(path) (GET /v1/models, POST /v1/chat/completions)", type: "invalid_request_error")
    }

    /// OpenAI's error body.
    public var body: Data {
        var error: [String: Any] = ["message": message, "type": type, "code": NSNull()]
        error["param"] = param ?? NSNull()
        return (try? JSONSerialization.data(withJSONObject: ["error": error], options: [.sortedKeys])) ?? Data()
    }
}
